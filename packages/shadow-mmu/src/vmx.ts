/*
 * The VM-exit reasons shadow paging takes: #PF intercepts arrive as EXCEPTION_NMI, guest CR3
 * writes as CR_ACCESS, guest INVLPG as INVLPG. The numbers and names are defined once, in
 * @hyperlab/paging (the x86 hardware model), and re-exported here for this package's API.
 */
import {
  EXIT_REASON_CR_ACCESS,
  EXIT_REASON_EXCEPTION_NMI,
  EXIT_REASON_INVLPG,
  vmxExitReasonNames,
} from "@hyperlab/paging";

export {
  EXIT_REASON_CR_ACCESS,
  EXIT_REASON_EXCEPTION_NMI,
  EXIT_REASON_INVLPG,
  VMX_EXIT_REASONS_MAX,
} from "@hyperlab/paging";

/** The exits shadow paging counts, by number. */
export const SHADOW_EXIT_REASON_NAMES: Readonly<Record<number, string>> = vmxExitReasonNames([
  EXIT_REASON_EXCEPTION_NMI,
  EXIT_REASON_INVLPG,
  EXIT_REASON_CR_ACCESS,
]);
