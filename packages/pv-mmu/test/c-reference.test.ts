/*
 * The C reference of pv-mmu's measured paths (bench/c/pv-ref.c) computes what PvMmu
 * computes from the bench's own steady state: the same values read through the TLB (a
 * checksum) with the same walks, entries read and written and TLB lookups and hits; after the
 * bench's validated L1 updates and then hostile mmu_update batches, the same result and pdone
 * for every batch, the same RAM, frame table (owner, count_info, type_info), writable epochs
 * and linear_pt_counts, and the same counters; and the same pin and unpin of a page-table
 * tree. Only then is the bench's TS/C ratio a comparison of one algorithm in two languages.
 */

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  EACCES,
  EBUSY,
  EINVAL,
  ENOSYS,
  EPERM,
  ESRCH,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_UNPIN_TABLE,
} from "@hyperlab/abi";
import { tlbStats } from "@hyperlab/paging";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeScratchDirs } from "../../paging/bench/fixture";
import {
  BATCH,
  buildPvReference,
  type HostileBatch,
  hashedFrames,
  hashWords,
  hostileBatches,
  newVa,
  type PvWorld,
  pinWorld,
  pvFixtureFile,
  pvWorld,
  runPvReference,
  seqVa,
} from "../bench/fixture";

const N = 100_000;
const SEED = 7;
const HOSTILE = 2000;

function mix(h: number, x: number): number {
  const lo = (x % 0x1_0000_0000) >>> 0;
  const hi = Math.floor(x / 0x1_0000_0000) >>> 0;
  h = Math.imul(h ^ lo, 0x01000193) >>> 0;
  return Math.imul(h ^ hi, 0x01000193) >>> 0;
}
const hex = (h: number) => h.toString(16).padStart(8, "0");
const FNV = 0x811c9dc5;

/** The counters pv-ref.c's state line carries, in its order. */
function counters(w: PvWorld): number[] {
  const c = w.pv.pt.counts;
  return [
    w.pv.counters.mmuUpdates.value,
    c.validatedL1e,
    c.promotions,
    c.demotions,
    c.typeChangeFlushes,
    w.pv.counters.tlbFlushes.value,
    w.hv.machine.frames.nrFrees,
  ];
}

/** pv-ref.c's print_state, over PvMmu (counters as deltas from `base`). */
function state(w: PvWorld, base: number[]): string[] {
  const ram = w.hv.machine.ram;
  let h = FNV;
  for (const mfn of hashedFrames(w)) h = hashWords(h, ram.frameWords(mfn, false));
  const f = w.hv.frames;
  return [
    hex(h),
    hex(hashWords(FNV, f.ownerKeys)),
    hex(hashWords(FNV, f.countInfo)),
    hex(hashWords(FNV, f.typeInfo)),
    hex(hashWords(FNV, w.pv.pt.writableEpoch)),
    hex(hashWords(FNV, w.pv.pt.linear)),
    String(w.pv.pt.flushEpoch),
    ...counters(w).map((x, i) => String(x - base[i])),
  ];
}

function readCounters(w: PvWorld): number[] {
  const s = tlbStats(w.pv.tlbOf(w.v));
  const c = w.pv.walkCounts;
  return [
    c.walks,
    c.reads,
    c.writes,
    s.levels[0].lookups,
    s.levels[0].hits,
    s.levels[1].lookups,
    s.levels[1].hits,
    w.pv.counters.pageFaults.value,
  ];
}

/** pv-ref's `check` run, in TypeScript, over PvMmu itself. */
function checkTs(w: PvWorld, hostile: HostileBatch[], n: number): Map<string, string[]> {
  const lines = new Map<string, string[]>();
  const base = counters(w);
  for (const [name, va] of [
    ["pv-read-new", newVa],
    ["pv-read-seq", seqVa],
  ] as const) {
    const r0 = readCounters(w);
    let h = FNV;
    for (let i = 0; i < n; i++) h = mix(h, w.pv.read(w.v, va(w, i), 4));
    lines.set(name, [hex(h), ...readCounters(w).map((x, i) => String(x - r0[i]))]);
  }
  let failed = 0;
  const args = { ureqs: w.batches[0], count: BATCH, foreigndom: 0x7ff0, pdone: 0 };
  for (let r = 0; r < n / 1000; r++) {
    args.ureqs = w.batches[r & 1];
    if (w.hv.hypercall(w.v, __HYPERVISOR_mmu_update, args) !== 0) failed++;
  }
  lines.set("pv-update-failed", [String(failed)]);
  lines.set("pv-update", state(w, base));
  const results: string[] = [];
  for (const b of hostile) {
    const a = { ureqs: b.ureqs, count: b.ureqs.length / 4, foreigndom: b.foreigndom, pdone: 0 };
    const rc = w.hv.hypercall(w.v, __HYPERVISOR_mmu_update, a);
    results.push(`${rc}:${a.pdone}`);
  }
  lines.set("pv-hostile", [results.join(",")]);
  lines.set("pv-hostile-state", state(w, base));
  return lines;
}

