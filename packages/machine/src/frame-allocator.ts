/*
 * The machine frame allocator: a bitmap over the RAM's frames with two summary bitmaps.
 *
 * Invariants: bit i of `free` is set iff frame i is free (never for i >= nrFrames, so the
 * tail of the last word stays clear). Bit w of `anyFree` is set iff free[w] !== 0; bit w of
 * `allFree` is set iff free[w] === 0xffffffff. A reserved frame is never free. nrFree is
 * the number of set bits in `free`. A call either fails before changing anything (misuse:
 * MachineError; no memory: -1) or completes.
 *
 * Policy, after Xen's xen/common/page_alloc.c: allocation starts at the top of memory and
 * walks down (Xen walks its zones from the top down), which keeps low memory free for
 * callers that need frames below an address limit (DMA). A run of 2^order frames is aligned
 * to its size, as a buddy would be. Allocation is next-fit per order: it walks down from
 * where the last frame or run of that order was found and wraps to the top, so populating a
 * domain is O(1) per frame or run. The hints are only where a search starts: a request fails
 * only if no suitable run exists anywhere below its limit. Same calls, same frames.
 */

import { MachineError } from "./errors";
import { PAGE_SIZE } from "./ram";

/**
 * Largest run order: 2^18 frames (1 GiB), Xen's MAX_ORDER on x86
 * (CONFIG_PAGEALLOC_MAX_ORDER = 2 * PAGETABLE_ORDER).
 */
export const MAX_ORDER = 18;

/** Options for allocPages. */
export interface AllocPagesOptions {
  /** The run must lie entirely below this machine address (e.g. 2 ** 32 for 32-bit DMA). */
  below?: number;
}

/** Bits at multiples of 2^k within a word, for k = 0..5. */
const ALIGNED = [0xffffffff, 0x55555555, 0x11111111, 0x01010101, 0x00010001, 0x00000001];

/** Bits 0..b of a word (b in 0..31). */
function upTo(b: number): number {
  return 0xffffffff >>> (31 - b);
}

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** Index of the highest set bit of a non-zero word. */
function top(x: number): number {
  return 31 - Math.clz32(x);
}

/** Highest set bit of bm at or below bit i, or -1. */
function prevSet(bm: Uint32Array, i: number): number {
  if (i < 0) return -1;
  let j = Math.floor(i / 32);
  let s = bm[j] & upTo(i % 32);
  while (s === 0) {
    if (--j < 0) return -1;
    s = bm[j];
  }
  return j * 32 + top(s);
}

/**
 * Highest start of an aligned run of 2^k set bits (k <= 5) in bm, entirely below bit
 * `limit`; -1 if none. `nonZero`, when given, has bit w set iff bm[w] !== 0 and lets the
 * scan skip empty words 32 at a time.
 */
function findInWords(bm: Uint32Array, limit: number, k: number, nonZero?: Uint32Array): number {
  if (limit <= 0) return -1;
  const am = ALIGNED[k];
  const last = Math.floor((limit - 1) / 32);
  let w = last;
  while (w >= 0) {
    if (nonZero !== undefined) {
      w = prevSet(nonZero, w);
      if (w < 0) return -1;
    }
    let x = bm[w];
    if (x !== 0) {
      if (w === last) x &= upTo((limit - 1) & 31);
      for (let i = 0; i < k; i++) x &= x >>> (1 << i);
      x &= am;
      if (x !== 0) return w * 32 + top(x);
    }
    w--;
  }
  return -1;
}

/**
 * Highest start of an aligned run of 2^k set bits (k > 5) in bm, entirely below bit
 * `limit`: 2^(k-5) aligned words all ones; -1 if none.
 */
function findWholeWords(bm: Uint32Array, limit: number, k: number): number {
  const m = 2 ** (k - 5);
  for (let g = Math.floor(Math.floor(limit / 32) / m) - 1; g >= 0; g--) {
    const base = g * m;
    let j = m - 1;
    while (j >= 0 && bm[base + j] === 0xffffffff) j--;
    if (j < 0) return base * 32;
  }
  return -1;
}

export class FrameAllocator {
  /** Frames managed: machine frame numbers 0 .. nrFrames - 1. */
  readonly nrFrames: number;
  private readonly free: Uint32Array;
  private readonly anyFree: Uint32Array;
  private readonly allFree: Uint32Array;
  private readonly reserved: Uint32Array;
  private nrFree: number;
  private nrReserved = 0;
  private hint: number;
  /** Per order: the last run handed out starts here; the next search starts below it. */
  private readonly runHint = new Float64Array(MAX_ORDER + 1);
  /** Successful allocPages/allocFrame calls. */
  nrAllocs = 0;
  /** freePages/freeFrame calls. */
  nrFrees = 0;
  /** Allocation calls that returned -1. */
  nrFailed = 0;

