/*
 * The native-mmu plugin: fills core's `mmu` slot with the bare-metal MMU and counts what it does.
 */
import { definePlugin, type Plugin } from "@hyperlab/core";
import { NativeMmu, type NativeMmuOptions } from "./native-mmu";

/** The bare-metal MMU as a plugin value: `createHypervisor({ machine, plugins: [nativeMmuPlugin()] })`. */
export function nativeMmuPlugin(options: NativeMmuOptions = {}): Plugin {
  return definePlugin({
    name: "native-mmu",
    description: "bare-metal paging: the hardware walks the kernel's own tables, nothing validates",
    provides: ["mmu"],
    setup(ctx) {
      const mmu = new NativeMmu(ctx.hv, options);
      const c = mmu.counts;
      const s = ctx.stats;
      s.gauge("translations", "accesses", "translations asked of the MMU", () => c.translations);
      s.gauge("tlb_hits", "accesses", "translations served by the TLB", () => c.tlbHits);
      s.gauge("tlb_misses", "accesses", "translations that needed a walk", () => c.tlbMisses);
      s.gauge("walks", "walks", "page walks made", () => c.walks);
      s.gauge("walk_reads", "references", "page-table entries read by walks", () => c.walkReads);
      s.gauge("walk_writes", "references", "A/D updates written by walks", () => c.walkWrites);
      s.gauge("faults", "faults", "translations that faulted to the kernel", () => c.faults);
      s.gauge("tlb_flushes", "flushes", "CR3 reloads (non-global flushes)", () => c.flushes);
      s.gauge("invlpg", "flushes", "single-address flushes", () => c.invlpgs);
      ctx.provide("mmu", mmu);
    },
  });
}
