/*
 * x86-64 paging-structure entries (4-level and 5-level paging), after the Intel SDM vol. 3,
 * ch. 4 (§4.5, tables 4-14 to 4-20), with Linux's names from
 * arch/x86/include/asm/pgtable_types.h and Xen's from asm-x86/page.h.
 *
 * Invariants: an entry is two unsigned 32-bit halves, lo (bits 0-31) and hi (bits 32-63);
 * frame numbers and machine addresses are plain numbers (a frame number has at most 40 bits,
 * an address at most 52). A virtual address is a plain number of `vaBits` bits (48 for
 * 4-level, 57 for 5-level): the canonical upper half 0xffff800000000000.. is written
 * 0x800000000000.. (the bits above are copies of the top bit and carry nothing), as
 * @hyperlab/pv-mmu writes it. The BigInt helpers at the end are for tests and tools only.
 */

import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_GLOBAL,
  _PAGE_NX_HI,
  _PAGE_PAT,
  _PAGE_PAT_LARGE,
  _PAGE_PCD,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_PWT,
  _PAGE_RW,
  _PAGE_USER,
  PTE_PFN_MASK_HI,
} from "@hyperlab/abi";
import { PagingError } from "./errors";

const TWO_20 = 0x10_0000;
const TWO_32 = 0x1_0000_0000;

/** Entries per paging structure, as Xen's L1_PAGETABLE_ENTRIES (every level has 512). */
export const PAGETABLE_ENTRIES = 512;
/** Bits of a VA that index one level. */
export const PAGETABLE_ORDER = 9;
/** Shift of the VA bits each level indexes (Xen's L<n>_PAGETABLE_SHIFT). */
export const L1_PAGETABLE_SHIFT = 12;
export const L2_PAGETABLE_SHIFT = 21;
export const L3_PAGETABLE_SHIFT = 30;
export const L4_PAGETABLE_SHIFT = 39;
export const L5_PAGETABLE_SHIFT = 48;

/** Bits 52-62 (hi bits 20-30): ignored by the CPU, free for software (62:59 are the
 * protection key when CR4.PKE is set; this model does not implement keys). */
export const PTE_SOFTW_HI_MASK = 0x7ff0_0000;
/** Bits 9-11 of the low half: free for software (Linux's _PAGE_IOMAP is bit 10). */
export const PTE_SOFTW_LO_MASK = 0xe00;

/** 2^shift for shift = 12 + 9 * (level - 1), indexed by level (1-5); index 0 and 6 unused. */
export const LEVEL_PAGE_SIZE: readonly number[] = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39, 2 ** 48];

/** Paging levels, as the root level: 4 (PML4) or 5 (PML5, CR4.LA57). */
export type PagingLevels = 4 | 5;

/** The frame number in an entry's address field (bits 12-51). */
export function pteMfn(lo: number, hi: number): number {
  return (hi & PTE_PFN_MASK_HI) * TWO_20 + (lo >>> 12);
}

/** The low half of an entry mapping `mfn` with flag bits `flagsLo` (bits 0-11 are kept). */
export function pteLo(mfn: number, flagsLo: number): number {
  return ((mfn << 12) | (flagsLo & 0xfff)) >>> 0; // `<<` keeps mfn's low 20 bits
}

/** The high half of an entry mapping `mfn` with high flag bits `flagsHi` (bits 52-63 kept). */
export function pteHi(mfn: number, flagsHi: number): number {
  return ((Math.floor(mfn / TWO_20) & PTE_PFN_MASK_HI) | (flagsHi & 0xfff0_0000)) >>> 0;
}

/**
 * Writes the entry mapping `mfn` with `flagsLo` (bits 0-11; for a 2 MiB/1 GiB leaf, bit 12
 * is PAT and belongs in the address field, so OR _PAGE_PAT_LARGE into the returned lo) and
 * `flagsHi` (bits 52-63, e.g. _PAGE_NX_HI) into `out[0]` (lo) and `out[1]` (hi). Returns
 * `out`. Allocates nothing: pass one reusable Uint32Array(2).
 */
