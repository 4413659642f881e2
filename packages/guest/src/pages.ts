/*
 * The kernel's physical pages and page-table entries (Linux's mm/page_alloc.c and the
 * arch/x86 pgtable accessors): the page allocator, the pfn-to-frame step, reading entries
 * from RAM and the three ways an entry is stored.
 *
 * Invariants:
 * - A pfn is free, a page table of level ptLevel[pfn], or a user page mapped by
 *   mapcount[pfn] > 0 entries; the allocator hands out a huge page only from a block whose
 *   512 pfns are all free (blockFree[block] === 512). The free pool is a stack of pages
 *   freed since boot (a pfn is on it exactly when freePos[pfn] > 0, its index + 1) over the
 *   runs of pages boot gave and nobody has taken yet (never-used: owned[pfn] and freePos[pfn]
 *   still 0, nothing per pfn written). allocPage pops the stack, then takes the lowest
 *   never-used pfn, so a pfn's per-pfn state (and its host memory) is first written when the
 *   page is first handed out, as Linux's deferred struct page init leaves pages alone until
 *   they are needed.
 * - The kernel reads its page tables straight from RAM, but a page marked pinned[pfn] is
 *   read-only to it (Xen owns its type): it never stores to one directly, only through
 *   pv_ops or a trapping CPU store (cpuStoreEntry).
 * - The machine is reached only through the GuestPort: there is no hypervisor object here.
 * - A store the platform refuses is a kernel error (-errno, taken by the system call that
 *   made it), never a throw.
 */
import { EFAULT } from "@hyperlab/abi";
import { type MmuBackend, Stats, type Vcpu } from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import {
  HPAGE_PMD_NR,
  PAGE_OFFSET,
  PAGE_SIZE,
  PTRS_PER_TABLE,
  type TransparentHugepage,
} from "./layout";
import type { Mm } from "./mm";
import type { GuestPort } from "./port";
import { E_IOMAP, entryFrame, entryHi, entryLo } from "./pte";
import type { PvOps } from "./pv-ops";

/**
 * The page size of the per-entry paths (readEntry and the stores) as a const enum, so the
 * build writes it as a literal (a bundled module const is a `var`, loaded and checked at
 * each use in V8's optimised code); checked against layout.ts at load.
 */
const enum K {
  PAGE_SIZE = 4096,
}
if (K.PAGE_SIZE !== PAGE_SIZE)
  throw new Error("pages.ts: the const enum K disagrees with layout.ts.");

/** What the Xen PV boot learnt from start_info. */
export interface XenBootInfo {
  nrPages: number;
  /** pfn -> mfn (Linux's p2m, read from start_info.mfn_list). */
  p2m: Float64Array;
  /** mfn -> pfn for this domain's frames, -1 elsewhere. */
  m2p: Int32Array;
  /** Machine address of shared_info (start_info.shared_info). */
  sharedInfoMaddr: number;
  /** Where the kernel mapped shared_info (Linux's fixmap slot; here just past the direct map). */
  sharedInfoVa: number;
  /** start_info.flags (SIF_*). */
  flags: number;
  /** pfns of the builder's page tables (start_info.pt_base / nr_pt_frames). */
  ptBasePfn: number;
  nrPtFrames: number;
  /** Where start_info is mapped (the rsi Xen started the kernel with); a resume reads it there again. */
  startInfoVa: number;
}

export type Platform = { kind: "native"; nrPages: number } | { kind: "xen-pv"; xen: XenBootInfo };

/** Counters of the kernel, read by its "guest" stat group. */
export interface KernelCounts {
  pageFaults: number;
  demandZero: number;
  cowCopies: number;
  cowReuses: number;
  spuriousFaults: number;
  signals: number;
  forks: number;
  execs: number;
  exits: number;
  contextSwitches: number;
  ptPagesAllocated: number;
  ptPagesFreed: number;
  trappingStores: number;
  kernelErrors: number;
  /** Page-table entries the kernel wrote through pv_ops or a CPU store (a store, a trap or a request). */
  ptUpdates: number;
  /** Huge (2 MiB) pages given to a first touch. */
  thpFaults: number;
  /** Huge-page faults that fell back to 4 KiB pages (no free 2 MiB block). */
  thpFallbacks: number;
  /** PMD mappings of huge pages split into 512 PTEs (munmap, mprotect, copy on write). */
  thpSplits: number;
}

