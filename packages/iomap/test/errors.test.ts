import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IOMAP_ERROR_CODES } from "../src/index";

describe("IOMAP_ERROR_CODES", () => {
  it("lists exactly the codes src throws", () => {
    const dir = join(__dirname, "../src");
    const thrown = new Set<string>();
    for (const f of readdirSync(dir)) {
      const text = readFileSync(join(dir, f), "utf8");
      for (const m of text.matchAll(/HyperlabError<IomapErrorCode>\(\s*"([A-Z_]+)"/g))
        thrown.add(m[1]);
    }
    expect([...thrown].sort()).toEqual([...IOMAP_ERROR_CODES].sort());
  });
});
