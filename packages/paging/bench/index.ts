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
const R = order.length - 1;
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
const M = sparse.length - 1;
const out = new WalkResult();

await measure(
  "walk 4-level, cold caches (no PWC, no TLB), dense tree",
  "walk-dense",
  N,
  () => () => {
    let s = 0;
    for (let i = 0; i < N; i++) {
      walk(ram, root, order[i & R], ACCESS_READ, PAGING_4LEVEL, out);
      s += out.maddr;
    }
    sink += s;
  },
);
// (In this process only when the rows share it: HYPERLAB_BENCH_SHARED=1.)
if (out.totalWalks > 0) {
  console.log(`  reads per walk: ${(out.totalReads / out.totalWalks).toFixed(2)}`);
}
await measure(
  "walk 4-level, cold caches, sparse tree (host-memory bound)",
  "walk-sparse",
  N / 10,
  () => () => {
    let s = 0;
    for (let i = 0; i < N / 10; i++) {
      walk(ram, root, sparse[i & M], ACCESS_READ, PAGING_4LEVEL, out);
      s += out.maddr;
    }
    sink += s;
  },
);

await measure("walk 4-level through page-walk caches (random VAs)", "walk-pwc", N, () => {
  const pwc = new PageWalkCache();
  return () => {
    let s = 0;
    for (let i = 0; i < N; i++) {
      walk(ram, root, order[i & R], ACCESS_READ, PAGING_4LEVEL, out, pwc, 0);
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
  return () => {
    let s = 0;
    for (let i = 0; i < N * 5; i++) {
      if (tlb.lookup(vas[i & (HOT - 1)] + 8, 1)) s += tlb.hitMfn;
    }
    sink += s;
  };
});

// Misses in every level: a lookup, a walk through the PWC and an insert.
await measure("TLB miss + walk (PWC) + insert, random VAs", "tlb-miss", N / 2, () => {
  const tlb2 = new Tlb();
  return () => {
    let s = 0;
    for (let i = 0; i < N / 2; i++) {
      const va = order[i & R];
      if (tlb2.lookup(va, 1)) s += tlb2.hitMfn;
      else if (walk(ram, root, va, ACCESS_READ, PAGING_4LEVEL, out, tlb2.pwc, 1)) {
        tlb2.insertWalk(out, 1);
        s += out.pageMfn & PERM_RW;
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
