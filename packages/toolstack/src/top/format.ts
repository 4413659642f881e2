/*
 * `hyperlab top`'s table: xentop's (tools/xentop/xentop.c, Xen 4.17) columns, widths and
 * order, and its summary lines. A sample is what libxenstat gathers once; CPU(%) compares
 * two samples taken `elapsedUs` apart.
 *
 * Invariant: pure; the same samples give the same text. xentop's default sort is by name,
 * case-insensitively (its sort_field 0 indexes the NAME column).
 */
import { fixed1, padStart } from "../xl/cfmt";
import { LIBXL_SHUTDOWN_REASON } from "../xl/types";

/** One domain as xentop sees it (bytes, nanoseconds). */
export interface TopDomain {
  domid: number;
  name: string;
  running: boolean;
  blocked: boolean;
  paused: boolean;
  shutdown: boolean;
  dying: boolean;
  shutdownReason: number;
  cpuNs: number;
  curMemBytes: number;
  /** undefined: no limit (xentop prints "no limit" and "n/a"). */
  maxMemBytes: number | undefined;
  vcpus: number;
  ssid: number;
  nets: { rxBytes: number; txBytes: number }[];
  vbds: {
    error?: boolean;
    ooReqs: number;
    rdReqs: number;
    wrReqs: number;
    rdSects: number;
    wrSects: number;
  }[];
}

/** One libxenstat node sample. */
export interface TopSample {
  xenVersion: string;
  totMemBytes: number;
  freeMemBytes: number;
  numCpus: number;
  cpuHz: number;
  domains: TopDomain[];
}

export interface TopOptions {
  /** -f: the whole name, widening the column. */
  fullName?: boolean;
  /** -r: the header above every domain. */
  repeatHeader?: boolean;
}

const intWidth = (n: number) => String(Math.floor(n)).length;

function totNet(d: TopDomain, rx: boolean): number {
  let t = 0;
  for (const n of d.nets) t += rx ? n.rxBytes : n.txBytes;
  return t;
}

type VbdField = "ooReqs" | "rdReqs" | "wrReqs" | "rdSects" | "wrSects";

/** tot_vbd_reqs: the sum over readable devices, or undefined when none is ("-"). */
function totVbd(d: TopDomain, f: VbdField): number | undefined {
  let show = d.vbds.length === 0;
  let t = 0;
  for (const v of d.vbds) {
    if (v.error) continue;
    show = true;
    t += v[f];
  }
  return show ? t : undefined;
}

/** State letters in xentop's order: d s b c p r. */
export function topState(d: TopDomain): string {
  const crashed = d.shutdown && d.shutdownReason === LIBXL_SHUTDOWN_REASON.CRASH;
  return (
    (d.dying ? "d" : "-") +
    (d.shutdown ? "s" : "-") +
    (d.blocked ? "b" : "-") +
    (crashed ? "c" : "-") +
    (d.paused ? "p" : "-") +
    (d.running ? "r" : "-")
  );
}

/** CPU(%) of `d` against the previous sample, `elapsedUs` earlier (0 without one). */
function cpuPct(d: TopDomain, prev: TopSample | undefined, elapsedUs: number): number {
  if (prev === undefined) return 0;
  const old = prev.domains.find((x) => x.domid === d.domid);
  if (old === undefined) return 0;
  return (d.cpuNs - old.cpuNs) / 10 / elapsedUs;
}

/** xentop's summary (interactive mode only; `clock` is "HH:MM:SS"). */
export function topSummary(s: TopSample, clock: string): string {
  let run = 0;
  let block = 0;
  let pause = 0;
  let shut = 0;
  // xentop tests shutdown before crashed, so its "crashed" count stays 0: kept as it is.
  const crash = 0;
  let dying = 0;
  for (const d of s.domains) {
    if (d.running) run++;
    else if (d.blocked) block++;
    else if (d.paused) pause++;
    else if (d.shutdown) shut++;
    else if (d.dying) dying++;
  }
  const used = s.totMemBytes - s.freeMemBytes;
  return (
    `xentop - ${clock}   Xen ${s.xenVersion}\n` +
    `${s.domains.length} domains: ${run} running, ${block} blocked, ${pause} paused, ${crash} crashed, ${dying} dying, ${shut} shutdown \n` +
    `Mem: ${Math.floor(s.totMemBytes / 1024)}k total, ${Math.floor(used / 1024)}k used, ${Math.floor(s.freeMemBytes / 1024)}k free    ` +
    `CPUs: ${s.numCpus} @ ${Math.floor(s.cpuHz / 1e6)}MHz\n`
  );
}

