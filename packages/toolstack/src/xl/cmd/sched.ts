/*
 * `hyperlab sched-credit` and `hyperlab sched-credit2`: xl's main_sched_credit and
 * main_sched_credit2 (tools/xl/xl_sched.c) over an XlHost: list every pool running the
 * scheduler with its domains, show or set one domain's weight and cap (-d, -w, -c), show or
 * set the pool-wide parameters (-s with -t, -r, -m), restrict to a pool (-p).
 *
 * Invariant: xl's bytes and exit status for every outcome; never throws at the user.
 */
import type { CliIo } from "../../cli/io";
import {
  credit2PoolLine,
  creditPoolLine,
  SCHED_HEADER,
  schedRow,
  schedulerName,
} from "../format/sched";
import { LIBXL_SCHEDULER, type LibxlScheduler, type XlCpupoolInfo, type XlHost } from "../types";
import { connectHost, findDomain, strtol, xlGetopt } from "./common";

type Which = "credit" | "credit2";

const SCHED: Record<Which, LibxlScheduler> = {
  credit: LIBXL_SCHEDULER.CREDIT,
  credit2: LIBXL_SCHEDULER.CREDIT2,
};

const CREDIT_OPTS = [
  { short: "d", long: "domain", arg: true },
  { short: "w", long: "weight", arg: true },
  { short: "c", long: "cap", arg: true },
  { short: "s", long: "schedparam", arg: false },
  { short: "t", long: "tslice_ms", arg: true },
  { short: "r", long: "ratelimit_us", arg: true },
  { short: "m", long: "migration_delay_us", arg: true },
  { short: "p", long: "cpupool", arg: true },
];

const CREDIT2_OPTS = [
  { short: "d", long: "domain", arg: true },
  { short: "w", long: "weight", arg: true },
  { short: "c", long: "cap", arg: true },
  { short: "s", long: "schedparam", arg: false },
  { short: "r", long: "ratelimit_us", arg: true },
  { short: "p", long: "cpupool", arg: true },
];

/** libxl_cpupool_qualifier_to_cpupoolid + libxl_cpupoolid_is_valid. */
function poolByQualifier(pools: readonly XlCpupoolInfo[], q: string): XlCpupoolInfo | undefined {
  if (/^[0-9]+$/.test(q)) {
    const id = Number(BigInt.asUintN(32, BigInt(q)));
    return pools.find((x) => x.poolid === id);
  }
  return pools.find((x) => x.poolName === q);
}

/** sched_credit{,2}_pool_output: the pool line (stderr says so when its params are unreadable). */
async function poolLine(
  host: XlHost,
  which: Which,
  poolid: number,
  poolName: string | undefined,
  io: CliIo,
): Promise<string> {
  if (which === "credit") {
    const params = await host.schedCreditParams(poolid);
    if (params === undefined) io.err("libxl_sched_credit_params_get failed.\n");
    return creditPoolLine(poolName, params);
  }
  const params = await host.schedCredit2Params(poolid);
  if (params === undefined) io.err("libxl_sched_credit2_params_get failed.\n");
  return credit2PoolLine(poolName, params);
}

/** One domain's row, or (after xl's message on stderr) undefined. */
async function domainRow(
  host: XlHost,
  which: Which,
  domid: number,
  io: CliIo,
  name?: string,
): Promise<string | undefined> {
  const sp = await host.domainSchedParams(domid);
  if (sp === undefined) {
    io.err("libxl_domain_sched_params_get failed.\n");
    return undefined;
  }
  if (sp.sched !== SCHED[which]) {
    io.err(`libxl_domain_sched_params_get returned ${schedulerName(sp.sched)} not ${which}.\n`);
    return undefined;
  }
  return schedRow(name ?? (await host.domname(domid)), domid, sp.weight, sp.cap);
}

