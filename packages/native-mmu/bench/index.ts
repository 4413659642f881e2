/*
 * native-mmu benchmarks: translations per second on TLB hits (same page, the fast path;
 * page to page, full first-level lookups) and on misses (a walk each), then the same three
 * kinds of loop over paging's bench fixture side by side with the C reference
 * (bench/c/native-ref.c, built here with gcc -O2 and checked to compute the same
 * translations and counters by test/c-reference.test.ts): paging's bench/harness.ts runs
 * each C loop and its TypeScript loop in turns and prints TS, C and TS/C by CPU time.
 */
import { createHypervisor, PFEC_user_mode } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { buildCReference } from "../../paging/bench/fixture";
import {
  CTurns,
  printTable,
  type Row,
  rate,
  rowProcesses,
  sideBySide,
  writeResults,
} from "../../paging/bench/harness";
import { type NativeMmu, nativeMmu } from "../src/index";
import { buildNativeFixture, NATIVE_C_SOURCE } from "./fixture";

rowProcesses(import.meta.url);
const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
const d = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
const ram = machine.ram;
const BASE = 0x7f00_0000_0000;
const idx = (shift: number) => Math.floor(BASE / 2 ** shift) % 512;
ram.write64(100 * 4096 + idx(39) * 8, 101 * 4096 + 7, 0);
ram.write64(101 * 4096 + idx(30) * 8, 102 * 4096 + 7, 0);
ram.write64(102 * 4096 + idx(21) * 8, 103 * 4096 + 7, 0);
for (let i = 0; i < 512; i++) ram.write64(103 * 4096 + i * 8, (1000 + i) * 4096 + 7, 0);
const v = d.vcpus[0];
v.cr3Mfn = 100;
const mmu = hv.slot("mmu") as NativeMmu;

let sink = 0;
/** A loop of `n` calls of `fn` (rates: paging's harness, wall and CPU time, best of 5). */
const loop = (n: number, fn: (i: number) => number) => () => {
  let s = 0;
  for (let i = 0; i < n; i++) s += fn(i);
  sink += s;
};

rate(
  "translate, TLB hit, same page (fast path)",
  10_000_000,
  loop(10_000_000, (i) => mmu.translate(v, BASE + (i & 1023) * 4, PFEC_user_mode)),
);
rate(
  "translate, TLB hit, 16 pages round robin",
  5_000_000,
  loop(5_000_000, (i) => mmu.translate(v, BASE + (i & 15) * 4096, PFEC_user_mode)),
);
rate(
  "translate, TLB miss (flush + walk)",
  500_000,
  loop(500_000, (i) => {
    mmu.flushLocal(v);
    return mmu.translate(v, BASE + (i & 511) * 4096, PFEC_user_mode);
  }),
);

// ---- Side by side with C over paging's fixture (16 Ki dense pages, 2^20 random VAs).

const nf = buildNativeFixture();
let cref: { bin: string; fixture: string } | null = null;
const built = () => (cref ??= buildCReference(nf.fx, NATIVE_C_SOURCE));
const { vas, order } = nf.fx;
const H = nf.fx.hot - 1;
const m2 = nf.mmu;
const v2 = nf.v;
const N = 4_000_000;
const c = new CTurns(
  () => built().bin,
  () => [built().fixture, "turns", String(N)],
);
const rows: Row[] = [];
/**
 * What a side-by-side loop reads, taken into the row's own constants before the loop is made,
 * as the C's loops keep them in registers: read in the loop, a module-level binding (and an
 * imported one) is a load from the module's context with a hole check at every use. Taken
 * here, in the row's make(), not in the loop's function before its loop: code there runs
 * before V8 gives the function its feedback, and the optimised loop then deopts on it (h95).
 */
function loopConstants(list: Float64Array, n: number) {
  return { m: m2, v: v2, list, h: H, r: list.length - 1, n, pfec: PFEC_user_mode };
}
// The VAs as fastVa, rrVa and missVa in bench/fixture.ts (written out so the loops inline).
rows.push(
  await sideBySide(c, "native-fast", "translate, fast path (same page)", N * 5, () => {
    const { m, v, list, h, n, pfec } = loopConstants(vas, N * 5);
    return () => {
      let s = 0;
      for (let i = 0; i < n; i++) s += m.translate(v, list[(i >>> 10) & h] + (i & 511) * 8, pfec);
      sink += s;
    };
  }),
);
rows.push(
  await sideBySide(c, "native-rr", "translate, dTLB hit, 16 pages", N, () => {
    const { m, v, list, n, pfec } = loopConstants(vas, N);
    return () => {
      let s = 0;
      for (let i = 0; i < n; i++) s += m.translate(v, list[i & 15] + 8, pfec);
      sink += s;
    };
  }),
);
rows.push(
  await sideBySide(c, "native-miss", "translate, TLB miss + walk + fill", N / 2, () => {
    const { m, v, list, r, n, pfec } = loopConstants(order, N / 2);
    return () => {
      let s = 0;
      for (let i = 0; i < n; i++) s += m.translate(v, list[i & r], pfec);
      sink += s;
    };
  }),
);
if (sink === 42) console.log("");

await c.close();
printTable(rows, { width: 34 });
writeResults(import.meta.url, "native-mmu", rows);