  constructor(nrFrames: number) {
    if (!(Number.isInteger(nrFrames) && nrFrames > 0 && nrFrames <= 2 ** 32)) {
      throw new MachineError(
        "FRAME_BAD_RANGE",
        `a frame allocator needs a whole number of frames from 1 to 2^32, got ${nrFrames}; ` +
          "pass ram.nrFrames",
      );
    }
    this.nrFrames = nrFrames;
    const words = Math.ceil(nrFrames / 32);
    this.free = new Uint32Array(words).fill(0xffffffff);
    if (nrFrames % 32 !== 0) this.free[words - 1] = upTo((nrFrames % 32) - 1);
    this.reserved = new Uint32Array(words);
    this.anyFree = new Uint32Array(Math.ceil(words / 32));
    this.allFree = new Uint32Array(Math.ceil(words / 32));
    for (let w = 0; w < words; w++) this.sync(w);
    this.nrFree = nrFrames;
    this.hint = nrFrames - 1;
    this.runHint.fill(nrFrames);
  }

  /** Frames free now. */
  get nrFreeFrames(): number {
    return this.nrFree;
  }

  /** Frames reserved at boot. */
  get nrReservedFrames(): number {
    return this.nrReserved;
  }

  /** Whether frame `mfn` is free. */
  isFree(mfn: number): boolean {
    this.checkRange(mfn, 1);
    return (this.free[mfn >>> 5] & (1 << (mfn & 31))) !== 0;
  }

  /** Whether frame `mfn` was reserved. */
  isReserved(mfn: number): boolean {
    this.checkRange(mfn, 1);
    return (this.reserved[mfn >>> 5] & (1 << (mfn & 31))) !== 0;
  }

  /** Refreshes the summary bits of word w. */
  private sync(w: number): void {
    const v = this.free[w];
    const bit = 1 << (w & 31);
    const j = w >>> 5;
    if (v !== 0) this.anyFree[j] |= bit;
    else this.anyFree[j] &= ~bit;
    if (v === 0xffffffff) this.allFree[j] |= bit;
    else this.allFree[j] &= ~bit;
  }

  /** Highest free frame at or below f (f valid), or -1. */
  private freeAtOrBelow(f: number): number {
    const w = f >>> 5;
    const bits = this.free[w] & upTo(f & 31);
    if (bits !== 0) return w * 32 + top(bits);
    const word = prevSet(this.anyFree, w - 1);
    return word < 0 ? -1 : word * 32 + top(this.free[word]);
  }

  private take(f: number): void {
    const w = f >>> 5;
    this.free[w] &= ~(1 << (f & 31));
    this.sync(w);
    this.nrFree--;
  }

  /** Allocates one frame: its machine frame number, or -1 when none is free. */
  allocFrame(): number {
    if (this.nrFree === 0) {
      this.nrFailed++;
      return -1;
    }
    let f = this.freeAtOrBelow(this.hint);
    if (f < 0) f = this.freeAtOrBelow(this.nrFrames - 1);
    this.take(f);
    this.hint = f > 0 ? f - 1 : this.nrFrames - 1;
    this.nrAllocs++;
    return f;
  }

  /**
   * Allocates 2^order machine-contiguous frames aligned to 2^order frames, optionally
   * entirely below a machine address. Returns the first frame, or -1 when no such run is free.
   */
  allocPages(order: number, options?: AllocPagesOptions): number {
    if (!(order >>> 0 === order && order <= MAX_ORDER)) {
      throw new MachineError(
        "FRAME_BAD_ORDER",
        `order ${order} is not a whole number from 0 to MAX_ORDER (${MAX_ORDER}); ` +
          "a run is 2^order frames",
      );
    }
    let limit = this.nrFrames;
    const below = options?.below;
    if (below !== undefined) {
      if (!(below >= 0)) {
        throw new MachineError(
          "FRAME_BAD_RANGE",
          `options.below must be a machine address >= 0, got ${below}; e.g. 2 ** 32 for 32-bit DMA`,
        );
      }
      limit = Math.min(limit, Math.floor(below / PAGE_SIZE));
    }
    if (order === 0 && limit === this.nrFrames) return this.allocFrame();
    const n = 2 ** order;
    let f = -1;
    if (this.nrFree >= n && limit >= n) {
      // Next-fit per order: below the last run of this order first, then from the top.
      const top = Math.min(limit, this.runHint[order]);
      f = this.findRun(order, top);
      if (f < 0 && top < limit) f = this.findRun(order, limit);
      if (f >= 0) this.runHint[order] = f;
    }
    if (f < 0) {
      this.nrFailed++;
      return -1;
    }
    this.setRange(f, n, false);
    this.nrFree -= n;
    this.nrAllocs++;
    return f;
  }

