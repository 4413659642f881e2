/*
 * Running a study: each cell of the matrix boots its own machine, hypervisor and guest kernel,
 * runs its workload and returns exact counts and a functional checksum. Cells run on
 * worker threads; results are put back in matrix order, so nothing depends on which worker
 * finished first.
 *
 * Invariant: a run's result holds only facts of the run (counts, checksum, parameters,
 * seed), never a wall-clock time, so the same configuration gives byte-identical results.
 */
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { Prng } from "@hyperlab/machine";
import { backendByName, expandMatrix, type StudyCell, type StudyConfig } from "./config";
import type { StudyCounts } from "./counts";
import { type StudyErrorCode, studyError } from "./errors";
import { GuestTarget } from "./guest-target";
import type { StudyTarget } from "./target";
import { workloadByName } from "./workloads";

/** The exact outcome of one cell. */
export interface RunResult {
  index: number;
  key: string;
  caseKey: string;
  baseKey: string;
  workload: string;
  backend: string;
  params: StudyCell["params"];
  seed: number;
  /** Functional result: a checksum of every value the workload read (8 hex digits). */
  checksum: string;
  counts: StudyCounts;
  /**
   * Counts at the end of warm-up (the workload's first touch of its working set); the
   * steady state is `counts` minus these. All counts when the workload never warmed up.
   */
  warmup: StudyCounts;
  /**
   * Every statistic the hypervisor and the backend's plugins keep, by group then name, as
   * counted at the end of the run (units and descriptions in `STAT_INFO` of the results).
   */
  backendStats: Record<string, Record<string, number>>;
  /** Units and descriptions of `backendStats`, keyed "group.name". */
  statInfo: Record<string, { unit: string; description: string }>;
}

/** How far a running cell has got: told every TICK_ACCESSES accesses or so. */
export interface CellTick {
  index: number;
  /** User accesses replayed so far in the cell. */
  accesses: number;
  /** Workload operations counted so far in the cell. */
  operations: number;
}

/** Accesses between two ticks of a running cell. */
export const TICK_ACCESSES = 1 << 16;

/**
 * The target a workload runs on: the guest target, plus the warm-up mark and, when asked,
 * a tick every TICK_ACCESSES accesses (the workload calls replay in batches, so this costs
 * one check per batch).
 */
class RunTarget implements StudyTarget {
  warm: StudyCounts | null = null;
  private accesses = 0;
  private operations = 0;
  private nextTick = TICK_ACCESSES;
  readonly pageSize: number;

  constructor(
    private readonly k: StudyTarget,
    private readonly index: number,
    private readonly tick: ((t: CellTick) => void) | undefined,
  ) {
    this.pageSize = k.pageSize;
  }

  private saw(n: number): void {
    this.accesses += n;
    if (this.accesses >= this.nextTick && this.tick !== undefined) {
      this.nextTick = this.accesses + TICK_ACCESSES;
      this.tick({ index: this.index, accesses: this.accesses, operations: this.operations });
    }
  }
  spawn(): number {
    return this.k.spawn();
  }
  fork(pid: number): number {
    return this.k.fork(pid);
  }
  exec(pid: number): void {
    this.k.exec(pid);
  }
  exit(pid: number): void {
    this.k.exit(pid);
  }
  mmap(pid: number, bytes: number): number {
    return this.k.mmap(pid, bytes);
  }
  munmap(pid: number, va: number, bytes: number): void {
    this.k.munmap(pid, va, bytes);
  }
  replay(pid: number, vas: Float64Array, kinds: Uint8Array, n: number, salt: number): number {
    const h = this.k.replay(pid, vas, kinds, n, salt);
    this.saw(n);
    return h;
  }
  store(pid: number, vas: Float64Array, values: Uint32Array, n: number): void {
    this.k.store(pid, vas, values, n);
    this.saw(n);
  }
  chase(pid: number, base: number, stride: number, start: number, steps: number): number {
    const h = this.k.chase(pid, base, stride, start, steps);
    this.saw(steps);
    return h;
  }
  compute(n: number): void {
    this.k.compute?.(n);
  }
  countOperations(n: number): void {
    this.k.countOperations(n);
    this.operations += n;
    this.tick?.({ index: this.index, accesses: this.accesses, operations: this.operations });
  }
  warmedUp(): void {
    this.warm ??= this.k.counts();
  }
  counts(): StudyCounts {
    return this.k.counts();
  }
}

