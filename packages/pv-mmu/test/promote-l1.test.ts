/*
 * promote_l1 over random tables: promoteL1 takes its common entries in a loop of its own and
 * leaves every other one to get_page_from_l1e's general path, so a table mixing both must
 * still be all or nothing. A refused pin gives back every reference it took (general counts
 * and type counts as before, the answer one of get_page_from_l1e's errnos); an accepted one
 * holds one general reference per present entry (and a writable type for RW ones), and
 * unpinning gives them all back.
 */

import {
  __HYPERVISOR_mmuext_op,
  DOMID_SELF,
  EACCES,
  EBUSY,
  EINVAL,
  EPERM,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_UNPIN_TABLE,
} from "@hyperlab/abi";
import { PGT_count_mask } from "@hyperlab/core";
import { assertFrameInvariants } from "@hyperlab/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { boot, guest } from "./helpers";

describe("promote_l1 on random tables", () => {
  it("is all or nothing, and unpinning gives back what pinning took", () => {
    const w = boot();
    const g = guest(w, { domid: 1 });
    const other = guest(w, { domid: 9, nrPages: 1100 });
    const v = g.d.vcpus[0];
    const f = w.hv.frames;
    const ram = w.hv.machine.ram;
    const spare = (k: number) => g.b.p2m[g.b.p2m.length - 1 - k];
    const table = spare(0);
    let free = -1;
    for (let m = f.nrFrames - 1; m > 0 && free < 0; m--) if (f.ownerOf(m) === -1) free = m;
    // Frames an entry may name: mostly the guest's spare frames, else its L4, another
    // domain's frame, a free frame, frames beyond RAM and INVALID_MFN.
    const target = fc.oneof(
      { weight: 40, arbitrary: fc.integer({ min: 1, max: 40 }).map(spare) },
      { weight: 1, arbitrary: fc.constant(g.b.l4Mfn) },
      { weight: 1, arbitrary: fc.constant(other.b.p2m[5]) },
      { weight: 1, arbitrary: fc.constant(free) },
      { weight: 1, arbitrary: fc.integer({ min: f.nrFrames, max: f.nrFrames + 4096 }) },
      { weight: 1, arbitrary: fc.constant(2 ** 40 - 1) },
    );
    // Flags: present with RW, USER, A, D at random, now and then a cache attribute, GLOBAL
    // or a disallowed high bit.
    // Slots crowd the table's first 64 and its last, so that a refused entry often follows
    // taken ones, and the loop's last entry is reached.
    const entry = fc.record({
      slot: fc.oneof(fc.integer({ min: 0, max: 63 }), fc.constant(511)),
      mfn: target,
      lo: fc
        .integer({ min: 0, max: 0xfff })
        .map((x) => 1 | (x & 0x66) | (x % 97 === 0 ? x & 0x198 : 0)),
      hi: fc
        .integer({ min: 0, max: 199 })
        .map((x) => (x === 0 ? 0x4000_0000 : x < 20 ? 0x10_0000 : 0)),
    });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 48 }), (entries) => {
        const words = ram.frameWords(table, true);
        words.fill(0);
        for (const e of entries) {
          words[e.slot * 2] = ((e.mfn % 0x10_0000) * 4096 + e.lo) >>> 0;
          words[e.slot * 2 + 1] = (Math.floor(e.mfn / 0x10_0000) | e.hi) >>> 0;
        }
        const count0 = Array.from(f.countInfo);
        const types0 = Array.from(f.typeInfo, (x) => x & PGT_count_mask);
        const pin = (cmd: number) =>
          w.hv.hypercall(v, __HYPERVISOR_mmuext_op, {
            uops: [{ cmd, arg1: { mfn: table } }],
            count: 1,
            foreigndom: DOMID_SELF,
          });
        const rc = pin(MMUEXT_PIN_L1_TABLE);
        expect([0, -EINVAL, -EBUSY, -EPERM, -EACCES]).toContain(rc);
        if (rc === 0) {
          // One general reference per present entry (the table's own: the pin's), a
          // writable type per RW entry.
          const refs = new Map<number, number>([[table, 1]]);
          const writable = new Map<number, number>([[table, 1]]);
          for (let i = 0; i < 512; i++) {
            const lo = words[i * 2];
            if ((lo & 1) === 0) continue;
            const m = (words[i * 2 + 1] & 0xf_ffff) * 0x10_0000 + (lo >>> 12);
            if (m >= f.nrFrames) continue;
            refs.set(m, (refs.get(m) ?? 0) + 1);
            if ((lo & 2) !== 0) writable.set(m, (writable.get(m) ?? 0) + 1);
          }
          for (const [m, n] of refs) expect([m, f.countInfo[m] - count0[m]]).toEqual([m, n]);
          for (const [m, n] of writable)
            expect([m, (f.typeInfo[m] & PGT_count_mask) - types0[m]]).toEqual([m, n]);
          assertFrameInvariants(w.hv);
          expect(pin(MMUEXT_UNPIN_TABLE)).toBe(0);
        }
        expect(Array.from(f.countInfo)).toEqual(count0);
        expect(Array.from(f.typeInfo, (x) => x & PGT_count_mask)).toEqual(types0);
        assertFrameInvariants(w.hv);
      }),
      { seed: 71, numRuns: 200 },
    );
  }, 120_000);
});
