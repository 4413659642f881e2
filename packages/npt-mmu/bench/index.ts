/*
 * Rates of nested-paging translation, in millions per second: TLB hits, cold
 * two-dimensional walks (no caches, so each is n*m + n + m references), walks with the
 * structure caches and nested TLB warm, and cold walks over 2 MiB host pages. Each figure is
 * one loop timed by paging's bench/harness.ts: an untimed warm-up, then the best of five
 * runs, by wall clock and [by CPU time].
 */
import {
  CTurns,
  rate as measure,
  printTable,
  ROW_PROCESS,
  type Row,
  rowProcesses,
  sideBySide,
  writeResults,
} from "../../paging/bench/harness";
import { BASE, buildNptReference, HOT, NONE, PAGES, WARM, world } from "./fixture";

rowProcesses(import.meta.url);
let sink = 0;

// The wall-clock figures (skipped, worlds and all, in a side-by-side row's own process).
if (!ROW_PROCESS) {
  const { npt, v } = world({});
  const N = 5_000_000;
  measure("npt translate, TLB hit", N, () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += npt.translate(v, BASE + (i & 31) * 4096 + 8, 0);
    sink += s;
  });
}
for (const [name, options, order] of ROW_PROCESS
  ? []
  : ([
      ["npt cold 2D walk, 4K host pages (24 refs)", NONE, 0],
      ["npt cold 2D walk, 2M host pages (19 refs)", { ...NONE, hostPageSize: "2M" }, 9],
      ["npt TLB miss, warm PWC + nested TLB", WARM, 0],
    ] as const)) {
  const { npt, v } = world(options, order);
  const N = 1_000_000;
  const refs0 = npt.counts.guestRefs + npt.counts.nestedRefs;
  const walks0 = npt.counts.walks;
  measure(name, N, () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += npt.translate(v, BASE + (i % PAGES) * 4096, 0);
    sink += s;
  });
  const refs = npt.counts.guestRefs + npt.counts.nestedRefs - refs0;
  console.log(`  references per walk: ${(refs / (npt.counts.walks - walks0)).toFixed(2)}`);
}

// ---- Side by side with the C reference (bench/c/npt-ref.c, gcc -O2; test/c-reference.test.ts
// checks it computes the same addresses and counters): TS, C and TS/C by CPU time, each C
// loop and its TypeScript loop in turns (paging's bench/harness.ts).
const NC = 1_000_000;
const rows: Row[] = [];
{
  // The C reads the cold world's fixture (its loops set up their own caches); each row's
  // TypeScript world is built by its `make`, where the row is timed.
  let cref: { bin: string; fixture: string } | null = null;
  const built = () => (cref ??= buildNptReference(world(NONE)));
  const c = new CTurns(
    () => built().bin,
    () => [built().fixture, "turns", String(NC)],
  );
  // The VAs as coldVa and hitVa in bench/fixture.ts, written out so the loops inline.
  rows.push(
    await sideBySide(c, "npt-cold", "cold 2D walk, 4K host pages (24 refs)", NC, () => {
      const { npt, v } = world(NONE);
      return () => {
        let s = 0;
        for (let i = 0; i < NC; i++) s += npt.translate(v, BASE + (i % PAGES) * 4096, 0);
        sink += s;
      };
    }),
  );
  rows.push(
    await sideBySide(c, "npt-hit", "translate, combined TLB hit", NC * 5, () => {
      const h = world({});
      // The VAs' constants read once here, as the C's loop keeps them in registers: in the
      // loop an imported binding is loaded from its module cell and checked at every use
      // (about 25 instructions of a hit's 200). Here, not in the loop's function before its
      // loop: code there runs before V8 gives the function its feedback vector, and the
      // optimised code then deopts on it. The walk rows keep the bindings: there the same
      // change did not help the cold walk and cost the warm one about 5 % (h95 in
      // docs/decisions.md).
      const base = BASE;
      const mask = HOT - 1;
      return () => {
        let s = 0;
        for (let i = 0; i < NC * 5; i++) s += h.npt.translate(h.v, base + (i & mask) * 4096 + 8, 0);
        sink += s;
      };
    }),
  );
  rows.push(
    await sideBySide(c, "npt-warm", "TLB miss, warm PWC + nested TLB (1 ref)", NC, () => {
      const wm = world(WARM);
      return () => {
        let s = 0;
        for (let i = 0; i < NC; i++) s += wm.npt.translate(wm.v, BASE + (i % PAGES) * 4096, 0);
        sink += s;
      };
    }),
  );
  await c.close();
  printTable(rows, { width: 40 });
  writeResults(import.meta.url, "npt-mmu", rows);
}
if (sink === 42) console.log("");
