import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { expandMatrix, resolveConfig } from "../src/config";
import { runCell } from "../src/run";
import { WORKLOADS } from "../src/workloads";

const LONG = process.env.HYPERLAB_LONG === "1";
const MiB = 2 ** 20;

/** Runs one case on every backend that can; returns the distinct checksums and the results. */
function acrossBackends(input: Parameters<typeof resolveConfig>[0]) {
  const { cells } = expandMatrix(resolveConfig(input));
  const runs = cells.map((c) => runCell(c));
  return { runs, checksums: new Set(runs.map((r) => r.checksum)) };
}

describe("workloads", () => {
  for (const w of WORKLOADS) {
    it(`${w.name}: functional results are identical across backends`, () => {
      const { runs, checksums } = acrossBackends({
        workloads: [w.name],
        workingSetBytes: [2 * MiB],
        processes: [2],
        operations: [Math.max(4, Math.floor(w.defaultOperations / 100))],
      });
      expect(runs.map((r) => r.backend)).toEqual(["native", "pv", "nested", "shadow"]);
      expect(checksums.size).toBe(1);
      for (const r of runs) {
        expect(r.counts.operations).toBe(r.params.operations);
        expect(r.counts.accesses).toBe(runs[0].counts.accesses);
        expect(r.counts.pageFaults).toBe(runs[0].counts.pageFaults);
        expect(r.counts.syscalls).toBe(runs[0].counts.syscalls);
      }
    });
  }

  it("2 MiB guest pages and host pages give the same results as 4 KiB ones", () => {
    const { checksums } = acrossBackends({
      workloads: ["random", "kbuild"],
      backends: ["native", "nested", "shadow"],
      workingSetBytes: [4 * MiB],
      guestPageSizes: ["4K", "2M"],
      hostPageSizes: ["4K", "2M"],
      operations: [3],
    });
    // One checksum per workload: page sizes change costs, never results.
    expect(checksums.size).toBe(2);
  });

  it("property: any small case gives one result on every backend", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...WORKLOADS.map((w) => w.name)),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 1000 }),
        (workload, processes, operations, seed) => {
          const { checksums } = acrossBackends({
            seed,
            workloads: [workload],
            workingSetBytes: [512 * 1024],
            processes: [processes],
            operations: [operations],
          });
          expect(checksums.size).toBe(1);
        },
      ),
      { seed: 7, numRuns: LONG ? 200 : 12 },
    );
  });
});

describe("workloads on the guest kernel (@hyperlab/guest)", () => {
  it("count what each backend does: flushes, hypercalls, traps, page-table updates", () => {
    for (const w of WORKLOADS) {
      const { runs, checksums } = acrossBackends({
        workloads: [w.name],
        workingSetBytes: [MiB],
        processes: [2],
        operations: [Math.max(3, Math.floor(w.defaultOperations / 400))],
      });
      expect(checksums.size, w.name).toBe(1);
      for (const r of runs) {
        expect(r.counts.tlbFlushes, r.key).toBeGreaterThan(0);
        expect(r.counts.ptUpdates, r.key).toBeGreaterThan(0);
      }
      if (w.name === "mmap-churn") {
        for (const r of runs) expect(r.counts.invlpg, r.key).toBeGreaterThan(0);
      }
      const [native, pv] = runs;
      expect(native.counts.hypercalls).toBe(0);
      expect(native.counts.traps).toBe(0);
      expect(pv.counts.hypercalls).toBeGreaterThan(0);
      expect(pv.counts.traps).toBeGreaterThanOrEqual(pv.counts.pageFaults + pv.counts.syscalls);
    }
  });

  it("2 MiB guest pages are the guest's huge pages: fewer faults and misses, same results", () => {
    const { runs } = acrossBackends({
      workloads: ["random"],
      backends: ["native", "nested", "shadow"],
      workingSetBytes: [8 * MiB],
      guestPageSizes: ["4K", "2M"],
      operations: [2000],
    });
    expect(new Set(runs.map((r) => r.checksum)).size).toBe(1);
    const by = (page: string, backend: string) =>
      runs.find((r) => r.params.guestPageSize === page && r.backend === backend)!.counts;
    for (const b of ["native", "nested", "shadow"]) {
      expect(by("2M", b).pageFaults, b).toBeLessThan(by("4K", b).pageFaults / 100);
      expect(by("2M", b).tlbMisses, b).toBeLessThan(by("4K", b).tlbMisses);
    }
  });

  it("skips what a backend cannot run, saying why; the kernel option is gone", () => {
    const { skipped } = expandMatrix(
      resolveConfig({ workloads: ["random"], guestPageSizes: ["4K", "2M", "1G"], operations: [1] }),
    );
    expect(skipped.map((s) => s.key)).toEqual([
      "random ws=16MiB page=2M/4K procs=1 ops=1 pv",
      "random ws=16MiB page=1G/4K procs=1 ops=1 native",
      "random ws=16MiB page=1G/4K procs=1 ops=1 pv",
      "random ws=16MiB page=1G/4K procs=1 ops=1 nested",
      "random ws=16MiB page=1G/4K procs=1 ops=1 shadow",
    ]);
    expect(skipped[0].reason).toMatch(/no superpages/);
    expect(skipped[1].reason).toMatch(/4 KiB and 2 MiB/);
    expect(() => resolveConfig({ kernel: "guest" } as never)).toThrow(
      expect.objectContaining({
        code: "STUDY_BAD_CONFIG",
        message: expect.stringMatching(/"kernel"/),
      }),
    );
  });
});

describe("determinism", () => {
  it("property: a cell run twice gives the same counts and checksum, for any seed", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...WORKLOADS.map((w) => w.name)),
        fc.constantFrom("native", "pv", "nested", "shadow"),
        fc.integer({ min: 1, max: 2 ** 40 }),
        (workload, backend, seed) => {
          const cell = expandMatrix(
            resolveConfig({
              seed,
              workloads: [workload],
              backends: [backend],
              workingSetBytes: [256 * 1024],
              processes: [2],
              operations: [5],
            }),
          ).cells[0];
          expect(runCell(cell)).toEqual(runCell(cell));
        },
      ),
      { seed: 11, numRuns: LONG ? 100 : 10 },
    );
  });
});
