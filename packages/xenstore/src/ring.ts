/*
 * The xenstore ring page (struct xenstore_domain_interface) in a machine frame, and the one
 * ring event loop both of its ends run: the daemon's end (XenstoreRing, a DomainChannel; C
 * xenstored's domain_can_read/readchn/writechn) and a domain's end (XenstoreRingFrontend;
 * Linux's xb_read/xb_write in drivers/xen/xenbus/xenbus_comms.c). Toolstack's dom0 interface
 * and split-drivers' xenbus only wrap these two; no other code copies bytes through the page.
 *
 * Invariants: indices are free-running u32 masked with MASK_XENSTORE_IDX. Every copy reads
 * both indices of its direction from the page afresh and checks `prod - cons <=
 * XENSTORE_RING_SIZE` before trusting them; a bad pair never throws: the daemon marks the
 * page XENSTORE_ERROR_RINGIDX and drops the connection, a domain's end puts that direction's
 * indices back to 0 and ends the pass (Linux's xb_read/xb_write answer -EIO). Each end writes only its own index of each direction and the ring it
 * produces into. A pass that moved bytes ends with exactly one notify (XsEventChannel: the
 * caller's event channel). An event that arrives while a pass runs makes it run again
 * instead of nesting.
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
import type { XsConnection } from "./connection";
import { XenstoreError } from "./errors";
import type { DomainChannel } from "./store";

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

/** One direction of the page: its ring bytes and its two indices. */
interface Direction {
  readonly data: number;
  readonly cons: number;
  readonly prod: number;
}

const REQUESTS: Direction = { data: REQ, cons: REQ_CONS, prod: REQ_PROD };
const REPLIES: Direction = { data: RSP, cons: RSP_CONS, prod: RSP_PROD };
const NOTHING = new Uint8Array(0);

/** Producer: copy what fits of `src` into `d`. Returns the bytes copied, or -1 for bad indices. */
function produce(p: Page, d: Direction, src: Uint8Array): number {
  const cons = p.u32(d.cons);
  const prod = p.u32(d.prod);
  const used = (prod - cons) >>> 0;
  if (used > XENSTORE_RING_SIZE) return -1;
  const idx = prod & MASK_XENSTORE_IDX;
  const n = Math.min(XENSTORE_RING_SIZE - idx, XENSTORE_RING_SIZE - used, src.length);
  if (n === 0) return 0;
  p.bytes.set(n === src.length ? src : src.subarray(0, n), d.data + idx);
  p.set(d.prod, prod + n);
  return n;
}

/** Consumer: take up to `max` bytes from `d` (a copy). NOTHING when empty, null for bad indices. */
function consume(p: Page, d: Direction, max: number): Uint8Array | null {
  const cons = p.u32(d.cons);
  const prod = p.u32(d.prod);
  const avail = (prod - cons) >>> 0;
  if (avail > XENSTORE_RING_SIZE) return null;
  if (avail === 0) return NOTHING;
  const idx = cons & MASK_XENSTORE_IDX;
  const n = Math.min(avail, XENSTORE_RING_SIZE - idx, max);
  const chunk = p.bytes.slice(d.data + idx, d.data + idx + n);
  p.set(d.cons, cons + n);
  return chunk;
}

/** What one end of the page sends and receives; the ring loop moves bytes for it. */
interface RingEnd {
  /** Whether bytes should move at all. */
  live(): boolean;
  /** The next bytes to send, or undefined when nothing waits. */
  outgoing(): Uint8Array | undefined;
  /** `n` bytes of outgoing() went into the ring. */
  sent(n: number): void;
  /** How many bytes this end takes now (0: none). */
  room(): number;
  /** Bytes from the other end. False: stop taking for this round. */
  incoming(bytes: Uint8Array): boolean;
  /** The indices of direction `d` cannot be (the other end wrote nonsense). */
  badIndex(d: Direction): void;
}

/**
 * The ring event loop: runs `pass` for each event, never nested: an event during a pass
 * (a reply queued by the bytes just fed, a notify delivered synchronously) runs it again.
 */
class RingLoop {
  private busy = false;
  private again = false;

