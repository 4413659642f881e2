/*
 * The guest kernel: a physical page allocator, address spaces, the page-fault handler,
 * fork/exec/exit and the memory system calls, on top of pv_ops.
 *
 * Invariants:
 * - The kernel reads its page tables straight from RAM, but every write to a page table,
 *   every CR3 load and every TLB flush goes through pv_ops (this.ops), so the same code runs
 *   on bare metal and on Xen PV.
 * - A pfn is free, a page table of level ptLevel[pfn], or a user page mapped by
 *   mapcount[pfn] > 0 entries; a user page returns to the allocator when its last mapping
 *   goes. A huge page is 512 contiguous pfns from a 2 MiB-aligned block, each counted on its
 *   own (a PMD mapping counts once on every one of them), so splitting a PMD into PTEs keeps
 *   the counts and the pages go back one by one; the allocator hands out a huge page only
 *   from a block whose 512 pfns are all free (blockFree[block] === 512).
 * - A PSE (2 MiB) entry in a PMD lies wholly inside one area, is present, and maps a
 *   2 MiB-aligned huge page; a system call that cuts an area inside one splits it first. A page marked pinned[pfn] is read-only to this kernel (Xen owns its type): the
 *   kernel never stores to it directly, only through pv_ops or a trapping CPU store.
 * - Every process has its own mm; each mm's tables share the kernel half (L4 slots from
 *   KERNEL_PGD_FIRST up) with the init mm. Exit tears an mm down completely: afterwards none
 *   of its pages, tables or pins remain.
 * - Nothing a user program does throws: bad addresses are SIGSEGV, bad arguments -errno,
 *   hypercall failures the Xen errno of the failing call.
 */
import { EFAULT, EINVAL, ENOMEM } from "@hyperlab/abi";
import {
  type Domain,
  HyperlabError,
  type Hypervisor,
  type MmuBackend,
  Stats,
  type Vcpu,
} from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import type { XenEvtchnGuest } from "./events";
import {
  HPAGE_PMD_NR,
  HPAGE_SIZE,
  KERNEL_PGD_FIRST,
  PAGE_OFFSET,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  PT_PMD,
  PT_PTE,
  PT_PUD,
  PTRS_PER_TABLE,
  SIGKILL,
  SIGSEGV,
  STACK_PAGES,
  STACK_TOP,
  TLB_SINGLE_PAGE_FLUSH_CEILING,
  type TransparentHugepage,
  USER_PGD_SLOTS,
  USER_VA_END,
  X86_FEATURE_PSE,
} from "./layout";
import { Mm, pageAlignUp } from "./mm";
import type { Process } from "./process";
import type { PvOps } from "./pv-ops";

const TWO_32 = 0x1_0000_0000;
export const E_PRESENT = 0x001;
export const E_RW = 0x002;
export const E_USER = 0x004;
export const E_ACCESSED = 0x020;
export const E_DIRTY = 0x040;
/** Page-size bit of a PMD entry: the entry maps a 2 MiB page (Linux's _PAGE_PSE). */
export const E_PSE = 0x080;
/** Linux's _PAGE_PROTNONE (the global bit of a non-present PTE): a PROT_NONE page, still the process's. */
export const E_PROTNONE = 0x100;
/** A PTE that holds a page: present, or PROT_NONE (pte_present in Linux's sense). */
export const E_HOLDS_PAGE = E_PRESENT | E_PROTNONE;
/** Bits 12..51 of an entry: the frame (above them Xen and the CPU keep flags, e.g. NX). */
const FRAME_LIMIT = 2 ** 40;
/** Linux's _PAGE_TABLE: what an upper-level entry of a user table holds. */
export const PAGE_TABLE = E_PRESENT | E_RW | E_USER | E_ACCESSED | E_DIRTY;
/** Linux's _KERNPG_TABLE and PAGE_KERNEL (without NX and GLOBAL, which the model leaves out). */
export const KERNPG_TABLE = E_PRESENT | E_RW | E_ACCESSED | E_DIRTY;
export const PAGE_KERNEL = KERNPG_TABLE;
export const PAGE_KERNEL_RO = E_PRESENT | E_ACCESSED | E_DIRTY;

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

/** handleFault's huge path declined: map a 4 KiB page instead. */
const FALLBACK = -1;

export class GuestKernel {
  readonly hv: Hypervisor;
  readonly domain: Domain;
  readonly ram: Ram;
  /** The MMU the hardware (or the hypervisor) provides: core's `mmu` slot. */
  readonly hwMmu: MmuBackend;
  readonly platform: Platform;
  /**
   * Event channels on Xen PV (Linux's drivers/xen/events): the evtchn-to-irq table, binding,
   * IPIs and the upcall handler; null on bare metal, nested and shadow paging.
   */
  events: XenEvtchnGuest | null = null;
  /** Xen boot information, or null on bare metal. */
  readonly xen: XenBootInfo | null;
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
  /** Which plugin fills each pv_ops group ("native" for a default), in setup order. */
  composition: { plugins: string[]; pvOps: Record<string, string> } = { plugins: [], pvOps: {} };
  initMm!: Mm;
  /** The first Xen errno a batched hypercall returned since it was last taken, or 0. */
  pendingError = 0;
  /** The last hypercall failure: its op (-1 for a trapped store Xen would not emulate) and errno. */
  lastXenError: { op: number; rc: number } | null = null;
  /** The MMU backend's guest-physical store entry point (nested, shadow), or null. */
  private readonly guestStore: NonNullable<MmuBackend["guestStore"]> | null;
  private readonly freeList: Int32Array;
  /** Each free pfn's index in freeList, or -1. */
  private readonly freePos: Int32Array;
  /** Free pfns of each 2 MiB block (pfn / 512). */
  private readonly blockFree: Uint16Array;
  /** Per PTE slot of the table being worked on: the pfn it held (zap) or was given (copy). */
  private readonly scratchPfns = new Int32Array(PTRS_PER_TABLE);
  private nrFree = 0;
  private readonly owned: Uint8Array;
  private nrPages = 0;
  private nextMmId = 0;
  private nextPid = 1;
  readonly processes = new Map<number, Process>();

