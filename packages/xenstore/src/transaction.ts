/*
 * Transactions (C's xenstored_transaction.c): TRANSACTION_START and TRANSACTION_END.
 *
 * Invariants:
 * - A transaction never copies the tree: it records each node it touches (C's accessed list)
 *   with the generation it saw; commit fails with EAGAIN if a node it read first has a
 *   different generation now, and then nothing of it reaches the tree.
 * - Only a commit that succeeds changes the tree, the domains' node counts, and fires the
 *   watches its changes queued; an aborted or failed one leaves no trace and sends no event.
 */
import { XS_TRANSACTION_START } from "@hyperlab/abi";
import { domainRec, isPrivDomid } from "./accounting";
import { type Accessed, Transaction, type XsConnection } from "./connection";
import { NO_GEN } from "./node";
import { ack, reply, type XsStore } from "./store";
import { fireWatches } from "./watch";
import {
  EAGAIN,
  EBUSY,
  EINVAL,
  ENOENT,
  ENOMEM,
  ENOSPC,
  latin1z,
  onearg,
  type XsMessage,
} from "./wire";

export function opTransactionStart(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  if (conn.txn !== null) return EBUSY;
  if (!conn.privileged && conn.transactions.size > ds.quotas.transactions) return ENOSPC;
  let id = conn.nextTxId;
  while (id === 0 || conn.transactions.has(id)) id = (id + 1) >>> 0;
  conn.nextTxId = (id + 1) >>> 0;
  ++ds.generation;
  conn.transactions.set(id, new Transaction(id, conn));
  reply(conn, m, XS_TRANSACTION_START, latin1z(`${id}`));
  return 0;
}

export function opTransactionEnd(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const arg = onearg(m.payload);
  if (arg !== "T" && arg !== "F") return EINVAL;
  const txn = conn.txn;
  if (txn === null) return ENOENT;
  conn.txn = null;
  conn.transactions.delete(txn.id);
  if (arg === "T") {
    if (txn.fail) return ENOMEM;
    for (const [domid, delta] of txn.entryDelta) {
      const cnt = (ds.domains.get(domid)?.nbentry ?? 0) + delta;
      if (!isPrivDomid(ds, domid) && cnt >= ds.quotas.nodes) return ENOSPC;
    }
    for (const [name, a] of txn.accessed) {
      if (!a.checkGen) continue;
      const g = ds.db.get(name);
      if ((g === undefined ? NO_GEN : g.gen) !== a.gen) return EAGAIN;
    }
    const fire: [string, Accessed][] = [];
    for (const [name, a] of txn.accessed) {
      if (!a.modified) continue;
      if (a.node !== null) {
        a.node.gen = ++ds.generation;
        ds.db.set(name, a.node);
      } else {
        ds.db.delete(name);
      }
      if (a.fireWatch) fire.push([name, a]);
    }
    for (const [domid, delta] of txn.entryDelta) {
      if (delta !== 0) domainRec(ds, domid, true)!.nbentry += delta;
    }
    for (const [name, a] of fire) fireWatches(ds, null, name, null, a.watchExact, a.oldPerms);
  }
  return ack(conn, m);
}
