/*
 * x86 page-table entry bits (4-level paging, 64-bit entries). These are not part of Xen's
 * public headers: the bit positions follow the Intel SDM vol. 3, §4.5 ("4-level paging"),
 * and the names follow Linux's arch/x86/include/asm/pgtable_types.h (and Xen's
 * asm-x86/page.h, which uses the same _PAGE_* spelling).
 *
 * Invariant: an entry is two 32-bit halves, lo (bits 0-31) and hi (bits 32-63), so hot
 * paths never need BigInt. A *_HI mask applies to the hi half and is given unsigned
 * (0x80000000, not 1 << 31), so it equals what a Uint32Array holds; test it with
 * `(hi & _PAGE_NX_HI) !== 0`.
 */

// Bits of the low half.
/** Bit 0: the entry maps something (or points to a table). */
export const _PAGE_PRESENT = 0x001;
/** Bit 1: writes allowed. */
export const _PAGE_RW = 0x002;
/** Bit 2: user-mode accesses allowed. */
export const _PAGE_USER = 0x004;
/** Bit 3: page-level write-through. */
export const _PAGE_PWT = 0x008;
/** Bit 4: page-level cache disable. */
export const _PAGE_PCD = 0x010;
/** Bit 5: set by the CPU on any access. */
export const _PAGE_ACCESSED = 0x020;
/** Bit 6: set by the CPU on a write (leaf entries only). */
export const _PAGE_DIRTY = 0x040;
/** Bit 7 of a PDE or PDPTE: the entry maps a 2 MiB or 1 GiB page. */
export const _PAGE_PSE = 0x080;
/** Bit 7 of a 4 KiB PTE: the PAT index's high bit (same bit as _PAGE_PSE). */
export const _PAGE_PAT = 0x080;
/** Bit 8: global translation, kept across CR3 loads when CR4.PGE is set. */
export const _PAGE_GLOBAL = 0x100;
/** Bit 9: ignored by the CPU, free for software. */
export const _PAGE_AVAIL0 = 0x200;
/** Bit 10: ignored by the CPU, free for software. */
export const _PAGE_AVAIL1 = 0x400;
/** Bit 11: ignored by the CPU, free for software. */
export const _PAGE_AVAIL2 = 0x800;
/** Bits 9-11 together. */
export const _PAGE_AVAIL = 0xe00;
/** Bit 12 of a 2 MiB / 1 GiB leaf: the PAT index's high bit there. */
export const _PAGE_PAT_LARGE = 0x1000;

/**
 * Linux's "I/O mapping" software bit: the frame in this PTE is a machine frame (device
 * memory), so a Xen PV kernel must not translate it through the P2M. Linux of the 2.6.30
 * era defines _PAGE_BIT_IOMAP as 10 in pgtable_types.h; later kernels keep bit 10 and
 * spell it _PAGE_BIT_SOFTW2 (the second software-available bit), until the flag was
 * removed. Either way it is software bit 10, i.e. _PAGE_AVAIL1.
 */
export const _PAGE_BIT_IOMAP = 10;
export const _PAGE_IOMAP = 0x400;

// Bits of the high half.
/** Bit 63 (bit 31 of the high half): no instruction fetch, when EFER.NXE is set. */
export const _PAGE_NX_HI = 0x80000000;

// Physical addresses.
/** Most physical address bits an x86-64 entry can hold (MAXPHYADDR's architectural limit). */
export const PADDR_BITS = 52;
/** Mask of a physical address, low half (bits 0-31). */
export const PADDR_MASK_LO = 0xffffffff;
/** Mask of a physical address, high half (bits 32-51). */
export const PADDR_MASK_HI = 0x000fffff;
/** Frame address field of an entry (bits 12-51), low half. */
export const PTE_PFN_MASK_LO = 0xfffff000;
/** Frame address field of an entry (bits 12-51), high half. */
export const PTE_PFN_MASK_HI = 0x000fffff;
/** Flag bits of the low half (bits 0-11). */
export const PTE_FLAGS_MASK_LO = 0x00000fff;
