/*
 * The xenstore daemon's front: options, connections, and the dispatch of each request to
 * its handler (C's xenstored_core.c process_message and its wire_funcs table), with the
 * semantics of Xen 4.17's C xenstored behind a transport-neutral connection. The handlers
 * live along C's seams: nodes.ts and permissions.ts (the tree), watch.ts, transaction.ts,
 * domain.ts with accounting.ts and quotas.ts, control.ts; store.ts holds the state.
 *
 * Invariants:
 * - Every request gets exactly one reply or error, except that a connection C would drop
 *   (payload > XENSTORE_PAYLOAD_MAX, a bad ring index) is dropped; guest bytes never throw.
 * - A request names a transaction only through its header; the handler runs with
 *   `conn.txn` set to it and `conn.txn` is null again whatever the handler does.
 * - A closed connection leaves nothing behind: its watches leave the index and its
 *   transactions are discarded.
 */
import {
  DOMID_FIRST_RESERVED,
  XS_CONTROL,
  XS_DIRECTORY,
  XS_DIRECTORY_PART,
  XS_GET_DOMAIN_PATH,
  XS_GET_PERMS,
  XS_INTRODUCE,
  XS_IS_DOMAIN_INTRODUCED,
  XS_MKDIR,
  XS_READ,
  XS_RELEASE,
  XS_RESET_WATCHES,
  XS_RESUME,
  XS_RM,
  XS_SET_PERMS,
  XS_SET_TARGET,
  XS_TRANSACTION_END,
  XS_TRANSACTION_START,
  XS_UNWATCH,
  XS_WATCH,
  XS_WRITE,
} from "@hyperlab/abi";
import { domainRec } from "./accounting";
import {
  type ConnectionHost,
  type ConnectOptions,
  type Transaction,
  XsConnection,
} from "./connection";
import { checkInvariants, opControl } from "./control";
import {
  destroyDomain,
  opGetDomainPath,
  opIntroduce,
  opIsDomainIntroduced,
  opRelease,
  opResume,
  opSetTarget,
  parseDomainList,
} from "./domain";
import { XenstoreError } from "./errors";
import { EMPTY, XsNode } from "./node";
import {
  opDirectory,
  opDirectoryPart,
  opGetPerms,
  opMkdir,
  opRead,
  opRm,
  opSetPerms,
  opWrite,
} from "./nodes";
import { XS_PERM_NONE, type XsPerms } from "./perms";
import { XENSTORED_DEFAULT_QUOTAS, type XenstoredQuotas } from "./quotas";
import { type MapDomainInterface, sendError, XsStore } from "./store";
import { opTransactionEnd, opTransactionStart } from "./transaction";
import { deleteAllWatches, fireWatches, opResetWatches, opUnwatch, opWatch } from "./watch";
import { EACCES, ENOENT, ENOSYS, type XsMessage } from "./wire";

export type { ConnectOptions } from "./connection";
export { XsConnection } from "./connection";
export { parseDomainList } from "./domain";
export { XENSTORED_DEFAULT_QUOTAS, type XenstoredQuotas } from "./quotas";
export type { DomainChannel, MapDomainInterface } from "./store";

export interface XenstoredOptions {
  /** Overrides of the default quotas. */
  quotas?: Partial<XenstoredQuotas>;
  /** A domain (besides 0) that is privileged, as `--priv-domid`. */
  privDomid?: number;
  /** Whether a domain exists (C asks the hypervisor); default: every domid exists. */
  domainExists?: (domid: number) => boolean;
  /**
   * For a daemon on its own: the domids that exist, as "0,1-8" (what C xenstored would learn
   * from the hypervisor; the peer shim's XSSHIM_DOMAINS). Ignored when `domainExists` is given.
   */
  domains?: string;
  /**
   * INTRODUCE's way to reach a domain's ring. Without it (a daemon on its own) INTRODUCE is
   * accepted for any domid as C's is, with a ring nobody reads or writes.
   */
  mapDomainInterface?: MapDomainInterface;
  /** One line per connection event and error. */
  log?: (line: string) => void;
}

type Handler = (ds: XsStore, conn: XsConnection, m: XsMessage) => number;

interface OpInfo {
  name: string;
  fn: Handler;
  /** The request ignores its transaction id. */
  notid?: boolean;
  /** Only privileged connections may send it. */
  priv?: boolean;
}

