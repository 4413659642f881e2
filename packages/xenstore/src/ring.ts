/*
 * The xenstore ring page (struct xenstore_domain_interface) in a machine frame: the daemon's
 * end (XenstoreRing, a DomainChannel) and a domain's end (XenstoreRingFrontend).
 *
 * Invariants: indices are free-running u32 masked with MASK_XENSTORE_IDX; each side reads
 * the other side's index once per pass and checks `prod - cons <= XENSTORE_RING_SIZE`
 * before trusting it (a bad index marks the connection XENSTORE_ERROR_RINGIDX, never a
 * throw); each side writes only its own index and its own ring. Event delivery is
 * abstracted as XsEventChannel so @hyperlab/evtchn can be wired in later.
 */
import {
  MASK_XENSTORE_IDX,
  XENSTORE_CONNECTED,
  XENSTORE_ERROR_NONE,
  XENSTORE_ERROR_RINGIDX,
  XENSTORE_RING_SIZE,
  xenstore_domain_interface,
} from "@hyperlab/abi";
import { PAGE_SIZE, type Ram } from "@hyperlab/machine";
import { XenstoreError } from "./errors";
import type { DomainChannel, XsConnection } from "./xenstored";

const F = xenstore_domain_interface.fields;
const REQ = F.req.offset;
const RSP = F.rsp.offset;
const REQ_CONS = F.req_cons.offset;
const REQ_PROD = F.req_prod.offset;
const RSP_CONS = F.rsp_cons.offset;
const RSP_PROD = F.rsp_prod.offset;
const SERVER_FEATURES = F.server_features.offset;
const CONNECTION = F.connection.offset;
const ERROR = F.error.offset;

/** One side's way to kick the other: an event channel, or a test double. */
export interface XsEventChannel {
  /** Send an event to the other end. */
  notify(): void;
}

function checkFrame(ram: Ram, mfn: number): void {
  if (!ram.validMfn(mfn)) {
    throw new XenstoreError(
      "XS_BAD_ARGUMENT",
      `machine frame ${mfn} is not in RAM (0..${ram.nrFrames - 1}); pass the frame that holds the xenstore page`,
    );
  }
}

class Page {
  readonly bytes: Uint8Array;
  readonly dv: DataView;
  constructor(ram: Ram, mfn: number) {
    checkFrame(ram, mfn);
    this.bytes = ram.frameBytes(mfn);
    this.dv = new DataView(this.bytes.buffer, this.bytes.byteOffset, PAGE_SIZE);
  }
  u32(off: number): number {
    return this.dv.getUint32(off, true);
  }
  set(off: number, v: number): void {
    this.dv.setUint32(off, v >>> 0, true);
  }
}

/**
 * The daemon's end of a domain's xenstore page. Give it to Xenstored through
 * `mapDomainInterface` (INTRODUCE); call `onEvent()` whenever the domain notifies.
 */
export class XenstoreRing implements DomainChannel {
  private readonly page: Page;
  private conn: XsConnection | null = null;
  private busy = false;
  private again = false;
  private closed = false;
  /** The event channel port INTRODUCE bound (for the host's bookkeeping). */
  port = 0;

  constructor(
    ram: Ram,
    mfn: number,
    private readonly evtchn: XsEventChannel,
  ) {
    this.page = new Page(ram, mfn);
  }

  attach(conn: XsConnection): void {
    this.conn = conn;
    conn.onOutput = () => this.onEvent();
  }

  reset(): void {
    const p = this.page;
    p.set(REQ_CONS, 0);
    p.set(REQ_PROD, 0);
    p.set(RSP_CONS, 0);
    p.set(RSP_PROD, 0);
  }

  connected(): void {
    this.page.set(SERVER_FEATURES, 0);
    this.page.set(ERROR, XENSTORE_ERROR_NONE);
    this.page.set(CONNECTION, XENSTORE_CONNECTED);
    this.evtchn.notify();
  }

  rebind(port: number): void {
    this.port = port;
  }

  markError(err: number): void {
    this.page.set(ERROR, err);
  }

  close(): void {
    this.closed = true;
    this.conn = null;
  }

