/*
 * x86-64 page-table entry bits as Xen names them, on entries held as two 32-bit halves.
 *
 * The architectural bits (_PAGE_PRESENT .. _PAGE_NX_HI) come from @hyperlab/abi; this file
 * adds Xen's own. An entry is `lo` (bits 0..31) and `hi` (bits 32..63). Flags live in lo bits 0..11 and in
 * hi bits 20..31 (pte bits 52..63); the frame number is lo bits 12..31 plus hi bits 0..19.
 * Xen's 24-bit "flags" view (get_pte_flags) puts pte bits 52..63 at flag bits 12..23; the
 * constants below that Xen defines in that view (_PAGE_NX_BIT, _PAGE_GNTTAB,
 * _PAGE_GUEST_KERNEL, _PAGE_AVAIL_HIGH) are given here as masks of `hi` with an `_HI` suffix.
 */

import {
  _PAGE_ACCESSED,
  _PAGE_AVAIL,
  _PAGE_DIRTY,
  _PAGE_GLOBAL,
  _PAGE_NX_HI,
  _PAGE_PAT,
  _PAGE_PCD,
  _PAGE_PSE,
  _PAGE_PWT,
  _PAGE_USER,
} from "@hyperlab/abi";

/** Cache attribute bits of an L1 entry (PAT, PCD, PWT). */
export const PAGE_CACHE_ATTRS = _PAGE_PAT | _PAGE_PCD | _PAGE_PWT;

/** pte bits 52..62 (software-available) as bits of `hi`. */
export const _PAGE_AVAIL_HIGH_HI = 0x7ff0_0000;
/** pte bit 62: Xen marks grant mappings with it; guests may not set it in an L1 entry. */
export const _PAGE_GNTTAB_HI = 0x4000_0000;
/** pte bit 52: Xen's mark of a 64-bit PV guest's kernel-only page. */
export const _PAGE_GUEST_KERNEL_HI = 0x0010_0000;
/** Frame-number bits of `hi` (pte bits 32..51). */
export const PTE_MFN_HI_MASK = 0x000f_ffff;

/**
 * Xen's base_disallow_mask (arch_init_memory): everything but PRESENT, RW, USER, ACCESSED,
 * DIRTY, AVAIL, AVAIL_HIGH and NX. As a `lo` mask: PWT, PCD, PSE/PAT and GLOBAL; no `hi`
 * flag bit is disallowed at the base.
 */
export const BASE_DISALLOW_LO = _PAGE_PWT | _PAGE_PCD | _PAGE_PSE | _PAGE_GLOBAL;
/** L1_DISALLOW_MASK: base plus GNTTAB, minus GLOBAL. */
export const L1_DISALLOW_LO = BASE_DISALLOW_LO & ~_PAGE_GLOBAL;
export const L1_DISALLOW_HI = _PAGE_GNTTAB_HI;
/** l1_disallow_mask for a domain with I/O capabilities: cache attributes allowed. */
export const L1_DISALLOW_IO_LO = L1_DISALLOW_LO & ~PAGE_CACHE_ATTRS;
/** L2..L4 (64-bit guests): the base mask; PSE is in it, so superpages are refused. */
export const L2_DISALLOW_LO = BASE_DISALLOW_LO;
export const L3_DISALLOW_LO = BASE_DISALLOW_LO;
export const L4_DISALLOW_LO = BASE_DISALLOW_LO;

/**
 * FASTPATH_FLAG_WHITELIST: flags a guest may change in an L1 entry without re-validation
 * (NX, AVAIL_HIGH, AVAIL, GLOBAL, DIRTY, ACCESSED, USER).
 */
export const FASTPATH_LO = _PAGE_AVAIL | _PAGE_GLOBAL | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_USER;
export const FASTPATH_HI = _PAGE_NX_HI | _PAGE_AVAIL_HIGH_HI;
/** For L2..L4 Xen 4.17 (with PV linear page tables) uses the same whitelist. */
export const FASTPATH_PDE_LO = FASTPATH_LO;
export const FASTPATH_PDE_HI = FASTPATH_HI;

const TWO_32 = 0x1_0000_0000;
const TWO_20 = 0x10_0000;

/** The frame number an entry names. */
export function pteMfn(lo: number, hi: number): number {
  return (hi & PTE_MFN_HI_MASK) * TWO_20 + (lo >>> 12);
}

/** `lo` half of an entry naming `mfn` with low flags `flags`. */
export function pteLo(mfn: number, flags: number): number {
  return ((mfn % TWO_20) * 4096 + (flags & 0xfff)) >>> 0;
}

/** `hi` half of an entry naming `mfn` with high flag bits `hiFlags` (a `hi` mask). */
export function pteHi(mfn: number, hiFlags = 0): number {
  return (Math.floor(mfn / TWO_20) & PTE_MFN_HI_MASK) | (hiFlags & ~PTE_MFN_HI_MASK) | 0;
}

/** A 64-bit entry as a BigInt, for tests and tools (not hot paths). */
export function pteToBigInt(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Splits a guest-supplied 64-bit value (number or BigInt) into halves; false if it is not one. */
export function splitU64(v: unknown, out: { lo: number; hi: number }): boolean {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) return false;
    out.lo = (v % TWO_32) >>> 0;
    out.hi = Math.floor(v / TWO_32) >>> 0;
    return true;
  }
  if (typeof v === "bigint") {
    if (v < 0n || v >= 1n << 64n) return false;
    out.lo = Number(v & 0xffff_ffffn) >>> 0;
    out.hi = Number(v >> 32n) >>> 0;
    return true;
  }
  return false;
}
