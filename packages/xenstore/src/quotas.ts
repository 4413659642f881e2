/*
 * Xenstored's quotas (C's xenstored_domain.c quota table and its command-line defaults).
 *
 * Invariant: XENSTORED_DEFAULT_QUOTAS is frozen; QUOTA_NAMES lists every quota once, under
 * the name `xenstore-control quota` prints, in C's order.
 */
import { XENSTORE_REL_PATH_MAX } from "@hyperlab/abi";

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

export const QUOTA_NAMES: readonly [string, keyof XenstoredQuotas, string][] = [
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
