/*
 * The swiotlb-dma guest plugin: fills pv_ops.dma of a Xen PV kernel with swiotlb-xen (the
 * group and its native dma-direct default are the guest package's).
 *
 * Invariant: the plugin provides only pv_ops.dma, and only on a Xen PV kernel; it reaches
 * Xen through the kernel's GuestPort alone.
 */
import { defineGuestPlugin, type GuestKernel, type GuestPlugin } from "@hyperlab/guest";
import { swiotlbError } from "./errors";
import { type SwiotlbOptions, SwiotlbXen } from "./swiotlb-xen";

/** Linux's swiotlb-xen as pv_ops.dma: `bootXenPvKernel(hv, d, { plugins: [swiotlbDma()] })`. */
export function swiotlbDma(options: SwiotlbOptions = {}): GuestPlugin {
  if (typeof options !== "object" || options === null) {
    throw swiotlbError("SWIOTLB_BAD_OPTIONS", "swiotlbDma() takes an options object or nothing.");
  }
  return defineGuestPlugin({
    name: "swiotlb-dma",
    description:
      "Linux's swiotlb-xen: bus address = machine address, bounce pool made contiguous by XENMEM_exchange",
    provides: ["dma"],
    setup(ctx) {
      const ops = new SwiotlbXen(ctx.kernel, options);
      const c = ops.counts;
      const s = ctx.stats;
      s.gauge("maps", "maps", "DMA mappings made", () => c.maps);
      s.gauge("bounces", "maps", "mappings bounced through the swiotlb pool", () => c.bounces);
      s.gauge(
        "mapping_errors",
        "maps",
        "mappings answered with DMA_MAPPING_ERROR",
        () => c.mappingErrors,
      );
      s.gauge("bytes_in", "bytes", "bytes copied into bounce slots for a device", () => c.bytesIn);
      s.gauge(
        "bytes_out",
        "bytes",
        "bytes copied out of bounce slots for the CPU",
        () => c.bytesOut,
      );
      s.gauge("exchanges", "calls", "XENMEM_exchange hypercalls", () => c.exchanges);
      s.gauge("pool_slots_used", "slots", "swiotlb slots in use", () => ops.pool.used);
      ctx.provide("dma", ops);
    },
  });
}

/** The swiotlb-xen ops a kernel booted with swiotlbDma() runs (for stats and tests). */
export function swiotlbOf(kernel: GuestKernel): SwiotlbXen {
  const dma = kernel.ops?.dma;
  if (!(dma instanceof SwiotlbXen)) {
    throw swiotlbError(
      "SWIOTLB_NOT_INSTALLED",
      "This kernel's pv_ops.dma is not swiotlb-xen. Boot it with plugins: [swiotlbDma()].",
    );
  }
  return dma;
}
