/*
 * The xenstore daemon: the tree, permissions, watches, transactions, domains and quotas, with
 * the semantics of Xen 4.17's C xenstored, behind a transport-neutral connection.
 *
 * Invariants:
 * - Every node in `db` has its parent in `db` and is listed in the parent's `children`;
 *   "/" always exists. `childLen` is the sum of (name length + 1) over `children`.
 * - A node's `value` and `perms` arrays are never mutated once attached; a `children` set
 *   marked shared (referenced by a transaction's copy) is copied before it is changed.
 * - A transaction never copies the tree: it records each node it touches (C's accessed
 *   list) with the generation it saw; commit fails with EAGAIN if a node it read first has
 *   a different generation now. Per-op cost is independent of the tree's size.
 * - Guest bytes never throw: every request gets C xenstored's reply or error string, or the
 *   connection is dropped as C drops it (payload > XENSTORE_PAYLOAD_MAX).
 * - A closed connection leaves nothing behind: its watches leave the index and its
 *   transactions are discarded.
 */
import {
  DOMID_FIRST_RESERVED,
  DOMID_SELF,
  XENSTORE_PAYLOAD_MAX,
  XENSTORE_REL_PATH_MAX,
  XS_CONTROL,
  XS_DIRECTORY,
  XS_DIRECTORY_PART,
  XS_ERROR,
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
  XS_WATCH_EVENT,
  XS_WRITE,
} from "@hyperlab/abi";
import { XenstoreError } from "./errors";
import { basename, canonicalize, childPath, domainPath, isValidNodename, parentOf } from "./paths";
import {
  parsePerm,
  permToString,
  XS_PERM_IGNORE,
  XS_PERM_NONE,
  XS_PERM_OWNER,
  XS_PERM_READ,
  XS_PERM_WRITE,
  type XsPerm,
  type XsPerms,
} from "./perms";
import {
  atoi,
  countStrings,
  decodeLatin1,
  E2BIG,
  EACCES,
  EAGAIN,
  EBUSY,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOMEM,
  ENOSPC,
  ENOSYS,
  EPERM,
  encodeMessage,
  errorPayload,
  getStrings,
  joinz,
  latin1,
  latin1z,
  MessageReader,
  onearg,
  type XsMessage,
} from "./wire";

/** C xenstored 4.17's quotas; they apply to unprivileged domains only. */
export interface XenstoredQuotas {
  /** Nodes a domain may own (`-E`, "nodes"). */
  nodes: number;
  /** Watches per domain (`-W`, "watches"). */
  watches: number;
  /** Open transactions per domain connection (`-t`, "transactions"). */
  transactions: number;
  /** Replies a domain may leave unread before its requests stall ("outstanding"). */
  outstanding: number;
  /** Nodes one transaction may touch ("transaction-nodes"). */
  transactionNodes: number;
  /** Bytes of one node record: header, perms, value and child names (`-S`, "node-size"). */
  nodeSize: number;
  /** Path length below /local/domain/<id>/ (`-M`, "path-max"). */
  pathMax: number;
  /** Permission entries per node (`-A`, "permissions"). */
  permissions: number;
  /** Bytes of pending output per domain before watch events are dropped ("memory", hard). */
  memory: number;
}

export const XENSTORED_DEFAULT_QUOTAS: Readonly<XenstoredQuotas> = Object.freeze({
  nodes: 1000,
  watches: 128,
  transactions: 10,
  outstanding: 20,
  transactionNodes: 1024,
  nodeSize: 2048,
  pathMax: XENSTORE_REL_PATH_MAX,
  permissions: 5,
  memory: 2 * 1024 * 1024 + 512 * 1024,
});

const QUOTA_NAMES: readonly [string, keyof XenstoredQuotas, string][] = [
  ["nodes", "nodes", "Nodes per domain"],
  ["watches", "watches", "Watches per domain"],
  ["transactions", "transactions", "Transactions per domain"],
  ["outstanding", "outstanding", "Outstanding requests per domain"],
  ["transaction-nodes", "transactionNodes", "Max. number of accessed nodes per transaction"],
  ["memory", "memory", "Total Xenstore memory per domain (error level)"],
  ["node-size", "nodeSize", "Max. size of a node"],
  ["path-max", "pathMax", "Max. length of a node path"],
  ["permissions", "permissions", "Max. number of permissions per node"],
];

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

export interface ConnectOptions {
  /** The domain behind the connection; absent for a local socket (privileged, dom0's home). */
  domid?: number;
  /** Called when the connection has output to send (drain it with peekOutput/consumeOutput). */
  onOutput: (conn: XsConnection) => void;
  /** Called once when the daemon drops the connection (protocol violation or RELEASE). */
  onDrop?: (conn: XsConnection, reason: string) => void;
  /** For log lines. */
  label?: string;
}

const NO_GEN = -1;
/** sizeof(struct xs_tdb_record_hdr) and sizeof(struct xs_permissions) in C xenstored. */
const RECORD_HDR = 24;
const RECORD_PERM = 8;
const OK = latin1z("OK");
const EMPTY = new Uint8Array(0);
const RWO = XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;

class XsNode {
  constructor(
    readonly name: string,
    public gen: number,
    public perms: XsPerms,
    public value: Uint8Array,
    public children: Set<string>,
    public childLen: number,
    public sharedChildren: boolean,
  ) {}

  /** A transaction's copy: shares value, perms and (copy-on-write) children. */
  txnCopy(): XsNode {
    this.sharedChildren = true;
    return new XsNode(
      this.name,
      this.gen,
      this.perms,
      this.value,
      this.children,
      this.childLen,
      true,
    );
  }

  ownChildren(): Set<string> {
    if (this.sharedChildren) {
      this.children = new Set(this.children);
      this.sharedChildren = false;
    }
    return this.children;
  }

  addChild(name: string): void {
    this.ownChildren().add(name);
    this.childLen += name.length + 1;
  }

  removeChild(name: string): void {
    if (this.ownChildren().delete(name)) this.childLen -= name.length + 1;
  }

  recordSize(extraChild = 0, value = this.value, nperms = this.perms.length): number {
    return RECORD_HDR + RECORD_PERM * nperms + value.length + this.childLen + extraChild;
  }
}

interface Accessed {
  /** The transaction's view of the node; null if absent in it. */
  node: XsNode | null;
  /** Generation seen at the first (read) access. */
  gen: number;
  checkGen: boolean;
  modified: boolean;
  fireWatch: boolean;
  watchExact: boolean;
  /** The node's perms when first accessed, for watch permission checks at commit. */
  oldPerms: XsPerms | null;
}

class Transaction {
  readonly accessed = new Map<string, Accessed>();
  readonly entryDelta = new Map<number, number>();
  fail = false;
  nodes = 0;
  constructor(
    readonly id: number,
    readonly conn: XsConnection,
  ) {}
}

interface Watch {
  readonly conn: XsConnection;
  /** Registration order across the daemon (C keeps each connection's watches in a list). */
  readonly seq: number;
  /** Absolute path or @-name. */
  readonly node: string;
  readonly token: string;
  readonly relative: boolean;
}