/** Physical pages and entries: the base of the kernel's layers (pages, memory, faults, tasks, system calls). */
export class KernelPages {
  /** Everything the kernel holds of the machine (see port.ts): no hypervisor object. */
  readonly port: GuestPort;
  readonly platform: Platform;
  /** Xen boot information, or null on bare metal. */
  readonly xen: XenBootInfo | null;
  readonly ram: Ram;
  /** The MMU the hardware (or the hypervisor) provides: core's `mmu` slot. */
  readonly hwMmu: MmuBackend;
  /** The kernel's own stats (its groups: "guest" and one per pv_ops plugin). */
  readonly stats = new Stats();
  readonly counts: KernelCounts = {
    pageFaults: 0,
    demandZero: 0,
    cowCopies: 0,
    cowReuses: 0,
    spuriousFaults: 0,
    signals: 0,
    forks: 0,
    execs: 0,
    exits: 0,
    contextSwitches: 0,
    ptPagesAllocated: 0,
    ptPagesFreed: 0,
    trappingStores: 0,
    kernelErrors: 0,
    ptUpdates: 0,
    thpFaults: 0,
    thpFallbacks: 0,
    thpSplits: 0,
  };
  /** The transparent_hugepage mode; see setTransparentHugepage. */
  transparentHugepage: TransparentHugepage = "never";
  /** Whether anonymous memory gets 2 MiB pages: THP "always" on a CPU with PSE. */
  hugePages = false;
  /** Size of the per-pfn arrays (native: machine frames, as pfn == mfn; Xen: nr_pages). */
  readonly nrPfns: number;
  /** Mappings of each user page (COW sharing). */
  readonly mapcount: Uint16Array;
  /** Page-table level of each page-table page (1..4), 0 otherwise. */
  readonly ptLevel: Uint8Array;
  /** PG_pinned: the page belongs to a pinned tree and is read-only to the kernel (Xen PV). */
  readonly pinned: Uint8Array;
  /** pfn of the pgd each vCPU has loaded. */
  readonly cr3Pfn: Int32Array;
  /** The mm each vCPU has loaded. */
  readonly loadedMm: (Mm | null)[];
  ops!: PvOps;
  initMm!: Mm;
  /** The first Xen errno a batched hypercall returned since it was last taken, or 0. */
  pendingError = 0;
  /** The last hypercall failure: its op (-1 for a trapped store Xen would not emulate) and errno. */
  lastXenError: { op: number; rc: number } | null = null;
  /** The MMU backend's guest-physical store entry point (nested, shadow), or null. */
  private readonly guestStore: NonNullable<MmuBackend["guestStore"]> | null;
  /** The stack of freed pfns (freeList[0 .. nrStacked - 1]). */
  private readonly freeList: Int32Array;
  /** Each stacked pfn's index in freeList plus one; 0 when not on the stack. */
  private readonly freePos: Int32Array;
  private nrStacked = 0;
  /** Never-used runs boot gave, taken from the front: [runFirst[i], runEnd[i]) for i >= runAt. */
  private readonly runFirst: number[] = [];
  private readonly runEnd: number[] = [];
  private runAt = 0;
  /** Free pfns of each 2 MiB block (pfn / 512). */
  private readonly blockFree: Uint16Array;
  /** Per PTE slot of the table being worked on: the pfn it held (zap) or was given (copy). */
  protected readonly scratchPfns = new Int32Array(PTRS_PER_TABLE);
  private nrFree = 0;
  private readonly owned: Uint8Array;
  private nrPages = 0;
  protected nextMmId = 0;

