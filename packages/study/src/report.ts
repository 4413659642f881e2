/*
 * Reports of a study: derived figures, the terminal summary, results.json, results.csv and
 * an offline report.html (inline SVG drawn here with d3-scale's scales and ticks; no script,
 * no network).
 *
 * Invariant: every output is a pure function of the resolved configuration and the runs, in
 * matrix order, plus the package and Node versions, with no clock, host or path in it, so
 * one seed gives byte-identical files. Counts are labelled as exact and cycles as estimates
 * wherever they appear.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { scaleLinear, scaleLog } from "d3-scale";
import { CONFIG_DEFAULTS, type StudyConfig } from "./config";
import { COST_INFO, type CostTable, DEFAULT_COSTS, estimateCycles } from "./cost-model";
import { COUNT_INFO, COUNT_NAMES, type CountName, type StudyCounts } from "./counts";
import { type IoResults, ioReportHtml } from "./io/results";
import { splitIoReportHtml, splitIoSummaryText } from "./io/split-results";
import { SPLIT_IO_COUNT_INFO, splitRowKey } from "./io/split-rows";
import type { RunResult } from "./run";
import { STUDY_VERSION } from "./version";
import { WORKLOADS } from "./workloads";

export const RESULTS_FORMAT = "hyperlab-study/2";
/** Bumped whenever a field of results.json changes meaning or shape. */
export const RESULTS_SCHEMA_VERSION = 2;

/** One run with its derived figures. */
export interface RunReport extends Omit<RunResult, "statInfo"> {
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
  /** Estimated cycles of the warm-up (the counts in `warmup`). */
  warmupEstCycles: number;
  /** The steady state: the counts after warm-up, and the figures derived from them. */
  steady: {
    counts: StudyCounts;
    estCycles: number;
    /** Steady-state estimated cycles over native's on the same case, or null. */
    estOverheadVsNative: number | null;
    refsPerTlbMiss: number | null;
  };
}

export interface StudyResults {
  format: string;
  schemaVersion: number;
  /** What wrote the results. */
  generator: { package: string; version: string; node: string };
  note: string;
  /** Units of every count and derived figure of a run. */
  units: Record<string, string>;
  /** Every default the configuration could have resolved from, and the workloads' own. */
  defaults: {
    config: typeof CONFIG_DEFAULTS;
    costs: CostTable;
    workloads: { name: string; defaultOperations: number; operationUnit: string }[];
  };
  /** Units and descriptions of the runs' `backendStats`, keyed "group.name". */
  statInfo: Record<string, { unit: string; description: string }>;
  /** The resolved configuration, without the worker count (which never changes a result). */
  config: Omit<StudyConfig, "workers">;
  costs: { name: string; cycles: number; source: string; assumption: boolean }[];
  runs: RunReport[];
  skipped: { key: string; reason: string }[];
  /** The I/O workload's results (src/io), when the configuration asked for it. */
  io?: IoResults;
}

const NOTE =
  "Counts are exact counts of modelled events (facts). Cycles and overheads are estimates: counts times the cost model's cycles per event (see docs/cost-model.md).";

const UNITS: Record<string, string> = {
  ...Object.fromEntries(COUNT_INFO.map((c) => [`counts.${c.name}`, c.unit])),
  "params.workingSetBytes": "bytes",
  "params.operations": "workload operations",
  estCycles: "cycles (estimate)",
  estCyclesByEvent: "cycles (estimate)",
  estOverheadVsNative: "ratio (estimate)",
  refsPerTlbMiss: "references per TLB miss",
  exitsPerOp: "VM exits per operation",
  hypercallsPerOp: "hypercalls per operation",
  trapsPerOp: "traps per operation",
  warmup: "the counts' units, at the end of warm-up",
  warmupEstCycles: "cycles (estimate)",
  "steady.counts": "the counts' units, after warm-up",
  "steady.estCycles": "cycles (estimate)",
  "steady.estOverheadVsNative": "ratio (estimate)",
  "steady.refsPerTlbMiss": "references per TLB miss",
};