interface DomainRec {
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

interface OutMsg {
  bytes: Uint8Array;
  event: boolean;
  /** For a (non-@) watch event: "path\0token", the key of the duplicate check. */
  key: string | null;
}

/** One client of the daemon: a socket, a domain's ring, or an in-memory pipe. */
export class XsConnection {
  readonly id: number;
  /** The domain, or null for a local socket. */
  readonly domid: number | null;
  readonly label: string;
  /** Home for relative paths: /local/domain/<domid> (dom0's for sockets). */
  readonly home: string;
  /** SET_TARGET: this connection acts with the target domain's rights too. */
  target: number | null = null;
  /** @internal */ txn: Transaction | null = null;
  /** @internal */ readonly transactions = new Map<number, Transaction>();
  /** @internal */ nextTxId = 1;
  /** @internal */ readonly watches = new Map<string, Watch>();
  /** @internal */ readonly out: OutMsg[] = [];
  /** @internal */ outHead = 0;
  /** @internal */ outOffset = 0;
  /** @internal */ outBytes = 0;
  /** @internal */ outstanding = 0;
  /** @internal Pending (unsent) watch events by "path\0token", for the duplicate check. */
  readonly pendingEvents = new Map<string, number>();
  /** @internal */ readonly reader = new MessageReader();
  /** @internal */ closed = false;
  /** @internal Set by the transport that drains this connection. */
  onOutput: (conn: XsConnection) => void;
  /** @internal */ readonly onDrop: ((conn: XsConnection, reason: string) => void) | undefined;
  /** @internal */ dirty = false;

  /** @internal */
  constructor(
    private readonly daemon: Xenstored,
    id: number,
    opts: ConnectOptions,
  ) {
    this.id = id;
    this.domid = opts.domid === undefined ? null : opts.domid >>> 0;
    this.home = domainPath(this.domid ?? 0);
    this.label = opts.label ?? (this.domid === null ? `socket#${id}` : `domain ${this.domid}`);
    this.onOutput = opts.onOutput;
    this.onDrop = opts.onDrop;
  }

  /** Privileged: a socket, dom0, or the --priv-domid domain. */
  get privileged(): boolean {
    return this.domid === null || this.domid === 0 || this.domid === this.daemon.privDomid;
  }

  /** Whether the connection was closed or dropped. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes still needed to finish the message being received (16 for a new header). */
  get needed(): number {
    return this.reader.needed;
  }

  /**
   * Bytes from the client, split or batched anyhow. Complete messages are processed at
   * once; replies and events queue up and `onOutput` fires. Returns false once the
   * connection is dropped (e.g. a header announcing more than XENSTORE_PAYLOAD_MAX).
   */
  feed(bytes: Uint8Array): boolean {
    if (this.closed) return false;
    const ok = this.reader.push(bytes, (m) => {
      if (!this.closed) this.daemon.process(this, m);
    });
    if (!ok && !this.closed) {
      this.daemon.drop(this, `payload longer than ${XENSTORE_PAYLOAD_MAX} bytes`, 3);
    }
    this.daemon.flush();
    return !this.closed;
  }

  /** Whether another request may be consumed now (C stalls a domain with too many unread replies). */
  canAcceptRequest(): boolean {
    if (this.closed) return false;
    return this.privileged || this.outstanding < this.daemon.quotas.outstanding;
  }

  /** The unsent bytes of the first queued message, or undefined when nothing is queued. */
  peekOutput(): Uint8Array | undefined {
    const m = this.out[this.outHead];
    if (m === undefined) return undefined;
    return this.outOffset === 0 ? m.bytes : m.bytes.subarray(this.outOffset);
  }

  /** Mark `n` bytes of peekOutput() as sent. */
  consumeOutput(n: number): void {
    let left = n;
    while (left > 0) {
      const m = this.out[this.outHead];
      if (m === undefined) return;
      const rest = m.bytes.length - this.outOffset;
      if (left < rest) {
        this.outOffset += left;
        return;
      }
      left -= rest;
      this.outBytes -= m.bytes.length;
      if (!m.event) this.outstanding--;
      if (m.key !== null) this.forgetEvent(m.key);
      this.out[this.outHead] = undefined as unknown as OutMsg;
      this.outHead++;
      this.outOffset = 0;
    }
    if (this.outHead > 64 && this.outHead * 2 > this.out.length) {
      this.out.splice(0, this.outHead);
      this.outHead = 0;
    }
  }

  /** All queued output at once (for stream transports), emptying the queue. */
  takeAllOutput(): Uint8Array | undefined {
    const n = this.out.length - this.outHead;
    if (n === 0) return undefined;
    let bytes: Uint8Array;
    if (n === 1 && this.outOffset === 0) {
      bytes = this.out[this.outHead].bytes;
    } else {
      let total = 0;
      for (let i = this.outHead; i < this.out.length; i++) total += this.out[i].bytes.length;
      total -= this.outOffset;
      bytes = new Uint8Array(total);
      let o = 0;
      for (let i = this.outHead; i < this.out.length; i++) {
        const b =
          i === this.outHead ? this.out[i].bytes.subarray(this.outOffset) : this.out[i].bytes;
        bytes.set(b, o);
        o += b.length;
      }
    }
    this.clearOutput();
    return bytes;
  }

  /**
   * The transport saw a protocol violation (bad ring index, ...): drop the connection as
   * C's ignore_connection does. `ringError` is the XENSTORE_ERROR_* for the page.
   */
  protocolError(reason: string, ringError: number): void {
    this.daemon.drop(this, reason, ringError);
  }

  /** The client went away: free its watches and transactions. */
  close(): void {
    this.daemon.closeConnection(this, "closed");
  }

  /** Number of watches and open transactions (for tests and `hyperlab xenstored` logs). */
  get stats(): { watches: number; transactions: number } {
    return { watches: this.watches.size, transactions: this.transactions.size };
  }

  /** @internal */
  enqueue(bytes: Uint8Array, event: boolean, key: string | null = null): void {
    this.out.push({ bytes, event, key });
    this.outBytes += bytes.length;
    if (!event) this.outstanding++;
    if (key !== null) this.pendingEvents.set(key, (this.pendingEvents.get(key) ?? 0) + 1);
    this.daemon.markDirty(this);
  }

  private forgetEvent(key: string): void {
    const n = this.pendingEvents.get(key) ?? 0;
    if (n <= 1) this.pendingEvents.delete(key);
    else this.pendingEvents.set(key, n - 1);
  }

  /** @internal */
  clearOutput(): void {
    this.pendingEvents.clear();
    this.out.length = 0;
    this.outHead = 0;
    this.outOffset = 0;
    this.outBytes = 0;
    this.outstanding = 0;
  }
}

type Handler = (d: Xenstored, conn: XsConnection, m: XsMessage) => number;

interface OpInfo {
  name: string;
  fn: Handler;
  notid?: boolean;
  priv?: boolean;
}

/** A node lookup's outcome: the node, or the errno C would answer. */
type Got = XsNode | number;

/** The xenstore daemon. Transports create connections with `connect`. */
export class Xenstored {
  /** Effective quotas (CONTROL quota set changes them). */
  readonly quotas: XenstoredQuotas;
  readonly privDomid: number | undefined;
  private readonly domainExists: (domid: number) => boolean;
  private readonly mapDomainInterface: MapDomainInterface | undefined;
  private readonly log: (line: string) => void;
  /** @internal */ readonly db = new Map<string, XsNode>();
  private generation = 0;
  private err = 0;
  private nextConnId = 1;
  private readonly conns = new Set<XsConnection>();
  private readonly watchIndex = new Map<string, Set<Watch>>();
  /** Scratch list for fireWatches (reused, so a fire allocates nothing for it). */
  private readonly watchHits: Watch[] = [];
  private nextWatchSeq = 1;
  private readonly domains = new Map<number, DomainRec>();
  private specialPerms = new Map<string, XsPerms>([
    ["@introduceDomain", [{ perms: XS_PERM_NONE, id: 0 }]],
    ["@releaseDomain", [{ perms: XS_PERM_NONE, id: 0 }]],
  ]);
  private readonly dirty: XsConnection[] = [];
  private flushing = false;

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
    this.quotas = q;
    this.privDomid = options.privDomid;
    this.domainExists =
      options.domainExists ??
      (options.domains === undefined ? () => true : parseDomainList(options.domains));
    this.mapDomainInterface = options.mapDomainInterface;
    this.log = options.log ?? (() => {});
    const dom0: XsPerms = [{ perms: XS_PERM_NONE, id: 0 }];
    this.db.set("/", new XsNode("/", 0, dom0, EMPTY, new Set(["tool"]), 5, false));
    this.db.set("/tool", new XsNode("/tool", 0, dom0, EMPTY, new Set(["xenstored"]), 10, false));
    this.db.set(
      "/tool/xenstored",
      new XsNode("/tool/xenstored", 0, dom0, EMPTY, new Set(), 0, false),
    );
    const d0 = this.domainRec(0, true)!;
    d0.introduced = true;
    d0.nbentry = 3;
  }

