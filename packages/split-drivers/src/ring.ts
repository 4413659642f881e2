/*
 * Shared rings as Xen 4.17's public/io/ring.h defines them, over the ring's own bytes.
 *
 * Invariant: the shared state lives only in the ring pages (a byte view over machine frames
 * or granted pages): the header's four free-running 32-bit indices at 0, 4, 8 and 12, and
 * `size` slots of `entrySize` bytes from offset 64, where `size` is the largest power of two
 * of entries that fit (__RING_SIZE). Every index is a u32 that wraps at 2^32; slot i lives at
 * 64 + (i & (size - 1)) * entrySize; every comparison is the header's unsigned 32-bit one.
 * The private indices (req_prod_pvt, rsp_cons; rsp_prod_pvt, req_cons) live in the front and
 * back views, never in the pages. Nothing on the push/get paths allocates.
 */
import type { RingName } from "@hyperlab/abi";
import { HyperlabError } from "@hyperlab/core";

/** Codes of the errors this module throws at a caller's mistake. */
export type RingErrorCode = "RING_BAD_ORDER" | "RING_BAD_PAGES" | "RING_BAD_ENTRY";

/** A caller's mistake with a ring (never a guest's: guest input only moves indices). */
export class RingError extends HyperlabError<RingErrorCode> {}

/** Bytes of the shared ring header before ring[0] (offsetof(struct X_sring, ring)). */
export const RING_HEADER_BYTES = 64;
/** The ring page size of every ring protocol (XEN_PAGE_SHIFT 12). */
export const RING_PAGE_BYTES = 4096;
/** Largest ring page order this model (and Linux's blkback) accepts. */
export const RING_MAX_ORDER = 4;

// Word indexes of the header's indices (byte offsets 0, 4, 8, 12).
const REQ_PROD = 0;
const REQ_EVENT = 1;
const RSP_PROD = 2;
const RSP_EVENT = 3;

/** Bytes of one slot (the request/response union) of each ring this package knows. */
export const RING_ENTRY_BYTES: Readonly<Record<RingName, number>> = Object.freeze({
  blkif: 112,
  netif_tx: 12,
  netif_rx: 8,
});

/** __RD32: `x` rounded down to a power of two (0 stays 0). */
export function roundDownPow2(x: number): number {
  const v = x >>> 0;
  return v === 0 ? 0 : 2 ** (31 - Math.clz32(v));
}

/** __RING_SIZE: entries of `entryBytes` that fit in `ringBytes` after the header, as a power of two. */
export function ringSizeFor(entryBytes: number, ringBytes: number): number {
  return roundDownPow2(Math.floor((ringBytes - RING_HEADER_BYTES) / entryBytes));
}

/** RING_SIZE of the named ring on 4096 << order bytes (blkif 32..512, netif 256..4096). */
export function ringSize(name: RingName, order = 0): number {
  checkOrder(order);
  return ringSizeFor(RING_ENTRY_BYTES[name], RING_PAGE_BYTES << order);
}

function checkOrder(order: number): void {
  if (!Number.isInteger(order) || order < 0 || order > RING_MAX_ORDER) {
    throw new RingError(
      "RING_BAD_ORDER",
      `ring page order must be a whole number from 0 to ${RING_MAX_ORDER}, got ${order}; ` +
        "a ring of 4096 << order bytes, e.g. order 2 for four pages",
    );
  }
}

/**
 * The shared page(s) of one ring: the header's indices and the slots, read and written in
 * place. `bytes` is a view over the ring's pages (e.g. `ram.frameBytes(mfn)` for a one-page
 * ring); writes through it are the peer's view too.
 */
export class SharedRing {
  /** The ring's pages, 4096 << order bytes. */
  readonly bytes: Uint8Array;
  /** A DataView over `bytes`, for callers that read fields of a slot (little-endian). */
  readonly view: DataView;
  /** Entries in the ring (RING_SIZE), a power of two. */
  readonly size: number;
  /** Bytes of one slot (sizeof the request/response union). */
  readonly entryBytes: number;
  readonly order: number;
  private readonly mask: number;
  private readonly hdr: Uint32Array;

  constructor(bytes: Uint8Array, entryBytes: number, order = 0) {
    checkOrder(order);
    if (!Number.isInteger(entryBytes) || entryBytes <= 0 || entryBytes > RING_PAGE_BYTES - 64) {
      throw new RingError(
        "RING_BAD_ENTRY",
        `a ring slot must be 1 to ${RING_PAGE_BYTES - 64} bytes, got ${entryBytes}; pass sizeof the request/response union`,
      );
    }
    const want = RING_PAGE_BYTES << order;
    if (bytes.length !== want || bytes.byteOffset % 4 !== 0) {
      throw new RingError(
        "RING_BAD_PAGES",
        `an order-${order} ring needs a 4-byte aligned view of exactly ${want} bytes, got ${bytes.length} ` +
          `at offset ${bytes.byteOffset}; pass e.g. ram.frameBytes(mfn) for order 0`,
      );
    }
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.hdr = new Uint32Array(bytes.buffer, bytes.byteOffset, 4);
    this.entryBytes = entryBytes;
    this.order = order;
    this.size = ringSizeFor(entryBytes, want);
    this.mask = this.size - 1;
  }

