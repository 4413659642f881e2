/*
 * The warm walk's straight line (translateSlow: the guest structure caches give the leaf
 * table, the nested TLB holds its gfn) against a world without caches: it keeps the view of
 * the last leaf table's RAM chunk from walk to walk, and makes no TLB insert for a page size
 * the TLB has no array of. Translations, faults and RAM must be as without caches.
 */
import { describe, expect, it } from "vitest";
import type { NptMmuOptions } from "../src/index";
import { boot, GuestMem, GuestTables, NO_CACHES } from "./helpers";

const BASE = 0x7f00_0000_0000;
/** A TLB with only a 1 GiB array (as the bench's warm world): every 4 KiB translation walks. */
const WARM: NptMmuOptions = { tlb: { levels: [{ size1g: { sets: 1, ways: 1 } }] } };

describe("the warm walk", () => {
  it("answers as a walk without caches over leaf tables in different RAM chunks, entries changed between walks", () => {
    const worlds = [boot(WARM), boot(NO_CACHES)];
    const mems = worlds.map((w) => new GuestMem(w, { pages: 1400 }));
    const tables = mems.map((m) => new GuestTables(m));
    // Two 2 MiB regions whose leaf tables are more than a chunk (512 frames) apart.
    const second = BASE + 2 ** 30;
    for (let k = 0; k < 2; k++) {
      const m = mems[k];
      for (let p = 0; p < 8; p++) tables[k].map(BASE + p * 4096, m.frames[1300 + p]);
      for (let i = 0; i < 600; i++) m.alloc();
      for (let p = 0; p < 8; p++) tables[k].map(second + p * 4096, m.frames[1310 + p]);
    }
    const leaf = (va: number) => Math.floor(tables[0].slot(va, 1) / 4096);
    expect(leaf(BASE) >>> 9).not.toBe(leaf(second) >>> 9);
    const vs = mems.map((m) => m.d.vcpus[0]);
    for (let k = 0; k < 2; k++) vs[k].cr3Mfn = tables[k].cr3;
    const translate = (va: number, access = 0) =>
      worlds.map((w, k) => {
        const r = w.npt.translate(vs[k], va, access);
        return r >= 0 ? r : `fault ${w.npt.fault.errorCode} exit ${w.npt.fault.exitReason}`;
      });
    const both = (va: number, access = 0) => {
      const [a, b] = translate(va, access);
      expect(a).toBe(b);
      return a;
    };
    for (let round = 0; round < 3; round++) {
      for (let p = 0; p < 8; p++) {
        both(BASE + p * 4096 + 8);
        both(second + p * 4096 + 16, p & 2);
      }
    }
    // A leaf entry cleared in the second region's table, then one in the first's: the next
    // walks read the entries as they are now (the kept view is RAM's own, not a copy).
    for (let k = 0; k < 2; k++) {
      worlds[k].ram.write64(tables[k].slot(second + 3 * 4096, 1), 0, 0);
      worlds[k].ram.write64(tables[k].slot(BASE + 5 * 4096, 1), 0, 0);
    }
    expect(both(second + 3 * 4096)).toMatch(/^fault/);
    expect(both(BASE + 5 * 4096)).toMatch(/^fault/);
    for (let p = 0; p < 8; p++) {
      both(second + p * 4096);
      both(BASE + p * 4096, 2);
    }
    expect(worlds[0].npt.counts.walks).toBeGreaterThan(40);
    expect(worlds[0].npt.counts.guestPwcHits).toBeGreaterThan(30);
    expect(worlds[0].npt.counts.nestedTlbHits).toBeGreaterThan(30);
    // The guest tables' A/D bits as written by each world.
    for (const f of mems[0].allocated()) {
      for (let i = 0; i < 512; i++) {
        const a = worlds[0].ram.read64lo(f * 4096 + i * 8);
        const b = worlds[1].ram.read64lo(mems[1].frames[mems[0].frames.indexOf(f)] * 4096 + i * 8);
        if (a !== b) expect.fail(`entry ${i} of frame ${f} differs`);
      }
    }
  });
});
