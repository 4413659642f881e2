import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AssocArray, PERM_GLOBAL, PERM_RW, Tlb } from "../src/index";
import { fcParams } from "./helpers";

/**
 * The LRU set-associative array written the plain way (one object per way, the victim the
 * first way with the smallest stamp): what AssocArray's typed-array scans must answer.
 */
class RefAssoc {
  private readonly ways: {
    valid: boolean;
    key: number;
    tag: number;
    global: boolean;
    stamp: number;
  }[];
  private clock = 0;
  evicted = false;
  constructor(
    private readonly sets: number,
    private readonly nways: number,
  ) {
    this.ways = Array.from({ length: sets * nways }, () => ({
      valid: false,
      key: 0,
      tag: 0,
      global: false,
      stamp: 0,
    }));
  }
  private base(key: number): number {
    return (key % this.sets) * this.nways;
  }
  find(key: number, tag: number): number {
    const b = this.base(key);
    for (let i = b; i < b + this.nways; i++) {
      const w = this.ways[i];
      if (w.valid && w.key === key && (w.tag === tag || w.global)) {
        w.stamp = ++this.clock;
        return i;
      }
    }
    return -1;
  }
  insert(key: number, tag: number, global: boolean): number {
    const b = this.base(key);
    let idx = -1;
    for (let i = b; i < b + this.nways && idx < 0; i++) {
      const w = this.ways[i];
      if (w.valid && w.key === key && (w.tag === tag || (global && w.global))) idx = i;
    }
    this.evicted = false;
    if (idx < 0) {
      for (let i = b; i < b + this.nways && idx < 0; i++) if (!this.ways[i].valid) idx = i;
    }
    if (idx < 0) {
      idx = b;
      for (let i = b + 1; i < b + this.nways; i++) {
        if (this.ways[i].stamp < this.ways[idx].stamp) idx = i;
      }
      this.evicted = true;
    }
    this.ways[idx] = { valid: true, key, tag, global, stamp: ++this.clock };
    return idx;
  }
  invalidateKey(key: number, tag: number, withGlobal: boolean): number {
    const b = this.base(key);
    let n = 0;
    for (let i = b; i < b + this.nways; i++) {
      const w = this.ways[i];
      if (w.valid && w.key === key && (w.global ? withGlobal : w.tag === tag)) {
        w.valid = false;
        n++;
      }
    }
    return n;
  }
}

describe("AssocArray against a plain model (property)", () => {
  // victimFull compares stamps as int32s while the clock is below 2^31 and as doubles after:
  // the second case starts the clock just below 2^31 so that runs cross it, the third moves
  // it on by 3 * 2^30 after 30 steps (billions of uses elsewhere), so that a set holds stamps further
  // apart than an int32 difference can tell.
  it.each([
    ["from 0", 0, 0],
    ["across 2^31", 2 ** 31 - 30, 0],
    ["jumping by 3 * 2^30", 0, 3 * 2 ** 30],
  ])(
    "finds, refreshes, fills and evicts (LRU) the same ways, keys above 2^32 included, clock %s",
    (_, clock0, jump) => {
      // Keys k + m * 2^32: the same set and the same low 32 bits, told apart by the high half.
      const key = fc
        .tuple(fc.nat(7), fc.nat(2))
        .map(([k, m]) => k + m * 2 ** 32 + (m === 2 ? 2 ** 40 : 0));
      const op = fc.oneof(
        fc.record({ k: fc.constant("insert"), key, tag: fc.nat(2), global: fc.boolean() }),
        fc.record({ k: fc.constantFrom("find", "invlpg"), key, tag: fc.nat(2) }),
      );
      fc.assert(
        fc.property(
          fc.constantFrom(1, 2, 4),
          fc.integer({ min: 1, max: 13 }),
          fc.array(op, { minLength: 60, maxLength: 200 }),
          (sets, ways, ops) => {
            const a = new AssocArray("test", { sets, ways }, null);
            (a as unknown as { clock: number }).clock = clock0;
            const ref = new RefAssoc(sets, ways);
            const clock = a as unknown as { clock: number };
            ops.forEach((o, n) => {
              if (n === 30) clock.clock += jump;
              if (o.k === "insert" && "global" in o) {
                expect(a.insert(o.key, o.tag, o.global, 1, 0)).toBe(
                  ref.insert(o.key, o.tag, o.global),
                );
                expect(a.evicted).toBe(ref.evicted);
              } else if (o.k === "find") expect(a.find(o.key, o.tag)).toBe(ref.find(o.key, o.tag));
              else
                expect(a.invalidateKey(o.key, o.tag, true)).toBe(
                  ref.invalidateKey(o.key, o.tag, true),
                );
            });
          },
        ),
        fcParams(100),
      );
    },
  );
});

describe("Tlb refill into the first array (property)", () => {
  it("gives the same hits, entries and counters as a plain insert", () => {
    const op = fc.oneof(
      fc.record({
        k: fc.constant("insert"),
        vpn: fc.nat(11),
        tag: fc.nat(1),
        shift: fc.constantFrom(12, 12, 21),
        global: fc.boolean(),
      }),
      fc.record({
        k: fc.constantFrom("lookup", "lookup", "invlpg"),
        vpn: fc.nat(11),
        tag: fc.nat(1),
      }),
      fc.record({ k: fc.constant("flushTag"), vpn: fc.constant(0), tag: fc.nat(1) }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 100, maxLength: 300 }), (ops) => {
        const config = {
          levels: [
            { size4k: { sets: 2, ways: 2 }, size2m: { sets: 1, ways: 2 } },
            { size4k: { sets: 4, ways: 3 }, size2m: { sets: 2, ways: 2 } },
          ],
        };
        const fast = new Tlb(config);
        const plain = new Tlb(config);
        // The plain TLB's first array refills through insert's full scan.
        const first = plain.array(0, 12) as AssocArray;
        first.insertAbsent = (key, tag, global, value, perms) =>
          first.insert(key, tag, global, value, perms);
        for (const o of ops) {
          const va = o.vpn * 4096 + 8;
          for (const t of [fast, plain]) {
            if (o.k === "insert" && "shift" in o) {
              t.insert(va, o.tag, 100 + o.vpn, o.shift, PERM_RW | (o.global ? PERM_GLOBAL : 0));
            } else if (o.k === "lookup") t.lookup(va, o.tag);
            else if (o.k === "invlpg") t.invlpg(va, o.tag);
            else t.flushTag(o.tag);
          }
          expect(fast.hitLevel).toBe(plain.hitLevel);
          expect(fast.hitMfn).toBe(plain.hitMfn);
          expect(Array.from(fast.counters)).toEqual(Array.from(plain.counters));
          for (let l = 0; l < 2; l++) expect(fast.occupancy(l)).toBe(plain.occupancy(l));
        }
        for (let v = 0; v <= 11; v++) {
          for (let tag = 0; tag <= 1; tag++) {
            expect(fast.lookup(v * 4096, tag)).toBe(plain.lookup(v * 4096, tag));
            expect(fast.hitMfn).toBe(plain.hitMfn);
          }
        }
      }),
      fcParams(100),
    );
  });
});
