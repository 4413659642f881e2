/*
 * The apic-hooks package's error codes. A user's mistake (bad plugin options, a toolstack
 * naming an irq that does not exist or a domain this provider never saw) throws a
 * HyperlabError with one of these codes; what a guest passes never throws (Xen's -errno).
 */
import { HyperlabError } from "@hyperlab/core";

/** Every code a HyperlabError thrown by @hyperlab/apic-hooks carries. */
export type ApicHooksErrorCode =
  | "APIC_HOOKS_BAD_OPTIONS"
  | "APIC_HOOKS_BAD_IRQ"
  | "APIC_HOOKS_UNKNOWN_DOMAIN";

/** A user mistake reported by apic-hooks. */
export type ApicHooksError = HyperlabError<ApicHooksErrorCode>;

export function apicHooksError(code: ApicHooksErrorCode, message: string): ApicHooksError {
  return new HyperlabError<ApicHooksErrorCode>(code, message);
}
