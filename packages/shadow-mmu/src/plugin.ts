/*
 * The shadow-mmu plugin: fills core's `mmu` slot with shadow paging, and `shadowMmu` with
 * the full backend (the guest's guestStore, introspection).
 */
import { type CountStat, defineMmuPlugin, type Plugin } from "@hyperlab/core";
import { type ShadowCounts, ShadowMmu, type ShadowMmuOptions } from "./shadow";
import { SHADOW_EXIT_REASON_NAMES } from "./vmx";

declare module "@hyperlab/core" {
  interface Slots {
    /** The shadow-paging MMU with guestStore (the trapping page-table store) and introspection. */
    "shadow-mmu": ShadowMmu;
  }
}

const STATS: readonly CountStat<keyof ShadowCounts>[] = [
  ["tlbHits", "tlb_hits", "translations", "translations served by the TLB"],
  ["tlbMisses", "tlb_misses", "translations", "translations that missed the TLB"],
  ["walks", "walks", "walks", "hardware walks of the shadow tables"],
  ["shadowRefs", "shadow_refs", "references", "shadow entries read by hardware walks"],
  [
    "hostGuestRefs",
    "host_guest_refs",
    "references",
    "guest entries read by the host's software walks",
  ],
  ["shadowFaultsFixed", "shadow_faults_fixed", "faults", "shadow page faults fixed by the host"],
  ["injectedFaults", "injected_faults", "faults", "page faults delivered to the guest"],
  [
    "emulatedWrites",
    "emulated_writes",
    "stores",
    "guest stores to write-protected page tables, emulated",
  ],
  ["plainStores", "plain_stores", "stores", "guest stores to frames that were not write-protected"],
  ["unsyncs", "unsyncs", "frames", "guest table frames whose level-1 shadows went out of sync"],
  ["syncs", "syncs", "pages", "out-of-sync shadow pages synced again (CR3 loads, reuse)"],
  [
    "syncDropped",
    "sync_dropped",
    "entries",
    "shadow entries dropped by a sync (guest entry changed)",
  ],
  ["floodZaps", "flood_zaps", "pages", "shadow pages zapped after repeated writes without use"],
  ["sptesZapped", "sptes_zapped", "entries", "shadow entries zapped by guest page-table writes"],
  ["shadowPagesCreated", "shadow_pages_created", "pages", "shadow pages created"],
  ["shadowPagesZapped", "shadow_pages_zapped", "pages", "shadow pages zapped"],
  ["shadowPages", "shadow_pages", "pages", "shadow pages that exist now"],
  ["writeProtects", "write_protects", "frames", "guest frames that became write-protected"],
  ["unprotects", "unprotects", "frames", "guest frames unprotected by a data write"],
  ["rootLoads", "root_loads", "roots", "shadow roots loaded for a vCPU"],
  ["cr3Writes", "cr3_writes", "writes", "guest CR3 writes"],
  ["invlpg", "invlpg", "instructions", "guest INVLPG"],
  ["tlbFlushes", "tlb_flushes", "flushes", "whole-vCPU TLB flushes"],
  [
    "unbackedAccesses",
    "unbacked_accesses",
    "accesses",
    "accesses to frames the domain does not own",
  ],
  [
    "shadowResets",
    "shadow_resets",
    "resets",
    "domains that reached maxShadowPages and lost all shadow pages",
  ],
  ["allocFailures", "alloc_failures", "frames", "shadow-page frames the machine could not supply"],
];

/** Shadow paging as a plugin for core's `mmu` slot. */
export function shadowMmu(options: ShadowMmuOptions = {}): Plugin {
  return defineMmuPlugin({
    name: "shadow-mmu",
    description: "Shadow paging: write-protected guest page tables propagated into shadow tables",
    service: "shadow-mmu",
    create: (hv) => new ShadowMmu(hv, options),
    counts: (b) => b.counts,
    stats: STATS,
    exits: { names: SHADOW_EXIT_REASON_NAMES, count: (b, reason) => b.exitCount(reason) },
    domainDestroyed: (b, d) => b.domainDestroyed(d),
  });
}
