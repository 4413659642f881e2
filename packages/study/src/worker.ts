/*
 * A study worker thread: runs the cells it is sent, one at a time, and posts ticks while a
 * cell runs, then its result (or the error that stopped it). It keeps no state between cells.
 */
import { parentPort } from "node:worker_threads";
import { HyperlabError } from "@hyperlab/core";
import type { StudyCell } from "./config";
import { runCell } from "./run";

parentPort?.on("message", ({ cell, ticks }: { cell: StudyCell; ticks: boolean }) => {
  try {
    const tick = ticks
      ? (t: { index: number; accesses: number; operations: number }) =>
          parentPort?.postMessage({ kind: "tick", tick: t })
      : undefined;
    parentPort?.postMessage({ kind: "done", result: runCell(cell, tick) });
  } catch (e) {
    if (e instanceof HyperlabError) {
      parentPort?.postMessage({ kind: "failed", error: e.message, code: e.code });
    } else {
      parentPort?.postMessage({
        kind: "failed",
        error: e instanceof Error ? (e.stack ?? e.message) : String(e),
      });
    }
  }
});
