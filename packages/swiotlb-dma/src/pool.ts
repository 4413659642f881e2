/*
 * The bounce pool's slot bookkeeping, after Linux's kernel/dma/swiotlb.c (struct io_tlb_mem):
 * 2 KiB slabs (IO_TLB_SHIFT 11) grouped in segments of IO_TLB_SEGSIZE slabs; each segment
 * lies in one machine-contiguous run, so a bounce that stays inside a segment is contiguous
 * for the device.
 *
 * Invariants:
 * - A mapping is a run of slots inside one segment; it never crosses a segment.
 * - list[i] is 0 for a used slot, and for a free slot the number of free slots from i up to
 *   the next used slot or the segment's end (what swiotlb.c keeps in slots[i].list).
 * - allocSize[i] > 0 exactly for used slots: the bytes of the mapping from slot i on; the
 *   head slot holds the whole mapping's size. origPhys[i] is the pseudo-physical address of
 *   the buffer byte slot i bounces.
 * - All state is in typed arrays sized once; mapping and unmapping allocate nothing.
 */

/** log2 of a slab: Linux's IO_TLB_SHIFT. */
export const IO_TLB_SHIFT = 11;
/** Bytes per slab: IO_TLB_SIZE. */
export const IO_TLB_SIZE = 1 << IO_TLB_SHIFT;
/** Slabs per segment: IO_TLB_SEGSIZE. A mapping is at most this many slabs (256 KiB). */
export const IO_TLB_SEGSIZE = 128;
/** Bytes per segment (256 KiB, an order-6 extent of 4 KiB pages). */
export const IO_TLB_SEGMENT_BYTES = IO_TLB_SEGSIZE * IO_TLB_SIZE;
/** Pages per segment, and its order. */
export const IO_TLB_SEGMENT_PAGES = IO_TLB_SEGMENT_BYTES / 4096;
export const IO_TLB_SEGMENT_ORDER = 6;

export class SwiotlbPool {
  readonly nslabs: number;
  readonly nsegs: number;
  /** First pfn of each segment (the kernel's view of it). */
  readonly segPfn: Int32Array;
  /** Machine address of each segment's first byte (after the exchange made it contiguous). */
  readonly segMaddr: Float64Array;
  readonly list: Uint16Array;
  readonly allocSize: Int32Array;
  readonly origPhys: Float64Array;
  /** Slots in use. */
  used = 0;
  /** Where the next search starts (Linux's mem->index). */
  private index = 0;

  constructor(nsegs: number) {
    this.nsegs = nsegs;
    this.nslabs = nsegs * IO_TLB_SEGSIZE;
    this.segPfn = new Int32Array(nsegs).fill(-1);
    this.segMaddr = new Float64Array(nsegs).fill(-1);
    this.list = new Uint16Array(this.nslabs);
    this.allocSize = new Int32Array(this.nslabs);
    this.origPhys = new Float64Array(this.nslabs).fill(-1);
    for (let i = 0; i < this.nslabs; i++) this.list[i] = IO_TLB_SEGSIZE - (i % IO_TLB_SEGSIZE);
  }

  /** Machine address of slot `i`. */
  slotMaddr(i: number): number {
    return this.segMaddr[(i / IO_TLB_SEGSIZE) | 0] + (i % IO_TLB_SEGSIZE) * IO_TLB_SIZE;
  }

  /** The slot holding machine address `maddr`, or -1 when it is not inside the pool. */
  slotOf(maddr: number): number {
    for (let s = 0; s < this.nsegs; s++) {
      const base = this.segMaddr[s];
      if (base >= 0 && maddr >= base && maddr < base + IO_TLB_SEGMENT_BYTES) {
        return s * IO_TLB_SEGSIZE + Math.floor((maddr - base) / IO_TLB_SIZE);
      }
    }
    return -1;
  }

