// The split-driver cases inside a study: io.split in the configuration, results.json's
// io.split section (rows with units and the cited costs), the summary's per-request table and
// report.html's section; byte-identical for one seed and whatever the workers.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HyperlabError } from "@hyperlab/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  resolveConfig,
  runStudy,
  SPLIT_IO_COSTS,
  SPLIT_IO_RESULTS_FORMAT,
  type SplitIoResults,
  summaryTable,
} from "../src/index";

const KiB = 1024;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "hyperlab-study-split-"));
  dirs.push(d);
  return d;
}

const SPLIT = {
  requests: 4,
  warmup: 4,
  disk: [
    { name: "4k-random-read", op: "read" as const, bytes: 4 * KiB, access: "random" as const },
  ],
  nic: [{ name: "frame-1514", frameBytes: 1514 }],
};
const STUDY = {
  seed: 9,
  workloads: ["random"],
  backends: ["native"],
  workingSetBytes: [256 * 1024],
  operations: [50],
  io: { platforms: ["native" as const], requests: 2, split: SPLIT },
};

let a = "";
let split: SplitIoResults;
const row = (platform: string, pattern: string) =>
  split.rows.find((r) => r.platform === platform && r.pattern === pattern)!;

beforeAll(async () => {
  a = tmp();
  await runStudy({ ...STUDY, workers: 0 }, { outDir: a });
  split = (
    JSON.parse(readFileSync(join(a, "results.json"), "utf8")) as { io: { split: SplitIoResults } }
  ).io.split;
}, 120_000);

describe("io.split in a study's configuration", () => {
  it("is not run unless asked; {} takes every default with the study's seed", () => {
    expect(resolveConfig({ io: {} }).io?.split).toBeNull();
    expect(resolveConfig({ io: { split: null } }).io?.split).toBeNull();
    const c = resolveConfig({ seed: 5, io: { split: {} } }).io?.split;
    expect(c).toMatchObject({
      seed: 5,
      modes: ["map", "copy", "persistent", "virtio"],
      requests: 64,
      warmup: 8,
    });
    expect(resolveConfig({ seed: 5, io: { split: { seed: 3 } } }).io?.split?.seed).toBe(3);
    // A seed beyond 32 bits folds to its low 32 bits.
    expect(resolveConfig({ seed: 2 ** 32 + 6, io: { split: {} } }).io?.split?.seed).toBe(6);
  });

  it("a bad io.split value is a STUDY_BAD_CONFIG error that names it", () => {
    for (const [s, words] of [
      [{ requests: 0 }, ['"io.split.requests"', "got 0"]],
      [{ modes: ["mapped"] }, ["io.split.modes.0", '"mapped"']],
      [{ warmup: -1 }, ["io.split.warmup", "got -1"]],
      [{ diskBytes: 1000 }, ["diskBytes"]],
      [{ nic: [{ name: "f", frameBytes: 20 }] }, ["frameBytes"]],
      [{ bogus: 1 }, ["bogus"]],
      [
        { disk: [SPLIT.disk[0]], nic: [{ name: "4k-random-read", frameBytes: 64 }] },
        ["io.split", '"4k-random-read"'],
      ],
      [
        {
          diskBytes: 1024 * KiB,
          disk: [{ name: "big", op: "read", bytes: 1024 * KiB + 512, access: "random" }],
        },
        ["bytes"],
      ],
    ] as const) {
      let err: unknown;
      try {
        resolveConfig({ io: { split: s } } as never);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(s)).toBeInstanceOf(HyperlabError);
      expect((err as HyperlabError<string>).code).toBe("STUDY_BAD_CONFIG");
      for (const w of words) expect((err as Error).message, JSON.stringify(s)).toContain(w);
    }
  });

  it("config.json carries the resolved io.split, and reading it back reproduces the results", async () => {
    const config = JSON.parse(readFileSync(join(a, "config.json"), "utf8"));
    expect(config.io.split).toEqual({
      seed: 9,
      modes: ["map", "copy", "persistent", "virtio"],
      requests: 4,
      warmup: 4,
      disk: SPLIT.disk,
      nic: SPLIT.nic,
      diskBytes: 4096 * KiB,
    });
    const b = tmp();
    await runStudy(config, { outDir: b });
    expect(readFileSync(join(b, "results.json"), "utf8")).toBe(
      readFileSync(join(a, "results.json"), "utf8"),
    );
  }, 120_000);
});