  /** A zeroed ring of the named type in a fresh buffer (for tests, tools and benches). */
  static create(name: RingName, order = 0): SharedRing {
    checkOrder(order);
    return new SharedRing(new Uint8Array(RING_PAGE_BYTES << order), RING_ENTRY_BYTES[name], order);
  }

  get reqProd(): number {
    return this.hdr[REQ_PROD]!;
  }
  set reqProd(v: number) {
    this.hdr[REQ_PROD] = v;
  }
  get reqEvent(): number {
    return this.hdr[REQ_EVENT]!;
  }
  set reqEvent(v: number) {
    this.hdr[REQ_EVENT] = v;
  }
  get rspProd(): number {
    return this.hdr[RSP_PROD]!;
  }
  set rspProd(v: number) {
    this.hdr[RSP_PROD] = v;
  }
  get rspEvent(): number {
    return this.hdr[RSP_EVENT]!;
  }
  set rspEvent(v: number) {
    this.hdr[RSP_EVENT] = v;
  }

  /** SHARED_RING_INIT: producers 0, events 1, the private area and padding zeroed. */
  init(): void {
    this.hdr[REQ_PROD] = 0;
    this.hdr[RSP_PROD] = 0;
    this.hdr[REQ_EVENT] = 1;
    this.hdr[RSP_EVENT] = 1;
    this.bytes.fill(0, 16, RING_HEADER_BYTES);
  }

  /** The slot index of free-running index `idx` (idx & (size - 1)). */
  slot(idx: number): number {
    return (idx & this.mask) >>> 0;
  }

  /** Byte offset in `bytes` of the slot of index `idx` (RING_GET_REQUEST / RING_GET_RESPONSE). */
  slotOffset(idx: number): number {
    return RING_HEADER_BYTES + (idx & this.mask) * this.entryBytes;
  }
}

/** Copy dst.length bytes from src at off; a loop, so no view is allocated per request. */
function copyOut(src: Uint8Array, off: number, dst: Uint8Array): void {
  const n = dst.length;
  for (let i = 0; i < n; i++) dst[i] = src[off + i]!;
}

/** The front end's private indices (struct X_front_ring): it produces requests. */
export class FrontRing {
  readonly sring: SharedRing;
  /** Next request index to fill, not yet visible to the back end until a push. */
  reqProdPvt: number;
  /** Next response index to consume. */
  rspCons: number;

  /** FRONT_RING_ATTACH at `start` (FRONT_RING_INIT when 0). Does not touch the shared page. */
  constructor(sring: SharedRing, start = 0) {
    this.sring = sring;
    this.reqProdPvt = start >>> 0;
    this.rspCons = start >>> 0;
  }

  /** RING_SIZE. */
  get size(): number {
    return this.sring.size;
  }

  /** RING_FREE_REQUESTS: size - (req_prod_pvt - rsp_cons), in u32 arithmetic. */
  freeRequests(): number {
    return (this.sring.size - ((this.reqProdPvt - this.rspCons) >>> 0)) >>> 0;
  }

  /** RING_FULL. */
  full(): boolean {
    return this.freeRequests() === 0;
  }

  /** Byte offset of the slot at req_prod_pvt (RING_GET_REQUEST(r, r->req_prod_pvt)). */
  nextRequestOffset(): number {
    return this.sring.slotOffset(this.reqProdPvt);
  }

  /** req_prod_pvt++ after filling the slot; returns the index that was filled. */
  produceRequest(): number {
    const idx = this.reqProdPvt;
    this.reqProdPvt = (idx + 1) >>> 0;
    return idx;
  }

  /** RING_PUSH_REQUESTS: publish req_prod_pvt. */
  pushRequests(): void {
    this.sring.reqProd = this.reqProdPvt;
  }

  /**
   * RING_PUSH_REQUESTS_AND_CHECK_NOTIFY: publish, then whether the back end asked to be
   * kicked for one of the new requests: (u32)(new - req_event) < (u32)(new - old).
   */
  pushRequestsAndCheckNotify(): boolean {
    const s = this.sring;
    const old = s.reqProd;
    const nw = this.reqProdPvt;
    s.reqProd = nw;
    return (nw - s.reqEvent) >>> 0 < (nw - old) >>> 0;
  }

  /** RING_HAS_UNCONSUMED_RESPONSES: rsp_prod - rsp_cons (not clamped: the back end is trusted). */
  unconsumedResponses(): number {
    return (this.sring.rspProd - this.rspCons) >>> 0;
  }

