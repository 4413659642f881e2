import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FrameAllocator, MAX_ORDER, PAGE_SIZE } from "../src/index";
import { expectMachineError, fcParams } from "./helpers";

describe("FrameAllocator single frames", () => {
  it("hands out the highest free frames first, next-fit, and counts", () => {
    const fa = new FrameAllocator(100);
    expect(fa.nrFreeFrames).toBe(100);
    expect([fa.allocFrame(), fa.allocFrame(), fa.allocFrame()]).toEqual([99, 98, 97]);
    expect(fa.nrFreeFrames).toBe(97);
    fa.freeFrame(98);
    // Next-fit keeps walking down; the freed frame comes back after the walk wraps.
    expect(fa.allocFrame()).toBe(96);
    expect(fa.isFree(98)).toBe(true);
    expect(fa.isFree(96)).toBe(false);
    expect(fa.nrAllocs).toBe(4);
    expect(fa.nrFrees).toBe(1);
  });

  it("populates 1 M frames, then returns -1", () => {
    const n = 1 << 20;
    const fa = new FrameAllocator(n + 7);
    fa.reserve(0, 1);
    const seen = new Uint8Array(n + 7);
    let bad = 0;
    for (let i = 0; i < n + 6; i++) {
      const f = fa.allocFrame();
      if (f <= 0) bad++;
      else seen[f]++;
    }
    expect(bad).toBe(0);
    expect(fa.nrFreeFrames).toBe(0);
    expect(seen[0]).toBe(0);
    expect(seen.subarray(1).every((x) => x === 1)).toBe(true);
    expect(fa.allocFrame()).toBe(-1);
    expect(fa.allocPages(0)).toBe(-1);
    expect(fa.nrFailed).toBe(2);
    fa.freeFrame(12345);
    expect(fa.allocFrame()).toBe(12345);
  });

  it("never hands out the padding past the last frame", () => {
    const fa = new FrameAllocator(37);
    const got: number[] = [];
    for (let f = fa.allocFrame(); f >= 0; f = fa.allocFrame()) got.push(f);
    expect(got.length).toBe(37);
    expect(Math.max(...got)).toBe(36);
    expect(fa.allocPages(1)).toBe(-1);
  });

  it("is deterministic", () => {
    const run = () => {
      const fa = new FrameAllocator(5000);
      fa.reserve(0, 16);
      const out: number[] = [];
      for (let i = 0; i < 300; i++) {
        const f = i % 7 === 3 ? fa.allocPages(i % 5, { below: 3000 * PAGE_SIZE }) : fa.allocFrame();
        out.push(f);
        if (i % 11 === 0 && f >= 0 && i % 7 !== 3) fa.freeFrame(f);
      }
      return out;
    };
    expect(run()).toEqual(run());
  });
});

