/*
 * Machine RAM: 4 KiB frames over lazily allocated 2 MiB chunks.
 *
 * Invariants: a chunk exists only once something wrote into it (or asked for a frame's
 * bytes); reading memory that was never written gives zeros and allocates nothing. All
 * values are little-endian, as on x86. Accessors take plain-number machine addresses (exact
 * up to 2^53) and never allocate on the fast (aligned) path.
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const PAGE_MASK = PAGE_SIZE - 1;

/** Frames per backing chunk (2 MiB). */
export const CHUNK_FRAMES = 512;
const CHUNK_SHIFT = 21;
const CHUNK_BYTES = 1 << CHUNK_SHIFT;
const TWO_32 = 0x1_0000_0000;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("Hyperlab needs a little-endian host: its RAM views are native typed arrays.");
}

export interface RamOptions {
  /** Size of RAM in bytes; rounded up to whole frames. */
  bytes: number;
}

export class Ram {
  /** Number of machine frames. Valid machine frame numbers are 0 .. nrFrames - 1. */
  readonly nrFrames: number;
  /** Size in bytes (nrFrames * PAGE_SIZE). */
  readonly bytes: number;
  private readonly u8s: (Uint8Array | undefined)[];
  private readonly u32s: (Uint32Array | undefined)[];
  private readonly zero32 = new Uint32Array(CHUNK_BYTES >>> 2);
  private readonly zero8 = new Uint8Array(this.zero32.buffer);
  private allocated = 0;

  constructor(options: RamOptions) {
    if (!Number.isSafeInteger(options.bytes) || options.bytes <= 0) {
      throw new RangeError(`RAM size must be a positive whole number of bytes, got ${options.bytes}`);
    }
    this.nrFrames = Math.ceil(options.bytes / PAGE_SIZE);
    this.bytes = this.nrFrames * PAGE_SIZE;
    const nrChunks = Math.ceil(this.nrFrames / CHUNK_FRAMES);
    this.u8s = new Array(nrChunks).fill(undefined);
    this.u32s = new Array(nrChunks).fill(undefined);
  }

  /** Bytes of host memory that back this RAM now (touched chunks only). */
  get residentBytes(): number {
    return this.allocated * CHUNK_BYTES;
  }

  /** Whether a machine frame number names a frame of this RAM. */
  validMfn(mfn: number): boolean {
    return mfn >= 0 && mfn < this.nrFrames && Number.isInteger(mfn);
  }

  private chunk32(idx: number): Uint32Array {
    let c = this.u32s[idx];
    if (c === undefined) {
      const buf = new ArrayBuffer(CHUNK_BYTES);
      c = new Uint32Array(buf);
      this.u32s[idx] = c;
      this.u8s[idx] = new Uint8Array(buf);
      this.allocated++;
    }
    return c;
  }

  private check(maddr: number, len: number): void {
    if (!(maddr >= 0 && maddr + len <= this.bytes)) {
      throw new RangeError(`machine address 0x${maddr.toString(16)} (+${len}) is outside RAM`);
    }
  }

  /**
   * The 32-bit word view that holds frame `mfn`, for hot paths: word `i` of the frame is
   * `view[frameWordBase(mfn) + i]`. Allocates the chunk when `forWrite` is true; otherwise an
   * untouched frame reads from a shared all-zero view that must not be written.
   */
  frameWords(mfn: number, forWrite: boolean): Uint32Array {
    const idx = (mfn / CHUNK_FRAMES) | 0;
    const c = this.u32s[idx];
    if (c !== undefined) return c;
    return forWrite ? this.chunk32(idx) : this.zero32;
  }

  /** Index of frame `mfn`'s first 32-bit word in the view from frameWords. */
  frameWordBase(mfn: number): number {
    return (mfn % CHUNK_FRAMES) << 10;
  }

  /** The bytes of one frame, as a view (allocates its chunk). Writes through the view are RAM writes. */
  frameBytes(mfn: number): Uint8Array {
    this.check(mfn * PAGE_SIZE, PAGE_SIZE);
    const idx = (mfn / CHUNK_FRAMES) | 0;
    this.chunk32(idx);
    const off = (mfn % CHUNK_FRAMES) * PAGE_SIZE;
    return this.u8s[idx]!.subarray(off, off + PAGE_SIZE);
  }

  read8(maddr: number): number {
    this.check(maddr, 1);
    const idx = (maddr / CHUNK_BYTES) | 0;
    const c = this.u8s[idx] ?? this.zero8;
    return c[maddr - idx * CHUNK_BYTES];
  }

