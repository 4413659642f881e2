// The blkif.h encoders and decoders: what they write lands at the offsets @hyperlab/abi
// checks against the C headers, a request or response survives a round trip, and any 112
// bytes decode without a throw (a hostile slot).
import {
  BLKIF_OP_DISCARD,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_WRITE,
  blkif_request,
  blkif_request_discard,
  blkif_request_indirect,
  blkif_response,
} from "@hyperlab/abi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BLKIF_ENTRY_BYTES,
  BLKIF_SEGS_PER_INDIRECT_FRAME,
  BlkifRequest,
  type BlkifResponse,
  blkCounters,
  decodeRequest,
  decodeResponse,
  perRequest,
  readSegment,
  segmentOffset,
  writeDiscardRequest,
  writeIndirectRequest,
  writeResponse,
  writeRwRequest,
  writeSegment,
} from "../src/index";

const LONG = process.env.HYPERLAB_LONG === "1";
const slot = () => {
  const b = new Uint8Array(BLKIF_ENTRY_BYTES);
  return { b, v: new DataView(b.buffer) };
};

describe("blkif encoders", () => {
  it("a read/write request: header fields and segments at the header's offsets", () => {
    const { b, v } = slot();
    writeRwRequest(v, 0, BLKIF_OP_WRITE, 3, 51712, 9, 2 ** 33 + 5);
    for (let i = 0; i < 3; i++) writeSegment(v, segmentOffset(i), 100 + i, i, 7);
    const F = blkif_request.fields;
    expect(b[F.operation!.offset]).toBe(BLKIF_OP_WRITE);
    expect(b[F.nr_segments!.offset]).toBe(3);
    expect(v.getUint16(F.handle!.offset, true)).toBe(51712);
    expect(v.getUint32(F.id!.offset, true)).toBe(9);
    expect(v.getUint32(F.sector_number!.offset, true)).toBe(5);
    expect(v.getUint32(F.sector_number!.offset + 4, true)).toBe(2);
    expect(segmentOffset(2)).toBe(F.seg!.offset + 2 * F.seg!.size);
    const r = new BlkifRequest();
    decodeRequest(v, r);
    expect([r.operation, r.nrSegments, r.handle, r.idLo, r.idHi]).toEqual([1, 3, 51712, 9, 0]);
    expect(r.sectorNumber).toBe(2 ** 33 + 5);
    expect([...r.gref.subarray(0, 3)]).toEqual([100, 101, 102]);
    expect([...r.firstSect.subarray(0, 3)]).toEqual([0, 1, 2]);
    expect([...r.lastSect.subarray(0, 3)]).toEqual([7, 7, 7]);
  });

  it("a discard request", () => {
    const { b, v } = slot();
    writeDiscardRequest(v, 0, 1, 7, 42, 1000, 2 ** 32 + 8);
    const D = blkif_request_discard.fields;
    expect(b[D.operation!.offset]).toBe(BLKIF_OP_DISCARD);
    expect(b[D.flag!.offset]).toBe(1);
    const r = new BlkifRequest();
    decodeRequest(v, r);
    expect([r.flag, r.handle, r.idLo, r.sectorNumber, r.nrSectors, r.nrSectorsHi]).toEqual([
      1,
      7,
      42,
      1000,
      2 ** 32 + 8,
      1,
    ]);
  });

  it("an indirect request and its segments in an indirect page", () => {
    const { b, v } = slot();
    writeIndirectRequest(v, 0, BLKIF_OP_WRITE, 600, 51712, 3, 64, [11, 12], 2);
    const I = blkif_request_indirect.fields;
    expect(b[I.operation!.offset]).toBe(BLKIF_OP_INDIRECT);
    expect(b[I.indirect_op!.offset]).toBe(BLKIF_OP_WRITE);
    expect(v.getUint16(I.nr_segments!.offset, true)).toBe(600);
    expect(v.getUint16(I.handle!.offset, true)).toBe(51712);
    const r = new BlkifRequest(1024);
    decodeRequest(v, r);
    expect([r.indirectOp, r.nrSegments, r.handle, r.idLo, r.sectorNumber]).toEqual([
      1, 600, 51712, 3, 64,
    ]);
    expect([...r.indirectGrefs]).toEqual([11, 12, 0, 0, 0, 0, 0, 0]);
    const page = new DataView(new ArrayBuffer(4096));
    expect(BLKIF_SEGS_PER_INDIRECT_FRAME).toBe(512);
    writeSegment(page, 511 * 8, 77, 2, 5);
    readSegment(page, 511 * 8, r, 511);
    expect([r.gref[511], r.firstSect[511], r.lastSect[511]]).toEqual([77, 2, 5]);
  });

  it("a response with a negative status", () => {
    const { b, v } = slot();
    writeResponse(v, 0, 0xdeadbeef, 1, 6, -2);
    const R = blkif_response.fields;
    expect(b[R.operation!.offset]).toBe(6);
    expect(v.getInt16(R.status!.offset, true)).toBe(-2);
    const out: BlkifResponse = { idLo: 0, idHi: 0, operation: 0, status: 0 };
    decodeResponse(v, out);
    expect(out).toEqual({ idLo: 0xdeadbeef, idHi: 1, operation: 6, status: -2 });
  });

  it("any slot bytes decode without a throw, nr_segments as the header's types", () => {
    const r = new BlkifRequest();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 112, maxLength: 112 }), (bytes) => {
        const v = new DataView(bytes.buffer);
        decodeRequest(v, r);
        expect(r.nrSegments).toBeLessThanOrEqual(r.operation === BLKIF_OP_INDIRECT ? 0xffff : 0xff);
        // The high half is kept for the range checks (a backend refuses any non-zero one).
        expect(r.sectorHi).toBe(v.getUint32(blkif_request.fields.sector_number!.offset + 4, true));
      }),
      { seed: 13, numRuns: LONG ? 20000 : 500 },
    );
  });
});

describe("counters", () => {
  it("have units and descriptions; perRequest divides by requests", () => {
    const { stats, counters } = blkCounters("blkback");
    counters.requests.value = 4;
    counters.hypercalls.value = 8;
    counters.copiedBytes.value = 16384;
    const snap = stats.snapshot().blkback!;
    expect(snap.every((s) => s.unit.length > 0 && s.description.length > 0)).toBe(true);
    expect(perRequest(snap)).toMatchObject({ hypercalls: 2, copiedBytes: 4096, copies: 0 });
    expect(perRequest(blkCounters("x").stats.snapshot().x!).hypercalls).toBe(0);
  });
});
