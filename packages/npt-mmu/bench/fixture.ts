/*
 * The npt-mmu bench's worlds, shared by bench/index.ts, the C reference (bench/c/npt-ref.c)
 * and test/c-reference.test.ts: a booted machine whose one guest maps PAGES pages at BASE,
 * every page already backed in the nested table (the world translated each once), and the
 * file that hands that steady state (every nonzero frame of RAM: guest tables and EPT
 * tables) to the C reference.
 *
 * Fixture file (little-endian), read by paging-ref.c's loader (fixture_open, fixture_frames):
 * 32 u32 header words (magic "RFPN", RAM frames, frames dumped, guest CR3, EPT root, pages,
 * hot pages, BASE lo / hi, NXE, WP, domain id), the guest mode's 12 reserved-bit masks lo
 * then hi, the dumped frame numbers, then those frames.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHypervisor, type Vcpu } from "@hyperlab/core";
import { createMachine, type Machine } from "@hyperlab/machine";
import { scratchDir } from "../../paging/bench/fixture";
import { type NptMmu, type NptMmuOptions, nptMmu } from "../src/index";

export const PAGES = 256;
export const BASE = 0x7f00_0000_0000;
/** Pages the TLB-hit loop cycles over (a power of two). */
export const HOT = 32;

export interface NptWorld {
  npt: NptMmu;
  v: Vcpu;
  machine: Machine;
}

/** A booted world with one guest mapping PAGES pages at BASE, all backed already. */
export function world(options: NptMmuOptions, order = 0): NptWorld {
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
  return { npt, v, machine };
}

/** No TLB, no guest or nested structure caches, no nested TLB: every walk is cold. */
export const NONE: NptMmuOptions = { tlb: false, nestedPwcEntries: 0, nestedTlbEntries: 0 };

/**
 * A TLB with no 4 KiB entries (one level, one 1 GiB entry), paging's default guest structure
 * caches, 16 nested structure-cache entries per level and a 1024-entry nested TLB: every
 * translation misses the TLB and walks, with warm caches (npt-ref.c's npt-warm loop).
 */
export const WARM: NptMmuOptions = {
  tlb: { levels: [{ size1g: { sets: 1, ways: 1 } }] },
  nestedPwcEntries: 16,
  nestedTlbEntries: 1024,
};

/** The loops' VAs (npt-ref.c's COLD_VA and HIT_VA say the same). */
export const coldVa = (i: number): number => BASE + (i % PAGES) * 4096;
export const hitVa = (i: number): number => BASE + (i & (HOT - 1)) * 4096 + 8;

/** Writes the steady state of `w` (4 KiB host pages) for the C reference. */
export function writeNptFixture(w: NptWorld, path: string): void {
  const { machine, npt, v } = w;
  const ram = machine.ram;
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
    0x4e504652,
    ram.nrFrames,
    mfns.length,
    v.cr3Mfn,
    npt.eptRoot(v.domain),
    PAGES,
    HOT,
    BASE % 2 ** 32,
    Math.floor(BASE / 2 ** 32),
    npt.mode.nxe ? 1 : 0,
    npt.mode.wp ? 1 : 0,
    v.domain.domid,
  ]);
  header.set(npt.mode.rsvdLo, 32);
  header.set(npt.mode.rsvdHi, 44);
  header.set(mfns, 56);
  const frames = new Uint32Array(mfns.length * 1024);
  for (let i = 0; i < mfns.length; i++) frames.set(ram.frameWords(mfns[i], false), i * 1024);
  writeFileSync(path, Buffer.concat([header, frames].map((p) => Buffer.from(p.buffer))));
}

export const NPT_C_SOURCE = fileURLToPath(new URL("./c/npt-ref.c", import.meta.url));

/**
 * Compiles npt-ref.c with gcc -O2 into a fresh temporary directory and writes `w`'s
 * fixture next to it; returns both paths. Throws when gcc is missing or fails.
 */
export function buildNptReference(w: NptWorld): { bin: string; fixture: string } {
  const dir = scratchDir("hyperlab-npt-ref-");
  const bin = join(dir, "npt-ref");
  execFileSync("gcc", ["-O2", "-o", bin, NPT_C_SOURCE], { stdio: "inherit" });
  const fixture = join(dir, "fixture.bin");
  writeNptFixture(w, fixture);
  return { bin, fixture };
}
