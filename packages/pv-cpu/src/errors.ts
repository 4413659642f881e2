/*
 * The errors pv-cpu throws at its users (never at a guest: guests get Xen's errno).
 */
import { HyperlabError } from "@hyperlab/core";

export const PV_CPU_ERROR_CODES = ["PV_CPU_BAD_OPTION", "PV_CPU_NOT_IN_BUILD"] as const;
export type PvCpuErrorCode = (typeof PV_CPU_ERROR_CODES)[number];

export function pvCpuError(code: PvCpuErrorCode, message: string): HyperlabError<PvCpuErrorCode> {
  return new HyperlabError(code, message);
}
