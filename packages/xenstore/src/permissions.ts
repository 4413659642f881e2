/*
 * Who may do what to a node (C's perm_for_conn, with XSA-322's rule for entries of domains
 * that are gone or were re-created since the node was written).
 *
 * Invariant: privileged connections (sockets, dom0, --priv-domid) get read, write and
 * owner rights everywhere; an entry younger than its node's generation never grants anything.
 */
import type { XsConnection } from "./connection";
import { NO_GEN } from "./node";
import {
  XS_PERM_IGNORE,
  XS_PERM_OWNER,
  XS_PERM_READ,
  XS_PERM_WRITE,
  type XsPerm,
  type XsPerms,
} from "./perms";
import type { XsStore } from "./store";

export const RWO = XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER;

/** Is the perm entry of domain `id` younger than the node (domain gone or re-created)? */
export function staleEntry(ds: XsStore, id: number, nodeGen: number): boolean {
  const d = ds.domains.get(id);
  return d === undefined || d.generation > nodeGen;
}

/** C's perm_for_conn, with XSA-322's stale-entry rule. */
export function permFor(
  ds: XsStore,
  conn: XsConnection | null,
  perms: XsPerms,
  nodeGen: number,
): number {
  if (conn === null || conn.privileged) return RWO;
  const owner = perms[0].id;
  const me = conn.domid!;
  const tgt = conn.target;
  if (owner === me || (tgt !== null && owner === tgt)) return RWO;
  for (let i = 1; i < perms.length; i++) {
    const e = perms[i];
    if (e.perms & XS_PERM_IGNORE) continue;
    if (e.id === me || (tgt !== null && e.id === tgt)) {
      if (staleEntry(ds, e.id, nodeGen)) continue;
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
export function adjustedPerms(ds: XsStore, perms: XsPerms, gen: number): XsPerms {
  if (perms.length < 2 || gen === NO_GEN) return perms;
  let out: XsPerm[] | null = null;
  for (let i = 1; i < perms.length; i++) {
    if (!(perms[i].perms & XS_PERM_IGNORE) && staleEntry(ds, perms[i].id, gen)) {
      out ??= perms.slice();
      out[i] = { perms: perms[i].perms | XS_PERM_IGNORE, id: perms[i].id };
    }
  }
  return out ?? perms;
}

export function removeDomidFromPerms(perms: XsPerms, domid: number, priv: number): XsPerms {
  const out: XsPerm[] = [perms[0].id === domid ? { perms: perms[0].perms, id: priv } : perms[0]];
  for (let i = 1; i < perms.length; i++) if (perms[i].id !== domid) out.push(perms[i]);
  return out;
}