const OPS: (OpInfo | undefined)[] = [];
OPS[XS_CONTROL] = { name: "CONTROL", fn: opControl, priv: true };
OPS[XS_DIRECTORY] = { name: "DIRECTORY", fn: opDirectory };
OPS[XS_READ] = { name: "READ", fn: opRead };
OPS[XS_GET_PERMS] = { name: "GET_PERMS", fn: opGetPerms };
OPS[XS_WATCH] = { name: "WATCH", fn: opWatch, notid: true };
OPS[XS_UNWATCH] = { name: "UNWATCH", fn: opUnwatch, notid: true };
OPS[XS_TRANSACTION_START] = { name: "TRANSACTION_START", fn: opTransactionStart };
OPS[XS_TRANSACTION_END] = { name: "TRANSACTION_END", fn: opTransactionEnd };
OPS[XS_INTRODUCE] = { name: "INTRODUCE", fn: opIntroduce, priv: true };
OPS[XS_RELEASE] = { name: "RELEASE", fn: opRelease, priv: true };
OPS[XS_GET_DOMAIN_PATH] = { name: "GET_DOMAIN_PATH", fn: opGetDomainPath };
OPS[XS_WRITE] = { name: "WRITE", fn: opWrite };
OPS[XS_MKDIR] = { name: "MKDIR", fn: opMkdir };
OPS[XS_RM] = { name: "RM", fn: opRm };
OPS[XS_SET_PERMS] = { name: "SET_PERMS", fn: opSetPerms };
OPS[XS_IS_DOMAIN_INTRODUCED] = {
  name: "IS_DOMAIN_INTRODUCED",
  fn: opIsDomainIntroduced,
  priv: true,
};
OPS[XS_RESUME] = { name: "RESUME", fn: opResume, priv: true };
OPS[XS_SET_TARGET] = { name: "SET_TARGET", fn: opSetTarget, priv: true };
OPS[XS_RESET_WATCHES] = { name: "RESET_WATCHES", fn: opResetWatches };
OPS[XS_DIRECTORY_PART] = { name: "DIRECTORY_PART", fn: opDirectoryPart };

/** The xenstore daemon. Transports create connections with `connect`. */
export class Xenstored implements ConnectionHost {
  /** @internal The state the request handlers work on. */
  readonly store: XsStore;

