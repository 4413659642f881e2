import { EINVAL } from "@hyperlab/abi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  FRAME_FREE,
  FrameTable,
  HyperlabError,
  PGC_count_mask,
  PGT_count_mask,
  PGT_l1_page_table,
  PGT_l2_page_table,
  PGT_none,
  PGT_seg_desc_page,
  PGT_writable_page,
  pgtLevel,
  pgtName,
} from "../src/index";

/** A frame table over a simple bump/free-list source, recording frees. */
function table(n = 16) {
  const free: number[] = [];
  for (let i = n - 1; i >= 0; i--) free.push(i);
  const freed: [number, number][] = [];
  const ft = new FrameTable(
    n,
    {
      alloc: (order) => (order === 0 ? (free.pop() ?? -1) : -1),
      free: (mfn) => free.push(mfn),
    },
    (domid, mfn) => freed.push([domid, mfn]),
  );
  return { ft, free, freed };
}

describe("frame table primitives", () => {
  it("allocates with PGC_allocated and frees at the last reference", () => {
    const { ft, freed } = table();
    const mfn = ft.allocate(5, 0);
    expect(ft.ownerOf(mfn)).toBe(5);
    expect(ft.refCount(mfn)).toBe(1);
    expect(ft.getPage(mfn, 5)).toBe(true);
    expect(ft.getPage(mfn, 6)).toBe(false); // not the owner
    expect(ft.release(mfn)).toBe(true);
    expect(ft.release(mfn)).toBe(false); // allocation reference already dropped
    expect(ft.ownerOf(mfn)).toBe(5); // still referenced
    ft.putPage(mfn);
    expect(ft.ownerOf(mfn)).toBe(FRAME_FREE);
    expect(freed).toEqual([[5, mfn]]);
    expect(ft.getPage(mfn, 5)).toBe(false); // free frames cannot be referenced
  });

  it("refuses frame numbers outside the machine", () => {
    const { ft } = table(4);
    expect(ft.getPage(4, 0)).toBe(false);
    expect(ft.getPage(-1, 0)).toBe(false);
    expect(ft.getPage(1.5, 0)).toBe(false);
    expect(ft.validMfn(3)).toBe(true);
  });

  it("changes type only at type count zero", () => {
    const { ft } = table();
    const mfn = ft.allocate(1, 0);
    expect(ft.getPageType(mfn, PGT_writable_page)).toBe(0);
    expect(ft.getPageType(mfn, PGT_writable_page)).toBe(0);
    expect(ft.typeCount(mfn)).toBe(2);
    expect(ft.getPageType(mfn, PGT_seg_desc_page)).toBe(-EINVAL);
    ft.putPageType(mfn);
    expect(ft.getPageType(mfn, PGT_seg_desc_page)).toBe(-EINVAL);
    ft.putPageType(mfn);
    expect(ft.getPageType(mfn, PGT_seg_desc_page)).toBe(0);
    expect(pgtName(ft.typeOf(mfn))).toBe("seg_desc");
  });

  it("validates page-table types on promotion and devalidates at zero", () => {
    const { ft } = table();
    const log: string[] = [];
    ft.setTypeHooks(PGT_l1_page_table, {
      validate: (m, t) => {
        log.push(`v${m}:${pgtLevel(t)}`);
        return m === 3 ? -EINVAL : 0;
      },
      devalidate: (m, t) => void log.push(`d${m}:${pgtLevel(t)}`),
    });
    const a = ft.allocate(1, 0); // frame 0
    expect(ft.getPageType(a, PGT_l1_page_table)).toBe(0);
    expect(ft.isValidated(a)).toBe(true);
    expect(ft.getPageType(a, PGT_l1_page_table)).toBe(0); // no second validation
    ft.putPageType(a);
    ft.putPageType(a);
    expect(ft.isValidated(a)).toBe(false);
    expect(ft.typeOf(a)).toBe(PGT_l1_page_table);
    expect(ft.getPageType(a, PGT_writable_page)).toBe(0); // free to change now
    expect(log).toEqual(["v0:1", "d0:1"]);
    // A type without hooks cannot be taken; a failing validation leaves the frame untyped.
    expect(ft.getPageType(ft.allocate(1, 0), PGT_l2_page_table)).toBe(-EINVAL);
    ft.allocate(1, 0);
    const bad = ft.allocate(1, 0); // frame 3
    expect(ft.getPageType(bad, PGT_l1_page_table)).toBe(-EINVAL);
    expect(ft.typeInfo[bad]).toBe(PGT_none);
    expect(() =>
      ft.setTypeHooks(PGT_l1_page_table, { validate: () => 0, devalidate: () => {} }),
    ).toThrow(HyperlabError);
  });

  it("refuses a type reference while validation of the same frame is in progress", () => {
    const { ft } = table();
    let inner = 0;
    ft.setTypeHooks(PGT_l1_page_table, {
      validate: (m) => {
        inner = ft.getPageType(m, PGT_l1_page_table);
        return 0;
      },
      devalidate: () => {},
    });
    const a = ft.allocate(1, 0);
    expect(ft.getPageType(a, PGT_l1_page_table)).toBe(0);
    expect(inner).toBe(-EINVAL);
    expect(ft.typeCount(a)).toBe(1);
  });

  it("get_page_and_type undoes the general reference when the type fails", () => {
    const { ft } = table();
    const a = ft.allocate(1, 0);
    ft.getPageType(a, PGT_writable_page);
    expect(ft.getPageAndType(a, 1, PGT_seg_desc_page)).toBe(-EINVAL);
    expect(ft.refCount(a)).toBe(1);
    expect(ft.getPageAndType(a, 2, PGT_writable_page)).toBe(-EINVAL);
    expect(ft.getPageAndType(a, 1, PGT_writable_page)).toBe(0);
    expect(ft.refCount(a)).toBe(2);
    ft.putPageAndType(a);
    expect(ft.refCount(a)).toBe(1);
  });

  it("refuses a type count overflow with -EINVAL, as Xen's _get_page_type does", () => {
    const { ft } = table();
    const a = ft.allocate(1, 0);
    ft.getPageType(a, PGT_writable_page);
    ft.typeInfo[a] = (ft.typeInfo[a] & ~PGT_count_mask) | PGT_count_mask;
    expect(ft.getPageType(a, PGT_writable_page)).toBe(-EINVAL);
  });

  it("keeps the top two general counts in reserve, as page_get_owner_and_reference does", () => {
    const { ft } = table();
    const a = ft.allocate(1, 0);
    ft.countInfo[a] = (ft.countInfo[a] & ~PGC_count_mask) | (PGC_count_mask - 2);
    expect(ft.getPage(a, 1)).toBe(true);
    expect(ft.getPage(a, 1)).toBe(false);
  });

  it("treats unbalanced puts as bugs in the model", () => {
    const { ft } = table();
    const a = ft.allocate(1, 0);
    expect(() => ft.putPageType(a)).toThrow(/no type references/);
    ft.release(a);
    expect(() => ft.putPage(a)).toThrow(/no references/);
  });
});

