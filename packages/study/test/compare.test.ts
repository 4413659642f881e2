// `hyperlab study compare` and results.csv with the split-driver rows (io.split): rows
// matched by key (kind/pattern platform), per-request B/A ratios, rows in one file only
// listed, a malformed section refused with a typed error; the CSV's split rows.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ComparableResults,
  compareResults,
  comparisonTable,
  loadResults,
  resultsCsv,
  runStudy,
  SPLIT_IO_COUNT_INFO,
  type SplitIoResults,
  type StudyResults,
  splitRowKey,
} from "../src/index";

const KiB = 1024;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "hyperlab-study-compare-"));
  dirs.push(d);
  return d;
}

const DISK = [
  { name: "4k-random-read", op: "read" as const, bytes: 4 * KiB, access: "random" as const },
];
const STUDY = {
  seed: 9,
  workloads: ["random"],
  backends: ["native"],
  workingSetBytes: [256 * 1024],
  operations: [50],
  workers: 0,
};

let a = "";
let b = "";
let resA: StudyResults;

beforeAll(async () => {
  a = tmp();
  b = tmp();
  // A: grant map and virtio, one disk and one NIC pattern. B: grant map and grant copy, the
  // disk pattern only; so map's disk row is in both, virtio's only in A, copy's only in B.
  resA = (
    await runStudy(
      {
        ...STUDY,
        io: {
          platforms: ["native"],
          requests: 2,
          split: {
            requests: 2,
            warmup: 2,
            modes: ["map", "virtio"],
            disk: DISK,
            nic: [{ name: "frame-64", frameBytes: 64 }],
          },
        },
      },
      { outDir: a },
    )
  ).results;
  await runStudy(
    {
      ...STUDY,
      io: {
        platforms: ["native"],
        requests: 2,
        split: { requests: 2, warmup: 2, modes: ["map", "copy"], disk: DISK, nic: [] },
      },
    },
    { outDir: b },
  );
}, 120_000);

const splitOf = (r: ComparableResults) => r.io?.split as unknown as SplitIoResults;

describe("compare with split-driver rows", () => {
  it("pairs split rows by kind, pattern and platform; lists the rows in one file only", () => {
    const c = compareResults(loadResults(a), loadResults(b));
    // The matrix's one run (native) is in both, as before.
    expect(c.rows).toHaveLength(1);
    expect(c.rows[0].key).toMatch(/^random .*native$/);
    expect(c.split.metrics).toEqual([
      "cyclesPerRequest",
      "hypercalls",
      "grantOps",
      "notifications",
      "vmExits",
      "copies",
    ]);
    expect(c.split.rows.map((r) => r.key)).toEqual(["disk/4k-random-read xen-split-map"]);
    // Same code, same case: the same figures in both.
    expect(c.split.rows[0].a).toEqual(c.split.rows[0].b);
    const map = splitOf(loadResults(a)).rows.find((r) => r.platform === "xen-split-map")!;
    expect(c.split.rows[0].a).toEqual([
      map.cyclesPerRequest,
      map.perRequest.hypercalls,
      map.perRequest.grantOps,
      map.perRequest.notifications,
      map.perRequest.vmExits,
      map.perRequest.copies,
    ]);
    expect(c.split.onlyA).toEqual([
      "nic/frame-64 xen-split-map",
      "disk/4k-random-read kvm-virtio",
      "nic/frame-64 kvm-virtio",
    ]);
    expect(c.split.onlyB).toEqual(["disk/4k-random-read xen-split-copy"]);
  });

  it("prints per-request B/A ratios of the paired rows under the runs' table", () => {
    const ra = loadResults(a);
    const rb = JSON.parse(JSON.stringify(ra)) as ComparableResults;
    // B: twice the hypercalls and cycles per request on grant map's disk row, and no NIC rows.
    const sb = splitOf(rb);
    const row = sb.rows.find((r) => splitRowKey(r) === "disk/4k-random-read xen-split-map")!;
    row.perRequest.hypercalls *= 2;
    row.cyclesPerRequest *= 2;
    sb.rows = sb.rows.filter((r) => r.kind === "disk");
    const text = comparisonTable(compareResults(ra, rb));
    const lines = text.split("\n");
    const at = lines.indexOf("Split-driver I/O (io.split), per request:");
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 2]).toMatch(
      /^case +A est\. cycles\/request +B est\. cycles\/request +est\. cycles B\/A +hypercalls B\/A +grant ops B\/A +notifications B\/A +VM exits B\/A +copies B\/A$/,
    );
    const cycles = splitOf(ra).rows.find((r) => r.platform === "xen-split-map")!.cyclesPerRequest;
    const mapLine = lines.find((l) => l.startsWith("disk/4k-random-read xen-split-map"))!;
    expect(mapLine.trim().split(/ +/).slice(2)).toEqual([
      cycles.toLocaleString("en-US"),
      (2 * cycles).toLocaleString("en-US"),
      "2",
      "2",
      "1",
      "1",
      "1",
      "1",
    ]);
    const virtio = lines.find((l) => l.startsWith("disk/4k-random-read kvm-virtio"))!;
    expect(virtio.trim().split(/ +/).slice(-6)).toEqual(["1", "1", "1", "1", "1", "1"]);
    expect(lines).toContain("only in A: nic/frame-64 xen-split-map");
    expect(lines).toContain("only in A: nic/frame-64 kvm-virtio");
    // A file without io.split on either side: no split table at all.
    const bare = { format: ra.format, runs: ra.runs };
    expect(comparisonTable(compareResults(bare, bare))).not.toContain("Split-driver");
    expect(compareResults(bare, bare).split).toEqual({
      metrics: expect.any(Array),
      rows: [],
      onlyA: [],
      onlyB: [],
    });
    // One side only: every row listed, none paired.
    const one = comparisonTable(compareResults(ra, bare));
    expect(one).toContain("(no case in both)");
    expect(one).toContain("only in A: disk/4k-random-read xen-split-map");
  });

  it("refuses a split section it cannot read, with STUDY_BAD_RESULTS saying what", () => {
    const j = JSON.parse(readFileSync(join(a, "results.json"), "utf8"));
    const dir = tmp();
    const file = join(dir, "results.json");
    writeFileSync(
      file,
      JSON.stringify({
        ...j,
        io: { ...j.io, split: { ...j.io.split, format: "hyperlab-study-io-split/9" } },
      }),
    );
    expect(() => loadResults(file)).toThrow(
      expect.objectContaining({
        code: "STUDY_BAD_RESULTS",
        message: expect.stringMatching(
          /io\.split section of format "hyperlab-study-io-split\/9".*same version/,
        ),
      }),
    );
    const rows = j.io.split.rows.map((r: object, i: number) =>
      i === 1 ? { ...r, cyclesPerRequest: "x" } : r,
    );
    writeFileSync(file, JSON.stringify({ ...j, io: { ...j.io, split: { ...j.io.split, rows } } }));
    expect(() => loadResults(file)).toThrow(
      expect.objectContaining({
        code: "STUDY_BAD_RESULTS",
        message: expect.stringMatching(/io\.split\.rows are not split-driver rows/),
      }),
    );
    // Without io.split (an older study, or one without split cases) it loads.
    writeFileSync(file, JSON.stringify({ ...j, io: undefined }));
    expect(loadResults(file).io).toBeUndefined();
  });
});