function ratioOf(x: number, base: number | undefined): number | null {
  return base === undefined || base === 0 ? null : round(x / base);
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

/** Derives the figures of every run; runs stay in matrix order. */
export function buildResults(
  config: StudyConfig,
  runs: readonly RunResult[],
  skipped: readonly { key: string; reason: string }[],
): StudyResults {
  const estimated = runs.map((r) => {
    const steadyCounts = {} as StudyCounts;
    for (const n of COUNT_NAMES) steadyCounts[n] = r.counts[n] - r.warmup[n];
    return {
      r,
      est: estimateCycles(r.counts, config.costs),
      warm: estimateCycles(r.warmup, config.costs).total,
      steadyCounts,
      steadyEst: estimateCycles(steadyCounts, config.costs).total,
    };
  });
  const native = new Map<string, number>();
  const nativeSteady = new Map<string, number>();
  const firstChecksum = new Map<string, string>();
  for (const { r, est, steadyEst } of estimated) {
    if (r.backend === "native") native.set(r.baseKey, est.total);
    if (r.backend === "native") nativeSteady.set(r.baseKey, steadyEst);
    if (!firstChecksum.has(r.baseKey)) firstChecksum.set(r.baseKey, r.checksum);
  }
  const statInfo: StudyResults["statInfo"] = {};
  for (const r of runs) {
    for (const k of Object.keys(r.statInfo).sort()) statInfo[k] ??= r.statInfo[k];
  }
  const sortedInfo: StudyResults["statInfo"] = {};
  for (const k of Object.keys(statInfo).sort()) sortedInfo[k] = statInfo[k];
  const reports: RunReport[] = estimated.map(({ r: full, est, warm, steadyCounts, steadyEst }) => {
    const { statInfo: _info, ...r } = full;
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
      warmupEstCycles: warm,
      steady: {
        counts: steadyCounts,
        estCycles: steadyEst,
        estOverheadVsNative: ratioOf(steadyEst, nativeSteady.get(r.baseKey)),
        refsPerTlbMiss:
          steadyCounts.tlbMisses === 0
            ? null
            : round(steadyCounts.walkRefs / steadyCounts.tlbMisses),
      },
    };
  });
  const { workers: _workers, ...facts } = config;
  return {
    format: RESULTS_FORMAT,
    schemaVersion: RESULTS_SCHEMA_VERSION,
    generator: { package: "@hyperlab/study", version: STUDY_VERSION, node: process.version },
    note: NOTE,
    units: UNITS,
    defaults: {
      config: CONFIG_DEFAULTS,
      costs: { ...DEFAULT_COSTS },
      workloads: WORKLOADS.map((w) => ({
        name: w.name,
        defaultOperations: w.defaultOperations,
        operationUnit: w.operationUnit,
      })),
    },
    statInfo: sortedInfo,
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

/** Columns of results.csv that only split-driver rows fill (per-request figures). */
const SPLIT_CSV_COLUMNS = [
  "splitKind",
  "splitPattern",
  "splitPlatform",
  "splitRequests",
  ...SPLIT_IO_COUNT_INFO.filter((c) => c.name !== "requests").map((c) => `${c.name}PerRequest`),
  "cyclesPerRequest",
];

/**
 * results.csv: one row per run of the matrix, then one per split-driver case (io.split) when
 * the study ran them. A split row's key is splitRowKey's, its workload "io.split" and its
 * backend the platform; it fills key, workload, backend, seed, checksum and the split columns
 * (per request), and leaves the matrix's empty, as runs leave the split columns.
 */
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
    "warmupEstCycles",
    "steadyEstCycles",
    "steadyEstOverheadVsNative",
    ...SPLIT_CSV_COLUMNS,
  ];
  const lines = [head.join(",")];
  const noSplit = SPLIT_CSV_COLUMNS.map(() => null);
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
      r.warmupEstCycles,
      r.steady.estCycles,
      r.steady.estOverheadVsNative,
      ...noSplit,
    ];
    lines.push(row.map(csvCell).join(","));
  }
  const split = res.io?.split;
  if (split !== undefined) {
    const matrixColumns = head.length - SPLIT_CSV_COLUMNS.length;
    for (const r of split.rows) {
      const row: (string | number | null)[] = new Array(matrixColumns).fill(null);
      row[head.indexOf("key")] = splitRowKey(r);
      row[head.indexOf("workload")] = "io.split";
      row[head.indexOf("backend")] = r.platform;
      row[head.indexOf("seed")] = split.config.seed;
      row[head.indexOf("checksum")] = r.checksum;
      row.push(
        r.kind,
        r.pattern,
        r.platform,
        r.counts.requests,
        ...SPLIT_IO_COUNT_INFO.filter((c) => c.name !== "requests").map(
          (c) => r.perRequest[c.name],
        ),
        r.cyclesPerRequest,
      );
      lines.push(row.map(csvCell).join(","));
    }
  }
  return `${lines.join("\n")}\n`;
}

