/*
 * Gathers a TopSample from an XlHost, as libxenstat does from libxc and xenstore: the
 * domains' info, names and device counters, and the host's memory and CPUs.
 *
 * Invariant: one call is one consistent-enough snapshot; it never writes to the host.
 */
import type { XlDomInfo, XlHost } from "../xl/types";
import type { TopDomain, TopSample } from "./format";

async function topDomain(host: XlHost, d: XlDomInfo): Promise<TopDomain> {
  const [name, stats] = await Promise.all([
    d.name ?? host.domname(d.domid),
    host.domainStats ? host.domainStats(d.domid) : undefined,
  ]);
  let nets = stats?.nets;
  let vbds = stats?.vbds;
  if (nets === undefined || vbds === undefined) {
    const [n, b] = await Promise.all([host.networkList(d.domid), host.blockList(d.domid)]);
    nets ??= (n ?? []).map(() => ({ rxBytes: 0, txBytes: 0 }));
    vbds ??= (b ?? []).map(() => ({ ooReqs: 0, rdReqs: 0, wrReqs: 0, rdSects: 0, wrSects: 0 }));
  }
  return {
    domid: d.domid,
    name: name ?? "",
    running: d.running,
    blocked: d.blocked,
    paused: d.paused,
    shutdown: d.shutdown,
    dying: d.dying,
    shutdownReason: d.shutdownReason,
    cpuNs: d.cpuTime,
    curMemBytes: d.currentMemkb * 1024,
    maxMemBytes: d.maxMemkb * 1024,
    vcpus: d.vcpuMaxId + 1,
    ssid: d.ssidref,
    nets,
    vbds,
  };
}

/** One sample of the host. */
export async function sampleHost(host: XlHost): Promise<TopSample> {
  const [phys, doms] = await Promise.all([host.physInfo(), host.listDomains()]);
  const v = phys.version;
  return {
    xenVersion: `${v.xenVersionMajor}.${v.xenVersionMinor}${v.xenVersionExtra}`,
    totMemBytes: phys.totalPages * v.pagesize,
    freeMemBytes: phys.freePages * v.pagesize,
    numCpus: phys.nrCpus,
    cpuHz: phys.cpuKhz * 1000,
    domains: await Promise.all(doms.map((d) => topDomain(host, d))),
  };
}
