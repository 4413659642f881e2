/*
 * A check for translate's size (not part of `pnpm bench`): the bench's fast-path and dTLB-hit
 * loops over the same fixture, run after `translate` has been optimized by itself (called
 * 300,000 times where it cannot be inlined, as it may be in a study). V8 then inlines it
 * into a loop only if its bytecode plus what its own optimized code inlined (Tlb.lookup,
 * find) fits the loop's budget; when it does not, every translation is an out-of-line call
 * and these rates fall to about 150 and 50 M/s (docs/decisions.md, h68). Run it after
 * changing translate or paging's Tlb.lookup/find: npx tsx bench/prewarmed.ts
 */
import { PFEC_user_mode } from "@hyperlab/core";
import { buildNativeFixture, fastVa, rrVa } from "./fixture";

const { fx, mmu, v } = buildNativeFixture();
const { vas } = fx;
const H = fx.hot - 1;
const N = 4_000_000;
const args: [typeof v, number, number] = [v, 0, PFEC_user_mode];
for (let i = 0; i < 300_000; i++) {
  args[1] = i & 1 ? rrVa(fx, i) : fastVa(fx, i);
  Reflect.apply(mmu.translate, mmu, args);
}

let sink = 0;
function fastLoop(): void {
  let s = 0;
  for (let i = 0; i < N * 5; i++)
    s += mmu.translate(v, vas[(i >>> 10) & H] + (i & 511) * 8, PFEC_user_mode);
  sink += s;
}
function rrLoop(): void {
  let s = 0;
  for (let i = 0; i < N; i++) s += mmu.translate(v, vas[i & 15] + 8, PFEC_user_mode);
  sink += s;
}
for (const [name, loop, ops] of [
  ["fast path (same page)", fastLoop, N * 5],
  ["dTLB hit, 16 pages", rrLoop, N],
] as const) {
  let best = 0;
  for (let r = 0; r < 8; r++) {
    const c0 = process.cpuUsage();
    loop();
    const c = process.cpuUsage(c0);
    best = Math.max(best, ops / (c.user + c.system));
  }
  console.log(`translate after translate was optimized alone, ${name}: ${best.toFixed(1)} M/s`);
}
if (sink === 42) console.log("");
