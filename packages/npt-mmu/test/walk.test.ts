import { PFEC_write_access } from "@hyperlab/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EXIT_REASON_EPT_VIOLATION } from "../src/index";
import {
  boot,
  GuestMem,
  GuestTables,
  NO_CACHES,
  PRW,
  refsOf,
  refWalk,
  runs,
  seed,
} from "./helpers";

/** A cacheless world whose guest maps one page at 0x40_0000, CR3 loaded. */
function onePage() {
  const w = boot(NO_CACHES);
  const mem = new GuestMem(w);
  const t = new GuestTables(mem);
  const data = mem.alloc();
  t.map(0x40_0000, data);
  const v = mem.d.vcpus[0];
  v.cr3Mfn = t.cr3;
  return { w, mem, t, v, data };
}

describe("two-dimensional walk", () => {
  it("a 4-level guest over a 4-level nested table makes 24 references", () => {
    const { w, v, data } = onePage();
    expect(w.npt.translate(v, 0x40_0123, 0)).toBe(data * 4096 + 0x123); // backs the pages
    expect(refsOf(w.npt, () => w.npt.translate(v, 0x40_0123, 0))).toBe(24);
    expect(w.npt.counts.guestRefs).toBeGreaterThan(0);
  });

  it("tells walkRefSink every entry it reads, nested then guest at each level, in order", () => {
    const { w, mem, t, v, data } = onePage();
    w.npt.translate(v, 0x40_0123, 0); // backs the pages
    const heard: number[] = [];
    w.npt.walkRefSink = (ma) => heard.push(ma);
    expect(w.npt.translate(v, 0x40_0123, 0)).toBe(data * 4096 + 0x123);
    w.npt.walkRefSink = null;
    // The nested path of a gfn: the entry addresses from the EPT root down.
    const root = w.npt.eptRoot(mem.d);
    const nestedPath = (gfn: number): number[] => {
      const path: number[] = [];
      let table = root;
      for (let L = 4; L >= 1; L--) {
        const a = table * 4096 + (Math.floor(gfn / 512 ** (L - 1)) % 512) * 8;
        path.push(a);
        table = w.ram.read64lo(a) >>> 12;
      }
      return path;
    };
    const want: number[] = [];
    let table = t.cr3;
    for (let L = 4; L >= 1; L--) {
      want.push(...nestedPath(table));
      const a = table * 4096 + (Math.floor(0x40_0123 / 2 ** (12 + 9 * (L - 1))) % 512) * 8;
      want.push(a);
      table = w.ram.read64lo(a) >>> 12;
    }
    want.push(...nestedPath(data));
    expect(heard).toEqual(want);
    expect(heard).toHaveLength(24);
  });

  it("makes n*m + n + m references with empty caches, for every level count (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(4, 5),
        fc.constantFrom(4, 5),
        fc.array(
          fc.tuple(fc.integer({ min: 0, max: 2 ** 36 - 1 }), fc.integer({ min: 0, max: 4095 })),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        fc.nat(),
        (n, m, vas, pick) => {
          const w = boot({ ...NO_CACHES, guestLevels: n as 4 | 5, nestedLevels: m as 4 | 5 });
          const mem = new GuestMem(w, { pages: 64 });
          const t = new GuestTables(mem, n);
          const vpnScale = n === 5 ? 32 : 1; // use the fifth level's index bits too
          const targets = vas.map(([vpn, off]) => {
            const gfn = mem.alloc();
            const va = (vpn * vpnScale + (vpn % vpnScale)) * 4096 + off;
            t.map(va, gfn);
            return va;
          });
          const va = targets[pick % targets.length];
          const v = mem.d.vcpus[0];
          v.cr3Mfn = t.cr3;
          const first = w.npt.translate(v, va, 0);
          expect(first).toBe(refWalk(w.ram, t.cr3, va, n));
          expect(w.npt.exitCount(EXIT_REASON_EPT_VIOLATION)).toBeGreaterThan(0);
          let got = -2;
          const refs = refsOf(w.npt, () => {
            got = w.npt.translate(v, va, 0);
          });
          expect(got).toBe(first);
          expect(refs).toBe(n * m + n + m);
        },
      ),
      { seed, numRuns: runs(25) },
    );
  });

  it("the TLB-hit path makes no references", () => {
    const w = boot();
    const mem = new GuestMem(w);
    const t = new GuestTables(mem);
    const data = mem.alloc();
    t.map(0x1000, data);
    const v = mem.d.vcpus[0];
    v.cr3Mfn = t.cr3;
    w.npt.translate(v, 0x1000, 0);
    const hits = w.npt.counts.tlbHits;
    expect(refsOf(w.npt, () => expect(w.npt.translate(v, 0x1008, 0)).toBe(data * 4096 + 8))).toBe(
      0,
    );
    expect(w.npt.counts.tlbHits).toBe(hits + 1);
  });

  it("a write through a clean TLB entry walks again to set D, then hits", () => {
    const w = boot();
    const mem = new GuestMem(w);
    const t = new GuestTables(mem);
    const data = mem.alloc();
    t.map(0x1000, data);
    const v = mem.d.vcpus[0];
    v.cr3Mfn = t.cr3;
    w.npt.translate(v, 0x1000, 0);
    expect(refsOf(w.npt, () => w.npt.translate(v, 0x1000, PFEC_write_access))).toBeGreaterThan(0);
    expect(refsOf(w.npt, () => w.npt.translate(v, 0x1000, PFEC_write_access))).toBe(0);
  });

  it("sets A on every guest entry used and D on the leaf of a write", () => {
    const w = boot();
    const mem = new GuestMem(w);
    const t = new GuestTables(mem);
    const data = mem.alloc();
    t.map(0x20_0000, data);
    const v = mem.d.vcpus[0];
    v.cr3Mfn = t.cr3;
    w.npt.translate(v, 0x20_0000, PFEC_write_access);
    let table = t.cr3;
    for (let L = 4; L >= 1; L--) {
      const a = table * 4096 + (Math.floor(0x20_0000 / 2 ** (12 + 9 * (L - 1))) % 512) * 8;
      const lo = w.ram.read64lo(a);
      expect(lo & 0x20).toBe(0x20);
      if (L === 1) expect(lo & 0x40).toBe(0x40);
      table = lo >>> 12;
    }
  });

  it("warm structure caches and the nested TLB cut a walk to the guest's own references", () => {
    const w = boot();
    const mem = new GuestMem(w);
    const t = new GuestTables(mem);
    const data = mem.alloc();
    t.map(0x5000, data);
    const v = mem.d.vcpus[0];
    v.cr3Mfn = t.cr3;
    w.npt.translate(v, 0x5000, 0);
    // INVLPG drops the TLB entry and the guest structure caches; the nested TLB stays.
    w.npt.flushOne(v, 0x5000);
    expect(refsOf(w.npt, () => w.npt.translate(v, 0x5000, 0))).toBe(4);
    // After INVEPT everything is cold; caches filled during the walk may still help it.
    w.npt.invept(2);
    const cold = refsOf(w.npt, () => w.npt.translate(v, 0x5000, 0));
    expect(cold).toBeLessThanOrEqual(24);
    expect(cold).toBeGreaterThan(4);
    expect(w.npt.counts.nestedTlbHits + w.npt.counts.nestedPwcHits).toBeGreaterThan(0);
  });

  it("a guest PWC hit skips the upper guest levels for a neighbouring page", () => {
    const w = boot({ nestedTlbEntries: 0, nestedPwcEntries: 0 });
    const mem = new GuestMem(w);
    const t = new GuestTables(mem);
    t.map(0x5000, mem.alloc());
    t.map(0x6000, mem.alloc());
    const v = mem.d.vcpus[0];
    v.cr3Mfn = t.cr3;
    w.npt.translate(v, 0x5000, 0);
    w.npt.translate(v, 0x6000, 0); // backs the second data page
    w.npt.invvpid(1, v);
    w.npt.translate(v, 0x5000, 0); // refills the guest PWC
    const hits = w.npt.counts.guestPwcHits;
    // PDE-cache hit: one guest level (4 nested + 1) plus the data page's 4 nested references.
    expect(refsOf(w.npt, () => w.npt.translate(v, 0x6000, 0))).toBe(9);
    expect(w.npt.counts.guestPwcHits).toBe(hits + 1);
  });
});

