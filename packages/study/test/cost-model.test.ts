import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  COST_INFO,
  COST_NAMES,
  DEFAULT_COSTS,
  estimateCycles,
  resolveCosts,
} from "../src/cost-model";
import { COUNT_NAMES, zeroCounts } from "../src/counts";

const doc = readFileSync(new URL("../../../docs/cost-model.md", import.meta.url), "utf8");

describe("cost model", () => {
  it("prices every count but operations", () => {
    expect([...COST_NAMES].sort()).toEqual(COUNT_NAMES.filter((n) => n !== "operations").sort());
  });

  it("cites a section of docs/cost-model.md for every default, with its figure", () => {
    for (const c of COST_INFO) {
      const anchor = c.source.match(/cost-model\.md#([a-z0-9]+)/)?.[1];
      expect(anchor, c.name).toBe(c.name.toLowerCase());
      expect(doc).toContain(`## ${c.name}\n`);
      const row = new RegExp(`\\| \\[${c.name}\\]\\(#${anchor}\\) +\\| ${c.cycles} +\\|`);
      expect(doc, c.name).toMatch(row);
      if (c.assumption) {
        const section = doc.split(`## ${c.name}\n`)[1].split("\n## ")[0];
        expect(section, c.name).toMatch(/assumption/);
      }
    }
  });

  it("overrides any default and rejects unknown names and bad values", () => {
    expect(resolveCosts({ vmExits: 800 }).vmExits).toBe(800);
    expect(resolveCosts({}).walkRefs).toBe(DEFAULT_COSTS.walkRefs);
    expect(() => resolveCosts({ vmexit: 1 })).toThrow(/no cost "vmexit"/);
    expect(() => resolveCosts({ traps: Number.NaN })).toThrow(/traps/);
    expect(() => resolveCosts({ traps: "1" as never })).toThrow(/traps/);
    expect(() => resolveCosts(null as never)).toThrow(
      expect.objectContaining({ code: "STUDY_BAD_COST" }),
    );
    expect(() => {
      (DEFAULT_COSTS as Record<string, number>).vmExits = 1;
    }).toThrow();
  });

  it("is linear in the counts", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(1e6), { minLength: COUNT_NAMES.length, maxLength: COUNT_NAMES.length }),
        fc.nat(5000),
        (values, k) => {
          const c = zeroCounts();
          COUNT_NAMES.forEach((n, i) => {
            c[n] = values[i];
          });
          const costs = resolveCosts();
          const e = estimateCycles(c, costs);
          const sum = COST_NAMES.reduce((s, n) => s + c[n] * costs[n], 0);
          expect(e.total).toBe(sum);
          c.vmExits += k;
          expect(estimateCycles(c, costs).total - e.total).toBe(k * costs.vmExits);
        },
      ),
      { seed: 42, numRuns: process.env.HYPERLAB_LONG === "1" ? 2000 : 100 },
    );
  });
});
