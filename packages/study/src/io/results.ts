/*
 * The I/O workload's results: every platform's rows, with units, the cost model used and a
 * text table of per-request figures. The `io` section of results.json is IoResults.
 *
 * Invariant: results depend only on the config and the seed (no clock, no host): the same
 * inputs give byte-identical JSON.
 */
import { IO_PLATFORM_NAMES, type IoConfig } from "./config";
import { IO_COST_INFO } from "./cost";
import { IO_COUNT_INFO } from "./counts";
import { IO_PLATFORMS } from "./hosts";
import type { SplitIoResults } from "./split-results";
import { type IoPlatformRun, type IoRow, runIoPlatform } from "./workload";

/** Platforms of issue 12 item 5 that this build cannot run yet, and why (none left). */
export const IO_PENDING_PLATFORMS: readonly { name: string; reason: string }[] = [];

export interface IoResults {
  format: "hyperlab-study-io";
  note: string;
  seed: number;
  config: IoConfig;
  /** Unit of each count; per-request figures are that unit per request. */
  units: Record<string, string>;
  costs: { name: string; cycles: number; source: string; assumption: boolean }[];
  platforms: { name: string; description: string }[];
  pending: { name: string; reason: string }[];
  runs: IoPlatformRun[];
  /** Whether every platform read and received the same bytes (their checksums agree). */
  checksumsAgree: boolean;
  /** The split-driver cases (config.split), when the configuration asked for them. */
  split?: SplitIoResults;
}

const NOTE =
  "Counts are exact counts of modelled events over each pattern's requests; perRequest divides them by the requests. cyclesPerRequest is an estimate: counts times the cost model's cycles per event (docs/cost-model.md, the I/O workload).";

/** Runs the I/O workload on every platform of `config`. */
export function runIoStudy(config: IoConfig, seed: number): IoResults {
  const runs = config.platforms.map((p) => runIoPlatform(p, config, seed));
  return {
    format: "hyperlab-study-io",
    note: NOTE,
    seed,
    config,
    units: {
      ...Object.fromEntries(IO_COUNT_INFO.map((c) => [c.name, c.unit])),
      cyclesPerRequest: "cycles per request (estimate)",
    },
    costs: IO_COST_INFO.map((c) => ({ ...c, cycles: config.costs[c.name] })),
    platforms: IO_PLATFORMS.filter((p) => config.platforms.includes(p.name)).map((p) => ({
      name: p.name,
      description: p.description,
    })),
    pending: IO_PENDING_PLATFORMS.filter(
      (p) => !(IO_PLATFORM_NAMES as readonly string[]).includes(p.name),
    ),
    runs,
    checksumsAgree: runs.every((r) => r.checksum === runs[0].checksum),
  };
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

/** A text table: one line per pattern and platform, per-request figures with units. */
export function ioSummaryTable(res: IoResults): string {
  const cols: [string, (r: IoRow) => string][] = [
    ["pattern", (r) => r.pattern],
    ["platform", (r) => r.platform],
    ["irq/req", (r) => fmt(r.perRequest.interrupts)],
    ["upcalls/req", (r) => fmt(r.perRequest.upcalls)],
    ["EOI hc/req", (r) => fmt(r.perRequest.eoiHypercalls)],
    ["other hc/req", (r) => fmt(r.perRequest.otherHypercalls)],
    ["bounces/req", (r) => fmt(r.perRequest.bounces)],
    ["bounced B/req", (r) => fmt(r.perRequest.bytesBounced)],
    ["exchanges/req", (r) => fmt(r.perRequest.exchanges)],
    ["MMIO/req", (r) => fmt(r.perRequest.mmioAccesses)],
    ["MMIO exits/req", (r) => fmt(r.perRequest.mmioExits)],
    ["injections/req", (r) => fmt(r.perRequest.injections)],
    ["EOI exits/req", (r) => fmt(r.perRequest.eoiExits)],
    ["est. cycles/req", (r) => String(Math.round(r.cyclesPerRequest))],
    ["checksum", (r) => r.checksum],
  ];
  const patterns = res.runs[0]?.rows.map((r) => r.pattern) ?? [];
  const lines: string[][] = [cols.map((c) => c[0])];
  for (const p of patterns) {
    for (const run of res.runs) {
      const row = run.rows.find((r) => r.pattern === p) as IoRow;
      lines.push(cols.map((c) => c[1](row)));
    }
  }
  const w = cols.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const out = lines.map((l) =>
    l.map((x, i) => (i < 2 ? x.padEnd(w[i]) : x.padStart(w[i]))).join("  "),
  );
  for (const p of res.pending) out.push(`${p.name}: pending (${p.reason})`);
  return `${out.join("\n")}\n`;
}

const esc = (s: string) =>
  s
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");

/** The report's I/O section: per-request counts with units, the I/O cost model, what is pending. */
export function ioReportHtml(res: IoResults): string {
  const names = IO_COUNT_INFO.filter((c) => c.name !== "requests");
  const head = `<tr><th>pattern</th><th>platform</th>${names
    .map((c) => `<th>${esc(c.description)} <span class="unit">(${esc(c.unit)}/request)</span></th>`)
    .join(
      "",
    )}<th>est. cycles <span class="unit">(cycles/request)</span></th><th>checksum</th></tr>`;
  const patterns = res.runs[0]?.rows.map((r) => r.pattern) ?? [];
  const rows: string[] = [];
  for (const p of patterns) {
    for (const run of res.runs) {
      const r = run.rows.find((x) => x.pattern === p) as IoRow;
      rows.push(
        `<tr><td class="text">${esc(p)}</td><td class="text">${esc(run.platform)}</td>${names
          .map((c) => `<td>${fmt(r.perRequest[c.name])}</td>`)
          .join(
            "",
          )}<td>${Math.round(r.cyclesPerRequest)}</td><td class="text">${r.checksum}</td></tr>`,
      );
    }
  }
  const costs = res.costs
    .map(
      (c) =>
        `<tr><td class="text">${esc(c.name)}</td><td>${c.cycles}</td><td class="text">${c.assumption ? "assumption" : "published"}</td><td class="text">${esc(c.source)}</td></tr>`,
    )
    .join("\n");
  const pending = res.pending.map((p) => `<li>${esc(p.name)}: pending (${esc(p.reason)})</li>`);
  return `<h2>I/O workload</h2>
<p class="note">${esc(res.note)} Checksums ${res.checksumsAgree ? "agree" : "DIFFER"} across platforms.</p>
<div style="overflow-x: auto; max-width: 100%">
<table id="io">
${head}
${rows.join("\n")}
</table>
</div>
${pending.length > 0 ? `<ul>\n${pending.join("\n")}\n</ul>` : ""}
<h3>I/O cost model</h3>
<table>
<tr><th>event</th><th>cycles</th><th>kind</th><th>source</th></tr>
${costs}
</table>`;
}
