/*
 * Running a study's cells on a distributed queue: BullMQ on Redis. The collector
 * (runCellsOnQueue) enqueues every cell as a job and gathers the results; any number of
 * queue workers (startQueueWorker, `hyperlab worker URL`) take jobs and run each through the
 * same job function as the local pool (job.ts, on a worker thread, so the worker's event
 * loop keeps renewing its lock while a cell runs).
 *
 * Invariants: a cell's job id is the study's hash and the cell's index, so enqueueing the
 * same study twice, or a retry, never makes a second job for a cell; the collector accepts
 * each cell exactly once, checks that a result is the cell it asked for, and puts results
 * back in matrix order, so results.json does not depend on which worker ran what. A worker
 * killed mid-cell stops renewing its lock; BullMQ's stalled-job check moves the job back to
 * the wait list and another worker runs it from the start.
 */
import { createHash } from "node:crypto";
import { type Job, Queue, QueueEvents, Worker } from "bullmq";
import { Redis } from "ioredis";
import type { StudyCell } from "./config";
import { studyError } from "./errors";
import type { CellOutcome } from "./job";
import { type ProgressFn, type RunResult, runCells, type TickFn } from "./run";
import { STUDY_VERSION } from "./version";

/** The BullMQ queue every study uses; jobs of different studies differ by their ids. */
export const STUDY_QUEUE_NAME = "hyperlab-study";

/** Where a queue's Redis is, from a redis:// or rediss:// URL. */
export interface QueueConnection {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls?: Record<string, never>;
}

/** A cell as a job carries it. */
export interface CellJobData {
  study: string;
  cell: StudyCell;
}

/**
 * Parses a queue URL: redis://[user:password@]HOST[:PORT][/DB] (rediss:// for TLS). Throws
 * STUDY_BAD_QUEUE naming `flag` (the flag or operand the user typed) when it is not one.
 */
export function parseQueueUrl(url: string, flag = "--queue"): QueueConnection {
  const bad = (why: string) =>
    studyError(
      "STUDY_BAD_QUEUE",
      `${flag} takes a Redis URL such as redis://127.0.0.1:6379 (redis://[user:password@]HOST[:PORT][/DB], rediss:// for TLS); got '${url}': ${why}.`,
    );
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad("not a URL");
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw bad(`the scheme is ${u.protocol.replace(/:$/, "")}, not redis or rediss`);
  }
  if (u.hostname === "") throw bad("it names no host");
  if (u.search !== "" || u.hash !== "") throw bad("it has a query or fragment");
  const path = u.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d+$/.test(path)) throw bad(`the database '${path}' is not a number`);
  const c: QueueConnection = {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: u.port === "" ? 6379 : Number(u.port),
    db: path === "" ? 0 : Number(path),
  };
  if (u.username !== "") c.username = decodeURIComponent(u.username);
  if (u.password !== "") c.password = decodeURIComponent(u.password);
  if (u.protocol === "rediss:") c.tls = {};
  return c;
}

/**
 * Parses `url` and checks that its Redis answers (one PING, no retries, `timeoutMs` to
 * connect). Throws STUDY_BAD_QUEUE or STUDY_QUEUE_UNREACHABLE naming `flag`.
 */
