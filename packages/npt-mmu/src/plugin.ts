/*
 * The npt-mmu plugin: fills core's `mmu` slot with nested paging, and `nptMmu` with the
 * full backend (host operations: INVEPT, INVVPID, zapGfn; the guest's guestStore).
 */
import { type CountStat, defineMmuPlugin, type Plugin } from "@hyperlab/core";
import { type NptCounts, NptMmu, type NptMmuOptions } from "./npt";
import { VMX_EXIT_REASON_NAMES } from "./vmx";

declare module "@hyperlab/core" {
  interface Slots {
    /** The nested-paging MMU with its host operations (INVEPT, INVVPID, zapGfn) and guestStore. */
    "npt-mmu": NptMmu;
  }
}

const STATS: readonly CountStat<keyof NptCounts>[] = [
  ["tlbHits", "tlb_hits", "translations", "translations served by the combined TLB"],
  ["tlbMisses", "tlb_misses", "translations", "translations that missed the combined TLB"],
  ["walks", "walks", "walks", "two-dimensional walks started (retries after an exit count again)"],
  ["guestRefs", "guest_refs", "references", "guest page-table entries read by walks"],
  [
    "guestAdWrites",
    "guest_ad_writes",
    "writes",
    "guest page-table entries whose A/D flags walks set",
  ],
  ["nestedRefs", "nested_refs", "references", "nested (EPT) entries read by walks"],
  ["guestPwcHits", "guest_pwc_hits", "lookups", "guest paging-structure cache hits"],
  ["nestedPwcHits", "nested_pwc_hits", "lookups", "nested paging-structure cache hits"],
  ["nestedTlbHits", "nested_tlb_hits", "lookups", "nested TLB (gfn -> mfn) hits"],
  ["nestedTlbMisses", "nested_tlb_misses", "lookups", "nested TLB (gfn -> mfn) misses"],
  ["guestFaults", "guest_faults", "faults", "translations that faulted to the guest"],
  [
    "unbackedAccesses",
    "unbacked_accesses",
    "accesses",
    "accesses to guest-physical addresses without RAM",
  ],
  ["backed4k", "backed_4k", "pages", "nested mappings created with 4 KiB host pages"],
  ["backed2m", "backed_2m", "pages", "nested mappings created with 2 MiB host pages"],
  ["backed1g", "backed_1g", "pages", "nested mappings created with 1 GiB host pages"],
  [
    "splinteredFills",
    "splintered_fills",
    "fills",
    "TLB fills split to the host page because the guest page was larger (TLB splintering)",
  ],
  ["nestedTableFrames", "nested_table_frames", "frames", "host frames holding nested tables"],
  [
    "nestedAllocFailures",
    "nested_alloc_failures",
    "frames",
    "nested-table frames the machine could not supply",
  ],
  ["invept", "invept", "instructions", "INVEPT executed by the host"],
  ["invvpid", "invvpid", "instructions", "INVVPID executed by the host"],
  ["vmentryFlushes", "vmentry_flushes", "flushes", "TLB flushes on VM entry for lack of VPID"],
  ["guestCr3Loads", "guest_cr3_loads", "loads", "guest CR3 loads (no exit with EPT)"],
  ["guestInvlpg", "guest_invlpg", "instructions", "guest INVLPG (no exit with EPT)"],
  ["guestStores", "guest_stores", "stores", "guest stores made through guestStore"],
];

/** KVM-style nested paging (EPT/NPT) as a plugin for core's `mmu` slot. */
export function nptMmu(options: NptMmuOptions = {}): Plugin {
  return defineMmuPlugin({
    name: "npt-mmu",
    description:
      "KVM-style nested paging (EPT/NPT): two-dimensional walks, EPT violations, VM exits",
    service: "npt-mmu",
    create: (hv) => new NptMmu(hv, options),
    counts: (b) => b.counts,
    stats: STATS,
    exits: { names: VMX_EXIT_REASON_NAMES, count: (b, reason) => b.exitCount(reason) },
    domainDestroyed: (b, d) => b.domainDestroyed(d),
  });
}
