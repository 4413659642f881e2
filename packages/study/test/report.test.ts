import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../src/config";
import { COST_NAMES } from "../src/cost-model";
import { COUNT_NAMES, zeroCounts } from "../src/counts";
import {
  buildResults,
  reportHtml,
  resultsCsv,
  resultsJson,
  sig,
  summaryTable,
} from "../src/report";
import type { RunResult } from "../src/run";

const RUNS = process.env.HYPERLAB_LONG === "1" ? 20_000 : 500;

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
    warmup: {
      ...zeroCounts(),
      accesses: 40,
      tlbMisses: 10,
      walkRefs: 40,
      vmExits: vmExits > 0 ? 1 : 0,
    },
    backendStats: { core: { hypercalls: 0 }, [`${backend}-mmu`]: { exit_EPT_VIOLATION: vmExits } },
    statInfo: {
      "core.hypercalls": { unit: "calls", description: "hypercalls dispatched" },
      [`${backend}-mmu.exit_EPT_VIOLATION`]: { unit: "exits", description: "EPT violations" },
    },
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
    expect(j.format).toBe("hyperlab-study/2");
    expect(j.schemaVersion).toBe(2);
    expect(j.note).toMatch(/exact.*estimates/);
    expect(j.costs).toHaveLength(COST_NAMES.length);
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect(j.generator).toEqual({
      package: "@hyperlab/study",
      version: pkg.version,
      node: process.version,
    });
    expect(j.units["counts.vmExits"]).toBe("exits");
    expect(j.units.estCycles).toMatch(/cycles/);
    expect(j.defaults.config.workingSetBytes).toEqual([16 * 2 ** 20]);
    expect(j.defaults.costs.vmExits).toBeGreaterThan(0);
    expect(j.defaults.workloads.map((w: { name: string }) => w.name)).toContain("random");
    // Backend statistics: values per run, units once.
    expect(j.runs[1].backendStats["nested-mmu"].exit_EPT_VIOLATION).toBe(5);
    expect(j.runs[1].statInfo).toBeUndefined();
    expect(j.statInfo["nested-mmu.exit_EPT_VIOLATION"].unit).toBe("exits");
  });

  it("separates warm-up from the steady state, in results and the summary", () => {
    const [native, nested] = res.runs;
    expect(native.steady.counts.accesses).toBe(60);
    expect(nested.steady.counts.vmExits).toBe(4);
    expect(nested.warmupEstCycles).toBeGreaterThan(0);
    expect(native.steady.estOverheadVsNative).toBe(1);
    expect(nested.steady.estOverheadVsNative).toBeGreaterThan(1);
    expect(nested.steady.refsPerTlbMiss).toBe(4);
    const table = summaryTable(res);
    expect(table.split("\n")[0]).toMatch(
      /est\. vs native +warm-up share +warm-up vs native +steady vs native$/,
    );
    // The nested row shows its warm-up against native's warm-up, beside the steady state.
    const warmRatio = Math.round((nested.warmupEstCycles / native.warmupEstCycles) * 1e4) / 1e4;
    const nestedRow = table.split("\n").find((l) => / nested /.test(l)) ?? "";
    expect(nestedRow).toContain(`${sig(warmRatio)}x  `);
    expect(reportHtml(res)).toContain("Steady-state overhead against native (estimate): nested");
  });

  it("labels keep three significant digits and never show a non-zero value as zero", () => {
    expect(sig(0)).toBe("0");
    expect(sig(0.000123456)).toBe("0.000123");
    expect(sig(0.004)).toBe("0.004");
    expect(sig(1.23456)).toBe("1.23");
    expect(sig(1234567)).toBe("1.23M");
    expect(sig(123456)).toBe("123,456");
    expect(sig(2.5e9)).toBe("2.5G");
    expect(sig(null)).toBe("-");
    fc.assert(
      fc.property(fc.double({ min: 1e-12, max: 1e12, noNaN: true }), (x) => {
        expect(Number.parseFloat(sig(x).replaceAll(",", ""))).toBeGreaterThan(0);
      }),
      { seed: 16, numRuns: RUNS },
    );
  });

  it("draws axes, ticks and gridlines; a log scale when values span decades", () => {
    const wide = buildResults(
      resolveConfig({ backends: ["native", "nested", "shadow"] }),
      [run(0, "native", "aa"), run(1, "nested", "aa", 1), run(2, "shadow", "aa", 5000)],
      [],
    );
    const html = reportHtml(wide);
    const exits = html.split("<svg ")[4];
    expect(exits).toContain("VM exits per workload operation, log scale");
    // A labelled tick per decade from 0.1 to 1,000 exits per operation.
    const labels = [...exits.matchAll(/<text class="tick"[^>]*>([^<]*)</g)].map((m) => m[1]);
    expect(labels).toEqual(["0.1", "1", "10", "100", "1,000"]);
    expect(exits.match(/class="grid"/g)?.length).toBeGreaterThan(labels.length);
    // Linear charts have ticks too, from zero.
    const refs = html.split("<svg ")[3];
    expect(refs).not.toContain("log scale");
    expect(refs).toMatch(/<text class="tick"[^>]*>0</);
    expect(refs.match(/class="axis"/g)).toHaveLength(3);
  });

  it("names only the backends that ran, in titles and the heading", () => {
    const onlyNested = buildResults(
      resolveConfig({ backends: ["native", "pv", "nested", "shadow"] }),
      [run(0, "native", "aa"), run(1, "nested", "aa", 5)],
      [],
    );
    const html = reportHtml(onlyNested);
    expect(html).toContain("<h1>Hyperlab study: native, nested on random</h1>");
    expect(html).toContain("VM exits per operation (exact): nested</text>");
    expect(html).not.toMatch(/shadow|: pv|, pv/);
  });

  it("writes the runs table with units in headers, grouped digits and every backend statistic", () => {
    const big = buildResults(
      resolveConfig({ backends: ["native", "nested"] }),
      [run(0, "native", "aa"), run(1, "nested", "aa", 1234567)],
      [],
    );
    const html = reportHtml(big);
    expect(html).toMatch(/VM exits<br><span class="unit">exits<\/span>/);
    expect(html).toContain("<td>1,234,567</td>");
    expect(html).toMatch(
      /nested-mmu\.exit_EPT_VIOLATION<\/td><td class="text">exits<\/td><td><\/td><td>1,234,567<\/td>/,
    );
  });

  it("writes an offline HTML report with inline SVG charts and escaped text", () => {
    const html = reportHtml(res);
    expect(html.match(/<svg /g)).toHaveLength(5);
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html).toContain("x &lt;pv&gt;: no &lt;superpages&gt;");
    expect(html).toContain("Overhead against native (estimate)");
    expect(html).toContain("(exact)");
    expect(html).toContain("(differs!)");
  });
});
