/*
 * Machine RAM: 4 KiB frames over lazily allocated 2 MiB chunks.
 *
 * Invariants: a chunk exists only once something wrote into it (or asked for a frame's
 * bytes); reading memory that was never written gives zeros and allocates nothing. All
 * values are little-endian, as on x86. Accessors take plain-number machine addresses (whole
 * numbers below `bytes`) and never allocate on the fast (aligned) path. An access that is
 * not wholly inside RAM throws a MachineError before it changes anything: such an address is
 * a bug in the caller, which checks guest-supplied frame numbers with `validMfn` first.
 *
 * Frame views are bounded: `frameWords(mfn)` hands out a view of exactly that frame's 1024
 * words, so an index computed from guest input cannot reach a neighbouring frame (a read past
 * it gives undefined, a write past it is dropped by the typed array). Views are made once, when
 * their chunk is, so handing one out allocates nothing. A write hook, when set (tests and
 * audits only; undefined costs one compare), hears of every store and of every view handed out
 * for writing.
 */

import { hex, MachineError } from "./errors";

/**
 * The constants of the access paths, as a const enum: the build (esbuild, as tsup bundles
 * it) writes each use as a number literal. A module-level `const` becomes a `var` in the
 * bundle, which V8 loads and checks at every use instead of folding it: `maddr / CHUNK_BYTES`
 * was a floating-point division by a loaded value on every read32. The exported constants
 * below are the API; a load-time check keeps the two equal.
 */
const enum R {
  PAGE_SHIFT = 12,
  PAGE_SIZE = 4096,
  CHUNK_FRAMES = 512,
  /** log2(CHUNK_FRAMES): `mfn >>> 9` is one instruction, an integer division is not. */
  CHUNK_FRAME_SHIFT = 9,
  CHUNK_FRAME_MASK = 511,
  CHUNK_SHIFT = 21,
  CHUNK_BYTES = 2097152,
  CHUNK_WORDS = 524288,
  FRAME_WORDS = 1024,
  TWO_32 = 4294967296,
}

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const PAGE_MASK = PAGE_SIZE - 1;

/** Frames per backing chunk (2 MiB). */
export const CHUNK_FRAMES = 512;

/**
 * Largest RAM a Ram models: 16 TiB = 2^32 frames, what Xen's x86 frame table covers without
 * CONFIG_BIGMEM (128 GiB of 32-byte page_info). Every machine frame number fits in 32 bits.
 */
export const MAX_RAM_BYTES = 2 ** 44;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("Hyperlab needs a little-endian host: its RAM views are native typed arrays.");
}

/**
 * Told of every store into RAM before it happens: `[maddr, maddr + len)` is about to change.
 * A frame view handed out for writing (`frameWords(mfn, true)`, `frameBytes`) reports its whole
 * frame, since stores through the view are not seen one by one.
 */
export type RamWriteHook = (maddr: number, len: number) => void;

/** Words (u32) in one frame: the length of every view from `frameWords`. */
export const FRAME_WORDS = PAGE_SIZE >>> 2;

if (
  R.PAGE_SHIFT !== PAGE_SHIFT ||
  R.PAGE_SIZE !== PAGE_SIZE ||
  R.CHUNK_FRAMES !== CHUNK_FRAMES ||
  R.CHUNK_FRAMES !== 1 << R.CHUNK_FRAME_SHIFT ||
  R.CHUNK_FRAME_MASK !== CHUNK_FRAMES - 1 ||
  R.CHUNK_BYTES !== 1 << R.CHUNK_SHIFT ||
  R.CHUNK_BYTES !== CHUNK_FRAMES * PAGE_SIZE ||
  R.CHUNK_WORDS !== R.CHUNK_BYTES >>> 2 ||
  R.FRAME_WORDS !== FRAME_WORDS ||
  R.TWO_32 !== 2 ** 32
) {
  throw new Error("ram.ts: the const enum R disagrees with the exported constants.");
}

export interface RamOptions {
  /** Size of RAM in bytes; rounded up to whole frames. At most MAX_RAM_BYTES. */
  bytes: number;
}