  constructor(port: GuestPort, platform: Platform) {
    this.port = port;
    this.ram = port.ram;
    this.hwMmu = port.cpu;
    this.guestStore = this.hwMmu.guestStore ?? null;
    this.platform = platform;
    this.xen = platform.kind === "xen-pv" ? platform.xen : null;
    this.nrPfns = this.xen !== null ? this.xen.nrPages : this.ram.nrFrames;
    this.mapcount = new Uint16Array(this.nrPfns);
    this.ptLevel = new Uint8Array(this.nrPfns);
    this.pinned = new Uint8Array(this.nrPfns);
    this.owned = new Uint8Array(this.nrPfns);
    this.freeList = new Int32Array(this.nrPfns);
    this.freePos = new Int32Array(this.nrPfns);
    this.blockFree = new Uint16Array(Math.ceil(this.nrPfns / HPAGE_PMD_NR));
    this.cr3Pfn = new Int32Array(port.vcpus.length).fill(-1);
    this.loadedMm = new Array(port.vcpus.length).fill(null);
    const g = this.stats.group("guest");
    const c = this.counts;
    const gauge = (name: keyof KernelCounts, unit: string, what: string) =>
      g.gauge(name, unit, what, () => c[name]);
    gauge("pageFaults", "faults", "page faults taken by user accesses");
    gauge("demandZero", "pages", "pages given to a first touch");
    gauge("cowCopies", "pages", "copy-on-write faults that copied the page");
    gauge("cowReuses", "pages", "copy-on-write faults that reused the only mapping");
    gauge("spuriousFaults", "faults", "faults fixed by flushing a stale TLB entry");
    gauge("signals", "signals", "signals delivered (SIGSEGV, SIGKILL on out of memory)");
    gauge("forks", "calls", "fork() calls that made a child");
    gauge("execs", "calls", "exec() calls");
    gauge("exits", "processes", "processes that exited or were killed");
    gauge("contextSwitches", "switches", "address-space switches (CR3 loads)");
    gauge("ptPagesAllocated", "pages", "page-table pages allocated");
    gauge("ptPagesFreed", "pages", "page-table pages freed");
    gauge("trappingStores", "stores", "CPU stores to read-only page tables (trap and emulate)");
    gauge("kernelErrors", "errors", "hypercalls that failed (their errno went to the caller)");
    gauge("ptUpdates", "entries", "page-table entries written through pv_ops or a CPU store");
    gauge("thpFaults", "pages", "huge pages given to a first touch");
    gauge("thpFallbacks", "faults", "huge-page faults that fell back to 4 KiB pages");
    gauge("thpSplits", "mappings", "huge-page PMD mappings split into PTEs");
    g.gauge("freePages", "pages", "pages in the kernel's free pool", () => this.nrFree);
  }

  /** Gives a pfn to the page allocator (boot only): it is handed out before any never-used run. */
  addFreePage(pfn: number): void {
    if (this.owned[pfn] === 0) {
      this.owned[pfn] = 1;
      this.nrPages++;
    }
    this.pushFree(pfn);
  }

  /**
   * Gives the never-used pfns [first, first + count) to the page allocator (boot only), none
   * of them given before: handed out lowest first, after the runs given earlier. Writes
   * nothing per pfn (only the counts of the 2 MiB blocks it covers).
   */
  addFreeRun(first: number, count: number): void {
    if (count <= 0) return;
    const end = first + count;
    for (let p = first; p < end; ) {
      const b = Math.floor(p / HPAGE_PMD_NR);
      const next = Math.min(end, (b + 1) * HPAGE_PMD_NR);
      this.blockFree[b] += next - p;
      p = next;
    }
    const last = this.runEnd.length - 1;
    if (last >= this.runAt && this.runEnd[last] === first) this.runEnd[last] = end;
    else {
      this.runFirst.push(first);
      this.runEnd.push(end);
    }
    this.nrFree += count;
    this.nrPages += count;
  }

  private pushFree(pfn: number): void {
    this.freeList[this.nrStacked++] = pfn;
    this.freePos[pfn] = this.nrStacked;
    this.nrFree++;
    this.blockFree[Math.floor(pfn / HPAGE_PMD_NR)]++;
  }

  /** Takes a stacked free pfn off the stack wherever it is (swap with the last). */
  private takeStacked(pfn: number): void {
    const at = this.freePos[pfn] - 1;
    const last = this.freeList[--this.nrStacked];
    if (at !== this.nrStacked) {
      this.freeList[at] = last;
      this.freePos[last] = at + 1;
    }
    this.freePos[pfn] = 0;
    this.nrFree--;
    this.blockFree[Math.floor(pfn / HPAGE_PMD_NR)]--;
  }

  /** The lowest never-used pfn, now owned and handed out; -1 when none is left. */
  private takeNeverUsed(): number {
    if (this.runAt >= this.runFirst.length) return -1;
    const pfn = this.runFirst[this.runAt];
    if (pfn + 1 === this.runEnd[this.runAt]) this.runAt++;
    else this.runFirst[this.runAt] = pfn + 1;
    this.owned[pfn] = 1;
    this.nrFree--;
    this.blockFree[Math.floor(pfn / HPAGE_PMD_NR)]--;
    return pfn;
  }

  /** Takes the never-used pfns in [lo, hi) out of their runs, marking them owned. */
  private takeNeverUsedIn(lo: number, hi: number): void {
    for (let i = this.runAt; i < this.runFirst.length; i++) {
      const a = Math.max(lo, this.runFirst[i]);
      const b = Math.min(hi, this.runEnd[i]);
      if (a >= b) continue;
      for (let p = a; p < b; p++) this.owned[p] = 1;
      this.nrFree -= b - a;
      this.blockFree[Math.floor(a / HPAGE_PMD_NR)] -= b - a;
      const first = this.runFirst[i];
      const end = this.runEnd[i];
      // What is left of the run: below a, at or above b (in order).
      const parts: number[] = [];
      if (first < a) parts.push(first, a);
      if (b < end) parts.push(b, end);
      const firsts = [];
      const ends = [];
      for (let j = 0; j < parts.length; j += 2) {
        firsts.push(parts[j]);
        ends.push(parts[j + 1]);
      }
      this.runFirst.splice(i, 1, ...firsts);
      this.runEnd.splice(i, 1, ...ends);
      i += firsts.length - 1;
    }
  }

