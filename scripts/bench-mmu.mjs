#!/usr/bin/env node
/*
 * Runs the five MMU benches one after the other (paging, native-mmu, npt-mmu, shadow-mmu,
 * pv-mmu: each measures its TypeScript loops and the C reference's in turns, see
 * packages/paging/bench/harness.ts) and prints one table of every side-by-side figure: TS,
 * C, TS/C (best over best), the paired TS/C (median over rounds of one C run and the
 * TypeScript run after it) and each side's spread, with the host's load average.
 *
 * Usage: node scripts/bench-mmu.mjs [--build] [--json FILE] [PACKAGE ...]
 *   --build      build the packages and their dependencies first (the benches import
 *                their dependencies from dist/)
 *   --json FILE  also write every package's results (bench/results.json) into FILE
 *   PACKAGE      only these (default: all five)
 */
import { spawnSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const ALL = ["paging", "native-mmu", "npt-mmu", "shadow-mmu", "pv-mmu"];

const args = process.argv.slice(2);
let build = false;
let json = null;
const only = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--build") build = true;
  else if (args[i] === "--json") json = args[++i];
  else if (ALL.includes(args[i])) only.push(args[i]);
  else {
    console.error(`bench-mmu: unknown argument ${args[i]} (packages: ${ALL.join(", ")})`);
    process.exit(2);
  }
}
const packages = only.length > 0 ? only : ALL;

const run = (cmd, argv, cwd) => spawnSync(cmd, argv, { cwd, stdio: "inherit" }).status;

if (build) {
  const filters = packages.flatMap((p) => ["--filter", `@hyperlab/${p}...`]);
  if (
    run(
      "pnpm",
      ["exec", "turbo", "run", "build", ...filters, "--output-logs=errors-only"],
      root,
    ) !== 0
  )
    process.exit(1);
}

const load0 = loadavg();
const results = [];
const failed = [];
for (const p of packages) {
  const dir = join(root, "packages", p);
  const file = join(dir, "bench", "results.json");
  const started = Date.now();
  console.log(`\n==== ${p}`);
  const status = run("pnpm", ["run", "bench"], dir);
  let fresh = false;
  try {
    fresh = statSync(file).mtimeMs >= started;
  } catch {}
  if (status !== 0 || !fresh) {
    failed.push(p);
    continue;
  }
  results.push(JSON.parse(readFileSync(file, "utf8")));
}
const load1 = loadavg();

const rows = results.flatMap((r) => r.rows.map((row) => ({ pkg: r.package, ...row })));
const w = Math.max(0, ...rows.map((r) => r.pkg.length + 1 + r.key.length));
const show = (row, x) => (row.unit === "ms" ? `${x.toFixed(1)} ms` : `${x.toFixed(1)} M/s`);
console.log(
  `\nEvery side-by-side figure (by CPU time, best of each side's runs, C and TypeScript in turns; TS/C = TS time / C time):`,
);
console.log(
  `${"package/key".padEnd(w)}  ${"TS".padStart(11)}  ${"C".padStart(11)}  TS/C  paired  spread TS / C`,
);
for (const row of rows) {
  const r = row.ratio;
  console.log(
    `${`${row.pkg}/${row.key}`.padEnd(w)}  ${show(row, row.ts).padStart(11)}  ${show(row, row.c).padStart(11)}  ${r.toFixed(2).padStart(4)}  ${row.pairedRatio.toFixed(2).padStart(6)}  ${row.spreadTs.toFixed(2)} / ${row.spreadC.toFixed(2)}${r > 2 ? "  (over 2x)" : ""}`,
  );
}
const over = rows.filter((r) => r.ratio > 2).length;
console.log(
  `${rows.length} figures, ${rows.length - over} within 2x of C, ${over} over; load average ${load0.map((x) => x.toFixed(1)).join(" ")} at the start, ${load1.map((x) => x.toFixed(1)).join(" ")} at the end`,
);
if (json !== null) {
  writeFileSync(json, `${JSON.stringify({ load: [load0, load1], results }, null, 1)}\n`);
  console.log(`(written to ${json})`);
}
if (failed.length > 0) {
  console.error(`bench-mmu: no results from ${failed.join(", ")}`);
  process.exit(1);
}