/** The hypervisor's statistics at the end of a run, values and their units apart. */
function statsOf(k: GuestTarget): Pick<RunResult, "backendStats" | "statInfo"> {
  const backendStats: RunResult["backendStats"] = {};
  const statInfo: RunResult["statInfo"] = {};
  for (const [group, values] of Object.entries(k.hv.stats.snapshot())) {
    const g: Record<string, number> = {};
    for (const v of values) {
      g[v.name] = v.value;
      statInfo[`${group}.${v.name}`] = { unit: v.unit, description: v.description };
    }
    backendStats[group] = g;
  }
  return { backendStats, statInfo };
}

/** Runs one cell on the calling thread; `onTick` hears how far it has got. */
export function runCell(cell: StudyCell, onTick?: (t: CellTick) => void): RunResult {
  const w = workloadByName(cell.workload);
  const config = {
    backend: backendByName(cell.backend),
    params: { guestPageSize: cell.params.guestPageSize, hostPageSize: cell.params.hostPageSize },
    guestBytes: w.guestBytes(cell.params),
    seed: cell.seed,
  };
  const k = new GuestTarget(config);
  const prng = Prng.fromSeed(cell.seed).fork(`workload:${cell.workload}`);
  const target = new RunTarget(k, cell.index, onTick);
  const h = w.run(target, cell.params, prng);
  const counts = k.counts();
  return {
    index: cell.index,
    key: cell.key,
    caseKey: cell.caseKey,
    baseKey: cell.baseKey,
    workload: cell.workload,
    backend: cell.backend,
    params: cell.params,
    seed: cell.seed,
    checksum: (h >>> 0).toString(16).padStart(8, "0"),
    counts,
    warmup: target.warm ?? counts,
    ...statsOf(k),
  };
}

/** Told once per finished run. */
export type ProgressFn = (done: number, total: number, last: RunResult) => void;

/** Where a whole study has got, finished cells and the parts of running ones. */
export interface StudyProgress {
  /** Cells finished, and all cells. */
  done: number;
  total: number;
  /** Estimated fraction of the study's work done, from 0 to 1. */
  fraction: number;
  /** User accesses replayed so far, in finished and running cells. */
  accesses: number;
}

/** Told on every tick of a running cell and after every finished one. */
export type TickFn = (p: StudyProgress) => void;

export interface RunOptions {
  /** Worker threads (0: on the calling thread). Default: the config's. */
  workers?: number;
  onProgress?: ProgressFn;
  onTick?: TickFn;
}

/** Roughly how much of a cell a tick says is done (capped below 1 until it finishes). */
function cellFraction(cell: StudyCell, t: CellTick): number {
  const ops = cell.params.operations;
  const byOps = t.operations / ops;
  const byAccesses = t.accesses / (ops + cell.params.workingSetBytes / 4096);
  return Math.min(0.99, Math.max(byOps, byAccesses));
}

/** Keeps the progress of a study from ticks and finished runs. */
class ProgressTracker {
  private done = 0;
  private doneAccesses = 0;
  private readonly running = new Map<number, { accesses: number; fraction: number }>();
  private readonly byIndex: Map<number, StudyCell>;

  constructor(
    private readonly cells: readonly StudyCell[],
    private readonly onTick: TickFn | undefined,
  ) {
    this.byIndex = new Map(cells.map((c) => [c.index, c]));
  }

  tick(t: CellTick): void {
    const cell = this.byIndex.get(t.index);
    if (cell === undefined || this.onTick === undefined) return;
    this.running.set(t.index, { accesses: t.accesses, fraction: cellFraction(cell, t) });
    this.tell();
  }

