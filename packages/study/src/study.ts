/*
 * A study end to end: resolve the configuration, run the matrix on worker threads with a
 * progress display, derive the figures and write the files.
 */

import { accessSync, constants, mkdirSync, readFileSync, statSync } from "node:fs";
import { freemem, totalmem } from "node:os";
import { BACKENDS } from "./backends";
import { expandMatrix, resolveConfig, type StudyConfig, type StudyConfigInput } from "./config";
import { studyError } from "./errors";
import { runIoStudy } from "./io/results";
import { runSplitIoStudy } from "./io/split-results";
import { checkQueue, parseQueueUrl, runCellsOnQueue } from "./queue";
import { buildResults, type StudyResults, writeResults } from "./report";
import { type ProgressFn, runCells, type StudyProgress, type TickFn } from "./run";
import { WORKLOADS, workloadByName } from "./workloads";

/** Where progress goes: a stream with write and, if a terminal, isTTY. */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

/**
 * Progress to `stream`: a bar redrawn in place on a terminal, otherwise one plain line per
 * finished run.
 */
export function progressReporter(stream: ProgressStream): ProgressFn {
  if (stream.isTTY === true) {
    return (done, total, last) => {
      const width = 30;
      const fill = Math.round((done / total) * width);
      const bar = `${"#".repeat(fill)}${"-".repeat(width - fill)}`;
      stream.write(`\r\x1b[K[${bar}] ${done}/${total} ${last.key}`);
      if (done === total) stream.write("\n");
    };
  }
  return (done, total, last) => {
    stream.write(`study: ${done}/${total} done: ${last.key} (checksum ${last.checksum})\n`);
  };
}

/** The host memory a study may use, in bytes. */
function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const t = Math.round(seconds);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function rate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(1)}M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k`;
  return perSecond.toFixed(0);
}

export interface ProgressDisplayOptions {
  /** Redraw one line in place (a terminal) or print a line per finished run. */
  isTTY: boolean;
  /** Milliseconds from some fixed point (default performance.now); tests pass their own. */
  now?: () => number;
  /** Least milliseconds between two redraws on a terminal (default 200). */
  interval?: number;
}

/**
 * The CLI's progress: elapsed time, accesses per second and an ETA that move while a cell
 * runs. On a terminal one line is redrawn in place; elsewhere a line per finished run.
 */
export function progressDisplay(
  stream: ProgressStream,
  options: ProgressDisplayOptions,
): { onProgress: ProgressFn; onTick: TickFn } {
  const now = options.now ?? (() => performance.now());
  const interval = options.interval ?? 200;
  const start = now();
  let last: StudyProgress = { done: 0, total: 0, fraction: 0, accesses: 0 };
  let drawn = Number.NEGATIVE_INFINITY;
  const status = (p: StudyProgress) => {
    const elapsed = (now() - start) / 1000;
    const eta = p.fraction > 0 ? (elapsed * (1 - p.fraction)) / p.fraction : Number.NaN;
    const r = elapsed > 0 ? rate(p.accesses / elapsed) : "-";
    return `${(p.fraction * 100).toFixed(0).padStart(3)}% ${p.done}/${p.total} runs, elapsed ${clock(elapsed)}, ${r} accesses/s, ETA ${p.done === p.total ? "0:00" : clock(eta)}`;
  };
  const onTick: TickFn = (p) => {
    last = p;
    if (!options.isTTY) return;
    const t = now();
    if (p.done !== p.total && t - drawn < interval) return;
    drawn = t;
    const width = 24;
    const fill = Math.min(width, Math.round(p.fraction * width));
    stream.write(`\r\x1b[K[${"#".repeat(fill)}${"-".repeat(width - fill)}] ${status(p)}`);
    if (p.done === p.total) stream.write("\n");
  };
  const onProgress: ProgressFn = (done, total, run) => {
    if (options.isTTY) return;
    stream.write(
      `study: ${done}/${total} done: ${run.key} (checksum ${run.checksum}); ${status({ ...last, done, total })}\n`,
    );
  };
  return { onProgress, onTick };
}

export interface HostMemory {
  free: number;
  total: number;
}

export interface StudyOptions {
  /** Directory for config.json, results.json, results.csv and report.html; none if absent. */
  outDir?: string;
  /** Overrides the config's worker count. */
  workers?: number;
  /** Progress display; default none. Pass progressReporter(process.stderr) for the CLI's. */
  onProgress?: ProgressFn;
  /** Told while cells run (accesses and an estimated fraction of the work done). */
  onTick?: TickFn;
  /** The host's memory to check the estimate against (default: os.freemem/totalmem). */
  hostMemory?: HostMemory;
  /** Skip the memory check (default: check). */
  skipMemoryCheck?: boolean;
  /**
   * Run the cells as jobs on this BullMQ queue (redis://HOST:PORT) instead of local worker
   * threads; `hyperlab worker URL` processes run them. Checked (URL, then a PING) before any
   * run; the local memory check is skipped, as no cell runs here.
   */
  queue?: string;
}

export interface StudyOutcome {
  results: StudyResults;
  /** Paths written (empty without outDir). */
  files: string[];
}

const MiB = 2 ** 20;
/** What a worker thread with a booted hypervisor costs beyond guest RAM (an assumption). */
const PER_WORKER_BYTES = 96 * MiB;

/** Estimated peak memory of a study: its largest cells running side by side on its workers. */
export function estimateStudyMemory(config: StudyConfig): {
  bytes: number;
  largestCellBytes: number;
  concurrent: number;
} {
  const { cells } = expandMatrix(config);
  const sizes = cells
    .map((c) => workloadByName(c.workload).guestBytes(c.params) + PER_WORKER_BYTES)
    .sort((a, b) => b - a);
  const concurrent = Math.max(1, Math.min(config.workers, cells.length));
  let bytes = 0;
  for (let i = 0; i < concurrent && i < sizes.length; i++) bytes += sizes[i];
  return { bytes, largestCellBytes: sizes[0] ?? 0, concurrent };
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 2 : 1)} GiB`;
}