  /** Marks a pfn as the kernel's without making it free (boot-reserved). */
  reservePage(pfn: number): void {
    if (this.owned[pfn] === 0) {
      this.owned[pfn] = 1;
      this.nrPages++;
    }
  }

  /**
   * The allocator's state for a suspend record (suspend.ts): the pfns this kernel does not own,
   * the stack of freed pfns in its order (allocPage takes from the end), the never-used runs
   * still to hand out ([first, end), in order), and the next mm id.
   */
  allocatorState(): {
    unowned: number[];
    free: number[];
    runs: [number, number][];
    nextMmId: number;
  } {
    const runs: [number, number][] = [];
    const inRun = new Uint8Array(this.nrPfns);
    for (let i = this.runAt; i < this.runFirst.length; i++) {
      runs.push([this.runFirst[i], this.runEnd[i]]);
      inRun.fill(1, this.runFirst[i], this.runEnd[i]);
    }
    const unowned: number[] = [];
    for (let pfn = 0; pfn < this.nrPfns; pfn++)
      if (this.owned[pfn] === 0 && inRun[pfn] === 0) unowned.push(pfn);
    return {
      unowned,
      free: Array.from(this.freeList.subarray(0, this.nrStacked)),
      runs,
      nextMmId: this.nextMmId,
    };
  }

  /**
   * Resume: the allocator as a suspend record left it, on a kernel fresh from its constructor.
   * The caller has checked the pfns (in range, distinct, free ones owned and not tables, runs
   * disjoint from everything else).
   */
  restoreAllocatorState(
    unowned: Uint8Array,
    free: readonly number[],
    runs: readonly (readonly [number, number])[],
    nextMmId: number,
  ): void {
    const inRun = new Uint8Array(this.nrPfns);
    for (const [a, b] of runs) inRun.fill(1, a, b);
    for (let pfn = 0; pfn < this.nrPfns; pfn++)
      if (unowned[pfn] === 0 && inRun[pfn] === 0) this.reservePage(pfn);
    for (const [a, b] of runs) this.addFreeRun(a, b - a);
    for (const pfn of free) this.pushFree(pfn);
    this.nextMmId = nextMmId;
  }

  get freePages(): number {
    return this.nrFree;
  }

  get totalPages(): number {
    return this.nrPages;
  }

  /** A free pfn (the last freed, else the lowest never used), or -1 when memory is exhausted. */
  allocPage(): number {
    if (this.nrStacked === 0) return this.takeNeverUsed();
    const pfn = this.freeList[--this.nrStacked];
    this.freePos[pfn] = 0;
    this.nrFree--;
    this.blockFree[Math.floor(pfn / HPAGE_PMD_NR)]--;
    return pfn;
  }

  /**
   * The first pfn of 512 free, contiguous pfns of one 2 MiB-aligned block (the highest such
   * block, so huge pages and the 4 KiB pages handed out lowest first meet late), or -1.
   */
  allocHugePage(): number {
    for (let b = this.blockFree.length - 1; b >= 0; b--) {
      if (this.blockFree[b] !== HPAGE_PMD_NR) continue;
      const head = b * HPAGE_PMD_NR;
      for (let i = 0; i < HPAGE_PMD_NR; i++) {
        if (this.freePos[head + i] !== 0) this.takeStacked(head + i);
      }
      if (this.blockFree[b] !== 0) this.takeNeverUsedIn(head, head + HPAGE_PMD_NR);
      return head;
    }
    return -1;
  }

  freePage(pfn: number): void {
    if (this.owned[pfn] === 0 || this.ptLevel[pfn] !== 0 || this.pinned[pfn] !== 0) {
      throw new Error(
        `guest kernel: freeing pfn ${pfn} that is not a free-able page of this kernel`,
      );
    }
    this.mapcount[pfn] = 0;
    this.pushFree(pfn);
  }

  /** The frame a pfn's page is in (native: the same number; Xen: through the P2M). */
  frameOf(pfn: number): number {
    return this.xen !== null ? this.xen.p2m[pfn] : pfn;
  }