  constructor(hv: Hypervisor, domain: Domain, platform: Platform) {
    this.hv = hv;
    this.domain = domain;
    this.ram = hv.machine.ram;
    this.hwMmu = hv.slot("mmu");
    this.guestStore = this.hwMmu.guestStore ?? null;
    this.platform = platform;
    this.xen = platform.kind === "xen-pv" ? platform.xen : null;
    this.nrPfns = this.xen !== null ? this.xen.nrPages : this.ram.nrFrames;
    this.mapcount = new Uint16Array(this.nrPfns);
    this.ptLevel = new Uint8Array(this.nrPfns);
    this.pinned = new Uint8Array(this.nrPfns);
    this.owned = new Uint8Array(this.nrPfns);
    this.freeList = new Int32Array(this.nrPfns);
    this.freePos = new Int32Array(this.nrPfns).fill(-1);
    this.blockFree = new Uint16Array(Math.ceil(this.nrPfns / HPAGE_PMD_NR));
    this.cr3Pfn = new Int32Array(domain.vcpus.length).fill(-1);
    this.loadedMm = new Array(domain.vcpus.length).fill(null);
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

  // ---- physical pages ----

  /** Gives a pfn to the page allocator (boot only). */
  addFreePage(pfn: number): void {
    if (this.owned[pfn] === 0) {
      this.owned[pfn] = 1;
      this.nrPages++;
    }
    this.pushFree(pfn);
  }

  private pushFree(pfn: number): void {
    this.freePos[pfn] = this.nrFree;
    this.freeList[this.nrFree++] = pfn;
    this.blockFree[Math.floor(pfn / HPAGE_PMD_NR)]++;
  }

  /** Takes a free pfn out of the free list wherever it is (swap with the last). */
  private takeFree(pfn: number): void {
    const at = this.freePos[pfn];
    const last = this.freeList[--this.nrFree];
    if (at !== this.nrFree) {
      this.freeList[at] = last;
      this.freePos[last] = at;
    }
    this.freePos[pfn] = -1;
    this.blockFree[Math.floor(pfn / HPAGE_PMD_NR)]--;
  }

  /** Marks a pfn as the kernel's without making it free (boot-reserved). */
  reservePage(pfn: number): void {
    if (this.owned[pfn] === 0) {
      this.owned[pfn] = 1;
      this.nrPages++;
    }
  }

  get freePages(): number {
    return this.nrFree;
  }

  get totalPages(): number {
    return this.nrPages;
  }

  /** A free pfn, or -1 when memory is exhausted. */
  allocPage(): number {
    if (this.nrFree === 0) return -1;
    const pfn = this.freeList[--this.nrFree];
    this.freePos[pfn] = -1;
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
      for (let i = 0; i < HPAGE_PMD_NR; i++) this.takeFree(head + i);
      return head;
    }
    return -1;
  }

