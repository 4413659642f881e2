import { readFileSync } from "node:fs";
import { createHypervisor, PFEC_write_access } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { expect, it } from "vitest";
import { EXIT_REASON_EPT_VIOLATION, nptMmu } from "../src/index";

it("runs the README example", () => {
  const machine = createMachine({ ramBytes: 64 * 2 ** 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nptMmu({ hostPageSize: "2M" })] }).boot();
  const npt = hv.slot("npt-mmu");

  // A guest whose 512 frames form one aligned 2 MiB run; its gfns are those frames.
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 512 });
  const run = hv.allocDomainPages(d, 9);
  const [l4, l3, l2, l1, data] = [run, run + 1, run + 2, run + 3, run + 4];
  const v = d.vcpus[0];

  // The guest kernel writes its own tables for va 0x40_0000 (P | RW | US = 7).
  npt.guestStore(v, l4 * 4096, l3 * 4096 + 7, 0);
  npt.guestStore(v, l3 * 4096, l2 * 4096 + 7, 0);
  npt.guestStore(v, l2 * 4096 + 2 * 8, l1 * 4096 + 7, 0);
  npt.guestStore(v, l1 * 4096, data * 4096 + 7, 0);
  npt.writeCr3(v, l4);

  const maddr = npt.translate(v, 0x40_0010, PFEC_write_access);
  expect(maddr === data * 4096 + 0x10).toBe(true);
  expect(npt.exitCount(EXIT_REASON_EPT_VIOLATION)).toBe(1);
  expect(npt.nestedMapping(d, data)).toEqual({ mfn: data, pageSize: "2M" });
  expect(npt.counts.guestRefs).toBe(4);
  expect(npt.counts.nestedRefs < 15).toBe(true);
  expect(npt.translate(v, 0x40_0020, 0) === data * 4096 + 0x20).toBe(true);
});

it("keeps the README's example in step with this test", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  for (const line of [
    'const hv = createHypervisor({ machine, plugins: [nptMmu({ hostPageSize: "2M" })] }).boot();',
    "npt.guestStore(v, l2 * 4096 + 2 * 8, l1 * 4096 + 7, 0);",
    "const maddr = npt.translate(v, 0x40_0010, PFEC_write_access);",
  ]) {
    expect(readme).toContain(line);
  }
});
