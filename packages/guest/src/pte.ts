/*
 * The entry bits the guest kernel builds and tests, as Linux's pgtable_types.h names them.
 * The architectural bits and _PAGE_IOMAP come from @hyperlab/abi; this file only gives them
 * the kernel's short names and composes Linux's protections from them.
 *
 * Invariant: an entry is a plain number (frame * 4096 | flags); the kernel never sets a bit
 * above 51, so the frame is bits 12..51 and a flag test is `(entry & BIT) !== 0`.
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

/** The frame an entry names (bits 12..51). */
export function entryFrame(entry: number): number {
  return Math.floor(entry / 4096) % FRAME_LIMIT;
}