  constructor(
    private readonly page: Page,
    private readonly out: Direction,
    private readonly inn: Direction,
    private readonly end: RingEnd,
    private readonly evtchn: XsEventChannel,
  ) {}

  event(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      do {
        this.again = false;
        if (this.pass()) this.evtchn.notify();
      } while (this.again);
    } finally {
      this.busy = false;
    }
  }

  /** Send what fits, take what is there, until neither moves. True if anything moved. */
  private pass(): boolean {
    const { page, out, inn, end } = this;
    let moved = false;
    while (end.live()) {
      let progress = false;
      for (let b = end.outgoing(); b !== undefined; b = end.outgoing()) {
        const n = produce(page, out, b);
        if (n < 0) {
          end.badIndex(out);
          return moved;
        }
        if (n === 0) break;
        end.sent(n);
        progress = true;
      }
      for (let max = end.room(); max > 0; max = end.room()) {
        const chunk = consume(page, inn, max);
        if (chunk === null) {
          end.badIndex(inn);
          return moved || progress;
        }
        if (chunk.length === 0) break;
        progress = true;
        if (!end.incoming(chunk)) break;
      }
      if (!progress) break;
      moved = true;
    }
    return moved;
  }
}

/**
 * The daemon's end of a domain's xenstore page. Give it to Xenstored through
 * `mapDomainInterface` (INTRODUCE); call `onEvent()` whenever the domain notifies.
 */
export class XenstoreRing implements DomainChannel {
  private readonly page: Page;
  private readonly loop: RingLoop;
  private readonly evtchn: XsEventChannel;
  private conn: XsConnection | null = null;
  private closed = false;
  /** The event channel port INTRODUCE bound (for the host's bookkeeping). */
  port = 0;

  constructor(ram: Ram, mfn: number, evtchn: XsEventChannel) {
    this.page = new Page(ram, mfn);
    const end: RingEnd = {
      live: () => this.conn !== null && !this.closed && !this.conn.isClosed,
      // Replies first: they free "outstanding" slots.
      outgoing: () => this.conn!.peekOutput(),
      sent: (n) => this.conn!.consumeOutput(n),
      room: () => (this.conn!.canAcceptRequest() ? this.conn!.needed : 0),
      // A request that produced output ends the round, so its reply goes out first.
      incoming: (b) => this.conn!.feed(b) && this.conn!.peekOutput() === undefined,
      badIndex: () => {
        this.page.set(ERROR, XENSTORE_ERROR_RINGIDX);
        this.conn!.protocolError("bad ring index", XENSTORE_ERROR_RINGIDX);
      },
    };
    this.loop = new RingLoop(this.page, REPLIES, REQUESTS, end, evtchn);
    this.evtchn = evtchn;
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
    this.loop.event();
  }
}

/**
 * A domain's end of its xenstore page, for a guest model or a test: write request bytes,
 * read reply bytes. Call `onEvent()` when xenstored notifies the domain.
 */
export class XenstoreRingFrontend {
  private readonly page: Page;
  private readonly loop: RingLoop;
  private readonly pending: Uint8Array[] = [];
  private pendingOffset = 0;
  /** Reply bytes as they arrive. */
  onData: ((bytes: Uint8Array) => void) | null = null;

  constructor(ram: Ram, mfn: number, evtchn: XsEventChannel) {
    this.page = new Page(ram, mfn);
    const end: RingEnd = {
      live: () => true,
      outgoing: () => {
        const b = this.pending[0];
        if (b === undefined) return undefined;
        return this.pendingOffset === 0 ? b : b.subarray(this.pendingOffset);
      },
      sent: (n) => {
        this.pendingOffset += n;
        if (this.pendingOffset === this.pending[0].length) {
          this.pending.shift();
          this.pendingOffset = 0;
        }
      },
      room: () => XENSTORE_RING_SIZE,
      incoming: (b) => {
        this.onData?.(b);
        return true;
      },
      badIndex: (d) => {
        // Linux's xb_read/xb_write: put both indices of that direction back to 0 and give up
        // this round with -EIO; the next event starts afresh.
        this.page.set(d.cons, 0);
        this.page.set(d.prod, 0);
      },
    };
    this.loop = new RingLoop(this.page, REQUESTS, REPLIES, end, evtchn);
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
    this.loop.event();
  }
}
