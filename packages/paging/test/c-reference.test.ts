/*
 * The C reference of the paging bench (bench/c/paging-ref.c) computes what the TypeScript
 * walker, page-walk caches and TLB compute: the same translations (a checksum of every
 * machine address and frame), the same entries read and A/D writes, the same cache and TLB
 * hits, misses and evictions, over the bench's own tables and access orders. Only then is
 * the bench's TS/C ratio a comparison of one algorithm in two languages.
 */

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildCReference,
  buildFixture,
  type PagingFixture,
  removeScratchDirs,
  runCReference,
} from "../bench/fixture";
import {
  ACCESS_READ,
  ACCESS_WRITE,
  PAGING_4LEVEL,
  PageWalkCache,
  pteHi,
  pteLo,
  pwcStats,
  Tlb,
  tlbStats,
  WalkResult,
  walk,
} from "../src/index";

const N = 200_000;

/** The C reference's checksum step: FNV-1a-style over both 32-bit halves of x. */
function mix(h: number, x: number): number {
  const lo = (x % 0x1_0000_0000) >>> 0;
  const hi = Math.floor(x / 0x1_0000_0000) >>> 0;
  h = Math.imul(h ^ lo, 0x01000193) >>> 0;
  return Math.imul(h ^ hi, 0x01000193) >>> 0;
}
const hex = (h: number) => h.toString(16).padStart(8, "0");

/** The C reference's `check` run, in TypeScript, over the library's own walker and TLB. */
function checkTs(f: PagingFixture, n: number): Map<string, string[]> {
  const { ram, root, order, sparse, vas, hot } = f;
  const R = order.length - 1;
  const M = sparse.length - 1;
  const out = new WalkResult();
  const lines = new Map<string, string[]>();
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) {
    walk(ram, root, order[i & R], ACCESS_READ, PAGING_4LEVEL, out);
    h = mix(h, out.maddr);
  }
  lines.set("walk-dense", [hex(h), String(out.totalReads), String(out.totalWrites)]);
  h = 0x811c9dc5;
  for (let i = 0; i < n / 10; i++) {
    walk(ram, root, sparse[i & M], ACCESS_READ, PAGING_4LEVEL, out);
    h = mix(h, out.maddr);
  }
  lines.set("walk-sparse", [hex(h), String(out.totalReads), String(out.totalWrites)]);
  const pwc = new PageWalkCache();
  h = 0x811c9dc5;
  for (let i = 0; i < n; i++) {
    walk(ram, root, order[i & R], ACCESS_READ, PAGING_4LEVEL, out, pwc, 0);
    h = mix(mix(h, out.maddr), out.reads);
  }
  const ps = pwcStats(pwc);
  lines.set("walk-pwc", [hex(h), String(ps.misses), String(ps.pde.hits), String(ps.pdpte.hits)]);
  const tlb = new Tlb();
  for (let i = 0; i < hot; i++) {
    walk(ram, root, vas[i], ACCESS_WRITE, PAGING_4LEVEL, out);
    tlb.insertWalk(out, 1);
  }
  h = 0x811c9dc5;
  for (let i = 0; i < n; i++) {
    h = tlb.lookup(vas[i & (hot - 1)] + 8, 1) ? mix(h, tlb.hitMfn) : mix(h, 1);
  }
  const dtlb = tlbStats(tlb).levels[0];
  lines.set("tlb-hit", [hex(h), String(dtlb.hits), String(dtlb.misses)]);
  const tlb2 = new Tlb();
  h = 0x811c9dc5;
  for (let i = 0; i < n / 2; i++) {
    const va = order[i & R];
    if (tlb2.lookup(va, 1)) h = mix(h, tlb2.hitMfn);
    else if (walk(ram, root, va, ACCESS_READ, PAGING_4LEVEL, out, tlb2.pwc, 1)) {
      tlb2.insertWalk(out, 1);
      h = mix(h, out.pageMfn * 2 + 1);
    }
  }
  const s2 = tlbStats(tlb2);
  lines.set("tlb-miss", [
    hex(h),
    String(s2.levels[0].hits),
    String(s2.levels[1].hits),
    String(s2.levels[1].evictions),
    String(s2.pwc!.misses),
  ]);
  return lines;
}

describe("the C reference of the paging bench", () => {
  let ref: { bin: string; fixture: string };
  let c: Map<string, string[]>;

  afterAll(removeScratchDirs);
  beforeAll(() => {
    const f = buildFixture();
    ref = buildCReference(f);
    c = runCReference(ref.bin, ref.fixture, "check", N);
  }, 120_000);

  it("translates, counts and caches exactly as the TypeScript walker, PWC and TLB", () => {
    const ts = checkTs(buildFixture(), N);
    expect([...c.keys()]).toEqual(["walk-dense", "walk-sparse", "walk-pwc", "tlb-hit", "tlb-miss"]);
    for (const [name, fields] of ts)
      expect({ name, fields: c.get(name) }).toEqual({ name, fields });
    // The runs did real work: every dense walk read 4 entries, the caches both hit and
    // missed, and the STLB evicted (the dense working set is larger than it).
    expect(Number(c.get("walk-dense")![1])).toBe(4 * N);
    const pwcLine = c.get("walk-pwc")!.map(Number);
    expect(pwcLine[1]).toBeGreaterThan(0);
    expect(pwcLine[2]).toBeGreaterThan(0);
    expect(Number(c.get("tlb-hit")![1])).toBe(N);
    expect(Number(c.get("tlb-miss")![3])).toBeGreaterThan(0);
  });

  it("notices one changed page-table entry (the checksum is not blind)", () => {
    const f = buildFixture();
    // Remap the first dense page to another frame after the C side's fixture was written.
    const leafMa = (() => {
      const out = new WalkResult();
      walk(f.ram, f.root, f.vas[0], ACCESS_READ, PAGING_4LEVEL, out);
      return out.entryMaddr[1];
    })();
    f.ram.write64(leafMa, pteLo(0x3_0000, 0x27), pteHi(0x3_0000, 0));
    const ts = checkTs(f, N);
    expect(ts.get("walk-dense")![0]).not.toBe(c.get("walk-dense")![0]);
  });

  it("refuses a file that is not a fixture", () => {
    const bad = join(ref.fixture, "..", "bad.bin");
    writeFileSync(bad, Buffer.alloc(4 * 64));
    expect(() => execFileSync(ref.bin, [bad, "check", "10"], { stdio: "pipe" })).toThrow(
      /not a fixture/,
    );
  });
});