  finish(r: RunResult): void {
    this.running.delete(r.index);
    this.done++;
    this.doneAccesses += r.counts.accesses;
    this.tell();
  }

  private tell(): void {
    if (this.onTick === undefined) return;
    let part = 0;
    let accesses = this.doneAccesses;
    for (const x of this.running.values()) {
      part += x.fraction;
      accesses += x.accesses;
    }
    const total = this.cells.length;
    this.onTick({
      done: this.done,
      total,
      fraction: total === 0 ? 1 : (this.done + part) / total,
      accesses,
    });
  }
}

/**
 * How to start a worker: dist/worker.js beside the built module; from source (tests, tsx),
 * src/worker.ts loaded through tsx with workspace imports mapped to their sources.
 */
function startWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./worker.js", here));
  const tsx = createRequire(here)
    .resolve("tsx/esm/api")
    .replace(/\.cjs$/, ".mjs");
  const tsconfig = fileURLToPath(new URL("../tsconfig.source.json", here));
  const entry = new URL("./worker.ts", here).href;
  const boot = `import(${JSON.stringify(pathToFileURL(tsx).href)}).then((m) => { m.register({ tsconfig: ${JSON.stringify(tsconfig)} }); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true });
}

type WorkerMessage =
  | { kind: "tick"; tick: CellTick }
  | { kind: "done"; result: RunResult }
  | { kind: "failed"; error: string; code?: StudyErrorCode };

/** Runs every cell, `workers` at a time; resolves to the results in matrix order. */
export async function runCells(
  cells: readonly StudyCell[],
  workers: number,
  onProgress?: ProgressFn,
  onTick?: TickFn,
): Promise<RunResult[]> {
  const results: RunResult[] = new Array(cells.length);
  const progress = new ProgressTracker(cells, onTick);
  let done = 0;
  const finish = (r: RunResult) => {
    results[r.index] = r;
    done++;
    progress.finish(r);
    onProgress?.(done, cells.length, r);
  };
  if (workers === 0 || cells.length === 0) {
    const tick = onTick === undefined ? undefined : (t: CellTick) => progress.tick(t);
    for (const c of cells) finish(runCell(c, tick));
    return results;
  }
  const byIndex = new Map(cells.map((c, i) => [c.index, i]));
  const queue = [...cells];
  const n = Math.min(workers, cells.length);
  await new Promise<void>((resolve, reject) => {
    let live = n;
    let failed = false;
    const pool: Worker[] = [];
    const stopAll = () => {
      for (const w of pool) void w.terminate();
    };
    for (let i = 0; i < n; i++) {
      const w = startWorker();
      pool.push(w);
      const next = () => {
        const c = queue.shift();
        if (c === undefined) {
          void w.terminate();
          return;
        }
        w.postMessage({ cell: c, ticks: onTick !== undefined });
      };
      w.on("message", (m: WorkerMessage) => {
        if (failed) return;
        if (m.kind === "tick") {
          progress.tick(m.tick);
          return;
        }
        if (m.kind === "failed") {
          failed = true;
          stopAll();
          reject(
            m.code === undefined
              ? studyError("STUDY_WORKER_FAILED", `A study worker failed: ${m.error}`)
              : studyError(m.code, m.error),
          );
          return;
        }
        const pos = byIndex.get(m.result.index);
        if (pos === undefined) throw new Error("study bug: a worker returned an unknown cell");
        finish(m.result);
        next();
      });
      w.on("error", (e) => {
        if (failed) return;
        failed = true;
        stopAll();
        reject(e);
      });
      w.on("exit", () => {
        if (--live === 0 && !failed) resolve();
      });
      next();
    }
  });
  return results;
}

/** Expands and runs a resolved configuration. */
export async function runMatrix(
  config: StudyConfig,
  options: RunOptions = {},
): Promise<{ runs: RunResult[]; skipped: { key: string; reason: string }[] }> {
  const { cells, skipped } = expandMatrix(config);
  const runs = await runCells(
    cells,
    options.workers ?? config.workers,
    options.onProgress,
    options.onTick,
  );
  return { runs, skipped };
}
