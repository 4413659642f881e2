/*
 * native-mmu benchmarks: translations per second on TLB hits (same page, the fast path;
 * page to page, full first-level lookups) and on misses (a walk each). Prints rates only.
 */
import { createHypervisor, PFEC_user_mode } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { type NativeMmu, nativeMmu } from "../src/index";

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
