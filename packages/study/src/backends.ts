/*
 * MMU backends as the study sees them: the core plugins that fill the `mmu` slot, and for
 * each how to read what the hardware and the hypervisor counted (TLB, walks, hypercalls,
 * exits, flushes). The guest kernel drives the MMU itself; a backend here only boots and
 * counts.
 *
 * Invariant: every count a backend reports is read from the hypervisor's stats or the
 * backend's own counters, never estimated.
 */
import type { Hypervisor, Plugin, Vcpu } from "@hyperlab/core";
import { type NativeMmu, nativeMmu } from "@hyperlab/native-mmu";
import { type NptMmu, nptMmu } from "@hyperlab/npt-mmu";
import { tlbStats } from "@hyperlab/paging";
import { pvCpu } from "@hyperlab/pv-cpu";
import { type PvMmu, pvMmu } from "@hyperlab/pv-mmu";
import { type ShadowMmu, shadowMmu } from "@hyperlab/shadow-mmu";
import type { StudyCounts } from "./counts";

export type PageSize = "4K" | "2M" | "1G";

/** What a backend is booted with. */
export interface BackendParams {
  /** Guest page size the kernel maps user memory with. */
  guestPageSize: PageSize;
  /** Host page size of the second dimension (nested paging); ignored elsewhere. */
  hostPageSize: PageSize;
}

/** The counters of one backend for one domain's vCPU. */
export interface BackendCounters {
  /** Adds the hardware and hypervisor counts (TLB, walk references, hypercalls, exits). */
  addHardwareCounts(out: StudyCounts): void;
  /** Adds the flushes the backend saw (full: CR3 loads and flush-alls; single: INVLPG). */
  addFlushCounts(out: StudyCounts): void;
}

/** One MMU backend of the study. */
export interface StudyBackend {
  /** "native", "pv", "nested", "shadow". */
  readonly name: string;
  readonly description: string;
  /** Why these parameters cannot run on this backend, or null. */
  unsupported(params: BackendParams): string | null;
  /** The hypervisor plugins of a build with this backend. */
  plugins(params: BackendParams): Plugin[];
  /**
   * The backend's counters for one domain's vCPU, after boot. `walkRef`, when given, hears
   * the machine address of every entry a hardware page walk reads (guest and nested).
   */
  attach(hv: Hypervisor, vcpu: Vcpu, walkRef?: (maddr: number) => void): BackendCounters;
}

/**
 * Entries into Xen by hypercall (a multicall is one, as Xen's do_multicall is one trap),
 * and the calls made inside multicalls, counted apart.
 */
function addHypercalls(hv: Hypervisor, out: StudyCounts): void {
  out.hypercalls += hv.stats.read("core", "hypercall_entries") ?? 0;
  out.multicallEntries += hv.stats.read("core", "multicall_entries") ?? 0;
}

/** The guest kernel maps user memory with 4 KiB or 2 MiB (transparent huge) pages. */
function noGiantGuestPages(p: BackendParams): string | null {
  return p.guestPageSize === "1G" ? "the guest kernel maps 4 KiB and 2 MiB guest pages only" : null;
}

/** Bare metal: the kernel stores entries; the MMU walks them. */
export const nativeBackend: StudyBackend = {
  name: "native",
  description: "bare metal: one walk of the kernel's own tables per TLB miss",
  unsupported: noGiantGuestPages,
  plugins: () => [nativeMmu()],
  attach: (hv, _vcpu, walkRef) => {
    // The bare-metal MMU fills core's mmu slot itself (it has no service slot of its own).
    const mmu = hv.slot("mmu") as NativeMmu;
    mmu.walkRefSink = walkRef ?? null;
    return nativeCounters(hv);
  },
};

function nativeCounters(hv: Hypervisor): BackendCounters {
  return {
    addHardwareCounts(out) {
      out.tlbHits += hv.stats.read("native-mmu", "tlb_hits") ?? 0;
      out.tlbMisses += hv.stats.read("native-mmu", "tlb_misses") ?? 0;
      out.walkRefs += hv.stats.read("native-mmu", "walk_reads") ?? 0;
      addHypercalls(hv, out);
    },
    addFlushCounts(out) {
      out.tlbFlushes += hv.stats.read("native-mmu", "tlb_flushes") ?? 0;
      out.invlpg += hv.stats.read("native-mmu", "invlpg") ?? 0;
    },
  };
}

