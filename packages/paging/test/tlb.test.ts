import { Ram } from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ACCESS_FETCH,
  ACCESS_NEEDS_WALK,
  ACCESS_READ,
  ACCESS_USER,
  ACCESS_WRITE,
  checkAccess,
  createPagingMode,
  PAGING_4LEVEL,
  PERM_DIRTY,
  PERM_GLOBAL,
  PERM_NX,
  PERM_RW,
  PERM_USER,
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_user_mode,
  PFEC_write_access,
  Tlb,
  tlbStats,
  WalkResult,
  walk,
} from "../src/index";
import { expectPagingError, fcParams, TableBuilder } from "./helpers";

const K4 = 4096;
const M2 = 2 ** 21;
const G1 = 2 ** 30;

/** One level, 4 KiB only. */
function small(
  sets: number,
  ways: number,
  replacement?: "lru" | "plru" | "random",
  random?: () => number,
) {
  return new Tlb({ levels: [{ size4k: { sets, ways, replacement } }], pwc: false, random });
}

describe("TLB lookups and inserts", () => {
  it("hits what was inserted, with the frame, rights and size", () => {
    const tlb = new Tlb();
    const va = 0x7f00_1234_5000;
    expect(tlb.lookup(va, 1)).toBe(false);
    expect(tlb.hitLevel).toBe(-1);
    tlb.insert(va, 1, 0x1234, 12, PERM_RW | PERM_USER | PERM_DIRTY);
    expect(tlb.lookup(va + 0xabc, 1)).toBe(true);
    expect(tlb.hitLevel).toBe(0);
    expect(tlb.hitMfn).toBe(0x1234);
    expect(tlb.hitPageMfn).toBe(0x1234);
    expect(tlb.hitPageShift).toBe(12);
    expect(tlb.hitPerms).toBe(PERM_RW | PERM_USER | PERM_DIRTY);
    expect(tlb.lookup(va + K4, 1)).toBe(false);
    const s = tlbStats(tlb);
    expect(s.levels[0]).toEqual({
      name: "dtlb",
      lookups: 3,
      hits: 1,
      misses: 2,
      inserts: 1,
      evictions: 0,
    });
    expect(s.levels[1]).toEqual({
      name: "stlb",
      lookups: 2,
      hits: 0,
      misses: 2,
      inserts: 1,
      evictions: 0,
    });
  });

  it("hits 2 MiB and 1 GiB entries anywhere in their page", () => {
    const tlb = new Tlb();
    tlb.insert(5 * M2 + 0x1234, 0, 0x800, 21, PERM_RW);
    expect(tlb.lookup(5 * M2 + 0x1f_f000, 0)).toBe(true);
    expect(tlb.hitPageShift).toBe(21);
    expect(tlb.hitPageMfn).toBe(0x800);
    expect(tlb.hitMfn).toBe(0x800 + 0x1ff);
    expect(tlb.lookup(6 * M2, 0)).toBe(false);
    tlb.insert(3 * G1, 0, 0x40000, 30, PERM_NX);
    expect(tlb.lookup(3 * G1 + 0x3fff_f123, 0)).toBe(true);
    expect(tlb.hitPageShift).toBe(30);
    expect(tlb.hitMfn).toBe(0x40000 + 0x3ffff);
    expect(tlb.hitPerms).toBe(PERM_NX);
  });

  it("caches a walk's result", () => {
    const ram = new Ram({ bytes: 8 * 2 ** 20 });
    const b = new TableBuilder(ram, 0x10);
    b.map4k(0x40_0000, 0x123, 0x107n); // global
    const out = new WalkResult();
    walk(ram, b.root, 0x40_0010, ACCESS_READ, 4, out);
    const tlb = new Tlb();
    tlb.insertWalk(out, 3);
    expect(tlb.lookup(0x40_0ff0, 9)).toBe(true); // global: any tag
    expect(tlb.hitMfn).toBe(0x123);
    expect(tlb.hitPerms).toBe(PERM_RW | PERM_USER | PERM_GLOBAL);
  });

  it("refreshes an entry in place instead of duplicating it", () => {
    const tlb = small(4, 2);
    tlb.insert(0, 1, 1, 12, 0);
    tlb.insert(0, 1, 2, 12, PERM_RW);
    expect(tlb.occupancy(0)).toBe(1);
    expect(tlb.lookup(0, 1)).toBe(true);
    expect(tlb.hitMfn).toBe(2);
    tlb.insert(0, 2, 3, 12, 0); // another tag: its own entry
    expect(tlb.occupancy(0)).toBe(2);
  });
});

