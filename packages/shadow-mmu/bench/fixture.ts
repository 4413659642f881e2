/*
 * The shadow-mmu bench's worlds, shared by bench/index.ts, the C reference
 * (bench/c/shadow-ref.c) and test/c-reference.test.ts: a booted machine whose one guest maps
 * PAGES pages at BASE through trapped PTE stores, every page already translated once (so its
 * shadow entries exist), and the file that hands that steady state (every nonzero frame of
 * RAM, the shadow tables among them, and the vCPU's shadow root) to the C reference.
 *
 * Fixture file (little-endian): 32 u32 header words (magic "RFHS", RAM frames, frames
 * dumped, shadow root, pages, hot pages, BASE lo / hi, NXE, WP), the 4-level mode's 12
 * reserved-bit masks lo then hi, the dumped frame numbers, then those frames.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHypervisor, type Vcpu } from "@hyperlab/core";
import { createMachine, type Machine } from "@hyperlab/machine";
import { PAGING_4LEVEL } from "@hyperlab/paging";
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
  return { sh, v, l1, data, machine };
}

/** The loops' VAs (shadow-ref.c's WALK_VA and HIT_VA say the same). */
export const walkVa = (i: number): number => BASE + (i % PAGES) * 4096;
export const hitVa = (i: number): number => BASE + (i & (HOT - 1)) * 4096 + 8;

/** Writes the steady state of `w` for the C reference. */
export function writeShadowFixture(w: World, path: string): void {
  const ram = w.machine.ram;
  const mfns: number[] = [];
  for (let mfn = 0; mfn < ram.nrFrames; mfn++) {
    const f = ram.frameWords(mfn, false);
    for (let i = 0; i < f.length; i++) {
      if (f[i] !== 0) {
        mfns.push(mfn);
        break;
      }
    }
  }
  const header = new Uint32Array(32 + 24 + mfns.length);
  header.set([
    0x53484652,
    ram.nrFrames,
    mfns.length,
    w.sh.shadowRoot(w.v),
    PAGES,
    HOT,
    BASE % 2 ** 32,
    Math.floor(BASE / 2 ** 32),
    PAGING_4LEVEL.nxe ? 1 : 0,
    PAGING_4LEVEL.wp ? 1 : 0,
  ]);
  header.set(PAGING_4LEVEL.rsvdLo, 32);
  header.set(PAGING_4LEVEL.rsvdHi, 44);
  header.set(mfns, 56);
  const frames = new Uint32Array(mfns.length * 1024);
  for (let i = 0; i < mfns.length; i++) frames.set(ram.frameWords(mfns[i], false), i * 1024);
  writeFileSync(path, Buffer.concat([header, frames].map((p) => Buffer.from(p.buffer))));
}

export const SHADOW_C_SOURCE = fileURLToPath(new URL("./c/shadow-ref.c", import.meta.url));

/**
 * Compiles shadow-ref.c with gcc -O2 into a fresh temporary directory and writes `w`'s
 * fixture next to it; returns both paths. Throws when gcc is missing or fails.
 */
export function buildShadowReference(w: World): { bin: string; fixture: string } {
  const dir = mkdtempSync(join(tmpdir(), "hyperlab-shadow-ref-"));
  const bin = join(dir, "shadow-ref");
  execFileSync("gcc", ["-O2", "-o", bin, SHADOW_C_SOURCE], { stdio: "inherit" });
  const fixture = join(dir, "fixture.bin");
  writeShadowFixture(w, fixture);
  return { bin, fixture };
}