  /** Highest free aligned run of 2^order frames entirely below frame `limit`, or -1. */
  private findRun(order: number, limit: number): number {
    if (order <= 5) return findInWords(this.free, limit, order, this.anyFree);
    const words = Math.floor(limit / 32);
    const w =
      order <= 10
        ? findInWords(this.allFree, words, order - 5)
        : findWholeWords(this.allFree, words, order - 5);
    return w < 0 ? -1 : w * 32;
  }

  /** Frees the frame `mfn`. Freeing a frame that is not allocated throws a MachineError. */
  freeFrame(mfn: number): void {
    this.freePages(mfn, 0);
  }

  /**
   * Frees the 2^order frames from `mfn`. Every one must be allocated and not reserved, or
   * this throws a MachineError and frees nothing.
   */
  freePages(mfn: number, order: number): void {
    if (!(order >>> 0 === order && order <= MAX_ORDER)) {
      throw new MachineError(
        "FRAME_BAD_ORDER",
        `order ${order} is not a whole number from 0 to MAX_ORDER (${MAX_ORDER}); ` +
          "free with the order you allocated with",
      );
    }
    const n = 2 ** order;
    this.checkRange(mfn, n);
    this.forWords(mfn, n, (w, mask) => {
      if ((this.reserved[w] & mask) !== 0) {
        throw new MachineError(
          "FRAME_RESERVED",
          `frame ${w * 32 + top(this.reserved[w] & mask)} was reserved at boot and cannot be freed; ` +
            "free only frames that allocFrame or allocPages returned",
        );
      }
      if ((this.free[w] & mask) !== 0) {
        throw new MachineError(
          "FRAME_NOT_ALLOCATED",
          `frame ${w * 32 + top(this.free[w] & mask)} is not allocated (double free?); ` +
            "free only frames that allocFrame or allocPages returned, once",
        );
      }
    });
    this.setRange(mfn, n, true);
    this.nrFree += n;
    this.nrFrees++;
  }

  /**
   * Reserves `count` frames from `mfn` at boot (frame 0, MMIO holes, firmware tables): they
   * are never allocated and cannot be freed. Reserving an already reserved frame is a no-op;
   * reserving an allocated frame throws a MachineError.
   */
  reserve(mfn: number, count: number): void {
    if (!(Number.isSafeInteger(count) && count >= 0)) {
      throw new MachineError(
        "FRAME_BAD_RANGE",
        `reserve count ${count} is not a whole number of frames >= 0`,
      );
    }
    if (count === 0) return;
    this.checkRange(mfn, count);
    this.forWords(mfn, count, (w, mask) => {
      const busy = ~this.free[w] & ~this.reserved[w] & mask;
      if (busy !== 0) {
        throw new MachineError(
          "FRAME_BUSY",
          `frame ${w * 32 + top(busy)} is already allocated and cannot be reserved; ` +
            "reserve ranges at boot, before allocating",
        );
      }
    });
    this.forWords(mfn, count, (w, mask) => {
      const fresh = this.free[w] & mask;
      this.nrFree -= popcount(fresh);
      this.nrReserved += popcount(fresh);
      this.reserved[w] |= mask;
      this.free[w] &= ~mask;
      this.sync(w);
    });
  }

  private checkRange(mfn: number, count: number): void {
    if (!(mfn >>> 0 === mfn && mfn + count <= this.nrFrames)) {
      throw new MachineError(
        "FRAME_BAD_RANGE",
        `frames ${mfn} .. ${mfn + count - 1} are not all frames of this machine ` +
          `(0 .. ${this.nrFrames - 1}); clip the range to the RAM`,
      );
    }
  }

  /** Calls fn(word, mask) for each word that frames [mfn, mfn + count) touch. */
  private forWords(mfn: number, count: number, fn: (w: number, mask: number) => void): void {
    const end = mfn + count;
    let f = mfn;
    while (f < end) {
      const w = Math.floor(f / 32);
      const lo = f % 32;
      const hi = Math.min(32, end - w * 32);
      const mask = (upTo(hi - 1) & ~(lo === 0 ? 0 : upTo(lo - 1))) | 0;
      fn(w, mask);
      f = w * 32 + hi;
    }
  }

  /** Marks frames [mfn, mfn + count) free or allocated and refreshes the summaries. */
  private setRange(mfn: number, count: number, free: boolean): void {
    this.forWords(mfn, count, (w, mask) => {
      if (free) this.free[w] |= mask;
      else this.free[w] &= ~mask;
      this.sync(w);
    });
  }
}