// ---- terminal summary ----

/** A plain-text table of the runs (counts exact, cycles estimated). */
function ratioText(x: number, base: number | undefined): string {
  return base === undefined || base === 0 ? "-" : `${sig(round(x / base))}x`;
}

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
    "warm-up share",
    "warm-up vs native",
    "steady vs native",
  ];
  const nativeWarm = new Map<string, number>();
  for (const r of res.runs)
    if (r.backend === "native") nativeWarm.set(r.baseKey, r.warmupEstCycles);
  const rows = res.runs.map((r) => [
    r.caseKey,
    r.backend,
    r.sameResultAsOtherBackends ? r.checksum : `${r.checksum}!`,
    sig(r.counts.accesses),
    sig(r.counts.tlbMisses),
    sig(r.refsPerTlbMiss),
    sig(r.exitsPerOp),
    sig(r.hypercallsPerOp),
    sig(r.estCycles / 1e6),
    r.estOverheadVsNative === null ? "-" : `${sig(r.estOverheadVsNative)}x`,
    r.estCycles === 0 ? "-" : `${sig(round((100 * r.warmupEstCycles) / r.estCycles))}%`,
    ratioText(r.warmupEstCycles, nativeWarm.get(r.baseKey)),
    r.steady.estOverheadVsNative === null ? "-" : `${sig(r.steady.estOverheadVsNative)}x`,
  ]);
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  const out = [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
  out.push("");
  out.push("Counts are exact; 'est.' columns are cost-model estimates (docs/cost-model.md).");
  out.push(
    "Warm-up is the first touch of the working set; 'warm-up vs native' compares it alone, 'steady vs native' what follows it (estimates).",
  );
  if (res.runs.some((r) => !r.sameResultAsOtherBackends)) {
    out.push("A checksum marked ! differs from another backend's on the same case: a bug.");
  }
  for (const s of res.skipped) out.push(`skipped: ${s.key}: ${s.reason}`);
  if (res.io?.split !== undefined) out.push("", splitIoSummaryText(res.io.split).trimEnd());
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

/** An integer with thousands separators: 1234567 -> "1,234,567". */
export function groupDigits(n: number): string {
  const s = String(Math.abs(Math.round(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return n < 0 ? `-${s}` : s;
}

/**
 * A number for a label: integers in full with separators below a million, otherwise three
 * significant digits, so a value that is not zero is never shown as zero.
 */
export function sig(x: number | null): string {
  if (x === null) return "-";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e9) return `${Number((x / 1e9).toPrecision(3))}G`;
  if (a >= 1e6) return `${Number((x / 1e6).toPrecision(3))}M`;
  if (Number.isInteger(x)) return groupDigits(x);
  if (a >= 1000) return groupDigits(Number(x.toPrecision(4)));
  return String(Number(x.toPrecision(3)));
}

interface Series {
  backend: string;
  values: (number | null)[];
}

interface ChartSpec {
  title: string;
  /** What the axis measures, with its unit. */
  axis: string;
  groups: string[];
  series: Series[];
  /** A reference value drawn as a dashed line (native's 1.0 on overhead charts). */
  ref?: { value: number; label: string };
}

const PLOT_W = 560;
const BAR_H = 14;

/**
 * Horizontal grouped bars: one group per case, one bar per backend, an x axis with ticks and
 * gridlines at the bottom and the top. Values spanning two decades or more are drawn on a log
 * scale with a tick per decade (and unlabelled ones between). Every bar is labelled with its
 * value to three significant digits.
 */
function barChart(spec: ChartSpec): string {
  const series = spec.series.filter((s) => s.values.some((v) => v !== null));
  const backends = series.map((s) => s.backend);
  const longest = spec.groups.reduce((m, g) => Math.max(m, g.length), 0);
  const labelW = Math.max(160, Math.ceil(longest * 6.2) + 16);
  const groupH = Math.max(1, series.length) * BAR_H + 10;
  const top = 74;
  const plotH = Math.max(1, spec.groups.length) * groupH;
  const height = top + plotH + 48;
  const width = labelW + PLOT_W + 170;
  const parts: string[] = [];
  const title = `${spec.title}: ${backends.length > 0 ? backends.join(", ") : "nothing ran"}`;
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" role="img" aria-label="${esc(title)}">`,
  );
  parts.push(`<text x="4" y="18" font-size="15" font-weight="bold">${esc(title)}</text>`);
  let max = spec.ref?.value ?? 0;
  let minPos = spec.ref?.value ?? Number.POSITIVE_INFINITY;
  for (const s of series) {
    for (const v of s.values) {
      if (v === null) continue;
      if (v > max) max = v;
      if (v > 0 && v < minPos) minPos = v;
    }
  }
  if (series.length === 0 || max <= 0) {
    parts.push(
      `<text x="4" y="40" font-size="12" fill="#555">No values to draw (${esc(spec.axis)}).</text>`,
      "</svg>",
    );
    return parts.join("\n");
  }
  const log = Number.isFinite(minPos) && max / minPos >= 100;
  let x: (v: number) => number;
  let ticks: { v: number; label: string | null }[];
  if (log) {
    const lo = 10 ** Math.floor(Math.log10(minPos));
    const hi = 10 ** Math.ceil(Math.log10(max));
    const scale = scaleLog()
      .domain([lo, hi === lo ? lo * 10 : hi])
      .range([0, PLOT_W]);
    x = (v) => (v <= 0 ? 0 : Math.max(0, scale(v)));
    ticks = scale.ticks().map((v) => {
      const decade = Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9;
      return { v, label: decade ? sig(v) : null };
    });
  } else {
    const scale = scaleLinear().domain([0, max]).nice(6).range([0, PLOT_W]);
    x = (v) => scale(v);
    ticks = scale.ticks(6).map((v) => ({ v, label: sig(v) }));
  }
  const axisNote = log ? `${spec.axis}, log scale` : spec.axis;
  parts.push(`<text x="4" y="36" font-size="12" fill="#444">${esc(axisNote)}</text>`);
  // Legend: the backends drawn, in bar order.
  backends.forEach((b, i) => {
    const lx = 4 + i * 110;
    parts.push(
      `<rect x="${lx}" y="46" width="12" height="12" fill="${COLORS[b] ?? "#888"}"/><text x="${lx + 16}" y="56" font-size="12">${esc(b)}</text>`,
    );
  });
  const y0 = top;
  const y1 = top + plotH;
  // Gridlines and ticks, top and bottom axes.
  for (const t of ticks) {
    const tx = (labelW + x(t.v)).toFixed(1);
    const major = t.label !== null;
    parts.push(
      `<line class="grid" x1="${tx}" y1="${y0}" x2="${tx}" y2="${y1}" stroke="${major ? "#d0d0d0" : "#ececec"}"/>`,
    );
    parts.push(
      `<line x1="${tx}" y1="${y1}" x2="${tx}" y2="${y1 + (major ? 5 : 3)}" stroke="#333"/>`,
    );
    parts.push(
      `<line x1="${tx}" y1="${y0}" x2="${tx}" y2="${y0 - (major ? 5 : 3)}" stroke="#333"/>`,
    );
    if (major) {
      parts.push(
        `<text class="tick" x="${tx}" y="${y1 + 17}" font-size="11" text-anchor="middle">${esc(t.label as string)}</text>`,
      );
    }
  }
  parts.push(
    `<line class="axis" x1="${labelW}" y1="${y1}" x2="${labelW + PLOT_W}" y2="${y1}" stroke="#333"/>`,
    `<line class="axis" x1="${labelW}" y1="${y0}" x2="${labelW + PLOT_W}" y2="${y0}" stroke="#333"/>`,
    `<line class="axis" x1="${labelW}" y1="${y0}" x2="${labelW}" y2="${y1}" stroke="#333"/>`,
    `<text x="${labelW + PLOT_W / 2}" y="${y1 + 36}" font-size="12" text-anchor="middle">${esc(axisNote)}</text>`,
  );
  spec.groups.forEach((g, gi) => {
    const gy = y0 + 5 + gi * groupH;
    parts.push(
      `<text x="${labelW - 6}" y="${gy + (series.length * BAR_H) / 2 + 4}" font-size="11" text-anchor="end">${esc(g)}</text>`,
    );
    series.forEach((s, si) => {
      const v = s.values[gi];
      if (v === null || v === undefined) return;
      const y = gy + si * BAR_H;
      // A visible value always gets a visible bar (at least one pixel).
      const w = Math.max(v > 0 ? 1 : 0, x(v));
      parts.push(
        `<rect class="bar" x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H - 2}" fill="${COLORS[s.backend] ?? "#888"}"><title>${esc(`${g}, ${s.backend}: ${sig(v)} (${spec.axis})`)}</title></rect>`,
      );
      parts.push(
        `<text x="${(labelW + w + 4).toFixed(1)}" y="${y + BAR_H - 3}" font-size="10">${esc(`${s.backend} ${sig(v)}`)}</text>`,
      );
    });
  });
  if (spec.ref !== undefined) {
    const rx = (labelW + x(spec.ref.value)).toFixed(1);
    parts.push(
      `<line x1="${rx}" y1="${y0}" x2="${rx}" y2="${y1}" stroke="#000" stroke-dasharray="4 3"/>`,
      `<text x="${rx}" y="${y0 - 8}" font-size="10" text-anchor="middle">${esc(spec.ref.label)}</text>`,
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

/** The backends that ran at least one cell, in the configuration's order. */
function ranBackends(res: StudyResults): string[] {
  const ran = new Set(res.runs.map((r) => r.backend));
  return res.config.backends.filter((b) => ran.has(b));
}

const SHORT_UNITS: Record<string, string> = {
  translations: "transl.",
  references: "refs",
};

/**
 * Counts of the work every backend shares or Xen does per request: shown in their own
 * table beside the runs table, so each fits 1,400 px.
 */
const WORK_COUNTS: readonly CountName[] = [
  "l2Hits",
  "llcHits",
  "dramAccesses",
  "walkL2Hits",
  "walkLlcHits",
  "walkDramAccesses",
  "instructions",
  "pagesZeroed",
  "pagesCopied",
  "forks",
  "execs",
  "exits",
  "multicallEntries",
  "mmuUpdateRequests",
];
const RUN_COUNTS = COUNT_INFO.filter((c) => !WORK_COUNTS.includes(c.name));

function workTable(res: StudyResults): string {
  const info = COUNT_INFO.filter((c) => WORK_COUNTS.includes(c.name));
  const head = [
    "<th>case</th>",
    "<th>backend</th>",
    ...info.map(
      (c) =>
        `<th title="${esc(c.description)}">${esc(c.description)}<br><span class="unit">${esc(SHORT_UNITS[c.unit] ?? c.unit)}</span></th>`,
    ),
  ];
  const rows = res.runs.map(
    (r) =>
      `<tr><td class="case">${esc(r.caseKey)}</td><td class="text">${esc(r.backend)}</td>${info.map((c) => `<td>${groupDigits(r.counts[c.name])}</td>`).join("")}</tr>`,
  );
  return `<table id="work">\n<tr>${head.join("")}</tr>\n${rows.join("\n")}\n</table>`;
}

function runsTable(res: StudyResults): string {
  const head = [
    "<th>case</th>",
    "<th>backend</th>",
    "<th>checksum</th>",
    ...RUN_COUNTS.map(
      (c) =>
        `<th title="${esc(c.description)}">${esc(c.description)}<br><span class="unit">${esc(SHORT_UNITS[c.unit] ?? c.unit)}</span></th>`,
    ),
    '<th>est. cycles<br><span class="unit">cycles</span></th>',
    '<th>est. vs native<br><span class="unit">ratio</span></th>',
  ];
  const rows = res.runs.map(
    (r) =>
      `<tr><td class="case">${esc(r.caseKey)}</td><td class="text">${esc(r.backend)}</td><td class="text">${r.checksum}${r.sameResultAsOtherBackends ? "" : " (differs!)"}</td>${RUN_COUNTS.map((c) => `<td>${groupDigits(r.counts[c.name])}</td>`).join("")}<td>${sig(r.estCycles)}</td><td>${r.estOverheadVsNative === null ? "-" : `${sig(r.estOverheadVsNative)}×`}</td></tr>`,
  );
  return `<table id="runs">\n<tr>${head.join("")}</tr>\n${rows.join("\n")}\n</table>`;
}

function phaseTable(res: StudyResults): string {
  const head = [
    "case",
    "backend",
    "warm-up<br>accesses",
    "warm-up<br>page faults",
    "warm-up<br>est. cycles",
    "steady<br>accesses",
    "steady<br>TLB misses",
    "steady<br>VM exits",
    "steady<br>hypercalls",
    "steady<br>est. cycles",
    "steady est.<br>vs native",
    "whole run est.<br>vs native",
  ];
  const rows = res.runs.map((r) => {
    const w = r.warmup;
    const st = r.steady;
    const cells = [
      groupDigits(w.accesses),
      groupDigits(w.pageFaults),
      sig(r.warmupEstCycles),
      groupDigits(st.counts.accesses),
      groupDigits(st.counts.tlbMisses),
      groupDigits(st.counts.vmExits),
      groupDigits(st.counts.hypercalls),
      sig(st.estCycles),
      st.estOverheadVsNative === null ? "-" : `${sig(st.estOverheadVsNative)}×`,
      r.estOverheadVsNative === null ? "-" : `${sig(r.estOverheadVsNative)}×`,
    ];
    return `<tr><td class="case">${esc(r.caseKey)}</td><td class="text">${esc(r.backend)}</td>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`;
  });
  return `<table id="phases">\n<tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>\n${rows.join("\n")}\n</table>`;
}

/** Every statistic of the backends, per case: one column per backend that ran it. */
function statsTables(res: StudyResults): string {
  const cases = new Map<string, RunReport[]>();
  for (const r of res.runs) cases.set(r.caseKey, [...(cases.get(r.caseKey) ?? []), r]);
  const out: string[] = [];
  for (const [caseKey, runs] of cases) {
    const keys: string[] = [];
    for (const r of runs) {
      for (const [g, stats] of Object.entries(r.backendStats)) {
        for (const n of Object.keys(stats)) {
          const k = `${g}.${n}`;
          if (!keys.includes(k)) keys.push(k);
        }
      }
    }
    const rows = keys.map((k) => {
      const dot = k.indexOf(".");
      const g = k.slice(0, dot);
      const n = k.slice(dot + 1);
      const info = res.statInfo[k];
      const cells = runs.map((r) => {
        const v = r.backendStats[g]?.[n];
        return `<td>${v === undefined ? "" : groupDigits(v)}</td>`;
      });
      return `<tr><td class="text" title="${esc(info?.description ?? "")}">${esc(k)}</td><td class="text">${esc(info?.unit ?? "")}</td>${cells.join("")}</tr>`;
    });
    out.push(
      `<details><summary>${esc(caseKey)}</summary>\n<table class="stats">\n<tr><th>statistic</th><th>unit</th>${runs.map((r) => `<th>${esc(r.backend)}</th>`).join("")}</tr>\n${rows.join("\n")}\n</table>\n</details>`,
    );
  }
  return out.join("\n");
}

/** The offline HTML report. */
export function reportHtml(res: StudyResults): string {
  const backends = ranBackends(res);
  const nonNative = backends.filter((b) => b !== "native");
  const o = chartData(res, nonNative, (r) => r.estOverheadVsNative);
  const so = chartData(res, nonNative, (r) => r.steady.estOverheadVsNative);
  const refs = chartData(res, backends, (r) => r.refsPerTlbMiss);
  const exits = chartData(res, nonNative, (r) => r.exitsPerOp);
  const hcalls = chartData(res, nonNative, (r) => r.hypercallsPerOp);
  const costRows = res.costs
    .map(
      (c) =>
        `<tr><td class="text">${esc(c.name)}</td><td>${sig(c.cycles)}</td><td class="text">${c.assumption ? "assumption" : "published"}</td><td class="text">${esc(c.source)}</td></tr>`,
    )
    .join("\n");
  const skipped = res.skipped.map((s) => `<li>${esc(s.key)}: ${esc(s.reason)}</li>`).join("\n");
  const workloads = [...new Set(res.runs.map((r) => r.workload))];
  const heading =
    backends.length === 0
      ? "Hyperlab study: no runs"
      : `Hyperlab study: ${backends.join(", ")} on ${workloads.join(", ")}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(heading)}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1360px; }
table { border-collapse: collapse; font-size: 12px; }
td, th { border: 1px solid #ccc; padding: 2px 5px; text-align: right; }
th { vertical-align: bottom; font-weight: 600; background: #f4f4f4; }
#runs th { max-width: 6.5em; white-space: normal; }
#runs td.case { max-width: 14em; }
td.text, td.case, th:first-child { text-align: left; }
td { font-variant-numeric: tabular-nums; }
.unit { font-weight: normal; color: #555; }
.note { background: #f4f4f4; padding: 0.6em 1em; border-left: 4px solid #888; }
svg { display: block; margin: 1.5em 0; max-width: 100%; height: auto; }
details { margin: 0.4em 0; }
</style>
</head>
<body>
<h1>${esc(heading)}</h1>
<p class="note">${esc(res.note)}</p>
<p>Seed ${res.config.seed}; workloads ${esc(workloads.join(", "))}; backends that ran ${esc(backends.join(", "))}; guest kernel @hyperlab/guest; @hyperlab/study ${esc(res.generator.version)} on Node ${esc(res.generator.node)}. The resolved configuration is in config.json, every figure in results.json beside this file.</p>
${barChart({ title: "Overhead against native (estimate)", axis: "estimated cycles / native's on the same case (ratio)", groups: o.groups, series: o.series, ref: { value: 1, label: "native = 1" } })}
${barChart({ title: "Steady-state overhead against native (estimate)", axis: "estimated cycles after warm-up / native's on the same case (ratio)", groups: so.groups, series: so.series, ref: { value: 1, label: "native = 1" } })}
${barChart({ title: "Page-walk references per TLB miss (exact)", axis: "memory references per TLB miss", groups: refs.groups, series: refs.series })}
${barChart({ title: "VM exits per operation (exact)", axis: "VM exits per workload operation", groups: exits.groups, series: exits.series })}
${barChart({ title: "Entries into Xen by hypercall per operation (exact)", axis: "hypercall entries per workload operation (a multicall is one)", groups: hcalls.groups, series: hcalls.series })}
<h2>Runs</h2>
<p>Every count is exact; the last two columns are estimates. An update (random, kbuild) reads and then writes its word: two translations, so TLB hits plus misses can be twice the accesses.</p>
${runsTable(res)}
<h2>Data caches, kernel and hypervisor work</h2>
<p>Work counted apart and priced per event (exact counts): where user accesses and page-walk references that missed L1d were served, the workload's own instructions, pages the guest kernel zeroed and copied, its process system calls, and what Xen did inside multicalls and mmu_update batches.</p>
${workTable(res)}
<h2>Warm-up and steady state</h2>
<p>Warm-up ends when the workload has touched its working set once (first-touch faults, table building); the steady state is everything after. Counts are exact; cycles and ratios are estimates.</p>
${phaseTable(res)}
<h2>Backend statistics</h2>
<p>Every statistic the hypervisor and the backend's plugins keep (exit reasons, walk-cache and nested-TLB hits, ...), counted at the end of each run, with its unit; hover a name for its description.</p>
${statsTables(res)}
${res.io === undefined ? "" : ioReportHtml(res.io)}
${res.io?.split === undefined ? "" : splitIoReportHtml(res.io.split)}
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