describe("host large pages", () => {
  function layout(hostPageSize: "4K" | "2M" | "1G", order: number, ramBytes: number) {
    const w = boot({ ...NO_CACHES, hostPageSize }, ramBytes);
    const mem = new GuestMem(w, { pages: 64, order });
    const t = new GuestTables(mem);
    const data = mem.alloc();
    t.map(0x7000_0000, data);
    const v = mem.d.vcpus[0];
    v.cr3Mfn = t.cr3;
    w.npt.translate(v, 0x7000_0000, 0);
    return { w, mem, refs: refsOf(w.npt, () => w.npt.translate(v, 0x7000_0000, 0)), data };
  }

  it("2 MiB host pages make (n+1)(m-1) + n references", () => {
    const small = layout("4K", 9, 64 << 20);
    expect(small.refs).toBe(24);
    const big = layout("2M", 9, 64 << 20);
    expect(big.mem.frames[0] % 512).toBe(0);
    expect(big.refs).toBe(5 * 3 + 4);
    expect(big.w.npt.counts.backed2m).toBeGreaterThan(0);
    expect(big.w.npt.nestedMapping(big.mem.d, big.data)).toEqual({ mfn: big.data, pageSize: "2M" });
  });

  it("1 GiB host pages make (n+1)(m-2) + n references", () => {
    const big = layout("1G", 18, 3 * 2 ** 30);
    expect(big.mem.frames[0] % 2 ** 18).toBe(0);
    expect(big.refs).toBe(5 * 2 + 4);
    expect(big.w.npt.counts.backed1g).toBe(1);
    expect(big.w.npt.nestedMapping(big.mem.d, big.data)?.pageSize).toBe("1G");
  });

  it("falls back to 4 KiB where the domain's frames do not form an aligned run", () => {
    const w = layout("2M", 0, 64 << 20);
    expect(w.w.npt.counts.backed2m).toBe(0);
    expect(w.refs).toBe(24);
  });
});

