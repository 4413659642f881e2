/*
 * The VM-exit reasons shadow paging takes (Intel SDM vol. 3 appendix C; Linux's
 * uapi/asm/vmx.h spelling): #PF intercepts arrive as EXCEPTION_NMI, guest CR3 writes as
 * CR_ACCESS, guest INVLPG as INVLPG.
 */
export const EXIT_REASON_EXCEPTION_NMI = 0;
export const EXIT_REASON_INVLPG = 14;
export const EXIT_REASON_CR_ACCESS = 28;
/** One past the largest basic exit reason the SDM defines. */
export const VMX_EXIT_REASONS_MAX = 76;

export const SHADOW_EXIT_REASON_NAMES: Readonly<Record<number, string>> = {
  [EXIT_REASON_EXCEPTION_NMI]: "EXCEPTION_NMI",
  [EXIT_REASON_INVLPG]: "INVLPG",
  [EXIT_REASON_CR_ACCESS]: "CR_ACCESS",
};
