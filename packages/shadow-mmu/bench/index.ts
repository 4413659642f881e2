/*
 * Rates of shadow paging, in millions per second: TLB hits, TLB misses served by a hardware
 * walk of the shadow tables (4 references), and the write-protection cycle (a trapped guest
 * PTE store that zaps the shadow entry, then the shadow page fault that refills it, with
 * out-of-sync pages off so that every store traps). Each figure is one loop timed by
 * paging's bench/harness.ts: an untimed warm-up, then the best of five runs, by wall clock
 * and [by CPU time].
 */
import { PAGING_4LEVEL, tlbGrants, WalkResult, walk } from "@hyperlab/paging";
import {
  CTurns,
  measure as cpuMeasure,
  rate as measure,
  mps,
  printTable,
  ROW_PROCESS,
  type Row,
  rowProcesses,
  sideBySide,
  writeResults,
} from "../../paging/bench/harness";
import { BASE, buildShadowReference, HOT, PAGES, type World, world } from "./fixture";

rowProcesses(import.meta.url);
let sink = 0;

// The wall-clock figures (skipped, worlds and all, in a side-by-side row's own process).
if (!ROW_PROCESS) {
  const { sh, v } = world({});
  const N = 5_000_000;
  measure("shadow translate, TLB hit", N, () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += sh.translate(v, BASE + (i & 31) * 4096 + 8, 0);
    sink += s;
  });
}
if (!ROW_PROCESS) {
  const { sh, v } = world({ tlb: false });
  const N = 2_000_000;
  measure("shadow TLB miss, hardware walk (4 refs)", N, () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += sh.translate(v, BASE + (i % PAGES) * 4096, 0);
    sink += s;
  });
}
if (!ROW_PROCESS) {
  // In sync: with out-of-sync pages (the default) the first store would unsync l1 and every
  // later one would be a plain store, not the trap this loop times.
  const { sh, v, l1, data } = world({ outOfSync: false });
  const N = 300_000;
  measure("shadow PTE store trap + propagation + refill fault (pairs)", N, () => {
    let s = 0;
    for (let i = 0; i < N; i++) {
      const p = i % PAGES;
      const f = data[(i * 7) % PAGES];
      sh.guestStore(v, l1 * 4096 + p * 8, (f * 4096 + 7) >>> 0, 0);
      s += sh.translate(v, BASE + p * 4096, 0);
    }
    sink += s;
  });
  console.log(
    `  emulated writes: ${sh.counts.emulatedWrites}, shadow faults fixed: ${sh.counts.shadowFaultsFixed}`,
  );
}

// ---- Side by side with the C reference (bench/c/shadow-ref.c, gcc -O2; test/c-reference.test.ts
// checks it computes the same addresses and counters): TS, C and TS/C by CPU time, each C
// loop and its TypeScript loop in turns (paging's bench/harness.ts).
const cpuRate = (ops: number, loop: () => void): number => mps(ops, cpuMeasure(loop).cpu);
{
  const NC = 2_000_000;
  const rows: Row[] = [];
  // The walk row's world is the one the C reads (its fixture); each world is built where a
  // row that needs it is timed (harness.ts's rowProcesses).
  let walkWorld: World | null = null;
  const ww = () => (walkWorld ??= world({ tlb: false }));
  let cref: { bin: string; fixture: string } | null = null;
  const built = () => (cref ??= buildShadowReference(ww()));
  const c = new CTurns(
    () => built().bin,
    () => [built().fixture, "turns", String(NC)],
  );
  // The VAs as walkVa and hitVa in bench/fixture.ts, written out so the loops inline.
  rows.push(
    await sideBySide(c, "shadow-walk", "TLB miss, shadow-table walk (4 refs)", NC, () => {
      const w = ww();
      const base = BASE; // see the hit row
      const pages = PAGES;
      return () => {
        let s = 0;
        for (let i = 0; i < NC; i++) s += w.sh.translate(w.v, base + (i % pages) * 4096, 0);
        sink += s;
      };
    }),
  );
  rows.push(
    await sideBySide(c, "shadow-hit", "translate, TLB hit", NC * 5, () => {
      const h = world({});
      // The VAs' constants read once here, as the C's loop keeps them in registers: in the
      // loop an imported binding is loaded from its module cell and checked at every use.
      // Here, not in the loop's function before its loop: code there runs before V8 gives
      // the function its feedback vector, and optimised code then deopts on it.
      const base = BASE;
      const mask = HOT - 1;
      return () => {
        let s = 0;
        for (let i = 0; i < NC * 5; i++) s += h.sh.translate(h.v, base + (i & mask) * 4096 + 8, 0);
        sink += s;
      };
    }),
  );
  const w = ww();
  const h = world({});
  // The same two loops with paging alone (no ShadowMmu code but finding the vCPU's TLB): its
  // walk from the shadow root, its Tlb.lookup and tlbGrants. What ShadowMmu adds is the
  // difference; what is left of the gap to C is paging's.
  const ram = w.machine.ram;
  const root = w.sh.shadowRoot(w.v);
  const out = new WalkResult();
  // The VAs' constants read once, as in the rows above, so that the difference between the
  // two TS rates is ShadowMmu's, not the loops'.
  const base = BASE;
  const pages = PAGES;
  const mask = HOT - 1;
  const floor = new Map<string, number>();
  floor.set(
    "shadow-walk",
    cpuRate(NC, () => {
      let s = 0;
      for (let i = 0; i < NC; i++) {
        walk(ram, root, base + (i % pages) * 4096, 0, PAGING_4LEVEL, out, null, 0);
        s += out.maddr;
      }
      sink += s;
    }),
  );
  floor.set(
    "shadow-hit",
    cpuRate(NC * 5, () => {
      let s = 0;
      for (let i = 0; i < NC * 5; i++) {
        const va = base + (i & mask) * 4096 + 8;
        // The vCPU's Tlb found per access, as translate must (a constant one lets V8 fold
        // its fields into the loop and flatters paging by about a fifth).
        const tlb = h.sh.tlbOf(h.v)!;
        if (tlb.lookup(va, 0) && tlbGrants(tlb.hitPerms, 0, PAGING_4LEVEL))
          s += tlb.hitMfn * 4096 + (va & 4095);
      }
      sink += s;
    }),
  );
  await c.close();
  printTable(rows, {
    width: 38,
    after: (row) => {
      const p = floor.get(row.key)!;
      const cRate = mps(row.ops, row.c.cpu);
      console.log(
        `    ${"of which paging alone".padEnd(36)} TS ${p.toFixed(1).padStart(7)}  C ${cRate.toFixed(1).padStart(7)}  TS/C ${(cRate / p).toFixed(2)}`,
      );
    },
  });
  writeResults(import.meta.url, "shadow-mmu", rows);
}
if (sink === 42) console.log("");