  /** Lowest and highest machine address the pool covers (end exclusive), or -1s. */
  bounds(): { start: number; end: number } {
    let start = -1;
    let end = -1;
    for (let s = 0; s < this.nsegs; s++) {
      const b = this.segMaddr[s];
      if (b < 0) continue;
      if (start < 0 || b < start) start = b;
      if (b + IO_TLB_SEGMENT_BYTES > end) end = b + IO_TLB_SEGMENT_BYTES;
    }
    return { start, end };
  }

  /**
   * swiotlb_find_slots: a free run of slots for `size` bytes that stays inside one segment
   * (page-aligned when the mapping is a page or more, as Linux's stride), marked used with
   * `orig` as the buffer it bounces. The head slot, or -1 when no run is free (exhaustion).
   */
  alloc(orig: number, size: number): number {
    if (size <= 0 || size > IO_TLB_SEGMENT_BYTES) return -1;
    const nslots = Math.ceil(size / IO_TLB_SIZE);
    const stride = size >= 4096 ? 2 : 1;
    const n = this.nslabs;
    let i = this.index - (this.index % stride);
    for (let tried = 0; tried < n; tried += stride) {
      if (i >= n) i = 0;
      if (this.list[i] >= nslots) return this.take(i, nslots, orig, size);
      i += stride;
    }
    return -1;
  }

  private take(index: number, nslots: number, orig: number, size: number): number {
    for (let j = 0; j < nslots; j++) {
      const s = index + j;
      this.list[s] = 0;
      this.allocSize[s] = size - j * IO_TLB_SIZE;
      this.origPhys[s] = orig + j * IO_TLB_SIZE;
    }
    // Free slots before the run in the same segment now end at the run.
    let count = 0;
    for (
      let j = index - 1;
      j >= 0 && j % IO_TLB_SEGSIZE !== IO_TLB_SEGSIZE - 1 && this.list[j] !== 0;
      j--
    ) {
      this.list[j] = ++count;
    }
    this.used += nslots;
    const next = index + nslots;
    this.index = next >= this.nslabs ? 0 : next;
    return index;
  }

  /** swiotlb_release_slots for the mapping whose head is `index`. False if `index` is no head in use. */
  release(index: number): boolean {
    if (index < 0 || index >= this.nslabs || this.allocSize[index] <= 0) return false;
    if (
      index % IO_TLB_SEGSIZE !== 0 &&
      this.allocSize[index - 1] === this.allocSize[index] + IO_TLB_SIZE
    )
      return false; // the middle of a mapping: not what map returned
    const nslots = Math.ceil(this.allocSize[index] / IO_TLB_SIZE);
    const end = index + nslots;
    let count = end % IO_TLB_SEGSIZE !== 0 ? this.list[end] : 0;
    for (let j = end - 1; j >= index; j--) {
      this.list[j] = ++count;
      this.allocSize[j] = 0;
      this.origPhys[j] = -1;
    }
    for (
      let j = index - 1;
      j >= 0 && j % IO_TLB_SEGSIZE !== IO_TLB_SEGSIZE - 1 && this.list[j] !== 0;
      j--
    ) {
      this.list[j] = ++count;
    }
    this.used -= nslots;
    return true;
  }

  /**
   * Recomputes the free-run counts from which slots are used and compares: null when the
   * accounting is consistent, or what differs (for tests and invariant checks).
   */
  checkAccounting(): string | null {
    let used = 0;
    for (let s = 0; s < this.nsegs; s++) {
      let run = 0;
      for (let o = IO_TLB_SEGSIZE - 1; o >= 0; o--) {
        const i = s * IO_TLB_SEGSIZE + o;
        if (this.allocSize[i] > 0) {
          used++;
          run = 0;
          if (this.list[i] !== 0) return `slot ${i} is used but list says ${this.list[i]} free`;
        } else {
          run++;
          if (this.list[i] !== run)
            return `slot ${i} is free with ${run} free after it, list says ${this.list[i]}`;
        }
      }
    }
    if (used !== this.used) return `${used} slots are used, the count says ${this.used}`;
    return null;
  }
}
