/*
 * `hyperlab study compare A B`: two results.json files side by side, run by run, as ratios
 * of B over A (estimated cycles and the exact counts that drive them); then the split-driver
 * I/O rows (`io.split`) the same way, per request.
 *
 * Invariant: runs are matched by their key only, and split rows by theirs (kind, pattern and
 * platform); a run or row in one file and not the other is listed, never paired with another.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { studyError } from "./errors";
import { SPLIT_IO_RESULTS_FORMAT } from "./io/split-results";
import { splitRowKey } from "./io/split-rows";
import { groupDigits, sig } from "./report";

/** The part of a split-driver row (results.json's `io.split.rows`) that a comparison reads. */
export interface ComparableSplitRow {
  platform: string;
  pattern: string;
  kind: string;
  perRequest: Record<string, number>;
  cyclesPerRequest: number;
}

/** The part of a results.json that a comparison reads (format 1 and 2 both have it). */
export interface ComparableResults {
  format: string;
  runs: { key: string; estCycles: number; counts: Record<string, number> }[];
  /** The split-driver section, when the study ran it (format hyperlab-study-io-split/1). */
  io?: { split?: { format: string; rows: ComparableSplitRow[] } };
}

const isSplitRow = (x: unknown): x is ComparableSplitRow => {
  const r = x as Partial<ComparableSplitRow> | null;
  return (
    typeof r === "object" &&
    r !== null &&
    typeof r.platform === "string" &&
    typeof r.pattern === "string" &&
    typeof r.kind === "string" &&
    typeof r.cyclesPerRequest === "number" &&
    typeof r.perRequest === "object" &&
    r.perRequest !== null
  );
};

/** Reads results.json (or DIR/results.json); throws STUDY_BAD_RESULTS saying what is wrong. */
export function loadResults(path: string): ComparableResults {
  let file = path;
  let text: string;
  try {
    if (statSync(path).isDirectory()) file = join(path, "results.json");
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw studyError(
      "STUDY_BAD_RESULTS",
      `Cannot read study results ${file}: ${(e as Error).message}. Pass a results.json, or the --out directory of a study.`,
    );
  }
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw studyError(
      "STUDY_BAD_RESULTS",
      `${file} is not valid JSON (${(e as Error).message}). Pass a results.json written by hyperlab study.`,
    );
  }
  const r = j as Partial<ComparableResults>;
  const ok =
    typeof r === "object" &&
    r !== null &&
    typeof r.format === "string" &&
    /^hyperlab-study\/\d+$/.test(r.format) &&
    Array.isArray(r.runs) &&
    r.runs.every(
      (x) =>
        typeof x?.key === "string" &&
        typeof x.estCycles === "number" &&
        typeof x.counts === "object" &&
        x.counts !== null,
    );
  if (!ok) {
    throw studyError(
      "STUDY_BAD_RESULTS",
      `${file} is not a study's results.json (no "format": "hyperlab-study/N" with runs). Pass a results.json written by hyperlab study.`,
    );
  }
  const split = (r as { io?: { split?: unknown } }).io?.split;
  if (split !== undefined && split !== null) {
    const sp = split as { format?: unknown; rows?: unknown };
    if (sp.format !== SPLIT_IO_RESULTS_FORMAT) {
      throw studyError(
        "STUDY_BAD_RESULTS",
        `${file} has an io.split section of format ${JSON.stringify(sp.format)}; this version compares ${SPLIT_IO_RESULTS_FORMAT}. Compare results written by the same version of hyperlab study.`,
      );
    }
    if (!Array.isArray(sp.rows) || !sp.rows.every(isSplitRow)) {
      throw studyError(
        "STUDY_BAD_RESULTS",
        `${file}'s io.split.rows are not split-driver rows (platform, pattern, kind, perRequest, cyclesPerRequest). Pass a results.json written by hyperlab study.`,
      );
    }
  }
  return r as ComparableResults;
}

const METRICS: {
  name: string;
  label: string;
  get: (r: ComparableResults["runs"][number]) => number;
}[] = [
  { name: "estCycles", label: "est. cycles", get: (r) => r.estCycles },
  { name: "tlbMisses", label: "TLB misses", get: (r) => r.counts.tlbMisses ?? 0 },
  { name: "walkRefs", label: "walk refs", get: (r) => r.counts.walkRefs ?? 0 },
  { name: "vmExits", label: "VM exits", get: (r) => r.counts.vmExits ?? 0 },
  { name: "hypercalls", label: "hypercalls", get: (r) => r.counts.hypercalls ?? 0 },
  { name: "pageFaults", label: "page faults", get: (r) => r.counts.pageFaults ?? 0 },
];