export class Ram {
  /** Number of machine frames. Valid machine frame numbers are 0 .. nrFrames - 1. */
  readonly nrFrames: number;
  /** Size in bytes (nrFrames * PAGE_SIZE). */
  readonly bytes: number;
  private readonly u8s: (Uint8Array | undefined)[];
  private readonly u32s: (Uint32Array | undefined)[];
  /** Per touched chunk, its 512 one-frame word views. */
  private readonly views: (Uint32Array[] | undefined)[];
  private readonly zeroFrame = new Uint32Array(R.FRAME_WORDS);
  private readonly zeroChunk = new Uint32Array(R.CHUNK_WORDS);
  private allocated = 0;
  /**
   * Debug write hook (see RamWriteHook): for write audits in tests; leave undefined otherwise.
   * Set it through `setWriteHook`.
   */
  private hook: RamWriteHook | undefined = undefined;

  constructor(options: RamOptions) {
    const bytes = options?.bytes;
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > MAX_RAM_BYTES) {
      throw new MachineError(
        "RAM_BAD_SIZE",
        `RAM size must be a whole number of bytes from 1 to 2^44 (16 TiB), got ${bytes}; ` +
          "pass e.g. { bytes: 256 * 1024 * 1024 }",
      );
    }
    this.nrFrames = Math.ceil(bytes / R.PAGE_SIZE);
    this.bytes = this.nrFrames * R.PAGE_SIZE;
    const nrChunks = Math.ceil(this.nrFrames / R.CHUNK_FRAMES);
    this.u8s = new Array(nrChunks).fill(undefined);
    this.u32s = new Array(nrChunks).fill(undefined);
    this.views = new Array(nrChunks).fill(undefined);
  }

  /**
   * Installs (or, with undefined, removes) the debug write hook and returns the one it
   * replaced. For audits in tests: it sees every store before it happens.
   */
  setWriteHook(hook: RamWriteHook | undefined): RamWriteHook | undefined {
    if (hook !== undefined && typeof hook !== "function") {
      throw new MachineError(
        "RAM_BAD_HOOK",
        "a RAM write hook must be a function (maddr, len) => void, or undefined to remove it",
      );
    }
    const old = this.hook;
    this.hook = hook;
    return old;
  }

  /** Bytes of host memory that back this RAM now (touched chunks only). */
  get residentBytes(): number {
    return this.allocated * R.CHUNK_BYTES;
  }

  /** Whether a machine frame number names a frame of this RAM. */
  validMfn(mfn: number): boolean {
    // nrFrames <= 2^32, so `>>> 0` keeps exactly the whole numbers that can be valid.
    return mfn >>> 0 === mfn && mfn < this.nrFrames;
  }

  /** Whether [maddr, maddr + len) is wholly inside RAM (whole numbers, len >= 0). */
  validRange(maddr: number, len: number): boolean {
    return (
      Math.floor(maddr) === maddr &&
      Math.floor(len) === len &&
      maddr >= 0 &&
      len >= 0 &&
      maddr + len <= this.bytes
    );
  }

  private chunk32(idx: number): Uint32Array {
    let c = this.u32s[idx];
    if (c === undefined) {
      const buf = new ArrayBuffer(R.CHUNK_BYTES);
      c = new Uint32Array(buf);
      this.u32s[idx] = c;
      this.u8s[idx] = new Uint8Array(buf);
      const views = new Array<Uint32Array>(R.CHUNK_FRAMES);
      for (let f = 0; f < R.CHUNK_FRAMES; f++) {
        views[f] = new Uint32Array(buf, f * R.PAGE_SIZE, R.FRAME_WORDS);
      }
      this.views[idx] = views;
      this.allocated++;
    }
    return c;
  }

  private check(maddr: number, len: number): void {
    if (!(Math.floor(len) === len && len >= 0)) {
      throw new MachineError(
        "RAM_BAD_LENGTH",
        `length ${len} is not a whole number of bytes >= 0; pass the byte count to copy`,
      );
    }
    if (!(Math.floor(maddr) === maddr && maddr >= 0 && maddr + len <= this.bytes)) {
      throw this.outOfRange(maddr, len);
    }
  }

  private outOfRange(maddr: number, len: number): MachineError {
    const what =
      Math.floor(maddr) === maddr
        ? `machine address ${hex(maddr)} (+${len} bytes) is outside RAM [0, ${hex(this.bytes)})`
        : `machine address ${maddr} is not a whole number`;
    return new MachineError(
      "RAM_OUT_OF_RANGE",
      `${what}; this is a bug in the caller: check guest-supplied frame numbers with ` +
        "ram.validMfn (or ranges with ram.validRange) before touching memory",
    );
  }

  private checkMfn(mfn: number): void {
    if (!this.validMfn(mfn)) {
      throw new MachineError(
        "RAM_OUT_OF_RANGE",
        `machine frame ${mfn} is not a frame of this RAM (0 .. ${this.nrFrames - 1}); ` +
          "check guest-supplied frame numbers with ram.validMfn before touching memory",
      );
    }
  }

  /** Byte at a machine address already checked to be inside RAM. */
  private rd8(maddr: number): number {
    const idx = (maddr / R.CHUNK_BYTES) | 0;
    const c = this.u8s[idx];
    return c === undefined ? 0 : c[maddr - idx * R.CHUNK_BYTES];
  }

  /** Stores a byte at a machine address already checked to be inside RAM. */
  private wr8(maddr: number, value: number): void {
    const idx = (maddr / R.CHUNK_BYTES) | 0;
    this.chunk32(idx);
    this.u8s[idx]![maddr - idx * R.CHUNK_BYTES] = value;
  }

  /**
   * The 1024 32-bit words of frame `mfn`, for hot paths: word `i` of the frame is `view[i]`
   * (0 <= i < 1024); the view ends where the frame does. Allocates the chunk when `forWrite` is
   * true; otherwise an untouched frame reads from a shared all-zero view that must not be
   * written. Throws a MachineError when `mfn` is not a frame of this RAM.
   */
  frameWords(mfn: number, forWrite: boolean): Uint32Array {
    if (!(mfn >>> 0 === mfn && mfn < this.nrFrames)) this.checkMfn(mfn);
    const idx = mfn >>> R.CHUNK_FRAME_SHIFT;
    if (forWrite) {
      if (this.hook !== undefined) this.hook(mfn * R.PAGE_SIZE, R.PAGE_SIZE);
      const vs = this.views[idx];
      if (vs !== undefined) return vs[mfn & R.CHUNK_FRAME_MASK];
      this.chunk32(idx);
      return this.views[idx]![mfn & R.CHUNK_FRAME_MASK];
    }
    const vs = this.views[idx];
    return vs === undefined ? this.zeroFrame : vs[mfn & R.CHUNK_FRAME_MASK];
  }

  /**
   * For the hottest read paths only (the page walker): the 2 MiB chunk view that holds frame
   * `mfn`, read-only (an untouched chunk reads from a shared all-zero view). The frame's words
   * are `[chunkWordBase(mfn), chunkWordBase(mfn) + 1024)`; the caller must keep its index in
   * that range by construction, masking it (`chunkWordBase(mfn) + ((i * 2) & 1023)`), since
   * the view does not stop at the frame. It saves frameWords' second lookup, a cache miss per
   * frame on random walks. Everything else uses frameWords. Throws like frameWords.
   */
  chunkWordsForRead(mfn: number): Uint32Array {
    if (!(mfn >>> 0 === mfn && mfn < this.nrFrames)) this.checkMfn(mfn);
    const c = this.u32s[mfn >>> R.CHUNK_FRAME_SHIFT];
    return c === undefined ? this.zeroChunk : c;
  }

  /** Index of frame `mfn`'s first word in the view from chunkWordsForRead. */
  chunkWordBase(mfn: number): number {
    return (mfn & R.CHUNK_FRAME_MASK) << 10;
  }

  /**
   * Index of frame `mfn`'s first word in the view from frameWords: always 0, since that view
   * is the frame itself.
   * @deprecated index `frameWords(mfn, w)` from 0; kept so older callers compile.
   */
  frameWordBase(_mfn: number): number {
    return 0;
  }

  /** Whether frame `mfn` is backed by host memory (its 2 MiB chunk was touched). */
  frameResident(mfn: number): boolean {
    this.checkMfn(mfn);
    return this.u32s[mfn >>> R.CHUNK_FRAME_SHIFT] !== undefined;
  }

  /** The bytes of one frame, as a view (allocates its chunk). Writes through the view are RAM writes. */
  frameBytes(mfn: number): Uint8Array {
    this.checkMfn(mfn);
    if (this.hook !== undefined) this.hook(mfn * R.PAGE_SIZE, R.PAGE_SIZE);
    const idx = mfn >>> R.CHUNK_FRAME_SHIFT;
    this.chunk32(idx);
    const off = (mfn & R.CHUNK_FRAME_MASK) * R.PAGE_SIZE;
    return this.u8s[idx]!.subarray(off, off + R.PAGE_SIZE);
  }

  read8(maddr: number): number {
    this.check(maddr, 1);
    return this.rd8(maddr);
  }

  write8(maddr: number, value: number): void {
    this.check(maddr, 1);
    if (this.hook !== undefined) this.hook(maddr, 1);
    this.wr8(maddr, value);
  }

  read16(maddr: number): number {
    this.check(maddr, 2);
    return this.rd8(maddr) | (this.rd8(maddr + 1) << 8);
  }

  write16(maddr: number, value: number): void {
    this.check(maddr, 2);
    if (this.hook !== undefined) this.hook(maddr, 2);
    this.wr8(maddr, value & 0xff);
    this.wr8(maddr + 1, (value >>> 8) & 0xff);
  }

  /** Unsigned 32-bit read. */
  read32(maddr: number): number {
    const idx = (maddr / R.CHUNK_BYTES) | 0;
    const off = maddr - idx * R.CHUNK_BYTES;
    const w = off >>> 2;
    // One compare proves both 4-byte alignment and a whole-number address.
    if (w << 2 === off && maddr >= 0 && maddr < this.bytes) {
      const c = this.u32s[idx];
      return c === undefined ? 0 : c[w];
    }
    return this.read32Slow(maddr);
  }

  private read32Slow(maddr: number): number {
    this.check(maddr, 4);
    return (
      (this.rd8(maddr) |
        (this.rd8(maddr + 1) << 8) |
        (this.rd8(maddr + 2) << 16) |
        (this.rd8(maddr + 3) << 24)) >>>
      0
    );
  }

  write32(maddr: number, value: number): void {
    const idx = (maddr / R.CHUNK_BYTES) | 0;
    const off = maddr - idx * R.CHUNK_BYTES;
    const w = off >>> 2;
    if (w << 2 === off && maddr >= 0 && maddr < this.bytes) {
      if (this.hook !== undefined) this.hook(maddr, 4);
      const c = this.u32s[idx];
      if (c === undefined) this.chunk32(idx)[w] = value;
      else c[w] = value;
      return;
    }
    this.write32Slow(maddr, value);
  }

  private write32Slow(maddr: number, value: number): void {
    this.check(maddr, 4);
    if (this.hook !== undefined) this.hook(maddr, 4);
    this.wr8(maddr, value & 0xff);
    this.wr8(maddr + 1, (value >>> 8) & 0xff);
    this.wr8(maddr + 2, (value >>> 16) & 0xff);
    this.wr8(maddr + 3, (value >>> 24) & 0xff);
  }

  /** Low 32 bits of the u64 at maddr. */
  read64lo(maddr: number): number {
    const idx = (maddr / R.CHUNK_BYTES) | 0;
    const off = maddr - idx * R.CHUNK_BYTES;
    const w = off >>> 3;
    if (w << 3 === off && maddr >= 0 && maddr < this.bytes) {
      const c = this.u32s[idx];
      return c === undefined ? 0 : c[2 * w];
    }
    this.check(maddr, 8);
    return this.read32(maddr);
  }

  /** High 32 bits of the u64 at maddr. */
  read64hi(maddr: number): number {
    const idx = (maddr / R.CHUNK_BYTES) | 0;
    const off = maddr - idx * R.CHUNK_BYTES;
    const w = off >>> 3;
    if (w << 3 === off && maddr >= 0 && maddr < this.bytes) {
      const c = this.u32s[idx];
      return c === undefined ? 0 : c[2 * w + 1];
    }
    this.check(maddr, 8);
    return this.read32(maddr + 4);
  }

  /** The u64 at maddr as a number: exact below 2^53. */
  read64(maddr: number): number {
    const idx = (maddr / R.CHUNK_BYTES) | 0;
    const off = maddr - idx * R.CHUNK_BYTES;
    const w = off >>> 3;
    if (w << 3 === off && maddr >= 0 && maddr < this.bytes) {
      const c = this.u32s[idx];
      return c === undefined ? 0 : c[2 * w + 1] * R.TWO_32 + c[2 * w];
    }
    this.check(maddr, 8);
    return this.read32(maddr + 4) * R.TWO_32 + this.read32(maddr);
  }

  /** Writes a u64 given as two 32-bit halves. */
  write64(maddr: number, lo: number, hi: number): void {
    const idx = (maddr / R.CHUNK_BYTES) | 0;
    const off = maddr - idx * R.CHUNK_BYTES;
    const w = off >>> 3;
    if (w << 3 === off && maddr >= 0 && maddr < this.bytes) {
      if (this.hook !== undefined) this.hook(maddr, 8);
      let c = this.u32s[idx];
      if (c === undefined) c = this.chunk32(idx);
      c[2 * w] = lo;
      c[2 * w + 1] = hi;
      return;
    }
    this.check(maddr, 8);
    this.write32Slow(maddr, lo >>> 0);
    this.write32Slow(maddr + 4, hi >>> 0);
  }

  /** Writes a u64 given as a number (exact below 2^53; negative numbers as two's complement). */
  write64n(maddr: number, value: number): void {
    this.write64(maddr, value % R.TWO_32, Math.floor(value / R.TWO_32));
  }

  /** The u64 at maddr as a BigInt: for tests and tools, never for hot paths. */
  readU64(maddr: number): bigint {
    this.check(maddr, 8);
    return (BigInt(this.read32(maddr + 4)) << 32n) | BigInt(this.read32(maddr));
  }

  /** Writes a BigInt as a u64: for tests and tools, never for hot paths. */
  writeU64(maddr: number, value: bigint): void {
    const v = BigInt.asUintN(64, value);
    this.write64(maddr, Number(v & 0xffff_ffffn), Number(v >> 32n));
  }

  /** Copies `len` bytes out of RAM into a new array. */
  readBytes(maddr: number, len: number): Uint8Array {
    this.check(maddr, len);
    const out = new Uint8Array(len);
    this.copyOut(maddr, out);
    return out;
  }

  /** Copies `dst.length` bytes out of RAM into `dst` (allocates nothing). */
  readInto(maddr: number, dst: Uint8Array): void {
    this.check(maddr, dst.length);
    this.copyOut(maddr, dst);
  }

  private copyOut(maddr: number, out: Uint8Array): void {
    const len = out.length;
    let done = 0;
    while (done < len) {
      const a = maddr + done;
      const idx = (a / R.CHUNK_BYTES) | 0;
      const off = a - idx * R.CHUNK_BYTES;
      const n = Math.min(len - done, R.CHUNK_BYTES - off);
      const c = this.u8s[idx];
      if (c !== undefined) out.set(c.subarray(off, off + n), done);
      else out.fill(0, done, done + n);
      done += n;
    }
  }

  /** Copies bytes into RAM. */
  writeBytes(maddr: number, src: Uint8Array): void {
    this.check(maddr, src.length);
    if (this.hook !== undefined && src.length > 0) this.hook(maddr, src.length);
    let done = 0;
    while (done < src.length) {
      const a = maddr + done;
      const idx = (a / R.CHUNK_BYTES) | 0;
      const off = a - idx * R.CHUNK_BYTES;
      const n = Math.min(src.length - done, R.CHUNK_BYTES - off);
      this.chunk32(idx);
      this.u8s[idx]!.set(src.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Fills a frame with zeros (allocates nothing if it was never written). */
  clearFrame(mfn: number): void {
    this.checkMfn(mfn);
    const idx = mfn >>> R.CHUNK_FRAME_SHIFT;
    const c = this.u32s[idx];
    if (c === undefined) return;
    if (this.hook !== undefined) this.hook(mfn * R.PAGE_SIZE, R.PAGE_SIZE);
    const base = (mfn & R.CHUNK_FRAME_MASK) << 10;
    c.fill(0, base, base + 1024);
  }

  /** Copies frame `src` over frame `dst` (allocates nothing when both were never written). */
  copyFrame(dst: number, src: number): void {
    this.checkMfn(dst);
    this.checkMfn(src);
    const s = this.u32s[src >>> R.CHUNK_FRAME_SHIFT];
    if (s === undefined) {
      this.clearFrame(dst);
      return;
    }
    // frameWords reports the store to the write hook.
    this.frameWords(dst, true).set(
      this.views[src >>> R.CHUNK_FRAME_SHIFT]![src & R.CHUNK_FRAME_MASK],
    );
  }
}
