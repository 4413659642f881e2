/*
 * The timing harness of the paging benches (paging, native-mmu, npt-mmu, shadow-mmu, pv-mmu;
 * the others reach it by a relative import, as they reach bench/fixture.ts).
 *
 * Invariant: every figure is the best of several runs of one loop by the CPU time its process
 * got (process.cpuUsage here, CLOCK_PROCESS_CPUTIME_ID in C), after one untimed warm-up run.
 * A TypeScript rate and its C counterpart are measured in turns: the C reference runs as a
 * child process in "turns" mode (paging-ref.c's MEASURE) and runs one timed run of a loop
 * each time it reads the loop's name on stdin; for each loop the harness runs C then
 * TypeScript, ROUNDS times, while the other side waits. So both figures of a row are taken
 * within the same seconds of host load, and neither process competes with the other.
 *
 * A bench that calls `rowProcesses` runs each side-by-side row (each call of `turns`) in a
 * process of its own, as JMH forks a JVM per benchmark: the bench starts its own file again
 * with HYPERLAB_BENCH_ROW naming the row; that process runs no timed loop but the row's, and
 * builds only what is common to all rows and what the row's `make` builds; it hands the row
 * back in a file and exits. So a TypeScript figure does not depend on which other rows ran
 * before it: V8 compiles a function several configurations share (npt-mmu's translateSlow
 * with and without caches, paging's walk with and without page-walk caches) from the type
 * feedback of every configuration that ran it, and the C has no such history.
 * HYPERLAB_BENCH_SHARED=1 runs every row in the one process instead (docs/decisions.md,
 * "Stop 24: a process per side-by-side row").
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** In a row's own process: the keys of its row, comma-separated. */
const ROW = process.env.HYPERLAB_BENCH_ROW;
/** In a row's own process: the file it writes its rows to. */
const ROW_OUT = process.env.HYPERLAB_BENCH_ROW_OUT;
/** The bench file to start again for each row (set by rowProcesses), or null: every row in
 * this process. */
let benchFile: string | null = null;

/**
 * Makes every side-by-side row of this bench (`benchUrl`: its import.meta.url) run in a
 * process of its own (see above), unless HYPERLAB_BENCH_SHARED=1. Call it before the first
 * row.
 */
export function rowProcesses(benchUrl: string): void {
  if (ROW === undefined && process.env.HYPERLAB_BENCH_SHARED !== "1") {
    benchFile = fileURLToPath(benchUrl);
  }
}

/** Whether this is a row's own process: it skips `rate`'s loops, and times only its row. */
export const ROW_PROCESS = ROW !== undefined;

/** Rounds of each side-by-side loop (each side: one warm-up, then this many timed runs). */
export const ROUNDS = 5;

/** One timed run, in nanoseconds. */
export interface Sample {
  wall: number;
  cpu: number;
}

/** Runs `loop` once and times it by wall clock and by this process's CPU time. */
export function timeRun(loop: () => void): Sample {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  loop();
  const wall = (performance.now() - t0) * 1e6;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) * 1000 };
}

/** The best wall and best CPU time of some runs (ns), and the runs. */
export interface Measured {
  wall: number;
  cpu: number;
  samples: Sample[];
}

function best(samples: Sample[]): Measured {
  let wall = Number.POSITIVE_INFINITY;
  let cpu = Number.POSITIVE_INFINITY;
  for (const s of samples) {
    wall = Math.min(wall, s.wall);
    cpu = Math.min(cpu, s.cpu);
  }
  return { wall, cpu, samples };
}

/** One untimed warm-up of `loop`, then the best of `runs` timed runs. */
export function measure(loop: () => void, runs = ROUNDS): Measured {
  loop();
  const samples: Sample[] = [];
  for (let r = 0; r < runs; r++) samples.push(timeRun(loop));
  return best(samples);
}

/** Millions of operations per second for `ops` operations in `ns` nanoseconds. */
export const mps = (ops: number, ns: number): number => (ops / ns) * 1e3;

