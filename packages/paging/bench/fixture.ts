/*
 * The paging bench's inputs, built once from a seeded PRNG and shared by the TypeScript
 * bench, the C reference (bench/c/paging-ref.c, which reads them from a file written by
 * writeFixture) and test/c-reference.test.ts, so that both implementations walk the same
 * tables with the same VAs in the same order.
 *
 * Fixture file (little-endian): 32 u32 header words (magic "RFGP", RAM frames, frames
 * dumped, root frame, dense / sparse / order counts, hot pages, NXE, WP), the mode's 12
 * reserved-bit masks lo then hi, the first `dumped` frames of RAM (every page table), then
 * the dense VAs, sparse VAs and access order as float64.
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { _PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER } from "@hyperlab/abi";
import { createPrng, Ram } from "@hyperlab/machine";
import { PAGING_4LEVEL, pteHi, pteIndex, pteLo, pteMfn } from "../src/index";

export interface PagingFixture {
  ram: Ram;
  root: number;
  /** Dense: PAGES pages in 4 regions of 16 MiB under 4 L4 slots. */
  vas: Float64Array;
  /** Sparse: PAGES pages over 64 clusters of 512 MiB (thousands of tables). */
  sparse: Float64Array;
  /** 2^20 random byte addresses in the dense pages. */
  order: Float64Array;
  /** Pages the dTLB hit loop cycles over. */
  hot: number;
  denseTables: number;
  sparseTables: number;
  /** Frames 1 .. framesUsed-1 hold every page table. */
  framesUsed: number;
}

const FLAGS = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED;
export const PAGES = 1 << 14;

/** Builds the trees and access orders from seed 7 (the bench's). */
export function buildFixture(): PagingFixture {
  const ram = new Ram({ bytes: 1 << 30 });
  let nextFrame = 1;
  const root = nextFrame++;
  const map = (va: number, mfn: number): void => {
    let table = root;
    for (let level = 4; level > 1; level--) {
      const ma = table * 4096 + pteIndex(va, level) * 8;
      let lo = ram.read64lo(ma);
      if ((lo & 1) === 0) {
        const t = nextFrame++;
        lo = pteLo(t, FLAGS);
        ram.write64(ma, lo, pteHi(t, 0));
      }
      table = pteMfn(lo, ram.read64hi(ma));
    }
    ram.write64(table * 4096 + pteIndex(va, 1) * 8, pteLo(mfn, FLAGS), pteHi(mfn, 0));
  };
  const prng = createPrng(7);
  const vas = new Float64Array(PAGES);
  for (let i = 0; i < PAGES; i++) {
    vas[i] = (i >>> 12) * 0x1234_0000_0000 + 0x40_0000 + (i & 0xfff) * 4096;
    map(vas[i], 0x10000 + i);
  }
  const denseTables = nextFrame - 1;
  const sparse = new Float64Array(PAGES);
  for (let i = 0; i < PAGES; i++) {
    const cluster = prng.nextInt(64);
    const base = (cluster * 0x7_3f1e_5000 + 0x1000_0000) % 2 ** 47;
    sparse[i] = Math.floor(base / 4096) * 4096 + prng.nextInt(256 * 512) * 4096;
    map(sparse[i], 0x20000 + i);
  }
  const order = new Float64Array(1 << 20);
  for (let i = 0; i < order.length; i++) {
    order[i] = vas[prng.nextInt(PAGES)] + prng.nextInt(512) * 8;
  }
  return {
    ram,
    root,
    vas,
    sparse,
    order,
    hot: 32,
    denseTables,
    sparseTables: nextFrame - 1 - denseTables,
    framesUsed: nextFrame,
  };
}

/** Writes the fixture file the C reference reads (call before any walk sets A/D bits). */
export function writeFixture(f: PagingFixture, path: string): void {
  const header = new Uint32Array(32 + 24);
  header.set([
    0x50474652,
    f.ram.nrFrames,
    f.framesUsed,
    f.root,
    f.vas.length,
    f.sparse.length,
    f.order.length,
    f.hot,
    PAGING_4LEVEL.nxe ? 1 : 0,
    PAGING_4LEVEL.wp ? 1 : 0,
  ]);
  header.set(PAGING_4LEVEL.rsvdLo, 32);
  header.set(PAGING_4LEVEL.rsvdHi, 44);
  const frames = new Uint32Array(f.framesUsed * 1024);
  // frameWords hands out exactly one frame's 1024 words.
  for (let mfn = 0; mfn < f.framesUsed; mfn++) frames.set(f.ram.frameWords(mfn, false), mfn * 1024);
  const parts = [header, frames, f.vas, f.sparse, f.order];
  writeFileSync(
    path,
    Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))),
  );
}

const scratch = new Set<string>();

/**
 * A fresh temporary directory (`prefix` plus random letters under the OS's temporary
 * directory) for a C reference's binary and fixture, removed by removeScratchDirs: every
 * bench run and test run builds its own, several MiB each, and they used to be left behind
 * by the hundred. A bench removes them when its process exits; a test file calls
 * removeScratchDirs in afterAll (vitest ends its workers without an exit event).
 */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (scratch.size === 0) process.once("exit", removeScratchDirs);
  scratch.add(dir);
  return dir;
}

/** Removes every directory scratchDir made in this process (or test file). */
export function removeScratchDirs(): void {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
  scratch.clear();
}

export const C_SOURCE = fileURLToPath(new URL("./c/paging-ref.c", import.meta.url));

/**
 * Compiles a C reference (paging's own, or another package's bench/c/*.c that includes it)
 * with gcc -O2 into a fresh temporary directory and writes the fixture next to it; returns
 * both paths. Throws when gcc is missing or fails.
 */
export function buildCReference(
  f: PagingFixture,
  source: string = C_SOURCE,
): { bin: string; fixture: string } {
  const dir = scratchDir("hyperlab-paging-ref-");
  const bin = join(dir, "ref");
  execFileSync("gcc", ["-O2", "-o", bin, source], { stdio: "inherit" });
  const fixture = join(dir, "fixture.bin");
  writeFixture(f, fixture);
  return { bin, fixture };
}

/** Runs the C reference (`bench` or `check`) for `n` operations; its lines split on tabs. */
export function runCReference(
  bin: string,
  fixture: string,
  what: "bench" | "check",
  n: number,
): Map<string, string[]> {
  const text = execFileSync(bin, [fixture, what, String(n)], { encoding: "utf8" });
  const lines = new Map<string, string[]>();
  for (const line of text.trim().split("\n")) {
    const [name, ...rest] = line.split("\t");
    lines.set(name, rest);
  }
  return lines;
}
