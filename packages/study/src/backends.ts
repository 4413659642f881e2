/*
 * MMU backends as the study sees them: the core plugins that fill the `mmu` slot, and for
 * each the few operations a guest kernel uses to change its page tables on it (a store on
 * bare metal and under nested paging, a validated mmu_update under Xen PV).
 *
 * Invariant: a backend adapter only forwards what the kernel asks; every count it reports is
 * read from the hypervisor's stats or the backend's own counters, never estimated.
 */
import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  DOMID_SELF,
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_UNPIN_TABLE,
} from "@hyperlab/abi";
import type { Hypervisor, MmuBackend, Plugin, Vcpu } from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import { nativeMmuPlugin } from "@hyperlab/native-mmu";
import { type NptMmu, nptMmu } from "@hyperlab/npt-mmu";
import { tlbStats } from "@hyperlab/paging";
import { type PvMmu, pvMmuPlugin } from "@hyperlab/pv-mmu";
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

/** The operations a guest kernel needs from an MMU backend to manage its page tables. */
export interface BackendOps {
  readonly mmu: MmuBackend;
  /** Whether guest page faults and system calls trap through the hypervisor (Xen PV). */
  readonly trapsThroughHypervisor: boolean;
  /** Writes one entry of a page-table page (queued until commit on backends that batch). */
  setEntry(table: number, index: number, lo: number, hi: number): void;
  /** Makes queued entry writes take effect (Xen PV: one mmu_update for the batch). */
  commit(): void;
  /**
   * The kernel zeroes a frame it owns (a new page or table). On shadow paging a frame that
   * was a page table is still write-protected, so the stores go through the backend.
   */
  clearFrame(frame: number): void;
  /** The kernel copies frame `src` over `dst` (copy on write). */
  copyFrame(dst: number, src: number): void;
  /** A new, zeroed top-level table is about to be used (Xen PV: pin it). */
  newRoot(root: number): void;
  /** A top-level table no vCPU uses is being freed with its tree (Xen PV: unpin it). */
  freeRoot(root: number): void;
  /** Loads a top-level table on the vCPU (flushes its non-global entries). */
  loadCr3(root: number): void;
  flushOne(va: number): void;
  flushAll(): void;
  /** Adds the hardware and hypervisor counts (TLB, walk references, hypercalls, exits). */
  addHardwareCounts(out: StudyCounts): void;
  /**
   * Adds the flushes the backend saw (full: CR3 loads and flush-alls; single: INVLPG), for
   * kernels that do not count their own (the guest kernel).
   */
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
  /** The kernel's view of the backend for one domain's vCPU, after boot. */
  attach(hv: Hypervisor, vcpu: Vcpu): BackendOps;
}

function hypercallsOf(hv: Hypervisor): number {
  return hv.stats.read("core", "hypercalls") ?? 0;
}

/** The study kernel maps user memory with 4 KiB or 2 MiB pages. */
function noGiantGuestPages(p: BackendParams): string | null {
  return p.guestPageSize === "1G" ? "the study kernel maps 4 KiB and 2 MiB guest pages only" : null;
}

/** Bare metal: the kernel stores entries; the MMU walks them. */
export const nativeBackend: StudyBackend = {
  name: "native",
  description: "bare metal: one walk of the kernel's own tables per TLB miss",
  unsupported: noGiantGuestPages,
  plugins: () => [nativeMmuPlugin()],
  attach(hv, vcpu) {
    const ram = hv.machine.ram;
    const mmu = hv.slot("mmu");
    return {
      mmu,
      trapsThroughHypervisor: false,
      setEntry: (table, index, lo, hi) => ram.write64(table * 4096 + index * 8, lo, hi),
      commit() {},
      clearFrame: (f) => ram.clearFrame(f),
      copyFrame: (d, s) => ram.copyFrame(d, s),
      newRoot() {},
      freeRoot() {},
      loadCr3(root) {
        vcpu.cr3Mfn = root;
        mmu.flushLocal(vcpu);
      },
      flushOne: (va) => mmu.flushOne(vcpu, va),
      flushAll: () => mmu.flushLocal(vcpu),
      addHardwareCounts(out) {
        out.tlbHits += hv.stats.read("native-mmu", "tlb_hits") ?? 0;
        out.tlbMisses += hv.stats.read("native-mmu", "tlb_misses") ?? 0;
        out.walkRefs += hv.stats.read("native-mmu", "walk_reads") ?? 0;
        out.hypercalls += hypercallsOf(hv);
      },
      addFlushCounts(out) {
        out.tlbFlushes += hv.stats.read("native-mmu", "tlb_flushes") ?? 0;
        out.invlpg += hv.stats.read("native-mmu", "invlpg") ?? 0;
      },
    };
  },
};

