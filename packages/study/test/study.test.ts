import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  expandMatrix,
  listBackends,
  listWorkloads,
  loadStudyConfig,
  progressReporter,
  resolveConfig,
  runCells,
  runDefaultStudy,
  runStudy,
  summaryTable,
} from "../src/index";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "hyperlab-study-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const SMALL = {
  seed: 5,
  workloads: ["mmap-churn", "random", "pointer-chase"],
  workingSetBytes: [1024 * 1024],
  processes: [2],
  operations: [300],
};
const FILES = ["config.json", "results.json", "results.csv", "report.html"];

describe("a study run", () => {
  it("is byte-identical for one seed, on worker threads or not", async () => {
    const a = tmp();
    const b = tmp();
    const lines: string[] = [];
    const ra = await runStudy(
      { ...SMALL, workers: 2 },
      { outDir: a, onProgress: progressReporter({ write: (s) => lines.push(s) }) },
    );
    await runStudy({ ...SMALL, workers: 0 }, { outDir: b });
    expect(ra.files.map((f) => f.slice(a.length + 1))).toEqual(FILES);
    for (const f of FILES.slice(1)) {
      expect(readFileSync(join(a, f), "utf8"), f).toBe(readFileSync(join(b, f), "utf8"));
    }
    // The resolved configuration differs only in the worker count it names.
    const ca = JSON.parse(readFileSync(join(a, "config.json"), "utf8"));
    expect(ca.workers).toBe(2);
    expect(ca.operations).toEqual([300]);
    // Plain progress lines, one per run, when the stream is not a terminal.
    expect(lines).toHaveLength(12);
    expect(lines[11]).toMatch(/^study: 12\/12 done: /);
    // Results in matrix order, whatever order the workers finished in.
    expect(ra.results.runs.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    for (const r of ra.results.runs) expect(r.sameResultAsOtherBackends).toBe(true);
  });

  it("writes results whose derived figures follow from the counts", async () => {
    const { results } = await runStudy({ ...SMALL, workloads: ["random"], workers: 0 });
    const [native, pv, nested, shadow] = results.runs;
    expect(native.estOverheadVsNative).toBe(1);
    expect(shadow.estOverheadVsNative).toBeGreaterThan(1);
    expect(shadow.exitsPerOp).toBeGreaterThan(0);
    expect(pv.estOverheadVsNative).toBeGreaterThan(1);
    expect(nested.estOverheadVsNative).toBeGreaterThan(1);
    expect(nested.exitsPerOp).toBeCloseTo(nested.counts.vmExits / 300, 3);
    expect(pv.hypercallsPerOp).toBeCloseTo(pv.counts.hypercalls / 300, 3);
    expect(pv.refsPerTlbMiss).toBeCloseTo(pv.counts.walkRefs / pv.counts.tlbMisses, 3);
    const table = summaryTable(results);
    expect(table).toContain("est. vs native");
    expect(table).toContain("Counts are exact");
    expect(table.split("\n")[2]).toMatch(/^random .* native /);
  });

  it("without native, overheads are absent rather than wrong", async () => {
    const { results } = await runStudy({
      ...SMALL,
      workloads: ["random"],
      backends: ["pv"],
      workers: 0,
    });
    expect(results.runs[0].estOverheadVsNative).toBeNull();
  });

  it("reports a custom cost in its results", async () => {
    const { results } = await runStudy({
      ...SMALL,
      workloads: ["random"],
      backends: ["nested"],
      costs: { vmExits: 0, walkRefs: 0, tlbMisses: 0 },
      workers: 0,
    });
    const r = results.runs[0];
    expect(r.estCyclesByEvent.vmExits).toBe(0);
    expect(results.costs.find((c) => c.name === "vmExits")?.cycles).toBe(0);
  });

  it("draws a progress bar on a terminal", () => {
    const out: string[] = [];
    const p = progressReporter({ write: (s) => out.push(s), isTTY: true });
    const last = { key: "k", checksum: "0" } as never;
    p(1, 2, last);
    p(2, 2, last);
    expect(out[0]).toBe(`\r\u001b[K[${"#".repeat(15)}${"-".repeat(15)}] 1/2 k`);
    expect(out.at(-1)).toBe("\n");
  });

  it("passes worker errors on as typed errors and stops the pool", async () => {
    const cell = expandMatrix(resolveConfig({ workloads: ["random"], operations: [1] })).cells[0];
    const bogus = { ...cell, index: 1, workload: "nope" };
    await expect(runCells([cell, bogus, { ...cell, index: 2 }], 2)).rejects.toMatchObject({
      code: "STUDY_UNKNOWN_WORKLOAD",
    });
  });

  it("runs the default study into a directory", async () => {
    const out = tmp();
    const { results, files } = await runDefaultStudy(out);
    expect(files.map((f) => f.slice(out.length + 1))).toEqual(FILES);
    expect(new Set(results.runs.map((r) => r.workload)).size).toBe(6);
    expect(results.runs).toHaveLength(24);
    for (const r of results.runs) expect(r.sameResultAsOtherBackends, r.key).toBe(true);
    expect(readFileSync(join(out, "report.html"), "utf8")).toContain("<svg ");
  });

  it("lists workloads and backends", () => {
    expect(listWorkloads().map((w) => w.name)).toEqual([
      "fork-exec",
      "mmap-churn",
      "random",
      "stream",
      "pointer-chase",
      "kbuild",
    ]);
    expect(listBackends().map((b) => b.name)).toEqual(["native", "pv", "nested", "shadow"]);
  });

  it("loads a config file and says what is wrong with a bad one", () => {
    const d = tmp();
    const good = join(d, "s.json");
    writeFileSync(good, JSON.stringify({ seed: 3, backends: ["pv"] }));
    expect(loadStudyConfig(good)).toEqual({ seed: 3, backends: ["pv"] });
    const bad = join(d, "bad.json");
    writeFileSync(bad, "{ seed: 3");
    expect(() => loadStudyConfig(bad)).toThrow(
      expect.objectContaining({ code: "STUDY_CONFIG_INVALID" }),
    );
    expect(() => loadStudyConfig(join(d, "none.json"))).toThrow(
      expect.objectContaining({ code: "STUDY_CONFIG_UNREADABLE" }),
    );
  });
});
