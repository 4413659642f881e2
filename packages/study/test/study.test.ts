import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  checkStudyMemory,
  estimateStudyMemory,
  expandMatrix,
  listBackends,
  listWorkloads,
  loadStudyConfig,
  progressDisplay,
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

  it("separates warm-up (the first touch of the working set) from the steady state", async () => {
    const { results } = await runStudy({
      ...SMALL,
      workloads: ["random", "mmap-churn"],
      processes: [1],
      operations: [2000],
      workers: 0,
    });
    for (const r of results.runs.filter((x) => x.workload === "random")) {
      // Every first-touch fault is warm-up; nothing faults afterwards.
      expect(r.warmup.pageFaults, r.key).toBe(2 ** 20 / 4096);
      expect(r.steady.counts.pageFaults, r.key).toBe(0);
      expect(r.steady.counts.operations, r.key).toBe(2000);
      expect(r.warmup.accesses + r.steady.counts.accesses).toBe(r.counts.accesses);
      expect(r.warmupEstCycles + r.steady.estCycles).toBe(r.estCycles);
    }
    const pv = results.runs.find((x) => x.key.startsWith("random") && x.backend === "pv");
    // Xen PV pays for first touch (traps, mmu_update); after warm-up it runs at native speed.
    expect(pv?.estOverheadVsNative).toBeGreaterThan(1.2);
    expect(pv?.steady.estOverheadVsNative).toBe(1);
    // mmap-churn keeps no working set: warm-up is only the spawn of its process.
    for (const r of results.runs.filter((x) => x.workload === "mmap-churn")) {
      expect(r.warmup.accesses, r.key).toBe(0);
      expect(r.warmup.operations, r.key).toBe(0);
      expect(r.steady.counts.accesses, r.key).toBe(r.counts.accesses);
      expect(r.steady.counts.pageFaults, r.key).toBe(r.counts.pageFaults);
    }
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

  it("checks --out before any run, and says which directory", async () => {
    const d = tmp();
    const file = join(d, "a-file");
    writeFileSync(file, "x");
    let ran = 0;
    await expect(
      runStudy(
        { ...SMALL, workers: 0 },
        { outDir: join(file, "sub"), onProgress: () => void ran++ },
      ),
    ).rejects.toMatchObject({ code: "STUDY_BAD_OUT_DIR", message: /--out/ });
    expect(ran).toBe(0);
  });

  it("refuses a study too big for the host's memory before it starts, naming the flags", async () => {
    const config = resolveConfig({ ...SMALL, workers: 2 });
    const est = estimateStudyMemory(config);
    expect(est.concurrent).toBe(2);
    expect(est.bytes).toBeGreaterThan(2 * 2 ** 20);
    expect(() => checkStudyMemory(config, { free: est.bytes, total: est.bytes })).not.toThrow();
    let ran = 0;
    await expect(
      runStudy(
        { ...SMALL, workers: 2 },
        { hostMemory: { free: est.bytes - 1, total: 2 ** 34 }, onProgress: () => void ran++ },
      ),
    ).rejects.toMatchObject({
      code: "STUDY_HOST_MEMORY",
      message: expect.stringMatching(/--working-set.*--workers.*--skip-memory-check/),
    });
    expect(ran).toBe(0);
  });

  it("ticks inside a cell, so progress moves before a cell ends", async () => {
    const fractions: number[] = [];
    const accesses: number[] = [];
    let finished = 0;
    await runStudy(
      { ...SMALL, workloads: ["random"], backends: ["native"], operations: [200_000], workers: 1 },
      {
        onProgress: () => void finished++,
        onTick: (p) => {
          if (p.done === 0) fractions.push(p.fraction);
          accesses.push(p.accesses);
        },
      },
    );
    expect(finished).toBe(1);
    // Several ticks came from the worker while the only cell was still running.
    expect(fractions.length).toBeGreaterThan(2);
    expect(fractions.every((f) => f > 0 && f < 1)).toBe(true);
    expect([...fractions].sort((a, b) => a - b)).toEqual(fractions);
    expect(accesses.at(-1)).toBe(200_000 + 2 ** 20 / 4096);
  });

  it("shows elapsed time, rate and ETA; redraws in place on a terminal", () => {
    let t = 0;
    const out: string[] = [];
    const tty = progressDisplay({ write: (s) => out.push(s) }, { isTTY: true, now: () => t });
    t = 2000;
    tty.onTick({ done: 0, total: 4, fraction: 0.25, accesses: 2_000_000 });
    expect(out[0]).toBe(
      `\r\u001b[K[${"#".repeat(6)}${"-".repeat(18)}]  25% 0/4 runs, elapsed 0:02, 1.0M accesses/s, ETA 0:06`,
    );
    t = 2100; // within the redraw interval: nothing drawn
    tty.onTick({ done: 0, total: 4, fraction: 0.3, accesses: 2_100_000 });
    expect(out).toHaveLength(1);
    tty.onProgress(1, 4, { key: "k", checksum: "0" } as never);
    expect(out).toHaveLength(1);
    t = 4000;
    tty.onTick({ done: 4, total: 4, fraction: 1, accesses: 4_000_000 });
    expect(out.at(-2)).toMatch(/\] 100% 4\/4 runs, elapsed 0:04, 1.0M accesses\/s, ETA 0:00$/);
    expect(out.at(-1)).toBe("\n");

    const lines: string[] = [];
    const plain = progressDisplay({ write: (s) => lines.push(s) }, { isTTY: false, now: () => t });
    t = 5000;
    plain.onTick({ done: 0, total: 2, fraction: 0.5, accesses: 10 });
    expect(lines).toHaveLength(0);
    plain.onProgress(1, 2, { key: "k", checksum: "00ff" } as never);
    expect(lines).toEqual([
      "study: 1/2 done: k (checksum 00ff);  50% 1/2 runs, elapsed 0:01, 10 accesses/s, ETA 0:01\n",
    ]);
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
  }, 600_000); // the whole default study: minutes on a loaded host

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
