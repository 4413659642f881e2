import { XENSTORE_PAYLOAD_MAX, XS_ERROR, XS_INTRODUCE, XS_WATCH_EVENT } from "@hyperlab/abi";
import { Ram } from "@hyperlab/machine";
import {
  type DomainChannel,
  encodeMessage,
  MessageReader,
  Xenstored,
  type XenstoredOptions,
  XenstoreRing,
  XenstoreRingFrontend,
  XsClient,
  type XsConnection,
  type XsMessage,
} from "../src/index";

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/** NUL-joined strings, each terminated. */
export function z(...parts: string[]): Uint8Array {
  return enc.encode(parts.map((p) => `${p}\0`).join(""));
}

export interface Reply {
  type: number;
  reqId: number;
  txId: number;
  payload: Uint8Array;
  /** Payload as text (NULs shown as |). */
  text: string;
}

function toReply(m: XsMessage): Reply {
  return { ...m, text: dec.decode(m.payload).replaceAll("\0", "|") };
}

/** A synchronous raw wire connection to an in-process daemon. */
export class Raw {
  readonly conn: XsConnection;
  readonly replies: Reply[] = [];
  readonly events: Reply[] = [];
  dropped: string | null = null;
  private readonly reader = new MessageReader();
  private reqId = 100;

  constructor(
    readonly daemon: Xenstored,
    domid?: number,
  ) {
    this.conn = daemon.connect({
      domid,
      onOutput: (c) => {
        const b = c.takeAllOutput();
        if (b === undefined) return;
        this.reader.push(b, (m) => {
          if (m.type === XS_WATCH_EVENT) this.events.push(toReply(m));
          else this.replies.push(toReply(m));
        });
      },
      onDrop: (_c, r) => {
        this.dropped = r;
      },
    });
  }

  /** Send bytes as they are. */
  feed(bytes: Uint8Array): boolean {
    return this.conn.feed(bytes);
  }

  /** One request; returns its reply. */
  req(type: number, payload: Uint8Array | string, txId = 0): Reply {
    const p = typeof payload === "string" ? enc.encode(payload) : payload;
    const id = this.reqId++;
    const before = this.replies.length;
    this.conn.feed(encodeMessage(type, id, txId, p));
    if (this.replies.length !== before + 1) {
      throw new Error(`expected one reply, got ${this.replies.length - before}`);
    }
    const r = this.replies[this.replies.length - 1];
    if (r.reqId !== id) throw new Error(`reply for req ${r.reqId}, expected ${id}`);
    return r;
  }

  /** The reply's text, or "E:<errno name>" for an error. */
  q(type: number, payload: Uint8Array | string, txId = 0): string {
    const r = this.req(type, payload, txId);
    return r.type === XS_ERROR ? `E:${r.text.replace(/\|$/, "")}` : r.text;
  }

  /** Events received so far as "path|token", then forget them. */
  takeEvents(): string[] {
    const e = this.events.map((r) => r.text.replace(/\|$/, ""));
    this.events.length = 0;
    return e;
  }
}

export { XENSTORE_PAYLOAD_MAX };

/**
 * A daemon whose INTRODUCE maps xenstore pages from one Ram: gfn = machine frame (a PV
 * guest's view), events delivered synchronously both ways.
 */
export class RingHost {
  readonly ram = new Ram({ bytes: 64 * 4096 });
  readonly daemon: Xenstored;
  readonly rings = new Map<number, XenstoreRing>();
  readonly fronts = new Map<number, XenstoreRingFrontend>();
  /** Domain-side event counts. */
  readonly domainEvents = new Map<number, number>();

  constructor(opts: XenstoredOptions = {}) {
    this.daemon = new Xenstored({
      ...opts,
      mapDomainInterface: ({ domid, gfn }): DomainChannel | null => {
        if (!this.ram.validMfn(gfn)) return null;
        const ring = new XenstoreRing(this.ram, gfn, {
          notify: () => {
            this.domainEvents.set(domid, (this.domainEvents.get(domid) ?? 0) + 1);
            this.fronts.get(domid)?.onEvent();
          },
        });
        this.rings.set(domid, ring);
        return ring;
      },
    });
  }

  /** The domain's end of page `mfn`; its notify reaches the daemon's ring for domid. */
  frontend(domid: number, mfn: number): XenstoreRingFrontend {
    let f = this.fronts.get(domid);
    if (f === undefined) {
      f = new XenstoreRingFrontend(this.ram, mfn, {
        notify: () => this.rings.get(domid)?.onEvent(),
      });
      this.fronts.set(domid, f);
    }
    return f;
  }

  /** Introduce domid with page frame mfn through a privileged raw connection. */
  introduce(domid: number, mfn: number, port = 5): string {
    const dom0 = new Raw(this.daemon);
    const r = dom0.q(XS_INTRODUCE, z(String(domid), String(mfn), String(port)));
    dom0.conn.close();
    return r;
  }

  /** A client running as the domain over its ring. */
  client(domid: number, mfn: number): XsClient {
    return XsClient.overRing(this.frontend(domid, mfn));
  }
}

/** A raw domain-side wire over the ring: send bytes, collect replies synchronously. */
export class RingRaw {
  readonly replies: Reply[] = [];
  readonly events: Reply[] = [];
  private readonly reader = new MessageReader();
  private reqId = 1;
  constructor(readonly front: XenstoreRingFrontend) {
    front.onData = (b) =>
      this.reader.push(b, (m) => {
        if (m.type === XS_WATCH_EVENT) this.events.push(toReply(m));
        else this.replies.push(toReply(m));
      });
  }
  send(type: number, payload: Uint8Array | string, txId = 0): number {
    const p = typeof payload === "string" ? enc.encode(payload) : payload;
    const id = this.reqId++;
    this.front.send(encodeMessage(type, id, txId, p));
    return id;
  }
  q(type: number, payload: Uint8Array | string, txId = 0): string {
    const id = this.send(type, payload, txId);
    const r = this.replies.find((x) => x.reqId === id);
    if (r === undefined) throw new Error(`no reply to request ${id}`);
    return r.type === XS_ERROR ? `E:${r.text.replace(/\|$/, "")}` : r.text;
  }
}