/** Xen PV direct paging: entries change by validated mmu_update, roots are pinned. */
export const pvBackend: StudyBackend = {
  name: "pv",
  description: "Xen PV direct paging: validated mmu_update, pinned roots, traps through Xen",
  unsupported: (p) =>
    p.guestPageSize !== "4K" ? "Xen PV guests have no superpages (PSE is refused in L2/L3)" : null,
  // As examples/compose builds Xen: the guest boots through set_trap_table and callbacks.
  plugins: () => [pvMmu(), pvCpu()],
  attach(hv, vcpu, walkRef) {
    const pv: PvMmu = hv.slot("pv-mmu");
    pv.walkRefSink = walkRef ?? null;
    return {
      addHardwareCounts(out) {
        const levels = tlbStats(pv.tlbOf(vcpu)).levels;
        const misses = levels[levels.length - 1].misses;
        out.tlbHits += levels[0].lookups - misses;
        out.tlbMisses += misses;
        out.walkRefs += pv.walkCounts.reads;
        addHypercalls(hv, out);
        out.mmuUpdateRequests += hv.stats.read("pv-mmu", "mmu_updates") ?? 0;
      },
      addFlushCounts(out) {
        out.tlbFlushes += pv.tlbFlushCount(vcpu);
        // pv-mmu's flushOne invalidates the address under both PV tags (kernel and user tables).
        out.invlpg += tlbStats(pv.tlbOf(vcpu)).invlpg / 2;
      },
    };
  },
};

/** KVM-style nested paging: the guest stores its own entries; TLB misses walk two dimensions. */
export const nestedBackend: StudyBackend = {
  name: "nested",
  description: "nested paging (EPT/NPT): 2D walks, EPT-violation exits back guest memory",
  unsupported: noGiantGuestPages,
  plugins: (p) => [nptMmu({ hostPageSize: p.hostPageSize })],
  attach(hv, _vcpu, walkRef) {
    const npt: NptMmu = hv.slot("npt-mmu");
    npt.walkRefSink = walkRef ?? null;
    return {
      addHardwareCounts(out) {
        const c = npt.counts;
        out.tlbHits += c.tlbHits;
        out.tlbMisses += c.tlbMisses;
        out.walkRefs += c.guestRefs + c.nestedRefs;
        let exits = 0;
        for (let i = 0; i < npt.exits.length; i++) exits += npt.exits[i];
        out.vmExits += exits;
        addHypercalls(hv, out);
      },
      addFlushCounts(out) {
        out.tlbFlushes += npt.counts.guestCr3Loads;
        out.invlpg += npt.counts.guestInvlpg;
      },
    };
  },
};

/**
 * Shadow paging: the guest stores its own entries; stores to write-protected tables trap and
 * are emulated, and the host fills shadow tables on hidden faults.
 */
export const shadowBackend: StudyBackend = {
  name: "shadow",
  description: "shadow paging: write-protected guest tables, hidden faults fill shadow tables",
  unsupported: noGiantGuestPages,
  plugins: () => [shadowMmu()],
  attach(hv, _vcpu, walkRef) {
    const sh: ShadowMmu = hv.slot("shadow-mmu");
    sh.walkRefSink = walkRef ?? null;
    return {
      addHardwareCounts(out) {
        const c = sh.counts;
        out.tlbHits += c.tlbHits;
        out.tlbMisses += c.tlbMisses;
        // Hardware walks read shadow entries only; the host's software walks of the guest
        // tables are part of handling an exit (priced there).
        out.walkRefs += c.shadowRefs;
        let exits = 0;
        for (let i = 0; i < sh.exits.length; i++) exits += sh.exits[i];
        out.vmExits += exits;
        addHypercalls(hv, out);
      },
      addFlushCounts(out) {
        out.tlbFlushes += sh.counts.cr3Writes;
        out.invlpg += sh.counts.invlpg;
      },
    };
  },
};

/** Backends available to a study, by name. */
export const BACKENDS: readonly StudyBackend[] = [
  nativeBackend,
  pvBackend,
  nestedBackend,
  shadowBackend,
];