export function makePte(
  mfn: number,
  flagsLo: number,
  flagsHi: number,
  out: Uint32Array | Int32Array,
): Uint32Array | Int32Array {
  out[0] = pteLo(mfn, flagsLo);
  out[1] = pteHi(mfn, flagsHi);
  return out;
}

/** Index of `va` in the paging structure of `level` (1 = PT .. 5 = PML5). */
export function pteIndex(va: number, level: number): number {
  return ((va / LEVEL_PAGE_SIZE[level]) >>> 0) & 511;
}

export function l1TableOffset(va: number): number {
  return ((va / 4096) >>> 0) & 511;
}
export function l2TableOffset(va: number): number {
  return ((va / 2 ** 21) >>> 0) & 511;
}
export function l3TableOffset(va: number): number {
  return ((va / 2 ** 30) >>> 0) & 511;
}
export function l4TableOffset(va: number): number {
  return ((va / 2 ** 39) >>> 0) & 511;
}
export function l5TableOffset(va: number): number {
  return ((va / 2 ** 48) >>> 0) & 511;
}

/** Bits of a virtual address under `levels`-level paging: 48 or 57. */
export function vaBits(levels: PagingLevels): number {
  return levels === 5 ? 57 : 48;
}

/**
 * Whether `va` is a virtual address of this model under `levels`-level paging: a whole
 * number in [0, 2^48) (or [0, 2^57)), the canonical upper half written without its
 * sign-extension bits. Use vaFromBigInt / vaFromHalves to bring in a 64-bit value.
 */
export function canonicalVa(va: number, levels: PagingLevels): boolean {
  return va >= 0 && va < (levels === 5 ? 2 ** 57 : 2 ** 48) && Math.floor(va) === va;
}

/**
 * The model's VA for a 64-bit linear address given as halves, or -1 when it is not
 * canonical (bits 63..vaBits-1 are not all equal), which on x86 is a #GP, not a #PF.
 */
export function vaFromHalves(lo: number, hi: number, levels: PagingLevels): number {
  const shift = levels === 5 ? 25 : 16; // VA bits held in hi
  const sign = (hi | 0) >> (shift - 1); // the top bits and the VA's sign bit, sign-extended
  if (sign !== 0 && sign !== -1) return -1;
  const low = hi & ((1 << shift) - 1);
  return low * TWO_32 + (lo >>> 0);
}

/** The 64-bit canonical linear address of the model's VA, as two halves in `out`. */
export function vaToHalves(
  va: number,
  levels: PagingLevels,
  out: Uint32Array | Int32Array,
): Uint32Array | Int32Array {
  const bits = vaBits(levels);
  out[0] = (va % TWO_32) >>> 0;
  let hi = Math.floor(va / TWO_32) >>> 0;
  if (va >= 2 ** (bits - 1)) hi = (hi | (0xffff_ffff << (bits - 1 - 32))) >>> 0;
  out[1] = hi;
  return out;
}

/**
 * What the CPU checks about entries: the number of levels, MAXPHYADDR, EFER.NXE, CR0.WP and
 * whether 1 GiB pages exist. It precomputes the reserved-bit masks of every level.
 */
export interface PagingModeOptions {
  /** 4 (default) or 5 (LA57). */
  levels?: PagingLevels;
  /** MAXPHYADDR, 32..52; default 46. Address bits at or above it are reserved. */
  maxPhysAddr?: number;
  /** EFER.NXE (default true): bit 63 is XD; when false bit 63 is reserved. */
  nxe?: boolean;
  /** CR0.WP (default true): supervisor writes honour RW. */
  wp?: boolean;
  /** CPUID Page1GB (default true): PS in a PDPTE maps 1 GiB; when false it is reserved. */
  gbPages?: boolean;
}

