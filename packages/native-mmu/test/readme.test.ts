import { createHypervisor, PFEC_user_mode } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { expect, it } from "vitest";
import { nativeMmu } from "../src/index";

it("README example", () => {
  const machine = createMachine({ ramBytes: 8 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
  const ram = machine.ram;
  ram.write64(100 * 4096, 101 * 4096 + 7, 0);
  ram.write64(101 * 4096, 102 * 4096 + 7, 0);
  ram.write64(102 * 4096, 103 * 4096 + 7, 0);
  for (let i = 0; i < 512; i++) ram.write64(103 * 4096 + i * 8, i * 4096 + 7, 0);
  const v = d.vcpus[0];
  v.cr3Mfn = 100;
  const mmu = hv.slot("mmu");
  expect(mmu.translate(v, 0x5123, PFEC_user_mode)).toBe(0x5123);
  expect(mmu.translate(v, 0x5124, PFEC_user_mode)).toBe(0x5124);
  expect(hv.stats.read("native-mmu", "walk_reads")).toBe(4);
  expect(hv.stats.read("native-mmu", "tlb_hits")).toBe(1);
});
