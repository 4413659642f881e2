/*
 * The shadow-mmu bench's worlds, shared by bench/index.ts, the C reference
 * (bench/c/shadow-ref.c) and test/c-reference.test.ts: a booted machine whose one guest maps
 * PAGES pages at BASE through trapped PTE stores, every page already translated once (so its
 * shadow entries exist), and that steady state handed to the C reference as paging's own
 * fixture (../../paging/bench/fixture.ts, read by paging-ref.c's loader): all of the
 * machine's RAM (the guest and shadow tables among it), the vCPU's shadow root as the root,
 * the loop's VAs as the dense VAs and HOT as the hot pages. The world's RAM is small (4 MiB)
 * because the hypervisor allocates from the top of RAM and the fixture dumps every frame
 * from 0 up.
 */
import { fileURLToPath } from "node:url";
import { createHypervisor, type Vcpu } from "@hyperlab/core";
import { createMachine, type Machine } from "@hyperlab/machine";
import { buildCReference, type PagingFixture } from "../../paging/bench/fixture";
import { type ShadowMmu, type ShadowMmuOptions, shadowMmu } from "../src/index";

export const PAGES = 256;
export const BASE = 0x7f00_0000_0000;
/** Pages the TLB-hit loop cycles over (a power of two). */
export const HOT = 32;

export interface World {
  sh: ShadowMmu;
  v: Vcpu;
  l1: number;
  data: number[];
  machine: Machine;
}

export function world(options: ShadowMmuOptions): World {
  const machine = createMachine({ ramBytes: 4 * 2 ** 20, cpus: 1, seed: 1 });
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
  return { sh, v, l1, data, machine };
}

/** The loops' VAs (shadow-ref.c's WALK_VA and HIT_VA say the same). */
export const walkVa = (i: number): number => BASE + (i % PAGES) * 4096;
export const hitVa = (i: number): number => BASE + (i & (HOT - 1)) * 4096 + 8;

/**
 * The steady state of `w` as paging's bench fixture: every frame of its RAM, the shadow root,
 * the walk loop's PAGES VAs (walkVa) as the dense VAs and HOT as the hot pages.
 */
export function shadowPagingFixture(w: World): PagingFixture {
  const ram = w.machine.ram;
  return {
    ram,
    root: w.sh.shadowRoot(w.v),
    vas: Float64Array.from({ length: PAGES }, (_, p) => walkVa(p)),
    sparse: new Float64Array(0),
    order: new Float64Array(0),
    hot: HOT,
    denseTables: w.sh.shadowPageCount(w.v.domain),
    sparseTables: 0,
    framesUsed: ram.nrFrames,
  };
}

export const SHADOW_C_SOURCE = fileURLToPath(new URL("./c/shadow-ref.c", import.meta.url));

/**
 * Compiles shadow-ref.c with gcc -O2 into a fresh temporary directory and writes `w`'s
 * fixture next to it (paging's buildCReference); returns both paths. Throws when gcc is
 * missing or fails.
 */
export function buildShadowReference(w: World): { bin: string; fixture: string } {
  return buildCReference(shadowPagingFixture(w), SHADOW_C_SOURCE);
}