/** The header and domain rows of one refresh (what `xentop -b` prints per iteration). */
export function topTable(
  s: TopSample,
  prev: TopSample | undefined,
  elapsedUs: number,
  o: TopOptions = {},
): string {
  const doms = [...s.domains].sort((a, b) => {
    const x = a.name.toLowerCase();
    const y = b.name.toLowerCase();
    return x < y ? -1 : x > y ? 1 : 0;
  });
  const w = { name: 10, tx: 8, rx: 8, rd: 8, wr: 8, rs: 10, ws: 10 };
  for (const d of doms) {
    if (o.fullName) w.name = Math.max(w.name, d.name.length);
    w.tx = Math.max(w.tx, intWidth(Math.floor(totNet(d, false) / 1024) + 1));
    w.rx = Math.max(w.rx, intWidth(Math.floor(totNet(d, true) / 1024) + 1));
    w.rd = Math.max(w.rd, intWidth((totVbd(d, "rdReqs") ?? 0) + 1));
    w.wr = Math.max(w.wr, intWidth((totVbd(d, "wrReqs") ?? 0) + 1));
    w.rs = Math.max(w.rs, intWidth((totVbd(d, "rdSects") ?? 0) + 1));
    w.ws = Math.max(w.ws, intWidth((totVbd(d, "wrSects") ?? 0) + 1));
  }
  const header = [
    padStart("NAME", w.name),
    padStart("STATE", 6),
    padStart("CPU(sec)", 10),
    padStart("CPU(%)", 6),
    padStart("MEM(k)", 10),
    padStart("MEM(%)", 6),
    padStart("MAXMEM(k)", 10),
    padStart("MAXMEM(%)", 9),
    padStart("VCPUS", 5),
    padStart("NETS", 4),
    padStart("NETTX(k)", w.tx),
    padStart("NETRX(k)", w.rx),
    padStart("VBDS", 4),
    padStart("VBD_OO", 8),
    padStart("VBD_RD", w.rd),
    padStart("VBD_WR", w.wr),
    padStart("VBD_RSECT", w.rs),
    padStart("VBD_WSECT", w.ws),
    padStart("SSID", 4),
  ].join(" ");
  const vbd = (d: TopDomain, f: VbdField, width: number) => {
    const v = totVbd(d, f);
    return padStart(v === undefined ? "-" : String(v), width);
  };
  let out = "";
  doms.forEach((d, i) => {
    if (i === 0 || o.repeatHeader) out += `${header}\n`;
    const name = o.fullName ? padStart(d.name, w.name) : padStart(d.name.slice(0, 10), 10);
    const row = [
      name,
      padStart(topState(d), 6),
      padStart(String(Math.floor(d.cpuNs / 1e9)), 10),
      padStart(fixed1(cpuPct(d, prev, elapsedUs)), 6),
      padStart(String(Math.floor(d.curMemBytes / 1024)), 10),
      padStart(fixed1((d.curMemBytes / s.totMemBytes) * 100), 6),
      d.maxMemBytes === undefined
        ? padStart("no limit", 10)
        : padStart(String(Math.floor(d.maxMemBytes / 1024)), 10),
      d.maxMemBytes === undefined
        ? padStart("n/a", 9)
        : padStart(fixed1((d.maxMemBytes / s.totMemBytes) * 100), 9),
      padStart(String(d.vcpus), 5),
      padStart(String(d.nets.length), 4),
      padStart(String(Math.floor(totNet(d, false) / 1024)), w.tx),
      padStart(String(Math.floor(totNet(d, true) / 1024)), w.rx),
      padStart(String(d.vbds.length), 4),
      vbd(d, "ooReqs", 8),
      vbd(d, "rdReqs", w.rd),
      vbd(d, "wrReqs", w.wr),
      vbd(d, "rdSects", w.rs),
      vbd(d, "wrSects", w.ws),
      padStart(String(d.ssid), 4),
    ].join(" ");
    out += `${row}\n`;
  });
  return out;
}
