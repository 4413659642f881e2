import { describe, expect, it } from "vitest";
import { backendByName, expandMatrix, resolveConfig } from "../src/config";
import { DEFAULT_COSTS } from "../src/cost-model";
import { WORKLOADS, workloadByName } from "../src/workloads";

const code = (c: string) => expect.objectContaining({ code: c });

describe("study configuration", () => {
  it("applies every default", () => {
    const c = resolveConfig();
    expect(c).toEqual({
      seed: 1,
      workloads: WORKLOADS.map((w) => w.name),
      backends: ["native", "pv", "nested", "shadow"],
      workingSetBytes: [16 * 2 ** 20],
      guestPageSizes: ["4K"],
      hostPageSizes: ["4K"],
      processes: [1],
      operations: [],
      costs: { ...DEFAULT_COSTS },
      workers: 2,
      io: null,
    });
  });

  it("rejects each bad field with a message naming it", () => {
    const cases: [object, string][] = [
      [{ seed: 1.5 }, "seed"],
      [{ workloads: [] }, "workloads"],
      [{ workloads: ["nope"] }, "nope"],
      [{ backends: ["xen"] }, "xen"],
      [{ workingSetBytes: [100] }, "workingSetBytes"],
      [{ guestPageSizes: ["8K"] }, "guestPageSizes"],
      [{ hostPageSizes: "4K" }, "hostPageSizes"],
      [{ processes: [0] }, "processes"],
      [{ operations: [-1] }, "operations"],
      [{ workers: 1000 }, "workers"],
      [{ costs: { nope: 1 } }, "nope"],
      [{ costs: { vmExits: -1 } }, "vmExits"],
      [{ colour: "red" }, "colour"],
    ];
    for (const [input, word] of cases) {
      expect(() => resolveConfig(input as never)).toThrow(word);
    }
    expect(() => resolveConfig(null as never)).toThrow(code("STUDY_BAD_CONFIG"));
    expect(() => resolveConfig({ workloads: ["nope"] })).toThrow(code("STUDY_UNKNOWN_WORKLOAD"));
    expect(() => resolveConfig({ backends: ["xen"] })).toThrow(code("STUDY_UNKNOWN_BACKEND"));
    expect(() => backendByName("x")).toThrow(code("STUDY_UNKNOWN_BACKEND"));
    expect(() => workloadByName("x")).toThrow(code("STUDY_UNKNOWN_WORKLOAD"));
  });

  it("expands the matrix in a fixed order with one seed per case for every backend", () => {
    const c = resolveConfig({
      workloads: ["random", "stream"],
      guestPageSizes: ["4K", "2M"],
      hostPageSizes: ["4K", "2M"],
      operations: [10],
    });
    const { cells, skipped } = expandMatrix(c);
    // pv has no 2 MiB guest pages; host page sizes beyond the first only cross nested.
    expect(skipped.map((s) => s.key)).toEqual([
      "random ws=16MiB page=2M/4K procs=1 ops=10 pv",
      "stream ws=16MiB page=2M/4K procs=1 ops=10 pv",
    ]);
    expect(cells.map((x) => x.key)).toEqual([
      "random ws=16MiB page=4K/4K procs=1 ops=10 native",
      "random ws=16MiB page=4K/4K procs=1 ops=10 pv",
      "random ws=16MiB page=4K/4K procs=1 ops=10 nested",
      "random ws=16MiB page=4K/4K procs=1 ops=10 shadow",
      "random ws=16MiB page=4K/2M procs=1 ops=10 nested",
      "random ws=16MiB page=2M/4K procs=1 ops=10 native",
      "random ws=16MiB page=2M/4K procs=1 ops=10 nested",
      "random ws=16MiB page=2M/4K procs=1 ops=10 shadow",
      "random ws=16MiB page=2M/2M procs=1 ops=10 nested",
      "stream ws=16MiB page=4K/4K procs=1 ops=10 native",
      "stream ws=16MiB page=4K/4K procs=1 ops=10 pv",
      "stream ws=16MiB page=4K/4K procs=1 ops=10 nested",
      "stream ws=16MiB page=4K/4K procs=1 ops=10 shadow",
      "stream ws=16MiB page=4K/2M procs=1 ops=10 nested",
      "stream ws=16MiB page=2M/4K procs=1 ops=10 native",
      "stream ws=16MiB page=2M/4K procs=1 ops=10 nested",
      "stream ws=16MiB page=2M/4K procs=1 ops=10 shadow",
      "stream ws=16MiB page=2M/2M procs=1 ops=10 nested",
    ]);
    expect(cells.map((x) => x.index)).toEqual(cells.map((_, i) => i));
    const seeds = new Map<string, Set<number>>();
    for (const x of cells) seeds.set(x.baseKey, (seeds.get(x.baseKey) ?? new Set()).add(x.seed));
    for (const s of seeds.values()) expect(s.size).toBe(1);
    // Page sizes do not change the operations either: one seed per workload here.
    expect(new Set(cells.map((x) => x.seed)).size).toBe(2);
    // Another study seed gives other cell seeds.
    const other = expandMatrix(resolveConfig({ ...c, seed: 2, costs: {} })).cells;
    expect(other[0].seed).not.toBe(cells[0].seed);
  });

  it("takes each workload's default operations when none are given", () => {
    const { cells } = expandMatrix(resolveConfig({ backends: ["native"] }));
    expect(cells.map((c) => c.params.operations)).toEqual(
      WORKLOADS.map((w) => w.defaultOperations),
    );
  });
});
