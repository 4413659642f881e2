/*
 * The entry bits the guest kernel builds and tests, as Linux's pgtable_types.h names them.
 * The architectural bits and _PAGE_IOMAP come from @hyperlab/abi; this file only gives them
 * the kernel's short names and composes Linux's protections from them.
 *
 * Invariant: an entry is a plain number (frame * 4096 | flags); the kernel never sets a bit
 * above 51, so the frame is bits 12..51 and a flag test is `(entry & BIT) !== 0`. The entry
 * arithmetic below (frame, low and high halves) uses no `%`: V8 compiles a float modulo to
 * an x87 `fprem` loop; a multiply by 2^-k, Math.floor/Math.trunc and a subtraction give the
 * same value as the `%` form for every number (all of them exact; only -0 may become +0).
 */
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_GLOBAL,
  _PAGE_IOMAP,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_USER,
} from "@hyperlab/abi";

export const E_PRESENT = _PAGE_PRESENT;
export const E_RW = _PAGE_RW;
export const E_USER = _PAGE_USER;
export const E_ACCESSED = _PAGE_ACCESSED;
export const E_DIRTY = _PAGE_DIRTY;
/** Page-size bit of a PMD entry: the entry maps a 2 MiB page (Linux's _PAGE_PSE). */
export const E_PSE = _PAGE_PSE;
/** Linux's _PAGE_PROTNONE (the global bit of a non-present PTE): a PROT_NONE page, still the process's. */
export const E_PROTNONE = _PAGE_GLOBAL;
/** A PTE that holds a page: present, or PROT_NONE (pte_present in Linux's sense). */
export const E_HOLDS_PAGE = E_PRESENT | E_PROTNONE;
/**
 * Linux's _PAGE_IOMAP (software bit 10): the frame of this entry is a device frame, not a
 * pfn of RAM, so pv_ops.mmu.makeIoPte keeps it as it is where makePte would translate.
 */
export const E_IOMAP = _PAGE_IOMAP;
/** Bits 12..51 of an entry: the frame (above them Xen and the CPU keep flags, e.g. NX). */
export const FRAME_LIMIT = 2 ** 40;
/** Linux's _PAGE_TABLE: what an upper-level entry of a user table holds. */
export const PAGE_TABLE = E_PRESENT | E_RW | E_USER | E_ACCESSED | E_DIRTY;
/** Linux's _KERNPG_TABLE and PAGE_KERNEL (without NX and GLOBAL, which the model leaves out). */
export const KERNPG_TABLE = E_PRESENT | E_RW | E_ACCESSED | E_DIRTY;
export const PAGE_KERNEL = KERNPG_TABLE;
export const PAGE_KERNEL_RO = E_PRESENT | E_ACCESSED | E_DIRTY;
/** Linux's PAGE_KERNEL_IO: a kernel mapping of device memory (_PAGE_IOMAP set). */
export const PAGE_KERNEL_IO = PAGE_KERNEL | E_IOMAP;

/**
 * The frame an entry names (bits 12..51): `Math.floor(entry / 4096) % 2 ** 40` without the
 * float modulo. `x - Math.trunc(x / 2 ** 40) * 2 ** 40` is `x % 2 ** 40` for every number x
 * (fmod is exact, and so is each step here: the products are by powers of two and the
 * difference is the exact remainder, which a double holds); only a -0 result reads +0.
 */
export function entryFrame(entry: number): number {
  const x = Math.floor(entry * 2 ** -12);
  return x - Math.trunc(x * 2 ** -40) * 2 ** 40;
}

/** The low 32 bits of an entry as its store writes them: `entry % 2 ** 32`, exactly, without `%`. */
export function entryLo(entry: number): number {
  return entry - Math.trunc(entry * 2 ** -32) * 2 ** 32;
}

/** The high bits of an entry as its store writes them: `Math.floor(entry / 2 ** 32)`, exactly. */
export function entryHi(entry: number): number {
  return Math.floor(entry * 2 ** -32);
}