/** Prints `name: W M/s [cpu time: C M/s]` (wall and CPU-time rates) for a measured loop. */
export function printRate(name: string, ops: number, m: Measured): void {
  console.log(
    `${name}: ${mps(ops, m.wall).toFixed(1)} M/s [cpu time: ${mps(ops, m.cpu).toFixed(1)} M/s]`,
  );
}

/** Measures `loop` (warm-up, best of `runs`) and prints its rates; returns the measure. */
export function rate(name: string, ops: number, loop: () => void, runs = ROUNDS): Measured {
  if (ROW_PROCESS) return { wall: Number.NaN, cpu: Number.NaN, samples: [] };
  const m = measure(loop, runs);
  printRate(name, ops, m);
  return m;
}

/**
 * A C reference kept running in "turns" mode: `run(name)` asks it for one timed run of the
 * loop `name` and resolves to that run's times. Names must come in the order of its main's
 * MEASUREs (each as many times in a row as wanted). The binary and its arguments may be
 * given as functions: they are called, and the child started, at `start` or the first run
 * (a process that times no row of it never builds its fixture).
 */
export class CTurns {
  private child: ChildProcess | null = null;
  private readonly waiting: {
    name: string;
    resolve: (s: Sample) => void;
    reject: (e: Error) => void;
  }[] = [];
  private buffered = "";
  private exited: Promise<number | null> = Promise.resolve(0);
  private readonly bin: string | (() => string);
  private readonly args: string[] | (() => string[]);

  constructor(bin: string | (() => string), args: string[] | (() => string[])) {
    this.bin = bin;
    this.args = args;
  }

  /** Starts the C reference (once): its binary and fixture are made now if they are not. */
  start(): ChildProcess {
    if (this.child !== null) return this.child;
    const bin = typeof this.bin === "function" ? this.bin() : this.bin;
    const args = typeof this.args === "function" ? this.args() : this.args;
    const child = spawn(bin, args, { stdio: ["pipe", "pipe", "inherit"] });
    this.child = child;
    // A write after the child exited fails with EPIPE; the close handler rejects the waiters.
    child.stdin!.on("error", () => {});
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (text: string) => {
      this.buffered += text;
      let nl = this.buffered.indexOf("\n");
      while (nl >= 0) {
        this.answer(this.buffered.slice(0, nl));
        this.buffered = this.buffered.slice(nl + 1);
        nl = this.buffered.indexOf("\n");
      }
    });
    this.exited = new Promise((resolve) => {
      child.on("close", (code) => {
        for (const w of this.waiting.splice(0))
          w.reject(new Error(`${bin} exited (${code}) before running ${w.name}`));
        resolve(code);
      });
    });
    return child;
  }

  private answer(line: string): void {
    const [name, wall, cpu] = line.split("\t");
    const w = this.waiting.shift();
    if (w === undefined) return;
    if (name !== w.name) w.reject(new Error(`asked the C reference for ${w.name}, got: ${line}`));
    else w.resolve({ wall: Number(wall), cpu: Number(cpu) });
  }

  /** One timed run of the C loop `name`. */
  run(name: string): Promise<Sample> {
    const child = this.start();
    return new Promise((resolve, reject) => {
      this.waiting.push({ name, resolve, reject });
      child.stdin!.write(`${name}\n`);
    });
  }

  /** Ends its input (it skips the loops not asked for) and waits for it to exit; nothing to
   * do if it never started. */
  async close(): Promise<void> {
    if (this.child === null) return;
    this.child.stdin!.end();
    const code = await this.exited;
    if (code !== 0) throw new Error(`the C reference exited with ${code}`);
  }
}

/** A side-by-side figure: a TypeScript loop and its C counterpart, measured in turns. */
export interface Row {
  key: string;
  label: string;
  /** "M/s": a rate of `ops` operations per run; "ms": the time of one run. */
  unit: "M/s" | "ms";
  ops: number;
  ts: Measured;
  c: Measured;
}

