/*
 * A hostile domU issues random mmu_update requests whose entries carry _PAGE_IOMAP (or not)
 * and name random frames: its own RAM, dom0's RAM, the device frame it was given, a
 * read-only one, device frames and holes it was not given, frames past the address width.
 * Every answer is 0 or one of Xen's errnos, nothing throws, and after every call the I/O
 * memory invariant holds: no domain maps I/O memory or RAM it was not given, I/O entries are
 * uncached, read-only ranges are mapped read-only. The device sees no access.
 */
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_IOMAP,
  _PAGE_PAT,
  _PAGE_PCD,
  _PAGE_PRESENT,
  _PAGE_PWT,
  _PAGE_RW,
  _PAGE_USER,
  EBUSY,
  EINVAL,
  EPERM,
} from "@hyperlab/abi";
import { checkFrameInvariants } from "@hyperlab/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IOMEM_FRAME_LIMIT, Rangeset } from "../src/index";
import {
  boot,
  DEV_MFN,
  DEV2_MFN,
  freeVa,
  guest,
  HOLE_MFN,
  iomemViolations,
  setL1,
} from "./helpers";

const LONG = process.env.HYPERLAB_LONG === "1";
const RUNS = LONG ? 200 : 15;

const FLAG_BITS = [
  _PAGE_PRESENT,
  _PAGE_RW,
  _PAGE_USER,
  _PAGE_PWT,
  _PAGE_PCD,
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PAT,
  _PAGE_IOMAP,
];

describe("a hostile domU mapping I/O memory", () => {
  it("gets an errno or a legal mapping, and never maps what it was not given", () => {
    const frameKind = fc.integer({ min: 0, max: 7 });
    // So the property cannot pass by refusing everything: some I/O entries must be accepted.
    let ioAccepted = 0;
    let ioRefused = 0;
    const op = fc.record({
      kind: frameKind,
      pick: fc.nat(),
      flags: fc.array(fc.boolean(), { minLength: FLAG_BITS.length, maxLength: FLAG_BITS.length }),
      slot: fc.integer({ min: 0, max: 7 }),
    });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        const w = boot({ readOnly: [{ start: DEV2_MFN, end: DEV2_MFN }] });
        const d0 = guest(w, 0);
        const d1 = guest(w, 1);
        w.io.iomemPermitAccess(d1.d, DEV2_MFN, DEV2_MFN);
        const ram = w.hv.frames.nrFrames;
        for (const o of ops) {
          let mfn: number;
          switch (o.kind) {
            case 0:
              mfn = d1.b.p2m[o.pick % d1.b.p2m.length];
              break;
            case 1:
              mfn = d0.b.p2m[o.pick % d0.b.p2m.length];
              break;
            case 2:
              mfn = DEV_MFN;
              break;
            case 3:
              mfn = DEV2_MFN;
              break;
            case 4:
              mfn = HOLE_MFN;
              break;
            case 5:
              mfn = ram + (o.pick % 4096);
              break;
            case 6:
              mfn = IOMEM_FRAME_LIMIT - 1 - (o.pick % 4);
              break;
            default:
              mfn = o.pick % ram;
          }
          let flags = 0;
          for (let i = 0; i < FLAG_BITS.length; i++) if (o.flags[i]) flags |= FLAG_BITS[i];
          const rc = setL1(w, d1, freeVa(d1, o.slot), mfn, flags);
          expect([0, -EINVAL, -EPERM, -EBUSY]).toContain(rc);
          if (mfn >= ram && (flags & _PAGE_PRESENT) !== 0) {
            if (rc === 0) ioAccepted++;
            else ioRefused++;
          }
          expect(iomemViolations(w, d1.d)).toEqual([]);
          expect(checkFrameInvariants(w.hv)).toEqual([]);
        }
        expect(w.dev.reads + w.dev.writes).toBe(0);
      }),
      { seed: 0x10_4a9, numRuns: RUNS },
    );
    expect(ioAccepted).toBeGreaterThan(0);
    expect(ioRefused).toBeGreaterThan(0);
  });
});

describe("Rangeset", () => {
  it("agrees with a set of numbers under random adds and removes", () => {
    const range = fc.tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 8 }));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), range), { maxLength: 30 }), (ops) => {
        const r = new Rangeset();
        const model = new Set<number>();
        for (const [add, [s, len]] of ops) {
          const e = s + len;
          if (add) r.add(s, e);
          else r.remove(s, e);
          for (let x = s; x <= e; x++) add ? model.add(x) : model.delete(x);
        }
        const ranges = r.ranges();
        // Sorted, disjoint, never adjacent, and exactly the model's numbers.
        for (let i = 1; i < ranges.length; i++)
          expect(ranges[i].start).toBeGreaterThan(ranges[i - 1].end + 1);
        const flat: number[] = [];
        for (const x of ranges) for (let n = x.start; n <= x.end; n++) flat.push(n);
        expect(flat).toEqual([...model].sort((a, b) => a - b));
        for (let s = 0; s < 72; s += 3) {
          let all = true;
          let any = false;
          for (let x = s; x <= s + 2; x++) {
            all &&= model.has(x);
            any ||= model.has(x);
          }
          expect(r.contains(s, s + 2)).toBe(all);
          expect(r.overlaps(s, s + 2)).toBe(any);
        }
        expect(r.isEmpty).toBe(model.size === 0);
      }),
      { seed: 0x5e7, numRuns: LONG ? 2000 : 300 },
    );
  });
});