/** A paging configuration with its reserved-bit masks. Build with createPagingMode. */
export class PagingMode {
  readonly levels: PagingLevels;
  readonly vaBits: number;
  /** 2^vaBits: every VA of this mode is below it. */
  readonly vaLimit: number;
  readonly maxPhysAddr: number;
  readonly nxe: boolean;
  readonly wp: boolean;
  readonly gbPages: boolean;
  /**
   * Reserved bits of a present entry: `rsvdLo[level * 2 + ps]` and `rsvdHi[level * 2 + ps]`,
   * where ps is the entry's bit 7 (PS at levels 2-5; at level 1 it is PAT, always use 0).
   */
  readonly rsvdLo = new Uint32Array(12);
  readonly rsvdHi = new Uint32Array(12);
  /**
   * The reserved high bits, which are the same at every level and page size (every
   * `rsvdHi[i]` holds them), as a signed 32-bit number for `hi & rsvdHiAll`. The low masks
   * differ only for entries with PS set: `rsvdLo[level * 2]` is 0 at every level. The walker
   * relies on both.
   */
  readonly rsvdHiAll: number;

  constructor(options: PagingModeOptions = {}) {
    const levels = options.levels ?? 4;
    if (levels !== 4 && levels !== 5) {
      throw new PagingError(
        "PAGING_BAD_LEVELS",
        `paging levels must be 4 or 5 (LA57), got ${String(levels)}; pass { levels: 4 }`,
      );
    }
    const maxPhysAddr = options.maxPhysAddr ?? 46;
    if (!Number.isInteger(maxPhysAddr) || maxPhysAddr < 32 || maxPhysAddr > 52) {
      throw new PagingError(
        "PAGING_BAD_MAXPHYADDR",
        `MAXPHYADDR must be a whole number of bits from 32 to 52, got ${maxPhysAddr}; ` +
          "pass e.g. { maxPhysAddr: 46 }",
      );
    }
    this.levels = levels;
    this.vaBits = vaBits(levels);
    this.vaLimit = 2 ** this.vaBits;
    this.maxPhysAddr = maxPhysAddr;
    this.nxe = options.nxe ?? true;
    this.wp = options.wp ?? true;
    this.gbPages = options.gbPages ?? true;
    // Address bits maxPhysAddr..51 live in hi bits (maxPhysAddr - 32)..19.
    const addrHi = (PTE_PFN_MASK_HI & ~((1 << (maxPhysAddr - 32)) - 1)) >>> 0;
    const nxHi = this.nxe ? 0 : _PAGE_NX_HI;
    this.rsvdHiAll = addrHi | nxHi | 0;
    for (let level = 1; level <= 5; level++) {
      for (let ps = 0; ps <= 1; ps++) {
        let lo = 0;
        const hi = (addrHi | nxHi) >>> 0;
        if (ps === 1) {
          if (level >= 4 || (level === 3 && !this.gbPages)) lo |= _PAGE_PSE;
          else if (level === 3)
            lo |= 0x3fff_e000; // bits 29:13 of a 1 GiB leaf
          else if (level === 2) lo |= 0x001f_e000; // bits 20:13 of a 2 MiB leaf
        }
        this.rsvdLo[level * 2 + ps] = lo >>> 0;
        this.rsvdHi[level * 2 + ps] = hi;
      }
    }
  }
}

/** Builds a paging mode; throws PagingError on a bad option. */
export function createPagingMode(options: PagingModeOptions = {}): PagingMode {
  return new PagingMode(options);
}

/** The default 4-level and 5-level modes (MAXPHYADDR 46, NXE, WP, 1 GiB pages). */
export const PAGING_4LEVEL: PagingMode = new PagingMode({ levels: 4 });
export const PAGING_5LEVEL: PagingMode = new PagingMode({ levels: 5 });

/**
 * Whether a present entry at `level` has a reserved bit set under `mode` (what makes the
 * CPU raise #PF with PFEC_reserved_bit).
 */
export function pteReserved(lo: number, hi: number, level: number, mode: PagingMode): boolean {
  const i = level * 2 + (level > 1 && (lo & _PAGE_PSE) !== 0 ? 1 : 0);
  return (lo & mode.rsvdLo[i]) !== 0 || (hi & mode.rsvdHi[i]) !== 0;
}

