// The README's virtio example, run.
import { createHypervisor } from "@hyperlab/core";
import { bootNativeKernel } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { nptMmu } from "@hyperlab/npt-mmu";
import { expect, it } from "vitest";
import { Virtqueue } from "../src/index";

it("runs the README's virtio example", () => {
  const machine = createMachine({ ramBytes: 64 * 2 ** 20, cpus: 1, seed: 3 });
  const hv = createHypervisor({ machine, plugins: [nptMmu()] }).boot();
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 600 });
  hv.unpauseDomain(d);
  const k = bootNativeKernel(hv, d, { nrPages: 512 });

  const kicks: number[] = [];
  const vq = new Virtqueue<string>(k, 0, 8, { eventIdx: true, notify: (q) => kicks.push(q) });
  expect(vq.add([{ addr: 0x10000, len: 16 }], [{ addr: 0x20000, len: 512 }], "req-1")).toBe(0);
  expect(vq.kick()).toBe(true);
  expect(kicks).toEqual([0]);
  // The chain as the device sees it: two descriptors, NEXT then WRITE.
  expect(k.ram.read16(vq.descPa + 12)).toBe(1);
  expect(k.ram.read16(vq.descPa + 16 + 12)).toBe(2);
  expect(k.ram.read16(vq.availPa + 2)).toBe(1);
  k.ram.write32(vq.usedPa + 4, 0);
  k.ram.write32(vq.usedPa + 8, 512);
  k.ram.write16(vq.usedPa + 2, 1);
  expect(vq.getBuf()).toEqual({ token: "req-1", len: 512 });
  expect(vq.numFree).toBe(8);
});
