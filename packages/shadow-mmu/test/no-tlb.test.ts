/*
 * Without TLBs ({ tlb: false }) translate is translateNoTlb, which makes the usual walk itself
 * and leaves everything else to walkShadow (a walkRefSink, a root not loaded yet, a VA out of
 * range, a walk that fails and goes on from its exit). A walkRefSink sends every translation
 * through walkShadow from its start, so two worlds given the same random guest, one with a
 * sink and one without, must agree after every step: the address, the fault record, every
 * counter and every exit count.
 */
import { PFEC_write_access } from "@hyperlab/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  accessArb,
  boot,
  GuestMem,
  GuestTables,
  NX_HI,
  P,
  PATH_IDX,
  PSE,
  pathVaArb,
  RW,
  runs,
  seed,
  US,
} from "./helpers";

const vaArb = fc.oneof(
  { weight: 12, arbitrary: pathVaArb },
  // Outside what a walk takes: negative, fractional, past 2^48.
  { weight: 1, arbitrary: fc.constantFrom(-4096, 0.5, 4096.25, 2 ** 48, 2 ** 48 + 4096, 2 ** 60) },
);
const opArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant("access" as const), va: vaArb, access: accessArb }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("store" as const),
      table: fc.nat(9),
      slot: fc.nat(3),
      target: fc.nat(30),
      flags: fc.nat(31),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("cr3" as const), root: fc.nat(1) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("alias" as const),
      probe: fc.nat(15),
      table: fc.nat(30),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("flush" as const) }) },
);

describe("{ tlb: false }: translate's own walk and walkShadow's agree", () => {
  it.each([
    { outOfSync: false, writeFlooding: false },
    { outOfSync: true, writeFlooding: true },
  ])("same addresses, faults, counters and exits (%o)", (options) => {
    const stats = { walks: 0, emulate: 0, faultsFixed: 0, injected: 0 };
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 60 }),
        fc.array(vaArb, { minLength: 4, maxLength: 12 }),
        (ops, probes) => {
          const make = (sink: boolean) => {
            const w = boot({ tlb: false, ...options });
            const mem = new GuestMem(w, { pages: 256 });
            const v = mem.d.vcpus[0];
            const data = Array.from({ length: 20 }, () => mem.alloc());
            const first = mem.allocated().length;
            const t = new GuestTables(mem, v);
            const t2 = new GuestTables(mem, v);
            probes.forEach((va, i) => {
              if (!(Number.isInteger(va) && va >= 0 && va < 2 ** 48)) return;
              t.map(va, data[i % 20]);
              if (i % 2 === 0) t2.map(va, data[(i + 7) % 20]);
            });
            const refs: number[] = [];
            if (sink) w.sh.walkRefSink = (m) => refs.push(m);
            v.cr3Mfn = t.cr3;
            return { w, v, t, t2, data, tables: mem.allocated().slice(first) };
          };
          const a = make(false);
          const b = make(true);
          const same = (got: number, want: number) => {
            expect(got).toBe(want);
            if (a.w.sh.fault.emulate) stats.emulate++;
            expect(a.w.sh.fault).toEqual(b.w.sh.fault);
            expect(a.w.sh.counts).toEqual(b.w.sh.counts);
            expect(Array.from(a.w.sh.exits)).toEqual(Array.from(b.w.sh.exits));
          };
          const both = (f: (s: typeof a) => number) => same(f(a), f(b));
          for (const va of probes) both((s) => s.w.sh.translate(s.v, va, 0));
          for (const op of ops) {
            if (op.kind === "access") {
              both((s) => s.w.sh.translate(s.v, op.va, op.access));
            } else if (op.kind === "store") {
              both((s) => {
                const tables = s.tables;
                const frame =
                  op.target < 10 ? tables[op.target % tables.length] : s.data[op.target - 10];
                const f = op.flags;
                const lo =
                  (f & 1 ? P : 0) | (f & 2 ? RW : 0) | (f & 4 ? US : 0) | (f & 8 ? PSE : 0);
                const gpa = tables[op.table % tables.length] * 4096 + PATH_IDX[op.slot] * 8;
                return s.w.sh.guestStore(s.v, gpa, (frame * 4096 + lo) >>> 0, f & 16 ? NX_HI : 0);
              });
            } else if (op.kind === "alias") {
              // A page table mapped as data and written: unprotected, or emulated.
              const va = probes[op.probe % probes.length];
              if (!(Number.isInteger(va) && va >= 0 && va < 2 ** 48)) continue;
              both((s) => {
                s.t.map(va, s.tables[op.table % s.tables.length]);
                return s.w.sh.translate(s.v, va, PFEC_write_access);
              });
              both((s) => s.w.sh.translate(s.v, probes[0], 0));
            } else if (op.kind === "cr3") {
              a.v.cr3Mfn = op.root === 0 ? a.t.cr3 : a.t2.cr3;
              b.v.cr3Mfn = op.root === 0 ? b.t.cr3 : b.t2.cr3;
            } else {
              both((s) => {
                s.w.sh.flushLocal(s.v);
                return 0;
              });
            }
          }
          stats.walks += a.w.sh.counts.walks;
          stats.faultsFixed += a.w.sh.counts.shadowFaultsFixed;
          stats.injected += a.w.sh.counts.injectedFaults;
        },
      ),
      { seed, numRuns: runs(40) },
    );
    // The runs took every route: walks, shadow faults fixed, guest faults, emulated writes.
    expect(stats.walks).toBeGreaterThan(300);
    expect(stats.faultsFixed).toBeGreaterThan(100);
    expect(stats.injected).toBeGreaterThan(50);
    expect(stats.emulate).toBeGreaterThan(0);
  });
});
