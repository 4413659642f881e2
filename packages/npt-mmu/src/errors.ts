/*
 * Typed errors of npt-mmu: mistakes of the code that configures or drives it (a bad option, or a host operation (INVEPT, INVVPID, zapGfn) given a bad argument. A guest never reaches these: its accesses end in a guest fault or a VM exit).
 */
import { HyperlabError } from "@hyperlab/core";

/** Every code a npt-mmu error carries. */
export type NptMmuErrorCode =
  | "NPT_BAD_OPTION"
  | "NPT_BAD_GFN"
  | "NPT_BAD_INVEPT"
  | "NPT_BAD_INVVPID";

/** A misuse of npt-mmu: a HyperlabError whose `code` is one of NptMmuErrorCode. */
export type NptMmuError = HyperlabError<NptMmuErrorCode>;

/** Makes a npt-mmu error; the message says what to do. */
export function nptMmuError(code: NptMmuErrorCode, message: string): NptMmuError {
  return new HyperlabError(code, message);
}
