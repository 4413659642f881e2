/*
 * The split-driver cases as a section of a study: results.json's `io.split` (rows with units,
 * the costs used with their sources), a text table for the summary and report.html's section.
 *
 * Invariant: the section depends only on its resolved configuration (the cases run one at a
 * time on the main thread whatever the study's workers, each on a fresh host), so one seed
 * gives byte-identical JSON.
 */
import type { SPLIT_IO_MODES, SplitIoConfig } from "./split-config";
import { SPLIT_IO_COSTS, type SplitIoCostTable } from "./split-costs";
import { runSplitIo } from "./split-drivers";
import { splitIoTable } from "./split-report";
import { SPLIT_IO_COUNT_INFO, type SplitIoResult } from "./split-rows";

/** The version of results.json's `io.split` section; bumped when its shape changes. */
export const SPLIT_IO_RESULTS_FORMAT = "hyperlab-study-io-split/1";

/** Where the costs are argued; report.html and results.json cite it. */
export const SPLIT_IO_COST_DOC = "docs/cost-model.md#split-driver-io";

/** Each cost of SplitIoCostTable: what it prices and where its figure comes from. */
export const SPLIT_IO_COST_INFO: readonly {
  name: keyof SplitIoCostTable & string;
  event: string;
  source: string;
}[] = [
  {
    name: "hypercall",
    event: "hypercall (PV trap into Xen and back)",
    source: "assumption, as the study's hypercalls cost (docs/cost-model.md, Hypercalls)",
  },
  {
    name: "grantMapOp",
    event: "grant map or unmap element (unmap with its TLB flush)",
    source:
      "assumption; ordering published: Santos et al., USENIX ATC 2008; Pau Monné, persistent grants, 2012",
  },
  {
    name: "grantCopyOp",
    event: "grant copy element, before its bytes",
    source: "assumption; ordering published (gnttab_copy: no mapping, no TLB flush)",
  },
  {
    name: "copyByte",
    event: "byte copied (grant copy or CPU memcpy)",
    source: "assumption: about 4 bytes per cycle, as the io workload's swiotlb bounces",
  },
  {
    name: "eventDelivery",
    event: "event delivered (Xen upcall, or an injected interrupt on kvm-virtio)",
    source: "assumption, the io workload's upcall figure",
  },
  {
    name: "vmExit",
    event: "VM exit and entry with the host's handling",
    source: "assumption within published bounds (docs/cost-model.md, vmExits)",
  },
];

export interface SplitIoResults {
  format: typeof SPLIT_IO_RESULTS_FORMAT;
  note: string;
  config: SplitIoConfig;
  /** Unit of each count; perRequest figures are that unit per request. */
  units: Record<string, string>;
  costs: { name: string; event: string; cycles: number; source: string; doc: string }[];
  /** One row per mode × pattern, in the order of config.modes, then disk, then NIC patterns. */
  rows: SplitIoResult[];
  /** Whether every mode read and received the same bytes for each pattern. */
  checksumsAgree: boolean;
}

const NOTE =
  "Requests are issued one at a time. Counts are exact counts of the split drivers' events over each pattern's measured requests (warm-up excluded); perRequest divides them by the requests. cyclesPerRequest is an estimate: counts times the costs listed (docs/cost-model.md, Split-driver I/O).";

/** Runs the split-driver cases of `config` as the study's io.split section. */
export async function runSplitIoStudy(
  config: SplitIoConfig,
  costs: SplitIoCostTable = SPLIT_IO_COSTS,
): Promise<SplitIoResults> {
  const rows = await runSplitIo(config, costs);
  const byPattern = new Map<string, string>();
  let checksumsAgree = true;
  for (const r of rows) {
    const first = byPattern.get(r.pattern);
    if (first === undefined) byPattern.set(r.pattern, r.checksum);
    else if (first !== r.checksum) checksumsAgree = false;
  }
  return {
    format: SPLIT_IO_RESULTS_FORMAT,
    note: NOTE,
    config,
    units: {
      ...Object.fromEntries(SPLIT_IO_COUNT_INFO.map((c) => [c.name, c.unit])),
      cyclesPerRequest: "cycles per request (estimate)",
    },
    costs: SPLIT_IO_COST_INFO.map((c) => ({
      name: c.name,
      event: c.event,
      cycles: costs[c.name],
      source: c.source,
      doc: SPLIT_IO_COST_DOC,
    })),
    rows,
    checksumsAgree,
  };
}

