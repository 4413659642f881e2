/*
 * Reports of a study: derived figures, the terminal summary, results.json, results.csv and
 * an offline report.html (inline SVG, no script, no network).
 *
 * Invariant: every output is a pure function of the resolved configuration and the runs, in
 * matrix order, with no clock, host or path in it, so one seed gives byte-identical files.
 * Counts are labelled as exact and cycles as estimates wherever they appear.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { StudyConfig } from "./config";
import { COST_INFO, type CostTable, estimateCycles } from "./cost-model";
import { COUNT_INFO, COUNT_NAMES } from "./counts";
import type { RunResult } from "./run";

export const RESULTS_FORMAT = "hyperlab-study/1";

/** One run with its derived figures. */
export interface RunReport extends RunResult {
  /** Estimated cycles (cost model). */
  estCycles: number;
  /** Estimated cycles per priced event. */
  estCyclesByEvent: CostTable;
  /** Estimated cycles over native's on the same case, or null without a native run. */
  estOverheadVsNative: number | null;
  /** Exact: walk references per TLB miss, or null without misses. */
  refsPerTlbMiss: number | null;
  /** Exact: per workload operation. */
  exitsPerOp: number;
  hypercallsPerOp: number;
  trapsPerOp: number;
  /** Whether the checksum equals the one of the first backend run on the same case. */
  sameResultAsOtherBackends: boolean;
}

export interface StudyResults {
  format: string;
  note: string;
  /** The resolved configuration, without the worker count (which never changes a result). */
  config: Omit<StudyConfig, "workers">;
  costs: { name: string; cycles: number; source: string; assumption: boolean }[];
  runs: RunReport[];
  skipped: { key: string; reason: string }[];
}

const NOTE =
  "Counts are exact counts of modelled events (facts). Cycles and overheads are estimates: counts times the cost model's cycles per event (see docs/cost-model.md).";

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

/** Derives the figures of every run; runs stay in matrix order. */
export function buildResults(
  config: StudyConfig,
  runs: readonly RunResult[],
  skipped: readonly { key: string; reason: string }[],
): StudyResults {
  const estimated = runs.map((r) => ({ r, est: estimateCycles(r.counts, config.costs) }));
  const native = new Map<string, number>();
  const firstChecksum = new Map<string, string>();
  for (const { r, est } of estimated) {
    if (r.backend === "native") native.set(r.baseKey, est.total);
    if (!firstChecksum.has(r.baseKey)) firstChecksum.set(r.baseKey, r.checksum);
  }
  const reports: RunReport[] = estimated.map(({ r, est }) => {
    const c = r.counts;
    const ops = Math.max(1, c.operations);
    const base = native.get(r.baseKey);
    return {
      ...r,
      estCycles: est.total,
      estCyclesByEvent: est.byEvent,
      estOverheadVsNative: base === undefined || base === 0 ? null : round(est.total / base),
      refsPerTlbMiss: c.tlbMisses === 0 ? null : round(c.walkRefs / c.tlbMisses),
      exitsPerOp: round(c.vmExits / ops),
      hypercallsPerOp: round(c.hypercalls / ops),
      trapsPerOp: round(c.traps / ops),
      sameResultAsOtherBackends: firstChecksum.get(r.baseKey) === r.checksum,
    };
  });
  const { workers: _workers, ...facts } = config;
  return {
    format: RESULTS_FORMAT,
    note: NOTE,
    config: facts,
    costs: COST_INFO.map((i) => ({
      name: i.name,
      cycles: config.costs[i.name],
      source: i.source,
      assumption: i.assumption,
    })),
    runs: reports,
    skipped: [...skipped],
  };
}

// ---- results.json and results.csv ----

export function resultsJson(res: StudyResults): string {
  return `${JSON.stringify(res, null, 2)}\n`;
}

