/*
 * Watches (C's xenstored_watch.c): registration, the index by path, firing on a change, and
 * the event messages.
 *
 * Invariants:
 * - A watch is in `watchIndex` (under its path) exactly while it is in its connection's
 *   `watches`; a closed connection has none.
 * - One change sends each matching watch at most one event, in C's order: connections in the
 *   order they were made, each connection's watches in the order they were registered.
 * - Inside a transaction nothing is sent: the change is remembered on the accessed node and
 *   fires at commit (transaction.ts), or never if the transaction does not commit.
 * - An event reaches an unprivileged watcher only if it may read the node or its parent
 *   (XSA-115), and never past the domain's memory quota.
 */
import { XENSTORE_PAYLOAD_MAX, XENSTORE_REL_PATH_MAX, XS_WATCH_EVENT } from "@hyperlab/abi";
import type { Watch, XsConnection } from "./connection";
import type { XsNode } from "./node";
import { canonicalize, isValidNodename, parentOf } from "./paths";
import { permFor } from "./permissions";
import { XS_PERM_READ, type XsPerms } from "./perms";
import { ack, type XsStore } from "./store";
import {
  countStrings,
  E2BIG,
  EEXIST,
  EINVAL,
  ENOENT,
  encodeMessage,
  getStrings,
  joinz,
  type XsMessage,
} from "./wire";

export function sendEvent(ds: XsStore, conn: XsConnection, path: string, token: string): void {
  const len = path.length + token.length + 2;
  if (len > XENSTORE_PAYLOAD_MAX) return;
  // C's send_event drops an event identical to one still waiting (not for @-events).
  const key = path.charCodeAt(0) === 64 ? null : `${path}\0${token}`;
  if (key !== null && conn.pendingEvents.has(key)) return;
  const bytes = encodeMessage(XS_WATCH_EVENT, 0, 0, joinz([path, token]));
  if (!conn.privileged && conn.outBytes + bytes.length > ds.quotas.memory) return;
  conn.enqueue(bytes, true, key);
}

export function deleteAllWatches(ds: XsStore, conn: XsConnection): void {
  for (const w of conn.watches.values()) unindexWatch(ds, w);
  conn.watches.clear();
}

export function unindexWatch(ds: XsStore, w: Watch): void {
  const s = ds.watchIndex.get(w.node);
  if (s === undefined) return;
  s.delete(w);
  if (s.size === 0) ds.watchIndex.delete(w.node);
}

/** C's fire_watches: in a transaction, queue on the accessed node; else send events. */
export function fireWatches(
  ds: XsStore,
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
  if (ds.watchIndex.size === 0) return;
  if (name.charCodeAt(0) === 64) {
    const set = ds.watchIndex.get(name);
    if (set === undefined) return;
    const perms = ds.specialPerms.get(name);
    if (perms === undefined) return;
    const hits = [...set].sort(watchOrder);
    for (const w of hits) {
      if (permFor(ds, w.conn, perms, Number.POSITIVE_INFINITY) & XS_PERM_READ) {
        sendEvent(ds, w.conn, name, w.token);
      }
    }
    return;
  }
  // C walks its connection list, and each connection's watches, in the order they were
  // made: gather the matching watches, then send in (connection, registration) order.
  const hits = ds.watchHits;
  hits.length = 0;
  if (exact) {
    gather(hits, ds.watchIndex.get(name));
  } else {
    gather(hits, ds.watchIndex.get("/"));
    for (let i = name.indexOf("/", 1); i !== -1; i = name.indexOf("/", i + 1)) {
      gather(hits, ds.watchIndex.get(name.slice(0, i)));
    }
    if (name !== "/") gather(hits, ds.watchIndex.get(name));
  }
  if (hits.length === 0) return;
  if (hits.length > 1) hits.sort(watchOrder);
  let lastConn: XsConnection | null = null;
  let ok = false;
  for (let i = 0; i < hits.length; i++) {
    const w = hits[i];
    if (w.conn !== lastConn) {
      lastConn = w.conn;
      ok = watchPermitted(ds, w.conn, name, node, oldPerms);
    }
    if (ok) sendEvent(ds, w.conn, watchPath(w, name), w.token);
  }
  hits.length = 0;
}

/** XSA-115: an event only reaches a watcher who may read the node or its parent. */
export function watchPermitted(
  ds: XsStore,
  w: XsConnection,
  name: string,
  node: XsNode | null,
  oldPerms: XsPerms | null,
): boolean {
  // As C's watch_permitted: no shortcut for privileged watchers. A node that is gone after a
  // commit and had no permissions when the transaction first saw it (it was made and removed
  // inside the transaction) fires for nobody.
  if (oldPerms !== null && permFor(ds, w, oldPerms, Number.POSITIVE_INFINITY) & XS_PERM_READ) {
    return true;
  }
  const n = node ?? ds.db.get(name);
  if (n === undefined) return false;
  if (permFor(ds, w, n.perms, n.gen) & XS_PERM_READ) return true;
  const parent = ds.db.get(parentOf(n.name));
  if (parent === undefined) return false;
  return (permFor(ds, w, parent.perms, parent.gen) & XS_PERM_READ) !== 0;
}

export function opWatch(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  if (countStrings(m.payload) !== 2) return EINVAL;
  let [path, token] = getStrings(m.payload, 2);
  let relative = false;
  if (path.charCodeAt(0) === 64) {
    if (path.length > XENSTORE_REL_PATH_MAX) return EINVAL;
  } else {
    relative = path.charCodeAt(0) !== 47;
    path = canonicalize(conn.home, path);
    if (!isValidNodename(path, ds.quotas.pathMax)) return EINVAL;
  }
  const key = `${path}\0${token}`;
  if (conn.watches.has(key)) return EEXIST;
  if (!conn.privileged && conn.watches.size > ds.quotas.watches) return E2BIG;
  const w: Watch = { conn, seq: ds.nextWatchSeq++, node: path, token, relative };
  conn.watches.set(key, w);
  let set = ds.watchIndex.get(path);
  if (set === undefined) {
    set = new Set();
    ds.watchIndex.set(path, set);
  }
  set.add(w);
  ack(conn, m);
  sendEvent(ds, conn, watchPath(w, path), token);
  return 0;
}

export function opUnwatch(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  if (countStrings(m.payload) !== 2) return EINVAL;
  const [path, token] = getStrings(m.payload, 2);
  const key = `${canonicalize(conn.home, path)}\0${token}`;
  const w = conn.watches.get(key);
  if (w === undefined) return ENOENT;
  conn.watches.delete(key);
  unindexWatch(ds, w);
  return ack(conn, m);
}

export function opResetWatches(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  deleteAllWatches(ds, conn);
  conn.transactions.clear();
  conn.txn = null;
  return ack(conn, m);
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
