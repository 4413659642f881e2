/*
 * VMX names the nested-paging model uses: EPT entry bits (Intel SDM vol. 3 §28.3.2, spelled
 * as Linux's asm/vmx.h spells them) and the INVEPT / INVVPID extents. The VM-exit basic
 * reasons come from @hyperlab/paging, which both nested and shadow paging import.
 *
 * An EPT entry is held as two 32-bit halves like every entry in Hyperlab: `lo` holds bits
 * 0..31 (permissions, memory type, page size, accessed, dirty, address bits 12..31), `hi`
 * holds bits 32..63 (address bits 32..51 in its low 20 bits).
 */

export const VMX_EPT_READABLE_MASK = 0x1;
export const VMX_EPT_WRITABLE_MASK = 0x2;
export const VMX_EPT_EXECUTABLE_MASK = 0x4;
export const VMX_EPT_RWX_MASK = 0x7;
/** Memory type field of a leaf (bits 3..5). */
export const VMX_EPT_MT_EPTE_SHIFT = 3;
export const VMX_EPT_MT_MASK = 0x38;
/** Write-back memory type (6), the type KVM maps RAM with. */
export const MTRR_TYPE_WRBACK = 6;
export const VMX_EPT_IPAT_BIT = 0x40;
/** Bit 7: the entry maps a 2 MiB (level 2) or 1 GiB (level 3) page. */
export const PT_PAGE_SIZE_MASK = 0x80;
export const VMX_EPT_ACCESS_BIT = 0x100;
export const VMX_EPT_DIRTY_BIT = 0x200;
/**
 * Write-and-execute without read: a misconfiguration by the SDM's rules. KVM stores it in
 * the entries of guest-physical addresses it does not back with RAM, so that later accesses
 * exit as EPT_MISCONFIG instead of walking the violation path again (its MMIO caching).
 */
export const VMX_EPT_MISCONFIG_WX_VALUE = VMX_EPT_WRITABLE_MASK | VMX_EPT_EXECUTABLE_MASK;

// VM-exit basic reasons: defined once, in @hyperlab/paging (the x86 hardware model), and
// re-exported here so that this package's API keeps them.
export {
  EXIT_REASON_CPUID,
  EXIT_REASON_CR_ACCESS,
  EXIT_REASON_EPT_MISCONFIG,
  EXIT_REASON_EPT_VIOLATION,
  EXIT_REASON_EXCEPTION_NMI,
  EXIT_REASON_EXTERNAL_INTERRUPT,
  EXIT_REASON_HLT,
  EXIT_REASON_INVEPT,
  EXIT_REASON_INVLPG,
  EXIT_REASON_INVVPID,
  EXIT_REASON_IO_INSTRUCTION,
  EXIT_REASON_MSR_READ,
  EXIT_REASON_MSR_WRITE,
  EXIT_REASON_RDTSC,
  EXIT_REASON_TRIPLE_FAULT,
  EXIT_REASON_VMCALL,
  VMX_EXIT_REASON_NAMES,
  VMX_EXIT_REASONS_MAX,
} from "@hyperlab/paging";

// INVEPT and INVVPID extents (Linux: VMX_EPT_EXTENT_*, VMX_VPID_EXTENT_*).
export const VMX_EPT_EXTENT_CONTEXT = 1;
export const VMX_EPT_EXTENT_GLOBAL = 2;
export const VMX_VPID_EXTENT_INDIVIDUAL_ADDR = 0;
export const VMX_VPID_EXTENT_SINGLE_CONTEXT = 1;
export const VMX_VPID_EXTENT_ALL_CONTEXT = 2;
export const VMX_VPID_EXTENT_SINGLE_NON_GLOBAL = 3;