describe("FrameAllocator runs", () => {
  it("aligns every order to its size and keeps runs disjoint", () => {
    const fa = new FrameAllocator(3 * 2 ** MAX_ORDER + 123);
    const taken: [number, number][] = [];
    for (let order = 0; order <= MAX_ORDER; order++) {
      const f = fa.allocPages(order);
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f % 2 ** order).toBe(0);
      expect(f + 2 ** order).toBeLessThanOrEqual(fa.nrFrames);
      for (const [s, n] of taken) expect(f + 2 ** order <= s || f >= s + n).toBe(true);
      taken.push([f, 2 ** order]);
      for (const x of [f, f + 2 ** order - 1]) expect(fa.isFree(x)).toBe(false);
    }
    const used = taken.reduce((a, [, n]) => a + n, 0);
    expect(fa.nrFreeFrames).toBe(fa.nrFrames - used);
    for (const [s, n] of taken) fa.freePages(s, Math.log2(n));
    expect(fa.nrFreeFrames).toBe(fa.nrFrames);
  });

  it("fills memory with runs of one order, next-fit, and wraps to reuse a freed run", () => {
    for (const order of [3, 9, 12]) {
      const fa = new FrameAllocator(2 ** 18); // 1 GiB
      const seen = new Set<number>();
      let prev = Number.POSITIVE_INFINITY;
      for (let f = fa.allocPages(order); f >= 0; f = fa.allocPages(order)) {
        expect(f).toBeLessThan(prev); // walks down
        prev = f;
        seen.add(f);
      }
      expect(seen.size).toBe(2 ** (18 - order));
      expect(fa.nrFreeFrames).toBe(0);
      const top = 2 ** 18 - 2 ** order;
      fa.freePages(top, order);
      fa.freePages(0, order);
      expect(fa.allocPages(order)).toBe(top); // nothing below the hint: wrap to the top
      expect(fa.allocPages(order)).toBe(0);
      expect(fa.allocPages(order)).toBe(-1);
    }
  });

  it("keeps a run entirely below a machine-address limit", () => {
    const fa = new FrameAllocator((8 * 2 ** 30) / PAGE_SIZE); // 8 GiB
    const below = 2 ** 32;
    const swiotlb = fa.allocPages(14, { below }); // 64 MiB
    expect(swiotlb).toBeGreaterThanOrEqual(0);
    expect((swiotlb + 2 ** 14) * PAGE_SIZE).toBeLessThanOrEqual(below);
    expect(fa.allocPages(0)).toBeGreaterThanOrEqual(below / PAGE_SIZE);
    for (let order = 0; order <= 12; order++) {
      const f = fa.allocPages(order, { below: 123 * PAGE_SIZE * 4096 + 17 });
      expect((f + 2 ** order) * PAGE_SIZE).toBeLessThanOrEqual(123 * PAGE_SIZE * 4096 + 17);
    }
    expect(fa.allocPages(0, { below: 0 })).toBe(-1);
    expect(fa.allocPages(1, { below: PAGE_SIZE })).toBe(-1);
    expect(fa.allocPages(0, { below: PAGE_SIZE })).toBe(0);
    expect(fa.allocPages(MAX_ORDER, { below: 2 ** 30 - PAGE_SIZE })).toBe(-1);
    expect(fa.allocPages(MAX_ORDER, { below: 2 ** 30 })).toBe(-1); // frame 0 is taken
    expect(new FrameAllocator(2 ** 19).allocPages(MAX_ORDER, { below: 2 ** 30 })).toBe(0);
  });

  it("returns -1 when memory is free but fragmented", () => {
    const fa = new FrameAllocator(1024);
    const all: number[] = [];
    for (let f = fa.allocFrame(); f >= 0; f = fa.allocFrame()) all.push(f);
    for (const f of all) if (f % 2 === 0) fa.freeFrame(f);
    expect(fa.nrFreeFrames).toBe(512);
    expect(fa.allocPages(1)).toBe(-1);
    expect(fa.allocPages(0)).toBeGreaterThanOrEqual(0);
    expect(fa.allocPages(6)).toBe(-1);
    expect(fa.allocPages(11)).toBe(-1);
  });

  it("frees what it was given and refuses what it was not", () => {
    const fa = new FrameAllocator(4096);
    fa.reserve(0, 1);
    fa.reserve(100, 20);
    fa.reserve(110, 20); // overlapping: the new part is reserved, the rest is a no-op
    expect(fa.nrReservedFrames).toBe(31);
    expect(fa.isReserved(129)).toBe(true);
    expect(fa.isReserved(130)).toBe(false);
    expect(fa.nrFreeFrames).toBe(4096 - 31);
    const run = fa.allocPages(4);
    expectMachineError(() => fa.freeFrame(5), "FRAME_NOT_ALLOCATED");
    expectMachineError(() => fa.freeFrame(0), "FRAME_RESERVED");
    expectMachineError(() => fa.freeFrame(115), "FRAME_RESERVED");
    // A run that is only partly allocated is refused whole.
    expect(run).toBe(4096 - 16);
    expectMachineError(() => fa.freePages(run - 16, 5), "FRAME_NOT_ALLOCATED");
    expect(fa.isFree(run)).toBe(false);
    fa.freePages(run, 4);
    expectMachineError(() => fa.freePages(run, 4), "FRAME_NOT_ALLOCATED");
    expect(fa.nrFreeFrames).toBe(4096 - 31);
    const one = fa.allocFrame();
    expectMachineError(() => fa.reserve(one, 1), "FRAME_BUSY");
    expect(fa.isReserved(one)).toBe(false);
    fa.reserve(200, 0);
    expect(fa.nrReservedFrames).toBe(31);
  });

  it("refuses bad arguments with typed errors", () => {
    const fa = new FrameAllocator(64);
    for (const order of [-1, 0.5, MAX_ORDER + 1, Number.NaN]) {
      expectMachineError(() => fa.allocPages(order), "FRAME_BAD_ORDER");
      expectMachineError(() => fa.freePages(0, order), "FRAME_BAD_ORDER");
    }
    expectMachineError(() => fa.allocPages(0, { below: -1 }), "FRAME_BAD_RANGE");
    expectMachineError(() => fa.allocPages(0, { below: Number.NaN }), "FRAME_BAD_RANGE");
    expectMachineError(() => fa.freeFrame(64), "FRAME_BAD_RANGE");
    expectMachineError(() => fa.freeFrame(-1), "FRAME_BAD_RANGE");
    expectMachineError(() => fa.freePages(60, 3), "FRAME_BAD_RANGE");
    expectMachineError(() => fa.reserve(60, 5), "FRAME_BAD_RANGE");
    expectMachineError(() => fa.reserve(1.5, 1), "FRAME_BAD_RANGE");
    expectMachineError(() => fa.reserve(0, -1), "FRAME_BAD_RANGE");
    expectMachineError(() => fa.isFree(64), "FRAME_BAD_RANGE");
    expectMachineError(() => fa.isReserved(-1), "FRAME_BAD_RANGE");
    for (const n of [0, -1, 1.5, 2 ** 32 + 1]) {
      expectMachineError(() => new FrameAllocator(n), "FRAME_BAD_RANGE");
    }
  });
});