/** Whether the entry at `level` is a leaf: level 1, or PS set at level 2 or 3. */
export function pteIsLeaf(lo: number, level: number): boolean {
  return level === 1 || ((level === 2 || level === 3) && (lo & _PAGE_PSE) !== 0);
}

// ---------------------------------------------------------------------------------------
// BigInt decoder, encoder and printer: for tests and tools, never for hot paths.

/** Every field of an entry, decoded. */
export interface PteFields {
  present: boolean;
  rw: boolean;
  user: boolean;
  pwt: boolean;
  pcd: boolean;
  accessed: boolean;
  dirty: boolean;
  /** Bit 7 at levels 2-5 (a 2 MiB / 1 GiB leaf at 2 / 3; reserved at 4 and 5). */
  ps: boolean;
  global: boolean;
  /** PAT: bit 7 at level 1, bit 12 in a 2 MiB / 1 GiB leaf, false otherwise. */
  pat: boolean;
  nx: boolean;
  /** Software bits 9-11, as a 3-bit number (bit 0 of it is entry bit 9). */
  softLo: number;
  /** Software bits 52-62, as an 11-bit number (bit 0 of it is entry bit 52). */
  softHi: number;
  /** Frame number of the address field (for a large leaf: the first 4 KiB frame). */
  mfn: number;
}

/** Decodes a 64-bit entry found at `level` (1-5). */
export function decodePte(value: bigint, level: number): PteFields {
  checkLevel(level);
  const v = BigInt.asUintN(64, value);
  const bit = (n: number) => ((v >> BigInt(n)) & 1n) === 1n;
  const bit7 = bit(7);
  const largeLeaf = (level === 2 || level === 3) && bit7;
  let mfn = Number((v >> 12n) & 0xff_ffff_ffffn);
  if (largeLeaf) mfn -= mfn & 1; // bit 12 is PAT in a large leaf
  return {
    present: bit(0),
    rw: bit(1),
    user: bit(2),
    pwt: bit(3),
    pcd: bit(4),
    accessed: bit(5),
    dirty: bit(6),
    ps: level > 1 && bit7,
    global: bit(8),
    pat: level === 1 ? bit7 : largeLeaf ? bit(12) : false,
    nx: bit(63),
    softLo: Number((v >> 9n) & 7n),
    softHi: Number((v >> 52n) & 0x7ffn),
    mfn,
  };
}

/**
 * Encodes fields into a 64-bit entry for `level`. Throws PagingError when a field cannot be
 * held (frame number beyond 40 bits, PAT on a non-leaf, an odd frame in a large leaf with PAT).
 */
export function encodePte(f: Partial<PteFields> & { mfn: number }, level: number): bigint {
  checkLevel(level);
  if (!Number.isInteger(f.mfn) || f.mfn < 0 || f.mfn >= 2 ** 40) {
    throw new PagingError(
      "PAGING_BAD_MFN",
      `frame number ${f.mfn} does not fit an entry's 40-bit address field; pass 0 .. 2^40-1`,
    );
  }
  const largeLeaf = (level === 2 || level === 3) && f.ps === true;
  let v = BigInt(f.mfn) << 12n;
  const set = (cond: boolean | undefined, n: number) => {
    if (cond) v |= 1n << BigInt(n);
  };
  set(f.present, 0);
  set(f.rw, 1);
  set(f.user, 2);
  set(f.pwt, 3);
  set(f.pcd, 4);
  set(f.accessed, 5);
  set(f.dirty, 6);
  if (f.pat && level !== 1 && !largeLeaf) {
    throw new PagingError(
      "PAGING_BAD_LEVEL",
      `PAT exists only in a leaf (level 1, or a level ${level} entry with ps); drop pat or set ps`,
    );
  }
  if (f.ps && level === 1) {
    throw new PagingError(
      "PAGING_BAD_LEVEL",
      "a level 1 entry has no PS bit (bit 7 is PAT there); set pat instead of ps",
    );
  }
  set(f.ps, 7);
  set(f.global, 8);
  if (level === 1) set(f.pat, 7);
  else set(f.pat, 12);
  set(f.nx, 63);
  v |= BigInt((f.softLo ?? 0) & 7) << 9n;
  v |= BigInt((f.softHi ?? 0) & 0x7ff) << 52n;
  return v;
}

