/*
 * The native-mmu plugin: fills core's `mmu` slot with the bare-metal MMU and counts what it does.
 */
import { type CountStat, defineMmuPlugin, type Plugin } from "@hyperlab/core";
import { NativeMmu, type NativeMmuCounts, type NativeMmuOptions } from "./native-mmu";

const STATS: readonly CountStat<keyof NativeMmuCounts>[] = [
  ["translations", "translations", "accesses", "translations asked of the MMU"],
  ["tlbHits", "tlb_hits", "accesses", "translations served by the TLB"],
  ["tlbMisses", "tlb_misses", "accesses", "translations that needed a walk"],
  ["walks", "walks", "walks", "page walks made"],
  ["walkReads", "walk_reads", "references", "page-table entries read by walks"],
  ["walkWrites", "walk_writes", "references", "A/D updates written by walks"],
  ["faults", "faults", "faults", "translations that faulted to the kernel"],
  ["flushes", "tlb_flushes", "flushes", "CR3 reloads (non-global flushes)"],
  ["invlpgs", "invlpg", "flushes", "single-address flushes"],
];

/** The bare-metal MMU as a plugin value: `createHypervisor({ machine, plugins: [nativeMmu()] })`. */
export function nativeMmu(options: NativeMmuOptions = {}): Plugin {
  return defineMmuPlugin({
    name: "native-mmu",
    description: "bare-metal paging: the hardware walks the kernel's own tables, nothing validates",
    create: (hv) => new NativeMmu(hv, options),
    counts: (mmu) => mmu.counts,
    stats: STATS,
  });
}