  write8(maddr: number, value: number): void {
    this.check(maddr, 1);
    const idx = (maddr / CHUNK_BYTES) | 0;
    this.chunk32(idx);
    this.u8s[idx]![maddr - idx * CHUNK_BYTES] = value;
  }

  read16(maddr: number): number {
    return this.read8(maddr) | (this.read8(maddr + 1) << 8);
  }

  write16(maddr: number, value: number): void {
    this.write8(maddr, value & 0xff);
    this.write8(maddr + 1, (value >>> 8) & 0xff);
  }

  /** Unsigned 32-bit read. */
  read32(maddr: number): number {
    if ((maddr & 3) === 0) {
      this.check(maddr, 4);
      const idx = (maddr / CHUNK_BYTES) | 0;
      const c = this.u32s[idx] ?? this.zero32;
      return c[(maddr - idx * CHUNK_BYTES) >>> 2];
    }
    return (this.read16(maddr) | (this.read16(maddr + 2) << 16)) >>> 0;
  }

  write32(maddr: number, value: number): void {
    if ((maddr & 3) === 0) {
      this.check(maddr, 4);
      const idx = (maddr / CHUNK_BYTES) | 0;
      this.chunk32(idx)[(maddr - idx * CHUNK_BYTES) >>> 2] = value;
      return;
    }
    this.write16(maddr, value & 0xffff);
    this.write16(maddr + 2, (value >>> 16) & 0xffff);
  }

  /** Low 32 bits of the u64 at maddr. */
  read64lo(maddr: number): number {
    return this.read32(maddr);
  }

  /** High 32 bits of the u64 at maddr. */
  read64hi(maddr: number): number {
    return this.read32(maddr + 4);
  }

  /** The u64 at maddr as a number: exact below 2^53. */
  read64(maddr: number): number {
    return this.read32(maddr + 4) * TWO_32 + this.read32(maddr);
  }

  /** Writes a u64 given as two 32-bit halves. */
  write64(maddr: number, lo: number, hi: number): void {
    this.write32(maddr, lo >>> 0);
    this.write32(maddr + 4, hi >>> 0);
  }

  /** Writes a u64 given as a number (exact below 2^53). */
  write64n(maddr: number, value: number): void {
    this.write64(maddr, value % TWO_32, Math.floor(value / TWO_32));
  }

  /** The u64 at maddr as a BigInt: for tests and tools, never for hot paths. */
  readU64(maddr: number): bigint {
    return (BigInt(this.read32(maddr + 4)) << 32n) | BigInt(this.read32(maddr));
  }

  /** Writes a BigInt as a u64: for tests and tools, never for hot paths. */
  writeU64(maddr: number, value: bigint): void {
    const v = BigInt.asUintN(64, value);
    this.write64(maddr, Number(v & 0xffff_ffffn), Number(v >> 32n));
  }

  /** Copies `len` bytes out of RAM. */
  readBytes(maddr: number, len: number): Uint8Array {
    this.check(maddr, len);
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = maddr + done;
      const idx = (a / CHUNK_BYTES) | 0;
      const off = a - idx * CHUNK_BYTES;
      const n = Math.min(len - done, CHUNK_BYTES - off);
      const c = this.u8s[idx];
      if (c !== undefined) out.set(c.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  /** Copies bytes into RAM. */
  writeBytes(maddr: number, src: Uint8Array): void {
    this.check(maddr, src.length);
    let done = 0;
    while (done < src.length) {
      const a = maddr + done;
      const idx = (a / CHUNK_BYTES) | 0;
      const off = a - idx * CHUNK_BYTES;
      const n = Math.min(src.length - done, CHUNK_BYTES - off);
      this.chunk32(idx);
      this.u8s[idx]!.set(src.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Fills a frame with zeros (allocates nothing if it was never written). */
  clearFrame(mfn: number): void {
    this.check(mfn * PAGE_SIZE, PAGE_SIZE);
    const idx = (mfn / CHUNK_FRAMES) | 0;
    const c = this.u32s[idx];
    if (c === undefined) return;
    const base = (mfn % CHUNK_FRAMES) << 10;
    c.fill(0, base, base + 1024);
  }

  /** Copies frame `src` over frame `dst`. */
  copyFrame(dst: number, src: number): void {
    this.check(dst * PAGE_SIZE, PAGE_SIZE);
    this.check(src * PAGE_SIZE, PAGE_SIZE);
    const s = this.frameWords(src, false);
    const sb = this.frameWordBase(src);
    const d = this.frameWords(dst, true);
    const db = this.frameWordBase(dst);
    d.set(s.subarray(sb, sb + 1024), db);
  }
}
