// libxl's failures as the toolstack's typed errors; `xlError` carries what xl prints for one.
import { HyperlabError } from "@hyperlab/core";
import type { ToolstackErrorCode } from "../errors";

/** A typed toolstack error. */
export function libxlError(
  code: ToolstackErrorCode,
  message: string,
): HyperlabError<ToolstackErrorCode> {
  return new HyperlabError<ToolstackErrorCode>(code, message);
}
