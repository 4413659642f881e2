/*
 * One client of the daemon (C's struct connection): its output queue, its watches and its
 * transactions, and the shapes of those records.
 *
 * Invariants: `outBytes` is the byte count of the unsent queue and `outstanding` the number of
 * queued replies (not events) in it; `pendingEvents` counts each queued, unsent watch event by
 * "path\0token". A closed connection sends and accepts nothing.
 */
import { XENSTORE_PAYLOAD_MAX } from "@hyperlab/abi";
import type { XsNode } from "./node";
import { domainPath } from "./paths";
import type { XsPerms } from "./perms";
import type { XenstoredQuotas } from "./quotas";
import { MessageReader, type XsMessage } from "./wire";

/** What a connection needs from its daemon (Xenstored implements it). */
export interface ConnectionHost {
  readonly quotas: XenstoredQuotas;
  readonly privDomid: number | undefined;
  /** One whole request from `conn`. */
  process(conn: XsConnection, m: XsMessage): void;
  /** A protocol violation: C's ignore_connection. */
  drop(conn: XsConnection, reason: string, err: number): void;
  /** The client went away. */
  closeConnection(conn: XsConnection, reason: string): void;
  /** `conn` has new output. */
  markDirty(conn: XsConnection): void;
  /** Tell transports about queued output. */
  flush(): void;
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

export interface Accessed {
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

export class Transaction {
  readonly accessed = new Map<string, Accessed>();
  readonly entryDelta = new Map<number, number>();
  fail = false;
  nodes = 0;
  constructor(
    readonly id: number,
    readonly conn: XsConnection,
  ) {}
}

export interface Watch {
  readonly conn: XsConnection;
  /** Registration order across the daemon (C keeps each connection's watches in a list). */
  readonly seq: number;
  /** Absolute path or @-name. */
  readonly node: string;
  readonly token: string;
  readonly relative: boolean;
}

export interface OutMsg {
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
  /** One closure for every feed (no allocation per chunk). */
  private readonly onMessage = (m: XsMessage): void => {
    if (!this.closed) this.daemon.process(this, m);
  };

  /** @internal */
  constructor(
    private readonly daemon: ConnectionHost,
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
    const ok = this.reader.push(bytes, this.onMessage);
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

  /**
   * All queued output at once (for stream transports), emptying the queue. With `alloc`
   * the bytes are always copied into `alloc(total)` (a socket passes Buffer.allocUnsafe, so
   * the write needs no conversion); without it a single queued message is handed over as is.
   */
  takeAllOutput(alloc?: (size: number) => Uint8Array): Uint8Array | undefined {
    const n = this.out.length - this.outHead;
    if (n === 0) return undefined;
    let bytes: Uint8Array;
    if (n === 1 && this.outOffset === 0 && alloc === undefined) {
      bytes = this.out[this.outHead].bytes;
    } else {
      let total = 0;
      for (let i = this.outHead; i < this.out.length; i++) total += this.out[i].bytes.length;
      total -= this.outOffset;
      bytes = alloc === undefined ? new Uint8Array(total) : alloc(total);
      let o = 0;
      for (let i = this.outHead; i < this.out.length; i++) {
        const b = this.out[i].bytes;
        const from = i === this.outHead ? this.outOffset : 0;
        const len = b.length - from;
        // Replies and events are mostly short: a loop beats set() and its subarray.
        if (len < 64) for (let k = 0; k < len; k++) bytes[o + k] = b[from + k];
        else bytes.set(from === 0 ? b : b.subarray(from), o);
        o += len;
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
    if (this.pendingEvents.size !== 0) this.pendingEvents.clear();
    // Usually one or two messages: popping them is cheaper than the length setter.
    const out = this.out;
    if (out.length > 8) out.length = 0;
    else while (out.length !== 0) out.pop();
    this.outHead = 0;
    this.outOffset = 0;
    this.outBytes = 0;
    this.outstanding = 0;
  }
}