/** The summary's text: the per-request table and whether the modes moved the same data. */
export function splitIoSummaryText(res: SplitIoResults): string {
  return `Split-driver I/O (${res.config.requests} requests per pattern, one at a time):\n\n${splitIoTable(res.rows)}\n\nChecksums ${res.checksumsAgree ? "agree" : "DIFFER"} across modes.\n`;
}

const esc = (s: string) =>
  s
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2));

const MODE_NAMES: Record<(typeof SPLIT_IO_MODES)[number], string> = {
  map: "grant map",
  copy: "grant copy",
  persistent: "persistent grants",
  virtio: "virtio (KVM-style)",
};

const COLUMNS: { count: keyof SplitIoResult["perRequest"]; label: string }[] = [
  { count: "hypercalls", label: "hypercalls" },
  { count: "grantOps", label: "grant ops (backend)" },
  { count: "frontendGrantOps", label: "grant entries (frontend)" },
  { count: "notifications", label: "notifications" },
  { count: "vmExits", label: "VM exits" },
  { count: "copies", label: "copies" },
  { count: "copiedBytes", label: "copied bytes" },
];

/** report.html's section: per request, by pattern and mode, with the costs and their sources. */
export function splitIoReportHtml(res: SplitIoResults): string {
  const unit = (c: string) => esc(res.units[c] ?? "");
  const head = `<tr><th>pattern</th><th>mode</th><th>platform</th>${COLUMNS.map(
    (c) => `<th>${esc(c.label)} <span class="unit">(${unit(c.count)}/request)</span></th>`,
  ).join("")}<th>est. cycles <span class="unit">(cycles/request)</span></th></tr>`;
  const patterns = [...res.config.disk, ...res.config.nic].map((p) => p.name);
  const lines: string[] = [];
  for (const p of patterns) {
    for (const mode of res.config.modes) {
      const platform = mode === "virtio" ? "kvm-virtio" : `xen-split-${mode}`;
      const r = res.rows.find((x) => x.pattern === p && x.platform === platform);
      if (r === undefined) continue;
      lines.push(
        `<tr data-mode="${mode}"><td class="text">${esc(p)}</td><td class="text">${esc(MODE_NAMES[mode])}</td><td class="text">${platform}</td>${COLUMNS.map(
          (c) => `<td>${fmt(r.perRequest[c.count])}</td>`,
        ).join("")}<td>${Math.round(r.cyclesPerRequest)}</td></tr>`,
      );
    }
  }
  const costs = res.costs
    .map(
      (c) =>
        `<tr><td class="text">${esc(c.event)}</td><td>${c.cycles}</td><td class="text">${esc(c.source)}</td></tr>`,
    )
    .join("\n");
  return `<h2 id="split-io">Split-driver I/O</h2>
<p class="note">${esc(res.note)} Checksums ${res.checksumsAgree ? "agree" : "DIFFER"} across modes. ${res.config.requests} measured requests per pattern after ${res.config.warmup} warm-up; seed ${res.config.seed}.</p>
<table id="split-io-table">
${head}
${lines.join("\n")}
</table>
<h3>Split-driver cost model</h3>
<p>Cycles per event, argued in <code>${SPLIT_IO_COST_DOC}</code> (the repository's docs/cost-model.md, section "Split-driver I/O").</p>
<table id="split-io-costs">
<tr><th>event</th><th>cycles</th><th>source</th></tr>
${costs}
</table>`;
}
