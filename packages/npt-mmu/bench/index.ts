/*
 * Rates of nested-paging translation, in millions per second: TLB hits, cold
 * two-dimensional walks (no caches, so each is n*m + n + m references), walks with the
 * structure caches and nested TLB warm, and cold walks over 2 MiB host pages. Each figure is
 * one loop timed with process.hrtime.bigint() after an untimed warm-up of the same loop.
 */
import { runCReference } from "../../paging/bench/fixture";
import { BASE, buildNptReference, HOT, NONE, PAGES, WARM, world } from "./fixture";

let sink = 0;

function measure(name: string, ops: number, loop: () => void): void {
  loop();
  const t0 = process.hrtime.bigint();
  loop();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`${name}: ${(ops / (ns / 1e3)).toFixed(2)} M/s`);
}

{
  const { npt, v } = world({});
  const N = 5_000_000;
  measure("npt translate, TLB hit", N, () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += npt.translate(v, BASE + (i & 31) * 4096 + 8, 0);
    sink += s;
  });
}
for (const [name, options, order] of [
  ["npt cold 2D walk, 4K host pages (24 refs)", NONE, 0],
  ["npt cold 2D walk, 2M host pages (19 refs)", { ...NONE, hostPageSize: "2M" }, 9],
  ["npt TLB miss, warm PWC + nested TLB", WARM, 0],
] as const) {
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
// checks it computes the same addresses and counters): TS, C and TS/C by CPU time, one
// untimed warm-up then the best of five runs on both sides.
function cpuRate(ops: number, loop: () => void): number {
  loop();
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 5; run++) {
    const c0 = process.cpuUsage();
    loop();
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) * 1000);
  }
  return ops / (best / 1e3);
}
const NC = 1_000_000;
const rates = new Map<string, number>();
{
  const w = world(NONE);
  const cref = buildNptReference(w);
  const { npt, v } = w;
  // The VAs as coldVa and hitVa in bench/fixture.ts, written out so the loops inline.
  rates.set(
    "npt-cold",
    cpuRate(NC, () => {
      let s = 0;
      for (let i = 0; i < NC; i++) s += npt.translate(v, BASE + (i % PAGES) * 4096, 0);
      sink += s;
    }),
  );
  const h = world({});
  rates.set(
    "npt-hit",
    cpuRate(NC * 5, () => {
      let s = 0;
      for (let i = 0; i < NC * 5; i++)
        s += h.npt.translate(h.v, BASE + (i & (HOT - 1)) * 4096 + 8, 0);
      sink += s;
    }),
  );
  const wm = world(WARM);
  rates.set(
    "npt-warm",
    cpuRate(NC, () => {
      let s = 0;
      for (let i = 0; i < NC; i++) s += wm.npt.translate(wm.v, BASE + (i % PAGES) * 4096, 0);
      sink += s;
    }),
  );
  const c = runCReference(cref.bin, cref.fixture, "bench", NC);
  const label: Record<string, string> = {
    "npt-cold": "cold 2D walk, 4K host pages (24 refs)",
    "npt-hit": "translate, combined TLB hit",
    "npt-warm": "TLB miss, warm PWC + nested TLB (1 ref)",
  };
  console.log("\nTypeScript against the C reference (M/s by CPU time; TS/C = C rate / TS rate):");
  for (const [key, ts] of rates) {
    const cRate = Number(c.get(key)![1]);
    const ratio = cRate / ts;
    console.log(
      `  ${label[key].padEnd(40)} TS ${ts.toFixed(1).padStart(7)}  C ${cRate.toFixed(1).padStart(7)}  TS/C ${ratio.toFixed(2)}${ratio > 2 ? "  (over 2x)" : ""}`,
    );
  }
}
if (sink === 42) console.log("");