function csvCell(v: string | number | boolean | null): string {
  if (v === null) return "";
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function resultsCsv(res: StudyResults): string {
  const head = [
    "key",
    "workload",
    "backend",
    "workingSetBytes",
    "guestPageSize",
    "hostPageSize",
    "processes",
    "paramOperations",
    "seed",
    "checksum",
    "sameResultAsOtherBackends",
    ...COUNT_NAMES,
    "refsPerTlbMiss",
    "exitsPerOp",
    "hypercallsPerOp",
    "trapsPerOp",
    "estCycles",
    "estOverheadVsNative",
  ];
  const lines = [head.join(",")];
  for (const r of res.runs) {
    const row = [
      r.key,
      r.workload,
      r.backend,
      r.params.workingSetBytes,
      r.params.guestPageSize,
      r.params.hostPageSize,
      r.params.processes,
      r.params.operations,
      r.seed,
      r.checksum,
      r.sameResultAsOtherBackends,
      ...COUNT_NAMES.map((n) => r.counts[n]),
      r.refsPerTlbMiss,
      r.exitsPerOp,
      r.hypercallsPerOp,
      r.trapsPerOp,
      r.estCycles,
      r.estOverheadVsNative,
    ];
    lines.push(row.map(csvCell).join(","));
  }
  return `${lines.join("\n")}\n`;
}

// ---- terminal summary ----

function fmt(x: number | null, digits = 2): string {
  if (x === null) return "-";
  if (Math.abs(x) >= 1e6) return `${(x / 1e6).toFixed(1)}M`;
  if (Math.abs(x) >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  return Number.isInteger(x) ? String(x) : x.toFixed(digits);
}

/** A plain-text table of the runs (counts exact, cycles estimated). */
export function summaryTable(res: StudyResults): string {
  const head = [
    "case",
    "backend",
    "checksum",
    "accesses",
    "TLB misses",
    "refs/miss",
    "exits/op",
    "hcalls/op",
    "est. Mcycles",
    "est. vs native",
  ];
  const rows = res.runs.map((r) => [
    r.caseKey,
    r.backend,
    r.sameResultAsOtherBackends ? r.checksum : `${r.checksum}!`,
    fmt(r.counts.accesses),
    fmt(r.counts.tlbMisses),
    fmt(r.refsPerTlbMiss),
    fmt(r.exitsPerOp),
    fmt(r.hypercallsPerOp),
    (r.estCycles / 1e6).toFixed(2),
    r.estOverheadVsNative === null ? "-" : `${r.estOverheadVsNative.toFixed(2)}x`,
  ]);
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  const out = [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
  out.push("");
  out.push("Counts are exact; 'est.' columns are cost-model estimates (docs/cost-model.md).");
  if (res.runs.some((r) => !r.sameResultAsOtherBackends)) {
    out.push("A checksum marked ! differs from another backend's on the same case: a bug.");
  }
  for (const s of res.skipped) out.push(`skipped: ${s.key}: ${s.reason}`);
  return `${out.join("\n")}\n`;
}

// ---- report.html ----

const COLORS: Record<string, string> = {
  native: "#4c72b0",
  pv: "#dd8452",
  nested: "#55a868",
  shadow: "#c44e52",
};

function esc(s: string): string {
  return s
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

interface Series {
  backend: string;
  values: (number | null)[];
}

/**
 * Horizontal grouped bars: one group per case, one bar per backend. A range of 100 or more
 * between the smallest and largest positive value is drawn on a log scale (said under the
 * title); every bar is labelled with its value.
 */
function barChart(
  title: string,
  kind: string,
  groups: string[],
  series: Series[],
  ref?: number,
): string {
  const longest = groups.reduce((m, g) => Math.max(m, g.length), 0);
  const labelW = Math.max(160, Math.ceil(longest * 7) + 16);
  const barW = 470;
  const barH = 14;
  const gap = 10;
  const rowsPerGroup = Math.max(1, series.length);
  const groupH = rowsPerGroup * barH + gap;
  const top = 44;
  const height = top + groups.length * groupH + 20;
  const width = labelW + barW + 130;
  let max = ref ?? 0;
  let minPos = ref ?? Number.POSITIVE_INFINITY;
  for (const s of series) {
    for (const v of s.values) {
      if (v === null) continue;
      if (v > max) max = v;
      if (v > 0 && v < minPos) minPos = v;
    }
  }
  if (max <= 0) max = 1;
  const log = Number.isFinite(minPos) && max / minPos >= 100;
  const lo = log ? minPos / 2 : 0;
  const x = (v: number) =>
    labelW + (log ? (v <= lo ? 0 : Math.log10(v / lo) / Math.log10(max / lo)) : v / max) * barW;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" role="img" aria-label="${esc(title)}">`,
  );
  parts.push(`<text x="4" y="18" font-size="15" font-weight="bold">${esc(title)}</text>`);
  parts.push(
    `<text x="4" y="35" font-size="11" fill="#555">${esc(log ? `${kind} (log scale)` : kind)}</text>`,
  );
  groups.forEach((g, gi) => {
    const y0 = top + gi * groupH;
    parts.push(
      `<text x="${labelW - 6}" y="${y0 + (rowsPerGroup * barH) / 2 + 4}" font-size="11" text-anchor="end">${esc(g)}</text>`,
    );
    series.forEach((s, si) => {
      const v = s.values[gi];
      const y = y0 + si * barH;
      if (v === null || v === undefined) return;
      const w = Math.max(0.5, x(v) - labelW);
      parts.push(
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${COLORS[s.backend] ?? "#888"}"><title>${esc(`${g} ${s.backend}: ${v}`)}</title></rect>`,
      );
      parts.push(
        `<text x="${(labelW + w + 4).toFixed(1)}" y="${y + barH - 4}" font-size="10">${esc(`${s.backend} ${fmt(v)}`)}</text>`,
      );
    });
  });
  if (ref !== undefined) {
    const rx = x(ref).toFixed(1);
    parts.push(
      `<line x1="${rx}" y1="${top - 4}" x2="${rx}" y2="${height - 16}" stroke="#000" stroke-dasharray="4 3"/>`,
    );
    parts.push(
      `<text x="${rx}" y="${height - 4}" font-size="10" text-anchor="middle">${ref}</text>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}

function chartData(res: StudyResults, backends: string[], pick: (r: RunReport) => number | null) {
  const groups: string[] = [];
  const index = new Map<string, number>();
  for (const r of res.runs) {
    const k = r.caseKey;
    if (!index.has(k)) {
      index.set(k, groups.length);
      groups.push(k);
    }
  }
  const series: Series[] = backends.map((b) => ({
    backend: b,
    values: groups.map(() => null as number | null),
  }));
  for (const r of res.runs) {
    const s = series.find((x) => x.backend === r.backend);
    if (s !== undefined) s.values[index.get(r.caseKey) as number] = pick(r);
  }
  return { groups, series };
}

/** The offline HTML report. */
export function reportHtml(res: StudyResults): string {
  const backends = res.config.backends;
  const nonNative = backends.filter((b) => b !== "native");
  const o = chartData(res, nonNative, (r) => r.estOverheadVsNative);
  const refs = chartData(res, backends, (r) => r.refsPerTlbMiss);
  const exits = chartData(res, nonNative, (r) => r.exitsPerOp);
  const hcalls = chartData(res, nonNative, (r) => r.hypercallsPerOp);
  const rows = res.runs
    .map(
      (r) =>
        `<tr><td>${esc(r.caseKey)}</td><td>${esc(r.backend)}</td><td>${r.checksum}${r.sameResultAsOtherBackends ? "" : " (differs!)"}</td>${COUNT_NAMES.map((n) => `<td>${r.counts[n]}</td>`).join("")}<td>${r.estCycles}</td><td>${r.estOverheadVsNative ?? "-"}</td></tr>`,
    )
    .join("\n");
  const costRows = res.costs
    .map(
      (c) =>
        `<tr><td>${esc(c.name)}</td><td>${c.cycles}</td><td>${c.assumption ? "assumption" : "published"}</td><td>${esc(c.source)}</td></tr>`,
    )
    .join("\n");
  const skipped = res.skipped.map((s) => `<li>${esc(s.key)}: ${esc(s.reason)}</li>`).join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Hyperlab study</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.note { background: #f4f4f4; padding: 0.6em 1em; border-left: 4px solid #888; }
svg { display: block; margin: 1.5em 0; }
</style>
</head>
<body>
<h1>Hyperlab study: PV direct paging, nested and shadow paging against native</h1>
<p class="note">${esc(res.note)}</p>
<p>Seed ${res.config.seed}; workloads ${esc(res.config.workloads.join(", "))}; backends ${esc(backends.join(", "))}; guest kernel @hyperlab/guest. The resolved configuration is in config.json beside this file.</p>
${barChart("Overhead against native (estimate)", "estimated cycles / native's estimated cycles on the same case; the dashed line is native", o.groups, o.series, 1)}
${barChart("Page-walk references per TLB miss (exact)", "memory references made by walks / TLB misses", refs.groups, refs.series)}
${barChart("VM exits per operation (exact)", "VM exits / workload operations", exits.groups, exits.series)}
${barChart("Hypercalls per operation (exact)", "hypercalls / workload operations", hcalls.groups, hcalls.series)}
<h2>Runs</h2>
<p>Every count is exact; the last two columns are estimates.</p>
<table>
<tr><th>case</th><th>backend</th><th>checksum</th>${COUNT_INFO.map((c) => `<th title="${esc(c.description)}">${esc(c.name)}</th>`).join("")}<th>est. cycles</th><th>est. vs native</th></tr>
${rows}
</table>
<h2>Cost model</h2>
<table>
<tr><th>event</th><th>cycles</th><th>kind</th><th>source</th></tr>
${costRows}
</table>
${skipped.length > 0 ? `<h2>Skipped</h2>\n<ul>\n${skipped}\n</ul>` : ""}
</body>
</html>
`;
}

/**
 * Writes config.json (the resolved configuration, worker count included), results.json,
 * results.csv and report.html into `outDir`.
 */
export function writeResults(outDir: string, res: StudyResults, config: StudyConfig): string[] {
  mkdirSync(outDir, { recursive: true });
  const files: [string, string][] = [
    ["config.json", `${JSON.stringify(config, null, 2)}\n`],
    ["results.json", resultsJson(res)],
    ["results.csv", resultsCsv(res)],
    ["report.html", reportHtml(res)],
  ];
  const paths: string[] = [];
  for (const [name, text] of files) {
    const p = join(outDir, name);
    writeFileSync(p, text);
    paths.push(p);
  }
  return paths;
}