describe("associativity and replacement", () => {
  // Pages 0, 4, 8, ... share set 0 of a 4-set array.
  const setPage = (i: number) => i * 4 * K4;

  it("LRU evicts the least recently used way of the set", () => {
    const tlb = small(4, 2, "lru");
    tlb.insert(setPage(0), 0, 10, 12, 0);
    tlb.insert(setPage(1), 0, 11, 12, 0);
    tlb.insert(K4, 0, 99, 12, 0); // another set
    expect(tlb.lookup(setPage(0), 0)).toBe(true); // page 1 is now the LRU
    tlb.insert(setPage(2), 0, 12, 12, 0);
    expect(tlb.lookup(setPage(1), 0)).toBe(false);
    expect(tlb.lookup(setPage(0), 0)).toBe(true);
    expect(tlb.lookup(setPage(2), 0)).toBe(true);
    expect(tlb.lookup(K4, 0)).toBe(true);
    expect(tlbStats(tlb).levels[0].evictions).toBe(1);
    expect(tlb.occupancy(0)).toBe(3);
  });

  it("pseudo-LRU follows the tree bits", () => {
    const tlb = small(1, 4, "plru");
    for (let i = 0; i < 4; i++) tlb.insert(i * K4, 0, i, 12, 0); // ways 0..3
    expect(tlb.lookup(0, 0)).toBe(true); // way 0 used last; the tree points right, then at way 2
    tlb.insert(4 * K4, 0, 4, 12, 0);
    expect(tlb.lookup(2 * K4, 0)).toBe(false);
    for (const i of [0, 1, 3, 4]) expect(tlb.lookup(i * K4, 0)).toBe(true);
    // Now 4 (way 2) was touched after 3 (way 3): the next victim is on the left, way 0 or 1,
    // whichever was not used last: way 0 (page 0) was used before way 1 (page 1).
    tlb.insert(5 * K4, 0, 5, 12, 0);
    expect(tlb.lookup(0, 0)).toBe(false);
    expect(tlbStats(tlb).levels[0].evictions).toBe(2);
  });

  it("random replacement draws victims from the seeded source", () => {
    const draws = [2, 7, 0];
    let n = 0;
    const tlb = small(1, 4, "random", () => draws[n++ % draws.length]);
    for (let i = 0; i < 4; i++) tlb.insert(i * K4, 0, i, 12, 0);
    expect(n).toBe(0); // free ways first
    tlb.insert(4 * K4, 0, 4, 12, 0); // 2 % 4 = way 2
    expect(tlb.lookup(2 * K4, 0)).toBe(false);
    tlb.insert(5 * K4, 0, 5, 12, 0); // 7 % 4 = way 3
    expect(tlb.lookup(3 * K4, 0)).toBe(false);
    expect(tlb.lookup(4 * K4, 0)).toBe(true);
    expect(n).toBe(2);
  });

  it("an STLB hit refills the dTLB", () => {
    const tlb = new Tlb({
      levels: [{ size4k: { sets: 1, ways: 2 } }, { size4k: { sets: 4, ways: 4 } }],
      pwc: false,
    });
    for (let i = 0; i < 3; i++) tlb.insert(i * K4, 0, 100 + i, 12, 0);
    // Page 0 left the 2-entry dTLB, not the STLB.
    expect(tlb.lookup(0, 0)).toBe(true);
    expect(tlb.hitLevel).toBe(1);
    expect(tlb.hitMfn).toBe(100);
    expect(tlb.lookup(0, 0)).toBe(true);
    expect(tlb.hitLevel).toBe(0);
    const s = tlbStats(tlb);
    expect(s.levels[0].name).toBe("L1");
    expect(s.levels[0].inserts).toBe(4); // 3 inserts + 1 refill
    expect(s.levels[0].evictions).toBe(2);
    expect(s.levels[1]).toMatchObject({ lookups: 1, hits: 1, misses: 0, inserts: 3 });
  });

  it("keeps each page size in its own array", () => {
    const tlb = new Tlb({
      levels: [{ size4k: { sets: 1, ways: 1 }, size2m: { sets: 1, ways: 1 } }],
    });
    tlb.insert(0, 0, 1, 12, 0);
    tlb.insert(M2, 0, 512, 21, 0);
    expect(tlb.lookup(0, 0)).toBe(true);
    expect(tlb.lookup(M2 + K4, 0)).toBe(true);
    expect(tlb.array(0, 21)?.occupancy()).toBe(1);
    expect(tlb.array(0, 30)).toBe(null);
    // No 1 GiB array: a 1 GiB insert caches nothing.
    tlb.insert(G1, 0, 0x40000, 30, 0);
    expect(tlb.lookup(G1, 0)).toBe(false);
  });
});

