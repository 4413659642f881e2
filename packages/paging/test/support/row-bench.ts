/*
 * A two-row bench for bench-turns.test.ts: harness.ts's rowProcesses, each row's `make`
 * noting the process it ran in. Prints one JSON line: the rows, and per row key the pid of
 * the process that built it, with this process's pid.
 */
import { appendFileSync } from "node:fs";
import { buildCReference, buildFixture } from "../../bench/fixture";
import { CTurns, rowProcesses, sideBySide } from "../../bench/harness";

rowProcesses(import.meta.url);
const log = process.env.ROW_BENCH_LOG as string;
let sink = 0;
const fx = buildFixture();
let cref: { bin: string; fixture: string } | null = null;
const built = () => (cref ??= buildCReference(fx));
const c = new CTurns(
  () => built().bin,
  () => [built().fixture, "turns", "1000"],
);
const made = (key: string) => () => {
  if (process.env.ROW_BENCH_FAIL === key) throw new Error(`row ${key} fails on purpose`);
  appendFileSync(log, `${key} ${process.pid}\n`);
  return () => {
    for (let i = 0; i < 1000; i++) sink += i;
  };
};
const a = await sideBySide(c, "walk-sparse", "a", 1000, made("walk-sparse"), 2);
const b = await sideBySide(c, "tlb-hit", "b", 1000, made("tlb-hit"), 2);
await c.close();
console.log(JSON.stringify({ pid: process.pid, rows: [a, b], ran: sink > 0 }));
