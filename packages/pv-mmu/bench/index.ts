/*
 * pv-mmu benchmarks: validated mmu_update of L1 entries, guest reads through the TLB, and
 * pinning a page-table tree that maps 4 GiB in 4 KiB pages. Prints rates; numbers depend on
 * the host. At the end the same loops run in the C reference (bench/c/pv-ref.c, built here
 * with gcc -O2, fed each TypeScript world's steady state and checked to compute the same
 * results by test/c-reference.test.ts), each figure next to its C counterpart with the ratio.
 */
import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  DOMID_SELF,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_UNPIN_TABLE,
} from "@hyperlab/abi";
import {
  BATCH,
  buildPvReference,
  type PvWorld,
  pinWorld,
  pvFixtureFile,
  pvWorld,
  runPvReference,
} from "./fixture";

function now(): number {
  return performance.now();
}

let sink = 0;

/** The update loop: `rounds` mmu_update hypercalls of BATCH requests, batches alternating. */
function updateLoop(w: PvWorld, rounds: number): () => void {
  const { hv, v, batches } = w;
  const args = { ureqs: batches[0], count: BATCH, foreigndom: DOMID_SELF, pdone: 0 };
  return () => {
    for (let r = 0; r < rounds; r++) {
      args.ureqs = batches[r & 1];
      const rc = hv.hypercall(v, __HYPERVISOR_mmu_update, args);
      if (rc !== 0) throw new Error(`mmu_update failed: ${rc}`);
    }
  };
}

// The read loops' VAs are bench/fixture.ts's newVa and seqVa, kept as a running offset (one
// add and compare instead of a modulo, as pv-ref.c's loops do) so that the loops inline.
function newReads(w: PvWorld, n: number): () => void {
  const { pv, v, span } = w;
  const base = w.b.virtBase;
  return () => {
    let x = 0;
    let off = 0;
    for (let i = 0; i < n; i++) {
      x ^= pv.read(v, base + off, 4);
      off += 4104;
      if (off >= span) off -= span;
    }
    sink += x;
  };
}

function seqReads(w: PvWorld, n: number): () => void {
  const { pv, v, span } = w;
  const base = w.b.virtBase;
  return () => {
    let x = 0;
    let off = 0;
    for (let i = 0; i < n; i++) {
      x ^= pv.read(v, base + off, 4);
      off += 4;
      if (off >= span) off -= span;
    }
    sink += x;
  };
}

/** Best of `runs` wall-clock runs after one untimed warm-up; ops per second. */
function bestRate(ops: number, runs: number, loop: () => void): number {
  loop();
  let best = 0;
  for (let rep = 0; rep < runs; rep++) {
    const t0 = now();
    loop();
    best = Math.max(best, ops / ((now() - t0) / 1000));
  }
  return best;
}

