/*
 * The tree (C's xenstored_core.c: read_node, write_node, get_node, create_node, rm_node and
 * the node requests READ, WRITE, MKDIR, RM, DIRECTORY, DIRECTORY_PART, GET_PERMS, SET_PERMS).
 *
 * Invariants:
 * - Every node in the tree has its parent in it and is listed in the parent's `children`;
 *   "/" always exists and is never removed.
 * - Inside a transaction a node is read from, and written to, the transaction's accessed
 *   list only (C's accessed list), never the tree; per-op cost does not depend on the tree's
 *   size.
 * - Guest bytes never throw: every request gets C xenstored's reply or errno.
 * - Existence is hidden: a node the caller may not read answers EACCES unless its closest
 *   existing ancestor grants the access.
 */
import {
  XENSTORE_PAYLOAD_MAX,
  XS_DIRECTORY,
  XS_DIRECTORY_PART,
  XS_GET_PERMS,
  XS_READ,
} from "@hyperlab/abi";
import { domainEntry, domainRec, entryInc, sizeOk } from "./accounting";
import type { XsConnection } from "./connection";
import { EMPTY, NO_CHILDREN, NO_GEN, RECORD_HDR, RECORD_PERM, XsNode } from "./node";
import { basename, canonicalize, childPath, isValidNodename, parentOf } from "./paths";
import { adjustedPerms, permFor } from "./permissions";
import {
  parsePerm,
  permToString,
  XS_PERM_IGNORE,
  XS_PERM_OWNER,
  XS_PERM_READ,
  XS_PERM_WRITE,
  type XsPerm,
  type XsPerms,
} from "./perms";
import { ack, reply, type XsStore } from "./store";
import { fireWatches } from "./watch";
import {
  atoi,
  countStrings,
  decodeLatin1,
  EACCES,
  EINVAL,
  ENOENT,
  ENOMEM,
  ENOSPC,
  EPERM,
  getStrings,
  joinz,
  latin1,
  onearg,
  type XsMessage,
} from "./wire";

/** A node lookup's outcome: the node, or the errno C would answer. */
export type Got = XsNode | number;

/** @internal */
export function readNode(ds: XsStore, conn: XsConnection | null, name: string): XsNode | null {
  const txn = conn?.txn;
  if (txn) {
    const a = txn.accessed.get(name);
    if (a !== undefined) {
      if (a.node === null) ds.err = ENOENT;
      return a.node;
    }
    if (txn.nodes >= ds.quotas.transactionNodes && !conn!.privileged) {
      txn.fail = true;
      ds.err = ENOSPC;
      return null;
    }
    const g = ds.db.get(name);
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
      ds.err = ENOENT;
      return null;
    }
    return txn.accessed.get(name)!.node;
  }
  const g = ds.db.get(name);
  if (g === undefined) {
    ds.err = ENOENT;
    return null;
  }
  return g;
}

