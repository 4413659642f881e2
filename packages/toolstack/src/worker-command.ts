/*
 * `hyperlab worker URL`: a study worker on a BullMQ queue in Redis. It takes the cells that
 * `hyperlab study --queue URL` enqueues, one at a time, runs each through the study's job
 * function (the same one the local worker threads run), and stays until SIGINT or SIGTERM,
 * when it finishes the cell it holds and exits 0.
 *
 * Invariant: a bad or unreachable URL ends with a message naming the URL operand and exit
 * status 2 (bad URL) or 1 (unreachable), before the worker takes any job.
 */
import { isHyperlabError } from "@hyperlab/core";
import {
  checkQueue,
  STUDY_CONFIG_ERROR_CODES,
  STUDY_ERROR_CODES,
  startQueueWorker,
} from "@hyperlab/study";
import { InvalidArgumentError } from "commander";
import type { CliIo } from "./cli/io";
import { parseVerb, verbProgram } from "./cli/parse";

const DESCRIPTION =
  "Runs the cells of studies started with 'hyperlab study --queue URL', taken one at a time from the BullMQ queue in the Redis at URL (redis://HOST[:PORT][/DB]). Start as many as you like, on any machines that reach the Redis; a worker that dies mid-cell leaves its job to be retried by another once its lock expires. Stops on SIGINT or SIGTERM after the cell it holds.";

function msOf(s: string): number {
  if (!/^\d+$/.test(s) || Number(s) < 1) {
    throw new InvalidArgumentError(`takes a positive whole number of milliseconds; got '${s}'`);
  }
  return Number(s);
}

interface WorkerFlags {
  lockDuration?: number;
  stalledInterval?: number;
  maxStalled?: number;
  quiet?: boolean;
}

/** Resolves once `signals` has seen SIGINT or SIGTERM. */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(sig);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/**
 * Runs `hyperlab worker URL`; resolves to the exit status when `stop` resolves (default: on
 * SIGINT or SIGTERM).
 */
export async function workerCommand(
  args: readonly string[],
  io: CliIo,
  stop: () => Promise<unknown> = stopSignal,
): Promise<number> {
  const cmd = verbProgram("worker", DESCRIPTION, io)
    .argument("<URL>", "the Redis that holds the queue, e.g. redis://127.0.0.1:6379")
    .option(
      "--lock-duration <MS>",
      "how long a job's lock lasts unrenewed: a dead worker's cell is retried after it (default 30000)",
      msOf,
    )
    .option(
      "--stalled-interval <MS>",
      "how often this worker looks for stalled jobs (default 30000)",
      msOf,
    )
    .option("--max-stalled <N>", "times a job may stall before it fails (default 2)", msOf)
    .option("--quiet", "print nothing but errors");
  const p = parseVerb<WorkerFlags>(cmd, args, io, "worker");
  if (!p.ok) return p.status;
  const url = p.operands[0];
  const f = p.opts;
  try {
    const connection = await checkQueue(url, "URL");
    const say = f.quiet === true ? () => {} : (s: string) => io.err(`hyperlab worker: ${s}\n`);
    const w = startQueueWorker(connection, {
      lockDuration: f.lockDuration,
      stalledInterval: f.stalledInterval,
      maxStalledCount: f.maxStalled,
      onCell: (event, cell) => say(`${event} cell ${cell.index} ${cell.key}`),
    });
    await w.ready;
    say(`ready on ${url}`);
    const sig = await stop();
    say(`${String(sig)}: finishing the cell it holds`);
    await w.close();
    return 0;
  } catch (e) {
    if (isHyperlabError(e, STUDY_CONFIG_ERROR_CODES)) {
      io.err(`hyperlab worker: ${e.message}\n`);
      return 2;
    }
    if (isHyperlabError(e, STUDY_ERROR_CODES)) {
      io.err(`hyperlab worker: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