  // ---- public API for transports and hosts -----------------------------------------

  /** A new client connection (socket, ring, in-memory). */
  connect(opts: ConnectOptions): XsConnection {
    if (
      opts.domid !== undefined &&
      !(Number.isInteger(opts.domid) && opts.domid >= 0 && opts.domid < 0x7ff0)
    ) {
      throw new XenstoreError(
        "XS_BAD_ARGUMENT",
        `domid must be a whole number from 0 to 32751, got ${opts.domid}`,
      );
    }
    const conn = new XsConnection(this, this.nextConnId++, opts);
    this.conns.add(conn);
    if (conn.domid !== null && conn.domid !== 0) this.domainRec(conn.domid, true);
    this.log(`connection ${conn.id} (${conn.label}) opened`);
    return conn;
  }

  /** Open connections (sockets, domains, in-memory). */
  get connectionCount(): number {
    return this.conns.size;
  }

  /** Number of nodes in the tree. */
  get nodeCount(): number {
    return this.db.size;
  }

  /** Total number of registered watches. */
  get watchCount(): number {
    let n = 0;
    for (const s of this.watchIndex.values()) n += s.size;
    return n;
  }

  /** Domain `domid` is shutting down or crashed: fire @releaseDomain (C's check_domains). */
  domainShutdown(domid: number): void {
    const d = this.domains.get(domid >>> 0);
    if (d === undefined || !d.introduced || d.shutdown) return;
    d.shutdown = true;
    this.fireWatches(null, "@releaseDomain", null, true, null);
    this.flush();
  }

  /** Domain `domid` was destroyed: release it as RELEASE does. */
  domainDestroyed(domid: number): void {
    const d = this.domains.get(domid >>> 0);
    if (d === undefined) return;
    this.destroyDomain(d);
    this.flush();
  }

  /**
   * Checks the tree's invariants (parent links, child lists, childLen, perms non-empty,
   * per-domain node counts). Returns a list of problems; empty when sound.
   */
  checkInvariants(): string[] {
    const problems: string[] = [];
    const counts = new Map<number, number>();
    for (const [name, node] of this.db) {
      if (node.name !== name) problems.push(`${name}: node named ${node.name}`);
      if (node.perms.length === 0) problems.push(`${name}: no perms`);
      let len = 0;
      for (const c of node.children) {
        len += c.length + 1;
        if (!this.db.has(childPath(name, c))) problems.push(`${name}: child ${c} missing`);
      }
      if (len !== node.childLen) problems.push(`${name}: childLen ${node.childLen} != ${len}`);
      if (name !== "/") {
        const p = this.db.get(parentOf(name));
        if (p === undefined) problems.push(`${name}: parent missing`);
        else if (!p.children.has(basename(name))) problems.push(`${name}: not in parent's list`);
        if (!isValidNodename(name, 1 << 30)) problems.push(`${name}: invalid name`);
      }
      const owner = node.perms[0]?.id ?? 0;
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
    }
    for (const [domid, d] of this.domains) {
      const n = counts.get(domid) ?? 0;
      if (d.nbentry !== n) problems.push(`domain ${domid}: nbentry ${d.nbentry} != ${n} nodes`);
    }
    for (const [path, set] of this.watchIndex) {
      for (const w of set) {
        if (w.conn.closed) problems.push(`watch ${path} of closed connection ${w.conn.id}`);
      }
    }
    for (const c of this.conns) {
      if (c.closed) problems.push(`closed connection ${c.id} still listed`);
      if (c.txn !== null) problems.push(`connection ${c.id} left inside a transaction`);
    }
    return problems;
  }

  // ---- connection plumbing ---------------------------------------------------------

  /** @internal */
  markDirty(conn: XsConnection): void {
    if (!conn.dirty) {
      conn.dirty = true;
      this.dirty.push(conn);
    }
  }

  /** @internal Tell transports about queued output. */
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

  /** @internal A protocol violation: C's ignore_connection. */
  drop(conn: XsConnection, reason: string, err: number): void {
    if (conn.closed) return;
    this.log(`connection ${conn.id} (${conn.label}) dropped: ${reason}`);
    const d = conn.domid === null ? undefined : this.domains.get(conn.domid);
    if (d?.conn === conn) d.channel?.markError(err);
    this.closeConnection(conn, reason, false);
    conn.onDrop?.(conn, reason);
  }

  /** @internal */
  closeConnection(conn: XsConnection, reason: string, logIt = true): void {
    if (conn.closed) return;
    conn.closed = true;
    this.deleteAllWatches(conn);
    conn.transactions.clear();
    conn.txn = null;
    conn.clearOutput();
    this.conns.delete(conn);
    if (logIt) this.log(`connection ${conn.id} (${conn.label}) ${reason}`);
    // A domain's ring connection stays known (ignored) until RELEASE, as in C.
  }

  private deleteAllWatches(conn: XsConnection): void {
    for (const w of conn.watches.values()) this.unindexWatch(w);
    conn.watches.clear();
  }

  private unindexWatch(w: Watch): void {
    const s = this.watchIndex.get(w.node);
    if (s === undefined) return;
    s.delete(w);
    if (s.size === 0) this.watchIndex.delete(w.node);
  }

  // ---- replies ---------------------------------------------------------------------

  private reply(conn: XsConnection, m: XsMessage, type: number, payload: Uint8Array): void {
    if (payload.length > XENSTORE_PAYLOAD_MAX) {
      this.sendError(conn, m, E2BIG);
      return;
    }
    conn.enqueue(encodeMessage(type, m.reqId, m.txId, payload), false);
  }

  private ack(conn: XsConnection, m: XsMessage): number {
    conn.enqueue(encodeMessage(m.type, m.reqId, m.txId, OK), false);
    return 0;
  }

  private sendError(conn: XsConnection, m: XsMessage, err: number): void {
    conn.enqueue(encodeMessage(XS_ERROR, m.reqId, m.txId, errorPayload(err)), false);
  }

  private sendEvent(conn: XsConnection, path: string, token: string): void {
    const len = path.length + token.length + 2;
    if (len > XENSTORE_PAYLOAD_MAX) return;
    // C's send_event drops an event identical to one still waiting (not for @-events).
    const key = path.charCodeAt(0) === 64 ? null : `${path}\0${token}`;
    if (key !== null && conn.pendingEvents.has(key)) return;
    const bytes = encodeMessage(XS_WATCH_EVENT, 0, 0, joinz([path, token]));
    if (!conn.privileged && conn.outBytes + bytes.length > this.quotas.memory) return;
    conn.enqueue(bytes, true, key);
  }

  // ---- message dispatch ------------------------------------------------------------