export async function checkQueue(
  url: string,
  flag = "--queue",
  timeoutMs = 3000,
): Promise<QueueConnection> {
  const c = parseQueueUrl(url, flag);
  const redis = new Redis({
    ...c,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  redis.on("error", () => {}); // the failure is reported below, once
  try {
    await redis.connect();
    const pong = await redis.ping();
    if (pong !== "PONG") throw new Error(`PING answered ${pong}`);
    return c;
  } catch (e) {
    throw studyError(
      "STUDY_QUEUE_UNREACHABLE",
      `${flag} ${url}: Redis did not answer (${(e as Error).message}). Start redis-server there, or give ${flag} the URL of a running one.`,
    );
  } finally {
    redis.disconnect();
  }
}

/**
 * The hash that names a study's jobs: the study version and every cell (workload, backend,
 * parameters, seed), so two studies share jobs only when their runs are the same runs.
 */
export function studyHash(cells: readonly StudyCell[]): string {
  return createHash("sha256")
    .update(JSON.stringify({ version: STUDY_VERSION, cells }))
    .digest("hex")
    .slice(0, 20);
}

/** The job id of a cell: the study's hash and the cell's index. */
export function cellJobId(study: string, index: number): string {
  return `${study}-${index}`;
}

export interface QueueRunOptions {
  onProgress?: ProgressFn;
  onTick?: TickFn;
  /** How many times a job is tried before the study fails (default 3). */
  attempts?: number;
}

/** A job's progress as a queue worker reports it. */
interface JobProgress {
  fraction: number;
  accesses: number;
}

/**
 * Enqueues `cells` on the queue at `connection` and resolves to their results in matrix
 * order once workers have run them all. A cell that fails with a study error rejects with
 * that error's code; a job that fails every attempt rejects with STUDY_WORKER_FAILED.
 */
export async function runCellsOnQueue(
  cells: readonly StudyCell[],
  connection: QueueConnection,
  options: QueueRunOptions = {},
): Promise<{ runs: RunResult[]; study: string; accepted: number }> {
  const study = studyHash(cells);
  const queue = new Queue<CellJobData, CellOutcome>(STUDY_QUEUE_NAME, { connection });
  const events = new QueueEvents(STUDY_QUEUE_NAME, { connection });
  const results: RunResult[] = new Array(cells.length);
  const accepted = new Set<number>();
  const running = new Map<number, JobProgress>();
  const byJobId = new Map(cells.map((c, pos) => [cellJobId(study, c.index), pos]));
  let doneAccesses = 0;
  const tell = () => {
    if (options.onTick === undefined) return;
    let part = 0;
    let accesses = doneAccesses;
    for (const p of running.values()) {
      part += p.fraction;
      accesses += p.accesses;
    }
    const total = cells.length;
    options.onTick({
      done: accepted.size,
      total,
      fraction: total === 0 ? 1 : (accepted.size + part) / total,
      accesses,
    });
  };
  try {
    await events.waitUntilReady();
    events.on("progress", ({ jobId, data }) => {
      const pos = byJobId.get(jobId);
      if (pos === undefined || accepted.has(pos) || typeof data !== "object" || data === null) {
        return;
      }
      const p = data as Partial<JobProgress>;
      if (typeof p.fraction !== "number" || typeof p.accesses !== "number") return;
      running.set(pos, { fraction: Math.min(0.99, p.fraction), accesses: p.accesses });
      tell();
    });
    const attempts = options.attempts ?? 3;
    const jobs = await queue.addBulk(
      cells.map((cell) => ({
        name: "cell",
        data: { study, cell },
        opts: { jobId: cellJobId(study, cell.index), attempts },
      })),
    );
    const accept = (pos: number, outcome: CellOutcome) => {
      if (accepted.has(pos)) return; // a cell is counted once, whatever the queue says
      const cell = cells[pos];
      if (outcome.kind === "failed") {
        throw outcome.code === undefined
          ? studyError("STUDY_WORKER_FAILED", `A study worker failed: ${outcome.error}`)
          : studyError(outcome.code, outcome.error);
      }
      const r = outcome.result;
      if (r.index !== cell.index || r.key !== cell.key || r.seed !== cell.seed) {
        throw studyError(
          "STUDY_WORKER_FAILED",
          `The queue returned run ${r.key} #${r.index} for cell ${cell.key} #${cell.index}; the workers run a different study version than this one (${STUDY_VERSION}).`,
        );
      }
      accepted.add(pos);
      running.delete(pos);
      results[pos] = r;
      doneAccesses += r.counts.accesses;
      options.onProgress?.(accepted.size, cells.length, r);
      tell();
    };
    await Promise.all(
      jobs.map(async (job, pos) => {
        let outcome: CellOutcome;
        try {
          outcome = await (job as Job<CellJobData, CellOutcome>).waitUntilFinished(events);
        } catch (e) {
          throw studyError(
            "STUDY_WORKER_FAILED",
            `Cell ${cells[pos].key} failed on the queue after ${attempts} attempts: ${(e as Error).message}`,
          );
        }
        accept(pos, outcome);
      }),
    );
    return { runs: results, study, accepted: accepted.size };
  } finally {
    await events.close();
    await queue.close();
  }
}

export interface QueueWorkerOptions {
  /** How long a job's lock lasts without renewal, in ms (BullMQ's lockDuration; default 30000). */
  lockDuration?: number;
  /** How often stalled jobs are looked for, in ms (BullMQ's stalledInterval; default 30000). */
  stalledInterval?: number;
  /** Times a job may stall before it fails (BullMQ's maxStalledCount; default 2). */
  maxStalledCount?: number;
  /** Told when a cell starts and when it ends on this worker. */
  onCell?: (event: "start" | "done" | "failed", cell: StudyCell) => void;
}

/** A running queue worker. */
export interface QueueWorker {
  /** Resolves once it has connected and takes jobs. */
  ready: Promise<void>;
  /** Finishes the cell it is running, then disconnects. */
  close(): Promise<void>;
}

/**
 * Takes cells from the queue at `connection`, one at a time, and runs each on a worker
 * thread through the job function. A study error is the job's result (it is deterministic:
 * a retry would fail the same way); anything else fails the attempt and BullMQ retries it.
 */
export function startQueueWorker(
  connection: QueueConnection,
  options: QueueWorkerOptions = {},
): QueueWorker {
  const worker = new Worker<CellJobData, CellOutcome>(
    STUDY_QUEUE_NAME,
    async (job) => {
      const cell = job.data.cell;
      options.onCell?.("start", cell);
      let lastFraction = 0;
      const onTick: TickFn = (p) => {
        if (p.fraction - lastFraction < 0.01) return;
        lastFraction = p.fraction;
        job.updateProgress({ fraction: p.fraction, accesses: p.accesses }).catch(() => {});
      };
      let outcome: CellOutcome;
      try {
        // runCells puts a result at its cell's index in the matrix.
        const result = (await runCells([cell], 1, undefined, onTick))[cell.index];
        outcome = { kind: "done", result };
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (typeof code !== "string" || !code.startsWith("STUDY_")) {
          options.onCell?.("failed", cell);
          throw e;
        }
        outcome = { kind: "failed", error: (e as Error).message, code: code as never };
      }
      options.onCell?.(outcome.kind, cell);
      return outcome;
    },
    {
      connection,
      concurrency: 1,
      lockDuration: options.lockDuration ?? 30_000,
      stalledInterval: options.stalledInterval ?? 30_000,
      maxStalledCount: options.maxStalledCount ?? 2,
    },
  );
  worker.on("error", () => {}); // connection trouble: ioredis reconnects; jobs stall and retry
  return {
    ready: worker.waitUntilReady().then(() => undefined),
    close: () => worker.close(),
  };
}