describe("tags, global pages and flushes", () => {
  it("isolates tags (PCID, VPID, ASID)", () => {
    const tlb = new Tlb();
    tlb.insert(0x1000, 1, 0xa, 12, 0);
    tlb.insert(0x1000, 2, 0xb, 12, 0);
    expect(tlb.lookup(0x1000, 1) && tlb.hitMfn).toBe(0xa);
    expect(tlb.lookup(0x1000, 2) && tlb.hitMfn).toBe(0xb);
    expect(tlb.lookup(0x1000, 3)).toBe(false);
    tlb.flushTag(1);
    expect(tlb.lookup(0x1000, 1)).toBe(false);
    expect(tlb.lookup(0x1000, 2)).toBe(true);
  });

  it("global entries match every tag and survive non-global flushes", () => {
    const tlb = new Tlb();
    tlb.insert(0x8000_0000_0000, 1, 0x77, 12, PERM_GLOBAL);
    tlb.insert(0x2000, 1, 0x78, 12, 0);
    expect(tlb.lookup(0x8000_0000_0000, 5)).toBe(true);
    tlb.flushTag(1);
    tlb.flushNonGlobal();
    expect(tlb.lookup(0x8000_0000_0000, 2)).toBe(true);
    expect(tlb.lookup(0x2000, 1)).toBe(false);
    tlb.invpcidAddress(0x8000_0000_0000, 1);
    expect(tlb.lookup(0x8000_0000_0000, 1)).toBe(true);
    tlb.flushAll();
    expect(tlb.lookup(0x8000_0000_0000, 1)).toBe(false);
  });

  it("INVLPG drops every page size mapping the VA, global ones too, for the tag only", () => {
    const tlb = new Tlb();
    const va = 3 * G1 + 5 * M2 + 7 * K4;
    tlb.insert(va, 1, 1, 12, 0);
    tlb.insert(va, 1, 0x200, 21, 0);
    tlb.insert(va, 1, 0x40000, 30, PERM_GLOBAL);
    tlb.insert(va, 2, 9, 12, 0);
    tlb.insert(va + K4, 1, 2, 12, 0); // same 2M, other 4K page
    tlb.invlpg(va, 1);
    for (const v of [va]) expect(tlb.lookup(v, 1)).toBe(false);
    expect(tlb.lookup(va + K4, 1) && tlb.hitPageShift).toBe(12);
    expect(tlb.lookup(va, 2) && tlb.hitMfn).toBe(9);
    const s = tlbStats(tlb);
    expect(s.invlpg).toBe(1);
    expect(s.entriesFlushed).toBe(6); // 4K, 2M and 1G in the dTLB and the STLB
  });

  it("counts every flush kind", () => {
    const tlb = new Tlb();
    tlb.insert(0, 1, 1, 12, 0);
    tlb.insert(K4, 2, 1, 12, PERM_GLOBAL);
    tlb.invlpg(0x5000, 1);
    tlb.invpcidAddress(0, 1);
    tlb.flushTag(2);
    tlb.flushNonGlobal();
    tlb.flushAll();
    const s = tlbStats(tlb);
    expect(s).toMatchObject({
      invlpg: 1,
      invpcidAddress: 1,
      flushTag: 1,
      flushNonGlobal: 1,
      flushAll: 1,
    });
    expect(s.entriesFlushed).toBe(4); // 2 entries x 2 levels
    expect(s.pwc?.flushes).toBe(5);
  });

  it("flushes the page-walk caches with the TLB", () => {
    const ram = new Ram({ bytes: 8 * 2 ** 20 });
    const b = new TableBuilder(ram, 0x10);
    b.map4k(0x40_0000, 0x123);
    const out = new WalkResult();
    const tlb = new Tlb();
    const again = () => walk(ram, b.root, 0x40_0000, ACCESS_READ, 4, out, tlb.pwc, 1) && out.reads;
    expect(again()).toBe(4);
    expect(again()).toBe(1);
    tlb.invlpg(0x1234_5000, 2); // another tag: kept
    expect(again()).toBe(1);
    tlb.invlpg(0x1234_5000, 1); // any VA of the tag drops them all
    expect(again()).toBe(4);
    tlb.flushTag(1);
    expect(again()).toBe(4);
    tlb.flushNonGlobal();
    expect(again()).toBe(4);
    expect(again()).toBe(1);
    tlb.flushAll();
    expect(again()).toBe(4);
    const none = new Tlb({ pwc: false });
    expect(none.pwc).toBe(null);
    none.flushAll();
    expect(tlbStats(none).pwc).toBe(null);
  });
});