/** Xen PV direct paging: entries change by validated mmu_update, roots are pinned. */
export const pvBackend: StudyBackend = {
  name: "pv",
  description: "Xen PV direct paging: validated mmu_update, pinned roots, traps through Xen",
  unsupported: (p) =>
    p.guestPageSize !== "4K" ? "Xen PV guests have no superpages (PSE is refused in L2/L3)" : null,
  plugins: () => [pvMmuPlugin()],
  attach(hv, vcpu) {
    const pv: PvMmu = hv.slot("pvMmu");
    return new PvOps(hv, pv, vcpu);
  },
};

const PV_BATCH = 512;

class PvOps implements BackendOps {
  readonly mmu: MmuBackend;
  readonly trapsThroughHypervisor = true;
  private readonly reqs = new Uint32Array(PV_BATCH * 4);
  private queued = 0;
  private readonly updateArgs = { ureqs: this.reqs, count: 0, pdone: 0, foreigndom: DOMID_SELF };
  private readonly op = { cmd: 0, arg1: { mfn: 0, linear_addr: 0 } };
  private readonly extArgs = { uops: [this.op], count: 1, pdone: 0, foreigndom: DOMID_SELF };

  constructor(
    private readonly hv: Hypervisor,
    private readonly pv: PvMmu,
    private readonly vcpu: Vcpu,
  ) {
    this.mmu = pv;
  }

  setEntry(table: number, index: number, lo: number, hi: number): void {
    if (this.queued === PV_BATCH) this.commit();
    const r = this.reqs;
    const o = this.queued * 4;
    const ptr = table * 4096 + index * 8;
    r[o] = ptr >>> 0;
    r[o + 1] = Math.floor(ptr / 0x1_0000_0000);
    r[o + 2] = lo;
    r[o + 3] = hi;
    this.queued++;
  }

  clearFrame(frame: number): void {
    this.hv.machine.ram.clearFrame(frame);
  }

  copyFrame(dst: number, src: number): void {
    this.hv.machine.ram.copyFrame(dst, src);
  }

  commit(): void {
    if (this.queued === 0) return;
    const a = this.updateArgs;
    a.count = this.queued;
    a.pdone = 0;
    this.queued = 0;
    const rc = this.hv.hypercall(this.vcpu, __HYPERVISOR_mmu_update, a);
    if (rc !== 0) this.bug(`mmu_update of ${a.count} entries failed with ${rc}`);
  }

  private ext(cmd: number, mfn: number, va: number): void {
    this.op.cmd = cmd;
    this.op.arg1.mfn = mfn;
    this.op.arg1.linear_addr = va;
    this.extArgs.pdone = 0;
    const rc = this.hv.hypercall(this.vcpu, __HYPERVISOR_mmuext_op, this.extArgs);
    if (rc !== 0) this.bug(`mmuext_op ${cmd} failed with ${rc}`);
  }

  private bug(what: string): never {
    throw new Error(`study kernel bug on Xen PV: ${what}`);
  }