describe("results.json's io.split section", () => {
  it("is versioned, with units and the costs it used, each with its source", () => {
    expect(split.format).toBe(SPLIT_IO_RESULTS_FORMAT);
    expect(split.units).toMatchObject({
      hypercalls: "calls",
      grantOps: "grant ops",
      notifications: "events",
      vmExits: "exits",
      copies: "copies",
      copiedBytes: "bytes",
      cyclesPerRequest: "cycles per request (estimate)",
    });
    expect(split.costs.map((c) => [c.name, c.cycles])).toEqual(Object.entries(SPLIT_IO_COSTS));
    for (const c of split.costs) {
      expect(c.source.length).toBeGreaterThan(10);
      expect(c.doc).toBe("docs/cost-model.md#split-driver-io");
    }
    expect(split.checksumsAgree).toBe(true);
    expect(split.rows.map((r) => `${r.platform}/${r.pattern}`)).toEqual(
      ["xen-split-map", "xen-split-copy", "xen-split-persistent", "kvm-virtio"].flatMap((m) => [
        `${m}/4k-random-read`,
        `${m}/frame-1514`,
      ]),
    );
  });

  it("carries each mode's exact per-request counts (as the split-driver tests derive them)", () => {
    const base = { requests: 1, bytes: 4 * KiB, vmExits: 0 };
    expect(row("xen-split-map", "4k-random-read").perRequest).toEqual({
      ...base,
      hypercalls: 4,
      grantOps: 2,
      frontendGrantOps: 2,
      notifications: 2,
      copies: 0,
      copiedBytes: 0,
      cpuCopyBytes: 0,
    });
    expect(row("xen-split-copy", "4k-random-read").perRequest).toMatchObject({
      ...base,
      hypercalls: 3,
      grantOps: 1,
      notifications: 2,
      copies: 1,
      copiedBytes: 4 * KiB,
      cpuCopyBytes: 0,
    });
    expect(row("xen-split-persistent", "4k-random-read").perRequest).toEqual({
      ...base,
      hypercalls: 2,
      grantOps: 0,
      frontendGrantOps: 0,
      notifications: 2,
      copies: 1,
      copiedBytes: 4 * KiB,
      cpuCopyBytes: 4 * KiB,
    });
    expect(row("kvm-virtio", "4k-random-read").perRequest).toEqual({
      ...base,
      hypercalls: 0,
      grantOps: 0,
      frontendGrantOps: 0,
      notifications: 2,
      vmExits: 4,
      copies: 3,
      copiedBytes: 4 * KiB + 17,
      cpuCopyBytes: 4 * KiB + 17,
    });
    for (const m of ["map", "copy", "persistent"]) {
      expect(row(`xen-split-${m}`, "frame-1514").perRequest).toMatchObject({
        hypercalls: 5,
        grantOps: 2,
        notifications: 3,
        vmExits: 0,
        copies: 2,
        copiedBytes: 5 * 1514,
      });
    }
    expect(row("kvm-virtio", "frame-1514").perRequest).toMatchObject({
      hypercalls: 0,
      grantOps: 0,
      vmExits: 7,
      notifications: 3,
    });
    for (const r of split.rows) expect(r.counts.requests).toBe(4);
    // Totals are 4 × per request; cycles are the counts × the cited costs.
    expect(row("xen-split-map", "4k-random-read").counts.hypercalls).toBe(16);
    expect(row("xen-split-map", "4k-random-read").cyclesPerRequest).toBe(
      4 * SPLIT_IO_COSTS.hypercall +
        2 * SPLIT_IO_COSTS.grantMapOp +
        2 * SPLIT_IO_COSTS.eventDelivery,
    );
  });

  it("is byte-identical with workers 0 and 2, and changes with the seed", async () => {
    const c = tmp();
    await runStudy({ ...STUDY, workers: 2 }, { outDir: c });
    expect(readFileSync(join(c, "results.json"), "utf8")).toBe(
      readFileSync(join(a, "results.json"), "utf8"),
    );
    const d = await runStudy({ ...STUDY, seed: 10, workers: 0 });
    const other = d.results.io?.split as SplitIoResults;
    expect(other.config.seed).toBe(10);
    expect(other.rows[0].checksum).not.toBe(row("xen-split-map", "4k-random-read").checksum);
    expect(other.rows.map((r) => r.perRequest)).toEqual(split.rows.map((r) => r.perRequest));
  }, 120_000);
});

describe("the summary and report.html", () => {
  it("the text summary prints the per-request table", () => {
    const text = summaryTable(JSON.parse(readFileSync(join(a, "results.json"), "utf8")));
    expect(text).toContain("Split-driver I/O (4 requests per pattern, one at a time):");
    expect(text).toContain(
      "| xen-split-map | 4k-random-read | 4 | 4 | 2 | 2 | 2 | 0 | 0 | 0 | 13000 |",
    );
    expect(text).toContain("| kvm-virtio | 4k-random-read | 4 | 0 | 0 | 0 | 2 | 4 |");
    expect(text).toContain("Checksums agree across modes.");
  });

  it("report.html has the section: per request by mode, and the costs with their sources", () => {
    const html = readFileSync(join(a, "report.html"), "utf8");
    expect(html).toContain('<h2 id="split-io">Split-driver I/O</h2>');
    const table = html.slice(
      html.indexOf('<table id="split-io-table">'),
      html.indexOf("</table>", html.indexOf('<table id="split-io-table">')),
    );
    for (const h of [
      "hypercalls",
      "grant ops (backend)",
      "notifications",
      "VM exits",
      "copies",
      "est. cycles",
    ])
      expect(table).toContain(`<th>${h} `);
    expect(table.match(/<tr data-mode=/g)).toHaveLength(8);
    expect(table).toContain(
      '<tr data-mode="map"><td class="text">4k-random-read</td><td class="text">grant map</td><td class="text">xen-split-map</td><td>4</td><td>2</td><td>2</td><td>2</td><td>0</td><td>0</td><td>0</td><td>13000</td></tr>',
    );
    for (const m of ["grant copy", "persistent grants", "virtio (KVM-style)"])
      expect(table).toContain(`<td class="text">${m}</td>`);
    expect(html).toContain("<code>docs/cost-model.md#split-driver-io</code>");
    expect(html).toContain("Santos et al., USENIX ATC 2008");
  });
});
