/*
 * copy_from_guest / copy_to_guest for a PV vCPU: guest virtual addresses go through the
 * domain's MMU translation (core's `mmu` slot) a page at a time, as Xen's copy_*_guest_pv
 * walk the guest's page tables.
 *
 * Invariants: nothing is read or written unless every page of the range translates (with
 * write access for a write), so a failed copy changes no byte; an address that is not a
 * canonical, unsigned 64-bit integer is -EFAULT before anything is touched; a length that
 * is not a whole number from 0 to 2^20 is -EFAULT.
 *
 * Addresses: the model's MMUs take 48-bit virtual addresses, the upper canonical half spelled
 * without its sign extension (the guest's PAGE_OFFSET is 0x8880_0000_0000), since a JS number
 * cannot hold a sign-extended kernel address to the byte. So an address below 2^48 is taken
 * as it is, a sign-extended one (from 2^64 - 2^47) is folded to its 48-bit spelling, and
 * everything between is non-canonical.
 */
import { EFAULT } from "@hyperlab/abi";
import { type MmuBackend, PFEC_write_access, type Vcpu } from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";

const PAGE = 4096;
/** Longest copy a handler makes (xen_version's largest result is 1 KiB; console_io chunks). */
const MAX_COPY = 1 << 20;
/** Pages a copy spans at most, for the scratch list of translations. */
const MAX_PAGES = MAX_COPY / PAGE + 1;

/** A guest-supplied unsigned 64-bit integer as a JS number, or -1 if it is not one. */
export function u64(x: unknown): number {
  return typeof x === "number" && Number.isInteger(x) && x >= 0 && x < 2 ** 64 ? x : -1;
}

/** Whether an address is canonical: a 48-bit spelling, or sign-extended from bit 47. */
export function isCanonical(addr: number): boolean {
  return addr < 2 ** 48 || addr >= 2 ** 64 - 2 ** 47;
}

/** The 48-bit spelling of a canonical address. */
function fold(addr: number): number {
  return addr >= 2 ** 64 - 2 ** 47 ? addr - 2 ** 64 + 2 ** 48 : addr;
}

export class GuestAccess {
  private readonly mas = new Float64Array(MAX_PAGES);
  private readonly lens = new Int32Array(MAX_PAGES);
  private readonly mmu: MmuBackend;
  private readonly ram: Ram;

  constructor(mmu: MmuBackend, ram: Ram) {
    this.mmu = mmu;
    this.ram = ram;
  }

  /** Translates every page of [va, va + len); the number of pieces, or -EFAULT. */
  private walk(v: Vcpu, va: number, len: number, access: number): number {
    if (u64(va) < 0 || !Number.isInteger(len) || len < 0 || len > MAX_COPY) return -EFAULT;
    if (len === 0) return 0;
    if (!isCanonical(va)) return -EFAULT;
    const va48 = fold(va);
    if (va48 + len > 2 ** 48) return -EFAULT;
    let n = 0;
    let at = va48;
    let left = len;
    while (left > 0) {
      const chunk = Math.min(left, PAGE - (at % PAGE));
      const ma = this.mmu.translate(v, at, access);
      if (ma < 0) return -EFAULT;
      this.mas[n] = ma;
      this.lens[n] = chunk;
      n++;
      at += chunk;
      left -= chunk;
    }
    return n;
  }

  /** copy_from_guest: `len` bytes at `va` into `dst` (from offset 0). 0 or -EFAULT. */
  read(v: Vcpu, va: number, dst: Uint8Array, len: number): number {
    if (len > dst.length) return -EFAULT;
    const n = this.walk(v, va, len, 0);
    if (n < 0) return n;
    let o = 0;
    for (let i = 0; i < n; i++) {
      const ma = this.mas[i];
      for (let j = 0; j < this.lens[i]; j++) dst[o++] = this.ram.read8(ma + j);
    }
    return 0;
  }

  /** copy_to_guest: `len` bytes of `src` (from offset 0) to `va`. 0 or -EFAULT. */
  write(v: Vcpu, va: number, src: Uint8Array, len: number): number {
    if (len > src.length) return -EFAULT;
    const n = this.walk(v, va, len, PFEC_write_access);
    if (n < 0) return n;
    let o = 0;
    for (let i = 0; i < n; i++) {
      const ma = this.mas[i];
      for (let j = 0; j < this.lens[i]; j++) this.ram.write8(ma + j, src[o++]);
    }
    return 0;
  }
}

/** Little-endian u64 from `b` at `off` as a JS number (exact below 2^53). */
export function le64(b: Uint8Array, off: number): number {
  return le32(b, off) + le32(b, off + 4) * 2 ** 32;
}

/**
 * A guest's 64-bit address field as the model spells addresses: a sign-extended upper-half
 * address folds (exactly, from its halves) to its 48-bit spelling; anything else is the
 * plain value, so a non-canonical one stays non-canonical.
 */
export function addr64(b: Uint8Array, off: number): number {
  const lo = le32(b, off);
  const hi = le32(b, off + 4);
  if (hi >= 0xffff8000) return (hi - 0xffff0000) * 2 ** 32 + lo;
  return hi * 2 ** 32 + lo;
}

export function le32(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) >>> 0;
}

export function le16(b: Uint8Array, off: number): number {
  return b[off] | (b[off + 1] << 8);
}

/** Writes a u64 given as a JS number into `b` at `off`, little-endian. */
export function put64(b: Uint8Array, off: number, x: number): void {
  const lo = x % 2 ** 32;
  put32(b, off, lo);
  put32(b, off + 4, Math.floor(x / 2 ** 32));
}

export function put32(b: Uint8Array, off: number, x: number): void {
  b[off] = x & 0xff;
  b[off + 1] = (x >>> 8) & 0xff;
  b[off + 2] = (x >>> 16) & 0xff;
  b[off + 3] = (x >>> 24) & 0xff;
}