  newRoot(root: number): void {
    this.ext(MMUEXT_PIN_L4_TABLE, root, 0);
  }
  freeRoot(root: number): void {
    this.ext(MMUEXT_UNPIN_TABLE, root, 0);
  }
  loadCr3(root: number): void {
    this.ext(MMUEXT_NEW_BASEPTR, root, 0);
  }
  flushOne(va: number): void {
    this.ext(MMUEXT_INVLPG_LOCAL, 0, va);
  }
  flushAll(): void {
    this.ext(MMUEXT_TLB_FLUSH_LOCAL, 0, 0);
  }
  addHardwareCounts(out: StudyCounts): void {
    const hv = this.hv;
    const levels = tlbStats(this.pv.tlbOf(this.vcpu)).levels;
    const misses = levels[levels.length - 1].misses;
    out.tlbHits += levels[0].lookups - misses;
    out.tlbMisses += misses;
    out.walkRefs += this.pv.walkCounts.reads;
    out.hypercalls += hypercallsOf(hv);
  }
  addFlushCounts(out: StudyCounts): void {
    out.tlbFlushes += this.pv.tlbFlushCount(this.vcpu);
    // pv-mmu's flushOne invalidates the address under both PV tags (kernel and user tables).
    out.invlpg += tlbStats(this.pv.tlbOf(this.vcpu)).invlpg / 2;
  }
}

/** KVM-style nested paging: the guest stores its own entries; TLB misses walk two dimensions. */
export const nestedBackend: StudyBackend = {
  name: "nested",
  description: "nested paging (EPT/NPT): 2D walks, EPT-violation exits back guest memory",
  unsupported: noGiantGuestPages,
  plugins: (p) => [nptMmu({ hostPageSize: p.hostPageSize })],
  attach(hv, vcpu) {
    const npt: NptMmu = hv.slot("nptMmu");
    const ram = hv.machine.ram;
    return {
      mmu: npt,
      trapsThroughHypervisor: false,
      setEntry(table, index, lo, hi) {
        const rc = npt.guestStore(vcpu, table * 4096 + index * 8, lo, hi);
        if (rc !== 0) throw new Error(`study kernel bug on nested paging: guestStore ${rc}`);
      },
      commit() {},
      clearFrame: (f) => ram.clearFrame(f),
      copyFrame: (d, s) => ram.copyFrame(d, s),
      newRoot() {},
      freeRoot() {},
      loadCr3: (root) => npt.writeCr3(vcpu, root),
      flushOne: (va) => npt.flushOne(vcpu, va),
      flushAll: () => npt.flushLocal(vcpu),
      addHardwareCounts(out) {
        const c = npt.counts;
        out.tlbHits += c.tlbHits;
        out.tlbMisses += c.tlbMisses;
        out.walkRefs += c.guestRefs + c.nestedRefs;
        let exits = 0;
        for (let i = 0; i < npt.exits.length; i++) exits += npt.exits[i];
        out.vmExits += exits;
        out.hypercalls += hypercallsOf(hv);
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
  attach(hv, vcpu) {
    const sh: ShadowMmu = hv.slot("shadowMmu");
    const ram = hv.machine.ram;
    return {
      mmu: sh,
      trapsThroughHypervisor: false,
      setEntry(table, index, lo, hi) {
        const rc = sh.guestStore(vcpu, table * 4096 + index * 8, lo, hi);
        if (rc !== 0) throw new Error(`study kernel bug on shadow paging: guestStore ${rc}`);
      },
      commit() {},
      clearFrame(f) {
        if (!sh.isWriteProtected(f)) {
          ram.clearFrame(f);
          return;
        }
        // A former page table: its stores trap and zap what shadows it.
        for (let i = 0; i < 512; i++) {
          const a = f * 4096 + i * 8;
          if ((ram.read64lo(a) | ram.read64hi(a)) !== 0) sh.guestStore(vcpu, a, 0, 0);
        }
      },
      copyFrame(d, src) {
        if (!sh.isWriteProtected(d)) {
          ram.copyFrame(d, src);
          return;
        }
        for (let i = 0; i < 512; i++) {
          const a = src * 4096 + i * 8;
          sh.guestStore(vcpu, d * 4096 + i * 8, ram.read64lo(a), ram.read64hi(a));
        }
      },
      newRoot() {},
      freeRoot() {},
      loadCr3: (root) => sh.writeCr3(vcpu, root),
      flushOne: (va) => sh.flushOne(vcpu, va),
      flushAll: () => sh.flushLocal(vcpu),
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
        out.hypercalls += hypercallsOf(hv);
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

export function ramOf(hv: Hypervisor): Ram {
  return hv.machine.ram;
}