/*
 * A property test: random sequences of the primitives, issued as real callers do (a reference
 * is dropped only by whoever took it), keep every count equal to the references held, never
 * free a frame that is referenced, and change a type only at type count zero.
 */
describe("frame table under random use", () => {
  const N = 8;
  const DOMS = [1, 2];
  const TYPES = [PGT_writable_page, PGT_seg_desc_page, PGT_l1_page_table, PGT_l2_page_table];
  type Op =
    | { k: "alloc"; d: number }
    | { k: "get"; mfn: number; d: number }
    | { k: "put"; i: number }
    | { k: "getType"; i: number; t: number }
    | { k: "putType"; i: number }
    | { k: "release"; mfn: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ k: fc.constant("alloc" as const), d: fc.constantFrom(...DOMS) }),
    fc.record({
      k: fc.constant("get" as const),
      mfn: fc.integer({ min: -1, max: N }),
      d: fc.constantFrom(...DOMS),
    }),
    fc.record({ k: fc.constant("put" as const), i: fc.nat() }),
    fc.record({ k: fc.constant("getType" as const), i: fc.nat(), t: fc.constantFrom(...TYPES) }),
    fc.record({ k: fc.constant("putType" as const), i: fc.nat() }),
    fc.record({ k: fc.constant("release" as const), mfn: fc.integer({ min: 0, max: N - 1 }) }),
  );
  const runs = process.env.HYPERLAB_LONG ? 2000 : 200;

  it("keeps counts consistent and never frees a frame in use", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        const { ft } = table(N);
        // L2 validation takes a type reference on the next frame as an L1, as an entry would.
        const held2: Map<number, number> = new Map();
        ft.setTypeHooks(PGT_l1_page_table, { validate: () => 0, devalidate: () => {} });
        ft.setTypeHooks(PGT_l2_page_table, {
          validate: (m) => {
            const child = (m + 1) % N;
            const rc = ft.getPageAndType(child, ft.ownerOf(m), PGT_l1_page_table);
            if (rc === 0) held2.set(m, child);
            return rc;
          },
          devalidate: (m) => {
            const child = held2.get(m);
            if (child === undefined) throw new Error("devalidate without validate");
            held2.delete(m);
            ft.putPageAndType(child);
          },
        });
        const allocated = new Set<number>();
        const gen: number[] = []; // general references we hold (by mfn)
        const typed: number[] = []; // general+type references we hold (by mfn)
        for (const o of ops) {
          switch (o.k) {
            case "alloc": {
              const m = ft.allocate(o.d, 0);
              if (m >= 0) allocated.add(m);
              break;
            }
            case "get":
              if (ft.getPage(o.mfn, o.d)) gen.push(o.mfn);
              break;
            case "put":
              if (gen.length > 0) ft.putPage(gen.splice(o.i % gen.length, 1)[0]);
              break;
            case "getType": {
              if (gen.length === 0) break;
              const i = o.i % gen.length;
              const m = gen[i];
              const before = ft.typeOf(m);
              const count = ft.typeCount(m);
              const rc = ft.getPageType(m, o.t);
              if (rc === 0) {
                typed.push(...gen.splice(i, 1));
                if (count > 0) expect(before).toBe(o.t); // no type change while in use
              }
              break;
            }
            case "putType":
              if (typed.length > 0) ft.putPageAndType(typed.splice(o.i % typed.length, 1)[0]);
              break;
            case "release":
              if (ft.release(o.mfn)) allocated.delete(o.mfn);
              break;
          }
          // Invariants after every step.
          for (let m = 0; m < N; m++) {
            const mine = gen.filter((x) => x === m).length + typed.filter((x) => x === m).length;
            const byL2 = [...held2.values()].filter((x) => x === m).length;
            const expectRefs = mine + byL2 + (allocated.has(m) ? 1 : 0);
            expect(ft.refCount(m)).toBe(expectRefs);
            expect(ft.ownerOf(m) === FRAME_FREE).toBe(expectRefs === 0);
            expect(ft.typeCount(m)).toBe(typed.filter((x) => x === m).length + byL2);
          }
        }
        // Tear down: drop everything we hold; every frame returns to the pool.
        for (const m of typed) ft.putPageAndType(m);
        for (const m of gen) ft.putPage(m);
        for (const m of allocated) ft.release(m);
        for (let m = 0; m < N; m++) expect(ft.ownerOf(m)).toBe(FRAME_FREE);
      }),
      { seed: 42, numRuns: runs },
    );
  });
});
