/*
 * The split-driver cases as a report table: one row per case with its per-request counts
 * (exact) and estimated cycles (counts × the cited costs of docs/cost-model.md).
 */
import type { SplitIoResult } from "./split-rows";

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2));

/** A Markdown table of `results`, in their order. */
export function splitIoTable(results: readonly SplitIoResult[]): string {
  const head = [
    "platform",
    "pattern",
    "requests",
    "hypercalls",
    "grant ops (back)",
    "grant entries (front)",
    "notifications",
    "VM exits",
    "copies",
    "copied bytes",
    "est. cycles",
  ];
  const rows = results.map((r) => {
    const p = r.perRequest;
    return [
      r.platform,
      r.pattern,
      String(r.counts.requests),
      fmt(p.hypercalls),
      fmt(p.grantOps),
      fmt(p.frontendGrantOps),
      fmt(p.notifications),
      fmt(p.vmExits),
      fmt(p.copies),
      fmt(p.copiedBytes),
      fmt(r.cyclesPerRequest),
    ];
  });
  const line = (c: string[]) => `| ${c.join(" | ")} |`;
  return [
    "Per request (counts exact; cycles estimated from docs/cost-model.md, Split-driver I/O):",
    "",
    line(head),
    line(head.map(() => "---")),
    ...rows.map(line),
  ].join("\n");
}
