import { readFileSync } from "node:fs";
import { _PAGE_PRESENT, _PAGE_RW, _PAGE_USER } from "@hyperlab/abi";
import { Ram } from "@hyperlab/machine";
import { expect, it } from "vitest";
import {
  ACCESS_READ,
  ACCESS_USER,
  ACCESS_WRITE,
  formatPte,
  makePte,
  PFEC_page_present,
  PFEC_user_mode,
  PFEC_write_access,
  pteIndex,
  pteToBigInt,
  Tlb,
  tlbStats,
  WalkResult,
  walk,
} from "../src/index";

it("runs the README example", () => {
  // --- README example: begin ---
  const ram = new Ram({ bytes: 16 * 2 ** 20 });
  const pte = new Uint32Array(2); // one reusable (lo, hi) pair

  // A 4-level table: PML4 in frame 1, PDPT in 2, PD in 3, PT in 4; the page in frame 0x100.
  const va = 0x7f00_0040_1000;
  for (let level = 4; level >= 2; level--) {
    const table = 5 - level; // 1, 2, 3
    makePte(table + 1, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER, 0, pte);
    ram.write64(table * 4096 + pteIndex(va, level) * 8, pte[0], pte[1]);
  }
  makePte(0x100, _PAGE_PRESENT | _PAGE_USER, 0, pte); // user, read-only
  ram.write64(4 * 4096 + pteIndex(va, 1) * 8, pte[0], pte[1]);

  const out = new WalkResult();
  const read = walk(ram, 1, va + 0x10, ACCESS_READ | ACCESS_USER, 4, out);
  const maddr = out.maddr; // 0x100010
  const reads = out.reads; // 4: one entry per level
  const leaf = formatPte(pteToBigInt(out.leafLo, out.leafHi), 1); // "PTE mfn=0x100 P US A"

  const write = walk(ram, 1, va, ACCESS_WRITE | ACCESS_USER, 4, out); // false: read-only
  const errorCode = out.errorCode; // PFEC_page_present | PFEC_write_access | PFEC_user_mode

  // A TLB with page-walk caches, tagged with PCID 1.
  const tlb = new Tlb();
  if (!tlb.lookup(va, 1) && walk(ram, 1, va, ACCESS_READ, 4, out, tlb.pwc, 1)) {
    tlb.insertWalk(out, 1);
  }
  const hit = tlb.lookup(va + 0x20, 1) && tlb.hitMfn; // 0x100
  tlb.invlpg(va, 1);
  const stats = tlbStats(tlb); // lookups, hits, misses, inserts, evictions, flushes
  // --- README example: end ---

  expect(read).toBe(true);
  expect(maddr).toBe(0x100010);
  expect(reads).toBe(4);
  expect(leaf).toBe("PTE mfn=0x100 P US A");
  expect(write).toBe(false);
  expect(errorCode).toBe(PFEC_page_present | PFEC_write_access | PFEC_user_mode);
  expect(hit).toBe(0x100);
  expect(stats.levels[0]).toMatchObject({ lookups: 2, hits: 1, misses: 1, inserts: 1 });
  expect(stats.invlpg).toBe(1);
  expect(stats.pwc?.lookups).toBe(1);
});

it("the README shows the same example", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
  const test = readFileSync(new URL(import.meta.url), "utf8");
  const example =
    /--- README example: begin ---\n([\s\S]*?)\n\s*\/\/ --- README example: end/.exec(test)?.[1] ??
    "";
  const norm = (s: string) =>
    s
      .replace(/import [^;]*;/g, "")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "");
  expect(norm(block)).toEqual(norm(example));
});