/** The row's figure for one side: its CPU-time rate (M/s) or best CPU time (ms). */
export const figure = (row: Row, m: Measured): number =>
  row.unit === "ms" ? m.cpu / 1e6 : mps(row.ops, m.cpu);

/** TS/C: how many times the TypeScript's best CPU time is the C's. */
export const ratio = (row: Row): number => row.ts.cpu / row.c.cpu;

/**
 * The median over rounds of TS/C within one round (each round's C run and the TypeScript run
 * right after it): a paired figure, steadier than best / best when the load moves.
 */
export const pairedRatio = (row: Row): number => {
  const r = row.ts.samples.map((s, i) => s.cpu / row.c.samples[i].cpu).sort((a, b) => a - b);
  const m = r.length >> 1;
  return r.length % 2 === 1 ? r[m] : (r[m - 1] + r[m]) / 2;
};

/** Slowest over fastest CPU time of a side's timed runs. */
export const spread = (m: Measured): number => {
  const cpu = m.samples.map((s) => s.cpu);
  return Math.max(...cpu) / Math.min(...cpu);
};

/** A turn's keys, labels and ops, one each for the figures one TypeScript turn times. */
export interface TurnSpec {
  keys: string[];
  labels: string[];
  unit: Row["unit"];
  ops: number[];
}

/**
 * Several figures taken in one turn (pv-mmu's pin then unpin): each round the C reference
 * runs each key once, then the TypeScript turn times the same; one warm-up round first.
 * `make` builds what only this row uses and returns the turn: it runs only in the process
 * that times the row (after the C reference has started, so a fixture the C reads is
 * written before the row's TypeScript touches anything).
 */
export async function turns(
  c: CTurns,
  spec: TurnSpec,
  make: () => () => Sample[],
  rounds = ROUNDS,
): Promise<Row[]> {
  const id = spec.keys.join(",");
  if (benchFile !== null) return rowsInOwnProcess(benchFile, id);
  if (ROW !== undefined && ROW !== id) {
    // Another row's process: this row is not built or timed here.
    const none: Measured = { wall: Number.NaN, cpu: Number.NaN, samples: [] };
    return spec.keys.map((key, k) => ({
      key,
      label: spec.labels[k],
      unit: spec.unit,
      ops: spec.ops[k],
      ts: none,
      c: none,
    }));
  }
  c.start();
  const rows = await timeTurns(c, spec, make(), rounds);
  if (ROW !== undefined && ROW_OUT !== undefined) {
    // The row's own process: its work is done (the C reference ends when its input does).
    writeFileSync(ROW_OUT, JSON.stringify(rows));
    process.exit(0);
  }
  return rows;
}

/**
 * Starts `file` again with HYPERLAB_BENCH_ROW = `id` (the same node and flags, e.g. tsx's
 * loader) and returns the rows that process timed. Its standard output (the lines of a run
 * that skips every other row) is dropped; its errors are shown.
 */
