// readRing over synthetic ring pages: each kind's indexes at Xen's offsets, occupancy as
// producer minus consumer mod 2^32 (wrapping included), ring sizes as __RING_SIZE for every
// page order, and a hostile page (any u32 in any word) read without a throw, touching only
// the index words.
import { RING_SIZE_4K } from "@hyperlab/abi";
import { ringSize } from "@hyperlab/split-drivers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ioRingSize, RING_KINDS, readRing } from "../../src/dashboard/index";

/** A page as a map from byte offset to u32, recording which offsets were read. */
function page(words: Record<number, number>) {
  const reads: number[] = [];
  return {
    reads,
    read32: (o: number) => {
      reads.push(o);
      return words[o] ?? 0;
    },
  };
}

const where = { name: "r", domid: 3, frame: 0x42 };

describe("readRing", () => {
  it("reads a block ring's header: req_prod, req_event, rsp_prod, rsp_event at 0, 4, 8, 12", () => {
    const p = page({ 0: 12, 4: 13, 8: 9, 12: 10 });
    expect(readRing("blkif", { ...where, name: "vbd 3/51712" }, p.read32)).toEqual({
      name: "vbd 3/51712",
      domid: 3,
      kind: "blkif",
      frame: 0x42,
      size: 32,
      used: 3,
      indexes: { req_prod: 12, req_event: 13, rsp_prod: 9, rsp_event: 10 },
    });
    expect(p.reads.sort((a, b) => a - b)).toEqual([0, 4, 8, 12]);
  });

  it("sizes netif rings and multi-page block rings as __RING_SIZE", () => {
    expect(readRing("netif_tx", where, page({}).read32).size).toBe(RING_SIZE_4K.netif_tx);
    expect(readRing("netif_rx", where, page({}).read32).size).toBe(RING_SIZE_4K.netif_rx);
    for (let order = 0; order <= 4; order++) {
      expect(ioRingSize("blkif", order)).toBe(ringSize("blkif", order));
      expect(ioRingSize("netif_tx", order)).toBe(ringSize("netif_tx", order));
      expect(readRing("blkif", { ...where, order }, page({}).read32).size).toBe(
        ringSize("blkif", order),
      );
    }
    // A ring-page-order no backend accepts (xenstore is guest-written) sizes nothing.
    for (const bad of [-1, 5, 1.5, Number.NaN]) expect(ioRingSize("blkif", bad)).toBe(0);
  });

  it("reads the console's two byte rings and the xenstore page's two", () => {
    // xencons_interface: in_cons 3072, in_prod 3076, out_cons 3080, out_prod 3084.
    const cons = page({ 3072: 5, 3076: 9, 3080: 100, 3084: 130 });
    expect(readRing("console_in", where, cons.read32)).toMatchObject({
      size: 1024,
      used: 4,
      indexes: { in_prod: 9, in_cons: 5 },
    });
    expect(readRing("console_out", where, cons.read32)).toMatchObject({
      size: 2048,
      used: 30,
      indexes: { out_prod: 130, out_cons: 100 },
    });
    // xenstore_domain_interface: req_cons 2048, req_prod 2052, rsp_cons 2056, rsp_prod 2060.
    const xs = page({ 2048: 7, 2052: 7, 2056: 40, 2060: 64 });
    expect(readRing("xenstore_req", where, xs.read32)).toMatchObject({
      size: 1024,
      used: 0,
      indexes: { req_prod: 7, req_cons: 7 },
    });
    expect(readRing("xenstore_rsp", where, xs.read32)).toMatchObject({ size: 1024, used: 24 });
  });

  it("counts across the 2^32 wrap of free-running indexes", () => {
    const p = page({ 3084: 2, 3080: 0xfffffffe });
    expect(readRing("console_out", where, p.read32).used).toBe(4);
    const q = page({ 0: 1, 8: 0xffffffff });
    expect(readRing("netif_rx", where, q.read32).used).toBe(2);
  });

  it("a hostile page of any words reads without a throw, only its index words, used = prod - cons mod 2^32", () => {
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    fc.assert(
      fc.property(
        fc.constantFrom(...RING_KINDS),
        fc.dictionary(
          fc.integer({ min: 0, max: 1023 }).map((w) => String(w * 4)),
          u32,
        ),
        fc.oneof(fc.integer({ min: -3, max: 8 }), fc.double()),
        (kind, words, order) => {
          const p = page(Object.fromEntries(Object.entries(words).map(([k, v]) => [Number(k), v])));
          const r = readRing(kind, { ...where, order }, p.read32);
          const vals = Object.values(r.indexes);
          expect(vals.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff)).toBe(true);
          expect(Number.isInteger(r.used) && r.used >= 0 && r.used <= 0xffffffff).toBe(true);
          const [prod, cons] =
            kind.startsWith("console") || kind.startsWith("xenstore")
              ? [vals[0], vals[1]]
              : [r.indexes.req_prod, r.indexes.rsp_prod];
          expect(r.used).toBe((prod - cons) >>> 0);
          const allowed =
            kind === "console_in" || kind === "console_out"
              ? [3072, 3076, 3080, 3084]
              : kind.startsWith("xenstore")
                ? [2048, 2052, 2056, 2060]
                : [0, 4, 8, 12];
          expect(p.reads.every((o) => allowed.includes(o))).toBe(true);
        },
      ),
      { seed: 14, numRuns: 300 },
    );
  });
});
