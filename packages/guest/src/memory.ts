/*
 * Address spaces and their page tables (Linux's mm/memory.c, mm/pgtable-generic.c,
 * mm/mprotect.c and the split half of mm/huge_memory.c): allocating an mm and its tables,
 * walking them, zapping, copying and re-protecting ranges, splitting huge PMDs, flushing.
 *
 * Invariants:
 * - Every write to a page table, every CR3 load and every TLB flush goes through pv_ops
 *   (this.ops), so the same code runs on bare metal and on Xen PV.
 * - A user page returns to the allocator when its last mapping goes, and only once its entry
 *   is really gone (an entry the hypervisor refused to clear keeps its page). A huge page is
 *   512 contiguous pfns of one 2 MiB block, each counted on its own (a PMD mapping counts
 *   once on every one), so splitting a PMD into PTEs keeps the counts.
 * - A PSE (2 MiB) entry in a PMD lies wholly inside one area, is present, and maps a
 *   2 MiB-aligned huge page; a range operation that cuts an area inside one splits it first.
 * - Every mm's tables share the kernel half (L4 slots from KERNEL_PGD_FIRST up) with the
 *   init mm; freeing an mm's tables leaves none of its pages, tables or pins behind.
 */
import { ENOMEM } from "@hyperlab/abi";
import { contextSwitch } from "./cpu";
import {
  HPAGE_PMD_NR,
  HPAGE_SIZE,
  KERNEL_PGD_FIRST,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  PT_PMD,
  PT_PTE,
  PT_PUD,
  PTRS_PER_TABLE,
  TLB_SINGLE_PAGE_FLUSH_CEILING,
  USER_PGD_SLOTS,
} from "./layout";
import { Mm } from "./mm";
import { KernelPages } from "./pages";
import {
  E_ACCESSED,
  E_DIRTY,
  E_HOLDS_PAGE,
  E_PRESENT,
  E_PROTNONE,
  E_PSE,
  E_RW,
  E_USER,
  entryFrame,
  PAGE_TABLE,
} from "./pte";

/**
 * The entry bits and page size the table loops test, as a const enum: the build writes each
 * use as a number literal. In the bundle (dist/) the imported constants are `var`s, loaded
 * and checked at every use of the fork, zap and protect loops. A load-time check keeps them
 * equal to pte.ts's and layout.ts's.
 */
const enum M {
  E_PRESENT = 0x1,
  E_RW = 0x2,
  E_USER = 0x4,
  E_ACCESSED = 0x20,
  E_DIRTY = 0x40,
  E_PSE = 0x80,
  E_PROTNONE = 0x100,
  E_HOLDS_PAGE = 0x101,
  PAGE_SIZE = 4096,
}
if (
  M.E_PRESENT !== E_PRESENT ||
  M.E_RW !== E_RW ||
  M.E_USER !== E_USER ||
  M.E_ACCESSED !== E_ACCESSED ||
  M.E_DIRTY !== E_DIRTY ||
  M.E_PSE !== E_PSE ||
  M.E_PROTNONE !== E_PROTNONE ||
  M.E_HOLDS_PAGE !== E_HOLDS_PAGE ||
  M.PAGE_SIZE !== PAGE_SIZE
) {
  throw new Error("memory.ts: the const enum M disagrees with pte.ts or layout.ts.");
}

