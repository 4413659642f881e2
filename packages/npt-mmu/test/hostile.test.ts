import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { boot, GuestMem, GuestTables, runs, seed } from "./helpers";

describe("a hostile guest", () => {
  it("random page-table contents and addresses never throw and never reach another domain's frame", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(63), fc.nat(511), fc.nat(0xffff_ffff), fc.nat(0xffff_ffff)), {
          maxLength: 60,
        }),
        fc.array(fc.tuple(fc.double({ min: -1, max: 2 ** 49, noNaN: false }), fc.nat(31)), {
          minLength: 1,
          maxLength: 30,
        }),
        fc.constantFrom("4K", "2M", "1G"),
        (writes, accesses, hostPageSize) => {
          const w = boot({ hostPageSize: hostPageSize as "4K" });
          const mem = new GuestMem(w, { pages: 64 });
          const victim = new GuestMem(w, { pages: 4 });
          const t = new GuestTables(mem);
          const pool = [...mem.frames];
          for (const [f, slot, lo, hi] of writes) {
            // Half the time, point the entry at a frame of the pool (a plausible table).
            const target = lo & 1 ? pool[f] : f * 7919;
            const l = lo & 2 ? ((target % 2 ** 20) * 4096 + (lo & 0xfff)) >>> 0 : lo;
            const h = lo & 2 ? (hi & 0x8000_0000) | Math.floor(target / 2 ** 20) : hi;
            w.ram.write64(pool[f] * 4096 + slot * 8, l, h >>> 0);
          }
          const v = mem.d.vcpus[0];
          v.cr3Mfn = t.cr3;
          for (const [va, access] of accesses) {
            const r = w.npt.translate(v, va, access);
            if (r >= 0) {
              const mfn = Math.floor(r / 4096);
              expect(w.hv.frames.ownerOf(mfn)).toBe(mem.d.domid);
            }
            expect(w.npt.guestStore(v, Math.floor(va / 8) * 8, 1, 2)).toBeLessThanOrEqual(0);
          }
          for (const f of victim.frames) expect(w.ram.read64lo(f * 4096)).toBe(0);
        },
      ),
      { seed, numRuns: runs(40) },
    );
  });
});
