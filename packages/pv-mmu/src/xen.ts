/*
 * Constants of Xen 4.17 that its public headers do not export (or export in a form this
 * model cannot use directly), spelled as Xen spells them. Data only; everything public comes
 * from @hyperlab/abi.
 */

/** Set in `count` by a continuation of mmu_update / mmuext_op (xen.h, a macro there). */
export const MMU_UPDATE_PREEMPTED = 0x8000_0000;
/** memory_op's cmd carries a continuation's start extent above this shift (memory.h). */
export const MEMOP_EXTENT_SHIFT = 6;
export const MEMOP_CMD_MASK = (1 << MEMOP_EXTENT_SHIFT) - 1;
/** The M2P value of a frame with no guest pfn (~0UL), as its two halves. */
export const INVALID_M2P_ENTRY_HALF = 0xffff_ffff;

/*
 * Virtual addresses are plain numbers of 48 bits: the canonical upper half
 * 0xffff800000000000.. is written 0x800000000000.. (bits 63..48 are copies of bit 47 and
 * carry nothing; a double holds 48 bits exactly, but not every 64-bit canonical address).
 */
export const VA_BITS = 48;
export const VA_LIMIT = 2 ** VA_BITS;
/** HYPERVISOR_VIRT_START .. HYPERVISOR_VIRT_END: L4 slots 256..271 (asm/config.h). */
export const HYPERVISOR_VIRT_START_48 = 0x8000_0000_0000;
export const HYPERVISOR_VIRT_END_48 = 0x8800_0000_0000;
/** RO_MPT_VIRT_START: the read-only M2P guests may read (MACH2PHYS_VIRT_START). */
export const RO_MPT_VIRT_START_48 = 0x8000_0000_0000;
export const ROOT_PAGETABLE_FIRST_XEN_SLOT = 256;
export const ROOT_PAGETABLE_LAST_XEN_SLOT = 271;
export const RO_MPT_SLOT = 256;
/** Entries per page-table page. */
export const PTES_PER_PAGE = 512;