describe("TLB configuration mistakes", () => {
  it("throws PagingError with a code that says what to do", () => {
    const bad = (c: ConstructorParameters<typeof Tlb>[0]) => () => new Tlb(c);
    expectPagingError(bad({ levels: [] }), "TLB_BAD_CONFIG");
    expectPagingError(bad({ levels: [{}, {}, {}, {}, {}] }), "TLB_BAD_CONFIG");
    expectPagingError(bad({ levels: [{ name: "x" }] }), "TLB_BAD_CONFIG");
    expectPagingError(bad({ levels: [{ size4k: { sets: 3, ways: 2 } }] }), "TLB_BAD_CONFIG");
    expectPagingError(bad({ levels: [{ size4k: { sets: 4, ways: 0 } }] }), "TLB_BAD_CONFIG");
    expectPagingError(
      bad({ levels: [{ size4k: { sets: 4, ways: 3, replacement: "plru" } }] }),
      "TLB_BAD_CONFIG",
    );
    expectPagingError(
      bad({ levels: [{ size4k: { sets: 4, ways: 4, replacement: "random" } }] }),
      "TLB_BAD_CONFIG",
    );
    expectPagingError(
      bad({ levels: [{ size4k: { sets: 4, ways: 4, replacement: "fifo" as "lru" } }] }),
      "TLB_BAD_CONFIG",
    );
    expectPagingError(bad({ random: 5 as unknown as () => number }), "TLB_BAD_CONFIG");
    expectPagingError(bad({ pwc: { pde: { sets: 0, ways: 1 } } }), "TLB_BAD_CONFIG");
    const tlb = new Tlb();
    expectPagingError(() => tlb.insert(0, 0, 0, 13, 0), "PAGING_BAD_PAGE_SIZE");
  });
});

describe("checkAccess: the rights of a TLB hit", () => {
  const m = PAGING_4LEVEL;
  it("allows what the rights allow and asks for a walk to set D", () => {
    const all = PERM_RW | PERM_USER | PERM_DIRTY;
    expect(checkAccess(all, ACCESS_WRITE | ACCESS_USER, m)).toBe(0);
    expect(checkAccess(all, ACCESS_FETCH | ACCESS_USER, m)).toBe(0);
    expect(checkAccess(PERM_RW | PERM_USER, ACCESS_WRITE, m)).toBe(ACCESS_NEEDS_WALK);
    expect(checkAccess(PERM_RW | PERM_USER, ACCESS_READ, m)).toBe(0);
    expect(checkAccess(0, ACCESS_READ, m)).toBe(0); // supervisor read of a supervisor page
  });
  it("answers the #PF error code of a protection fault", () => {
    const P = PFEC_page_present;
    expect(checkAccess(PERM_USER | PERM_DIRTY, ACCESS_WRITE | ACCESS_USER, m)).toBe(
      P | PFEC_write_access | PFEC_user_mode,
    );
    expect(checkAccess(PERM_RW, ACCESS_READ | ACCESS_USER, m)).toBe(P | PFEC_user_mode);
    expect(checkAccess(PERM_USER, ACCESS_WRITE, m)).toBe(P | PFEC_write_access);
    expect(checkAccess(PERM_USER, ACCESS_WRITE, createPagingMode({ wp: false }))).toBe(
      ACCESS_NEEDS_WALK,
    );
    expect(checkAccess(PERM_NX | PERM_RW, ACCESS_FETCH, m)).toBe(P | PFEC_insn_fetch);
  });
});

