/*
 * Rates of shadow paging, in millions per second: TLB hits, TLB misses served by a hardware
 * walk of the shadow tables (4 references), and the write-protection cycle (a trapped guest
 * PTE store that zaps the shadow entry, then the shadow page fault that refills it). Each
 * figure is one loop timed with process.hrtime.bigint() after an untimed warm-up.
 */
import { createHypervisor, type Vcpu } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { type ShadowMmu, type ShadowMmuOptions, shadowMmu } from "../src/index";

let sink = 0;

function measure(name: string, ops: number, loop: () => void): void {
  loop();
  const t0 = process.hrtime.bigint();
  loop();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`${name}: ${(ops / (ns / 1e3)).toFixed(2)} M/s`);
}

const PAGES = 256;
const BASE = 0x7f00_0000_0000;

interface World {
  sh: ShadowMmu;
  v: Vcpu;
  l1: number;
  data: number[];
}

function world(options: ShadowMmuOptions): World {
  const machine = createMachine({ ramBytes: 256 * 2 ** 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [shadowMmu(options)] }).boot();
  const sh = hv.slot("shadow-mmu");
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 4096 });
  const alloc = () => {
    const f = hv.allocDomainPages(d, 0);
    machine.ram.clearFrame(f);
    return f;
  };
  const v = d.vcpus[0];
  const cr3 = alloc();
  let l1 = -1;
  const data: number[] = [];
  for (let p = 0; p < PAGES; p++) {
    const va = BASE + p * 4096;
    let table = cr3;
    for (let L = 4; L > 1; L--) {
      const a = table * 4096 + (Math.floor(va / 2 ** (12 + 9 * (L - 1))) % 512) * 8;
      const lo = machine.ram.read64lo(a);
      if ((lo & 1) === 0) {
        const t = alloc();
        sh.guestStore(v, a, (t * 4096 + 7) >>> 0, 0);
        table = t;
      } else table = lo >>> 12;
    }
    l1 = table;
    const f = alloc();
    data.push(f);
    sh.guestStore(v, table * 4096 + (p % 512) * 8, (f * 4096 + 7) >>> 0, 0);
  }
  v.cr3Mfn = cr3;
  for (let p = 0; p < PAGES; p++) sh.translate(v, BASE + p * 4096, 0);
  return { sh, v, l1, data };
}

{
  const { sh, v } = world({});
  const N = 5_000_000;
  measure("shadow translate, TLB hit", N, () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += sh.translate(v, BASE + (i & 31) * 4096 + 8, 0);
    sink += s;
  });
}
{
  const { sh, v } = world({ tlb: false });
  const N = 2_000_000;
  measure("shadow TLB miss, hardware walk (4 refs)", N, () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += sh.translate(v, BASE + (i % PAGES) * 4096, 0);
    sink += s;
  });
}
{
  const { sh, v, l1, data } = world({});
  const N = 300_000;
  measure("shadow PTE store trap + propagation + refill fault (pairs)", N, () => {
    let s = 0;
    for (let i = 0; i < N; i++) {
      const p = i % PAGES;
      const f = data[(i * 7) % PAGES];
      sh.guestStore(v, l1 * 4096 + p * 8, (f * 4096 + 7) >>> 0, 0);
      s += sh.translate(v, BASE + p * 4096, 0);
    }
    sink += s;
  });
  console.log(
    `  emulated writes: ${sh.counts.emulatedWrites}, shadow faults fixed: ${sh.counts.shadowFaultsFixed}`,
  );
}
if (sink === 42) console.log("");
