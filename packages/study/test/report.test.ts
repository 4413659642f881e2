import { describe, expect, it } from "vitest";
import { resolveConfig } from "../src/config";
import { COUNT_NAMES, zeroCounts } from "../src/counts";
import { buildResults, reportHtml, resultsCsv, resultsJson } from "../src/report";
import type { RunResult } from "../src/run";

function run(index: number, backend: string, checksum: string, vmExits = 0): RunResult {
  const counts = {
    ...zeroCounts(),
    operations: 10,
    accesses: 100,
    tlbMisses: 20,
    walkRefs: 80,
    vmExits,
  };
  return {
    index,
    key: `case "a",b ${backend}`,
    caseKey: 'case "a",b',
    baseKey: 'case "a",b',
    workload: "random",
    backend,
    params: {
      workingSetBytes: 1,
      guestPageSize: "4K",
      hostPageSize: "4K",
      processes: 1,
      operations: 10,
    },
    seed: 9,
    checksum,
    counts,
  };
}

describe("reports", () => {
  const config = resolveConfig({ backends: ["native", "nested"] });
  const res = buildResults(
    config,
    [run(0, "native", "aa"), run(1, "nested", "bb", 5)],
    [{ key: "x <pv>", reason: "no <superpages>" }],
  );

  it("flags a checksum that differs between backends", () => {
    expect(res.runs.map((r) => r.sameResultAsOtherBackends)).toEqual([true, false]);
    expect(res.runs[1].exitsPerOp).toBe(0.5);
    expect(res.runs[1].refsPerTlbMiss).toBe(4);
  });

  it("writes CSV with one quoted row per run", () => {
    const lines = resultsCsv(res).trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0].split(",")).toEqual(expect.arrayContaining([...COUNT_NAMES, "estCycles"]));
    expect(lines[1].startsWith('"case ""a"",b native",random,native,')).toBe(true);
  });

  it("writes JSON that says counts are facts and cycles estimates", () => {
    const j = JSON.parse(resultsJson(res));
    expect(j.format).toBe("hyperlab-study/1");
    expect(j.note).toMatch(/exact.*estimates/);
    expect(j.costs).toHaveLength(13);
  });

  it("writes an offline HTML report with inline SVG charts and escaped text", () => {
    const html = reportHtml(res);
    expect(html.match(/<svg /g)).toHaveLength(4);
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html).toContain("x &lt;pv&gt;: no &lt;superpages&gt;");
    expect(html).toContain("Overhead against native (estimate)");
    expect(html).toContain("(exact)");
    expect(html).toContain("(differs!)");
  });
});