describe("AssocArray.used (property)", () => {
  it("counts the valid entries of every array through inserts, lookups and flushes", () => {
    const op = fc.oneof(
      fc.record({
        k: fc.constant("insert"),
        vpn: fc.integer({ min: 0, max: 2 ** 36 - 1 }),
        tag: fc.integer({ min: 0, max: 3 }),
        shift: fc.constantFrom(12, 21, 30),
        global: fc.boolean(),
      }),
      fc.record({
        k: fc.constantFrom("lookup", "invlpg", "invpcid"),
        vpn: fc.integer({ min: 0, max: 2 ** 36 - 1 }),
        tag: fc.integer({ min: 0, max: 3 }),
      }),
      fc.record({ k: fc.constantFrom("flushTag", "flushNonGlobal", "flushAll"), tag: fc.nat(3) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        // Small arrays so that sets fill, evict and empty again.
        const g = { sets: 2, ways: 2 };
        const tlb = new Tlb({
          levels: [
            { size4k: g, size2m: g, size1g: g },
            { size4k: { sets: 4, ways: 3 }, size2m: g },
          ],
        });
        for (const o of ops) {
          const va = "vpn" in o ? o.vpn * 4096 : 0;
          if (o.k === "insert" && "shift" in o) {
            tlb.insert(va, o.tag, 1000, o.shift, PERM_RW | (o.global ? PERM_GLOBAL : 0));
          } else if (o.k === "lookup") tlb.lookup(va, o.tag);
          else if (o.k === "invlpg") tlb.invlpg(va, o.tag);
          else if (o.k === "invpcid") tlb.invpcidAddress(va, o.tag);
          else if (o.k === "flushTag") tlb.flushTag(o.tag);
          else if (o.k === "flushNonGlobal") tlb.flushNonGlobal();
          else tlb.flushAll();
          for (let l = 0; l < 2; l++) {
            for (const shift of [12, 21, 30]) {
              const a = tlb.array(l, shift);
              if (a !== null) expect(a.used).toBe(a.occupancy());
            }
          }
        }
      }),
      fcParams(50),
    );
  });
});

describe("TLB lookup counters (property)", () => {
  it("count a lookup and a miss at every level a lookup passes, and where it ends", () => {
    const op = fc.oneof(
      fc.record({
        k: fc.constant("insert"),
        vpn: fc.integer({ min: 0, max: 63 }),
        tag: fc.integer({ min: 0, max: 1 }),
        shift: fc.constantFrom(12, 12, 21),
        global: fc.boolean(),
      }),
      fc.record({
        k: fc.constant("lookup"),
        vpn: fc.integer({ min: 0, max: 63 }),
        tag: fc.integer({ min: 0, max: 1 }),
      }),
      fc.record({ k: fc.constant("invlpg"), vpn: fc.nat(63), tag: fc.nat(1) }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 100, maxLength: 300 }), fc.boolean(), (ops, three) => {
        // Small arrays that fill and evict, so that lookups hit at every level and miss.
        const g = { sets: 2, ways: 2 };
        const levels = [
          { size4k: g, size2m: g },
          { size4k: { sets: 4, ways: 3 }, size2m: g },
          { size4k: { sets: 8, ways: 4 } },
        ].slice(0, three ? 3 : 2);
        const tlb = new Tlb({ levels });
        const stat = () => tlbStats(tlb).levels;
        for (const o of ops) {
          const va = o.vpn * 4096;
          if (o.k === "insert" && "shift" in o) {
            tlb.insert(va, o.tag, 1000, o.shift, PERM_RW | (o.global ? PERM_GLOBAL : 0));
          } else if (o.k === "invlpg") tlb.invlpg(va, o.tag);
          else {
            const before = stat();
            const hit = tlb.lookup(va, o.tag);
            const end = hit ? tlb.hitLevel : levels.length;
            const after = stat();
            for (let l = 0; l < levels.length; l++) {
              const reached = l <= end ? 1 : 0;
              expect(after[l].lookups - before[l].lookups).toBe(reached);
              expect(after[l].hits - before[l].hits).toBe(hit && l === end ? 1 : 0);
              expect(after[l].misses - before[l].misses).toBe(l < end ? 1 : 0);
            }
          }
        }
      }),
      fcParams(50),
    );
  });
});

