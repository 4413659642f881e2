// The entry arithmetic of pte.ts (entryFrame, entryLo, entryHi) against the `%` forms it
// replaced, over every value an entry can have: what RAM's read64 returns for any two 32-bit
// halves (hi * 2^32 + lo, up to 2^64, rounded above 2^53), what the kernel builds, and, so no
// input is left out, any double at all (negative, fractional, huge, NaN, infinities). The
// results must be the same number; only a -0 of the old form may read +0. Also process.ts's
// inline alignment test of a user address.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { entryFrame, entryHi, entryLo } from "../src/pte";

const oldFrame = (e: number) => Math.floor(e / 4096) % 2 ** 40;
const oldLo = (e: number) => e % 2 ** 32;
const oldHi = (e: number) => Math.floor(e / 2 ** 32);

/** Same number (NaN equals NaN; -0 equals +0, the one difference the rewrite may make). */
function same(a: number, b: number): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

function check(e: number): void {
  const f = entryFrame(e);
  const lo = entryLo(e);
  const hi = entryHi(e);
  if (!same(f, oldFrame(e)) || !same(lo, oldLo(e)) || !same(hi, oldHi(e))) {
    expect({ e, f, lo, hi }).toEqual({ e, f: oldFrame(e), lo: oldLo(e), hi: oldHi(e) });
  }
  // What a store writes: the same two 32-bit words.
  const w = new Uint32Array([lo, hi, oldLo(e), oldHi(e)]);
  expect([w[0], w[1]]).toEqual([w[2], w[3]]);
}

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });

describe("entry arithmetic without a float modulo", () => {
  it("equals the % forms on every read64 value (two 32-bit halves, up to 2^64)", () => {
    fc.assert(
      fc.property(u32, u32, (hi, lo) => {
        check(hi * 2 ** 32 + lo);
      }),
      { numRuns: 20_000 },
    );
  });

  it("equals the % forms on entries the kernel builds (frame * 4096 + flags, any 52 bits)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 - 1 }),
        fc.integer({ min: 0, max: 4095 }),
        (f, fl) => {
          const e = f * 4096 + fl;
          check(e);
          expect(entryFrame(e)).toBe(f);
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it("equals the % forms on any safe integer and any double", () => {
    fc.assert(fc.property(fc.maxSafeInteger(), check), { numRuns: 20_000 });
    fc.assert(fc.property(fc.double(), check), { numRuns: 20_000 });
  });

  it("equals the % forms at the edges", () => {
    const edges = [
      0,
      -0,
      1,
      4095,
      4096,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 32 + 1,
      2 ** 52 - 1,
      2 ** 52,
      2 ** 52 + 4096,
      2 ** 53 - 1,
      2 ** 53,
      2 ** 53 + 2,
      2 ** 63,
      2 ** 64 - 2048,
      2 ** 64,
      2 ** 65,
      2 ** 1023,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      -1,
      -4096,
      -(2 ** 52),
      -(2 ** 64),
      0.5,
      4096.5,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
    ];
    for (const e of edges) check(e);
  });

  it("process.ts's alignment test equals `a % 4 === 0` on every address it sees (0 <= a < 2^47)", () => {
    const aligned = (a: number) => Math.floor(a * 0.25) * 4 === a;
    const addr = fc.oneof(
      fc.double({ min: 0, max: 2 ** 47, maxExcluded: true, noNaN: true }),
      fc.integer({ min: 0, max: 2 ** 45 - 1 }).map((x) => x * 4 + (x % 4)),
      fc.integer({ min: 0, max: 2 ** 45 - 1 }).map((x) => x * 4),
    );
    fc.assert(
      fc.property(addr, (a) => aligned(a) === (a % 4 === 0)),
      { numRuns: 20_000 },
    );
    for (const a of [0, -0, 1, 2, 3, 4, 4.5, 2 ** 47 - 4, 2 ** 47 - 1, 2 ** 47 - 0.5]) {
      expect(aligned(a)).toBe(a % 4 === 0);
    }
  });
});
