/*
 * The daemon's state (C xenstored_core.c's globals: the tree, the connection list, the watch
 * index, the domain table) and the replies every request handler sends.
 *
 * Invariants:
 * - Every node in `db` has its parent in `db` and is listed in the parent's `children`;
 *   "/" always exists (nodes.ts keeps this; control.ts's checkInvariants checks it).
 * - `generation` only grows; every modified node takes the next value.
 * - `conns` holds exactly the open connections; `dirty` holds each connection with unsent
 *   output once, until `flush()` hands it to its transport.
 * - A reply longer than XENSTORE_PAYLOAD_MAX is never queued: the request gets E2BIG.
 */
import { XENSTORE_PAYLOAD_MAX, XS_ERROR } from "@hyperlab/abi";
import type { ConnectionHost, Watch, XsConnection } from "./connection";
import type { XsNode } from "./node";
import { XS_PERM_NONE, type XsPerms } from "./perms";
import type { XenstoredQuotas } from "./quotas";
import { E2BIG, encodeMessage, errorPayload, latin1z, type XsMessage } from "./wire";

/** A domain's shared ring and event channel as the daemon sees them (see XenstoreRing). */
export interface DomainChannel {
  /** The daemon hands over the connection it made for the domain. */
  attach(conn: XsConnection): void;
  /** Ring indices back to 0 (C's domain_conn_reset on INTRODUCE). */
  reset(): void;
  /** Set `connection = XENSTORE_CONNECTED` and notify the domain. */
  connected(): void;
  /** A second INTRODUCE of a live domain re-binds its event channel. */
  rebind(port: number): void;
  /** Write an XENSTORE_ERROR_* code into the page (C's ignore_connection). */
  markError(err: number): void;
  /** The domain is gone: stop using the page. */
  close(): void;
}

/** What INTRODUCE asks the host for: map domid's xenstore page and bind its event channel. */
export type MapDomainInterface = (req: {
  domid: number;
  gfn: number;
  port: number;
}) => DomainChannel | null;

/** C's struct domain: what the daemon knows of one domain. */
export interface DomainRec {
  readonly domid: number;
  /** Global generation when the record was made (XSA-322 staleness check). */
  readonly generation: number;
  introduced: boolean;
  conn: XsConnection | null;
  channel: DomainChannel | null;
  port: number;
  shutdown: boolean;
  nbentry: number;
}

export interface XsStoreOptions {
  quotas: XenstoredQuotas;
  privDomid: number | undefined;
  domainExists: (domid: number) => boolean;
  mapDomainInterface: MapDomainInterface | undefined;
  log: (line: string) => void;
  host: ConnectionHost;
}

export const OK = latin1z("OK");

/** The daemon's state; the request handlers are plain functions over it. */
export class XsStore {
  /** Effective quotas (CONTROL quota set changes them). */
  readonly quotas: XenstoredQuotas;
  readonly privDomid: number | undefined;
  readonly domainExists: (domid: number) => boolean;
  readonly mapDomainInterface: MapDomainInterface | undefined;
  readonly log: (line: string) => void;
  /** The daemon, as its connections see it. */
  readonly host: ConnectionHost;
  readonly db = new Map<string, XsNode>();
  generation = 0;
  /** The errno of the last failed node lookup (C's errno after read_node). */
  err = 0;
  nextConnId = 1;
  readonly conns = new Set<XsConnection>();
  readonly watchIndex = new Map<string, Set<Watch>>();
  /** Scratch list for fireWatches (reused, so a fire allocates nothing for it). */
  readonly watchHits: Watch[] = [];
  nextWatchSeq = 1;
  readonly domains = new Map<number, DomainRec>();
  readonly specialPerms = new Map<string, XsPerms>([
    ["@introduceDomain", [{ perms: XS_PERM_NONE, id: 0 }]],
    ["@releaseDomain", [{ perms: XS_PERM_NONE, id: 0 }]],
  ]);
  private readonly dirty: XsConnection[] = [];
  private flushing = false;

  constructor(o: XsStoreOptions) {
    this.quotas = o.quotas;
    this.privDomid = o.privDomid;
    this.domainExists = o.domainExists;
    this.mapDomainInterface = o.mapDomainInterface;
    this.log = o.log;
    this.host = o.host;
  }

  markDirty(conn: XsConnection): void {
    if (!conn.dirty) {
      conn.dirty = true;
      this.dirty.push(conn);
    }
  }

  /** Tell transports about queued output. */
  flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      for (let i = 0; i < this.dirty.length; i++) {
        const c = this.dirty[i];
        c.dirty = false;
        if (!c.closed) c.onOutput(c);
      }
      this.dirty.length = 0;
    } finally {
      this.flushing = false;
    }
  }
}

export function reply(conn: XsConnection, m: XsMessage, type: number, payload: Uint8Array): void {
  if (payload.length > XENSTORE_PAYLOAD_MAX) {
    sendError(conn, m, E2BIG);
    return;
  }
  conn.enqueue(encodeMessage(type, m.reqId, m.txId, payload), false);
}

export function ack(conn: XsConnection, m: XsMessage): number {
  conn.enqueue(encodeMessage(m.type, m.reqId, m.txId, OK), false);
  return 0;
}

export function sendError(conn: XsConnection, m: XsMessage, err: number): void {
  conn.enqueue(encodeMessage(XS_ERROR, m.reqId, m.txId, errorPayload(err)), false);
}
