/*
 * native-mmu benchmarks: translations per second on TLB hits (same page, the fast path;
 * page to page, full first-level lookups) and on misses (a walk each), then the same three
 * kinds of loop over paging's bench fixture side by side with the C reference
 * (bench/c/native-ref.c, built here with gcc -O2 and checked to compute the same
 * translations and counters by test/c-reference.test.ts): TS, C and TS/C by CPU time.
 */
import { createHypervisor, PFEC_user_mode } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { buildCReference, runCReference } from "../../paging/bench/fixture";
import { type NativeMmu, nativeMmu } from "../src/index";
import { buildNativeFixture, NATIVE_C_SOURCE } from "./fixture";

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

function rate(name: string, n: number, fn: (i: number) => number): void {
  let best = 0;
  let sink = 0;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) sink += fn(i);
    best = Math.max(best, n / ((performance.now() - t0) / 1000));
  }
  console.log(`${name}: ${(best / 1e6).toFixed(1)} M/s${sink === -1 ? "!" : ""}`);
}

rate("translate, TLB hit, same page (fast path)", 10_000_000, (i) =>
  mmu.translate(v, BASE + (i & 1023) * 4, PFEC_user_mode),
);
rate("translate, TLB hit, 16 pages round robin", 5_000_000, (i) =>
  mmu.translate(v, BASE + (i & 15) * 4096, PFEC_user_mode),
);
rate("translate, TLB miss (flush + walk)", 500_000, (i) => {
  mmu.flushLocal(v);
  return mmu.translate(v, BASE + (i & 511) * 4096, PFEC_user_mode);
});

// ---- Side by side with C over paging's fixture (16 Ki dense pages, 2^20 random VAs).

/**
 * One untimed warm-up, then the best of five timed runs by the CPU time this process got
 * (process.cpuUsage), as paging's bench and the C reference's MEASURE do.
 */
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

const nf = buildNativeFixture();
const cref = buildCReference(nf.fx, NATIVE_C_SOURCE);
const { vas, order } = nf.fx;
const H = nf.fx.hot - 1;
const R = order.length - 1;
const m2 = nf.mmu;
const v2 = nf.v;
const N = 4_000_000;
let sink = 0;
const rates = new Map<string, number>();
// The VAs as fastVa, rrVa and missVa in bench/fixture.ts (written out so the loops inline).
rates.set(
  "native-fast",
  cpuRate(N * 5, () => {
    let s = 0;
    for (let i = 0; i < N * 5; i++)
      s += m2.translate(v2, vas[(i >>> 10) & H] + (i & 511) * 8, PFEC_user_mode);
    sink += s;
  }),
);
rates.set(
  "native-rr",
  cpuRate(N, () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += m2.translate(v2, vas[i & 15] + 8, PFEC_user_mode);
    sink += s;
  }),
);
rates.set(
  "native-miss",
  cpuRate(N / 2, () => {
    let s = 0;
    for (let i = 0; i < N / 2; i++) s += m2.translate(v2, order[i & R], PFEC_user_mode);
    sink += s;
  }),
);
if (sink === 42) console.log("");

const c = runCReference(cref.bin, cref.fixture, "bench", N);
const label: Record<string, string> = {
  "native-fast": "translate, fast path (same page)",
  "native-rr": "translate, dTLB hit, 16 pages",
  "native-miss": "translate, TLB miss + walk + fill",
};
console.log("\nTypeScript against the C reference (M/s by CPU time; TS/C = C rate / TS rate):");
for (const [key, ts] of rates) {
  const cRate = Number(c.get(key)![1]);
  const ratio = cRate / ts;
  console.log(
    `  ${label[key].padEnd(34)} TS ${ts.toFixed(1).padStart(7)}  C ${cRate.toFixed(1).padStart(7)}  TS/C ${ratio.toFixed(2)}${ratio > 2 ? "  (over 2x)" : ""}`,
  );
}