describe("the C reference of pv-mmu's mmu_update, reads and pin", () => {
  let bin: string;
  let fixture: string;
  let hostile: HostileBatch[];
  let c: Map<string, string[]>;
  let ts: Map<string, string[]>;

  afterAll(removeScratchDirs);
  beforeAll(() => {
    bin = buildPvReference();
    const w = pvWorld();
    hostile = hostileBatches(w, SEED, HOSTILE);
    fixture = pvFixtureFile(w, hostile);
    c = runPvReference(bin, fixture, "check", N);
    ts = checkTs(w, hostile, N);
  }, 180_000);

  it("reads through the TLB exactly as PvMmu: values, walks and TLB hits", () => {
    for (const name of ["pv-read-new", "pv-read-seq"])
      expect({ name, fields: c.get(name) }).toEqual({ name, fields: ts.get(name) });
    // The new-page loop misses the first-level TLB and hits the second on every read (after
    // the first pass); the sequential one hits the first level (fast path) 1023 times a page.
    const fresh = ts.get("pv-read-new")!.map(Number);
    expect(fresh[4]).toBe(N); // level-0 lookups
    expect(fresh[1]).toBe(1024); // one walk per page of the 4 MiB region, then STLB hits
    const seq = ts.get("pv-read-seq")!.map(Number);
    // The first-level TLB holds the new-page loop's last 64 pages, so each of the 98 pages
    // the sequential loop touches misses it once and hits the second level.
    expect(seq.slice(1, 8)).toEqual([0, 0, 0, N, N - 98, 98, 98]);
  });

  it("makes the bench's validated L1 updates with the same RAM, frame table and counts", () => {
    expect(c.get("pv-update-failed")).toEqual(["0"]);
    expect(c.get("pv-update")).toEqual(ts.get("pv-update"));
    // Every request of a round validates a new entry and releases the old one.
    const [mmuUpdates, validated] = ts.get("pv-update")!.slice(7, 9).map(Number);
    expect(mmuUpdates).toBe((N / 1000) * BATCH);
    expect(validated).toBe(mmuUpdates);
  });

  it("answers every hostile batch as PvMmu, and ends in the same state", () => {
    expect(c.get("pv-hostile")![0].split(",")).toEqual(ts.get("pv-hostile")![0].split(","));
    expect(c.get("pv-hostile-state")).toEqual(ts.get("pv-hostile-state"));
    // The batches reach every errno the validated update answers, and promotions and
    // demotions (tables made and unmade by L2..L4 updates).
    const rcs = new Set(
      ts
        .get("pv-hostile")![0]
        .split(",")
        .map((x) => Number(x.split(":")[0])),
    );
    for (const rc of [0, -EINVAL, -EBUSY, -EPERM, -ENOSYS, -ESRCH]) expect(rcs).toContain(rc);
    expect(rcs).not.toContain(-EACCES); // no Xen-heap frame is offered with cache attributes
    const s = ts.get("pv-hostile-state")!.map(Number);
    expect(s[9]).toBeGreaterThan(0); // promotions
    expect(s[10]).toBeGreaterThan(0); // demotions
  });

  it("notices one changed request (the comparison is not blind)", () => {
    const w = pvWorld();
    const changed = hostileBatches(w, SEED, HOSTILE);
    // Clear RW in the last batch that mapped a frame writable into the update L1 and succeeded.
    const results = ts.get("pv-hostile")![0].split(",");
    let k = changed.length - 1;
    for (; k >= 0; k--) {
      const u = changed[k].ureqs;
      if (
        results[k] === "0:1" &&
        u.length === 4 &&
        u[0] >>> 12 === w.l1 % 0x10_0000 &&
        (u[0] & 7) === 0 &&
        (u[2] & 3) === 3
      )
        break;
    }
    expect(k).toBeGreaterThanOrEqual(0);
    changed[k].ureqs[2] ^= 0x2;
    const other = checkTs(w, changed, N);
    expect([other.get("pv-hostile"), other.get("pv-hostile-state")]).not.toEqual([
      c.get("pv-hostile"),
      c.get("pv-hostile-state"),
    ]);
  }, 60_000);

  it("pins and unpins a page-table tree as PvMmu", () => {
    const w = pinWorld(1 << 16);
    const path = pvFixtureFile(w);
    const cp = runPvReference(bin, path, "pincheck", 1);
    const base = counters(w);
    const op = (cmd: number) =>
      w.hv.hypercall(w.v, __HYPERVISOR_mmuext_op, {
        uops: [{ cmd, arg1: { mfn: w.pinL4 } }],
        count: 1,
        foreigndom: 0x7ff0,
      });
    expect(cp.get("pv-pin-rc")).toEqual([String(op(MMUEXT_PIN_L4_TABLE))]);
    const pinned = state(w, base);
    expect(cp.get("pv-pin")).toEqual(pinned);
    expect(cp.get("pv-unpin-rc")).toEqual([String(op(MMUEXT_UNPIN_TABLE))]);
    expect(cp.get("pv-unpin")).toEqual(state(w, base));
    // 1 L4, 1 L3, 1 L2 and 128 L1s validated: 65536 L1 entries.
    expect(pinned.slice(8, 10)).toEqual(["65536", "131"]);
  }, 120_000);

  it("refuses a file that is not a fixture", () => {
    const bad = `${fixture}.bad`;
    writeFileSync(bad, Buffer.alloc(512));
    expect(() => execFileSync(bin, [bad, "check", "10"], { stdio: "pipe" })).toThrow(
      /not a fixture/,
    );
  });
});