  /**
   * Sets the transparent_hugepage mode (boot option, or later as the sysfs knob): "always"
   * gives 2 MiB pages where the CPU has PSE (CPUID leaf 1 through pv_ops.cpu; a Xen PV
   * guest has none, so it keeps 4 KiB pages). Throws HyperlabError on an unknown mode.
   */
  setTransparentHugepage(mode: TransparentHugepage): void {
    if (mode !== "always" && mode !== "never") {
      throw new HyperlabError(
        "GUEST_BAD_THP",
        `transparentHugepage must be "always" or "never", got ${JSON.stringify(mode)}.`,
      );
    }
    this.transparentHugepage = mode;
    this.hugePages = false;
    if (mode === "never") return;
    const out = new Uint32Array(4);
    this.ops.cpu.cpuid(1, out);
    this.hugePages = (out[3] & (1 << X86_FEATURE_PSE)) !== 0;
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

  // ---- page-table entries ----

  /** Entry `index` of table page `pfn`, read straight from RAM. */
  readEntry(pfn: number, index: number): number {
    return this.ram.read64(this.frameOf(pfn) * PAGE_SIZE + index * 8);
  }

  /** An entry naming `pfn` with `flags` (through pv_ops: the frame a Xen entry names is the mfn). */
  makeEntry(pfn: number, flags: number): number {
    return this.ops.mmu.pfnToFrame(pfn) * PAGE_SIZE + flags;
  }

  /** The pfn an entry names, or -1. */
  entryPfn(entry: number): number {
    return this.ops.mmu.frameToPfn(Math.floor(entry / PAGE_SIZE) % FRAME_LIMIT);
  }

  /** A plain store to a page the kernel may write (not pinned): on any platform, a RAM write. */
  rawStore(pfn: number, index: number, entry: number): void {
    if (this.pinned[pfn] !== 0) {
      throw new Error(`guest kernel: plain store to pinned page-table page ${pfn}`);
    }
    this.ram.write64(
      this.frameOf(pfn) * PAGE_SIZE + index * 8,
      entry % TWO_32,
      Math.floor(entry / TWO_32),
    );
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
      this.frameOf(pfn) * PAGE_SIZE + index * 8,
      entry % TWO_32,
      Math.floor(entry / TWO_32),
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
    const lo = entry % TWO_32;
    const hi = Math.floor(entry / TWO_32);
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
    return this.domain.vcpus[index];
  }

  // ---- address spaces ----

  /** A new address space: a pgd with the kernel half of the init mm. null when out of memory. */
  mmAlloc(): Mm | null {
    const pgd = this.allocPage();
    if (pgd < 0) return null;
    this.clearTablePage(pgd);
    this.ptLevel[pgd] = 4;
    this.counts.ptPagesAllocated++;
    const mm = new Mm(++this.nextMmId, pgd);
    // pgd_ctor: the kernel half is copied with plain stores (the new pgd is not pinned yet).
    if (this.initMm !== undefined) {
      for (let i = KERNEL_PGD_FIRST; i < PTRS_PER_TABLE; i++) {
        const e = this.readEntry(this.initMm.pgd, i);
        if (e !== 0) this.tableStore(pgd, i, e);
      }
    }
    if (this.ops.mmu.pgdAlloc(mm) !== 0) {
      this.ptLevel[pgd] = 0;
      this.freePage(pgd);
      this.counts.ptPagesFreed++;
      return null;
    }
    return mm;
  }

  /** Allocates a page-table page of `level` for `mm`, announced through pv_ops. -1 when out of memory. */
  private allocTable(mm: Mm, level: number): number {
    const pfn = this.allocPage();
    if (pfn < 0) return -1;
    this.clearTablePage(pfn);
    this.ptLevel[pfn] = level;
    this.counts.ptPagesAllocated++;
    const m = this.ops.mmu;
    if (level === PT_PTE) m.allocPte(mm, pfn);
    else if (level === PT_PMD) m.allocPmd(mm, pfn);
    else m.allocPud(mm, pfn);
    return pfn;
  }

  private releaseTable(pfn: number): void {
    const level = this.ptLevel[pfn];
    const m = this.ops.mmu;
    if (level === PT_PTE) m.releasePte(pfn);
    else if (level === PT_PMD) m.releasePmd(pfn);
    else m.releasePud(pfn);
    this.ptLevel[pfn] = 0;
    this.pinned[pfn] = 0;
    this.freePage(pfn);
    this.counts.ptPagesFreed++;
  }

  /**
   * The PMD page covering `va` in `mm`: allocates the missing levels when `alloc` (pud_alloc,
   * pmd_alloc). -1 if absent (or out of memory when allocating).
   */
  pmdPage(mm: Mm, va: number, alloc: boolean): number {
    const m = this.ops.mmu;
    const i4 = Math.floor(va / 2 ** 39) % 512;
    let e = this.readEntry(mm.pgd, i4);
    let pud: number;
    if ((e & E_PRESENT) === 0) {
      if (!alloc) return -1;
      pud = this.allocTable(mm, PT_PUD);
      if (pud < 0) return -1;
      m.setP4d(mm, i4, this.makeEntry(pud, PAGE_TABLE));
      this.counts.ptUpdates++;
    } else pud = this.entryPfn(e);
    const i3 = Math.floor(va / 2 ** 30) % 512;
    e = this.readEntry(pud, i3);
    if ((e & E_PRESENT) !== 0) return this.entryPfn(e);
    if (!alloc) return -1;
    const pmd = this.allocTable(mm, PT_PMD);
    if (pmd < 0) return -1;
    m.setPud(mm, pud, i3, this.makeEntry(pmd, PAGE_TABLE));
    this.counts.ptUpdates++;
    return pmd;
  }

  /**
   * The PTE page mapping `va` in `mm`: allocates the missing levels when `alloc` (pud_alloc,
   * pmd_alloc, pte_alloc). -1 if absent, mapped by a huge PMD, or out of memory.
   */
  ptePage(mm: Mm, va: number, alloc: boolean): number {
    const pmd = this.pmdPage(mm, va, alloc);
    if (pmd < 0) return -1;
    const i2 = Math.floor(va / 2 ** 21) % 512;
    const e = this.readEntry(pmd, i2);
    if ((e & E_PRESENT) !== 0) return (e & E_PSE) !== 0 ? -1 : this.entryPfn(e);
    if (!alloc) return -1;
    const pte = this.allocTable(mm, PT_PTE);
    if (pte < 0) return -1;
    this.ops.mmu.setPmd(mm, pmd, i2, this.makeEntry(pte, PAGE_TABLE));
    this.counts.ptUpdates++;
    return pte;
  }

  /**
   * Calls `fn(ptePfn, tableVa)` for every PTE page of `mm` that maps part of [start, end),
   * in address order.
   */
  forEachPtePage(
    mm: Mm,
    start: number,
    end: number,
    fn: (pte: number, tableVa: number) => void,
    huge?: (pmd: number, index: number, hugeVa: number) => void,
  ) {
    const S4 = 2 ** 39;
    const S3 = 2 ** 30;
    const S2 = 2 ** 21;
    for (let a4 = Math.floor(start / S4) * S4; a4 < end; a4 += S4) {
      const e4 = this.readEntry(mm.pgd, (a4 / S4) % 512);
      if ((e4 & E_PRESENT) === 0) continue;
      const pud = this.entryPfn(e4);
      for (let a3 = Math.max(a4, Math.floor(start / S3) * S3); a3 < end && a3 < a4 + S4; a3 += S3) {
        const e3 = this.readEntry(pud, (a3 / S3) % 512);
        if ((e3 & E_PRESENT) === 0) continue;
        const pmd = this.entryPfn(e3);
        for (
          let a2 = Math.max(a3, Math.floor(start / S2) * S2);
          a2 < end && a2 < a3 + S3;
          a2 += S2
        ) {
          const e2 = this.readEntry(pmd, (a2 / S2) % 512);
          if ((e2 & E_PRESENT) === 0) continue;
          if ((e2 & E_PSE) !== 0) {
            if (huge !== undefined) huge(pmd, (a2 / S2) % 512, a2);
            continue;
          }
          fn(this.entryPfn(e2), a2);
        }
      }
    }
  }

  /** Loads `mm` on vCPU `vi` (switch_mm). */
  switchMm(vi: number, mm: Mm): void {
    if (this.loadedMm[vi] === mm) return;
    this.ops.mmu.writeCr3(vi, mm);
    this.loadedMm[vi] = mm;
    this.cr3Pfn[vi] = mm.pgd;
    this.counts.contextSwitches++;
  }

  /** Flushes `mm`'s range from the TLBs that may hold it (flush_tlb_mm_range). */
  flushRange(mm: Mm, start: number, end: number): void {
    const m = this.ops.mmu;
    const others: number[] = [];
    for (let vi = 0; vi < this.loadedMm.length; vi++) {
      if (this.loadedMm[vi] !== mm) continue;
      if (vi !== 0) {
        others.push(vi);
        continue;
      }
      const pages = (end - start) / PAGE_SIZE;
      if (pages <= TLB_SINGLE_PAGE_FLUSH_CEILING) {
        for (let va = start; va < end; va += PAGE_SIZE) m.flushTlbOneUser(0, va);
      } else m.flushTlbUser(0);
    }
    if (others.length > 0) m.flushTlbMulti(others, mm, start, end);
  }

  /** The PTE flags of a user page with `prot`; writable only when the page is not shared. */
  pteFlags(prot: number, exclusive: boolean): number {
    if ((prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) === 0) return E_PROTNONE;
    return E_PRESENT | E_USER | ((prot & PROT_WRITE) !== 0 && exclusive ? E_RW : 0);
  }

  /** Drops one mapping of a user page; frees it with the last. */
  putUserPage(pfn: number): void {
    const n = this.mapcount[pfn] - 1;
    this.mapcount[pfn] = n;
    if (n === 0) this.freePage(pfn);
  }

  /**
   * The page-fault handler (do_user_addr_fault + handle_mm_fault for anonymous memory).
   * Returns 0 when the fault is fixed (retry the access), or the signal to deliver.
   */
  handleFault(mm: Mm, va: number, write: boolean): number {
    this.counts.pageFaults++;
    const vma = mm.findVma(va);
    if (vma === undefined) return SIGSEGV;
    const prot = vma.prot;
    if (write ? (prot & PROT_WRITE) === 0 : (prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) === 0)
      return SIGSEGV;
    // The PMD half runs once huge pages are on, or were (their PMDs may still be there).
    if (this.hugePages || this.counts.thpFaults > 0) {
      const base = Math.floor(va / HPAGE_SIZE) * HPAGE_SIZE;
      const sig = this.hugeFault(mm, va, base, prot, write, vma.start, vma.end);
      if (sig !== FALLBACK) return this.takeError() !== 0 ? SIGKILL : sig;
    }
    const pt = this.ptePage(mm, va, true);
    if (pt < 0) return SIGKILL; // out of memory: the OOM killer picks the faulting task
    const m = this.ops.mmu;
    const i = Math.floor(va / PAGE_SIZE) % 512;
    const e = this.readEntry(pt, i);
    if ((e & E_HOLDS_PAGE) === E_PROTNONE) {
      // A PROT_NONE entry the area now allows (its protections changed without a PTE pass).
      const pfn = this.entryPfn(e);
      if (pfn < 0) return SIGSEGV;
      m.setPteAt(
        mm,
        va,
        pt,
        i,
        this.makeEntry(pfn, this.pteFlags(prot, this.mapcount[pfn] === 1)),
        true,
      );
      this.counts.ptUpdates++;
      this.counts.spuriousFaults++;
    } else if ((e & E_PRESENT) === 0) {
      const pfn = this.allocPage();
      if (pfn < 0) return SIGKILL;
      this.clearPage(pfn);
      this.mapcount[pfn] = 1;
      m.setPteAt(mm, va, pt, i, this.makeEntry(pfn, this.pteFlags(prot, true)), false);
      this.counts.ptUpdates++;
      if (this.entryPfn(this.readEntry(pt, i)) !== pfn) {
        this.freePage(pfn); // Xen refused the entry: the page was never mapped
      }
      this.counts.demandZero++;
    } else if (write && (e & E_RW) === 0) {
      const old = this.entryPfn(e);
      if (old < 0) return SIGSEGV;
      if (this.mapcount[old] === 1) {
        // wp_page_reuse: the only mapping; make it writable in place (and drop the stale entry).
        m.setPteAt(mm, va, pt, i, e + E_RW, true);
        this.counts.ptUpdates++;
        this.counts.cowReuses++;
      } else {
        // wp_page_copy: copy, then replace the entry and flush the address in one step
        // (x86 needs no break-before-make).
        const pfn = this.allocPage();
        if (pfn < 0) return SIGKILL;
        this.copyPage(pfn, old);
        this.mapcount[pfn] = 1;
        m.setPteAt(mm, va, pt, i, this.makeEntry(pfn, this.pteFlags(prot, true)), true);
        this.counts.ptUpdates++;
        const now = this.readEntry(pt, i);
        if ((now & E_HOLDS_PAGE) === 0 || this.entryPfn(now) !== old) this.putUserPage(old);
        if ((now & E_HOLDS_PAGE) === 0 || this.entryPfn(now) !== pfn) this.freePage(pfn);
        this.counts.cowCopies++;
      }
    } else {
      // The tables allow the access: a stale TLB entry. Flush it and retry.
      m.flushTlbOneUser(0, va);
      this.counts.spuriousFaults++;
    }
    if (this.pendingError !== 0) {
      this.takeError();
      return SIGKILL;
    }
    return 0;
  }

  /**
   * The PMD half of the fault handler: a huge PMD that is there (copy on write, or a stale
   * TLB entry), or a new huge page for an empty, THP-eligible PMD (do_huge_pmd_anonymous_page).
   * FALLBACK when a 4 KiB page should be mapped instead.
   */
  private hugeFault(
    mm: Mm,
    va: number,
    base: number,
    prot: number,
    write: boolean,
    vmaStart: number,
    vmaEnd: number,
  ): number {
    const m = this.ops.mmu;
    const eligible = this.hugePages && base >= vmaStart && base + HPAGE_SIZE <= vmaEnd;
    const pmd = this.pmdPage(mm, va, eligible);
    if (pmd < 0) return eligible ? SIGKILL : FALLBACK;
    const i2 = Math.floor(va / HPAGE_SIZE) % 512;
    const e = this.readEntry(pmd, i2);
    if ((e & E_PRESENT) !== 0) {
      if ((e & E_PSE) === 0) return FALLBACK;
      const head = this.entryPfn(e);
      if (head < 0) return SIGSEGV;
      if (!write || (e & E_RW) !== 0) {
        // The tables allow the access: a stale TLB entry.
        m.flushTlbOneUser(0, va);
        this.counts.spuriousFaults++;
        return 0;
      }
      if (this.hugeExclusive(head)) {
        // Reuse: the only mapping of every subpage; writable in place.
        m.setPmd(mm, pmd, i2, e + E_RW);
        this.counts.ptUpdates++;
        this.flushRange(mm, base, base + PAGE_SIZE);
        this.counts.cowReuses++;
        return 0;
      }
      // Shared: as Linux since 5.8 (do_huge_pmd_wp_page), split the PMD and let the retry
      // copy the one 4 KiB page written, rather than copying 2 MiB.
      return this.splitHugePmd(mm, pmd, i2, base) ? 0 : SIGKILL;
    }
    if (!eligible) return FALLBACK;
    const head = this.allocHugePage();
    if (head < 0) {
      this.counts.thpFallbacks++;
      return FALLBACK;
    }
    for (let i = 0; i < HPAGE_PMD_NR; i++) {
      this.clearPage(head + i);
      this.mapcount[head + i] = 1;
    }
    m.setPmd(mm, pmd, i2, this.makeEntry(head, this.pteFlags(prot, true) | E_PSE));
    this.counts.ptUpdates++;
    if (this.entryPfn(this.readEntry(pmd, i2)) !== head) {
      for (let i = 0; i < HPAGE_PMD_NR; i++) this.freePage(head + i);
      return SIGKILL;
    }
    this.counts.thpFaults++;
    this.counts.demandZero += HPAGE_PMD_NR;
    return 0;
  }

  /** Whether this mapping is the only one of every subpage of the huge page at `head`. */
  private hugeExclusive(head: number): boolean {
    for (let i = 0; i < HPAGE_PMD_NR; i++) if (this.mapcount[head + i] !== 1) return false;
    return true;
  }

  /**
   * split_huge_pmd: the huge PMD at `pmd[index]` (mapping `base`) becomes a PTE page of 512
   * entries with its rights and A/D bits, each subpage keeping its count. False when out of
   * memory (the PMD stays as it was).
   */
  private splitHugePmd(mm: Mm, pmd: number, index: number, base: number): boolean {
    const e = this.readEntry(pmd, index);
    const pte = this.allocTable(mm, PT_PTE);
    if (pte < 0) return false;
    const m = this.ops.mmu;
    const head = this.entryPfn(e);
    const flags = e & (E_PRESENT | E_RW | E_USER | E_ACCESSED | E_DIRTY);
    m.lazyMmuEnter();
    for (let i = 0; i < HPAGE_PMD_NR; i++) m.setPte(mm, pte, i, this.makeEntry(head + i, flags));
    m.lazyMmuLeave();
    m.setPmd(mm, pmd, index, this.makeEntry(pte, PAGE_TABLE));
    this.counts.ptUpdates += HPAGE_PMD_NR + 1;
    // One INVLPG drops the 2 MiB translation.
    this.flushRange(mm, base, base + PAGE_SIZE);
    this.counts.thpSplits++;
    return true;
  }

  /** Splits a huge PMD that straddles `va` (a bound of a range a system call cuts). False when out of memory. */
  private splitHugeAt(mm: Mm, va: number): boolean {
    if (va % HPAGE_SIZE === 0) return true;
    const pmd = this.pmdPage(mm, va, false);
    if (pmd < 0) return true;
    const i2 = Math.floor(va / HPAGE_SIZE) % 512;
    const e = this.readEntry(pmd, i2);
    if ((e & E_PRESENT) === 0 || (e & E_PSE) === 0) return true;
    return this.splitHugePmd(mm, pmd, i2, Math.floor(va / HPAGE_SIZE) * HPAGE_SIZE);
  }

  /** Zaps the user pages of [start, end): clears the PTEs in lazy MMU mode and drops the pages. */
  zapRange(mm: Mm, start: number, end: number): void {
    const m = this.ops.mmu;
    this.forEachPtePage(
      mm,
      start,
      end,
      (pt, tableVa) => this.zapPtes(mm, pt, tableVa, start, end),
      (pmd, i2, hugeVa) => {
        if (hugeVa < start || hugeVa + HPAGE_SIZE > end) {
          // Callers split the bounds first; a huge PMD across one is a bug.
          throw new Error(`guest kernel: zap of part of the huge page at ${hugeVa.toString(16)}`);
        }
        const head = this.entryPfn(this.readEntry(pmd, i2));
        m.setPmd(mm, pmd, i2, 0);
        this.counts.ptUpdates++;
        if ((this.readEntry(pmd, i2) & E_PRESENT) !== 0 || head < 0) return;
        for (let i = 0; i < HPAGE_PMD_NR; i++) this.putUserPage(head + i);
      },
    );
  }

  private zapPtes(mm: Mm, pt: number, tableVa: number, start: number, end: number): void {
    const m = this.ops.mmu;
    const from = Math.max(0, (start - tableVa) / PAGE_SIZE);
    const to = Math.min(512, (end - tableVa) / PAGE_SIZE);
    const zapped = this.scratchPfns;
    m.lazyMmuEnter();
    for (let i = from; i < to; i++) {
      const e = this.readEntry(pt, i);
      zapped[i] = -1;
      if ((e & E_HOLDS_PAGE) === 0) continue;
      zapped[i] = this.entryPfn(e);
      m.pteClear(mm, pt, i);
      this.counts.ptUpdates++;
    }
    m.lazyMmuLeave();
    // Pages go back only once their entries are gone (as Linux's mmu_gather frees after
    // the flush); an entry Xen refused to clear keeps its page.
    for (let i = from; i < to; i++) {
      const pfn = zapped[i];
      if (pfn < 0) continue;
      if ((this.readEntry(pt, i) & E_HOLDS_PAGE) === 0) this.putUserPage(pfn);
    }
  }

  /** Frees the PTE pages of [start, end) that no area needs any more (free_pgtables, PTE level). */
  private freeEmptyPtePages(mm: Mm, start: number, end: number): void {
    const S2 = 2 ** 21;
    const m = this.ops.mmu;
    for (let a = Math.floor(start / S2) * S2; a < end; a += S2) {
      if (mm.intersects(a, a + S2)) continue;
      const i4 = Math.floor(a / 2 ** 39) % 512;
      const e4 = this.readEntry(mm.pgd, i4);
      if ((e4 & E_PRESENT) === 0) continue;
      const pud = this.entryPfn(e4);
      const e3 = this.readEntry(pud, Math.floor(a / 2 ** 30) % 512);
      if ((e3 & E_PRESENT) === 0) continue;
      const pmd = this.entryPfn(e3);
      const i2 = Math.floor(a / S2) % 512;
      const e2 = this.readEntry(pmd, i2);
      if ((e2 & E_PRESENT) === 0 || (e2 & E_PSE) !== 0) continue;
      const pte = this.entryPfn(e2);
      m.setPmd(mm, pmd, i2, 0);
      this.counts.ptUpdates++;
      // A table Xen still sees in use stays (and is freed with the mm).
      if ((this.readEntry(pmd, i2) & E_PRESENT) === 0) this.releaseTable(pte);
    }
  }

  /** Frees every user page table of `mm` and its pgd (free_pgtables + pgd_free at exit). */
  private freeAllTables(mm: Mm): void {
    const m = this.ops.mmu;
    for (let i4 = 0; i4 < USER_PGD_SLOTS; i4++) {
      const e4 = this.readEntry(mm.pgd, i4);
      if ((e4 & E_PRESENT) === 0) continue;
      const pud = this.entryPfn(e4);
      for (let i3 = 0; i3 < 512; i3++) {
        const e3 = this.readEntry(pud, i3);
        if ((e3 & E_PRESENT) === 0) continue;
        const pmd = this.entryPfn(e3);
        for (let i2 = 0; i2 < 512; i2++) {
          const e2 = this.readEntry(pmd, i2);
          if ((e2 & E_PRESENT) === 0) continue;
          m.setPmd(mm, pmd, i2, 0);
          this.counts.ptUpdates++;
          if ((e2 & E_PSE) === 0) this.releaseTable(this.entryPfn(e2));
        }
        m.setPud(mm, pud, i3, 0);
        this.counts.ptUpdates++;
        this.releaseTable(pmd);
      }
      m.setP4d(mm, i4, 0);
      this.counts.ptUpdates++;
      this.releaseTable(pud);
    }
    m.pgdFree(mm);
    this.ptLevel[mm.pgd] = 0;
    this.pinned[mm.pgd] = 0;
    this.freePage(mm.pgd);
    this.counts.ptPagesFreed++;
    mm.pgd = -1;
  }

  /** Tears an mm down completely (exit_mmap): unloads it, lets pv_ops unpin, zaps, frees. */
  mmTeardown(mm: Mm): void {
    for (let vi = 0; vi < this.loadedMm.length; vi++) {
      if (this.loadedMm[vi] === mm) this.switchMm(vi, this.initMm);
    }
    this.ops.mmu.exitMmap(mm);
    for (const a of mm.vmas) this.zapRange(mm, a.start, a.end);
    mm.vmas = [];
    this.freeAllTables(mm);
  }

  /** A fresh user address space with a stack area, activated for exec (or the first process). */
  mmForExec(prev: Mm): Mm | null {
    const mm = this.mmAlloc();
    if (mm === null) return null;
    mm.insert({
      start: STACK_TOP - STACK_PAGES * PAGE_SIZE,
      end: STACK_TOP,
      prot: PROT_READ | PROT_WRITE,
    });
    this.ops.mmu.activateMm(prev, mm);
    return mm;
  }

  /** fork()'s copy of an address space (dup_mmap): every area, COW for private writable ones. */
  dupMm(old: Mm): Mm | number {
    const mm = this.mmAlloc();
    if (mm === null) return -ENOMEM;
    const m = this.ops.mmu;
    m.dupMmap(old, mm);
    let failed = false;
    for (const a of old.vmas) {
      mm.vmas.push({ start: a.start, end: a.end, prot: a.prot });
      if (!failed && !this.copyRange(old, mm, a.start, a.end, (a.prot & PROT_WRITE) !== 0))
        failed = true;
    }
    // flush_tlb_mm(oldmm): the parent's entries lost RW.
    this.flushRange(old, 0, USER_VA_END);
    const rc = this.takeError();
    if (failed || rc !== 0) {
      this.mmTeardown(mm);
      return rc !== 0 ? rc : -ENOMEM;
    }
    return mm;
  }

  /** copy_page_range for one area. False when out of memory. */
  private copyRange(src: Mm, dst: Mm, start: number, end: number, cow: boolean): boolean {
    const m = this.ops.mmu;
    let ok = true;
    const copyHuge = (spmd: number, i2: number, hugeVa: number) => {
      if (!ok) return;
      // copy_huge_pmd: the child shares the huge page; both lose RW for copy on write.
      let e = this.readEntry(spmd, i2);
      const dpmd = this.pmdPage(dst, hugeVa, true);
      if (dpmd < 0) {
        ok = false;
        return;
      }
      if (cow && (e & E_RW) !== 0) {
        e -= E_RW;
        this.cpuStoreEntry(spmd, i2, e);
      }
      if ((e & E_ACCESSED) !== 0) e -= E_ACCESSED;
      m.setPmd(dst, dpmd, i2, e);
      this.counts.ptUpdates++;
      if ((this.readEntry(dpmd, i2) & E_PRESENT) === 0) return;
      const head = this.entryPfn(e);
      for (let i = 0; i < HPAGE_PMD_NR; i++) this.mapcount[head + i]++;
    };
    this.forEachPtePage(
      src,
      start,
      end,
      (spt, tableVa) => {
        if (!ok) return;
        const from = Math.max(0, (start - tableVa) / PAGE_SIZE);
        const to = Math.min(512, (end - tableVa) / PAGE_SIZE);
        let dpt = -1;
        const given = this.scratchPfns;
        for (let i = from; i < to; i++) {
          given[i] = -1;
          let e = this.readEntry(spt, i);
          if ((e & E_HOLDS_PAGE) === 0) continue;
          if (dpt < 0) {
            dpt = this.ptePage(dst, tableVa, true);
            if (dpt < 0) {
              ok = false;
              return;
            }
            m.lazyMmuEnter();
          }
          const pfn = this.entryPfn(e);
          if (cow && (e & E_RW) !== 0) {
            // ptep_set_wrprotect: a locked bit clear on the parent's PTE, a plain CPU store.
            e -= E_RW;
            this.cpuStoreEntry(spt, i, e);
          }
          if ((e & E_ACCESSED) !== 0) e -= E_ACCESSED; // pte_mkold for the child
          m.setPte(dst, dpt, i, e);
          this.counts.ptUpdates++;
          given[i] = pfn;
        }
        if (dpt < 0) return;
        m.lazyMmuLeave();
        // The child holds a page only where its entry really went in.
        for (let i = from; i < to; i++) {
          const pfn = given[i];
          if (pfn >= 0 && (this.readEntry(dpt, i) & E_HOLDS_PAGE) !== 0) this.mapcount[pfn]++;
        }
      },
      copyHuge,
    );
    return ok;
  }

  /**
   * mprotect's pass over the tables (change_protection): PTEs in lazy mode with modify_prot
   * start/commit; a huge PMD wholly inside keeps its size (change_huge_pmd), unless the new
   * protection is PROT_NONE, which is kept in PTEs: it is split first. 0, or -ENOMEM when a
   * split found no page for its table.
   */
  changeProtection(mm: Mm, start: number, end: number, prot: number): number {
    const m = this.ops.mmu;
    let rc = 0;
    this.forEachPtePage(
      mm,
      start,
      end,
      (pt, tableVa) => this.protectPtes(mm, pt, tableVa, start, end, prot),
      (pmd, i2, hugeVa) => {
        const old = this.readEntry(pmd, i2);
        if ((prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) === 0) {
          if (this.splitHugePmd(mm, pmd, i2, hugeVa)) {
            this.protectPtes(mm, this.entryPfn(this.readEntry(pmd, i2)), hugeVa, start, end, prot);
          } else rc = -ENOMEM;
          return;
        }
        const head = this.entryPfn(old);
        const flags = this.pteFlags(prot, head >= 0 && this.hugeExclusive(head));
        const frame = Math.floor(old / PAGE_SIZE) % FRAME_LIMIT;
        m.setPmd(mm, pmd, i2, frame * PAGE_SIZE + (flags | E_PSE | (old & (E_ACCESSED | E_DIRTY))));
        this.counts.ptUpdates++;
      },
    );
    this.flushRange(mm, start, end);
    return rc;
  }

  private protectPtes(
    mm: Mm,
    pt: number,
    tableVa: number,
    start: number,
    end: number,
    prot: number,
  ): void {
    const m = this.ops.mmu;
    const from = Math.max(0, (start - tableVa) / PAGE_SIZE);
    const to = Math.min(512, (end - tableVa) / PAGE_SIZE);
    m.lazyMmuEnter();
    for (let i = from; i < to; i++) {
      const e = this.readEntry(pt, i);
      if ((e & E_HOLDS_PAGE) === 0) continue;
      const old = m.ptepModifyProtStart(mm, pt, i);
      const pfn = this.entryPfn(old);
      const flags = this.pteFlags(prot, pfn >= 0 && this.mapcount[pfn] === 1);
      const ad = (old & E_PRESENT) !== 0 ? old & (E_ACCESSED | E_DIRTY) : 0;
      const frame = Math.floor(old / PAGE_SIZE) % FRAME_LIMIT;
      m.ptepModifyProtCommit(mm, pt, i, old, frame * PAGE_SIZE + (flags | ad));
      this.counts.ptUpdates++;
    }
    m.lazyMmuLeave();
  }

  // ---- memory system calls (the checks; the Process wraps them) ----

  sysMmap(mm: Mm, addr: number, length: number, prot: number, fixed: boolean): number {
    if (!Number.isSafeInteger(length) || length <= 0 || length > USER_VA_END) return -EINVAL;
    if (!Number.isInteger(prot) || (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0)
      return -EINVAL;
    const len = pageAlignUp(length);
    let start: number;
    if (fixed) {
      if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE !== 0 || addr < 0) return -EINVAL;
      if (addr + len > USER_VA_END) return -ENOMEM;
      start = addr;
      const rc = this.sysMunmap(mm, start, len);
      if (rc < 0) return rc;
    } else {
      // THP: an area that can hold a huge page starts on a 2 MiB boundary (thp_get_unmapped_area).
      start = mm.unmappedArea(len, this.hugePages && len >= HPAGE_SIZE ? HPAGE_SIZE : PAGE_SIZE);
      if (start < 0) return -ENOMEM;
    }
    mm.insert({ start, end: start + len, prot });
    return start;
  }

  sysMunmap(mm: Mm, addr: number, length: number): number {
    if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE !== 0 || addr < 0) return -EINVAL;
    if (!Number.isSafeInteger(length) || length <= 0) return -EINVAL;
    const end = addr + pageAlignUp(length);
    if (end > USER_VA_END) return -EINVAL;
    if (!mm.intersects(addr, end)) return 0;
    if (!this.splitHugeAt(mm, addr) || !this.splitHugeAt(mm, end)) return -ENOMEM;
    mm.removeRange(addr, end);
    this.zapRange(mm, addr, end);
    this.flushRange(mm, addr, end);
    this.freeEmptyPtePages(mm, addr, end);
    return this.takeError();
  }

