// The I/O workload inside a study: the `io` field of the configuration, its resolved form in
// config.json (which reproduces the run), results.json's `io` section with units, and the
// report's I/O section.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HyperlabError } from "@hyperlab/core";
import { afterAll, describe, expect, it } from "vitest";
import {
  DEFAULT_IO_COSTS,
  DEFAULT_STUDY,
  IO_DEFAULT_DISK,
  IO_DEFAULT_NIC,
  type IoResults,
  resolveConfig,
  runStudy,
  studyConfigSchema,
} from "../src/index";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "hyperlab-study-io-"));
  dirs.push(d);
  return d;
}

const TINY = {
  seed: 7,
  workloads: ["random"],
  backends: ["native"],
  workingSetBytes: [256 * 1024],
  operations: [50],
  workers: 0,
};

describe("the io field of a study configuration", () => {
  it("is absent or null by default (not run), and {} resolves to every I/O default", () => {
    expect(resolveConfig({}).io).toBeNull();
    expect(resolveConfig({ io: null }).io).toBeNull();
    expect(resolveConfig({ io: {} }).io).toEqual({
      platforms: ["native", "xen-dom0", "kvm-guest"],
      requests: 64,
      disk: IO_DEFAULT_DISK,
      nic: IO_DEFAULT_NIC,
      diskIrq: "intx",
      nicIrq: "msi",
      diskBytes: 8 * 2 ** 20,
      costs: { ...DEFAULT_IO_COSTS },
      split: null,
    });
    expect(DEFAULT_STUDY.io).toEqual({ requests: 32, split: { requests: 8 } });
  });

  it("a bad io field is a STUDY_BAD_CONFIG error naming it", () => {
    for (const [io, word] of [
      [{ requests: 0 }, "requests"],
      [{ disk: [{ name: "x", op: "read", bytes: 4096, access: "random", extra: 1 }] }, "extra"],
      [
        {
          disk: [{ name: "x", op: "read", bytes: 4096, access: "random" }],
          nic: [{ name: "x", frameBytes: 64 }],
        },
        '"x"',
      ],
    ] as const) {
      let err: unknown;
      try {
        resolveConfig({ io } as never);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HyperlabError);
      expect((err as HyperlabError<string>).code).toBe("STUDY_BAD_CONFIG");
      expect((err as Error).message).toContain(word);
    }
    expect(studyConfigSchema.safeParse({ io: { nicIrq: "polling" } }).success).toBe(false);
  });
});

describe("a study with the I/O workload", () => {
  it("writes the io section into results.json with units and the report's I/O table; config.json reproduces it", async () => {
    const a = tmp();
    const io = {
      requests: 3,
      disk: [{ name: "r4k", op: "read" as const, bytes: 4096, access: "random" as const }],
      nic: [{ name: "f64", frameBytes: 64 }],
    };
    await runStudy({ ...TINY, io }, { outDir: a });
    const res = JSON.parse(readFileSync(join(a, "results.json"), "utf8")) as { io: IoResults };
    expect(res.io.format).toBe("hyperlab-study-io");
    expect(res.io.units.eoiHypercalls).toBe("calls");
    expect(res.io.units.bytesBounced).toBe("bytes");
    expect(res.io.runs.map((r) => r.platform)).toEqual(["native", "xen-dom0", "kvm-guest"]);
    expect(res.io.checksumsAgree).toBe(true);
    const xen = res.io.runs[1].rows[0];
    expect(xen.perRequest.upcalls).toBe(1);
    expect(xen.perRequest.eoiHypercalls).toBe(1);
    const html = readFileSync(join(a, "report.html"), "utf8");
    expect(html).toContain("<h2>I/O workload</h2>");
    expect(html).toContain('PHYSDEVOP_eoi hypercalls <span class="unit">(calls/request)</span>');
    expect(html).toContain("EOIs that exited to the hypervisor");
    expect(res.io.runs[2].rows[0].perRequest.mmioExits).toBe(5);
    // The resolved configuration, read back, runs the same study byte for byte.
    const b = tmp();
    const config = JSON.parse(readFileSync(join(a, "config.json"), "utf8"));
    await runStudy(config, { outDir: b });
    expect(readFileSync(join(b, "results.json"), "utf8")).toBe(
      readFileSync(join(a, "results.json"), "utf8"),
    );
  });
});