/** B over A: "1" when equal, "inf" when A is zero and B is not. */
function ratio(a: number, b: number): string {
  if (a === b) return "1";
  if (a === 0) return "inf";
  return sig(b / a);
}

/** The figures compared per split row, all per request. */
const SPLIT_METRICS: {
  name: string;
  label: string;
  get: (r: ComparableSplitRow) => number;
}[] = [
  { name: "cyclesPerRequest", label: "est. cycles", get: (r) => r.cyclesPerRequest },
  { name: "hypercalls", label: "hypercalls", get: (r) => r.perRequest.hypercalls ?? 0 },
  { name: "grantOps", label: "grant ops", get: (r) => r.perRequest.grantOps ?? 0 },
  { name: "notifications", label: "notifications", get: (r) => r.perRequest.notifications ?? 0 },
  { name: "vmExits", label: "VM exits", get: (r) => r.perRequest.vmExits ?? 0 },
  { name: "copies", label: "copies", get: (r) => r.perRequest.copies ?? 0 },
];

/** Rows of A and B paired by key: each metric's value in A and in B. */
export interface ComparisonTable {
  metrics: string[];
  rows: { key: string; a: number[]; b: number[] }[];
  onlyA: string[];
  onlyB: string[];
}

/** The matrix runs compared, then the split-driver rows (per request). */
export interface Comparison extends ComparisonTable {
  split: ComparisonTable;
}

/** Pairs rows by key, in A's order. */
function pair<T>(
  a: readonly T[],
  b: readonly T[],
  keyOf: (x: T) => string,
  metrics: readonly { name: string; get: (x: T) => number }[],
): ComparisonTable {
  const inB = new Map(b.map((r) => [keyOf(r), r]));
  const inA = new Set(a.map(keyOf));
  const rows: ComparisonTable["rows"] = [];
  for (const ra of a) {
    const rb = inB.get(keyOf(ra));
    if (rb === undefined) continue;
    rows.push({
      key: keyOf(ra),
      a: metrics.map((m) => m.get(ra)),
      b: metrics.map((m) => m.get(rb)),
    });
  }
  return {
    metrics: metrics.map((m) => m.name),
    rows,
    onlyA: a.filter((r) => !inB.has(keyOf(r))).map(keyOf),
    onlyB: b.filter((r) => !inA.has(keyOf(r))).map(keyOf),
  };
}

/** Pairs the runs of A and B by key, in A's order; then their split rows. */
export function compareResults(a: ComparableResults, b: ComparableResults): Comparison {
  return {
    ...pair(a.runs, b.runs, (r) => r.key, METRICS),
    split: pair(a.io?.split?.rows ?? [], b.io?.split?.rows ?? [], splitRowKey, SPLIT_METRICS),
  };
}

/** One table of B/A ratios: A's and B's first metric, then every metric's ratio. */
function tableText(
  c: ComparisonTable,
  metrics: readonly { label: string }[],
  first: string,
  unit: string,
  fmt: (v: number) => string,
): string[] {
  const head = [
    first,
    `A ${metrics[0].label}${unit}`,
    `B ${metrics[0].label}${unit}`,
    ...metrics.map((m) => `${m.label} B/A`),
  ];
  const rows = c.rows.map((r) => [
    r.key,
    fmt(r.a[0]),
    fmt(r.b[0]),
    ...metrics.map((_, i) => ratio(r.a[i], r.b[i])),
  ]);
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
}

const perRequest = (v: number) => (Number.isInteger(v) ? groupDigits(v) : v.toFixed(2));

/**
 * The comparison as plain text: the runs' table of B/A ratios with A's and B's cycles; then,
 * when either file has split-driver rows, their table per request (cycles and B/A ratios).
 */
export function comparisonTable(c: Comparison): string {
  const out = tableText(c, METRICS, "run", "", groupDigits);
  out.push("");
  out.push("Ratios are B over A (1 = unchanged); cycles are cost-model estimates, counts exact.");
  for (const k of c.onlyA) out.push(`only in A: ${k}`);
  for (const k of c.onlyB) out.push(`only in B: ${k}`);
  const s = c.split;
  if (s.rows.length + s.onlyA.length + s.onlyB.length > 0) {
    out.push("", "Split-driver I/O (io.split), per request:", "");
    if (s.rows.length > 0) out.push(...tableText(s, SPLIT_METRICS, "case", "/request", perRequest));
    else out.push("(no case in both)");
    out.push("");
    out.push("Ratios are B over A of per-request figures; cycles are estimates, counts exact.");
    for (const k of s.onlyA) out.push(`only in A: ${k}`);
    for (const k of s.onlyB) out.push(`only in B: ${k}`);
  }
  return `${out.join("\n")}\n`;
}