  /** The domain sent an event: consume requests, produce replies, as far as both rings allow. */
  onEvent(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      do {
        this.again = false;
        this.pass();
      } while (this.again);
    } finally {
      this.busy = false;
    }
  }

  private pass(): void {
    const p = this.page;
    let kick = false;
    for (;;) {
      const conn = this.conn;
      if (conn === null || this.closed || conn.isClosed) break;
      let progress = false;
      // Replies first: they free "outstanding" slots.
      for (let b = conn.peekOutput(); b !== undefined; b = conn.peekOutput()) {
        const cons = p.u32(RSP_CONS);
        const prod = p.u32(RSP_PROD);
        if ((prod - cons) >>> 0 > XENSTORE_RING_SIZE) {
          this.bad(conn);
          return;
        }
        const idx = prod & MASK_XENSTORE_IDX;
        let n = Math.min(XENSTORE_RING_SIZE - idx, XENSTORE_RING_SIZE - ((prod - cons) >>> 0));
        if (n === 0) break;
        if (n > b.length) n = b.length;
        p.bytes.set(b.subarray(0, n), RSP + idx);
        p.set(RSP_PROD, prod + n);
        conn.consumeOutput(n);
        progress = true;
        kick = true;
      }
      while (conn.canAcceptRequest()) {
        const cons = p.u32(REQ_CONS);
        const prod = p.u32(REQ_PROD);
        const avail = (prod - cons) >>> 0;
        if (avail > XENSTORE_RING_SIZE) {
          this.bad(conn);
          return;
        }
        if (avail === 0) break;
        const idx = cons & MASK_XENSTORE_IDX;
        const n = Math.min(avail, XENSTORE_RING_SIZE - idx, conn.needed);
        const chunk = p.bytes.slice(REQ + idx, REQ + idx + n);
        p.set(REQ_CONS, cons + n);
        kick = true;
        progress = true;
        if (!conn.feed(chunk)) break;
        if (conn.peekOutput() !== undefined) break;
      }
      if (!progress) break;
    }
    if (kick) this.evtchn.notify();
  }

  private bad(conn: XsConnection): void {
    this.page.set(ERROR, XENSTORE_ERROR_RINGIDX);
    conn.protocolError("bad ring index", XENSTORE_ERROR_RINGIDX);
  }
}

/**
 * A domain's end of its xenstore page, for a guest model or a test: write request bytes,
 * read reply bytes. Call `onEvent()` when xenstored notifies the domain.
 */
export class XenstoreRingFrontend {
  private readonly page: Page;
  private readonly pending: Uint8Array[] = [];
  private pendingOffset = 0;
  private busy = false;
  private again = false;
  /** Reply bytes as they arrive. */
  onData: ((bytes: Uint8Array) => void) | null = null;

  constructor(
    ram: Ram,
    mfn: number,
    private readonly evtchn: XsEventChannel,
  ) {
    this.page = new Page(ram, mfn);
  }

  /** The page's `connection` field (XENSTORE_CONNECTED once xenstored introduced us). */
  get connection(): number {
    return this.page.u32(CONNECTION);
  }

  /** The page's `error` field (XENSTORE_ERROR_*). */
  get error(): number {
    return this.page.u32(ERROR);
  }

  /** Queue request bytes; they go into the ring as space allows. */
  send(bytes: Uint8Array): void {
    this.pending.push(bytes);
    this.onEvent();
  }

  /** xenstored sent an event: move bytes both ways. */
  onEvent(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      do {
        this.again = false;
        this.pass();
      } while (this.again);
    } finally {
      this.busy = false;
    }
  }

  private pass(): void {
    const p = this.page;
    let kick = false;
    // Replies.
    for (;;) {
      const cons = p.u32(RSP_CONS);
      const prod = p.u32(RSP_PROD);
      const avail = (prod - cons) >>> 0;
      if (avail === 0 || avail > XENSTORE_RING_SIZE) break;
      const idx = cons & MASK_XENSTORE_IDX;
      const n = Math.min(avail, XENSTORE_RING_SIZE - idx);
      const chunk = p.bytes.slice(RSP + idx, RSP + idx + n);
      p.set(RSP_CONS, cons + n);
      kick = true;
      this.onData?.(chunk);
    }
    // Requests.
    while (this.pending.length > 0) {
      const b = this.pending[0];
      const cons = p.u32(REQ_CONS);
      const prod = p.u32(REQ_PROD);
      const used = (prod - cons) >>> 0;
      if (used >= XENSTORE_RING_SIZE) break;
      const idx = prod & MASK_XENSTORE_IDX;
      const n = Math.min(
        XENSTORE_RING_SIZE - idx,
        XENSTORE_RING_SIZE - used,
        b.length - this.pendingOffset,
      );
      p.bytes.set(b.subarray(this.pendingOffset, this.pendingOffset + n), REQ + idx);
      p.set(REQ_PROD, prod + n);
      kick = true;
      this.pendingOffset += n;
      if (this.pendingOffset === b.length) {
        this.pending.shift();
        this.pendingOffset = 0;
      }
    }
    if (kick) this.evtchn.notify();
  }
}
