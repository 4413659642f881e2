/*
 * The MMIO map: which device answers an access to a machine address that is not RAM.
 *
 * Invariants: regions are disjoint half-open ranges [base, base + len) kept sorted by base
 * in parallel arrays, so a lookup is a binary search (plus a one-entry cache of the last hit).
 * An access is claimed only if it lies wholly inside one region; anything else is unclaimed:
 * a read returns all ones (what an x86 bus returns for a master abort) and a write is
 * dropped, and both are counted. Addresses never throw: they may come from a guest.
 *
 * RAM and MMIO are separate decoders here. To give a hole in RAM to devices, reserve its
 * frames in the frame allocator so they are never handed out, and let the hypervisor decide
 * (iomem permissions) which decoder an access goes to.
 */

import { hex, MachineError } from "./errors";

/** Access widths in bytes. A width-8 access carries its value as two 32-bit halves. */
export type MmioWidth = 1 | 2 | 4 | 8;

/** Highest machine address + 1 an MMIO region may reach (52 address bits, as x86-64). */
export const MMIO_ADDRESS_LIMIT = 2 ** 52;

/** Where a width-8 read callback stores the high 32 bits of its value. */
export interface MmioHi {
  hi: number;
}

/** A device's callbacks. `offset` is relative to the region's base. */
export interface MmioOps {
  /**
   * Returns the value read (unsigned, `width` bytes). For width 8 it returns the low 32 bits
   * and stores the high 32 bits in `out.hi`.
   */
  read(offset: number, width: MmioWidth, out: MmioHi): number;
  /** Stores a value; for width 8, `value` is the low 32 bits and `hi` the high (else 0). */
  write(offset: number, width: MmioWidth, value: number, hi: number): void;
}

/** A region to register. */
export interface MmioRegionSpec extends MmioOps {
  /** A name for messages and stats, e.g. "hpet" or "0000:00:03.0 BAR0". */
  name: string;
  base: number;
  len: number;
}

/** A registered region: its spec plus counters. */
export interface MmioRegion extends MmioRegionSpec {
  reads: number;
  writes: number;
}

const ONES = 0xffffffff;
const WIDTH_MASK = [0, 0xff, 0xffff, 0, 0xffffffff, 0, 0, 0, 0xffffffff];

export class MmioMap {
  private bases: number[] = [];
  private ends: number[] = [];
  private regions: MmioRegion[] = [];
  private last = -1;
  private readonly out: MmioHi = { hi: 0 };
  /** High 32 bits of the value of the last width-8 read. */
  hi = 0;
  /** Claimed reads and writes. */
  reads = 0;
  writes = 0;
  /** Accesses no device claimed (reads returned all ones; writes were dropped). */
  unclaimedReads = 0;
  unclaimedWrites = 0;

  /** Registers a region. Overlapping an existing one throws a MachineError. */
  register(spec: MmioRegionSpec): MmioRegion {
    const { base, len, name } = spec;
    if (
      !(
        Number.isSafeInteger(base) &&
        Number.isSafeInteger(len) &&
        base >= 0 &&
        len > 0 &&
        base + len <= MMIO_ADDRESS_LIMIT
      )
    ) {
      throw new MachineError(
        "MMIO_BAD_REGION",
        `MMIO region "${name}" at ${hex(base)} length ${len} is not a range of whole ` +
          "machine addresses below 2^52 with length > 0",
      );
    }
    if (typeof spec.read !== "function" || typeof spec.write !== "function") {
      throw new MachineError(
        "MMIO_BAD_REGION",
        `MMIO region "${name}" needs read(offset, width, out) and write(offset, width, value, hi) callbacks`,
      );
    }
    const i = this.upperBound(base); // regions[0 .. i-1] start at or below base
    const clash =
      i > 0 && this.ends[i - 1] > base
        ? this.regions[i - 1]
        : i < this.regions.length && this.bases[i] < base + len
          ? this.regions[i]
          : undefined;
    if (clash !== undefined) {
      throw new MachineError(
        "MMIO_OVERLAP",
        `MMIO region "${name}" [${hex(base)}, ${hex(base + len)}) overlaps "${clash.name}" ` +
          `[${hex(clash.base)}, ${hex(clash.base + clash.len)}); move one of them or unregister the old one`,
      );
    }
    const region: MmioRegion = { ...spec, reads: 0, writes: 0 };
    this.bases.splice(i, 0, base);
    this.ends.splice(i, 0, base + len);
    this.regions.splice(i, 0, region);
    this.last = -1;
    return region;
  }

  /** Removes a region returned by register (e.g. a BAR being moved). */
  unregister(region: MmioRegion): void {
    const i = this.regions.indexOf(region);
    if (i < 0) {
      throw new MachineError(
        "MMIO_NOT_REGISTERED",
        `MMIO region "${region?.name}" is not registered here; pass the object register returned`,
      );
    }
    this.bases.splice(i, 1);
    this.ends.splice(i, 1);
    this.regions.splice(i, 1);
    this.last = -1;
  }

  /** The registered regions, sorted by base. */
  list(): readonly MmioRegion[] {
    return this.regions.slice();
  }

  /** Number of regions whose base is <= addr. */
  private upperBound(addr: number): number {
    let lo = 0;
    let hi = this.bases.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.bases[mid] <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the region that holds [addr, addr + width) wholly, or -1. */
  private find(addr: number, width: number): number {
    if (!Number.isInteger(addr)) return -1;
    const l = this.last;
    if (l >= 0 && addr >= this.bases[l] && addr + width <= this.ends[l]) return l;
    const i = this.upperBound(addr) - 1;
    if (i >= 0 && addr + width <= this.ends[i]) {
      this.last = i;
      return i;
    }
    return -1;
  }

  /** The region that holds addr, if any. */
  lookup(addr: number): MmioRegion | undefined {
    const i = this.find(addr, 1);
    return i < 0 ? undefined : this.regions[i];
  }

  private checkWidth(width: number): void {
    if (width !== 1 && width !== 2 && width !== 4 && width !== 8) {
      throw new MachineError("MMIO_BAD_WIDTH", `MMIO width ${width} is not 1, 2, 4 or 8 bytes`);
    }
  }

  /**
   * Reads `width` bytes at addr. Returns the value, or for width 8 its low 32 bits with the
   * high 32 bits in `this.hi`. Unclaimed: all ones.
   */
  read(addr: number, width: MmioWidth): number {
    this.checkWidth(width);
    const i = this.find(addr, width);
    if (i < 0) {
      this.unclaimedReads++;
      this.hi = width === 8 ? ONES : 0;
      return WIDTH_MASK[width];
    }
    const r = this.regions[i];
    r.reads++;
    this.reads++;
    this.out.hi = 0;
    const v = r.read(addr - r.base, width, this.out);
    this.hi = width === 8 ? this.out.hi >>> 0 : 0;
    return (v & WIDTH_MASK[width]) >>> 0;
  }

  /** Writes `width` bytes at addr; for width 8, `value` is the low half and `hi` the high. */
  write(addr: number, width: MmioWidth, value: number, hi = 0): void {
    this.checkWidth(width);
    const i = this.find(addr, width);
    if (i < 0) {
      this.unclaimedWrites++;
      return;
    }
    const r = this.regions[i];
    r.writes++;
    this.writes++;
    r.write(addr - r.base, width, (value & WIDTH_MASK[width]) >>> 0, width === 8 ? hi >>> 0 : 0);
  }
}