/** Throws STUDY_HOST_MEMORY when the study's estimate does not fit the host's free memory. */
export function checkStudyMemory(config: StudyConfig, host: HostMemory): void {
  const est = estimateStudyMemory(config);
  if (est.bytes <= host.free) return;
  throw studyError(
    "STUDY_HOST_MEMORY",
    `This study needs about ${gib(est.bytes)} (its largest run ${gib(est.largestCellBytes)}, ${est.concurrent} at a time) but the host has ${gib(host.free)} free of ${gib(host.total)}. Make --working-set smaller, run fewer --workers (0 runs one cell at a time on the main thread) or fewer --processes; --skip-memory-check runs it anyway.`,
  );
}

/** Creates `dir` if needed and checks it can be written; throws STUDY_BAD_OUT_DIR if not. */
export function checkOutDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw new Error("not a directory");
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw studyError(
      "STUDY_BAD_OUT_DIR",
      `The study cannot write the results into ${dir}: ${(e as Error).message}. Choose another --out directory (it is created if missing).`,
    );
  }
}

/**
 * Runs a study from a (partial) configuration. The output directory and the host memory are
 * checked before any cell runs, so a mistake there costs nothing.
 */
export async function runStudy(
  input: StudyConfigInput = {},
  options: StudyOptions = {},
): Promise<StudyOutcome> {
  const config = resolveConfig(input);
  if (options.workers !== undefined)
    config.workers = resolveConfig({ workers: options.workers }).workers;
  if (options.queue !== undefined) parseQueueUrl(options.queue);
  if (options.outDir !== undefined) checkOutDir(options.outDir);
  const queue = options.queue === undefined ? undefined : await checkQueue(options.queue);
  if (queue === undefined && options.skipMemoryCheck !== true) {
    checkStudyMemory(config, options.hostMemory ?? { free: freemem(), total: totalmem() });
  }
  const { cells, skipped } = expandMatrix(config);
  const runs =
    queue === undefined
      ? await runCells(cells, config.workers, options.onProgress, options.onTick)
      : (await runCellsOnQueue(cells, queue, options)).runs;
  const results = buildResults(config, runs, skipped);
  if (config.io !== null) {
    results.io = runIoStudy(config.io, config.seed);
    if (config.io.split !== null) results.io.split = await runSplitIoStudy(config.io.split);
  }
  const files = options.outDir === undefined ? [] : writeResults(options.outDir, results, config);
  return { results, files };
}

/** Reads a study configuration file (JSON). */
export function loadStudyConfig(path: string): StudyConfigInput {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw studyError(
      "STUDY_CONFIG_UNREADABLE",
      `Cannot read study config ${path}: ${(e as Error).message}. Pass the path of a JSON file.`,
    );
  }
  try {
    return JSON.parse(text) as StudyConfigInput;
  } catch (e) {
    throw studyError(
      "STUDY_CONFIG_INVALID",
      `Study config ${path} is not valid JSON (${(e as Error).message}). Fix the file; see the study README for its fields.`,
    );
  }
}

/** The default study: every workload on every backend, small enough for under a minute. */
export const DEFAULT_STUDY: StudyConfigInput = {
  seed: 1,
  workingSetBytes: [8 * 2 ** 20],
  guestPageSizes: ["4K"],
  hostPageSizes: ["4K"],
  processes: [2],
  // A small split-driver case (every mode, the default patterns, 8 requests each after 8 of
  // warm-up): a few seconds, so the default study (pnpm demo) stays well under 30 s.
  io: { requests: 32, split: { requests: 8 } },
};

/** Runs the default study and writes its report into `outDir`. */
export function runDefaultStudy(
  outDir: string,
  options: Omit<StudyOptions, "outDir"> = {},
): Promise<StudyOutcome> {
  return runStudy(DEFAULT_STUDY, { ...options, outDir });
}

/** The workloads a study can run: name, what one operation is, and a description. */
export function listWorkloads(): {
  name: string;
  operationUnit: string;
  defaultOperations: number;
  description: string;
}[] {
  return WORKLOADS.map((w) => ({
    name: w.name,
    operationUnit: w.operationUnit,
    defaultOperations: w.defaultOperations,
    description: w.description,
  }));
}

/** The MMU backends a study can compare. */
export function listBackends(): { name: string; description: string }[] {
  return BACKENDS.map((b) => ({ name: b.name, description: b.description }));
}