  sysMprotect(mm: Mm, addr: number, length: number, prot: number): number {
    if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE !== 0 || addr < 0) return -EINVAL;
    if (!Number.isInteger(prot) || (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0)
      return -EINVAL;
    if (!Number.isSafeInteger(length) || length < 0) return -EINVAL;
    if (length === 0) return 0;
    const end = addr + pageAlignUp(length);
    if (end > USER_VA_END) return -ENOMEM;
    if (!mm.covers(addr, end)) return -ENOMEM;
    if (!this.splitHugeAt(mm, addr) || !this.splitHugeAt(mm, end)) return -ENOMEM;
    mm.protect(addr, end, prot);
    const rc = this.changeProtection(mm, addr, end, prot);
    const err = this.takeError();
    return err !== 0 ? err : rc;
  }

  /** What this kernel is made of: platform, pv_ops providers, plugins and stats. */
  describe(): {
    platform: Platform["kind"];
    pvOps: Record<string, string>;
    plugins: string[];
    stats: ReturnType<Stats["snapshot"]>;
  } {
    return {
      platform: this.platform.kind,
      pvOps: { ...this.composition.pvOps },
      plugins: [...this.composition.plugins],
      stats: this.stats.snapshot(),
    };
  }

  // ---- processes ----

  /** The next free pid. */
  allocPid(): number {
    return this.nextPid++;
  }

  /** Checks that the kernel has booted with a pv_ops table (a bug otherwise). */
  requireOps(): void {
    if (this.ops === undefined) {
      throw new HyperlabError(
        "GUEST_NOT_BOOTED",
        "This guest kernel has not booted. Create kernels with bootNativeKernel or bootXenPvKernel.",
      );
    }
  }
}