/** The kernel's memory management over its pages: address spaces, tables, ranges. */
export class KernelMemory extends KernelPages {
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
    if ((e & M.E_PRESENT) === 0) {
      if (!alloc) return -1;
      pud = this.allocTable(mm, PT_PUD);
      if (pud < 0) return -1;
      m.setP4d(mm, i4, this.makeEntry(pud, PAGE_TABLE));
      this.counts.ptUpdates++;
    } else pud = this.entryPfn(e);
    const i3 = Math.floor(va / 2 ** 30) % 512;
    e = this.readEntry(pud, i3);
    if ((e & M.E_PRESENT) !== 0) return this.entryPfn(e);
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
    if ((e & M.E_PRESENT) !== 0) return (e & M.E_PSE) !== 0 ? -1 : this.entryPfn(e);
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
      if ((e4 & M.E_PRESENT) === 0) continue;
      const pud = this.entryPfn(e4);
      for (let a3 = Math.max(a4, Math.floor(start / S3) * S3); a3 < end && a3 < a4 + S4; a3 += S3) {
        const e3 = this.readEntry(pud, (a3 / S3) % 512);
        if ((e3 & M.E_PRESENT) === 0) continue;
        const pmd = this.entryPfn(e3);
        for (
          let a2 = Math.max(a3, Math.floor(start / S2) * S2);
          a2 < end && a2 < a3 + S3;
          a2 += S2
        ) {
          const e2 = this.readEntry(pmd, (a2 / S2) % 512);
          if ((e2 & M.E_PRESENT) === 0) continue;
          if ((e2 & M.E_PSE) !== 0) {
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
    const prev = this.loadedMm[vi];
    if (prev === mm) return;
    // A switch to another task: its CPU state comes with its address space (cpu.ts).
    contextSwitch(this, vi, prev, mm, () => {
      this.ops.mmu.writeCr3(vi, mm);
      this.loadedMm[vi] = mm;
      this.cr3Pfn[vi] = mm.pgd;
    });
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
      const pages = (end - start) / M.PAGE_SIZE;
      if (pages <= TLB_SINGLE_PAGE_FLUSH_CEILING) {
        for (let va = start; va < end; va += M.PAGE_SIZE) m.flushTlbOneUser(0, va);
      } else m.flushTlbUser(0);
    }
    if (others.length > 0) m.flushTlbMulti(others, mm, start, end);
  }

  /** The PTE flags of a user page with `prot`; writable only when the page is not shared. */
  pteFlags(prot: number, exclusive: boolean): number {
    if ((prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) === 0) return M.E_PROTNONE;
    return M.E_PRESENT | M.E_USER | ((prot & PROT_WRITE) !== 0 && exclusive ? M.E_RW : 0);
  }

  /** Drops one mapping of a user page; frees it with the last. */
  putUserPage(pfn: number): void {
    const n = this.mapcount[pfn] - 1;
    this.mapcount[pfn] = n;
    if (n === 0) this.freePage(pfn);
  }

  /** Whether this mapping is the only one of every subpage of the huge page at `head`. */
  protected hugeExclusive(head: number): boolean {
    for (let i = 0; i < HPAGE_PMD_NR; i++) if (this.mapcount[head + i] !== 1) return false;
    return true;
  }

  /**
   * split_huge_pmd: the huge PMD at `pmd[index]` (mapping `base`) becomes a PTE page of 512
   * entries with its rights and A/D bits, each subpage keeping its count. False when out of
   * memory (the PMD stays as it was).
   */
  protected splitHugePmd(mm: Mm, pmd: number, index: number, base: number): boolean {
    const e = this.readEntry(pmd, index);
    const pte = this.allocTable(mm, PT_PTE);
    if (pte < 0) return false;
    const m = this.ops.mmu;
    const head = this.entryPfn(e);
    const flags = e & (M.E_PRESENT | M.E_RW | M.E_USER | M.E_ACCESSED | M.E_DIRTY);
    m.lazyMmuEnter();
    for (let i = 0; i < HPAGE_PMD_NR; i++) m.setPte(mm, pte, i, this.makeEntry(head + i, flags));
    m.lazyMmuLeave();
    m.setPmd(mm, pmd, index, this.makeEntry(pte, PAGE_TABLE));
    this.counts.ptUpdates += HPAGE_PMD_NR + 1;
    // One INVLPG drops the 2 MiB translation.
    this.flushRange(mm, base, base + M.PAGE_SIZE);
    this.counts.thpSplits++;
    return true;
  }

  /** Splits a huge PMD that straddles `va` (a bound of a range a system call cuts). False when out of memory. */
  protected splitHugeAt(mm: Mm, va: number): boolean {
    if (va % HPAGE_SIZE === 0) return true;
    const pmd = this.pmdPage(mm, va, false);
    if (pmd < 0) return true;
    const i2 = Math.floor(va / HPAGE_SIZE) % 512;
    const e = this.readEntry(pmd, i2);
    if ((e & M.E_PRESENT) === 0 || (e & M.E_PSE) === 0) return true;
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
        if ((this.readEntry(pmd, i2) & M.E_PRESENT) !== 0 || head < 0) return;
        for (let i = 0; i < HPAGE_PMD_NR; i++) this.putUserPage(head + i);
      },
    );
  }

  private zapPtes(mm: Mm, pt: number, tableVa: number, start: number, end: number): void {
    const m = this.ops.mmu;
    const from = Math.max(0, (start - tableVa) / M.PAGE_SIZE);
    const to = Math.min(512, (end - tableVa) / M.PAGE_SIZE);
    const zapped = this.scratchPfns;
    m.lazyMmuEnter();
    for (let i = from; i < to; i++) {
      const e = this.readEntry(pt, i);
      zapped[i] = -1;
      if ((e & M.E_HOLDS_PAGE) === 0) continue;
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
      if ((this.readEntry(pt, i) & M.E_HOLDS_PAGE) === 0) this.putUserPage(pfn);
    }
  }

  /** Frees the PTE pages of [start, end) that no area needs any more (free_pgtables, PTE level). */
  protected freeEmptyPtePages(mm: Mm, start: number, end: number): void {
    const S2 = 2 ** 21;
    const m = this.ops.mmu;
    for (let a = Math.floor(start / S2) * S2; a < end; a += S2) {
      if (mm.intersects(a, a + S2)) continue;
      const i4 = Math.floor(a / 2 ** 39) % 512;
      const e4 = this.readEntry(mm.pgd, i4);
      if ((e4 & M.E_PRESENT) === 0) continue;
      const pud = this.entryPfn(e4);
      const e3 = this.readEntry(pud, Math.floor(a / 2 ** 30) % 512);
      if ((e3 & M.E_PRESENT) === 0) continue;
      const pmd = this.entryPfn(e3);
      const i2 = Math.floor(a / S2) % 512;
      const e2 = this.readEntry(pmd, i2);
      if ((e2 & M.E_PRESENT) === 0 || (e2 & M.E_PSE) !== 0) continue;
      const pte = this.entryPfn(e2);
      m.setPmd(mm, pmd, i2, 0);
      this.counts.ptUpdates++;
      // A table Xen still sees in use stays (and is freed with the mm).
      if ((this.readEntry(pmd, i2) & M.E_PRESENT) === 0) this.releaseTable(pte);
    }
  }

  /** Frees every user page table of `mm` and its pgd (free_pgtables + pgd_free at exit). */
  protected freeAllTables(mm: Mm): void {
    const m = this.ops.mmu;
    for (let i4 = 0; i4 < USER_PGD_SLOTS; i4++) {
      const e4 = this.readEntry(mm.pgd, i4);
      if ((e4 & M.E_PRESENT) === 0) continue;
      const pud = this.entryPfn(e4);
      for (let i3 = 0; i3 < 512; i3++) {
        const e3 = this.readEntry(pud, i3);
        if ((e3 & M.E_PRESENT) === 0) continue;
        const pmd = this.entryPfn(e3);
        for (let i2 = 0; i2 < 512; i2++) {
          const e2 = this.readEntry(pmd, i2);
          if ((e2 & M.E_PRESENT) === 0) continue;
          m.setPmd(mm, pmd, i2, 0);
          this.counts.ptUpdates++;
          if ((e2 & M.E_PSE) === 0) this.releaseTable(this.entryPfn(e2));
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

  /** copy_page_range for one area. False when out of memory. */
  protected copyRange(src: Mm, dst: Mm, start: number, end: number, cow: boolean): boolean {
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
      if (cow && (e & M.E_RW) !== 0) {
        e -= M.E_RW;
        this.cpuStoreEntry(spmd, i2, e);
      }
      if ((e & M.E_ACCESSED) !== 0) e -= M.E_ACCESSED;
      m.setPmd(dst, dpmd, i2, e);
      this.counts.ptUpdates++;
      if ((this.readEntry(dpmd, i2) & M.E_PRESENT) === 0) return;
      const head = this.entryPfn(e);
      for (let i = 0; i < HPAGE_PMD_NR; i++) this.mapcount[head + i]++;
    };
    this.forEachPtePage(
      src,
      start,
      end,
      (spt, tableVa) => {
        if (!ok) return;
        const from = Math.max(0, (start - tableVa) / M.PAGE_SIZE);
        const to = Math.min(512, (end - tableVa) / M.PAGE_SIZE);
        let dpt = -1;
        const given = this.scratchPfns;
        for (let i = from; i < to; i++) {
          given[i] = -1;
          let e = this.readEntry(spt, i);
          if ((e & M.E_HOLDS_PAGE) === 0) continue;
          if (dpt < 0) {
            dpt = this.ptePage(dst, tableVa, true);
            if (dpt < 0) {
              ok = false;
              return;
            }
            m.lazyMmuEnter();
          }
          const pfn = this.entryPfn(e);
          if (cow && (e & M.E_RW) !== 0) {
            // ptep_set_wrprotect: a locked bit clear on the parent's PTE, a plain CPU store.
            e -= M.E_RW;
            this.cpuStoreEntry(spt, i, e);
          }
          if ((e & M.E_ACCESSED) !== 0) e -= M.E_ACCESSED; // pte_mkold for the child
          m.setPte(dst, dpt, i, e);
          this.counts.ptUpdates++;
          given[i] = pfn;
        }
        if (dpt < 0) return;
        m.lazyMmuLeave();
        // The child holds a page only where its entry really went in.
        for (let i = from; i < to; i++) {
          const pfn = given[i];
          if (pfn >= 0 && (this.readEntry(dpt, i) & M.E_HOLDS_PAGE) !== 0) this.mapcount[pfn]++;
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
        const frame = entryFrame(old);
        m.setPmd(
          mm,
          pmd,
          i2,
          frame * M.PAGE_SIZE + (flags | M.E_PSE | (old & (M.E_ACCESSED | M.E_DIRTY))),
        );
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
    const from = Math.max(0, (start - tableVa) / M.PAGE_SIZE);
    const to = Math.min(512, (end - tableVa) / M.PAGE_SIZE);
    m.lazyMmuEnter();
    for (let i = from; i < to; i++) {
      const e = this.readEntry(pt, i);
      if ((e & M.E_HOLDS_PAGE) === 0) continue;
      const old = m.ptepModifyProtStart(mm, pt, i);
      const pfn = this.entryPfn(old);
      const flags = this.pteFlags(prot, pfn >= 0 && this.mapcount[pfn] === 1);
      const ad = (old & M.E_PRESENT) !== 0 ? old & (M.E_ACCESSED | M.E_DIRTY) : 0;
      const frame = entryFrame(old);
      m.ptepModifyProtCommit(mm, pt, i, old, frame * M.PAGE_SIZE + (flags | ad));
      this.counts.ptUpdates++;
    }
    m.lazyMmuLeave();
  }
}