  /** RING_FINAL_CHECK_FOR_RESPONSES: when idle, re-arm rsp_event = rsp_cons + 1 and look again. */
  finalCheckForResponses(): number {
    const work = this.unconsumedResponses();
    if (work !== 0) return work;
    this.sring.rspEvent = (this.rspCons + 1) >>> 0;
    return this.unconsumedResponses();
  }

  /** RING_RESPONSE_PROD_OVERFLOW: could a back end have produced up to `prod`? (prod - rsp_cons > size) */
  responseProdOverflow(prod: number): boolean {
    return (prod - this.rspCons) >>> 0 > this.sring.size;
  }

  /**
   * RING_COPY_RESPONSE of the slot at rsp_cons into `dst` (its first dst.length bytes of the
   * slot), then rsp_cons++. Returns the consumed index.
   */
  consumeResponse(dst: Uint8Array): number {
    const idx = this.rspCons;
    const off = this.sring.slotOffset(idx);
    copyOut(this.sring.bytes, off, dst);
    this.rspCons = (idx + 1) >>> 0;
    return idx;
  }
}

/** The back end's private indices (struct X_back_ring): it consumes requests, produces responses. */
export class BackRing {
  readonly sring: SharedRing;
  /** Next response index to fill. */
  rspProdPvt: number;
  /** Next request index to consume. */
  reqCons: number;

  /** BACK_RING_ATTACH at `start` (BACK_RING_INIT when 0). Does not touch the shared page. */
  constructor(sring: SharedRing, start = 0) {
    this.sring = sring;
    this.rspProdPvt = start >>> 0;
    this.reqCons = start >>> 0;
  }

  get size(): number {
    return this.sring.size;
  }

  /**
   * RING_HAS_UNCONSUMED_REQUESTS, clamped against a hostile front end:
   * min(req_prod - req_cons, size - (req_cons - rsp_prod_pvt)), unsigned.
   */
  unconsumedRequests(): number {
    const req = (this.sring.reqProd - this.reqCons) >>> 0;
    const rsp = (this.sring.size - ((this.reqCons - this.rspProdPvt) >>> 0)) >>> 0;
    return Math.min(req, rsp);
  }

  /** RING_FINAL_CHECK_FOR_REQUESTS: when idle, re-arm req_event = req_cons + 1 and look again. */
  finalCheckForRequests(): number {
    const work = this.unconsumedRequests();
    if (work !== 0) return work;
    this.sring.reqEvent = (this.reqCons + 1) >>> 0;
    return this.unconsumedRequests();
  }

  /** RING_REQUEST_CONS_OVERFLOW: would consuming `cons` overrun unanswered slots? (cons - rsp_prod_pvt >= size) */
  requestConsOverflow(cons: number): boolean {
    return (cons - this.rspProdPvt) >>> 0 >= this.sring.size;
  }

  /** RING_REQUEST_PROD_OVERFLOW: can the front end have produced up to `prod`? (prod - rsp_prod_pvt > size) */
  requestProdOverflow(prod: number): boolean {
    return (prod - this.rspProdPvt) >>> 0 > this.sring.size;
  }

  /**
   * RING_COPY_REQUEST of the slot at req_cons into `dst` (the back end works on its own copy,
   * so a front end rewriting the slot cannot change a checked request), then req_cons++.
   * Returns the consumed index.
   */
  consumeRequest(dst: Uint8Array): number {
    const idx = this.reqCons;
    const off = this.sring.slotOffset(idx);
    copyOut(this.sring.bytes, off, dst);
    this.reqCons = (idx + 1) >>> 0;
    return idx;
  }

  /**
   * Byte offset of the slot at rsp_prod_pvt, with its first `rspBytes` bytes (the response's
   * own bytes of the union) zeroed; the rest of the slot keeps the request.
   */
  nextResponseOffset(rspBytes: number): number {
    const off = this.sring.slotOffset(this.rspProdPvt);
    this.sring.bytes.fill(0, off, off + rspBytes);
    return off;
  }

  /** rsp_prod_pvt++ after filling the response; returns the index that was filled. */
  produceResponse(): number {
    const idx = this.rspProdPvt;
    this.rspProdPvt = (idx + 1) >>> 0;
    return idx;
  }

  /** RING_PUSH_RESPONSES: publish rsp_prod_pvt. */
  pushResponses(): void {
    this.sring.rspProd = this.rspProdPvt;
  }

  /** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY: (u32)(new - rsp_event) < (u32)(new - old). */
  pushResponsesAndCheckNotify(): boolean {
    const s = this.sring;
    const old = s.rspProd;
    const nw = this.rspProdPvt;
    s.rspProd = nw;
    return (nw - s.rspEvent) >>> 0 < (nw - old) >>> 0;
  }
}