  /** @internal One whole request from `conn`. */
  process(conn: XsConnection, m: XsMessage): void {
    const op = m.type < OPS.length ? OPS[m.type] : undefined;
    if (op === undefined) {
      this.log(`connection ${conn.id} (${conn.label}): unknown operation ${m.type}`);
      this.sendError(conn, m, ENOSYS);
      return;
    }
    if (op.priv && !conn.privileged) {
      this.sendError(conn, m, EACCES);
      return;
    }
    let txn: Transaction | null = null;
    if (!op.notid && m.txId !== 0) {
      txn = conn.transactions.get(m.txId) ?? null;
      if (txn === null) {
        this.sendError(conn, m, ENOENT);
        return;
      }
    }
    conn.txn = txn;
    let ret: number;
    try {
      ret = op.fn(this, conn, m);
    } finally {
      conn.txn = null;
    }
    if (ret !== 0 && !conn.closed) this.sendError(conn, m, ret);
  }

  // ---- domains ---------------------------------------------------------------------

  private domainRec(domid: number, create: boolean): DomainRec | undefined {
    let d = this.domains.get(domid);
    if (d === undefined && create) {
      d = {
        domid,
        generation: this.generation,
        introduced: false,
        conn: null,
        channel: null,
        port: 0,
        shutdown: false,
        nbentry: 0,
      };
      this.domains.set(domid, d);
    }
    return d;
  }

  private isPrivDomid(domid: number): boolean {
    return domid === 0 || domid === this.privDomid;
  }

  private entryInc(conn: XsConnection | null, owner: number, n: number): void {
    const txn = conn?.txn;
    if (txn) {
      txn.entryDelta.set(owner, (txn.entryDelta.get(owner) ?? 0) + n);
      return;
    }
    const d = this.domainRec(owner, true)!;
    d.nbentry += n;
  }

  /** C's domain_entry: the connection's own node count (0 when privileged). */
  private domainEntry(conn: XsConnection | null): number {
    if (conn === null || conn.privileged) return 0;
    return this.domains.get(conn.domid!)?.nbentry ?? 0;
  }

  /** Node removal of a destroyed domain (XSA-419), then @releaseDomain. */
  private destroyDomain(d: DomainRec): void {
    const conn = d.conn;
    d.conn = null;
    if (conn !== null && !conn.closed) {
      conn.closed = true;
      this.deleteAllWatches(conn);
      conn.transactions.clear();
      conn.clearOutput();
      this.conns.delete(conn);
      this.log(`connection ${conn.id} (${conn.label}) released`);
      conn.onDrop?.(conn, "released");
    }
    if (d.nbentry > 0) this.removeDomainNodes(d);
    for (const [name, perms] of this.specialPerms) {
      this.specialPerms.set(name, removeDomidFromPerms(perms, d.domid, this.privDomid ?? 0));
    }
    const wasIntroduced = d.introduced;
    d.channel?.close();
    d.channel = null;
    this.domains.delete(d.domid);
    if (wasIntroduced && d.domid !== 0) this.fireWatches(null, "@releaseDomain", null, true, null);
  }

  private removeDomainNodes(d: DomainRec): void {
    // Pre-order walk; a removed node's children go with it.
    const stack = ["/"];
    while (stack.length > 0 && d.nbentry > 0) {
      const name = stack.pop()!;
      const node = this.db.get(name);
      if (node === undefined) continue;
      if (name !== "/" && node.perms[0].id === d.domid) {
        this.rmNode(null, name);
        continue;
      }
      const kids = [...node.children];
      for (let i = kids.length - 1; i >= 0; i--) stack.push(childPath(name, kids[i]));
    }
  }

  /** Is the perm entry of domain `id` younger than the node (domain gone or re-created)? */
  private staleEntry(id: number, nodeGen: number): boolean {
    const d = this.domains.get(id);
    return d === undefined || d.generation > nodeGen;
  }

  /** C's perm_for_conn, with XSA-322's stale-entry rule. */
  private permFor(conn: XsConnection | null, perms: XsPerms, nodeGen: number): number {
    if (conn === null || conn.privileged) return RWO;
    const owner = perms[0].id;
    const me = conn.domid!;
    const tgt = conn.target;
    if (owner === me || (tgt !== null && owner === tgt)) return RWO;
    for (let i = 1; i < perms.length; i++) {
      const e = perms[i];
      if (e.perms & XS_PERM_IGNORE) continue;
      if (e.id === me || (tgt !== null && e.id === tgt)) {
        if (this.staleEntry(e.id, nodeGen)) continue;
        return e.perms & RWO;
      }
    }
    return perms[0].perms & RWO;
  }

  /**
   * `perms` as C's read_node sees them for a node of generation `gen`: entries of domains
   * gone or re-created since then are marked ignored (XSA-322), so they stay ignored when
   * the node is written back with a newer generation.
   */
  private adjustedPerms(perms: XsPerms, gen: number): XsPerms {
    if (perms.length < 2 || gen === NO_GEN) return perms;
    let out: XsPerm[] | null = null;
    for (let i = 1; i < perms.length; i++) {
      if (!(perms[i].perms & XS_PERM_IGNORE) && this.staleEntry(perms[i].id, gen)) {
        out ??= perms.slice();
        out[i] = { perms: perms[i].perms | XS_PERM_IGNORE, id: perms[i].id };
      }
    }
    return out ?? perms;
  }

  // ---- node access (C's read_node / access_node / write_node) ---------------------

  /** @internal */
  readNode(conn: XsConnection | null, name: string): XsNode | null {
    const txn = conn?.txn;
    if (txn) {
      const a = txn.accessed.get(name);
      if (a !== undefined) {
        if (a.node === null) this.err = ENOENT;
        return a.node;
      }
      if (txn.nodes >= this.quotas.transactionNodes && !conn!.privileged) {
        txn.fail = true;
        this.err = ENOSPC;
        return null;
      }
      const g = this.db.get(name);
      txn.accessed.set(name, {
        node: g === undefined ? null : g.txnCopy(),
        gen: g === undefined ? NO_GEN : g.gen,
        checkGen: true,
        modified: false,
        fireWatch: false,
        watchExact: false,
        oldPerms: g === undefined ? null : g.perms,
      });
      txn.nodes++;
      if (g === undefined) {
        this.err = ENOENT;
        return null;
      }
      return txn.accessed.get(name)!.node;
    }
    const g = this.db.get(name);
    if (g === undefined) {
      this.err = ENOENT;
      return null;
    }
    return g;
  }

  /** Record a modification (new generation); in a transaction it stays private. Returns errno. */
  private putNode(conn: XsConnection | null, node: XsNode, keepPerms = false): number {
    // New nodes (NO_GEN) and freshly set perms need no adjusting.
    if (!keepPerms) node.perms = this.adjustedPerms(node.perms, node.gen);
    node.gen = ++this.generation;
    const txn = conn?.txn;
    if (txn) {
      let a = txn.accessed.get(node.name);
      if (a === undefined) {
        if (txn.nodes >= this.quotas.transactionNodes && !conn!.privileged) {
          txn.fail = true;
          return ENOSPC;
        }
        a = {
          node,
          gen: 0,
          checkGen: false,
          modified: true,
          fireWatch: false,
          watchExact: false,
          oldPerms: null,
        };
        txn.accessed.set(node.name, a);
        txn.nodes++;
      }
      a.modified = true;
      a.node = node;
      return 0;
    }
    this.db.set(node.name, node);
    return 0;
  }

  /** Record a deletion. */
  private delNode(conn: XsConnection | null, name: string): void {
    ++this.generation;
    const txn = conn?.txn;
    if (txn) {
      let a = txn.accessed.get(name);
      if (a === undefined) {
        a = {
          node: null,
          gen: 0,
          checkGen: false,
          modified: true,
          fireWatch: false,
          watchExact: false,
          oldPerms: null,
        };
        txn.accessed.set(name, a);
        txn.nodes++;
      }
      a.modified = true;
      a.node = null;
      return;
    }
    this.db.delete(name);
  }

