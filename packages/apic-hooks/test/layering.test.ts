import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";

it("src imports only abi, machine, paging and core (floor 4; evtchn only through its slot)", () => {
  const dir = join(__dirname, "../src");
  const allowed = new Set([
    "@hyperlab/abi",
    "@hyperlab/machine",
    "@hyperlab/paging",
    "@hyperlab/core",
  ]);
  const seen = new Set<string>();
  for (const f of readdirSync(dir)) {
    const text = readFileSync(join(dir, f), "utf8");
    for (const m of text.matchAll(/from "([^"]+)"/g)) {
      if (m[1].startsWith(".")) continue;
      seen.add(m[1]);
      expect(allowed.has(m[1]), `${f} imports ${m[1]}`).toBe(true);
    }
  }
  expect(seen.has("@hyperlab/core")).toBe(true);
});
