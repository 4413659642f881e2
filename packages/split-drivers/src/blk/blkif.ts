/*
 * The block ring protocol of Xen 4.17's public/io/blkif.h over a ring slot's bytes: the
 * request forms (read/write with up to 11 direct segments, discard, indirect) and the
 * response, read and written at the offsets @hyperlab/abi checks against the C headers.
 * Also the per-driver counters (with units) both ends keep.
 *
 * Invariant: decoding never throws and never allocates: it fills a caller-owned
 * `BlkifRequest` from a private copy of the slot (RING_COPY_REQUEST), so a front end that
 * rewrites the slot afterwards changes nothing the back end checked. Every number read is
 * kept as the header types it (u8, u16, u32 halves of u64), and range checks are the
 * caller's.
 */
import {
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_INDIRECT,
  blkif_request,
  blkif_request_discard,
  blkif_request_indirect,
  blkif_request_segment,
  blkif_response,
} from "@hyperlab/abi";
import { type Counter, HyperlabError, Stats, type StatValue } from "@hyperlab/core";

/** Codes of the errors the block drivers throw at a caller's mistake. */
export type BlkErrorCode = "BLK_BAD_OPTION";

/** A user's mistake configuring or calling a block front or back end. */
export class BlkError extends HyperlabError<BlkErrorCode> {}

/** Sectors of 512 bytes in one 4 KiB segment page (XEN_PAGE_SIZE / 512). */
export const BLKIF_SECTORS_PER_PAGE = 8;
/** Segments one indirect page holds (Linux's SEGS_PER_INDIRECT_FRAME: 4096 / 8). */
export const BLKIF_SEGS_PER_INDIRECT_FRAME = 4096 / blkif_request_segment.sizeof;
/** blkback's MAX_INDIRECT_SEGMENTS: the most it advertises in feature-max-indirect-segments. */
export const BLKBACK_MAX_INDIRECT_SEGMENTS = 256;
/** blkfront's default xen_blkif_max_segments (its module parameter max_indirect_segments). */
export const BLKFRONT_MAX_INDIRECT_SEGMENTS = 32;
/** blkback's xen_blkif_max_pgrants default: persistent grants kept per ring. */
export const BLKBACK_MAX_PERSISTENT_GRANTS = 1056;
/** blkback's LRU_PERCENT_CLEAN: share of persistent grants purged when the bound is reached. */
export const BLKBACK_LRU_PERCENT_CLEAN = 5;

const F = blkif_request.fields;
const D = blkif_request_discard.fields;
const I = blkif_request_indirect.fields;
const R = blkif_response.fields;
const SEG0 = F.seg!.offset;
const SEG_BYTES = blkif_request_segment.sizeof;
const SEG_FIRST = blkif_request_segment.fields.first_sect!.offset;
const SEG_LAST = blkif_request_segment.fields.last_sect!.offset;
const IGREF0 = I.indirect_grefs!.offset;

/** Bytes of a ring slot (sizeof union blkif_sring_entry). */
export const BLKIF_ENTRY_BYTES = blkif_request.sizeof;
/** Bytes of a response (what a back end zeroes and writes in the slot). */
export const BLKIF_RESPONSE_BYTES = blkif_response.sizeof;

/**
 * One decoded request. Which fields mean something depends on `operation`: direct
 * segments for READ / WRITE / WRITE_BARRIER / FLUSH_DISKCACHE, `flag` and `nrSectors` for
 * DISCARD, `indirectOp`, `nrSegments` and `indirectGrefs` for INDIRECT.
 */
