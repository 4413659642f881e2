/*
 * The C reference of npt-mmu's translate (bench/c/npt-ref.c) computes what NptMmu computes
 * on the bench's world: the same machine addresses (a checksum of every translation) and the
 * same counters (TLB hits and misses, 2D walks, guest and nested entries read, guest A/D
 * writes, guest and nested structure-cache hits, nested TLB hits and misses) over cold
 * two-dimensional walks, combined-TLB hits and warm walks (TLB misses through warm guest and
 * nested structure caches and the nested TLB). Only then is the bench's TS/C ratio a
 * comparison of one algorithm in two languages.
 */

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeScratchDirs, runCReference } from "../../paging/bench/fixture";
import {
  buildNptReference,
  coldVa,
  hitVa,
  NONE,
  type NptWorld,
  WARM,
  world,
} from "../bench/fixture";

const N = 100_000;

/** The C reference's checksum step: FNV-1a-style over both 32-bit halves of x. */
function mix(h: number, x: number): number {
  const lo = (x % 0x1_0000_0000) >>> 0;
  const hi = Math.floor(x / 0x1_0000_0000) >>> 0;
  h = Math.imul(h ^ lo, 0x01000193) >>> 0;
  return Math.imul(h ^ hi, 0x01000193) >>> 0;
}
const hex = (h: number) => h.toString(16).padStart(8, "0");

/** The counters npt-ref prints, in its column order. */
function snapshot(w: NptWorld): number[] {
  const c = w.npt.counts;
  return [
    c.tlbHits,
    c.tlbMisses,
    c.walks,
    c.guestRefs,
    c.nestedRefs,
    c.guestAdWrites,
    c.guestPwcHits,
    c.nestedPwcHits,
    c.nestedTlbHits,
    c.nestedTlbMisses,
  ];
}
/** Counters since `base`, in npt-ref's column order. */
function line(w: NptWorld, h: number, base: number[]): string[] {
  return [hex(h), ...snapshot(w).map((x, i) => String(x - base[i]))];
}

/** npt-ref's `check` run, in TypeScript, over NptMmu itself. */
function checkTs(cold: NptWorld, hit: NptWorld, warm: NptWorld, n: number): Map<string, string[]> {
  const lines = new Map<string, string[]>();
  let base = snapshot(cold);
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = mix(h, cold.npt.translate(cold.v, coldVa(i), 0));
  lines.set("npt-cold", line(cold, h, base));
  base = snapshot(hit);
  h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = mix(h, hit.npt.translate(hit.v, hitVa(i), 0));
  lines.set("npt-hit", line(hit, h, base));
  base = snapshot(warm);
  h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = mix(h, warm.npt.translate(warm.v, coldVa(i), 0));
  lines.set("npt-warm", line(warm, h, base));
  return lines;
}

describe("the C reference of npt-mmu's translate", () => {
  let ref: { bin: string; fixture: string };
  let c: Map<string, string[]>;

  afterAll(removeScratchDirs);
  beforeAll(() => {
    ref = buildNptReference(world(NONE));
    c = runCReference(ref.bin, ref.fixture, "check", N);
  }, 120_000);

  it("walks both dimensions and hits the TLB exactly as NptMmu", () => {
    const ts = checkTs(world(NONE), world({}), world(WARM), N);
    expect([...c.keys()]).toEqual(["npt-cold", "npt-hit", "npt-warm"]);
    for (const [name, fields] of ts)
      expect({ name, fields: c.get(name) }).toEqual({ name, fields });
    // Every cold translation is one 2D walk of 4 guest and 4 x 5 nested references (24);
    // every hot one a TLB hit.
    const cold = c.get("npt-cold")!.map((x) => Number.parseInt(x, 10));
    expect(cold.slice(1)).toEqual([0, N, N, 4 * N, 20 * N, 0, 0, 0, 0, 0]);
    const hit = c.get("npt-hit")!.map((x) => Number.parseInt(x, 10));
    expect(hit.slice(1, 3)).toEqual([N, 0]);
    // Every warm translation misses the TLB and walks one guest level from the PDE cache,
    // with the nested TLB translating that table's gfn and the data gfn.
    const warm = c.get("npt-warm")!.map((x) => Number.parseInt(x, 10));
    expect(warm.slice(1)).toEqual([0, N, N, N, 0, 0, N, 0, 2 * N, 0]);
  });

  it("notices one changed EPT entry (the checksum is not blind)", () => {
    const w = world(NONE);
    // Point the nested leaf of the first page's data frame at another frame.
    const gfn = Math.floor(w.npt.translate(w.v, coldVa(0), 0) / 4096);
    const root = w.npt.eptRoot(w.v.domain);
    let table = root;
    for (let L = 4; L > 1; L--) {
      const a = table * 4096 + (Math.floor(gfn / 512 ** (L - 1)) % 512) * 8;
      table = w.machine.ram.read64lo(a) >>> 12;
    }
    const leaf = table * 4096 + (gfn % 512) * 8;
    const lo = w.machine.ram.read64lo(leaf);
    w.machine.ram.write64(leaf, (lo + 4096) >>> 0, 0);
    const ts = checkTs(w, world({}), world(WARM), N);
    expect(ts.get("npt-cold")![0]).not.toBe(c.get("npt-cold")![0]);
  });

  it("refuses a file that is not a fixture", () => {
    const bad = `${ref.fixture}.bad`;
    writeFileSync(bad, Buffer.alloc(256));
    expect(() => execFileSync(ref.bin, [bad, "check", "10"], { stdio: "pipe" })).toThrow(
      /not a fixture/,
    );
  });
});
