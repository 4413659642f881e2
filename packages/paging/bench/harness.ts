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
 */

import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";

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
  const m = measure(loop, runs);
  printRate(name, ops, m);
  return m;
}

/**
 * A C reference kept running in "turns" mode: `run(name)` asks it for one timed run of the
 * loop `name` and resolves to that run's times. Names must come in the order of its main's
 * MEASUREs (each as many times in a row as wanted).
 */
export class CTurns {
  private readonly child: ChildProcess;
  private readonly waiting: {
    name: string;
    resolve: (s: Sample) => void;
    reject: (e: Error) => void;
  }[] = [];
  private buffered = "";
  private readonly exited: Promise<number | null>;

  constructor(bin: string, args: string[]) {
    this.child = spawn(bin, args, { stdio: ["pipe", "pipe", "inherit"] });
    // A write after the child exited fails with EPIPE; the close handler rejects the waiters.
    this.child.stdin!.on("error", () => {});
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (text: string) => {
      this.buffered += text;
      let nl = this.buffered.indexOf("\n");
      while (nl >= 0) {
        this.answer(this.buffered.slice(0, nl));
        this.buffered = this.buffered.slice(nl + 1);
        nl = this.buffered.indexOf("\n");
      }
    });
    this.exited = new Promise((resolve) => {
      this.child.on("close", (code) => {
        for (const w of this.waiting.splice(0))
          w.reject(new Error(`${bin} exited (${code}) before running ${w.name}`));
        resolve(code);
      });
    });
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
    return new Promise((resolve, reject) => {
      this.waiting.push({ name, resolve, reject });
      this.child.stdin!.write(`${name}\n`);
    });
  }

  /** Ends its input (it skips the loops not asked for) and waits for it to exit. */
  async close(): Promise<void> {
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
 * runs each key once, then `tsTurn` times the same in TypeScript; one warm-up round first.
 */
export async function turns(
  c: CTurns,
  spec: TurnSpec,
  tsTurn: () => Sample[],
  rounds = ROUNDS,
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

/** One loop side by side: C's loop `key` and `loop`, in turns (see `turns`). */
export async function sideBySide(
  c: CTurns,
  key: string,
  label: string,
  ops: number,
  loop: () => void,
  rounds = ROUNDS,
): Promise<Row> {
  const spec: TurnSpec = { keys: [key], labels: [label], unit: "M/s", ops: [ops] };
  const [row] = await turns(c, spec, () => [timeRun(loop)], rounds);
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
