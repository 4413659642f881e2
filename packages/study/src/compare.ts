/*
 * `hyperlab study compare A B`: two results.json files side by side, run by run, as ratios
 * of B over A (estimated cycles and the exact counts that drive them).
 *
 * Invariant: runs are matched by their key only; a run in one file and not the other is
 * listed, never paired with another.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { studyError } from "./errors";
import { groupDigits, sig } from "./report";

/** The part of a results.json that a comparison reads (format 1 and 2 both have it). */
export interface ComparableResults {
  format: string;
  runs: { key: string; estCycles: number; counts: Record<string, number> }[];
}

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

export interface Comparison {
  metrics: string[];
  rows: { key: string; a: number[]; b: number[] }[];
  onlyA: string[];
  onlyB: string[];
}

/** Pairs the runs of A and B by key, in A's order. */
export function compareResults(a: ComparableResults, b: ComparableResults): Comparison {
  const inB = new Map(b.runs.map((r) => [r.key, r]));
  const inA = new Set(a.runs.map((r) => r.key));
  const rows: Comparison["rows"] = [];
  for (const ra of a.runs) {
    const rb = inB.get(ra.key);
    if (rb === undefined) continue;
    rows.push({ key: ra.key, a: METRICS.map((m) => m.get(ra)), b: METRICS.map((m) => m.get(rb)) });
  }
  return {
    metrics: METRICS.map((m) => m.name),
    rows,
    onlyA: a.runs.filter((r) => !inB.has(r.key)).map((r) => r.key),
    onlyB: b.runs.filter((r) => !inA.has(r.key)).map((r) => r.key),
  };
}

/** The comparison as a plain-text table of B/A ratios, with A's and B's cycles. */
export function comparisonTable(c: Comparison): string {
  const head = ["run", "A est. cycles", "B est. cycles", ...METRICS.map((m) => `${m.label} B/A`)];
  const rows = c.rows.map((r) => [
    r.key,
    groupDigits(r.a[0]),
    groupDigits(r.b[0]),
    ...METRICS.map((_, i) => ratio(r.a[i], r.b[i])),
  ]);
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join("  ");
  const out = [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)];
  out.push("");
  out.push("Ratios are B over A (1 = unchanged); cycles are cost-model estimates, counts exact.");
  for (const k of c.onlyA) out.push(`only in A: ${k}`);
  for (const k of c.onlyB) out.push(`only in B: ${k}`);
  return `${out.join("\n")}\n`;
}
