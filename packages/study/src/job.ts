/*
 * The study's job function: one cell in, its outcome out. The local worker pool (worker.ts,
 * on a worker thread) and the distributed queue (queue.ts, a BullMQ worker process) both run
 * cells through it, so a cell's result is the same bytes wherever it ran.
 *
 * Invariant: a study error (a typed HyperlabError) becomes a "failed" outcome carrying its
 * code, never a throw, so it crosses a thread or a Redis job unchanged and is not retried.
 */
import { HyperlabError } from "@hyperlab/core";
import type { StudyCell } from "./config";
import type { StudyErrorCode } from "./errors";
import { type CellTick, type RunResult, runCell } from "./run";

/** What running one cell came to. */
export type CellOutcome =
  | { kind: "done"; result: RunResult }
  | { kind: "failed"; error: string; code?: StudyErrorCode };

/** Runs one cell; `onTick` hears how far it has got. */
export function cellJob(cell: StudyCell, onTick?: (t: CellTick) => void): CellOutcome {
  try {
    return { kind: "done", result: runCell(cell, onTick) };
  } catch (e) {
    if (e instanceof HyperlabError) {
      return { kind: "failed", error: e.message, code: e.code as StudyErrorCode };
    }
    return { kind: "failed", error: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
}
