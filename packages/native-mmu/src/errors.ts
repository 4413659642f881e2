/*
 * Typed errors of native-mmu: mistakes of the code that configures or drives it (a bad option. A kernel never reaches these: its accesses end in a page fault).
 */
import { HyperlabError } from "@hyperlab/core";

/** Every code a native-mmu error carries. */
export type NativeMmuErrorCode = "NATIVE_BAD_OPTION";

/** A misuse of native-mmu: a HyperlabError whose `code` is one of NativeMmuErrorCode. */
export type NativeMmuError = HyperlabError<NativeMmuErrorCode>;

/** Makes a native-mmu error; the message says what to do. */
export function nativeMmuError(code: NativeMmuErrorCode, message: string): NativeMmuError {
  return new HyperlabError(code, message);
}
