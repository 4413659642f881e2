/*
 * The guest kernel's address-space layout and user-visible constants, as Linux x86-64 has
 * them. Virtual addresses are plain 48-bit numbers: Linux's canonical upper half
 * 0xffff800000000000.. is written 0x800000000000.. (bits 63..48 repeat bit 47 and carry
 * nothing), as @hyperlab/pv-mmu writes them.
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
/** Entries per page-table page. */
export const PTRS_PER_TABLE = 512;

/** The user half ends here (Linux's TASK_SIZE_MAX rounded to the L4 slot boundary). */
export const USER_VA_END = 0x8000_0000_0000;
/** L4 slots of the user half (0..255) and the first slot a guest kernel may use (after Xen's 256..271). */
export const USER_PGD_SLOTS = 256;
export const KERNEL_PGD_FIRST = 272;
/** Linux's __PAGE_OFFSET 0xffff888000000000: the direct map of every pfn (L4 slot 273). */
export const PAGE_OFFSET = 0x8880_0000_0000;
/** Linux's __START_KERNEL_map 0xffffffff80000000, where Xen's builder puts the kernel image. */
export const START_KERNEL_MAP = 0xffff_8000_0000;

/** Top of the user stack, and its size at exec. */
export const STACK_TOP = 0x7fff_ffff_f000;
export const STACK_PAGES = 32;
/** Where anonymous mmap() hands out addresses, top down (Linux's mmap_base, without randomisation). */
export const MMAP_BASE = 0x7f00_0000_0000;
/** Lowest address mmap() hands out (Linux's mmap_min_addr). */
export const MMAP_MIN_ADDR = 0x10000;

/** mmap/mprotect protections (Linux's uapi values). */
export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
/** mmap flag: place the mapping exactly at `addr`, replacing what is there. */
export const MAP_FIXED = 0x10;

/** A huge page: 2 MiB, mapped by one PSE entry of a PMD (Linux's HPAGE_PMD_SIZE). */
export const HPAGE_SHIFT = 21;
export const HPAGE_SIZE = 0x20_0000;
/** 4 KiB pages in a huge page (HPAGE_PMD_NR). */
export const HPAGE_PMD_NR = 512;
/**
 * Linux's /sys/kernel/mm/transparent_hugepage/enabled: "always" gives anonymous memory 2 MiB
 * pages wherever an aligned 2 MiB range fits in an area (and the CPU has PSE); "never" maps
 * 4 KiB pages only.
 */
export type TransparentHugepage = "always" | "never";
/** CPUID.1:EDX bit of page-size extensions (Linux's X86_FEATURE_PSE, word 0 bit 3). */
export const X86_FEATURE_PSE = 3;

/** Signals the model delivers (Linux's numbers). */
export const SIGKILL = 9;
export const SIGBUS = 7;
export const SIGSEGV = 11;

/** Linux's tlb_single_page_flush_ceiling: above this many pages a range flush flushes all. */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;

/** Page-table levels, as Linux names them on 4-level x86-64 (the p4d is folded into the pgd). */
export const PT_PTE = 1;
export const PT_PMD = 2;
export const PT_PUD = 3;
export const PT_PGD = 4;
