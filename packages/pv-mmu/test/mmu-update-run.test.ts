/*
 * mmu_update does a run of requests on the validated L1 of the request before in
 * PvPageTables.modL1Run (a written-out common case that stops, untouched, at any request it
 * does not handle); the first request of a batch always takes the general path. So a batch
 * must leave the world exactly as its requests sent one hypercall each would (stopping at
 * the first failure), over hostile requests: every error path, other tables and frames,
 * MACHPHYS and unknown commands mixed into runs on the update L1.
 */

import { __HYPERVISOR_mmu_update, DOMID_SELF } from "@hyperlab/abi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hashWords, hostileBatches, type PvWorld, pvWorld } from "../bench/fixture";

function mmuUpdate(w: PvWorld, ureqs: Uint32Array): { rc: number; pdone: number } {
  const a = { ureqs, count: ureqs.length / 4, foreigndom: DOMID_SELF, pdone: 0 };
  const rc = w.hv.hypercall(w.v, __HYPERVISOR_mmu_update, a);
  return { rc, pdone: a.pdone };
}

/** The frame table, the entries' bookkeeping, the counters and the words of `frames`. */
function snapshot(w: PvWorld, frames: Iterable<number>): number[] {
  const f = w.hv.frames;
  const pt = w.pv.pt;
  const ram = w.hv.machine.ram;
  let h = 0x811c9dc5;
  for (const mfn of frames) h = hashWords(h, ram.frameWords(mfn, false));
  return [
    h,
    hashWords(0, f.ownerKeys),
    hashWords(0, f.countInfo),
    hashWords(0, f.typeInfo),
    hashWords(0, pt.writableEpoch),
    hashWords(0, pt.linear),
    pt.flushEpoch,
    pt.counts.validatedL1e,
    pt.counts.promotions,
    pt.counts.demotions,
    w.pv.counters.mmuUpdates.value,
  ];
}

describe("mmu_update's runs on one L1 (modL1Run)", () => {
  it("leave the same world as the same requests one hypercall each", () => {
    // Two identical worlds, kept in step: one takes each batch whole, the other request by
    // request.
    const whole = pvWorld();
    const single = pvWorld();
    const nr = whole.hv.frames.nrFrames;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 30 }),
        fc.integer({ min: 2, max: 24 }),
        (seed, n) => {
          // Hostile requests, most of them on the update L1, in one batch of n.
          const reqs = hostileBatches(whole, seed, 12).flatMap((b) => Array.from(b.ureqs));
          const ureqs = Uint32Array.from(reqs.slice(0, n * 4));
          const count = ureqs.length / 4;
          const frames = new Set<number>([whole.l1]);
          for (let i = 0; i < count; i++) {
            const mfn = ureqs[i * 4 + 1] * 0x10_0000 + (ureqs[i * 4] >>> 12);
            if (mfn < nr) frames.add(mfn);
          }
          const got = mmuUpdate(whole, ureqs);
          let rc = 0;
          let pdone = 0;
          for (let i = 0; i < count && rc === 0; i++) {
            const r = mmuUpdate(single, ureqs.slice(i * 4, i * 4 + 4));
            rc = r.rc;
            pdone += r.pdone;
          }
          expect(got).toEqual({ rc, pdone });
          expect(snapshot(whole, frames)).toEqual(snapshot(single, frames));
        },
      ),
      { seed: 71, numRuns: 300 },
    );
  }, 120_000);
});
