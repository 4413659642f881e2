/*
 * Rates of paging's hot paths, in millions of operations per second. Each figure is a plain
 * loop of millions of operations. Targets: TLB hits at least 50 M/s, cold 4-level walks at
 * least 10 M/s, on one core. Each loop is measured side by side with the same loop in the C
 * reference (bench/c/paging-ref.c, built here with gcc -O2, checked to compute the same
 * translations by test/c-reference.test.ts): bench/harness.ts runs the C loop then the
 * TypeScript loop in turns, one warm-up and five timed runs each, and keeps each side's best
 * by CPU time. Each loop's line gives the TypeScript's wall-clock rate and, in brackets, its
 * CPU-time rate; the table at the end puts each next to C's with the ratio.
 */

import {
  ACCESS_READ,
  ACCESS_WRITE,
  PAGING_4LEVEL,
  PageWalkCache,
  PERM_RW,
  Tlb,
  WalkResult,
  walk,
} from "../src/index";
import { buildCReference, buildFixture, PAGES } from "./fixture";
import {
  CTurns,
  printRate,
  printTable,
  type Row,
  rowProcesses,
  sideBySide,
  writeResults,
} from "./harness";

rowProcesses(import.meta.url);

let sink = 0;

// The trees and access orders (bench/fixture.ts): a dense tree of 4 regions of 16 MiB under 4
// different L4 slots (its tables stay in the host's caches, so the figure measures the
// walker, not host memory latency), and a sparse one of the same number of pages over 64
// clusters of 512 MiB (thousands of tables: bound by the host's memory latency).
const fx = buildFixture();
const { ram, root, vas, sparse, order } = fx;
console.log(
  `trees: ${PAGES} dense pages (${fx.denseTables} tables), ${PAGES} sparse pages (${fx.sparseTables} tables)`,
);
// The C reference (bench/c/paging-ref.c): built where a row is timed (harness.ts's
// rowProcesses), fed the same fixture before any walk sets an A/D bit, and kept running to
// take its turns.
const rows: Row[] = [];

const N = 4_000_000;
let cref: { bin: string; fixture: string } | null = null;
const built = () => (cref ??= buildCReference(fx));
const c = new CTurns(
  () => built().bin,
  () => [built().fixture, "turns", String(N)],
);
/** One loop in turns with C's loop `key` (`make` builds it); prints its TypeScript rates. */
async function measure(
  name: string,
  key: string,
  ops: number,
  make: () => () => void,
): Promise<void> {
  const row = await sideBySide(c, key, key, ops, make);
  printRate(name, ops, row.ts);
  rows.push(row);
}
const out = new WalkResult();
/**
 * What a side-by-side loop reads, taken into the row's own constants before the loop is made,
 * as the C's loops keep them in registers: read in the loop, a module-level binding (and an
 * imported one: `walk` itself, the access and mode constants) is a load from the module's
 * context with a hole check at every use. Taken in the row's make(), not in the loop's
 * function before its loop: code there runs before V8 gives the function its feedback, and
 * the optimised loop then deopts on it (h95).
 */
function loopConstants(list: Float64Array, n: number) {
  return {
    ram,
    root,
    list,
    r: list.length - 1,
    n,
    out,
    walk,
    read: ACCESS_READ,
    mode: PAGING_4LEVEL,
  };
}

/** A cold walk of each VA of `list` in turn, `n` walks (each row in a process of its own). */
function coldWalks(list: Float64Array, n: number): () => void {
  const { ram, root, r, out, walk, read, mode } = loopConstants(list, n);
  return () => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      walk(ram, root, list[i & r], read, mode, out);
      s += out.maddr;
    }
    sink += s;
  };
}

await measure("walk 4-level, cold caches (no PWC, no TLB), dense tree", "walk-dense", N, () =>
  coldWalks(order, N),
);
// (In this process only when the rows share it: HYPERLAB_BENCH_SHARED=1.)
if (out.totalWalks > 0) {
  console.log(`  reads per walk: ${(out.totalReads / out.totalWalks).toFixed(2)}`);
}
await measure(
  "walk 4-level, cold caches, sparse tree (host-memory bound)",
  "walk-sparse",
  N / 10,
  () => coldWalks(sparse, N / 10),
);

await measure("walk 4-level through page-walk caches (random VAs)", "walk-pwc", N, () => {
  const pwc = new PageWalkCache();
  const { ram, root, list, r, n, out, walk, read, mode } = loopConstants(order, N);
  return () => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      walk(ram, root, list[i & r], read, mode, out, pwc, 0);
      s += out.maddr;
    }
    sink += s;
  };
});

// TLB: the default dTLB + STLB; the hit loop cycles over 32 pages that stay in the dTLB.
await measure("TLB lookup, dTLB hits", "tlb-hit", N * 5, () => {
  const tlb = new Tlb();
  const HOT = fx.hot;
  for (let i = 0; i < HOT; i++) {
    walk(ram, root, vas[i], ACCESS_WRITE, PAGING_4LEVEL, out);
    tlb.insertWalk(out, 1);
  }
  const { list, n } = loopConstants(vas, N * 5);
  const h = HOT - 1;
  return () => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      if (tlb.lookup(list[i & h] + 8, 1)) s += tlb.hitMfn;
    }
    sink += s;
  };
});

// Misses in every level: a lookup, a walk through the PWC and an insert.
await measure("TLB miss + walk (PWC) + insert, random VAs", "tlb-miss", N / 2, () => {
  const tlb2 = new Tlb();
  const { ram, root, list, r, n, out, walk, read, mode } = loopConstants(order, N / 2);
  const pwc = tlb2.pwc;
  const rw = PERM_RW;
  return () => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const va = list[i & r];
      if (tlb2.lookup(va, 1)) s += tlb2.hitMfn;
      else if (walk(ram, root, va, read, mode, out, pwc, 1)) {
        tlb2.insertWalk(out, 1);
        s += out.pageMfn & rw;
      }
    }
    sink += s;
  };
});

if (sink === 42) console.log("");

await c.close();
// Side by side: TS/C is the factor by which the TypeScript is slower (the project's target:
// at most 2).
printTable(rows, { width: 12 });
writeResults(import.meta.url, "paging", rows);
