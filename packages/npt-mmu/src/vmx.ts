/*
 * VMX names the nested-paging model uses: EPT entry bits (Intel SDM vol. 3 §28.3.2, spelled
 * as Linux's asm/vmx.h spells them), VM-exit basic reasons (SDM vol. 3 appendix C, Linux's
 * uapi/asm/vmx.h) and the INVEPT / INVVPID extents.
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

// VM-exit basic reasons (Linux: EXIT_REASON_*).
export const EXIT_REASON_EXCEPTION_NMI = 0;
export const EXIT_REASON_EXTERNAL_INTERRUPT = 1;
export const EXIT_REASON_TRIPLE_FAULT = 2;
export const EXIT_REASON_CPUID = 10;
export const EXIT_REASON_HLT = 12;
export const EXIT_REASON_INVLPG = 14;
export const EXIT_REASON_RDTSC = 16;
export const EXIT_REASON_VMCALL = 18;
export const EXIT_REASON_CR_ACCESS = 28;
export const EXIT_REASON_IO_INSTRUCTION = 30;
export const EXIT_REASON_MSR_READ = 31;
export const EXIT_REASON_MSR_WRITE = 32;
export const EXIT_REASON_EPT_VIOLATION = 48;
export const EXIT_REASON_EPT_MISCONFIG = 49;
export const EXIT_REASON_INVEPT = 50;
export const EXIT_REASON_INVVPID = 53;
/** One past the largest basic exit reason the SDM defines (75 in recent editions). */
export const VMX_EXIT_REASONS_MAX = 76;

/** Exit reason names by number, for stats and reports (the names Linux's VMX_EXIT_REASONS prints). */
export const VMX_EXIT_REASON_NAMES: Readonly<Record<number, string>> = {
  [EXIT_REASON_EXCEPTION_NMI]: "EXCEPTION_NMI",
  [EXIT_REASON_EXTERNAL_INTERRUPT]: "EXTERNAL_INTERRUPT",
  [EXIT_REASON_TRIPLE_FAULT]: "TRIPLE_FAULT",
  [EXIT_REASON_CPUID]: "CPUID",
  [EXIT_REASON_HLT]: "HLT",
  [EXIT_REASON_INVLPG]: "INVLPG",
  [EXIT_REASON_RDTSC]: "RDTSC",
  [EXIT_REASON_VMCALL]: "VMCALL",
  [EXIT_REASON_CR_ACCESS]: "CR_ACCESS",
  [EXIT_REASON_IO_INSTRUCTION]: "IO_INSTRUCTION",
  [EXIT_REASON_MSR_READ]: "MSR_READ",
  [EXIT_REASON_MSR_WRITE]: "MSR_WRITE",
  [EXIT_REASON_EPT_VIOLATION]: "EPT_VIOLATION",
  [EXIT_REASON_EPT_MISCONFIG]: "EPT_MISCONFIG",
  [EXIT_REASON_INVEPT]: "INVEPT",
  [EXIT_REASON_INVVPID]: "INVVPID",
};

// INVEPT and INVVPID extents (Linux: VMX_EPT_EXTENT_*, VMX_VPID_EXTENT_*).
export const VMX_EPT_EXTENT_CONTEXT = 1;
export const VMX_EPT_EXTENT_GLOBAL = 2;
export const VMX_VPID_EXTENT_INDIVIDUAL_ADDR = 0;
export const VMX_VPID_EXTENT_SINGLE_CONTEXT = 1;
export const VMX_VPID_EXTENT_ALL_CONTEXT = 2;
export const VMX_VPID_EXTENT_SINGLE_NON_GLOBAL = 3;
