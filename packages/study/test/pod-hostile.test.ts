// A guest's memory populated on demand (the study's native, nested and shadow targets reserve
// their blocks, core's reserveDomainPages) under a hostile guest: random translations of any
// address (the direct map over every frame, and anywhere), device-model transfers at any
// guest-physical address, shadowed page-table stores anywhere, and references asked for any
// frame number. Nothing throws; the frame table keeps testkit's invariants (a frame of a PoD
// block is free, out of the pool and counted in podPages; every populated block is whole and
// counted in tot_pages); destroying the domain gives every frame back.
import { PAGE_OFFSET } from "@hyperlab/guest";
import { GuestMemory } from "@hyperlab/kvm-io";
import { checkFrameInvariants } from "@hyperlab/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BACKENDS } from "../src/backends";
import { GuestTarget } from "../src/guest-target";

const MiB = 2 ** 20;
const LONG = process.env.HYPERLAB_LONG === "1";

type Op =
  | { t: "direct"; pfn: number; access: number }
  | { t: "va"; va: number; access: number }
  | { t: "device"; gpa: number; len: number; write: boolean }
  | { t: "store"; gpa: number; lo: number; hi: number }
  | { t: "ref"; mfn: number };

function ops(nrFrames: number): fc.Arbitrary<Op[]> {
  const frame = fc.oneof(
    fc.integer({ min: 0, max: Math.ceil(nrFrames * 1.1) }),
    fc.constantFrom(-1, 1.5, Number.NaN, 2 ** 31, 2 ** 40, 2 ** 53),
  );
  const access = fc.integer({ min: 0, max: 31 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ t: fc.constant("direct" as const), pfn: frame, access }),
    fc.record({
      t: fc.constant("va" as const),
      va: fc.oneof(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.constantFrom(-4096, 2 ** 60)),
      access,
    }),
    fc.record({
      t: fc.constant("device" as const),
      gpa: fc.oneof(
        fc.integer({ min: 0, max: Math.ceil(nrFrames * 1.1) * 4096 }),
        fc.constantFrom(-1, 2 ** 52, 2 ** 60),
      ),
      len: fc.integer({ min: 0, max: 3 * 4096 }),
      write: fc.boolean(),
    }),
    fc.record({
      t: fc.constant("store" as const),
      gpa: fc.oneof(
        fc.integer({ min: 0, max: Math.ceil(nrFrames * 1.1) * 4096 }).map((x) => x - (x % 8)),
        fc.constantFrom(-8, 3, 2 ** 53),
      ),
      lo: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      hi: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    }),
    fc.record({ t: fc.constant("ref" as const), mfn: frame }),
  );
  return fc.array(op, { minLength: 1, maxLength: 40 });
}

describe("populate on demand under a hostile guest", () => {
  for (const name of ["native", "nested", "shadow"]) {
    const backend = BACKENDS.find((b) => b.name === name)!;
    for (const hostPageSize of name === "nested" ? (["4K", "2M"] as const) : (["4K"] as const)) {
      it(`${name} (host pages ${hostPageSize}): invariants hold and destroy returns every frame`, () => {
        const probe = new GuestTarget({
          backend,
          params: { guestPageSize: "4K", hostPageSize },
          guestBytes: 16 * MiB,
          seed: 1,
        });
        const nrFrames = probe.hv.frames.nrFrames;
        // Runs in which the hostile accesses populated a block (some must).
        let populated = 0;
        fc.assert(
          fc.property(ops(nrFrames), (list) => {
            const k = new GuestTarget({
              backend,
              params: { guestPageSize: "4K", hostPageSize },
              guestBytes: 16 * MiB,
              seed: 1,
            });
            const hv = k.hv;
            const d = hv.domain(1)!;
            const v = d.vcpus[0];
            // Booting touched only part of the guest's memory: blocks are left to populate.
            expect(d.podPages).toBeGreaterThan(0);
            const pod0 = d.podPages;
            const mmu = hv.slot("mmu");
            const mem = new GuestMemory(hv, d);
            for (const o of list) {
              if (o.t === "direct") mmu.translate(v, PAGE_OFFSET + o.pfn * 4096, o.access);
              else if (o.t === "va") mmu.translate(v, o.va, o.access);
              else if (o.t === "device") {
                const buf = new Uint8Array(o.len);
                if (o.write) mem.write(o.gpa, buf);
                else mem.read(o.gpa, buf);
              } else if (o.t === "store") mmu.guestStore?.(v, o.gpa, o.lo, o.hi);
              else if (hv.frames.getPage(o.mfn, d.domid)) hv.frames.putPage(o.mfn);
            }
            expect(checkFrameInvariants(hv, { baseRefs: false })).toEqual([]);
            expect(d.totPages + d.podPages).toBeLessThanOrEqual(d.maxPages);
            if (d.podPages < pod0) populated++;
            const free = hv.machine.frames.nrFreeFrames;
            const pod = d.podPages;
            hv.destroyDomain(d);
            expect(d.state).toBe("dead");
            expect(hv.frames.podFrames).toBe(0);
            expect(hv.machine.frames.nrFreeFrames).toBeGreaterThanOrEqual(free + pod);
            expect(checkFrameInvariants(hv, { baseRefs: false })).toEqual([]);
          }),
          { seed: 93, numRuns: LONG ? 100 : 20 },
        );
        expect(populated).toBeGreaterThan(0);
      }, 120_000);
    }
  }
});