describe("FrameAllocator against a reference model", () => {
  it("random alloc/free/reserve keeps every invariant", () => {
    const op = fc.oneof(
      fc.record({
        k: fc.constant("alloc" as const),
        order: fc.integer({ min: 0, max: 8 }),
        below: fc.option(fc.integer({ min: 0, max: 1200 }), { nil: undefined }),
      }),
      fc.record({ k: fc.constant("free" as const), pick: fc.nat() }),
      fc.record({
        k: fc.constant("reserve" as const),
        mfn: fc.integer({ min: 0, max: 1099 }),
        count: fc.integer({ min: 0, max: 40 }),
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1100 }), fc.array(op, { maxLength: 80 }), (n, ops) => {
        const fa = new FrameAllocator(n);
        const state = new Uint8Array(n); // 0 free, 1 allocated, 2 reserved
        const runs: [number, number][] = [];
        for (const o of ops) {
          if (o.k === "alloc") {
            const size = 2 ** o.order;
            const limit = o.below === undefined ? n : Math.min(n, o.below);
            const f = fa.allocPages(
              o.order,
              o.below === undefined ? undefined : { below: o.below * PAGE_SIZE },
            );
            if (f < 0) {
              for (let s = 0; s + size <= limit; s += size) {
                expect(state.subarray(s, s + size).every((x) => x === 0)).toBe(false);
              }
            } else {
              expect(f % size).toBe(0);
              expect(f + size).toBeLessThanOrEqual(limit);
              for (let i = f; i < f + size; i++) {
                expect(state[i]).toBe(0);
                state[i] = 1;
              }
              runs.push([f, o.order]);
            }
          } else if (o.k === "free") {
            if (runs.length === 0) continue;
            const [f, order] = runs.splice(o.pick % runs.length, 1)[0];
            fa.freePages(f, order);
            state.fill(0, f, f + 2 ** order);
          } else {
            const end = o.mfn + o.count;
            if (o.count === 0) continue;
            if (end > n) {
              expectMachineError(() => fa.reserve(o.mfn, o.count), "FRAME_BAD_RANGE");
            } else if (state.subarray(o.mfn, end).some((x) => x === 1)) {
              expectMachineError(() => fa.reserve(o.mfn, o.count), "FRAME_BUSY");
            } else {
              fa.reserve(o.mfn, o.count);
              state.fill(2, o.mfn, end);
            }
          }
          expect(fa.nrFreeFrames).toBe(state.filter((x) => x === 0).length);
          expect(fa.nrReservedFrames).toBe(state.filter((x) => x === 2).length);
        }
        for (let i = 0; i < n; i++) {
          expect(fa.isFree(i)).toBe(state[i] === 0);
          expect(fa.isReserved(i)).toBe(state[i] === 2);
        }
      }),
      fcParams(150),
    );
  });
});

describe("FrameAllocator large runs against a reference model", () => {
  it("orders 5..13 under random limits find a run exactly when one exists", () => {
    const op = fc.record({
      free: fc.boolean(),
      order: fc.integer({ min: 5, max: 13 }),
      below: fc.option(fc.integer({ min: 0, max: 70_000 }), { nil: undefined }),
      pick: fc.nat(),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70_000 }),
        fc.array(op, { maxLength: 40 }),
        (n, ops) => {
          const fa = new FrameAllocator(n);
          const used = new Uint8Array(n);
          const runs: [number, number][] = [];
          for (const o of ops) {
            if (o.free && runs.length > 0) {
              const [f, order] = runs.splice(o.pick % runs.length, 1)[0];
              fa.freePages(f, order);
              used.fill(0, f, f + 2 ** order);
              continue;
            }
            const size = 2 ** o.order;
            const limit = o.below === undefined ? n : Math.min(n, o.below);
            const opts = o.below === undefined ? undefined : { below: o.below * PAGE_SIZE };
            const f = fa.allocPages(o.order, opts);
            let exists = false;
            for (let s = 0; s + size <= limit && !exists; s += size) {
              exists = used.subarray(s, s + size).every((x) => x === 0);
            }
            expect(f >= 0).toBe(exists);
            if (f >= 0) {
              expect(f % size).toBe(0);
              expect(f + size).toBeLessThanOrEqual(limit);
              expect(used.subarray(f, f + size).every((x) => x === 0)).toBe(true);
              used.fill(1, f, f + size);
              runs.push([f, o.order]);
            }
            expect(fa.nrFreeFrames).toBe(n - used.reduce((a, x) => a + x, 0));
          }
        },
      ),
      fcParams(40),
    );
  });
});
