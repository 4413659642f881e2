/*
 * Rates of nested-paging translation, in millions per second: TLB hits, cold
 * two-dimensional walks (no caches, so each is n*m + n + m references), walks with the
 * structure caches and nested TLB warm, and cold walks over 2 MiB host pages. Each figure is
 * one loop timed with process.hrtime.bigint() after an untimed warm-up of the same loop.
 */
import { createHypervisor, type Vcpu } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { type NptMmu, type NptMmuOptions, nptMmu } from "../src/index";

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

/** A booted world with one guest mapping PAGES pages at BASE, all backed already. */
function world(options: NptMmuOptions, order = 0): { npt: NptMmu; v: Vcpu } {
  const machine = createMachine({ ramBytes: 256 * 2 ** 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nptMmu(options)] }).boot();
  const npt = hv.slot("npt-mmu");
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 4096 });
  const frames: number[] = [];
  while (frames.length < 1024) {
    const mfn = hv.allocDomainPages(d, order);
    for (let i = 0; i < 2 ** order; i++) frames.push(mfn + i);
  }
  let next = 0;
  const alloc = () => {
    const f = frames[next++];
    machine.ram.clearFrame(f);
    return f;
  };
  const cr3 = alloc();
  for (let p = 0; p < PAGES; p++) {
    const va = BASE + p * 4096;
    let table = cr3;
    for (let L = 4; L > 1; L--) {
      const a = table * 4096 + (Math.floor(va / 2 ** (12 + 9 * (L - 1))) % 512) * 8;
      const lo = machine.ram.read64lo(a);
      if ((lo & 1) === 0) {
        const t = alloc();
        machine.ram.write64(a, (t * 4096 + 7) >>> 0, 0);
        table = t;
      } else table = lo >>> 12;
    }
    machine.ram.write64(table * 4096 + (p % 512) * 8, (alloc() * 4096 + 7) >>> 0, 0);
  }
  const v = d.vcpus[0];
  v.cr3Mfn = cr3;
  for (let p = 0; p < PAGES; p++) npt.translate(v, BASE + p * 4096, 0);
  return { npt, v };
}

const NONE: NptMmuOptions = { tlb: false, nestedPwcEntries: 0, nestedTlbEntries: 0 };
/** A TLB with no 4 KiB entries: every translation misses it and walks, with warm caches. */
const TLB_MISSES: NptMmuOptions = {
  tlb: { levels: [{ size1g: { sets: 1, ways: 1 } }] },
  nestedTlbEntries: 1024,
};

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
  ["npt TLB miss, warm PWC + nested TLB", TLB_MISSES, 0],
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
if (sink === 42) console.log("");