  constructor(options: XenstoredOptions = {}) {
    const q = { ...XENSTORED_DEFAULT_QUOTAS, ...options.quotas };
    for (const [k, v] of Object.entries(q)) {
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new XenstoreError(
          "XS_BAD_OPTION",
          `quota ${k} must be a positive whole number, got ${v}`,
        );
      }
    }
    const ds = new XsStore({
      quotas: q,
      privDomid: options.privDomid,
      domainExists:
        options.domainExists ??
        (options.domains === undefined ? () => true : parseDomainList(options.domains)),
      mapDomainInterface: options.mapDomainInterface,
      log: options.log ?? (() => {}),
      host: this,
    });
    this.store = ds;
    const dom0: XsPerms = [{ perms: XS_PERM_NONE, id: 0 }];
    ds.db.set("/", new XsNode("/", 0, dom0, EMPTY, new Set(["tool"]), 5, false));
    ds.db.set("/tool", new XsNode("/tool", 0, dom0, EMPTY, new Set(["xenstored"]), 10, false));
    ds.db.set(
      "/tool/xenstored",
      new XsNode("/tool/xenstored", 0, dom0, EMPTY, new Set(), 0, false),
    );
    const d0 = domainRec(ds, 0, true)!;
    d0.introduced = true;
    d0.nbentry = 3;
  }

  /** Effective quotas (CONTROL quota set changes them). */
  get quotas(): XenstoredQuotas {
    return this.store.quotas;
  }

  get privDomid(): number | undefined {
    return this.store.privDomid;
  }

  /** @internal The tree, by path. */
  get db(): ReadonlyMap<string, XsNode> {
    return this.store.db;
  }

  // ---- public API for transports and hosts -----------------------------------------

  /** A new client connection (socket, ring, in-memory). */
  connect(opts: ConnectOptions): XsConnection {
    if (
      opts.domid !== undefined &&
      !(Number.isInteger(opts.domid) && opts.domid >= 0 && opts.domid < DOMID_FIRST_RESERVED)
    ) {
      throw new XenstoreError(
        "XS_BAD_ARGUMENT",
        `domid must be a whole number from 0 to ${DOMID_FIRST_RESERVED - 1}, got ${opts.domid}`,
      );
    }
    const ds = this.store;
    const conn = new XsConnection(this, ds.nextConnId++, opts);
    ds.conns.add(conn);
    if (conn.domid !== null && conn.domid !== 0) domainRec(ds, conn.domid, true);
    ds.log(`connection ${conn.id} (${conn.label}) opened`);
    return conn;
  }

  /** Open connections (sockets, domains, in-memory). */
  get connectionCount(): number {
    return this.store.conns.size;
  }

  /** Number of nodes in the tree. */
  get nodeCount(): number {
    return this.store.db.size;
  }

  /** Total number of registered watches. */
  get watchCount(): number {
    let n = 0;
    for (const s of this.store.watchIndex.values()) n += s.size;
    return n;
  }

  /** Domain `domid` is shutting down or crashed: fire @releaseDomain (C's check_domains). */
  domainShutdown(domid: number): void {
    const ds = this.store;
    const d = ds.domains.get(domid >>> 0);
    if (d === undefined || !d.introduced || d.shutdown) return;
    d.shutdown = true;
    fireWatches(ds, null, "@releaseDomain", null, true, null);
    ds.flush();
  }

  /** Domain `domid` was destroyed: release it as RELEASE does. */
  domainDestroyed(domid: number): void {
    const ds = this.store;
    const d = ds.domains.get(domid >>> 0);
    if (d === undefined) return;
    destroyDomain(ds, d);
    ds.flush();
  }

  /**
   * Checks the tree's invariants (parent links, child lists, childLen, perms non-empty,
   * per-domain node counts). Returns a list of problems; empty when sound.
   */
  checkInvariants(): string[] {
    return checkInvariants(this.store);
  }

  // ---- connection plumbing (ConnectionHost) -----------------------------------------

  /** @internal */
  markDirty(conn: XsConnection): void {
    this.store.markDirty(conn);
  }

  /** @internal Tell transports about queued output. */
  flush(): void {
    this.store.flush();
  }

  /** @internal A protocol violation: C's ignore_connection. */
  drop(conn: XsConnection, reason: string, err: number): void {
    if (conn.closed) return;
    const ds = this.store;
    ds.log(`connection ${conn.id} (${conn.label}) dropped: ${reason}`);
    const d = conn.domid === null ? undefined : ds.domains.get(conn.domid);
    if (d?.conn === conn) d.channel?.markError(err);
    this.closeConnection(conn, reason, false);
    conn.onDrop?.(conn, reason);
  }

  /** @internal */
  closeConnection(conn: XsConnection, reason: string, logIt = true): void {
    if (conn.closed) return;
    const ds = this.store;
    conn.closed = true;
    deleteAllWatches(ds, conn);
    conn.transactions.clear();
    conn.txn = null;
    conn.clearOutput();
    ds.conns.delete(conn);
    if (logIt) ds.log(`connection ${conn.id} (${conn.label}) ${reason}`);
    // A domain's ring connection stays known (ignored) until RELEASE, as in C.
  }

  /** @internal One whole request from `conn`. */
  process(conn: XsConnection, m: XsMessage): void {
    const ds = this.store;
    const op = m.type < OPS.length ? OPS[m.type] : undefined;
    if (op === undefined) {
      ds.log(`connection ${conn.id} (${conn.label}): unknown operation ${m.type}`);
      sendError(conn, m, ENOSYS);
      return;
    }
    if (op.priv && !conn.privileged) {
      sendError(conn, m, EACCES);
      return;
    }
    let txn: Transaction | null = null;
    if (!op.notid && m.txId !== 0) {
      txn = conn.transactions.get(m.txId) ?? null;
      if (txn === null) {
        sendError(conn, m, ENOENT);
        return;
      }
    }
    conn.txn = txn;
    let ret: number;
    try {
      ret = op.fn(ds, conn, m);
    } finally {
      conn.txn = null;
    }
    if (ret !== 0 && !conn.closed) sendError(conn, m, ret);
  }
}