async function schedVerb(which: Which, args: string[], io: CliIo): Promise<number> {
  const verb = which === "credit" ? "sched-credit" : "sched-credit2";
  const p = xlGetopt(verb, which === "credit" ? CREDIT_OPTS : CREDIT2_OPTS, args, io, 0);
  if (!p.ok) return p.status;
  const str = (k: string) => (typeof p.opts[k] === "string" ? (p.opts[k] as string) : undefined);
  const num = (k: string) => {
    const s = str(k);
    return s === undefined ? undefined : strtol(s).value;
  };
  const dom = str("domain");
  const cpupool = str("cpupool");
  const weight = num("weight");
  const cap = num("cap");
  const tslice = num("tslice_ms");
  const ratelimit = num("ratelimit_us");
  const migr = num("migration_delay_us");
  const optS = p.opts.schedparam === true;
  const domainOpts = dom !== undefined || weight !== undefined || cap !== undefined;
  if (which === "credit" && (cpupool !== undefined || optS) && domainOpts) {
    io.err("Specifying a cpupool or schedparam is not allowed with domain options.\n");
    return 1;
  }
  if (which === "credit2" && cpupool !== undefined && domainOpts) {
    io.err("Specifying a cpupool is not allowed with other options.\n");
    return 1;
  }
  if (dom === undefined && (weight !== undefined || cap !== undefined)) {
    io.err("Must specify a domain.\n");
    return 1;
  }
  if (
    which === "credit" &&
    !optS &&
    (tslice !== undefined || ratelimit !== undefined || migr !== undefined)
  ) {
    io.err("Must specify schedparam to set schedule parameter values.\n");
    return 1;
  }
  const host = await connectHost(verb, io);
  if (typeof host === "number") return host;

  if (optS) {
    const pools = await host.cpupools();
    let pool = pools.find((x) => x.poolid === 0);
    if (cpupool !== undefined) {
      pool = poolByQualifier(pools, cpupool);
      if (pool === undefined) {
        io.err(`unknown cpupool '${cpupool}'\n`);
        return 1;
      }
    }
    const poolid = pool?.poolid ?? 0;
    const poolName = pool?.poolName;
    if (which === "credit") {
      if (tslice === undefined && ratelimit === undefined && migr === undefined) {
        io.out(await poolLine(host, which, poolid, poolName, io));
        return 0;
      }
      const cur = await host.schedCreditParams(poolid);
      if (cur === undefined) {
        io.err("libxl_sched_credit_params_get failed.\n");
        return 1;
      }
      const next = {
        tsliceMs: tslice ?? cur.tsliceMs,
        ratelimitUs: ratelimit ?? cur.ratelimitUs,
        vcpuMigrDelayUs: migr ?? cur.vcpuMigrDelayUs,
      };
      if ((await host.setSchedCreditParams(poolid, next)) !== 0) {
        io.err("libxl_sched_credit_params_set failed.\n");
        return 1;
      }
      return 0;
    }
    if (ratelimit === undefined) {
      io.out(await poolLine(host, which, poolid, poolName, io));
      return 0;
    }
    if ((await host.setSchedCredit2Params(poolid, { ratelimitUs: ratelimit })) !== 0) {
      io.err("libxl_sched_credit2_params_set failed.\n");
      return 1;
    }
    return 0;
  }

  if (dom === undefined) {
    // sched_domain_output: every pool running this scheduler, its line, then its domains.
    const pools = await host.cpupools();
    let only: number | undefined;
    if (cpupool !== undefined) {
      const pool = poolByQualifier(pools, cpupool);
      if (pool === undefined) {
        io.err(`unknown cpupool '${cpupool}'\n`);
        return 1;
      }
      only = pool.poolid;
    }
    const domains = await host.listDomains();
    let stop = false;
    for (const pool of pools) {
      if (stop) break;
      if (pool.sched !== SCHED[which] || (only !== undefined && pool.poolid !== only)) continue;
      io.out(await poolLine(host, which, pool.poolid, pool.poolName, io));
      io.out(SCHED_HEADER);
      for (const d of domains) {
        if (d.cpupool !== pool.poolid) continue;
        const row = await domainRow(host, which, d.domid, io, d.name);
        if (row === undefined) {
          stop = true;
          break;
        }
        io.out(row);
      }
    }
    return 0;
  }

  const domid = await findDomain(host, dom, io);
  if (domid === undefined) return 1;
  if (weight === undefined && cap === undefined) {
    io.out(SCHED_HEADER);
    const row = await domainRow(host, which, domid, io);
    if (row === undefined) return 1;
    io.out(row);
    return 0;
  }
  const rc = await host.setDomainSchedParams(domid, { sched: SCHED[which], weight, cap });
  if (rc !== 0) {
    io.err("libxl_domain_sched_params_set failed.\n");
    return 1;
  }
  return 0;
}

export const schedCreditVerb = (args: string[], io: CliIo) => schedVerb("credit", args, io);
export const schedCredit2Verb = (args: string[], io: CliIo) => schedVerb("credit2", args, io);
