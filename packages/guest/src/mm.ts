/*
 * Address spaces: an mm is a pgd (and, under Xen PV, a user pgd) plus a sorted list of
 * virtual memory areas.
 *
 * Invariants: `vmas` is sorted by start, areas do not overlap, every bound is page aligned
 * and inside the user half; an mm's page tables live in pages of the kernel's own memory and
 * are written only through pv_ops.mmu; `pinned` is true exactly while a Xen PV kernel has its
 * pgd pinned (native kernels never pin).
 */
import { MMAP_BASE, MMAP_MIN_ADDR, PAGE_SIZE } from "./layout";

/** A virtual memory area: [start, end) with PROT_* protections, anonymous and private. */
export interface Vma {
  start: number;
  end: number;
  prot: number;
}

export class Mm {
  /** Distinguishes address spaces in traces and tests. */
  readonly id: number;
  /** pfn of the top-level table (the pgd). */
  pgd: number;
  /** pfn of the Xen PV user pgd (Linux's xen_get_user_pgd), or -1. */
  userPgd = -1;
  /** Whether the pgd is pinned (Xen PV's PG_pinned on the pgd page). */
  pinned = false;
  vmas: Vma[] = [];

  constructor(id: number, pgd: number) {
    this.id = id;
    this.pgd = pgd;
  }

  /** The area holding `va`, or undefined. */
  findVma(va: number): Vma | undefined {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const a = v[mid];
      if (va < a.start) hi = mid - 1;
      else if (va >= a.end) lo = mid + 1;
      else return a;
    }
    return undefined;
  }

  /** Whether any area intersects [start, end). */
  intersects(start: number, end: number): boolean {
    for (const a of this.vmas) if (a.start < end && a.end > start) return true;
    return false;
  }

  /**
   * A free range of `len` bytes starting at a multiple of `align`, top down below MMAP_BASE
   * (Linux's arch_get_unmapped_area_topdown; a 2 MiB `align` is its THP alignment), or -1.
   */
  unmappedArea(len: number, align = PAGE_SIZE): number {
    let top = MMAP_BASE;
    for (let i = this.vmas.length - 1; i >= 0; i--) {
      const a = this.vmas[i];
      if (a.start >= top) continue;
      const s = Math.floor((top - len) / align) * align;
      if (s >= a.end) return s >= MMAP_MIN_ADDR ? s : -1;
      top = a.start;
    }
    const s = Math.floor((top - len) / align) * align;
    return s >= MMAP_MIN_ADDR ? s : -1;
  }

  /** Removes [start, end) from the areas, splitting the ones that straddle it. */
  removeRange(start: number, end: number): void {
    const out: Vma[] = [];
    for (const a of this.vmas) {
      if (a.end <= start || a.start >= end) {
        out.push(a);
        continue;
      }
      if (a.start < start) out.push({ start: a.start, end: start, prot: a.prot });
      if (a.end > end) out.push({ start: end, end: a.end, prot: a.prot });
    }
    this.vmas = out;
  }

  /** Inserts an area over a range known to be free. */
  insert(vma: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i].start < vma.start) i++;
    this.vmas.splice(i, 0, vma);
  }

  /** Sets the protections of [start, end), splitting areas at the bounds. */
  protect(start: number, end: number, prot: number): void {
    const out: Vma[] = [];
    for (const a of this.vmas) {
      if (a.end <= start || a.start >= end) {
        out.push(a);
        continue;
      }
      if (a.start < start) out.push({ start: a.start, end: start, prot: a.prot });
      out.push({ start: Math.max(a.start, start), end: Math.min(a.end, end), prot });
      if (a.end > end) out.push({ start: end, end: a.end, prot: a.prot });
    }
    this.vmas = out;
  }

  /** Whether [start, end) is wholly covered by areas (mprotect's requirement). */
  covers(start: number, end: number): boolean {
    let at = start;
    for (const a of this.vmas) {
      if (a.end <= at) continue;
      if (a.start > at) return false;
      at = a.end;
      if (at >= end) return true;
    }
    return at >= end;
  }

  /** Bytes mapped by areas. */
  get mappedBytes(): number {
    let n = 0;
    for (const a of this.vmas) n += a.end - a.start;
    return n;
  }
}

export function pageAlignUp(n: number): number {
  return Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;
}
