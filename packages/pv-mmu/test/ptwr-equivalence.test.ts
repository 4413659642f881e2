/*
 * Writable page tables are emulated as validated updates: a guest store of an entry into one
 * of its (read-only mapped) L1 tables succeeds exactly when the same entry through
 * mmu_update does, and leaves the same entries and the same counts.
 */
import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_vm_assist,
  DOMID_SELF,
  VMASST_CMD_enable,
  VMASST_TYPE_writable_pagetables,
} from "@hyperlab/abi";
import { assertFrameInvariants } from "@hyperlab/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { boot, guest } from "./helpers";

const LONG = process.env.HYPERLAB_LONG === "1";

function world() {
  const w = boot(16 << 20);
  const g = guest(w, { nrPages: 1100 });
  const v = g.d.vcpus[0];
  w.hv.hypercall(v, __HYPERVISOR_vm_assist, {
    cmd: VMASST_CMD_enable,
    type: VMASST_TYPE_writable_pagetables,
  });
  // The L1 that maps the page after the bootstrap region, and where that L1 is mapped.
  const loc = w.pv.guestL1Slot(g.b.l4Mfn, g.b.vEnd + 4096);
  const l1 = Math.floor(loc / 512);
  const l1Va = g.b.virtBase + g.b.p2m.indexOf(l1) * 4096;
  return { w, g, v, l1, l1Va };
}

const FLAGS = [0, 1, 3, 0x21, 0x63, 0x9, 0x81, 0x101, 0x5];

describe("ptwr is a validated update", () => {
  it("agrees with mmu_update on random entries", () => {
    const a = world();
    const b = world();
    fc.assert(
      fc.property(
        fc.nat(511),
        fc.nat(),
        fc.nat(FLAGS.length - 1),
        fc.boolean(),
        (slot, pick, fl, nx) => {
          // The same frame choice in both worlds: they were built identically.
          const frames = [
            a.g.b.p2m[pick % a.g.b.p2m.length],
            a.l1,
            a.g.b.l4Mfn,
            1,
            pick % a.w.hv.frames.nrFrames,
          ];
          const mfn = frames[pick % frames.length];
          const lo = (mfn % 0x10_0000) * 4096 + FLAGS[fl];
          const hi = (Math.floor(mfn / 0x10_0000) | (nx ? 0x8000_0000 : 0)) >>> 0;
          const viaPtwr = a.w.pv.write64(a.v, a.l1Va + slot * 8, lo >>> 0, hi);
          const rc = b.w.hv.hypercall(b.v, __HYPERVISOR_mmu_update, {
            ureqs: new Uint32Array([b.l1 * 4096 + slot * 8, 0, lo >>> 0, hi]),
            count: 1,
            foreigndom: DOMID_SELF,
          });
          expect(viaPtwr).toBe(rc === 0);
          const ra = a.w.hv.machine.ram;
          const rb = b.w.hv.machine.ram;
          expect(ra.read32(a.l1 * 4096 + slot * 8)).toBe(rb.read32(b.l1 * 4096 + slot * 8));
          expect(ra.read32(a.l1 * 4096 + slot * 8 + 4)).toBe(rb.read32(b.l1 * 4096 + slot * 8 + 4));
          expect(Array.from(a.w.hv.frames.countInfo)).toEqual(Array.from(b.w.hv.frames.countInfo));
          expect(Array.from(a.w.hv.frames.typeInfo)).toEqual(Array.from(b.w.hv.frames.typeInfo));
        },
      ),
      { seed: 0x97e7, numRuns: LONG ? 3000 : 300 },
    );
    assertFrameInvariants(a.w.hv);
    assertFrameInvariants(b.w.hv);
  });
});
