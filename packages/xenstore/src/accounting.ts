/*
 * Per-domain accounting (C's xenstored_domain.c: domain_entry_inc, domain_entry and the
 * node-size check of write_node_raw): the domain records and their node counts.
 *
 * Invariant: outside a transaction a domain's `nbentry` is the number of nodes it owns
 * (perms[0].id); inside one, changes collect in the transaction's `entryDelta` and reach
 * `nbentry` only when it commits.
 */
import type { XsConnection } from "./connection";
import type { DomainRec, XsStore } from "./store";

export function domainRec(ds: XsStore, domid: number, create: boolean): DomainRec | undefined {
  let d = ds.domains.get(domid);
  if (d === undefined && create) {
    d = {
      domid,
      generation: ds.generation,
      introduced: false,
      conn: null,
      channel: null,
      port: 0,
      shutdown: false,
      nbentry: 0,
    };
    ds.domains.set(domid, d);
  }
  return d;
}

export function isPrivDomid(ds: XsStore, domid: number): boolean {
  return domid === 0 || domid === ds.privDomid;
}

export function entryInc(ds: XsStore, conn: XsConnection | null, owner: number, n: number): void {
  const txn = conn?.txn;
  if (txn) {
    txn.entryDelta.set(owner, (txn.entryDelta.get(owner) ?? 0) + n);
    return;
  }
  const d = domainRec(ds, owner, true)!;
  d.nbentry += n;
}

/** C's domain_entry: the connection's own node count (0 when privileged). */
export function domainEntry(ds: XsStore, conn: XsConnection | null): number {
  if (conn === null || conn.privileged) return 0;
  return ds.domains.get(conn.domid!)?.nbentry ?? 0;
}

/** Unprivileged writers may not exceed node-size (C's write_node_raw check). */
export function sizeOk(ds: XsStore, conn: XsConnection | null, size: number): boolean {
  return conn === null || conn.privileged || size < ds.quotas.nodeSize;
}