describe("results.csv's split rows", () => {
  it("has one row per split case after the runs, keyed as compare keys them", () => {
    const text = readFileSync(join(a, "results.csv"), "utf8");
    expect(text).toBe(resultsCsv(resA));
    const lines = text.trimEnd().split("\n");
    const head = lines[0].split(",");
    const split = resA.io?.split as SplitIoResults;
    expect(lines).toHaveLength(1 + resA.runs.length + split.rows.length);
    expect(head.slice(-(SPLIT_IO_COUNT_INFO.length + 4))).toEqual([
      "splitKind",
      "splitPattern",
      "splitPlatform",
      "splitRequests",
      ...SPLIT_IO_COUNT_INFO.filter((c) => c.name !== "requests").map((c) => `${c.name}PerRequest`),
      "cyclesPerRequest",
    ]);
    const col = (line: string, name: string) => line.split(",")[head.indexOf(name)];
    // A run leaves the split columns empty.
    expect(col(lines[1], "splitKind")).toBe("");
    expect(col(lines[1], "workload")).toBe("random");
    split.rows.forEach((r, i) => {
      const line = lines[1 + resA.runs.length + i];
      expect(line.split(",")).toHaveLength(head.length);
      expect(col(line, "key")).toBe(splitRowKey(r));
      expect(col(line, "workload")).toBe("io.split");
      expect(col(line, "backend")).toBe(r.platform);
      expect(col(line, "seed")).toBe(String(split.config.seed));
      expect(col(line, "checksum")).toBe(r.checksum);
      expect(col(line, "splitKind")).toBe(r.kind);
      expect(col(line, "splitRequests")).toBe(String(r.counts.requests));
      expect(Number(col(line, "hypercallsPerRequest"))).toBe(r.perRequest.hypercalls);
      expect(Number(col(line, "copiedBytesPerRequest"))).toBe(r.perRequest.copiedBytes);
      expect(Number(col(line, "cyclesPerRequest"))).toBe(r.cyclesPerRequest);
      // The matrix's columns stay empty.
      expect(col(line, "estCycles")).toBe("");
      expect(col(line, "accesses")).toBe("");
    });
  });
});
