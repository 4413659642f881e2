/*
 * A study worker thread: runs the cells it is sent, one at a time, and posts each result
 * (or the error that stopped it) back. It keeps no state between cells.
 */
import { parentPort } from "node:worker_threads";
import { HyperlabError } from "@hyperlab/core";
import type { StudyCell } from "./config";
import { runCell } from "./run";

parentPort?.on("message", (cell: StudyCell) => {
  try {
    parentPort?.postMessage({ ok: true, result: runCell(cell) });
  } catch (e) {
    if (e instanceof HyperlabError) {
      parentPort?.postMessage({ ok: false, error: e.message, code: e.code });
    } else {
      parentPort?.postMessage({
        ok: false,
        error: e instanceof Error ? (e.stack ?? e.message) : String(e),
      });
    }
  }
});
