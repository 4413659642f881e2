/*
 * CONTROL (C's xenstored_control.c: check, log, logfile, memreport, print, quota,
 * quota-soft, help) and the store check behind `check`.
 *
 * Invariant: `checkInvariants` only reads; it reports every broken invariant of the tree,
 * the domain counts, the watch index and the connection list, and an empty list means sound.
 */
import { XS_CONTROL } from "@hyperlab/abi";
import type { XsConnection } from "./connection";
import { basename, childPath, isValidNodename, parentOf } from "./paths";
import { QUOTA_NAMES } from "./quotas";
import { ack, reply, type XsStore } from "./store";
import { atoi, countStrings, EINVAL, ENOENT, getStrings, latin1z, type XsMessage } from "./wire";

/**
 * Checks the tree's invariants (parent links, child lists, childLen, perms non-empty,
 * per-domain node counts). Returns a list of problems; empty when sound.
 */
export function checkInvariants(ds: XsStore): string[] {
  const problems: string[] = [];
  const counts = new Map<number, number>();
  for (const [name, node] of ds.db) {
    if (node.name !== name) problems.push(`${name}: node named ${node.name}`);
    if (node.perms.length === 0) problems.push(`${name}: no perms`);
    let len = 0;
    for (const c of node.children) {
      len += c.length + 1;
      if (!ds.db.has(childPath(name, c))) problems.push(`${name}: child ${c} missing`);
    }
    if (len !== node.childLen) problems.push(`${name}: childLen ${node.childLen} != ${len}`);
    if (name !== "/") {
      const p = ds.db.get(parentOf(name));
      if (p === undefined) problems.push(`${name}: parent missing`);
      else if (!p.children.has(basename(name))) problems.push(`${name}: not in parent's list`);
      if (!isValidNodename(name, 1 << 30)) problems.push(`${name}: invalid name`);
    }
    const owner = node.perms[0]?.id ?? 0;
    counts.set(owner, (counts.get(owner) ?? 0) + 1);
  }
  for (const [domid, d] of ds.domains) {
    const n = counts.get(domid) ?? 0;
    if (d.nbentry !== n) problems.push(`domain ${domid}: nbentry ${d.nbentry} != ${n} nodes`);
  }
  for (const [path, set] of ds.watchIndex) {
    for (const w of set) {
      if (w.conn.closed) problems.push(`watch ${path} of closed connection ${w.conn.id}`);
    }
  }
  for (const c of ds.conns) {
    if (c.closed) problems.push(`closed connection ${c.id} still listed`);
    if (c.txn !== null) problems.push(`connection ${c.id} left inside a transaction`);
  }
  return problems;
}

export function opControl(ds: XsStore, conn: XsConnection, m: XsMessage): number {
  const n = countStrings(m.payload);
  if (n === 0) return EINVAL;
  const [cmd, ...args] = getStrings(m.payload, n);
  const answer = (s: string): number => {
    reply(conn, m, XS_CONTROL, latin1z(s));
    return 0;
  };
  switch (cmd) {
    case "check": {
      if (args.length !== 0) return EINVAL;
      const bad = checkInvariants(ds);
      for (const b of bad) ds.log(`check: ${b}`);
      return ack(conn, m);
    }
    case "log":
      if (args.length !== 1 || (args[0] !== "on" && args[0] !== "off")) return EINVAL;
      return ack(conn, m);
    case "logfile":
    case "memreport":
      if (cmd === "logfile" && args.length !== 1) return EINVAL;
      return ack(conn, m);
    case "print":
      if (args.length !== 1) return EINVAL;
      ds.log(`print: ${args[0]}`);
      return ack(conn, m);
    case "quota":
    case "quota-soft": {
      if (cmd === "quota-soft") {
        if (args.length === 0) {
          return answer(
            `Quota settings:\n${"memory".padEnd(17)}: ${String(ds.quotas.memory).padStart(8)} Total Xenstore memory per domain (warning level)\n`,
          );
        }
        if (args[0] === "set" && args.length === 3 && args[1] === "memory") {
          const val = atoi(args[2]);
          if (val < 1) return EINVAL;
          return ack(conn, m);
        }
        return EINVAL;
      }
      if (args.length === 0) {
        let s = "Quota settings:\n";
        for (const [nm, key, descr] of QUOTA_NAMES) {
          s += `${nm.padEnd(17)}: ${String(ds.quotas[key]).padStart(8)} ${descr}\n`;
        }
        return answer(s);
      }
      if (args[0] === "set") {
        if (args.length !== 3) return EINVAL;
        const val = atoi(args[2]);
        if (val < 1) return EINVAL;
        const q = QUOTA_NAMES.find(([nm]) => nm === args[1]);
        if (q === undefined) return EINVAL;
        ds.quotas[q[1]] = val;
        return ack(conn, m);
      }
      if (args.length !== 1) return EINVAL;
      const d = ds.domains.get(atoi(args[0]) >>> 0);
      if (d === undefined) return ENOENT;
      const c = d.conn;
      const row = (k: string, v: number) => `${k.padEnd(16)}: ${String(v).padStart(8)}\n`;
      return answer(
        `Domain ${d.domid}:\n${row("nodes", d.nbentry)}${row("watches", c?.watches.size ?? 0)}${row("transactions", c?.transactions.size ?? 0)}${row("outstanding", c?.outstanding ?? 0)}${row("memory", c?.outBytes ?? 0)}`,
      );
    }
    case "help":
      if (args.length !== 0) return EINVAL;
      return answer(
        "Valid commands:\ncheck\nhelp\nlog [on|off]\nlogfile <file>\nmemreport [<file>]\nprint <string>\nquota [set <name> <val>|<domid>]\nquota-soft [set <name> <val>]\n",
      );
    default:
      return EINVAL;
  }
}
