import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BACKENDS, nativeBackend } from "../src/backends";
import { CacheHierarchy, DEFAULT_CACHE_LEVELS, LINE_BYTES } from "../src/cache";
import { GuestTarget } from "../src/guest-target";
import { ACCESS_READ } from "../src/target";

const runs = (n: number) => (process.env.HYPERLAB_LONG === "1" ? n * 20 : n);

describe("the data-cache hierarchy", () => {
  it("serves a line from L1 after its first access, and from the level that still holds it", () => {
    const c = new CacheHierarchy();
    expect(c.access(1, 0x1000)).toBe(3); // cold: DRAM
    expect(c.access(1, 0x1000 + 63)).toBe(0); // same line
    expect(c.access(1, 0x1000 + 64)).toBe(3); // next line
    expect(c.access(2, 0x1000)).toBe(3); // another process's line
    // Touch 64 KiB (twice L1d): the first line left L1d but is still in L2.
    for (let a = 0; a < 64 * 1024; a += LINE_BYTES) c.access(3, 0x10_0000 + a);
    expect(c.access(3, 0x10_0000)).toBe(1);
    // Touch 1 MiB (four times L2): the first line is only in the LLC.
    for (let a = 0; a < 1024 * 1024; a += LINE_BYTES) c.access(4, 0x100_0000 + a);
    expect(c.access(4, 0x100_0000)).toBe(2);
    const total = c.hits.reduce((x, y) => x + y, 0);
    expect(total).toBe(4 + 1024 + 1 + 16384 + 1);
  });

  it("evicts the least recently used way of a set", () => {
    const c = new CacheHierarchy([
      { name: "L1d", bytes: 4 * 64, ways: 4 },
      { name: "L2", bytes: 8 * 64, ways: 8 },
      { name: "LLC", bytes: 16 * 64, ways: 16 },
    ]);
    for (let i = 0; i < 4; i++) c.access(0, i * 64); // one set, four ways
    c.access(0, 0); // line 0 is now the most recent
    c.access(0, 4 * 64); // evicts line 1 from L1
    expect(c.access(0, 0)).toBe(0);
    expect(c.access(0, 64)).toBe(1);
  });

  it("locality decides: a random walk over 256 MiB goes to DRAM, one over 16 KiB stays in L1d", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), (seed) => {
        const c = new CacheHierarchy();
        let x = seed;
        const rand = (span: number) => {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          return (x % (span / 4)) * 4;
        };
        for (let i = 0; i < 20000; i++) c.access(0, rand(256 * 2 ** 20));
        const far = c.hits[3] / 20000;
        const d = new CacheHierarchy();
        for (let i = 0; i < 20000; i++) d.access(0, rand(16 * 1024));
        const near = d.hits[0] / 20000;
        expect(far).toBeGreaterThan(0.9);
        expect(near).toBeGreaterThan(0.9);
      }),
      { seed: 16, numRuns: runs(5) },
    );
  });

  it("matches a reference LRU with last-use stamps, access for access, whatever the stream", () => {
    // The reference: per set, each way's line and last use; a miss fills the first way with
    // the oldest stamp at every level it missed in (empty ways have stamp 0).
    const reference = (levels: readonly { bytes: number; ways: number }[]) => {
      // Sets made when first used: the LLC has thousands.
      const sets = levels.map(() => new Map<number, { line: number; used: number }[]>());
      const setOf = (i: number, lineInSpace: number) => {
        const index = lineInSpace % (levels[i].bytes / LINE_BYTES / levels[i].ways);
        let set = sets[i].get(index);
        if (set === undefined) {
          set = Array.from({ length: levels[i].ways }, () => ({ line: -1, used: 0 }));
          sets[i].set(index, set);
        }
        return set;
      };
      let now = 0;
      return (space: number, va: number): number => {
        const lineInSpace = Math.floor(va / LINE_BYTES);
        const line = space * 2 ** 42 + lineInSpace;
        now++;
        let served = 3;
        const missed: { line: number; used: number }[][] = [];
        for (let i = 0; i < 3; i++) {
          const set = setOf(i, lineInSpace);
          const way = set.find((w) => w.line === line);
          if (way !== undefined) {
            way.used = now;
            served = i;
            break;
          }
          missed.push(set);
        }
        for (const set of missed) {
          const victim = set.reduce((a, b) => (b.used < a.used ? b : a));
          victim.line = line;
          victim.used = now;
        }
        return served;
      };
    };
    const small = [
      { name: "L1d", bytes: 4 * 64, ways: 2 },
      { name: "L2", bytes: 16 * 64, ways: 4 },
      { name: "LLC", bytes: 64 * 64, ways: 8 },
    ];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            // Few distinct lines, so sets fill, lines come back and get evicted.
            space: fc.constantFrom(0, 1, 2046),
            line: fc.integer({ min: 0, max: 40 }),
            far: fc.boolean(),
            offset: fc.integer({ min: 0, max: 63 }),
          }),
          { minLength: 100, maxLength: 600 },
        ),
        fc.boolean(),
        (stream, skylake) => {
          const levels = skylake ? DEFAULT_CACHE_LEVELS : small;
          const c = new CacheHierarchy(levels);
          const ref = reference(levels);
          for (const a of stream) {
            // Lines far apart in the address space share sets (and test the 47-bit tags).
            const line = a.far ? a.line * 2 ** 29 + a.line : a.line;
            const va = line * LINE_BYTES + a.offset;
            expect(c.access(a.space, va)).toBe(ref(a.space, va));
          }
        },
      ),
      { seed: 17, numRuns: runs(200) },
    );
  });

  it("refuses a hierarchy that is not three power-of-two levels, with a typed error", () => {
    expect(() => new CacheHierarchy([])).toThrow(
      expect.objectContaining({ code: "STUDY_BAD_CACHE" }),
    );
    const bad = [
      { ...DEFAULT_CACHE_LEVELS[0], bytes: 3000 },
      DEFAULT_CACHE_LEVELS[1],
      DEFAULT_CACHE_LEVELS[2],
    ];
    expect(() => new CacheHierarchy(bad)).toThrow(/powers of two/);
    const wide = [
      { ...DEFAULT_CACHE_LEVELS[0], ways: 64 },
      DEFAULT_CACHE_LEVELS[1],
      DEFAULT_CACHE_LEVELS[2],
    ];
    expect(() => new CacheHierarchy(wide)).toThrow(/ways at most 32/);
  });

  it("counts every user access and every page-walk reference of a run once, at the level that served it", () => {
    const k = new GuestTarget({
      backend: nativeBackend,
      params: { guestPageSize: "4K", hostPageSize: "4K" },
      guestBytes: 8 * 2 ** 20,
      seed: 1,
    });
    const pid = k.spawn();
    const va = k.mmap(pid, 4096 * 4);
    const vas = Float64Array.from({ length: 8 }, (_, i) => va + (i % 4) * 4096);
    k.replay(pid, vas, new Uint8Array(8).fill(ACCESS_READ), 8, 0);
    const c = k.counts();
    expect(c.accesses).toBe(8);
    expect(c.dramAccesses).toBe(4);
    expect(c.l2Hits + c.llcHits).toBe(0);
    expect(k.cache.hits[0] - k.walkHits[0]).toBe(4);
    // Every reference the page walks made went through the same caches.
    expect(k.walkHits.reduce((x, y) => x + y, 0)).toBe(c.walkRefs);
    expect(c.walkRefs).toBeGreaterThan(0);
  });

  it("hears every walk reference on every backend", () => {
    for (const backend of BACKENDS) {
      const k = new GuestTarget({
        backend,
        params: { guestPageSize: "4K", hostPageSize: "4K" },
        guestBytes: 8 * 2 ** 20,
        seed: 1,
      });
      const pid = k.spawn();
      const va = k.mmap(pid, 4096 * 64);
      const vas = Float64Array.from({ length: 64 }, (_, i) => va + i * 4096);
      k.replay(pid, vas, new Uint8Array(64).fill(ACCESS_READ), 64, 0);
      const c = k.counts();
      expect(c.walkRefs, backend.name).toBeGreaterThan(64);
      expect(c.walkL2Hits + c.walkLlcHits + c.walkDramAccesses + k.walkHits[0], backend.name).toBe(
        c.walkRefs,
      );
    }
  });
});
