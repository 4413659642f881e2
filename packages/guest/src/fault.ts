/*
 * The page-fault handler (Linux's arch/x86/mm/fault.c do_user_addr_fault with
 * mm/memory.c handle_mm_fault for anonymous private memory, and do_huge_pmd_anonymous_page
 * / do_huge_pmd_wp_page for transparent huge pages): demand-zero, copy on write, PROT_NONE
 * entries an area now allows, and stale TLB entries.
 *
 * Invariants: a fault either fixes the mapping (0: the access is retried) or names the signal
 * to deliver (SIGSEGV for an address or access the areas do not allow, SIGKILL when memory or
 * the hypervisor failed it); it never throws on anything a user program does. A page given to
 * a fault is counted in mapcount only once its entry really went in.
 */
import {
  HPAGE_PMD_NR,
  HPAGE_SIZE,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  SIGKILL,
  SIGSEGV,
} from "./layout";
import { KernelMemory } from "./memory";
import type { Mm } from "./mm";
import { E_HOLDS_PAGE, E_PRESENT, E_PROTNONE, E_PSE, E_RW } from "./pte";

/** handleFault's huge path declined: map a 4 KiB page instead. */
const FALLBACK = -1;

/** The kernel with its fault handler. */
export class KernelFaults extends KernelMemory {
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
    // Math.floor(va / PAGE_SIZE) % 512, exactly, without V8's float modulo (an x87 fprem: the
    // quotient of a user address is above 2^31).
    const vpn = Math.floor(va / PAGE_SIZE);
    const i = vpn - Math.trunc(vpn / 512) * 512;
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
  protected hugeFault(
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
}
