/*
 * pv-mmu benchmarks: validated mmu_update of L1 entries, guest reads through the TLB, and
 * pinning a page-table tree that maps 4 GiB in 4 KiB pages. Prints rates; numbers depend on
 * the host. The pin, and then the same loops in a fresh world, are measured side by side with
 * the C reference (bench/c/pv-ref.c, built here with gcc -O2, fed each TypeScript world's
 * steady state and checked to compute the same results by test/c-reference.test.ts): paging's
 * bench/harness.ts runs each C loop and its TypeScript loop in turns, and the table at the
 * end puts each figure next to its C counterpart with the ratio.
 */
import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  DOMID_SELF,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_UNPIN_TABLE,
} from "@hyperlab/abi";
import {
  CTurns,
  mps,
  printTable,
  type Row,
  rowProcesses,
  sideBySide,
  timeRun,
  turns,
  writeResults,
} from "../../paging/bench/harness";
import { BATCH, buildPvReference, type PvWorld, pinWorld, pvFixtureFile, pvWorld } from "./fixture";

rowProcesses(import.meta.url);
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

const ROUNDS = 2000;
const READS = 1_000_000;

// ---- Side by side with the C reference (bench/c/pv-ref.c, gcc -O2): TS, C and TS/C by CPU
// time, each C loop and its TypeScript loop in turns (paging's bench/harness.ts).
// The binary and each world are made where a row that needs them is timed (harness.ts's
// rowProcesses).
let bin: string | null = null;
const built = () => (bin ??= buildPvReference());
const rows: Row[] = [];

// The pin: one world (4 GiB in 4 KiB pages), its fixture written before the first pin; each
// turn pins then unpins, in C then in TypeScript.
let pinW: PvWorld | null = null;
const pinOnce = () => (pinW ??= pinWorld());
const cp = new CTurns(built, () => [pvFixtureFile(pinOnce()), "pinturns", "0"]);
const pinPages = 1 << 20;
const pinRows = await turns(
  cp,
  {
    keys: ["pv-pin", "pv-unpin"],
    labels: ["pin L4 of 4 GiB (1048576 L1 entries)", "unpin (demote) the same tree"],
    unit: "ms",
    ops: [pinPages, pinPages],
  },
  () => {
    const pin = pinOnce();
    const pinOp = (cmd: number) => ({
      uops: [{ cmd, arg1: { mfn: pin.pinL4 } }],
      count: 1,
      foreigndom: DOMID_SELF,
    });
    const pinArgs = pinOp(MMUEXT_PIN_L4_TABLE);
    const unpinArgs = pinOp(MMUEXT_UNPIN_TABLE);
    return () => [
      timeRun(() => {
        const rc = pin.hv.hypercall(pin.v, __HYPERVISOR_mmuext_op, pinArgs);
        if (rc !== 0) throw new Error(`pin failed: ${rc}`);
      }),
      timeRun(() => {
        const rc = pin.hv.hypercall(pin.v, __HYPERVISOR_mmuext_op, unpinArgs);
        if (rc !== 0) throw new Error(`unpin failed: ${rc}`);
      }),
    ];
  },
);
await cp.close();
const pinMs = pinRows[0].ts.wall / 1e6;
console.log(
  `pin L4 mapping 4 GiB in 4 KiB pages (1 + 1 + 4 + 2048 tables, 1048576 entries, best of 5): ${pinMs.toFixed(1)} ms`,
);
console.log(`unpin (demote) the same tree: ${(pinRows[1].ts.wall / 1e6).toFixed(1)} ms`);
console.log(
  `validated L1 entries during the pin: ${(((pinPages / pinMs) * 1000) / 1e6).toFixed(2)} M/s`,
);

// The update and read loops, in a fresh world.
let sideW: PvWorld | null = null;
const side = () => (sideW ??= pvWorld());
const c = new CTurns(built, () => [pvFixtureFile(side()), "turns", String(READS)]);
rows.push(
  await sideBySide(c, "pv-update", "mmu_update, validated L1 entries", ROUNDS * BATCH, () =>
    updateLoop(side(), ROUNDS),
  ),
);
rows.push(
  await sideBySide(c, "pv-read-new", "guest read, a new page each (STLB hit)", READS, () =>
    newReads(side(), READS),
  ),
);
rows.push(
  await sideBySide(c, "pv-read-seq", "guest read, sequential (fast path)", 4 * READS, () =>
    seqReads(side(), 4 * READS),
  ),
);
await c.close();
// Wall-clock figures of the same runs: each loop's closure is made once (a second closure of
// the same factory over another world would share its type feedback, and V8 would no longer
// treat the world's objects as constants in either).
const [upd, fresh, seq] = rows;
console.log(
  `mmu_update validated L1 entries (batches of 512): ${mps(ROUNDS * BATCH, upd.ts.wall).toFixed(2)} M/s`,
);
console.log(
  `guest u32 reads through the TLB (a new page each read, 4 MiB working set): ${mps(READS, fresh.ts.wall).toFixed(2)} M/s`,
);
console.log(
  `guest u32 reads through the TLB (sequential): ${mps(4 * READS, seq.ts.wall).toFixed(2)} M/s`,
);
rows.push(...pinRows);
printTable(rows, { width: 40 });
writeResults(import.meta.url, "pv-mmu", rows);
if (sink === 0.5) console.log("");
