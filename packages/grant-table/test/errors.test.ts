/*
 * Error codes are typed: every code src throws is in GRANT_ERROR_CODES (so GrantErrorCode names them all).
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isHyperlabError } from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import { GRANT_ERROR_CODES, grantTable } from "../src/index";

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

describe("GrantErrorCode", () => {
  it("lists every code the package throws, and nothing it does not", () => {
    const thrown = thrownCodes(src);
    expect(thrown.size).toBeGreaterThan(1);
    expect([...thrown].sort()).toEqual([...GRANT_ERROR_CODES].sort());
  });

  it("throws a typed code for a bad option, told apart by isHyperlabError", () => {
    let err: unknown;
    try {
      grantTable({ maxGrantFrames: 0 });
    } catch (e) {
      err = e;
    }
    expect(isHyperlabError(err, GRANT_ERROR_CODES)).toBe(true);
    expect(isHyperlabError(err, ["GRANT_BAD_OPTION"])).toBe(true);
  });
});
