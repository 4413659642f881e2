/*
 * A study worker thread: runs the cells it is sent, one at a time, through the job function
 * (job.ts), and posts ticks while a cell runs, then its outcome. It keeps no state between
 * cells.
 */
import { parentPort } from "node:worker_threads";
import type { StudyCell } from "./config";
import { cellJob } from "./job";

parentPort?.on("message", ({ cell, ticks }: { cell: StudyCell; ticks: boolean }) => {
  const tick = ticks
    ? (t: { index: number; accesses: number; operations: number }) =>
        parentPort?.postMessage({ kind: "tick", tick: t })
    : undefined;
  parentPort?.postMessage(cellJob(cell, tick));
});
