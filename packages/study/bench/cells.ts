/*
 * The study bench's cells one at a time on this thread, for profiling (`node --cpu-prof`)
 * and for checking that an optimisation keeps every count: prints each cell's CPU seconds
 * and writes its counts as JSON. Usage: tsx bench/cells.ts [operations] [backend,...] [out.json]
 */
import { writeFileSync } from "node:fs";
import { expandMatrix, listBackends, resolveConfig, runCell } from "../src/index";

const MiB = 2 ** 20;
const ops = Number(process.argv[2] ?? 10_000_000);
const only = process.argv[3] ? process.argv[3].split(",") : listBackends().map((b) => b.name);
const out = process.argv[4];
const config = resolveConfig({
  workloads: ["random"],
  backends: only,
  workingSetBytes: [64 * MiB],
  operations: [ops],
  workers: 0,
});
const { cells } = expandMatrix(config);
const all: Record<string, unknown> = {};
for (const cell of cells) {
  const t0 = process.cpuUsage();
  const r = runCell(cell);
  const u = process.cpuUsage(t0);
  const secs = (u.user + u.system) / 1e6;
  console.log(
    `${cell.backend}: ${secs.toFixed(2)} s CPU, ${(r.counts.accesses / secs / 1e6).toFixed(2)} M accesses per CPU second, checksum ${r.checksum}`,
  );
  all[cell.key] = {
    checksum: r.checksum,
    counts: r.counts,
    warmup: r.warmup,
    stats: r.backendStats,
  };
}
if (out) writeFileSync(out, `${JSON.stringify(all, null, 1)}\n`);