  /** The kernel's direct-map address of a pfn. */
  physVa(pfn: number): number {
    return PAGE_OFFSET + pfn * PAGE_SIZE;
  }

  clearPage(pfn: number): void {
    this.ram.clearFrame(this.frameOf(pfn));
  }

  copyPage(dst: number, src: number): void {
    this.ram.copyFrame(this.frameOf(dst), this.frameOf(src));
  }

  /** Entry `index` of table page `pfn`, read straight from RAM. */
  readEntry(pfn: number, index: number): number {
    return this.ram.read64(this.frameOf(pfn) * K.PAGE_SIZE + index * 8);
  }

  /** An entry naming `pfn` with `flags` (pv_ops.mmu.makePte: the frame a Xen entry names is the mfn). */
  makeEntry(pfn: number, flags: number): number {
    return this.ops.mmu.makePte(pfn, flags);
  }

  /** The pfn an entry names, or -1 (an I/O entry, _PAGE_IOMAP, names no page of this kernel). */
  entryPfn(entry: number): number {
    if ((entry & E_IOMAP) !== 0) return -1;
    return this.ops.mmu.frameToPfn(entryFrame(entry));
  }

  /** A plain store to a page the kernel may write (not pinned): on any platform, a RAM write. */
  rawStore(pfn: number, index: number, entry: number): void {
    if (this.pinned[pfn] !== 0) {
      throw new Error(`guest kernel: plain store to pinned page-table page ${pfn}`);
    }
    this.ram.write64(this.frameOf(pfn) * K.PAGE_SIZE + index * 8, entryLo(entry), entryHi(entry));
  }

  /**
   * A plain store into a page-table page the kernel may write (`*ptep = val` on a table that
   * is not read-only to it). On a backend that intercepts page-table stores (nested or shadow
   * paging: their `guestStore` entry point, a store at a guest-physical address) it goes
   * there, so a shadowing host sees it; elsewhere it is a RAM store. A store the platform
   * refuses is a kernel error (-errno), never a throw.
   */
  tableStore(pfn: number, index: number, entry: number): void {
    const gs = this.guestStore;
    if (gs === null) {
      this.rawStore(pfn, index, entry);
      return;
    }
    if (this.pinned[pfn] !== 0) {
      throw new Error(`guest kernel: plain store to pinned page-table page ${pfn}`);
    }
    const rc = gs.call(
      this.hwMmu,
      this.vcpu(0),
      this.frameOf(pfn) * K.PAGE_SIZE + index * 8,
      entryLo(entry),
      entryHi(entry),
    );
    if (rc < 0) this.kernelError(-1, rc);
  }

  /** Zeroes a page about to become a page table (through tableStore where that matters). */
  clearTablePage(pfn: number): void {
    if (this.guestStore === null) {
      this.clearPage(pfn);
      return;
    }
    for (let i = 0; i < PTRS_PER_TABLE; i++)
      if (this.readEntry(pfn, i) !== 0) this.tableStore(pfn, i, 0);
  }

  /**
   * A CPU store into a page-table page through the direct map, as `*ptep = val` compiles
   * to. On a pinned (read-only) page it faults; under Xen PV the hypervisor emulates it
   * (ptwr) and the store takes effect, validated. False if it did not take effect.
   */
  cpuStoreEntry(pfn: number, index: number, entry: number): boolean {
    this.counts.ptUpdates++;
    if (this.pinned[pfn] === 0) {
      this.tableStore(pfn, index, entry);
      return true;
    }
    this.counts.trappingStores++;
    const v = this.vcpu(0);
    const va = this.physVa(pfn) + index * 8;
    const lo = entryLo(entry);
    const hi = entryHi(entry);
    const m = this.hwMmu;
    let ok: boolean;
    if (typeof m.write64 === "function") {
      ok = m.write64(v, va, lo, hi);
    } else {
      const ma = m.translate(v, va, 2);
      ok = ma >= 0;
      if (ok) this.ram.write64(ma, lo, hi);
    }
    if (!ok) this.kernelError(-1, -EFAULT);
    return ok;
  }

  /** Records a failed hypercall: the errno goes to the system call that is running. */
  kernelError(op: number, rc: number): void {
    this.counts.kernelErrors++;
    this.lastXenError = { op, rc };
    if (this.pendingError === 0) this.pendingError = rc;
  }

  /** Takes the pending hypercall error (0 if none). */
  takeError(): number {
    const rc = this.pendingError;
    this.pendingError = 0;
    return rc;
  }

  vcpu(index: number): Vcpu {
    return this.port.vcpus[index];
  }
}