describe("lookupRest's shortcut to the STLB's 4 KiB array (property)", () => {
  it("answers, counts and refills as the loop over every array", () => {
    const op = fc.oneof(
      fc.record({
        k: fc.constant("insert"),
        vpn: fc.integer({ min: 0, max: 2047 }),
        region: fc.nat(1),
        tag: fc.nat(1),
        shift: fc.constantFrom(12, 12, 12, 21, 30),
        global: fc.boolean(),
      }),
      fc.record({
        k: fc.constantFrom("lookup", "lookup", "lookup", "invlpg"),
        vpn: fc.integer({ min: 0, max: 2047 }),
        region: fc.nat(1),
        tag: fc.nat(1),
      }),
      fc.record({ k: fc.constantFrom("flushTag", "flushNonGlobal"), tag: fc.nat(1) }),
    );
    const g = { sets: 2, ways: 2 };
    const shapes = [
      // The default shape, small: the shortcut runs while level 0's 2 MiB and 1 GiB
      // arrays are empty, the loop once either holds an entry.
      [
        { size4k: g, size2m: g, size1g: { sets: 1, ways: 2 } },
        { size4k: { sets: 4, ways: 3 }, size2m: g, size1g: g },
      ],
      // No huge-page arrays at level 0; a third level below the STLB.
      [
        { size4k: g },
        { size4k: { sets: 2, ways: 4 }, size2m: g },
        { size4k: { sets: 8, ways: 2 } },
      ],
      // Level 1 without a 4 KiB array: no shortcut.
      [{ size4k: g, size2m: g }, { size2m: g }],
      // Two levels, huge pages at level 1 only: a miss in the STLB's 4 KiB array is counted
      // as a whole-TLB miss at once while its 2 MiB and 1 GiB arrays are empty, and goes on
      // to them once either holds an entry (h94).
      [{ size4k: g }, { size4k: { sets: 4, ways: 3 }, size2m: g, size1g: g }],
    ];
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 100, maxLength: 300 }),
        fc.nat(shapes.length - 1),
        (ops, shape) => {
          const levels = shapes[shape];
          const tlb = new Tlb({ levels, pwc: false });
          const ref = new Tlb({ levels, pwc: false });
          // The reference without the shortcut: every lookup past the first array goes
          // through lookupRest's loop.
          (ref as unknown as { stlb4k: null }).stlb4k = null;
          for (const o of ops) {
            if ("k" in o && (o.k === "flushTag" || o.k === "flushNonGlobal")) {
              if (o.k === "flushTag") {
                tlb.flushTag(o.tag);
                ref.flushTag(o.tag);
              } else {
                tlb.flushNonGlobal();
                ref.flushNonGlobal();
              }
              continue;
            }
            const va =
              ((o as { vpn: number }).vpn + (o as { region: number }).region * 2 ** 18) * K4;
            const tag = (o as { tag: number }).tag;
            if (o.k === "insert" && "shift" in o) {
              const perms = PERM_RW | (o.global ? PERM_GLOBAL : 0);
              tlb.insert(va, tag, 1000 + o.vpn, o.shift, perms);
              ref.insert(va, tag, 1000 + o.vpn, o.shift, perms);
            } else if (o.k === "invlpg") {
              tlb.invlpg(va, tag);
              ref.invlpg(va, tag);
            } else {
              const hit = tlb.lookup(va + 8, tag);
              expect(hit).toBe(ref.lookup(va + 8, tag));
              expect([
                tlb.hitLevel,
                tlb.hitMfn,
                tlb.hitPageMfn,
                tlb.hitPageShift,
                tlb.hitPerms,
              ]).toEqual(
                hit
                  ? [ref.hitLevel, ref.hitMfn, ref.hitPageMfn, ref.hitPageShift, ref.hitPerms]
                  : [-1, tlb.hitMfn, tlb.hitPageMfn, tlb.hitPageShift, tlb.hitPerms],
              );
            }
          }
          expect(Array.from(tlb.counters)).toEqual(Array.from(ref.counters));
          for (let l = 0; l < levels.length; l++) {
            for (const shift of [12, 21, 30]) {
              const a = tlb.array(l, shift);
              const b = ref.array(l, shift);
              if (a === null || b === null) continue;
              for (let i = 0; i < a.entries; i++) {
                expect([a.flags[i], a.key[i], a.tag[i], a.value[i], a.perms[i]]).toEqual([
                  b.flags[i],
                  b.key[i],
                  b.tag[i],
                  b.value[i],
                  b.perms[i],
                ]);
              }
            }
          }
        },
      ),
      fcParams(100),
    );
  });
});