export class BlkifRequest {
  operation = 0;
  /** nr_segments (u8), or for INDIRECT the u16 nr_segments. */
  nrSegments = 0;
  handle = 0;
  /** The u64 id as two u32 halves: a back end echoes them, a front end checks them. */
  idLo = 0;
  idHi = 0;
  /** sector_number as a number (up to 2^53); `sectorHi` keeps the high half for checks. */
  sectorNumber = 0;
  sectorHi = 0;
  /** DISCARD: flag (BLKIF_DISCARD_SECURE) and nr_sectors (a number; hi half beside). */
  flag = 0;
  nrSectors = 0;
  nrSectorsHi = 0;
  /** INDIRECT: the operation the indirect segments are for. */
  indirectOp = 0;
  /** INDIRECT: the granted pages that hold the segments. */
  readonly indirectGrefs = new Uint32Array(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
  /** Direct segments, or (for INDIRECT, once read from the indirect pages) all of them. */
  readonly gref: Uint32Array;
  readonly firstSect: Uint8Array;
  readonly lastSect: Uint8Array;

  constructor(maxSegments = BLKIF_MAX_SEGMENTS_PER_REQUEST) {
    this.gref = new Uint32Array(maxSegments);
    this.firstSect = new Uint8Array(maxSegments);
    this.lastSect = new Uint8Array(maxSegments);
  }
}

/** Decode the request in `slot` (a private copy of the ring slot) into `out`. */
export function decodeRequest(slot: DataView, out: BlkifRequest): void {
  const op = slot.getUint8(F.operation!.offset);
  out.operation = op;
  out.idLo = slot.getUint32(F.id!.offset, true);
  out.idHi = slot.getUint32(F.id!.offset + 4, true);
  out.sectorHi = slot.getUint32(F.sector_number!.offset + 4, true);
  out.sectorNumber = slot.getUint32(F.sector_number!.offset, true) + out.sectorHi * 2 ** 32;
  if (op === BLKIF_OP_INDIRECT) {
    out.indirectOp = slot.getUint8(I.indirect_op!.offset);
    out.nrSegments = slot.getUint16(I.nr_segments!.offset, true);
    out.handle = slot.getUint16(I.handle!.offset, true);
    for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) {
      out.indirectGrefs[i] = slot.getUint32(IGREF0 + i * 4, true);
    }
    return;
  }
  out.handle = slot.getUint16(F.handle!.offset, true);
  if (op === BLKIF_OP_DISCARD) {
    out.flag = slot.getUint8(D.flag!.offset);
    out.nrSectorsHi = slot.getUint32(D.nr_sectors!.offset + 4, true);
    out.nrSectors = slot.getUint32(D.nr_sectors!.offset, true) + out.nrSectorsHi * 2 ** 32;
    out.nrSegments = 0;
    return;
  }
  const n = slot.getUint8(F.nr_segments!.offset);
  out.nrSegments = n;
  const m = Math.min(n, BLKIF_MAX_SEGMENTS_PER_REQUEST);
  for (let i = 0; i < m; i++) readSegment(slot, SEG0 + i * SEG_BYTES, out, i);
}

/** Segment `i` of `out` from the 8 bytes of a blkif_request_segment at `off` in `v`. */
export function readSegment(v: DataView, off: number, out: BlkifRequest, i: number): void {
  out.gref[i] = v.getUint32(off, true);
  out.firstSect[i] = v.getUint8(off + SEG_FIRST);
  out.lastSect[i] = v.getUint8(off + SEG_LAST);
}

/** Writes one blkif_request_segment at `off` of `v` (a ring slot or an indirect page). */
export function writeSegment(
  v: DataView,
  off: number,
  gref: number,
  first: number,
  last: number,
): void {
  v.setUint32(off, gref, true);
  v.setUint8(off + SEG_FIRST, first);
  v.setUint8(off + SEG_LAST, last);
  v.setUint16(off + 6, 0, true); // bytes 6..7: the segment's padding
}

/** Byte offset of direct segment `i` in a request slot. */
export function segmentOffset(i: number): number {
  return SEG0 + i * SEG_BYTES;
}

/** Fills the common head of a read/write/flush/barrier request at `off` of the ring view. */
export function writeRwRequest(
  v: DataView,
  off: number,
  operation: number,
  nrSegments: number,
  handle: number,
  id: number,
  sector: number,
): void {
  v.setUint8(off + F.operation!.offset, operation);
  v.setUint8(off + F.nr_segments!.offset, nrSegments);
  v.setUint16(off + F.handle!.offset, handle, true);
  v.setUint32(off + 4, 0, true); // bytes 4..7: the padding before the u64 id
  v.setUint32(off + F.id!.offset, id, true);
  v.setUint32(off + F.id!.offset + 4, 0, true);
  setU64(v, off + F.sector_number!.offset, sector);
}

/** Fills a BLKIF_OP_DISCARD request at `off`. */
export function writeDiscardRequest(
  v: DataView,
  off: number,
  flag: number,
  handle: number,
  id: number,
  sector: number,
  nrSectors: number,
): void {
  v.setUint8(off + D.operation!.offset, BLKIF_OP_DISCARD);
  v.setUint8(off + D.flag!.offset, flag);
  v.setUint16(off + D.handle!.offset, handle, true);
  v.setUint32(off + 4, 0, true); // bytes 4..7: the padding before the u64 id
  v.setUint32(off + D.id!.offset, id, true);
  v.setUint32(off + D.id!.offset + 4, 0, true);
  setU64(v, off + D.sector_number!.offset, sector);
  setU64(v, off + D.nr_sectors!.offset, nrSectors);
}