/**
 * One untimed warm-up, then the best of five timed runs by the CPU time this process got
 * (process.cpuUsage), as pv-ref.c's MEASURE does; ops per second.
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
  return ops / (best / 1e9);
}

const ROUNDS = 2000;
const READS = 1_000_000;

// ---- wall-clock figures (best of a few runs, since the host is shared)
{
  const w = pvWorld();
  const best = bestRate(ROUNDS * BATCH, 5, updateLoop(w, ROUNDS));
  console.log(
    `mmu_update validated L1 entries (batches of 512, best of 5): ${(best / 1e6).toFixed(2)} M/s`,
  );
  const fresh = bestRate(READS, 3, newReads(w, READS));
  console.log(
    `guest u32 reads through the TLB (a new page each read, 4 MiB working set, best of 3): ${(fresh / 1e6).toFixed(2)} M/s`,
  );
  const seq = bestRate(4 * READS, 3, seqReads(w, 4 * READS));
  console.log(
    `guest u32 reads through the TLB (sequential, best of 3): ${(seq / 1e6).toFixed(2)} M/s`,
  );
}

// ---- the pin: one world (4 GiB in 4 KiB pages), its fixture written before the first pin
const pin = pinWorld();
const pinFixture = pvFixtureFile(pin);
const pinOp = (cmd: number) => ({
  uops: [{ cmd, arg1: { mfn: pin.pinL4 } }],
  count: 1,
  foreigndom: DOMID_SELF,
});
const pinArgs = pinOp(MMUEXT_PIN_L4_TABLE);
const unpinArgs = pinOp(MMUEXT_UNPIN_TABLE);
/** Pins and unpins `runs` times after one warm-up; the best pin and unpin, wall and CPU ms. */
function pinTimes(runs: number): number[] {
  const best = new Array<number>(4).fill(Number.POSITIVE_INFINITY);
  for (let rep = 0; rep <= runs; rep++) {
    const c0 = process.cpuUsage();
    const t0 = now();
    const rc = pin.hv.hypercall(pin.v, __HYPERVISOR_mmuext_op, pinArgs);
    const t1 = now();
    const c1 = process.cpuUsage();
    if (rc !== 0) throw new Error(`pin failed: ${rc}`);
    const rc2 = pin.hv.hypercall(pin.v, __HYPERVISOR_mmuext_op, unpinArgs);
    const t2 = now();
    const c2 = process.cpuUsage();
    if (rc2 !== 0) throw new Error(`unpin failed: ${rc2}`);
    if (rep === 0) continue;
    const cpu = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) =>
      (b.user + b.system - a.user - a.system) / 1000;
    best[0] = Math.min(best[0], t1 - t0);
    best[1] = Math.min(best[1], t2 - t1);
    best[2] = Math.min(best[2], cpu(c0, c1));
    best[3] = Math.min(best[3], cpu(c1, c2));
  }
  return best;
}
const [pinMs, unpinMs, pinCpu, unpinCpu] = pinTimes(3);
const pinPages = 1 << 20;
console.log(
  `pin L4 mapping 4 GiB in 4 KiB pages (1 + 1 + 4 + 2048 tables, 1048576 entries, best of 3): ${pinMs.toFixed(1)} ms`,
);
console.log(`unpin (demote) the same tree: ${unpinMs.toFixed(1)} ms`);
console.log(
  `validated L1 entries during the pin: ${(((pinPages / pinMs) * 1000) / 1e6).toFixed(2)} M/s`,
);

// ---- Side by side with the C reference (bench/c/pv-ref.c, gcc -O2): TS, C and TS/C by CPU
// time, one untimed warm-up then the best of five runs on both sides (the pin: best of 3).
const bin = buildPvReference();
const rates = new Map<string, number>();
const side = pvWorld();
const sideFixture = pvFixtureFile(side);
rates.set("pv-update", cpuRate(ROUNDS * BATCH, updateLoop(side, ROUNDS)));
rates.set("pv-read-new", cpuRate(READS, newReads(side, READS)));
rates.set("pv-read-seq", cpuRate(4 * READS, seqReads(side, 4 * READS)));
const c = runPvReference(bin, sideFixture, "bench", READS);
const cp = runPvReference(bin, pinFixture, "pin", 3);
const label: Record<string, string> = {
  "pv-update": "mmu_update, validated L1 entries",
  "pv-read-new": "guest read, a new page each (STLB hit)",
  "pv-read-seq": "guest read, sequential (fast path)",
};
console.log("\nTypeScript against the C reference (by CPU time; TS/C = TS time / C time):");
const row = (name: string, ts: string, cs: string, ratio: number) =>
  console.log(
    `  ${name.padEnd(40)} TS ${ts.padStart(9)}  C ${cs.padStart(9)}  TS/C ${ratio.toFixed(2)}${ratio > 2 ? "  (over 2x)" : ""}`,
  );
for (const [key, ts] of rates) {
  const cRate = Number(c.get(key)![1]);
  row(label[key], `${(ts / 1e6).toFixed(1)} M/s`, `${cRate.toFixed(1)} M/s`, (cRate * 1e6) / ts);
}
for (const [key, name, ms] of [
  ["pv-pin", "pin L4 of 4 GiB (1048576 L1 entries)", pinCpu],
  ["pv-unpin", "unpin (demote) the same tree", unpinCpu],
] as const) {
  const cMs = Number(cp.get(key)![1]);
  row(name, `${ms.toFixed(1)} ms`, `${cMs.toFixed(1)} ms`, ms / cMs);
}
if (sink === 0.5) console.log("");
