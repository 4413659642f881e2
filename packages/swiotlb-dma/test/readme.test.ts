import { expect, it } from "vitest";

it("README example", async () => {
  // --- the README's example, verbatim from here ---
  const { createHypervisor } = await import("@hyperlab/core");
  const { bootXenPvKernel, DMA_TO_DEVICE } = await import("@hyperlab/guest");
  const { createMachine, DmaEngine } = await import("@hyperlab/machine");
  const { buildPvDomain, pvMmu } = await import("@hyperlab/pv-mmu");
  const { swiotlbDma, swiotlbOf } = await import("../src/index");

  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 4200 });
  const built = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 4096 });
  const kernel = bootXenPvKernel(hv, d, { startInfoVa: built.rsi, plugins: [swiotlbDma()] });

  const disk = { name: "disk", dmaMaskBits: 32, coherentDmaMaskBits: 32 };
  const pfn = kernel.allocPage();
  const bus = kernel.ops.dma.mapPage(disk, pfn, 0, 512, DMA_TO_DEVICE); // one frame: direct
  const sector = new Uint8Array(512);
  new DmaEngine(kernel.ram).read(bus, sector); // the device reads the buffer's machine page
  kernel.ops.dma.unmapPage(disk, bus, 512, DMA_TO_DEVICE);
  const s = swiotlbOf(kernel);
  s.dmaSupported(disk, 32); // builds the pool: true, it lies below 4 GiB
  // --- end of the example ---

  expect(bus).toBe(kernel.xen!.p2m[pfn] * 4096);
  expect(s.poolState).toBe("ready");
  expect(s.pool.bounds().end).toBeLessThanOrEqual(2 ** 32);
  expect(kernel.composition.pvOps.dma).toBe("swiotlb-dma");
  expect(kernel.stats.snapshot()["swiotlb-dma"].find((x) => x.name === "exchanges")!.value).toBe(
    s.counts.exchanges,
  );
});