function rowsInOwnProcess(file: string, id: string): Row[] {
  const dir = mkdtempSync(join(tmpdir(), "hyperlab-bench-row-"));
  const out = join(dir, "rows.json");
  try {
    const r = spawnSync(process.execPath, [...process.execArgv, file], {
      env: { ...process.env, HYPERLAB_BENCH_ROW: id, HYPERLAB_BENCH_ROW_OUT: out },
      stdio: ["ignore", "ignore", "inherit"],
    });
    let text: string | null = null;
    try {
      text = readFileSync(out, "utf8");
    } catch {}
    if (r.status !== 0 || text === null) {
      const how = r.error
        ? `did not start (${r.error.message})`
        : `ended (${r.status ?? r.signal})`;
      throw new Error(
        `the process for side-by-side row ${id} ${how} without its figures; HYPERLAB_BENCH_SHARED=1 runs every row in one process`,
      );
    }
    return JSON.parse(text) as Row[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function timeTurns(
  c: CTurns,
  spec: TurnSpec,
  tsTurn: () => Sample[],
  rounds: number,
): Promise<Row[]> {
  const cs: Sample[][] = spec.keys.map(() => []);
  const ts: Sample[][] = spec.keys.map(() => []);
  for (let r = 0; r <= rounds; r++) {
    for (let k = 0; k < spec.keys.length; k++) {
      const s = await c.run(spec.keys[k]);
      if (r > 0) cs[k].push(s);
    }
    const t = tsTurn();
    if (r > 0) for (let k = 0; k < spec.keys.length; k++) ts[k].push(t[k]);
  }
  return spec.keys.map((key, k) => ({
    key,
    label: spec.labels[k],
    unit: spec.unit,
    ops: spec.ops[k],
    ts: best(ts[k]),
    c: best(cs[k]),
  }));
}

/**
 * One loop side by side: C's loop `key` and the loop `make` returns, in turns (see `turns`;
 * `make` builds what only this row uses, e.g. its world, and runs only where the row is
 * timed).
 */
export async function sideBySide(
  c: CTurns,
  key: string,
  label: string,
  ops: number,
  make: () => () => void,
  rounds = ROUNDS,
): Promise<Row> {
  const spec: TurnSpec = { keys: [key], labels: [label], unit: "M/s", ops: [ops] };
  const [row] = await turns(
    c,
    spec,
    () => {
      const loop = make();
      return () => [timeRun(loop)];
    },
    rounds,
  );
  return row;
}

/**
 * Prints the side-by-side table: per row TS, C (M/s by CPU time, or ms), TS/C and each side's
 * spread. `width`: the label column's (default: the longest label's); `after` may print lines
 * under a row.
 */
export function printTable(
  rows: Row[],
  options: { width?: number; after?: (row: Row) => void } = {},
): void {
  const { after } = options;
  const width = options.width ?? Math.max(...rows.map((r) => r.label.length));
  const ms = rows.some((r) => r.unit === "ms");
  console.log(
    `\nTypeScript against the C reference (${ms ? "" : "M/s "}by CPU time; TS/C = ${
      ms ? "TS time / C time" : "C rate / TS rate"
    }; best of ${ROUNDS} runs each, C and TS in turns; spread: slowest / fastest run):`,
  );
  for (const row of rows) {
    const show = (m: Measured) =>
      ms
        ? `${figure(row, m).toFixed(1)} ${row.unit}`.padStart(9)
        : figure(row, m).toFixed(1).padStart(7);
    const r = ratio(row);
    console.log(
      `  ${row.label.padEnd(width)} TS ${show(row.ts)}  C ${show(row.c)}  TS/C ${r.toFixed(2)}${
        r > 2 ? "  (over 2x)" : ""
      }  [spread TS ${spread(row.ts).toFixed(2)} C ${spread(row.c).toFixed(2)}]`,
    );
    after?.(row);
  }
}

/**
 * Writes `bench/results.json` beside the calling bench (`benchUrl`: its import.meta.url):
 * the package, host load and every row's figures and runs, for scripts/bench-mmu.mjs.
 */
export function writeResults(benchUrl: string, pkg: string, rows: Row[]): void {
  if (ROW_PROCESS) {
    // A row's own process that never met its row.
    throw new Error(
      `HYPERLAB_BENCH_ROW=${ROW} names no side-by-side row of this bench (rows: ${rows.map((r) => r.key).join(", ")})`,
    );
  }
  const path = fileURLToPath(new URL("./results.json", benchUrl));
  const out = {
    package: pkg,
    date: new Date().toISOString(),
    node: process.version,
    loadavg: loadavg(),
    rounds: ROUNDS,
    rows: rows.map((row) => ({
      key: row.key,
      label: row.label,
      unit: row.unit,
      ops: row.ops,
      ts: figure(row, row.ts),
      c: figure(row, row.c),
      ratio: ratio(row),
      pairedRatio: pairedRatio(row),
      spreadTs: spread(row.ts),
      spreadC: spread(row.c),
      tsRuns: row.ts.samples,
      cRuns: row.c.samples,
    })),
  };
  writeFileSync(path, `${JSON.stringify(out, null, 1)}\n`);
  console.log(`(figures written to ${path})`);
}
