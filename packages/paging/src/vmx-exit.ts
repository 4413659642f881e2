/*
 * VM-exit basic reasons (Intel SDM vol. 3, appendix C; spelled as Linux's uapi/asm/vmx.h
 * spells them) and their names, defined once for every backend that counts VM exits (nested
 * paging, shadow paging).
 *
 * They live in paging, not in core, because an exit reason is a fact of the x86 hardware
 * (the number the CPU writes into the VMCS when it leaves the guest), as page-fault error
 * codes are; core holds hypervisor concepts and needs none of them. Invariant: a reason has
 * one number and one name here, and VMX_EXIT_REASONS_MAX bounds every number.
 */

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
export const EXIT_REASON_APIC_ACCESS = 44;
export const EXIT_REASON_EOI_INDUCED = 45;
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
  [EXIT_REASON_APIC_ACCESS]: "APIC_ACCESS",
  [EXIT_REASON_EOI_INDUCED]: "EOI_INDUCED",
  [EXIT_REASON_EPT_VIOLATION]: "EPT_VIOLATION",
  [EXIT_REASON_EPT_MISCONFIG]: "EPT_MISCONFIG",
  [EXIT_REASON_INVEPT]: "INVEPT",
  [EXIT_REASON_INVVPID]: "INVVPID",
};

/** The names of some reasons only (a backend that takes fewer exits reports only those). */
export function vmxExitReasonNames(reasons: readonly number[]): Readonly<Record<number, string>> {
  const out: Record<number, string> = {};
  for (const r of reasons) out[r] = VMX_EXIT_REASON_NAMES[r] ?? `EXIT_${r}`;
  return out;
}