/** Record a modification (new generation); in a transaction it stays private. Returns errno. */
export function putNode(
  ds: XsStore,
  conn: XsConnection | null,
  node: XsNode,
  keepPerms = false,
): number {
  // New nodes (NO_GEN) and freshly set perms need no adjusting.
  if (!keepPerms) node.perms = adjustedPerms(ds, node.perms, node.gen);
  node.gen = ++ds.generation;
  const txn = conn?.txn;
  if (txn) {
    let a = txn.accessed.get(node.name);
    if (a === undefined) {
      if (txn.nodes >= ds.quotas.transactionNodes && !conn!.privileged) {
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
  ds.db.set(node.name, node);
  return 0;
}

/** Record a deletion. */
export function delNode(ds: XsStore, conn: XsConnection | null, name: string): void {
  ++ds.generation;
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
  ds.db.delete(name);
}

/** C's get_node: the node if it exists and `perm` is granted, else the errno to answer. */
export function getNode(ds: XsStore, conn: XsConnection, name: string | null, perm: number): Got {
  if (name === null || !isValidNodename(name, ds.quotas.pathMax)) return EINVAL;
  let node = readNode(ds, conn, name);
  let err = node === null ? ds.err : 0;
  if (node !== null && (permFor(ds, conn, node.perms, node.gen) & perm) !== perm) {
    node = null;
    err = EACCES;
  }
  if (node !== null) return node;
  if (err === ENOMEM || err === ENOSPC) return err;
  return errnoFromParents(ds, conn, name, err, perm);
}

/** Hide a node's existence unless its closest existing ancestor grants `perm`. */
export function errnoFromParents(
  ds: XsStore,
  conn: XsConnection,
  name: string,
  errnum: number,
  perm: number,
): number {
  let p = name;
  let node: XsNode | null = null;
  do {
    p = parentOf(p);
    node = readNode(ds, conn, p);
    if (node !== null) break;
    if (ds.err === ENOMEM || ds.err === ENOSPC) return ds.err;
  } while (p !== "/");
  if (node === null) return EACCES;
  return permFor(ds, conn, node.perms, node.gen) & perm ? errnum : EACCES;
}

/** C's create_node: make `name` and its missing parents. Returns the node or an errno. */
export function createNode(ds: XsStore, conn: XsConnection, name: string, value: Uint8Array): Got {
  const names: string[] = [];
  let p = name;
  let parent: XsNode | null = null;
  for (;;) {
    names.push(p);
    p = parentOf(p);
    parent = readNode(ds, conn, p);
    if (parent !== null) break;
    if (ds.err !== ENOENT || p === "/") return ds.err;
  }
  const unpriv = !conn.privileged;
  const inherit = adjustedPerms(ds, parent.perms, parent.gen);
  const perms: XsPerms =
    unpriv && inherit[0].id !== conn.domid
      ? [{ perms: inherit[0].perms, id: conn.domid! }, ...inherit.slice(1)]
      : inherit;
  const txn = conn.txn;
  // Quota checks first, bottom-up as C writes (the node, then each new parent).
  let entries = domainEntry(ds, conn);
  for (let k = 0; k < names.length; k++) {
    const fail = (): number => {
      if (txn && k > 0) txn.fail = true;
      return ENOSPC;
    };
    if (unpriv && entries >= ds.quotas.nodes) return fail();
    const childLen = k === 0 ? 0 : basename(names[k - 1]).length + 1;
    const size = RECORD_HDR + RECORD_PERM * perms.length + (k === 0 ? value.length : 0) + childLen;
    if (!sizeOk(ds, conn, size)) {
      if (txn) txn.fail = true;
      return ENOSPC;
    }
    if (!txn) entries++;
  }
  if (!sizeOk(ds, conn, parent.recordSize(basename(names[names.length - 1]).length + 1))) {
    if (txn) txn.fail = true;
    return ENOSPC;
  }
  // Apply top-down.
  const owner = perms[0].id;
  let up = parent;
  let made: XsNode | null = null;
  for (let k = names.length - 1; k >= 0; k--) {
    const n = names[k];
    const node = new XsNode(n, NO_GEN, perms, k === 0 ? value : EMPTY, NO_CHILDREN, 0, true);
    up.addChild(basename(n));
    let r = putNode(ds, conn, up);
    if (r === 0) r = putNode(ds, conn, node);
    if (r !== 0) return r;
    entryInc(ds, conn, owner, 1);
    up = node;
    made = node;
  }
  return made!;
}

/** C's rm_node: delete `name` and its subtree, firing watches. Returns errno. */
export function rmNode(ds: XsStore, conn: XsConnection | null, name: string): number {
  const parent = readNode(ds, conn, parentOf(name));
  if (parent === null) return ds.err === ENOMEM || ds.err === ENOSPC ? ds.err : EINVAL;
  // Post-order walk over the caller's view of the subtree.
  const root = readNode(ds, conn, name);
  if (root === null) return ds.err === ENOSPC ? ENOSPC : 0;
  const stack: [XsNode, string[], number][] = [[root, [...root.children], 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [node, kids] = top;
    if (top[2] < kids.length) {
      const child = readNode(ds, conn, childPath(node.name, kids[top[2]++]));
      if (child === null) {
        if (ds.err === ENOSPC) return ENOSPC;
        continue;
      }
      stack.push([child, [...child.children], 0]);
      continue;
    }
    stack.pop();
    delNode(ds, conn, node.name);
    fireWatches(ds, conn, node.name, node, node.name !== name, null);
    entryInc(ds, conn, node.perms[0].id, -1);
  }
  parent.removeChild(basename(name));
  return putNode(ds, conn, parent);
}

export function opDirectory(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const n = getNode(ds, conn, canon(conn, onearg(m.payload)), XS_PERM_READ);
  if (typeof n === "number") return n;
  reply(conn, m, XS_DIRECTORY, joinz([...n.children]));
  return 0;
}

export function opDirectoryPart(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  if (countStrings(m.payload) !== 2) return EINVAL;
  const [path, offStr] = getStrings(m.payload, 2);
  const n = getNode(ds, conn, canon(conn, path), XS_PERM_READ);
  if (typeof n === "number") return n;
  const off = atoi(offStr) >>> 0;
  const gen = `${n.gen}`;
  const genlen = gen.length + 1;
  if (off >= n.childLen) {
    const out = new Uint8Array(genlen + 1);
    out.set(latin1(gen));
    reply(conn, m, XS_DIRECTORY_PART, out);
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
  reply(conn, m, XS_DIRECTORY_PART, out);
  return 0;
}

export function opRead(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const n = getNode(ds, conn, canon(conn, onearg(m.payload)), XS_PERM_READ);
  if (typeof n === "number") return n;
  reply(conn, m, XS_READ, n.value);
  return 0;
}

export function opGetPerms(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const n = getNode(ds, conn, canon(conn, onearg(m.payload)), XS_PERM_READ);
  if (typeof n === "number") return n;
  reply(conn, m, XS_GET_PERMS, joinz(n.perms.map(permToString)));
  return 0;
}

export function opWrite(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const p = m.payload;
  const nul = p.indexOf(0);
  if (nul < 0) return EINVAL;
  const name = canonicalize(conn.home, decodeLatin1(p, 0, nul));
  const value = p.slice(nul + 1);
  let n = getNode(ds, conn, name, XS_PERM_WRITE);
  if (typeof n === "number") {
    if (n !== ENOENT) return n;
    n = createNode(ds, conn, name, value);
    if (typeof n === "number") return n;
  } else {
    if (!sizeOk(ds, conn, n.recordSize(0, value))) {
      if (conn.txn) conn.txn.fail = true;
      return ENOSPC;
    }
    n.value = value;
    const r = putNode(ds, conn, n);
    if (r !== 0) return r;
  }
  fireWatches(ds, conn, name, n, false, null);
  return ack(conn, m);
}

export function opMkdir(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const name = canon(conn, onearg(m.payload));
  const n = getNode(ds, conn, name, XS_PERM_WRITE);
  if (typeof n === "number") {
    if (n !== ENOENT) return n;
    const made = createNode(ds, conn, name!, EMPTY);
    if (typeof made === "number") return made;
    fireWatches(ds, conn, name!, made, false, null);
  }
  return ack(conn, m);
}

export function opRm(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const name = canon(conn, onearg(m.payload));
  const n = getNode(ds, conn, name, XS_PERM_WRITE);
  if (typeof n === "number") {
    if (n !== ENOENT) return n;
    const parent = readNode(ds, conn, parentOf(name!));
    if (parent !== null) return ack(conn, m);
    return ds.err === ENOMEM || ds.err === ENOSPC ? ds.err : ENOENT;
  }
  if (name === "/") return EINVAL;
  const r = rmNode(ds, conn, name!);
  if (r !== 0) return r;
  return ack(conn, m);
}

export function opSetPerms(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const count = countStrings(m.payload);
  if (count < 2) return EINVAL;
  const num = count - 1;
  if (!conn.privileged && num > ds.quotas.permissions) return ENOSPC;
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
    if (ds.domains.has(id)) continue;
    if (ds.domainExists(id)) domainRec(ds, id, true);
    else perms[i] = { perms: perms[i].perms | XS_PERM_IGNORE, id };
  }
  if (perms[0].perms & XS_PERM_IGNORE) return ENOENT;
  const path = strs[0];
  if (path.charCodeAt(0) === 64) {
    const cur = ds.specialPerms.get(path);
    if (cur === undefined) return EINVAL;
    if (
      (permFor(ds, conn, cur, Number.POSITIVE_INFINITY) & (XS_PERM_WRITE | XS_PERM_OWNER)) !==
      (XS_PERM_WRITE | XS_PERM_OWNER)
    ) {
      return EACCES;
    }
    ds.specialPerms.set(path, perms);
    return ack(conn, m);
  }
  const name = canonicalize(conn.home, path);
  const n = getNode(ds, conn, name, XS_PERM_WRITE | XS_PERM_OWNER);
  if (typeof n === "number") return n;
  if (!conn.privileged && perms[0].id !== n.perms[0].id) return EPERM;
  if (!sizeOk(ds, conn, n.recordSize(0, n.value, perms.length))) {
    if (conn.txn) conn.txn.fail = true;
    return ENOSPC;
  }
  const old = n.perms;
  entryInc(ds, conn, old[0].id, -1);
  entryInc(ds, conn, perms[0].id, 1);
  n.perms = perms;
  const r = putNode(ds, conn, n, true);
  if (r !== 0) return r;
  fireWatches(ds, conn, name, n, false, old);
  return ack(conn, m);
}

function canon(conn: XsConnection, name: string | null): string | null {
  return name === null ? null : canonicalize(conn.home, name);
}
