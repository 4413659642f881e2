/*
 * The C reference of native-mmu's translate (bench/c/native-ref.c) computes what NativeMmu
 * computes over the bench's fixture: the same machine addresses (a checksum of every
 * translation), the same NativeMmu counters (translations, TLB hits and misses, walks, entries
 * read and A/D writes) and the same first-level TLB lookups and hits (which the fast path
 * counts without searching), loop by loop. Only then is the bench's TS/C ratio a comparison of
 * one algorithm in two languages.
 */

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { PFEC_user_mode } from "@hyperlab/core";
import { ACCESS_READ, PAGING_4LEVEL, pteHi, pteLo, WalkResult, walk } from "@hyperlab/paging";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCReference, removeScratchDirs, runCReference } from "../../paging/bench/fixture";
import {
  buildNativeFixture,
  fastVa,
  missVa,
  NATIVE_C_SOURCE,
  type NativeFixture,
  rrVa,
} from "../bench/fixture";

const N = 200_000;

/** The C reference's checksum step: FNV-1a-style over both 32-bit halves of x. */
function mix(h: number, x: number): number {
  const lo = (x % 0x1_0000_0000) >>> 0;
  const hi = Math.floor(x / 0x1_0000_0000) >>> 0;
  h = Math.imul(h ^ lo, 0x01000193) >>> 0;
  return Math.imul(h ^ hi, 0x01000193) >>> 0;
}
const hex = (h: number) => h.toString(16).padStart(8, "0");

/** native-ref's `check` run, in TypeScript, over NativeMmu itself. */
function checkTs(nf: NativeFixture, n: number): Map<string, string[]> {
  const { fx, mmu, v } = nf;
  const lines = new Map<string, string[]>();
  const line = (name: string, h: number) => {
    const c = mmu.counts;
    const tc = mmu.tlbOf(v).counters;
    lines.set(
      name,
      [
        hex(h),
        c.translations,
        c.tlbHits,
        c.tlbMisses,
        c.walks,
        c.walkReads,
        c.walkWrites,
        tc[0],
        tc[1],
      ].map(String),
    );
  };
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = mix(h, mmu.translate(v, fastVa(fx, i), PFEC_user_mode));
  line("native-fast", h);
  h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = mix(h, mmu.translate(v, rrVa(fx, i), PFEC_user_mode));
  line("native-rr", h);
  h = 0x811c9dc5;
  for (let i = 0; i < n / 2; i++) h = mix(h, mmu.translate(v, missVa(fx, i), PFEC_user_mode));
  line("native-miss", h);
  return lines;
}

describe("the C reference of native-mmu's translate", () => {
  let ref: { bin: string; fixture: string };
  let c: Map<string, string[]>;

  afterAll(removeScratchDirs);
  beforeAll(() => {
    ref = buildCReference(buildNativeFixture().fx, NATIVE_C_SOURCE);
    c = runCReference(ref.bin, ref.fixture, "check", N);
  }, 120_000);

  it("translates and counts exactly as NativeMmu, fast path, TLB and walks alike", () => {
    const ts = checkTs(buildNativeFixture(), N);
    expect([...c.keys()]).toEqual(["native-fast", "native-rr", "native-miss"]);
    for (const [name, fields] of ts)
      expect({ name, fields: c.get(name) }).toEqual({ name, fields });
    const fast = c.get("native-fast")!.map((x) => Number.parseInt(x, 10));
    const rr = c.get("native-rr")!.map((x) => Number.parseInt(x, 10));
    const miss = c.get("native-miss")!.map((x) => Number.parseInt(x, 10));
    // The runs took every path: the fast loop is nearly all fast-path hits (one walk per new
    // page, 1024 translations a page), the round robin hits the TLB after its 16 first walks,
    // and the random loop misses the TLB and walks (4 entries a walk, less the PWC's hits).
    expect(fast[1]).toBe(N);
    expect(fast[4]).toBe(Math.min(32, Math.ceil(N / 1024)));
    expect(rr[2] - fast[2]).toBe(N);
    expect(rr[4]).toBe(fast[4]); // vas[0..15] were already walked by the fast loop
    expect(miss[3] - rr[3]).toBeGreaterThan(N / 4);
    expect(miss[5] - rr[5]).toBeGreaterThan(miss[4] - rr[4]);
    // No fault: every translation answered a machine address (a fault would mix in -1).
    expect(miss[2] + miss[3]).toBe(miss[1]);
  });

  it("notices one changed page-table entry (the checksum is not blind)", () => {
    const nf = buildNativeFixture();
    const out = new WalkResult();
    walk(nf.fx.ram, nf.fx.root, nf.fx.vas[0], ACCESS_READ, PAGING_4LEVEL, out);
    nf.fx.ram.write64(out.entryMaddr[1], pteLo(0x3_0000, 0x27), pteHi(0x3_0000, 0));
    const ts = checkTs(nf, N);
    expect(ts.get("native-fast")![0]).not.toBe(c.get("native-fast")![0]);
  });

  it("refuses a file that is not a fixture", () => {
    const bad = `${ref.fixture}.bad`;
    writeFileSync(bad, Buffer.alloc(256));
    expect(() => execFileSync(ref.bin, [bad, "check", "10"], { stdio: "pipe" })).toThrow(
      /not a fixture/,
    );
  });
});
