/*
 * The C reference of shadow-mmu's translate (bench/c/shadow-ref.c) computes what ShadowMmu
 * computes once the shadows are built: the same machine addresses (a checksum of every
 * translation) and the same counters (TLB hits and misses, walks, shadow entries read) over
 * hardware walks of the shadow tables and TLB hits. Only then is the bench's TS/C ratio a
 * comparison of one algorithm in two languages.
 */

import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeScratchDirs, runCReference } from "../../paging/bench/fixture";
import { buildShadowReference, hitVa, type World, walkVa, world } from "../bench/fixture";

const N = 100_000;

/** The C reference's checksum step: FNV-1a-style over both 32-bit halves of x. */
function mix(h: number, x: number): number {
  const lo = (x % 0x1_0000_0000) >>> 0;
  const hi = Math.floor(x / 0x1_0000_0000) >>> 0;
  h = Math.imul(h ^ lo, 0x01000193) >>> 0;
  return Math.imul(h ^ hi, 0x01000193) >>> 0;
}
const hex = (h: number) => h.toString(16).padStart(8, "0");

function snapshot(w: World): number[] {
  const c = w.sh.counts;
  return [c.tlbHits, c.tlbMisses, c.walks, c.shadowRefs];
}
const line = (w: World, h: number, base: number[]): string[] => [
  hex(h),
  ...snapshot(w).map((x, i) => String(x - base[i])),
];

/** shadow-ref's `check` run, in TypeScript, over ShadowMmu itself. */
function checkTs(noTlb: World, hit: World, n: number): Map<string, string[]> {
  const lines = new Map<string, string[]>();
  let base = snapshot(noTlb);
  let h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = mix(h, noTlb.sh.translate(noTlb.v, walkVa(i), 0));
  lines.set("shadow-walk", line(noTlb, h, base));
  base = snapshot(hit);
  h = 0x811c9dc5;
  for (let i = 0; i < n; i++) h = mix(h, hit.sh.translate(hit.v, hitVa(i), 0));
  lines.set("shadow-hit", line(hit, h, base));
  return lines;
}

describe("the C reference of shadow-mmu's translate", () => {
  let ref: { bin: string; fixture: string };
  let c: Map<string, string[]>;

  afterAll(removeScratchDirs);
  beforeAll(() => {
    ref = buildShadowReference(world({ tlb: false }));
    c = runCReference(ref.bin, ref.fixture, "check", N);
  }, 120_000);

  it("walks the shadow tables and hits the TLB exactly as ShadowMmu", () => {
    const ts = checkTs(world({ tlb: false }), world({}), N);
    expect([...c.keys()]).toEqual(["shadow-walk", "shadow-hit"]);
    for (const [name, fields] of ts)
      expect({ name, fields: c.get(name) }).toEqual({ name, fields });
    // Every walk reads the 4 shadow levels; every hot translation is a TLB hit.
    const walkLine = c.get("shadow-walk")!.map((x) => Number.parseInt(x, 10));
    expect(walkLine.slice(1)).toEqual([0, N, N, 4 * N]);
    const hit = c.get("shadow-hit")!.map((x) => Number.parseInt(x, 10));
    expect(hit.slice(1)).toEqual([N, 0, 0, 0]);
  });

  it("notices one changed shadow entry (the checksum is not blind)", () => {
    const w = world({ tlb: false });
    // Point the first page's shadow L1 entry at the next frame.
    const ram = w.machine.ram;
    let table = w.sh.shadowRoot(w.v);
    const va = walkVa(0);
    for (let L = 4; L > 1; L--)
      table =
        ram.read64lo(table * 4096 + (Math.floor(va / 2 ** (12 + 9 * (L - 1))) % 512) * 8) >>> 12;
    const leaf = table * 4096 + (Math.floor(va / 4096) % 512) * 8;
    ram.write64(leaf, (ram.read64lo(leaf) + 4096) >>> 0, ram.read64hi(leaf));
    const ts = checkTs(w, world({}), N);
    expect(ts.get("shadow-walk")![0]).not.toBe(c.get("shadow-walk")![0]);
  });

  it("refuses a file that is not a fixture", () => {
    const bad = `${ref.fixture}.bad`;
    writeFileSync(bad, Buffer.alloc(256));
    expect(() => execFileSync(ref.bin, [bad, "check", "10"], { stdio: "pipe" })).toThrow(
      /not a fixture/,
    );
  });
});