describe("guest large pages", () => {
  it("a guest 2 MiB leaf ends the guest walk one level early", () => {
    const w = boot(NO_CACHES);
    const mem = new GuestMem(w, { pages: 600, order: 9 });
    const t = new GuestTables(mem);
    const base = mem.frames[512];
    expect(base % 512).toBe(0);
    t.map(0x4000_0000, base, PRW, 2);
    const v = mem.d.vcpus[0];
    v.cr3Mfn = t.cr3;
    const va = 0x4000_0000 + 0x1_2345;
    expect(w.npt.translate(v, va, 0)).toBe(base * 4096 + 0x1_2345);
    expect(refsOf(w.npt, () => w.npt.translate(v, va, 0))).toBe(3 * 4 + 3 + 4);
  });

  it("a guest 2 MiB page over a host 2 MiB page is one 2 MiB TLB entry; over 4 KiB host pages, 4 KiB entries", () => {
    for (const [hostPageSize, hits] of [
      ["2M", true],
      ["4K", false],
    ] as const) {
      const w = boot({ hostPageSize });
      const mem = new GuestMem(w, { pages: 600, order: 9 });
      const t = new GuestTables(mem);
      const base = mem.frames[512];
      t.map(0x4000_0000, base, PRW, 2);
      const v = mem.d.vcpus[0];
      v.cr3Mfn = t.cr3;
      expect(w.npt.translate(v, 0x4000_0000, 0)).toBe(base * 4096);
      const other = 0x4000_0000 + 0x7_3008;
      let got = -2;
      expect(refsOf(w.npt, () => (got = w.npt.translate(v, other, 0))) === 0).toBe(hits);
      expect(got).toBe(base * 4096 + 0x7_3008);
      // Splintered: each 4 KiB of the guest page was a fill of its own.
      expect(w.npt.counts.splinteredFills).toBe(hits ? 0 : 2);
    }
  });
});

describe("walkRefSink", () => {
  it("hears every guest and nested entry of a 2D walk: 24 on a cold walk", () => {
    const w = boot(NO_CACHES);
    const mem = new GuestMem(w, { pages: 64, order: 9 });
    const t = new GuestTables(mem);
    t.map(0x7000_0000, mem.alloc());
    const v = mem.d.vcpus[0];
    v.cr3Mfn = t.cr3;
    w.npt.translate(v, 0x7000_0000, 0); // faults the nested table in
    const heard: number[] = [];
    w.npt.walkRefSink = (ma) => heard.push(ma);
    expect(refsOf(w.npt, () => w.npt.translate(v, 0x7000_0000, 0))).toBe(24);
    expect(heard).toHaveLength(24);
    // The guest's own entries are among them, at their machine addresses (gfn = mfn here).
    expect(heard).toContain(t.slot(0x7000_0000, 4));
    expect(heard).toContain(t.slot(0x7000_0000, 1));
    expect(new Set(heard).size).toBeGreaterThan(8);
  });
});
