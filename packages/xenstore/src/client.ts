/*
 * A xenstore client over any byte transport: a unix socket (as libxenstore), a domain's
 * ring page (as a guest's xenbus), or an in-memory connection to an in-process daemon.
 *
 * Invariants: requests carry increasing req_ids and replies are matched by req_id; watch
 * events (req_id 0, type WATCH_EVENT) go to the watches registered with their token; once
 * the transport closes, every pending and later request rejects with XS_CLOSED.
 */
import { connect as netConnect, type Socket } from "node:net";
import {
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
import type { XenstoreRingFrontend } from "./ring";
import {
  decodeLatin1,
  EAGAIN,
  encodeMessage,
  errnoOfName,
  getStrings,
  joinz,
  latin1z,
  MessageReader,
  type XsMessage,
} from "./wire";
import type { Xenstored } from "./xenstored";

/** Bytes both ways; the client sets onData/onClose. */
export interface XsClientTransport {
  send(bytes: Uint8Array): void;
  close(): void;
  onData: ((bytes: Uint8Array) => void) | null;
  onClose: ((reason: string) => void) | null;
}

/** One watch event: the path that changed (relative if the watch was) and the token. */
export interface XsWatchEvent {
  path: string;
  token: string;
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

function toBytes(v: string | Uint8Array): Uint8Array {
  return typeof v === "string" ? utf8.encode(v) : v;
}

function checkPath(path: string): void {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0")) {
    throw new XenstoreError(
      "XS_BAD_ARGUMENT",
      `a xenstore path must be a non-empty string without NUL, got ${JSON.stringify(path)}`,
    );
  }
}

function checkDomid(domid: number): void {
  if (!Number.isInteger(domid) || domid < 0 || domid > 0xffff) {
    throw new XenstoreError(
      "XS_BAD_ARGUMENT",
      `domid must be a whole number 0..65535, got ${domid}`,
    );
  }
}

/** Reads, writes and the rest, inside a transaction or outside (tx 0). */
export class XsOps {
  /** @internal */
  constructor(
    protected readonly client: XsClient,
    /** Transaction id, 0 outside any transaction. */
    readonly txId: number,
  ) {}

  /** The value at `path` as UTF-8 text. */
  async read(path: string): Promise<string> {
    return utf8d.decode(await this.readBytes(path));
  }

  /** The value at `path` as bytes. */
  async readBytes(path: string): Promise<Uint8Array> {
    checkPath(path);
    return this.client.request(XS_READ, latin1z(path), this.txId);
  }

  /** Whether `path` exists (and may be read). */
  async exists(path: string): Promise<boolean> {
    try {
      await this.readBytes(path);
      return true;
    } catch (e) {
      if (e instanceof XenstoreError && e.xsError === "ENOENT") return false;
      throw e;
    }
  }

  /** Write `value` (text as UTF-8, or bytes) at `path`, creating missing parents. */
  async write(path: string, value: string | Uint8Array): Promise<void> {
    checkPath(path);
    const v = toBytes(value);
    const p = new Uint8Array(path.length + 1 + v.length);
    p.set(latin1z(path));
    p.set(v, path.length + 1);
    await this.client.request(XS_WRITE, p, this.txId);
  }

  async mkdir(path: string): Promise<void> {
    checkPath(path);
    await this.client.request(XS_MKDIR, latin1z(path), this.txId);
  }

  /** Remove `path` and everything below it. */
  async rm(path: string): Promise<void> {
    checkPath(path);
    await this.client.request(XS_RM, latin1z(path), this.txId);
  }

  /** Names of the children of `path`, in creation order. */
  async directory(path: string): Promise<string[]> {
    checkPath(path);
    const r = await this.client.request(XS_DIRECTORY, latin1z(path), this.txId);
    return getStrings(r, Number.MAX_SAFE_INTEGER);
  }

  /**
   * One DIRECTORY_PART chunk: the node's generation and the children from byte `offset` of
   * the NUL-separated list; `done` when this chunk ends the list.
   */
  async directoryPart(
    path: string,
    offset: number,
  ): Promise<{ generation: string; children: string[]; done: boolean }> {
    checkPath(path);
    const r = await this.client.request(
      XS_DIRECTORY_PART,
      joinz([path, String(offset)]),
      this.txId,
    );
    const strs = getStrings(r, Number.MAX_SAFE_INTEGER);
    const generation = strs.shift() ?? "";
    const done = r.length >= 2 && r[r.length - 1] === 0 && r[r.length - 2] === 0;
    const children = strs.filter((s) => s.length > 0);
    return { generation, children, done };
  }

  /** Permission strings of `path` ("n0", "r5", ...): owner first. */
  async getPerms(path: string): Promise<string[]> {
    checkPath(path);
    const r = await this.client.request(XS_GET_PERMS, latin1z(path), this.txId);
    return getStrings(r, Number.MAX_SAFE_INTEGER);
  }

  /** Set the permissions of `path` (or @introduceDomain / @releaseDomain). */
  async setPerms(path: string, perms: readonly string[]): Promise<void> {
    checkPath(path);
    if (perms.length === 0) {
      throw new XenstoreError(
        "XS_BAD_ARGUMENT",
        "setPerms needs at least the owner entry, e.g. ['n0']",
      );
    }
    await this.client.request(XS_SET_PERMS, joinz([path, ...perms]), this.txId);
  }
}

/** A transaction handle: the same operations, seen only by this transaction until commit. */
export class XsTransaction extends XsOps {
  private ended = false;

  /** Commit. Resolves true when committed, false on EAGAIN (a conflict: retry). */
  async commit(): Promise<boolean> {
    return this.end(true);
  }

  /** Abandon the transaction. */
  async abort(): Promise<void> {
    await this.end(false);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  private async end(commit: boolean): Promise<boolean> {
    if (this.ended) {
      throw new XenstoreError("XS_BAD_ARGUMENT", `transaction ${this.txId} has already ended`);
    }
    this.ended = true;
    try {
      await this.client.request(XS_TRANSACTION_END, latin1z(commit ? "T" : "F"), this.txId);
      return true;
    } catch (e) {
      if (commit && e instanceof XenstoreError && e.errno === EAGAIN) return false;
      throw e;
    }
  }
}

/** A registered watch: events as an async iterator or through `on`. */
export class XsWatch implements AsyncIterable<XsWatchEvent> {
  private readonly queue: XsWatchEvent[] = [];
  private readonly waiters: ((r: IteratorResult<XsWatchEvent>) => void)[] = [];
  private readonly listeners: ((e: XsWatchEvent) => void)[] = [];
  private done = false;

  /** @internal */
  constructor(
    private readonly client: XsClient,
    readonly path: string,
    readonly token: string,
  ) {}

  /** Call `fn` for every event (besides the iterator). */
  on(fn: (e: XsWatchEvent) => void): this {
    this.listeners.push(fn);
    return this;
  }

  /** Next event (resolves when one arrives). */
  async next(): Promise<XsWatchEvent> {
    const r = await this.nextResult();
    if (r.done) throw new XenstoreError("XS_CLOSED", `watch ${this.path} ended; register it again`);
    return r.value;
  }

  /** Events received and not yet taken by the iterator. */
  get pending(): number {
    return this.queue.length;
  }

  /** Stop watching (UNWATCH) and end the iterator. */
  async unwatch(): Promise<void> {
    this.end();
    await this.client.unwatch(this.path, this.token);
  }

  /** @internal */
  deliver(e: XsWatchEvent): void {
    if (this.done) return;
    for (const l of this.listeners) l(e);
    const w = this.waiters.shift();
    if (w !== undefined) w({ value: e, done: false });
    else this.queue.push(e);
  }

  /** @internal */
  end(): void {
    if (this.done) return;
    this.done = true;
    this.client.forgetWatch(this);
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }

  private nextResult(): Promise<IteratorResult<XsWatchEvent>> {
    const e = this.queue.shift();
    if (e !== undefined) return Promise.resolve({ value: e, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  [Symbol.asyncIterator](): AsyncIterator<XsWatchEvent> {
    return {
      next: () => this.nextResult(),
      return: async () => {
        this.end();
        return { value: undefined, done: true };
      },
    };
  }
}

interface Pending {
  type: number;
  what: string;
  resolve: (payload: Uint8Array) => void;
  reject: (e: Error) => void;
}

/** A xenstore client. Create one with XsClient.connect, .overRing or .inMemory. */
export class XsClient extends XsOps {
  private readonly reader = new MessageReader();
  private readonly pending = new Map<number, Pending>();
  private readonly watches = new Map<string, Set<XsWatch>>();
  private nextReqId = 1;
  private nextToken = 1;
  private closedReason: string | null = null;

  constructor(private readonly transport: XsClientTransport) {
    super(null as unknown as XsClient, 0);
    (this as unknown as { client: XsClient }).client = this;
    transport.onData = (b) => this.onData(b);
    transport.onClose = (r) => this.onClosed(r);
  }

  /**
   * Connect to xenstored's unix socket: `path`, else $XENSTORED_PATH, else
   * $XENSTORED_RUNDIR/socket, else /var/run/xenstored/socket (libxenstore's order).
   */
  static connect(path?: string): Promise<XsClient> {
    const p =
      path ??
      process.env.XENSTORED_PATH ??
      `${process.env.XENSTORED_RUNDIR ?? "/var/run/xenstored"}/socket`;
    return new Promise((resolve, reject) => {
      const sock: Socket = netConnect(p);
      const fail = (e: Error) =>
        reject(
          new XenstoreError(
            "XS_SOCKET",
            `cannot reach xenstored at ${p}: ${e.message}; start it (hyperlab xenstored --socket ${p}) or set XENSTORED_PATH`,
          ),
        );
      sock.once("error", fail);
      sock.once("connect", () => {
        sock.off("error", fail);
        sock.setNoDelay?.(true);
        const t: XsClientTransport = {
          onData: null,
          onClose: null,
          send: (b) => {
            sock.write(b);
          },
          close: () => sock.destroy(),
        };
        sock.on("data", (c: Buffer) =>
          t.onData?.(new Uint8Array(c.buffer, c.byteOffset, c.length)),
        );
        sock.on("error", () => {});
        sock.on("close", () => t.onClose?.("socket closed"));
        resolve(new XsClient(t));
      });
    });
  }

  /** A domain's client over its ring page (the frontend must be wired to its event channel). */
  static overRing(frontend: XenstoreRingFrontend): XsClient {
    const t: XsClientTransport = {
      onData: null,
      onClose: null,
      send: (b) => frontend.send(b),
      close: () => {
        frontend.onData = null;
        t.onClose?.("closed");
      },
    };
    frontend.onData = (b) => t.onData?.(b);
    return new XsClient(t);
  }

  /**
   * A client of an in-process daemon: as a local socket, or as domain `domid` (an
   * unprivileged connection unless domid is 0 or the daemon's privDomid).
   */
  static inMemory(daemon: Xenstored, opts: { domid?: number } = {}): XsClient {
    const t: XsClientTransport = {
      onData: null,
      onClose: null,
      send: (b) => {
        conn.feed(b);
      },
      close: () => {
        conn.close();
        t.onClose?.("closed");
      },
    };
    const conn = daemon.connect({
      domid: opts.domid,
      label: opts.domid === undefined ? "in-memory" : `in-memory domain ${opts.domid}`,
      onOutput: (c) => {
        const b = c.takeAllOutput();
        if (b !== undefined) queueMicrotask(() => t.onData?.(b));
      },
      onDrop: (_c, reason) => queueMicrotask(() => t.onClose?.(reason)),
    });
    return new XsClient(t);
  }

  /** Send one raw request; resolves with the reply payload, rejects with the ERROR name. */
  request(type: number, payload: Uint8Array, txId = 0): Promise<Uint8Array> {
    if (this.closedReason !== null) {
      return Promise.reject(
        new XenstoreError(
          "XS_CLOSED",
          `the xenstore connection is closed (${this.closedReason}); open a new client`,
        ),
      );
    }
    const reqId = this.nextReqId;
    this.nextReqId = this.nextReqId >= 0x7fffffff ? 1 : this.nextReqId + 1;
    return new Promise((resolve, reject) => {
      const what = `${OP_NAMES[type] ?? `op ${type}`} ${describe(payload)}`;
      this.pending.set(reqId, { type, what, resolve, reject });
      this.transport.send(encodeMessage(type, reqId, txId, payload));
    });
  }

  /** Register a watch on `path` (relative paths are below the connection's home). */
  async watch(path: string, token?: string): Promise<XsWatch> {
    checkPath(path);
    const tok = token ?? `hyperlab-${this.nextToken++}`;
    const w = new XsWatch(this, path, tok);
    let set = this.watches.get(tok);
    if (set === undefined) {
      set = new Set();
      this.watches.set(tok, set);
    }
    set.add(w);
    try {
      await this.request(XS_WATCH, joinz([path, tok]));
    } catch (e) {
      w.end();
      throw e;
    }
    return w;
  }

  /** UNWATCH by path and token. */
  async unwatch(path: string, token: string): Promise<void> {
    for (const w of this.watches.get(token) ?? []) if (w.path === path) w.end();
    await this.request(XS_UNWATCH, joinz([path, token]));
  }

  /** @internal */
  forgetWatch(w: XsWatch): void {
    const set = this.watches.get(w.token);
    set?.delete(w);
    if (set?.size === 0) this.watches.delete(w.token);
  }

  /** Start a transaction. */
  async transactionStart(): Promise<XsTransaction> {
    const r = await this.request(XS_TRANSACTION_START, new Uint8Array([0]));
    return new XsTransaction(
      this,
      Number.parseInt(decodeLatin1(r, 0, r.indexOf(0) < 0 ? r.length : r.indexOf(0)), 10),
    );
  }

  /**
   * Run `fn` in a transaction and commit; on EAGAIN (a conflict) run it again, up to
   * `retries` times. A throw from `fn` aborts the transaction and propagates.
   */
  async transaction<T>(fn: (tx: XsTransaction) => Promise<T>, retries = 100): Promise<T> {
    for (let attempt = 0; attempt <= retries; attempt++) {
      const tx = await this.transactionStart();
      let result: T;
      try {
        result = await fn(tx);
      } catch (e) {
        if (!tx.isEnded) await tx.abort().catch(() => {});
        throw e;
      }
      if (tx.isEnded) return result;
      if (await tx.commit()) return result;
    }
    throw new XenstoreError(
      "XS_ERROR_REPLY",
      `transaction still conflicted (EAGAIN) after ${retries} retries; reduce contention or raise retries`,
      "EAGAIN",
      EAGAIN,
    );
  }

  async getDomainPath(domid: number): Promise<string> {
    checkDomid(domid);
    return zstr(await this.request(XS_GET_DOMAIN_PATH, latin1z(String(domid))));
  }

  async isDomainIntroduced(domid: number): Promise<boolean> {
    checkDomid(domid);
    return zstr(await this.request(XS_IS_DOMAIN_INTRODUCED, latin1z(String(domid)))) === "T";
  }

  /** INTRODUCE a domain: its xenstore page frame and event channel port. */
  async introduce(domid: number, gfn: number, port: number): Promise<void> {
    checkDomid(domid);
    await this.request(XS_INTRODUCE, joinz([String(domid), String(gfn), String(port)]));
  }

  async release(domid: number): Promise<void> {
    checkDomid(domid);
    await this.request(XS_RELEASE, latin1z(String(domid)));
  }

  async resume(domid: number): Promise<void> {
    checkDomid(domid);
    await this.request(XS_RESUME, latin1z(String(domid)));
  }

  async setTarget(domid: number, target: number): Promise<void> {
    checkDomid(domid);
    checkDomid(target);
    await this.request(XS_SET_TARGET, joinz([String(domid), String(target)]));
  }

  /** RESET_WATCHES: drop all this connection's watches and transactions. */
  async resetWatches(): Promise<void> {
    await this.request(XS_RESET_WATCHES, new Uint8Array([0]));
    for (const set of [...this.watches.values()]) for (const w of set) w.end();
  }

  /** CONTROL (privileged): e.g. control("quota"). Returns the reply text. */
  async control(...args: string[]): Promise<string> {
    return zstr(await this.request(XS_CONTROL, joinz(args)));
  }

  /** Close the connection. */
  close(): void {
    this.transport.close();
    this.onClosed("closed by client");
  }

  private onClosed(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    for (const p of this.pending.values()) {
      p.reject(
        new XenstoreError(
          "XS_CLOSED",
          `xenstore connection closed (${reason}) before ${p.what} was answered`,
        ),
      );
    }
    this.pending.clear();
    for (const set of [...this.watches.values()]) for (const w of set) w.end();
  }

  private onData(bytes: Uint8Array): void {
    const ok = this.reader.push(bytes, (m) => this.onMessage(m));
    if (!ok) {
      this.transport.close();
      this.onClosed("xenstored sent an oversized message");
    }
  }

  private onMessage(m: XsMessage): void {
    if (m.type === XS_WATCH_EVENT) {
      const [path, token] = getStrings(m.payload, 2);
      if (path === undefined || token === undefined) return;
      for (const w of this.watches.get(token) ?? []) w.deliver({ path, token });
      return;
    }
    const p = this.pending.get(m.reqId);
    if (p === undefined) return;
    this.pending.delete(m.reqId);
    if (m.type === XS_ERROR) {
      const name = zstr(m.payload);
      p.reject(
        new XenstoreError(
          "XS_ERROR_REPLY",
          `xenstored answered ${name} to ${p.what}`,
          name,
          errnoOfName(name),
        ),
      );
      return;
    }
    p.resolve(m.payload);
  }
}

function zstr(b: Uint8Array): string {
  const i = b.indexOf(0);
  return decodeLatin1(b, 0, i < 0 ? b.length : i);
}

function describe(payload: Uint8Array): string {
  const i = payload.indexOf(0);
  const s = decodeLatin1(payload, 0, Math.min(i < 0 ? payload.length : i, 80));
  return JSON.stringify(s);
}

const OP_NAMES: Record<number, string> = {
  [XS_CONTROL]: "CONTROL",
  [XS_DIRECTORY]: "DIRECTORY",
  [XS_READ]: "READ",
  [XS_GET_PERMS]: "GET_PERMS",
  [XS_WATCH]: "WATCH",
  [XS_UNWATCH]: "UNWATCH",
  [XS_TRANSACTION_START]: "TRANSACTION_START",
  [XS_TRANSACTION_END]: "TRANSACTION_END",
  [XS_INTRODUCE]: "INTRODUCE",
  [XS_RELEASE]: "RELEASE",
  [XS_GET_DOMAIN_PATH]: "GET_DOMAIN_PATH",
  [XS_WRITE]: "WRITE",
  [XS_MKDIR]: "MKDIR",
  [XS_RM]: "RM",
  [XS_SET_PERMS]: "SET_PERMS",
  [XS_IS_DOMAIN_INTRODUCED]: "IS_DOMAIN_INTRODUCED",
  [XS_RESUME]: "RESUME",
  [XS_SET_TARGET]: "SET_TARGET",
  [XS_RESET_WATCHES]: "RESET_WATCHES",
  [XS_DIRECTORY_PART]: "DIRECTORY_PART",
};
