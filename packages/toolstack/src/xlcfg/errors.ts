// API misuse of the xl.cfg library (never file content: that gets xl's messages and exit codes).
import { HyperlabError } from "@hyperlab/core";

/** Codes of the errors the xl.cfg functions throw when called wrongly. */
export type XlCfgErrorCode = "XLCFG_TEXT_NOT_STRING" | "XLCFG_BAD_FILE_NAME";

export class XlCfgError extends HyperlabError<XlCfgErrorCode> {}

/** Checks the arguments every entry point takes. */
export function checkXlCfgArgs(fileText: unknown, fileName: unknown): void {
  if (typeof fileText !== "string")
    throw new XlCfgError(
      "XLCFG_TEXT_NOT_STRING",
      `the config text must be a string (got ${typeof fileText}); read the file with readFileSync(path, "latin1")`,
    );
  if (typeof fileName !== "string" || fileName === "" || fileName.includes("\0"))
    throw new XlCfgError(
      "XLCFG_BAD_FILE_NAME",
      "the file name must be a non-empty string without NUL; pass the name xl would print, e.g. guest.cfg",
    );
}
