/*
 * The bench harness's "turns" protocol (bench/harness.ts with paging-ref.c's MEASURE): the C
 * reference runs one timed run of a loop each time its name arrives on stdin, loops in the
 * order of its main, and answers each with the loop's name and its wall and CPU time.
 */

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCReference, buildFixture, removeScratchDirs, scratchDir } from "../bench/fixture";
import { CTurns, pairedRatio, type Row, ratio, sideBySide, turns } from "../bench/harness";

describe("the C reference in turns mode", () => {
  let cref: { bin: string; fixture: string };
  afterAll(removeScratchDirs);
  beforeAll(() => {
    cref = buildCReference(buildFixture());
  });

  it("runs the loops named on stdin, once per name, and times each", () => {
    const text = execFileSync(cref.bin, [cref.fixture, "turns", "1000"], {
      encoding: "utf8",
      input: "walk-dense\nwalk-dense\nwalk-pwc\ntlb-miss\n",
    });
    const lines = text.trim().split("\n");
    expect(lines.map((l) => l.split("\t")[0])).toEqual([
      "walk-dense",
      "walk-dense",
      "walk-pwc",
      "tlb-miss",
    ]);
    for (const line of lines) {
      const [, wall, cpu] = line.split("\t").map(Number);
      expect(wall).toBeGreaterThan(0);
      expect(cpu).toBeGreaterThanOrEqual(0);
    }
  });

  it("pairs each C run with a TypeScript run, a warm-up and `rounds` timed runs each", async () => {
    const c = new CTurns(cref.bin, [cref.fixture, "turns", "1000"]);
    const order: string[] = [];
    const runC = c.run.bind(c);
    c.run = (name: string) => {
      order.push(`C ${name}`);
      return runC(name);
    };
    const row = await sideBySide(
      c,
      "walk-sparse",
      "sparse",
      100,
      () => {
        order.push("make");
        return () => order.push("TS");
      },
      3,
    );
    const [pin, unpin] = await turns(
      c,
      { keys: ["tlb-hit", "tlb-hit"], labels: ["a", "b"], unit: "ms", ops: [1, 1] },
      () => () => [
        { wall: 2, cpu: 1 },
        { wall: 4, cpu: 3 },
      ],
      2,
    );
    await c.close();
    expect(order.slice(0, 9)).toEqual([
      "make",
      "C walk-sparse",
      "TS",
      "C walk-sparse",
      "TS",
      "C walk-sparse",
      "TS",
      "C walk-sparse",
      "TS",
    ]);
    expect(row.ts.samples).toHaveLength(3);
    expect(row.c.samples).toHaveLength(3);
    expect(row.c.cpu).toBe(Math.min(...row.c.samples.map((s) => s.cpu)));
    expect([pin.ts.cpu, unpin.ts.cpu, pin.c.samples.length]).toEqual([1, 3, 2]);
  });

  it("starts a lazily given C reference at its first run, and not at all if never run", async () => {
    const calls: string[] = [];
    const idle = new CTurns(
      () => {
        calls.push("bin");
        return cref.bin;
      },
      () => [cref.fixture, "turns", "1000"],
    );
    await idle.close();
    expect(calls).toEqual([]);
    const c = new CTurns(
      () => {
        calls.push("bin");
        return cref.bin;
      },
      () => {
        calls.push("args");
        return [cref.fixture, "turns", "1000"];
      },
    );
    expect((await c.run("walk-dense")).cpu).toBeGreaterThanOrEqual(0);
    await c.run("walk-dense");
    await c.close();
    expect(calls).toEqual(["bin", "args"]);
  });

  it("refuses a loop asked for after main has passed it", async () => {
    const c = new CTurns(cref.bin, [cref.fixture, "turns", "1000"]);
    await c.run("tlb-hit");
    await expect(c.run("walk-dense")).rejects.toThrow(/before running walk-dense/);
  });

  it("gives best over best and the median of each round's own TS/C", () => {
    const runs = (cpu: number[]) => ({
      wall: 0,
      cpu: Math.min(...cpu),
      samples: cpu.map((c) => ({ wall: c, cpu: c })),
    });
    const row: Row = {
      key: "k",
      label: "k",
      unit: "M/s",
      ops: 1,
      ts: runs([30, 20, 60]),
      c: runs([10, 10, 20]),
    };
    expect(ratio(row)).toBe(2);
    expect(pairedRatio(row)).toBe(3);
  });
});

describe("a process per side-by-side row (rowProcesses)", () => {
  const script = fileURLToPath(new URL("./support/row-bench.ts", import.meta.url));
  const sourceTsconfig = fileURLToPath(new URL("../tsconfig.source.json", import.meta.url));
  const run = (env: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlab-row-bench-test-"));
    const log = join(dir, "log");
    try {
      const text = execFileSync(process.execPath, ["--import", "tsx", script], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        // Workspace packages from their source, as vitest resolves them: the child is plain
        // tsx, and a test must not wait for (or race) the dependencies' builds.
        env: { ...process.env, ...env, ROW_BENCH_LOG: log, TSX_TSCONFIG_PATH: sourceTsconfig },
      });
      const made = readFileSync(log, "utf8")
        .trim()
        .split("\n")
        .map((l) => l.split(" "));
      return { out: JSON.parse(text.trim().split("\n").pop() as string), made };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("builds and times each row in a process of its own, and hands its figures back", () => {
    const { out, made } = run({});
    expect(made.map(([key]) => key)).toEqual(["walk-sparse", "tlb-hit"]);
    const pids = made.map(([, pid]) => Number(pid));
    expect(new Set([...pids, out.pid]).size).toBe(3);
    for (const [i, key] of ["walk-sparse", "tlb-hit"].entries()) {
      const row = out.rows[i];
      expect(row.key).toBe(key);
      expect(row.ts.samples).toHaveLength(2);
      expect(row.c.samples).toHaveLength(2);
      expect(row.c.cpu).toBe(Math.min(...row.c.samples.map((s: { cpu: number }) => s.cpu)));
    }
  });

  it("runs every row in the one process with HYPERLAB_BENCH_SHARED=1", () => {
    const { out, made } = run({ HYPERLAB_BENCH_SHARED: "1" });
    expect(made).toEqual([
      ["walk-sparse", String(out.pid)],
      ["tlb-hit", String(out.pid)],
    ]);
    expect(out.rows.map((r: Row) => r.ts.samples.length)).toEqual([2, 2]);
    expect(out.ran).toBe(true);
  });

  it("says which row's process ended without figures, and how to see why", () => {
    let message = "";
    try {
      run({ ROW_BENCH_FAIL: "tlb-hit" });
    } catch (e) {
      message = String((e as { stderr?: string }).stderr);
    }
    expect(message).toMatch(/side-by-side row tlb-hit ended \(1\) without its figures/);
    expect(message).toMatch(/HYPERLAB_BENCH_SHARED=1/);
  });
});

describe("scratchDir", () => {
  it("makes a fresh directory each call and removeScratchDirs removes every one", () => {
    const a = scratchDir("hyperlab-scratch-test-");
    const b = scratchDir("hyperlab-scratch-test-");
    expect(a).not.toBe(b);
    expect(existsSync(a) && existsSync(b)).toBe(true);
    removeScratchDirs();
    expect(existsSync(a) || existsSync(b)).toBe(false);
  });
});
