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
import { HyperlabError } from "@hyperlab/core";
import { Prng } from "@hyperlab/machine";
import { backendByName, expandMatrix, type StudyCell, type StudyConfig } from "./config";
import type { StudyCounts } from "./counts";
import { GuestTarget } from "./guest-target";
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
}

/** Runs one cell on the calling thread. */
export function runCell(cell: StudyCell): RunResult {
  const w = workloadByName(cell.workload);
  const config = {
    backend: backendByName(cell.backend),
    params: { guestPageSize: cell.params.guestPageSize, hostPageSize: cell.params.hostPageSize },
    guestBytes: w.guestBytes(cell.params),
    seed: cell.seed,
  };
  const k = new GuestTarget(config);
  const prng = Prng.fromSeed(cell.seed).fork(`workload:${cell.workload}`);
  const h = w.run(k, cell.params, prng);
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
    counts: k.counts(),
  };
}

/** Told once per finished run. */
export type ProgressFn = (done: number, total: number, last: RunResult) => void;

export interface RunOptions {
  /** Worker threads (0: on the calling thread). Default: the config's. */
  workers?: number;
  onProgress?: ProgressFn;
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

/** Runs every cell, `workers` at a time; resolves to the results in matrix order. */
export async function runCells(
  cells: readonly StudyCell[],
  workers: number,
  onProgress?: ProgressFn,
): Promise<RunResult[]> {
  const results: RunResult[] = new Array(cells.length);
  let done = 0;
  const finish = (r: RunResult) => {
    results[r.index] = r;
    done++;
    onProgress?.(done, cells.length, r);
  };
  if (workers === 0 || cells.length === 0) {
    for (const c of cells) finish(runCell(c));
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
        w.postMessage(c);
      };
      w.on(
        "message",
        (m: { ok: true; result: RunResult } | { ok: false; error: string; code?: string }) => {
          if (failed) return;
          if (!m.ok) {
            failed = true;
            stopAll();
            reject(m.code === undefined ? new Error(m.error) : new HyperlabError(m.code, m.error));
            return;
          }
          const pos = byIndex.get(m.result.index);
          if (pos === undefined) throw new Error("study bug: a worker returned an unknown cell");
          finish(m.result);
          next();
        },
      );
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
  const runs = await runCells(cells, options.workers ?? config.workers, options.onProgress);
  return { runs, skipped };
}
