/*
 * `hyperlab top`: a live view of the host's domains, like xentop. In a terminal it redraws
 * the summary and table every DELAY seconds until 'q' or Ctrl-C; with -b (batch) it prints
 * the table once per iteration, as `xentop -b`, and with -i N stops after N of them.
 *
 * Invariant: the clock and the wait are injected (TopClock), so a test runs the batch form
 * with no real time; nothing here throws at the user.
 */

import { InvalidArgumentError } from "commander";
import type { CliIo } from "../cli/io";
import { flagValue, parseVerb, verbProgram } from "../cli/parse";
import { connectHost } from "../xl/cmd/common";
import { type TopSample, topSummary, topTable } from "./format";
import { sampleHost } from "./sample";

/** Where top gets time: microseconds now, the time of day it shows, and a wait of `ms`. */
export interface TopClock {
  nowUs: () => number;
  timeOfDay: () => string;
  sleep: (ms: number) => Promise<void>;
}

const realClock: TopClock = {
  nowUs: () => Math.round(performance.now() * 1000),
  timeOfDay: () => new Date().toTimeString().slice(0, 8),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

let clock: TopClock = realClock;

/** Replaces top's clock (tests); undefined restores the real one. */
export function setTopClock(c: TopClock | undefined): void {
  clock = c ?? realClock;
}

function count(min: number) {
  return (s: string): number => {
    const v = flagValue(s);
    if (!/^[0-9]+$/.test(v) || Number(v) < min) {
      throw new InvalidArgumentError(`must be a whole number of at least ${min}; got '${v}'`);
    }
    return Number(v);
  };
}

interface TopOpts {
  batch?: boolean;
  iterations?: number;
  delay: number;
  fullName?: boolean;
  repeatHeader?: boolean;
}

export async function topVerb(args: string[], io: CliIo): Promise<number> {
  const cmd = verbProgram("top", "A live view of the host's domains, like xentop.", io)
    .option("-b, --batch", "print the table once per iteration instead of redrawing the screen")
    .option("-i, --iterations <N>", "stop after N refreshes", count(1))
    .option("-d, --delay <SECONDS>", "seconds between refreshes (default 3)", count(0), 3)
    .option("-f, --full-name", "show whole domain names")
    .option("-r, --repeat-header", "repeat the header above every domain");
  const p = parseVerb<TopOpts>(cmd, args, io, "top", {
    "--iterations": "a number of refreshes (e.g. -i 5)",
    "--delay": "a number of seconds (e.g. -d 1)",
  });
  if (!p.ok) return p.status;
  const o = p.opts;
  const host = await connectHost("top", io);
  if (typeof host === "number") return host;
  let prev: TopSample | undefined;
  let prevUs = 0;
  let left = o.iterations;
  let stop = false;
  const interactive = !o.batch;
  let wake: (() => void) | undefined;
  const onKey = (b: Buffer) => {
    if (b.includes(0x71) || b.includes(0x03)) {
      stop = true; // 'q' or Ctrl-C: quit now, not after the wait
      wake?.();
    }
  };
  if (interactive && process.stdin.isTTY) {
    process.stdin.setRawMode(true);
    process.stdin.on("data", onKey);
  }
  try {
    for (;;) {
      const now = clock.nowUs();
      const s = await sampleHost(host);
      const elapsed = Math.max(now - prevUs, 1);
      const table = topTable(s, prev, elapsed, {
        fullName: o.fullName,
        repeatHeader: o.repeatHeader,
      });
      if (interactive) io.out(`\x1b[H\x1b[2J${topSummary(s, clock.timeOfDay())}${table}`);
      else io.out(table);
      prev = s;
      prevUs = now;
      if (left !== undefined && --left === 0) break;
      if (stop) break;
      await Promise.race([clock.sleep(o.delay * 1000), new Promise<void>((r) => (wake = r))]);
      if (stop) break;
    }
  } finally {
    if (interactive && process.stdin.isTTY) {
      process.stdin.off("data", onKey);
      process.stdin.setRawMode(false);
      process.stdin.pause();
    }
  }
  return 0;
}