/** The 64-bit value of an entry given as halves. */
export function pteToBigInt(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

const LEVEL_NAMES = ["", "PTE", "PDE", "PDPTE", "PML4E", "PML5E"];

/**
 * A one-line description of an entry, e.g. `PTE mfn=0x1234 P RW US A D NX`, with
 * `RSVD(0x...)` listing any reserved bits set under `mode` (default 4-level, MAXPHYADDR 46).
 */
export function formatPte(value: bigint, level: number, mode: PagingMode = PAGING_4LEVEL): string {
  const f = decodePte(value, level);
  const v = BigInt.asUintN(64, value);
  const lo = Number(v & 0xffff_ffffn);
  const hi = Number(v >> 32n);
  const parts = [`${LEVEL_NAMES[level]} mfn=0x${f.mfn.toString(16)}`];
  if (!f.present) parts.push("!P");
  else parts.push("P");
  const flags: [boolean, string][] = [
    [f.rw, "RW"],
    [f.user, "US"],
    [f.pwt, "PWT"],
    [f.pcd, "PCD"],
    [f.accessed, "A"],
    [f.dirty, "D"],
    [f.ps, level === 3 ? "PS(1G)" : level === 2 ? "PS(2M)" : "PS"],
    [f.global, "G"],
    [f.pat, "PAT"],
    [f.nx, "NX"],
  ];
  for (const [on, name] of flags) if (on) parts.push(name);
  if (f.softLo !== 0) parts.push(`SW9-11=0x${f.softLo.toString(16)}`);
  if (f.softHi !== 0) parts.push(`SW52-62=0x${f.softHi.toString(16)}`);
  if (f.present && pteReserved(lo, hi, level, mode)) {
    const i = level * 2 + (level > 1 && f.ps ? 1 : 0);
    const r = pteToBigInt(lo & mode.rsvdLo[i], hi & mode.rsvdHi[i]);
    parts.push(`RSVD(0x${r.toString(16)})`);
  }
  return parts.join(" ");
}

/** The model's VA for a 64-bit linear address, or -1 when it is not canonical. */
export function vaFromBigInt(value: bigint, levels: PagingLevels): number {
  const v = BigInt.asUintN(64, value);
  return vaFromHalves(Number(v & 0xffff_ffffn), Number(v >> 32n), levels);
}

/** The 64-bit canonical linear address of the model's VA. */
export function vaToBigInt(va: number, levels: PagingLevels): bigint {
  if (!canonicalVa(va, levels)) {
    throw new PagingError(
      "PAGING_BAD_VA",
      `${va} is not a VA of ${levels}-level paging: pass a whole number below 2^${vaBits(levels)}`,
    );
  }
  const bits = BigInt(vaBits(levels));
  return BigInt.asUintN(64, BigInt.asIntN(Number(bits), BigInt(va)));
}

function checkLevel(level: number): void {
  if (!(Number.isInteger(level) && level >= 1 && level <= 5)) {
    throw new PagingError(
      "PAGING_BAD_LEVEL",
      `paging level must be 1 (PTE) .. 5 (PML5E), got ${level}`,
    );
  }
}

// Re-checked here so a change in @hyperlab/abi cannot silently move a bit this file relies on.
if (
  _PAGE_PRESENT !== 1 ||
  _PAGE_RW !== 2 ||
  _PAGE_USER !== 4 ||
  _PAGE_PWT !== 8 ||
  _PAGE_PCD !== 0x10 ||
  _PAGE_ACCESSED !== 0x20 ||
  _PAGE_DIRTY !== 0x40 ||
  _PAGE_PAT !== 0x80 ||
  _PAGE_GLOBAL !== 0x100 ||
  _PAGE_PAT_LARGE !== 0x1000
) {
  throw new Error("@hyperlab/abi's x86 PTE bits moved; @hyperlab/paging needs the SDM's values");
}