  /** Unprivileged writers may not exceed node-size (C's write_node_raw check). */
  private sizeOk(conn: XsConnection | null, size: number): boolean {
    return conn === null || conn.privileged || size < this.quotas.nodeSize;
  }

  /** C's get_node: the node if it exists and `perm` is granted, else the errno to answer. */
  private getNode(conn: XsConnection, name: string | null, perm: number): Got {
    if (name === null || !isValidNodename(name, this.quotas.pathMax)) return EINVAL;
    let node = this.readNode(conn, name);
    let err = node === null ? this.err : 0;
    if (node !== null && (this.permFor(conn, node.perms, node.gen) & perm) !== perm) {
      node = null;
      err = EACCES;
    }
    if (node !== null) return node;
    if (err === ENOMEM || err === ENOSPC) return err;
    return this.errnoFromParents(conn, name, err, perm);
  }

  /** Hide a node's existence unless its closest existing ancestor grants `perm`. */
  private errnoFromParents(conn: XsConnection, name: string, errnum: number, perm: number): number {
    let p = name;
    let node: XsNode | null = null;
    do {
      p = parentOf(p);
      node = this.readNode(conn, p);
      if (node !== null) break;
      if (this.err === ENOMEM || this.err === ENOSPC) return this.err;
    } while (p !== "/");
    if (node === null) return EACCES;
    return this.permFor(conn, node.perms, node.gen) & perm ? errnum : EACCES;
  }

  /** C's create_node: make `name` and its missing parents. Returns the node or an errno. */
  private createNode(conn: XsConnection, name: string, value: Uint8Array): Got {
    const names: string[] = [];
    let p = name;
    let parent: XsNode | null = null;
    for (;;) {
      names.push(p);
      p = parentOf(p);
      parent = this.readNode(conn, p);
      if (parent !== null) break;
      if (this.err !== ENOENT || p === "/") return this.err;
    }
    const unpriv = !conn.privileged;
    const inherit = this.adjustedPerms(parent.perms, parent.gen);
    const perms: XsPerms =
      unpriv && inherit[0].id !== conn.domid
        ? [{ perms: inherit[0].perms, id: conn.domid! }, ...inherit.slice(1)]
        : inherit;
    const txn = conn.txn;
    // Quota checks first, bottom-up as C writes (the node, then each new parent).
    let entries = this.domainEntry(conn);
    for (let k = 0; k < names.length; k++) {
      const fail = (): number => {
        if (txn && k > 0) txn.fail = true;
        return ENOSPC;
      };
      if (unpriv && entries >= this.quotas.nodes) return fail();
      const childLen = k === 0 ? 0 : basename(names[k - 1]).length + 1;
      const size =
        RECORD_HDR + RECORD_PERM * perms.length + (k === 0 ? value.length : 0) + childLen;
      if (!this.sizeOk(conn, size)) {
        if (txn) txn.fail = true;
        return ENOSPC;
      }
      if (!txn) entries++;
    }
    if (!this.sizeOk(conn, parent.recordSize(basename(names[names.length - 1]).length + 1))) {
      if (txn) txn.fail = true;
      return ENOSPC;
    }
    // Apply top-down.
    const owner = perms[0].id;
    let up = parent;
    let made: XsNode | null = null;
    for (let k = names.length - 1; k >= 0; k--) {
      const n = names[k];
      const node = new XsNode(n, NO_GEN, perms, k === 0 ? value : EMPTY, new Set(), 0, false);
      up.addChild(basename(n));
      let r = this.putNode(conn, up);
      if (r === 0) r = this.putNode(conn, node);
      if (r !== 0) return r;
      this.entryInc(conn, owner, 1);
      up = node;
      made = node;
    }
    return made!;
  }

  /** C's rm_node: delete `name` and its subtree, firing watches. Returns errno. */
  private rmNode(conn: XsConnection | null, name: string): number {
    const parent = this.readNode(conn, parentOf(name));
    if (parent === null) return this.err === ENOMEM || this.err === ENOSPC ? this.err : EINVAL;
    // Post-order walk over the caller's view of the subtree.
    const root = this.readNode(conn, name);
    if (root === null) return this.err === ENOSPC ? ENOSPC : 0;
    const stack: [XsNode, string[], number][] = [[root, [...root.children], 0]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const [node, kids] = top;
      if (top[2] < kids.length) {
        const child = this.readNode(conn, childPath(node.name, kids[top[2]++]));
        if (child === null) {
          if (this.err === ENOSPC) return ENOSPC;
          continue;
        }
        stack.push([child, [...child.children], 0]);
        continue;
      }
      stack.pop();
      this.delNode(conn, node.name);
      this.fireWatches(conn, node.name, node, node.name !== name, null);
      this.entryInc(conn, node.perms[0].id, -1);
    }
    parent.removeChild(basename(name));
    return this.putNode(conn, parent);
  }

  // ---- watches ---------------------------------------------------------------------

  /** C's fire_watches: in a transaction, queue on the accessed node; else send events. */
  private fireWatches(
    conn: XsConnection | null,
    name: string,
    node: XsNode | null,
    exact: boolean,
    oldPerms: XsPerms | null,
  ): void {
    const txn = conn?.txn;
    if (txn) {
      const a = txn.accessed.get(name);
      if (a === undefined) {
        txn.fail = true;
        return;
      }
      if (!a.fireWatch) {
        a.fireWatch = true;
        a.watchExact = exact;
      } else if (!exact) {
        a.watchExact = false;
      }
      return;
    }
    if (this.watchIndex.size === 0) return;
    if (name.charCodeAt(0) === 64) {
      const set = this.watchIndex.get(name);
      if (set === undefined) return;
      const perms = this.specialPerms.get(name);
      if (perms === undefined) return;
      const hits = [...set].sort(watchOrder);
      for (const w of hits) {
        if (this.permFor(w.conn, perms, Number.POSITIVE_INFINITY) & XS_PERM_READ) {
          this.sendEvent(w.conn, name, w.token);
        }
      }
      return;
    }
    // C walks its connection list, and each connection's watches, in the order they were
    // made: gather the matching watches, then send in (connection, registration) order.
    const hits = this.watchHits;
    hits.length = 0;
    if (exact) {
      gather(hits, this.watchIndex.get(name));
    } else {
      gather(hits, this.watchIndex.get("/"));
      for (let i = name.indexOf("/", 1); i !== -1; i = name.indexOf("/", i + 1)) {
        gather(hits, this.watchIndex.get(name.slice(0, i)));
      }
      if (name !== "/") gather(hits, this.watchIndex.get(name));
    }
    if (hits.length === 0) return;
    if (hits.length > 1) hits.sort(watchOrder);
    let lastConn: XsConnection | null = null;
    let ok = false;
    for (let i = 0; i < hits.length; i++) {
      const w = hits[i];
      if (w.conn !== lastConn) {
        lastConn = w.conn;
        ok = this.watchPermitted(w.conn, name, node, oldPerms);
      }
      if (ok) this.sendEvent(w.conn, watchPath(w, name), w.token);
    }
    hits.length = 0;
  }

  /** XSA-115: an event only reaches a watcher who may read the node or its parent. */
  private watchPermitted(
    w: XsConnection,
    name: string,
    node: XsNode | null,
    oldPerms: XsPerms | null,
  ): boolean {
    if (w.privileged) return true;
    if (oldPerms !== null && this.permFor(w, oldPerms, Number.POSITIVE_INFINITY) & XS_PERM_READ) {
      return true;
    }
    const n = node ?? this.db.get(name);
    if (n === undefined) return false;
    if (this.permFor(w, n.perms, n.gen) & XS_PERM_READ) return true;
    const parent = this.db.get(parentOf(n.name));
    if (parent === undefined) return false;
    return (this.permFor(w, parent.perms, parent.gen) & XS_PERM_READ) !== 0;
  }

