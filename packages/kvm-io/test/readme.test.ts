// The README's example, run.
import { createHypervisor } from "@hyperlab/core";
import { bootNativeKernel } from "@hyperlab/guest";
import {
  createMachine,
  MemoryDiskImage,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_T_OUT,
} from "@hyperlab/machine";
import { nptMmu } from "@hyperlab/npt-mmu";
import { VirtioBlkFront } from "@hyperlab/split-drivers";
import { expect, it } from "vitest";
import { kvmIo, VirtioBlk } from "../src/index";

it("runs the README example", () => {
  const machine = createMachine({ ramBytes: 128 * 2 ** 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nptMmu(), kvmIo()] }).boot();
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 2100 });
  hv.unpauseDomain(d);

  const vm = hv.slot("kvm-io").vm(d);
  const image = new MemoryDiskImage(2048);
  const blk = vm.addVirtio(new VirtioBlk({ image }));

  const k = bootNativeKernel(hv, d, { nrPages: 2048 });
  const disk = VirtioBlkFront.probe(k, blk.base, blk.gsi);
  if (typeof disk === "number") throw new Error(`probe failed: ${disk}`);

  const page = k.allocPage();
  k.ram.write32(page * 4096, 0xcafe);
  const exits = vm.counts.mmioExits;
  let status = -1;
  disk.submit(VIRTIO_BLK_T_OUT, 8, [{ addr: page * 4096, len: 4096 }], (s) => (status = s));
  expect(status).toBe(VIRTIO_BLK_S_OK);
  expect(new DataView(image.bytes.buffer).getUint32(8 * 512, true)).toBe(0xcafe);
  expect(vm.counts.mmioExits - exits).toBe(3);
  expect(vm.ioApic.injections).toBe(1);
  expect(vm.ioApic.eoiExits).toBe(1);
  const stats = Object.fromEntries(
    (hv.describe().stats["kvm-io"] ?? []).map((s) => [s.name, s.value]),
  );
  expect(stats.irq_injections).toBe(1);
  expect(stats.mmio_exits).toBe(vm.counts.mmioExits);
});
