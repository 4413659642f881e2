/*
 * Guest kernel benchmarks (pnpm bench): fork and exit of a process with 64 MiB touched,
 * native ops against Xen PV ops with batching on and off (hypercalls made, trap-and-emulate
 * stores, time), and the bulk access replay rate on TLB hits. Prints counts and rates; the
 * counts are facts, the times depend on the host.
 */
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import {
  bootNativeKernel,
  bootXenPvKernel,
  type GuestKernel,
  PROT_READ,
  PROT_WRITE,
  spawnProcess,
  type XenMmuOps,
} from "../src/index";

const TOUCHED = 64 << 20;
const PAGES = TOUCHED / 4096;
const NR_PAGES = PAGES + 4096;

function boot(kind: "native" | "xen", batching = true): GuestKernel {
  const machine = createMachine({ ramBytes: (NR_PAGES + 8192) * 4096, cpus: 1, seed: 1 });
  const hv = createHypervisor({
    machine,
    plugins: [kind === "native" ? nativeMmu() : pvMmu()],
  }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: NR_PAGES + 64 });
  if (kind === "native") return bootNativeKernel(hv, d, { nrPages: NR_PAGES });
  const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: NR_PAGES });
  return bootXenPvKernel(hv, d, { startInfoVa: b.rsi, batching });
}

interface Cost {
  hypercalls: number;
  multicallEntries: number;
  mmuUpdates: number;
  ptwr: number;
  ms: number;
}

function cost(k: GuestKernel, fn: () => void): Cost {
  const x = k.xen !== null ? (k.ops.mmu as XenMmuOps).counts : null;
  const h0 = x?.hypercalls ?? 0;
  const e0 = x?.multicallEntries ?? 0;
  const u0 = x?.mmuUpdateRequests ?? 0;
  const p0 = k.counts.trappingStores;
  const t0 = performance.now();
  fn();
  return {
    hypercalls: (x?.hypercalls ?? 0) - h0,
    multicallEntries: (x?.multicallEntries ?? 0) - e0,
    mmuUpdates: (x?.mmuUpdateRequests ?? 0) - u0,
    ptwr: k.counts.trappingStores - p0,
    ms: performance.now() - t0,
  };
}

function show(what: string, c: Cost): void {
  console.log(
    `${what}: ${c.hypercalls} hypercalls (${c.multicallEntries} in multicalls, ${c.mmuUpdates} mmu_update requests), ${c.ptwr} trap-and-emulate PTE stores, ${c.ms.toFixed(1)} ms`,
  );
}

console.log(`fork + exit with ${TOUCHED >> 20} MiB touched (${PAGES} pages)`);
for (const [name, kind, batching] of [
  ["native ops", "native", true],
  ["Xen PV ops, batching on", "xen", true],
  ["Xen PV ops, batching off", "xen", false],
] as const) {
  const k = boot(kind, batching);
  const p = spawnProcess(k);
  const a = p.mmap(TOUCHED, PROT_READ | PROT_WRITE);
  p.strided(a, PAGES, 4096, true, 1);
  const forked: { child: ReturnType<typeof p.fork> } = { child: -1 };
  const f = cost(k, () => {
    forked.child = p.fork();
  });
  const c = forked.child;
  if (typeof c === "number") throw new Error(`fork failed: ${c}`);
  const e = cost(k, () => c.exit(0));
  const pe = cost(k, () => p.exit(0));
  show(`  ${name}: fork`, f);
  show(`  ${name}: child exit (untouched COW pages)`, e);
  show(`  ${name}: parent exit (64 MiB)`, pe);
}

console.log("bulk access replay, TLB hits (sequential u32s over 16 pages)");
for (const kind of ["native", "xen"] as const) {
  const k = boot(kind);
  const p = spawnProcess(k);
  const a = p.mmap(16 * 4096, PROT_READ | PROT_WRITE);
  p.strided(a, 16, 4096, true, 1);
  const n = 20_000_000;
  let best = 0;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    let done = 0;
    while (done < n) done += p.strided(a, 16384, 4, false);
    best = Math.max(best, n / ((performance.now() - t0) / 1000));
  }
  console.log(
    `  ${kind === "native" ? "native MMU" : "Xen PV MMU"} replay: ${(best / 1e6).toFixed(1)} M accesses/s`,
  );
  const vas = new Float64Array(1 << 16);
  for (let i = 0; i < vas.length; i++) vas[i] = a + ((i * 2654435761) % (16 * 1024)) * 4;
  best = 0;
  for (let rep = 0; rep < 3; rep++) {
    const t0 = performance.now();
    for (let j = 0; j < 40; j++) p.accessSet(vas);
    best = Math.max(best, (40 * vas.length) / ((performance.now() - t0) / 1000));
  }
  console.log(
    `  ${kind === "native" ? "native MMU" : "Xen PV MMU"} random set over 16 pages: ${(best / 1e6).toFixed(1)} M accesses/s`,
  );
}
