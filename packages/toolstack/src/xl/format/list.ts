/*
 * `xl list` as tools/xl/xl_info.c (list_domains, list_domains_details) prints it: the
 * header with its two tabs, one row per domain with C's field widths, the state letters
 * r b p s <reason> d, and CPU seconds through single precision and "%8.1f".
 *
 * Invariant: pure; the same domains give the same bytes, with no allocation beyond the
 * returned string's parts.
 */

import type { JsonValue } from "../../xlcfg/json";
import { printJson } from "../../xlcfg/json";
import { cpuSeconds, fixed1, hex32, int32, padEnd, padStart } from "../cfmt";
import type { XlDomInfo } from "../types";
import { cpuRanges } from "./vcpu";

/** What `xl list` adds to each row. */
export interface ListOptions {
  /** -v: UUID, reason code and security label. */
  verbose?: boolean;
  /** -Z: the security label (without -v). */
  context?: boolean;
  /** -c: the cpupool name, looked up per domain. */
  cpupool?: (poolid: number) => string | undefined;
  /**
   * -n: the host's node count. On a one-node host every domain's node affinity (Xen derives
   * it from its vCPUs' affinities) is node 0, which print_bitmap writes as "all".
   */
  numaNodes?: number;
}

/** xl's letters for libxl_shutdown_reason 0..5; index 0 is also "not shut down". */
const REASON_LETTERS = "-rscwS";

/** The header line, newline included. */
export function listHeader(o: ListOptions = {}): string {
  let h = "Name                                        ID   Mem VCPUs\tState\tTime(s)";
  if (o.verbose) h += "   UUID                            Reason-Code\tSecurity Label";
  if (o.context && !o.verbose) h += "   Security Label";
  if (o.cpupool) h += "         Cpupool";
  if (o.numaNodes !== undefined) h += " NODE Affinity";
  return `${h}\n`;
}

/** The six state letters of one domain. */
export function stateLetters(d: XlDomInfo): string {
  const reason = d.shutdown ? int32(d.shutdownReason) : 0;
  return (
    (d.running ? "r" : "-") +
    (d.blocked ? "b" : "-") +
    (d.paused ? "p" : "-") +
    (d.shutdown ? "s" : "-") +
    (reason >= 0 && reason < REASON_LETTERS.length ? REASON_LETTERS[reason] : "?") +
    (d.dying ? "d" : "-")
  );
}

/** One row, newline included. `name` is libxl_domid_to_name's answer (C's "(null)" if none). */
export function listRow(d: XlDomInfo, name: string | undefined, o: ListOptions = {}): string {
  const mib = Math.floor((d.currentMemkb + d.outstandingMemkb) / 1024);
  let r = `${padEnd(name ?? "(null)", 40)} ${padStart(String(int32(d.domid)), 5)} ${padStart(String(mib), 5)} ${padStart(String(int32(d.vcpuOnline)), 5)}     ${stateLetters(d)}  ${padStart(fixed1(cpuSeconds(d.cpuTime)), 8)}`;
  if (o.verbose) {
    r += ` ${d.uuid}`;
    r += d.shutdown ? ` ${padStart(hex32(d.shutdownReason), 8)}` : `        -`;
  }
  if (o.verbose || o.context) r += ` ${padStart(d.ssidLabel ?? "-", 16)}`;
  if (o.cpupool) r += padStart(o.cpupool(d.cpupool) ?? "(null)", 16);
  if (o.numaNodes !== undefined) {
    const nodes = Array.from({ length: o.numaNodes }, (_, i) => i);
    r += ` ${cpuRanges(nodes, o.numaNodes)}`;
  }
  return `${r}\n`;
}

/** The whole `xl list` output for `domains` (names by domid). */
export function formatList(
  domains: readonly XlDomInfo[],
  nameOf: (domid: number) => string | undefined,
  o: ListOptions = {},
): string {
  const parts = [listHeader(o)];
  for (const d of domains) parts.push(listRow(d, nameOf(d.domid), o));
  return parts.join("");
}

/**
 * `xl list -l`: a JSON array of {"domid": N, "config": libxl_domain_config} for each domain
 * whose configuration could be retrieved (others are skipped, as xl does), then a newline.
 */
export function formatListLong(configs: readonly { domid: number; config: JsonValue }[]): string {
  const arr: JsonValue[] = configs.map((c) => ({
    obj: [
      ["domid", c.domid],
      ["config", c.config],
    ],
  }));
  return `${printJson(arr)}\n`;
}
