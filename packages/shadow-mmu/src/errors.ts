/*
 * Typed errors of shadow-mmu: mistakes of the code that configures or drives it (a bad option. A guest never reaches these: its accesses and page-table stores end in a fault, an exit or a negative errno).
 */
import { HyperlabError } from "@hyperlab/core";

/** Every code a shadow-mmu error carries. */
export type ShadowMmuErrorCode = "SHADOW_BAD_OPTION";

/** A misuse of shadow-mmu: a HyperlabError whose `code` is one of ShadowMmuErrorCode. */
export type ShadowMmuError = HyperlabError<ShadowMmuErrorCode>;

/** Makes a shadow-mmu error; the message says what to do. */
export function shadowMmuError(code: ShadowMmuErrorCode, message: string): ShadowMmuError {
  return new HyperlabError(code, message);
}