/** Fills a BLKIF_OP_INDIRECT request at `off`; `grefs` are the indirect pages' grants. */
export function writeIndirectRequest(
  v: DataView,
  off: number,
  indirectOp: number,
  nrSegments: number,
  handle: number,
  id: number,
  sector: number,
  grefs: ArrayLike<number>,
  nrGrefs: number,
): void {
  v.setUint8(off + I.operation!.offset, BLKIF_OP_INDIRECT);
  v.setUint8(off + I.indirect_op!.offset, indirectOp);
  v.setUint16(off + I.nr_segments!.offset, nrSegments, true);
  v.setUint32(off + 4, 0, true); // bytes 4..7: the padding before the u64 id
  v.setUint32(off + I.id!.offset, id, true);
  v.setUint32(off + I.id!.offset + 4, 0, true);
  setU64(v, off + I.sector_number!.offset, sector);
  v.setUint16(off + I.handle!.offset, handle, true);
  for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) {
    v.setUint32(off + IGREF0 + i * 4, i < nrGrefs ? grefs[i]! : 0, true);
  }
}

/** Writes a response (id halves, operation, status) at `off`; the slot's 16 bytes were zeroed. */
export function writeResponse(
  v: DataView,
  off: number,
  idLo: number,
  idHi: number,
  operation: number,
  status: number,
): void {
  v.setUint32(off + R.id!.offset, idLo, true);
  v.setUint32(off + R.id!.offset + 4, idHi, true);
  v.setUint8(off + R.operation!.offset, operation);
  v.setInt16(off + R.status!.offset, status, true);
}

/** A decoded response, read from a private copy of the slot (RING_COPY_RESPONSE). */
export interface BlkifResponse {
  idLo: number;
  idHi: number;
  operation: number;
  status: number;
}

/** Decode a response copy into `out`. */
export function decodeResponse(v: DataView, out: BlkifResponse): void {
  out.idLo = v.getUint32(R.id!.offset, true);
  out.idHi = v.getUint32(R.id!.offset + 4, true);
  out.operation = v.getUint8(R.operation!.offset);
  out.status = v.getInt16(R.status!.offset, true);
}

function setU64(v: DataView, off: number, x: number): void {
  v.setUint32(off, x >>> 0, true);
  v.setUint32(off + 4, Math.floor(x / 2 ** 32) >>> 0, true);
}

/** The counters one end of a block device keeps (each with a unit and a description). */
export interface BlkCounters {
  requests: Counter;
  hypercalls: Counter;
  grantOps: Counter;
  notifications: Counter;
  copies: Counter;
  copiedBytes: Counter;
  errors: Counter;
}

/** A fresh counter group named `name` ("blkback" or "blkfront"). */
export function blkCounters(name: string): { stats: Stats; counters: BlkCounters } {
  const stats = new Stats();
  const g = stats.group(name);
  const counters: BlkCounters = {
    requests: g.counter(
      "requests",
      "requests",
      "ring requests answered (back) or completed (front)",
    ),
    hypercalls: g.counter("hypercalls", "hypercalls", "hypercalls this end made for I/O"),
    grantOps: g.counter(
      "grantOps",
      "grant operations",
      "grant entries granted/ended (front) or map, unmap and copy elements (back)",
    ),
    notifications: g.counter("notifications", "events", "event channel notifications sent"),
    copies: g.counter(
      "copies",
      "copies",
      "data copies: grant copy elements or memcpy into persistent pages",
    ),
    copiedBytes: g.counter("copiedBytes", "bytes", "bytes moved by those copies"),
    errors: g.counter("errors", "responses", "requests answered or completed with an error status"),
  };
  return { stats, counters };
}

/** Every counter divided by `requests`: what one request costs (0 when none ran). */
export function perRequest(values: StatValue[]): Record<string, number> {
  const n = values.find((v) => v.name === "requests")?.value ?? 0;
  const out: Record<string, number> = {};
  for (const v of values) if (v.name !== "requests") out[v.name] = n === 0 ? 0 : v.value / n;
  return out;
}