  // ---- operations (one per XS_* type) -----------------------------------------------

  /** @internal */ opDirectory(conn: XsConnection, m: XsMessage): number {
    const n = this.getNode(conn, canon(conn, onearg(m.payload)), XS_PERM_READ);
    if (typeof n === "number") return n;
    this.reply(conn, m, XS_DIRECTORY, joinz([...n.children]));
    return 0;
  }

  /** @internal */ opDirectoryPart(conn: XsConnection, m: XsMessage): number {
    if (countStrings(m.payload) !== 2) return EINVAL;
    const [path, offStr] = getStrings(m.payload, 2);
    const n = this.getNode(conn, canon(conn, path), XS_PERM_READ);
    if (typeof n === "number") return n;
    const off = atoi(offStr) >>> 0;
    const gen = `${n.gen}`;
    const genlen = gen.length + 1;
    if (off >= n.childLen) {
      const out = new Uint8Array(genlen + 1);
      out.set(latin1(gen));
      this.reply(conn, m, XS_DIRECTORY_PART, out);
      return 0;
    }
    const all = joinz([...n.children]);
    const maxlen = XENSTORE_PAYLOAD_MAX - genlen - 1;
    let len = 0;
    let pos = off;
    for (;;) {
      let end = pos;
      while (all[end] !== 0) end++;
      const slen = end - pos;
      if (len + slen >= maxlen) break;
      len += slen + 1;
      pos = end + 1;
      if (off + len === n.childLen) break;
    }
    const last = off + len === n.childLen;
    const out = new Uint8Array(genlen + len + (last ? 1 : 0));
    out.set(latin1(gen));
    out.set(all.subarray(off, off + len), genlen);
    this.reply(conn, m, XS_DIRECTORY_PART, out);
    return 0;
  }

  /** @internal */ opRead(conn: XsConnection, m: XsMessage): number {
    const n = this.getNode(conn, canon(conn, onearg(m.payload)), XS_PERM_READ);
    if (typeof n === "number") return n;
    this.reply(conn, m, XS_READ, n.value);
    return 0;
  }

  /** @internal */ opGetPerms(conn: XsConnection, m: XsMessage): number {
    const n = this.getNode(conn, canon(conn, onearg(m.payload)), XS_PERM_READ);
    if (typeof n === "number") return n;
    this.reply(conn, m, XS_GET_PERMS, joinz(n.perms.map(permToString)));
    return 0;
  }

  /** @internal */ opWrite(conn: XsConnection, m: XsMessage): number {
    const p = m.payload;
    const nul = p.indexOf(0);
    if (nul < 0) return EINVAL;
    const name = canonicalize(conn.home, decodeLatin1(p, 0, nul));
    const value = p.slice(nul + 1);
    let n = this.getNode(conn, name, XS_PERM_WRITE);
    if (typeof n === "number") {
      if (n !== ENOENT) return n;
      n = this.createNode(conn, name, value);
      if (typeof n === "number") return n;
    } else {
      if (!this.sizeOk(conn, n.recordSize(0, value))) {
        if (conn.txn) conn.txn.fail = true;
        return ENOSPC;
      }
      n.value = value;
      const r = this.putNode(conn, n);
      if (r !== 0) return r;
    }
    this.fireWatches(conn, name, n, false, null);
    return this.ack(conn, m);
  }

  /** @internal */ opMkdir(conn: XsConnection, m: XsMessage): number {
    const name = canon(conn, onearg(m.payload));
    const n = this.getNode(conn, name, XS_PERM_WRITE);
    if (typeof n === "number") {
      if (n !== ENOENT) return n;
      const made = this.createNode(conn, name!, EMPTY);
      if (typeof made === "number") return made;
      this.fireWatches(conn, name!, made, false, null);
    }
    return this.ack(conn, m);
  }

  /** @internal */ opRm(conn: XsConnection, m: XsMessage): number {
    const name = canon(conn, onearg(m.payload));
    const n = this.getNode(conn, name, XS_PERM_WRITE);
    if (typeof n === "number") {
      if (n !== ENOENT) return n;
      const parent = this.readNode(conn, parentOf(name!));
      if (parent !== null) return this.ack(conn, m);
      return this.err === ENOMEM || this.err === ENOSPC ? this.err : ENOENT;
    }
    if (name === "/") return EINVAL;
    const r = this.rmNode(conn, name!);
    if (r !== 0) return r;
    return this.ack(conn, m);
  }

  /** @internal */ opSetPerms(conn: XsConnection, m: XsMessage): number {
    const count = countStrings(m.payload);
    if (count < 2) return EINVAL;
    const num = count - 1;
    if (!conn.privileged && num > this.quotas.permissions) return ENOSPC;
    const strs = getStrings(m.payload, count);
    const perms: XsPerm[] = [];
    for (let i = 1; i < strs.length; i++) {
      const p = parsePerm(strs[i]);
      if (p === null) return EINVAL;
      perms.push(p);
    }
    // C's domain_alloc_permrefs: entries of domains that do not exist are ignored.
    for (let i = 0; i < perms.length; i++) {
      const id = perms[i].id;
      if (this.domains.has(id)) continue;
      if (this.domainExists(id)) this.domainRec(id, true);
      else perms[i] = { perms: perms[i].perms | XS_PERM_IGNORE, id };
    }
    if (perms[0].perms & XS_PERM_IGNORE) return ENOENT;
    const path = strs[0];
    if (path.charCodeAt(0) === 64) {
      const cur = this.specialPerms.get(path);
      if (cur === undefined) return EINVAL;
      if (
        (this.permFor(conn, cur, Number.POSITIVE_INFINITY) & (XS_PERM_WRITE | XS_PERM_OWNER)) !==
        (XS_PERM_WRITE | XS_PERM_OWNER)
      ) {
        return EACCES;
      }
      this.specialPerms.set(path, perms);
      return this.ack(conn, m);
    }
    const name = canonicalize(conn.home, path);
    const n = this.getNode(conn, name, XS_PERM_WRITE | XS_PERM_OWNER);
    if (typeof n === "number") return n;
    if (!conn.privileged && perms[0].id !== n.perms[0].id) return EPERM;
    if (!this.sizeOk(conn, n.recordSize(0, n.value, perms.length))) {
      if (conn.txn) conn.txn.fail = true;
      return ENOSPC;
    }
    const old = n.perms;
    this.entryInc(conn, old[0].id, -1);
    this.entryInc(conn, perms[0].id, 1);
    n.perms = perms;
    const r = this.putNode(conn, n, true);
    if (r !== 0) return r;
    this.fireWatches(conn, name, n, false, old);
    return this.ack(conn, m);
  }

  /** @internal */ opWatch(conn: XsConnection, m: XsMessage): number {
    if (countStrings(m.payload) !== 2) return EINVAL;
    let [path, token] = getStrings(m.payload, 2);
    let relative = false;
    if (path.charCodeAt(0) === 64) {
      if (path.length > XENSTORE_REL_PATH_MAX) return EINVAL;
    } else {
      relative = path.charCodeAt(0) !== 47;
      path = canonicalize(conn.home, path);
      if (!isValidNodename(path, this.quotas.pathMax)) return EINVAL;
    }
    const key = `${path}\0${token}`;
    if (conn.watches.has(key)) return EEXIST;
    if (!conn.privileged && conn.watches.size > this.quotas.watches) return E2BIG;
    const w: Watch = { conn, seq: this.nextWatchSeq++, node: path, token, relative };
    conn.watches.set(key, w);
    let set = this.watchIndex.get(path);
    if (set === undefined) {
      set = new Set();
      this.watchIndex.set(path, set);
    }
    set.add(w);
    this.ack(conn, m);
    this.sendEvent(conn, watchPath(w, path), token);
    return 0;
  }

