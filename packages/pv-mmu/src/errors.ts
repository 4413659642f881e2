/*
 * Typed errors of pv-mmu: mistakes of the code that configures or drives it (a bad option, or a domain build that cannot fit. A guest never reaches these: every hypercall answers with Xen's negative errno).
 */
import { HyperlabError } from "@hyperlab/core";

/** Every code a pv-mmu error carries. */
export type PvMmuErrorCode =
  | "PV_MMU_BAD_OPTION"
  | "PV_MMU_NO_MEMORY_FOR_M2P"
  | "PV_BUILD_32BIT"
  | "PV_BUILD_BAD_BASE"
  | "PV_BUILD_BAD_SIZE"
  | "PV_BUILD_NO_MEMORY"
  | "PV_BUILD_OVERLAPS_XEN"
  | "PV_BUILD_TOO_SMALL"
  | "PV_BUILD_TWICE";

/** A misuse of pv-mmu: a HyperlabError whose `code` is one of PvMmuErrorCode. */
export type PvMmuError = HyperlabError<PvMmuErrorCode>;

/** Makes a pv-mmu error; the message says what to do. */
export function pvMmuError(code: PvMmuErrorCode, message: string): PvMmuError {
  return new HyperlabError(code, message);
}
