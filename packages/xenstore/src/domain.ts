/*
 * Domains (C's xenstored_domain.c): INTRODUCE, RELEASE, RESUME, SET_TARGET,
 * GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED, and what happens when a domain goes away.
 *
 * Invariants:
 * - An introduced domain has exactly one ring connection and one DomainChannel until it is
 *   released or destroyed; then its connection, watches, transactions and nodes are gone, and
 *   @releaseDomain fires once.
 * - A daemon on its own (no mapDomainInterface) accepts INTRODUCE for any domid, as C does,
 *   with a channel that never touches memory.
 */
import {
  DOMID_FIRST_RESERVED,
  DOMID_SELF,
  XS_GET_DOMAIN_PATH,
  XS_IS_DOMAIN_INTRODUCED,
} from "@hyperlab/abi";
import { domainRec } from "./accounting";
import { XsConnection } from "./connection";
import { XenstoreError } from "./errors";
import { rmNode } from "./nodes";
import { childPath, domainPath } from "./paths";
import { removeDomidFromPerms } from "./permissions";
import { ack, type DomainChannel, type DomainRec, reply, type XsStore } from "./store";
import { deleteAllWatches, fireWatches } from "./watch";
import { atoi, EINVAL, ENOENT, getStrings, latin1z, onearg, type XsMessage } from "./wire";

/** Node removal of a destroyed domain (XSA-419), then @releaseDomain. */
export function destroyDomain(ds: XsStore, d: DomainRec): void {
  const conn = d.conn;
  d.conn = null;
  if (conn !== null && !conn.closed) {
    conn.closed = true;
    deleteAllWatches(ds, conn);
    conn.transactions.clear();
    conn.clearOutput();
    ds.conns.delete(conn);
    ds.log(`connection ${conn.id} (${conn.label}) released`);
    conn.onDrop?.(conn, "released");
  }
  if (d.nbentry > 0) removeDomainNodes(ds, d);
  for (const [name, perms] of ds.specialPerms) {
    ds.specialPerms.set(name, removeDomidFromPerms(perms, d.domid, ds.privDomid ?? 0));
  }
  const wasIntroduced = d.introduced;
  d.channel?.close();
  d.channel = null;
  ds.domains.delete(d.domid);
  if (wasIntroduced && d.domid !== 0) fireWatches(ds, null, "@releaseDomain", null, true, null);
}

export function removeDomainNodes(ds: XsStore, d: DomainRec): void {
  // Pre-order walk; a removed node's children go with it.
  const stack = ["/"];
  while (stack.length > 0 && d.nbentry > 0) {
    const name = stack.pop()!;
    const node = ds.db.get(name);
    if (node === undefined) continue;
    if (name !== "/" && node.perms[0].id === d.domid) {
      rmNode(ds, null, name);
      continue;
    }
    const kids = [...node.children];
    for (let i = kids.length - 1; i >= 0; i--) stack.push(childPath(name, kids[i]));
  }
}

export function opIntroduce(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const v = getStrings(m.payload, 3);
  if (v.length < 3) return EINVAL;
  const domid = atoi(v[0]) >>> 0;
  const gfn = parseGfn(v[1]);
  const port = atoi(v[2]) >>> 0;
  if (port === 0) return EINVAL;
  let d = ds.domains.get(domid);
  if (d === undefined || !d.introduced) {
    const channel =
      ds.mapDomainInterface === undefined
        ? unmappedChannel()
        : ds.mapDomainInterface({ domid, gfn, port });
    if (channel === null) return EINVAL;
    d = domainRec(ds, domid, true)!;
    d.introduced = true;
    d.shutdown = false;
    d.port = port;
    d.channel = channel;
    const dc = new XsConnection(ds.host, ds.nextConnId++, {
      domid,
      onOutput: () => {},
      label: `domain ${domid}`,
    });
    // The ring transport installs its own output hook through attach().
    ds.conns.add(dc);
    d.conn = dc;
    channel.reset();
    channel.attach(dc);
    channel.connected();
    ds.log(`connection ${dc.id} (domain ${domid}) introduced`);
    if (domid !== 0) fireWatches(ds, null, "@introduceDomain", null, true, null);
  } else {
    d.port = port;
    d.channel?.rebind(port);
    const dc = d.conn;
    if (dc !== null) {
      deleteAllWatches(ds, dc);
      dc.transactions.clear();
      dc.clearOutput();
    }
    d.channel?.reset();
  }
  return ack(conn, m);
}

export function connectedDomain(ds: XsStore, domid: number): DomainRec | number {
  const d = ds.domains.get(domid);
  if (d === undefined || !d.introduced) return ENOENT;
  if (d.conn === null) return EINVAL;
  return d;
}

export function oneargDomain(ds: XsStore, m: XsMessage): DomainRec | number {
  const s = onearg(m.payload);
  if (s === null) return EINVAL;
  const domid = atoi(s) >>> 0;
  if (domid === 0) return EINVAL;
  return connectedDomain(ds, domid);
}

export function opRelease(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const d = oneargDomain(ds, m);
  if (typeof d === "number") return d;
  destroyDomain(ds, d);
  return ack(conn, m);
}

export function opResume(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const d = oneargDomain(ds, m);
  if (typeof d === "number") return d;
  d.shutdown = false;
  return ack(conn, m);
}

export function opSetTarget(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const v = getStrings(m.payload, 2);
  if (v.length < 2) return EINVAL;
  const d = connectedDomain(ds, atoi(v[0]) >>> 0);
  if (typeof d === "number") return d;
  const t = connectedDomain(ds, atoi(v[1]) >>> 0);
  if (typeof t === "number") return t;
  d.conn!.target = t.domid;
  return ack(conn, m);
}

export function opGetDomainPath(_ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const s = onearg(m.payload);
  if (s === null) return EINVAL;
  reply(conn, m, XS_GET_DOMAIN_PATH, latin1z(domainPath(atoi(s))));
  return 0;
}

export function opIsDomainIntroduced(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const s = onearg(m.payload);
  if (s === null) return EINVAL;
  const domid = atoi(s) >>> 0;
  const yes = domid === DOMID_SELF || ds.domains.get(domid)?.introduced === true;
  reply(conn, m, XS_IS_DOMAIN_INTRODUCED, latin1z(yes ? "T" : "F"));
  return 0;
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

function parseGfn(s: string): number {
  const t = s.trim();
  const v = /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t, 16) : Number.parseInt(t, 10);
  return Number.isSafeInteger(v) && v >= 0 ? v : 0;
}