  /** @internal */ opUnwatch(conn: XsConnection, m: XsMessage): number {
    if (countStrings(m.payload) !== 2) return EINVAL;
    const [path, token] = getStrings(m.payload, 2);
    const key = `${canonicalize(conn.home, path)}\0${token}`;
    const w = conn.watches.get(key);
    if (w === undefined) return ENOENT;
    conn.watches.delete(key);
    this.unindexWatch(w);
    return this.ack(conn, m);
  }

  /** @internal */ opTransactionStart(conn: XsConnection, m: XsMessage): number {
    if (conn.txn !== null) return EBUSY;
    if (!conn.privileged && conn.transactions.size > this.quotas.transactions) return ENOSPC;
    let id = conn.nextTxId;
    while (id === 0 || conn.transactions.has(id)) id = (id + 1) >>> 0;
    conn.nextTxId = (id + 1) >>> 0;
    ++this.generation;
    conn.transactions.set(id, new Transaction(id, conn));
    this.reply(conn, m, XS_TRANSACTION_START, latin1z(`${id}`));
    return 0;
  }

  /** @internal */ opTransactionEnd(conn: XsConnection, m: XsMessage): number {
    const arg = onearg(m.payload);
    if (arg !== "T" && arg !== "F") return EINVAL;
    const txn = conn.txn;
    if (txn === null) return ENOENT;
    conn.txn = null;
    conn.transactions.delete(txn.id);
    if (arg === "T") {
      if (txn.fail) return ENOMEM;
      for (const [domid, delta] of txn.entryDelta) {
        const cnt = (this.domains.get(domid)?.nbentry ?? 0) + delta;
        if (!this.isPrivDomid(domid) && cnt >= this.quotas.nodes) return ENOSPC;
      }
      for (const [name, a] of txn.accessed) {
        if (!a.checkGen) continue;
        const g = this.db.get(name);
        if ((g === undefined ? NO_GEN : g.gen) !== a.gen) return EAGAIN;
      }
      const fire: [string, Accessed][] = [];
      for (const [name, a] of txn.accessed) {
        if (!a.modified) continue;
        if (a.node !== null) {
          a.node.gen = ++this.generation;
          this.db.set(name, a.node);
        } else {
          this.db.delete(name);
        }
        if (a.fireWatch) fire.push([name, a]);
      }
      for (const [domid, delta] of txn.entryDelta) {
        if (delta !== 0) this.domainRec(domid, true)!.nbentry += delta;
      }
      for (const [name, a] of fire) this.fireWatches(null, name, null, a.watchExact, a.oldPerms);
    }
    return this.ack(conn, m);
  }

  /** @internal */ opIntroduce(conn: XsConnection, m: XsMessage): number {
    const v = getStrings(m.payload, 3);
    if (v.length < 3) return EINVAL;
    const domid = atoi(v[0]) >>> 0;
    const gfn = parseGfn(v[1]);
    const port = atoi(v[2]) >>> 0;
    if (port === 0) return EINVAL;
    let d = this.domains.get(domid);
    if (d === undefined || !d.introduced) {
      const channel =
        this.mapDomainInterface === undefined
          ? unmappedChannel()
          : this.mapDomainInterface({ domid, gfn, port });
      if (channel === null) return EINVAL;
      d = this.domainRec(domid, true)!;
      d.introduced = true;
      d.shutdown = false;
      d.port = port;
      d.channel = channel;
      const dc = new XsConnection(this, this.nextConnId++, {
        domid,
        onOutput: () => {},
        label: `domain ${domid}`,
      });
      // The ring transport installs its own output hook through attach().
      this.conns.add(dc);
      d.conn = dc;
      channel.reset();
      channel.attach(dc);
      channel.connected();
      this.log(`connection ${dc.id} (domain ${domid}) introduced`);
      if (domid !== 0) this.fireWatches(null, "@introduceDomain", null, true, null);
    } else {
      d.port = port;
      d.channel?.rebind(port);
      const dc = d.conn;
      if (dc !== null) {
        this.deleteAllWatches(dc);
        dc.transactions.clear();
        dc.clearOutput();
      }
      d.channel?.reset();
    }
    return this.ack(conn, m);
  }

  private connectedDomain(domid: number): DomainRec | number {
    const d = this.domains.get(domid);
    if (d === undefined || !d.introduced) return ENOENT;
    if (d.conn === null) return EINVAL;
    return d;
  }

  private oneargDomain(m: XsMessage): DomainRec | number {
    const s = onearg(m.payload);
    if (s === null) return EINVAL;
    const domid = atoi(s) >>> 0;
    if (domid === 0) return EINVAL;
    return this.connectedDomain(domid);
  }

  /** @internal */ opRelease(conn: XsConnection, m: XsMessage): number {
    const d = this.oneargDomain(m);
    if (typeof d === "number") return d;
    this.destroyDomain(d);
    return this.ack(conn, m);
  }

  /** @internal */ opResume(conn: XsConnection, m: XsMessage): number {
    const d = this.oneargDomain(m);
    if (typeof d === "number") return d;
    d.shutdown = false;
    return this.ack(conn, m);
  }

  /** @internal */ opSetTarget(conn: XsConnection, m: XsMessage): number {
    const v = getStrings(m.payload, 2);
    if (v.length < 2) return EINVAL;
    const d = this.connectedDomain(atoi(v[0]) >>> 0);
    if (typeof d === "number") return d;
    const t = this.connectedDomain(atoi(v[1]) >>> 0);
    if (typeof t === "number") return t;
    d.conn!.target = t.domid;
    return this.ack(conn, m);
  }

  /** @internal */ opGetDomainPath(conn: XsConnection, m: XsMessage): number {
    const s = onearg(m.payload);
    if (s === null) return EINVAL;
    this.reply(conn, m, XS_GET_DOMAIN_PATH, latin1z(domainPath(atoi(s))));
    return 0;
  }

  /** @internal */ opIsDomainIntroduced(conn: XsConnection, m: XsMessage): number {
    const s = onearg(m.payload);
    if (s === null) return EINVAL;
    const domid = atoi(s) >>> 0;
    const yes = domid === DOMID_SELF || this.domains.get(domid)?.introduced === true;
    this.reply(conn, m, XS_IS_DOMAIN_INTRODUCED, latin1z(yes ? "T" : "F"));
    return 0;
  }

  /** @internal */ opResetWatches(conn: XsConnection, m: XsMessage): number {
    this.deleteAllWatches(conn);
    conn.transactions.clear();
    conn.txn = null;
    return this.ack(conn, m);
  }

