/*
 * The bench harness's "turns" protocol (bench/harness.ts with paging-ref.c's MEASURE): the C
 * reference runs one timed run of a loop each time its name arrives on stdin, loops in the
 * order of its main, and answers each with the loop's name and its wall and CPU time.
 */

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
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
    const row = await sideBySide(c, "walk-sparse", "sparse", 100, () => order.push("TS"), 3);
    const [pin, unpin] = await turns(
      c,
      { keys: ["tlb-hit", "tlb-hit"], labels: ["a", "b"], unit: "ms", ops: [1, 1] },
      () => [
        { wall: 2, cpu: 1 },
        { wall: 4, cpu: 3 },
      ],
      2,
    );
    await c.close();
    expect(order.slice(0, 8)).toEqual([
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
