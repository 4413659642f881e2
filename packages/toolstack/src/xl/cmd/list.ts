/*
 * `hyperlab list [-l] [-v] [-Z] [-c] [DOMAIN]`: xl's main_list (tools/xl/xl_info.c) over an
 * XlHost; -n adds each domain's NUMA node affinity (a one-node host: "all").
 *
 * Invariant: xl's bytes and exit status for every outcome; never throws at the user.
 */
import type { CliIo } from "../../cli/io";
import { formatList, formatListLong, type ListOptions } from "../format/list";
import type { XlDomInfo, XlHost } from "../types";
import { connectHost, findDomain, help, xlGetopt } from "./common";

const OPTS = [
  { short: "l", long: "long", arg: false },
  { short: "v", long: "verbose", arg: false },
  { short: "Z", long: "context", arg: false },
  { short: "c", long: "cpupool", arg: false },
  { short: "n", long: "numa", arg: false },
] as const;

/** Names for `domains`: the ones they carry, the rest from the host, looked up at once. */
export async function domainNames(
  host: XlHost,
  domains: readonly XlDomInfo[],
): Promise<Map<number, string | undefined>> {
  const names = new Map<number, string | undefined>();
  const missing: number[] = [];
  for (const d of domains) {
    if (d.name !== undefined) names.set(d.domid, d.name);
    else missing.push(d.domid);
  }
  const looked = await Promise.all(missing.map((id) => host.domname(id)));
  for (let i = 0; i < missing.length; i++) names.set(missing[i], looked[i]);
  return names;
}

export async function listVerb(args: string[], io: CliIo): Promise<number> {
  const p = xlGetopt("list", OPTS, args, io, 0);
  if (!p.ok) return p.status;
  const host = await connectHost("list", io);
  if (typeof host === "number") return host;
  let domains: XlDomInfo[];
  if (p.operands.length === 0) {
    domains = await host.listDomains();
  } else if (p.operands.length === 1) {
    const q = p.operands[0];
    const domid = await findDomain(host, q, io);
    if (domid === undefined) return 1;
    const info = await host.domainInfo(domid);
    if (info === undefined) {
      io.err(`Error: Domain '${q}' does not exist.\n`);
      return 1;
    }
    domains = [info];
  } else {
    help("list", io);
    return 1;
  }
  if (p.opts.long === true) {
    const configs = await Promise.all(domains.map((d) => host.domainConfig(d.domid)));
    const found = [];
    for (let i = 0; i < domains.length; i++) {
      const config = configs[i];
      if (config !== undefined) found.push({ domid: domains[i].domid, config });
    }
    io.out(formatListLong(found));
    return 0;
  }
  const names = await domainNames(host, domains);
  const o: ListOptions = { verbose: p.opts.verbose === true, context: p.opts.context === true };
  if (p.opts.cpupool === true) {
    const pools = new Map((await host.cpupools()).map((x) => [x.poolid, x.poolName]));
    o.cpupool = (id) => pools.get(id);
  }
  if (p.opts.numa === true) {
    const phys = await host.physInfo();
    if (phys.nrNodes !== 1) {
      io.err(
        `hyperlab list: -n is modelled for a host of one NUMA node; this one has ${phys.nrNodes}.\n`,
      );
      return 1;
    }
    o.numaNodes = phys.nrNodes;
  }
  io.out(formatList(domains, (id) => names.get(id), o));
  return 0;
}
