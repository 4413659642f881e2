/*
 * Error codes are typed: every code core's src throws is in CORE_ERROR_CODES (so
 * CoreErrorCode names them all), and callers tell errors apart with isHyperlabError.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CORE_ERROR_CODES, type CoreErrorCode, HyperlabError, isHyperlabError } from "../src/index";

const src = join(dirname(fileURLToPath(import.meta.url)), "../src");

/** The string literals passed as the code of `new HyperlabError(...)` under `dir`. */
function thrownCodes(dir: string): Set<string> {
  const codes = new Set<string>();
  for (const f of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!f.endsWith(".ts")) continue;
    const text = readFileSync(join(dir, f), "utf8");
    for (const m of text.matchAll(/new HyperlabError(?:<\w+>)?\(\s*"([A-Z0-9_]+)"/g)) {
      codes.add(m[1] as string);
    }
  }
  return codes;
}

describe("CoreErrorCode", () => {
  it("lists every code core throws, and nothing it does not", () => {
    const thrown = thrownCodes(src);
    expect(thrown.size).toBeGreaterThan(30);
    expect([...thrown].sort()).toEqual([...CORE_ERROR_CODES].sort());
  });

  it("tells core errors apart by code, never by prefix", () => {
    const e = new HyperlabError<CoreErrorCode>("SLOT_EMPTY", "x");
    expect(isHyperlabError(e, CORE_ERROR_CODES)).toBe(true);
    expect(isHyperlabError(e, ["SLOT_NOT_FILLED"])).toBe(false);
    expect(isHyperlabError(new HyperlabError("SLOT_EMPTY_NOT_REALLY", "x"), CORE_ERROR_CODES)).toBe(
      false,
    );
    expect(isHyperlabError(new Error("SLOT_EMPTY"), CORE_ERROR_CODES)).toBe(false);
  });
});