  /** @internal */ opControl(conn: XsConnection, m: XsMessage): number {
    const n = countStrings(m.payload);
    if (n === 0) return EINVAL;
    const [cmd, ...args] = getStrings(m.payload, n);
    const reply = (s: string): number => {
      this.reply(conn, m, XS_CONTROL, latin1z(s));
      return 0;
    };
    switch (cmd) {
      case "check": {
        if (args.length !== 0) return EINVAL;
        const bad = this.checkInvariants();
        for (const b of bad) this.log(`check: ${b}`);
        return this.ack(conn, m);
      }
      case "log":
        if (args.length !== 1 || (args[0] !== "on" && args[0] !== "off")) return EINVAL;
        return this.ack(conn, m);
      case "logfile":
      case "memreport":
        if (cmd === "logfile" && args.length !== 1) return EINVAL;
        return this.ack(conn, m);
      case "print":
        if (args.length !== 1) return EINVAL;
        this.log(`print: ${args[0]}`);
        return this.ack(conn, m);
      case "quota":
      case "quota-soft": {
        if (cmd === "quota-soft") {
          if (args.length === 0) {
            return reply(
              `Quota settings:\n${"memory".padEnd(17)}: ${String(this.quotas.memory).padStart(8)} Total Xenstore memory per domain (warning level)\n`,
            );
          }
          if (args[0] === "set" && args.length === 3 && args[1] === "memory") {
            const val = atoi(args[2]);
            if (val < 1) return EINVAL;
            return this.ack(conn, m);
          }
          return EINVAL;
        }
        if (args.length === 0) {
          let s = "Quota settings:\n";
          for (const [nm, key, descr] of QUOTA_NAMES) {
            s += `${nm.padEnd(17)}: ${String(this.quotas[key]).padStart(8)} ${descr}\n`;
          }
          return reply(s);
        }
        if (args[0] === "set") {
          if (args.length !== 3) return EINVAL;
          const val = atoi(args[2]);
          if (val < 1) return EINVAL;
          const q = QUOTA_NAMES.find(([nm]) => nm === args[1]);
          if (q === undefined) return EINVAL;
          this.quotas[q[1]] = val;
          return this.ack(conn, m);
        }
        if (args.length !== 1) return EINVAL;
        const d = this.domains.get(atoi(args[0]) >>> 0);
        if (d === undefined) return ENOENT;
        const c = d.conn;
        const row = (k: string, v: number) => `${k.padEnd(16)}: ${String(v).padStart(8)}\n`;
        return reply(
          `Domain ${d.domid}:\n${row("nodes", d.nbentry)}${row("watches", c?.watches.size ?? 0)}${row("transactions", c?.transactions.size ?? 0)}${row("outstanding", c?.outstanding ?? 0)}${row("memory", c?.outBytes ?? 0)}`,
        );
      }
      case "help":
        if (args.length !== 0) return EINVAL;
        return reply(
          "Valid commands:\ncheck\nhelp\nlog [on|off]\nlogfile <file>\nmemreport [<file>]\nprint <string>\nquota [set <name> <val>|<domid>]\nquota-soft [set <name> <val>]\n",
        );
      default:
        return EINVAL;
    }
  }
}

/**
 * "0,1-8" → a predicate over domids. Throws XS_BAD_OPTION (a user mistake) on anything else.
 */
export function parseDomainList(list: string): (domid: number) => boolean {
  const ranges: [number, number][] = [];
  for (const part of list.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    const lo = m === null ? Number.NaN : Number(m[1]);
    const hi = m === null ? Number.NaN : m[2] === undefined ? lo : Number(m[2]);
    if (!(lo <= hi && hi < DOMID_FIRST_RESERVED)) {
      throw new XenstoreError(
        "XS_BAD_OPTION",
        `domain list ${JSON.stringify(list)}: "${part}" is not a domid or a range lo-hi below ${DOMID_FIRST_RESERVED}; write e.g. 0,1-8`,
      );
    }
    ranges.push([lo, hi]);
  }
  return (domid) => ranges.some(([lo, hi]) => domid >= lo && domid <= hi);
}

function canon(conn: XsConnection, name: string | null): string | null {
  return name === null ? null : canonicalize(conn.home, name);
}

/** A standalone daemon's stand-in for a domain's ring: nothing is read or written. */
function unmappedChannel(): DomainChannel {
  const nothing = (): void => {};
  return {
    attach: nothing,
    reset: nothing,
    connected: nothing,
    rebind: nothing,
    markError: nothing,
    close: nothing,
  };
}

function gather(into: Watch[], set: Set<Watch> | undefined): void {
  if (set !== undefined) for (const w of set) into.push(w);
}

function watchOrder(a: Watch, b: Watch): number {
  return a.conn.id - b.conn.id || a.seq - b.seq;
}

function watchPath(w: Watch, name: string): string {
  if (!w.relative) return name;
  let p = name.slice(w.conn.home.length);
  if (p.charCodeAt(0) === 47) p = p.slice(1);
  return p;
}

function parseGfn(s: string): number {
  const t = s.trim();
  const v = /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t, 16) : Number.parseInt(t, 10);
  return Number.isSafeInteger(v) && v >= 0 ? v : 0;
}

function removeDomidFromPerms(perms: XsPerms, domid: number, priv: number): XsPerms {
  const out: XsPerm[] = [perms[0].id === domid ? { perms: perms[0].perms, id: priv } : perms[0]];
  for (let i = 1; i < perms.length; i++) if (perms[i].id !== domid) out.push(perms[i]);
  return out;
}

const OPS: (OpInfo | undefined)[] = [];
OPS[XS_CONTROL] = { name: "CONTROL", fn: (d, c, m) => d.opControl(c, m), priv: true };
OPS[XS_DIRECTORY] = { name: "DIRECTORY", fn: (d, c, m) => d.opDirectory(c, m) };
OPS[XS_READ] = { name: "READ", fn: (d, c, m) => d.opRead(c, m) };
OPS[XS_GET_PERMS] = { name: "GET_PERMS", fn: (d, c, m) => d.opGetPerms(c, m) };
OPS[XS_WATCH] = { name: "WATCH", fn: (d, c, m) => d.opWatch(c, m), notid: true };
OPS[XS_UNWATCH] = { name: "UNWATCH", fn: (d, c, m) => d.opUnwatch(c, m), notid: true };
OPS[XS_TRANSACTION_START] = {
  name: "TRANSACTION_START",
  fn: (d, c, m) => d.opTransactionStart(c, m),
};
OPS[XS_TRANSACTION_END] = { name: "TRANSACTION_END", fn: (d, c, m) => d.opTransactionEnd(c, m) };
OPS[XS_INTRODUCE] = { name: "INTRODUCE", fn: (d, c, m) => d.opIntroduce(c, m), priv: true };
OPS[XS_RELEASE] = { name: "RELEASE", fn: (d, c, m) => d.opRelease(c, m), priv: true };
OPS[XS_GET_DOMAIN_PATH] = { name: "GET_DOMAIN_PATH", fn: (d, c, m) => d.opGetDomainPath(c, m) };
OPS[XS_WRITE] = { name: "WRITE", fn: (d, c, m) => d.opWrite(c, m) };
OPS[XS_MKDIR] = { name: "MKDIR", fn: (d, c, m) => d.opMkdir(c, m) };
OPS[XS_RM] = { name: "RM", fn: (d, c, m) => d.opRm(c, m) };
OPS[XS_SET_PERMS] = { name: "SET_PERMS", fn: (d, c, m) => d.opSetPerms(c, m) };
OPS[XS_IS_DOMAIN_INTRODUCED] = {
  name: "IS_DOMAIN_INTRODUCED",
  fn: (d, c, m) => d.opIsDomainIntroduced(c, m),
  priv: true,
};
OPS[XS_RESUME] = { name: "RESUME", fn: (d, c, m) => d.opResume(c, m), priv: true };
OPS[XS_SET_TARGET] = { name: "SET_TARGET", fn: (d, c, m) => d.opSetTarget(c, m), priv: true };
OPS[XS_RESET_WATCHES] = { name: "RESET_WATCHES", fn: (d, c, m) => d.opResetWatches(c, m) };
OPS[XS_DIRECTORY_PART] = { name: "DIRECTORY_PART", fn: (d, c, m) => d.opDirectoryPart(c, m) };
