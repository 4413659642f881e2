/*
 * libxl's queries over a Host: the XlHost that xl's read-side verbs print from
 * (libxl_list_domain, libxl_domain_info, libxl_list_vcpu, libxl_get_physinfo, ...). The host
 * daemon serves exactly these over its control socket (daemon/client.ts is the other end).
 *
 * Invariant: a query never changes the host; a setter changes only what it names and answers
 * 0 or a negative LIBXL_ERROR value, never throws on a caller's value.
 */
import { RUNSTATE_blocked, RUNSTATE_running } from "@hyperlab/abi";
import type { Domain } from "@hyperlab/core";
import { readConsoleLog } from "@hyperlab/pv-cpu";
import {
  LIBXL_DOMAIN_TYPE,
  LIBXL_ERROR,
  LIBXL_SCHEDULER,
  type XlCpupoolInfo,
  type XlDiskInfo,
  type XlDomainSchedParams,
  type XlDomInfo,
  type XlHost,
  type XlNicInfo,
  type XlPhysInfo,
  type XlVcpuList,
} from "../xl/types";
import { type JsonValue, obj } from "../xlcfg/json";
import { type DomainRecord, freePages, type Host } from "./host";

/** libxl's view of a domain (libxl_dominfo from xc_domaininfo). */
function domInfo(host: Host, d: Domain, r: DomainRecord | undefined): XlDomInfo {
  const sched = host.hv.slot("sched");
  let running = false;
  let blocked = true;
  let online = 0;
  for (const v of d.vcpus) {
    if (v.state === "offline") continue;
    online++;
    const st = sched.runstate(v).state;
    if (st === RUNSTATE_running) running = true;
    if (st !== RUNSTATE_blocked) blocked = false;
  }
  const shutdown = d.state === "shutdown";
  const dying = d.state === "dying" || d.state === "dead";
  return {
    uuid: r?.config.uuid ?? "00000000-0000-0000-0000-000000000000",
    domid: d.domid,
    ssidref: 0,
    running: running && d.state === "running",
    blocked: blocked && d.state === "running" && !running,
    paused: d.state === "paused",
    shutdown,
    dying,
    neverStop: false,
    shutdownReason: shutdown || dying ? d.shutdownCode : -1,
    outstandingMemkb: 0,
    currentMemkb: d.totPages * 4,
    sharedMemkb: 0,
    pagingMemkb: 0,
    maxMemkb: d.maxPages * 4,
    cpuTime: sched.domainRuntime(d),
    vcpuMaxId: d.vcpus.length - 1,
    vcpuOnline: online,
    cpupool: 0,
    domainType: host.kind === "kvm" ? LIBXL_DOMAIN_TYPE.HVM : LIBXL_DOMAIN_TYPE.PV,
    name: r?.name ?? (d.domid === 0 ? host.dom0Name : undefined),
  };
}

function allCpus(host: Host): number[] {
  return host.hv.machine.cpus.map((_, i) => i);
}

/** The device's backend directory keys libxl_device_*_getinfo reads. */
async function deviceInfo(
  host: Host,
  r: DomainRecord,
  type: string,
  devid: number,
  backendDomid: number,
) {
  const be = `/local/domain/${backendDomid}/backend/${type}/${r.domid}/${devid}`;
  const fe = `/local/domain/${r.domid}/device/${type}/${devid}`;
  const xs = host.xsd!.xs;
  const num = async (p: string) => {
    try {
      const v = Number(await xs.read(p));
      return Number.isFinite(v) ? v : -1;
    } catch {
      return -1;
    }
  };
  return {
    be,
    fe,
    state: await num(`${be}/state`),
    evtch: await num(`${fe}/event-channel`),
    xs,
    num,
  };
}

/** XlHost over a host in this process. */
export function libxlHost(host: Host): XlHost {
  const { hv } = host;
  const rec = (domid: number) => host.domains.get(domid);
  const live = (domid: number) => {
    const d = hv.domain(domid);
    return d !== undefined && d.state !== "dead" ? d : undefined;
  };
  const credit = host.hv.describe().plugins.some((p) => p.name === "sched-credit");
  const q: XlHost = {
    async listDomains() {
      return hv
        .domains()
        .filter((d) => d.state !== "dead")
        .map((d) => domInfo(host, d, rec(d.domid)));
    },
    async domainInfo(domid) {
      const d = live(domid);
      return d === undefined ? undefined : domInfo(host, d, rec(domid));
    },
    async domid(name) {
      if (host.dom0 !== null && name === host.dom0Name) return 0;
      for (const r of host.domains.values()) if (r.name === name) return r.domid;
      return undefined;
    },
    async domname(domid) {
      if (domid === 0 && host.dom0 !== null) return host.dom0Name;
      return rec(domid)?.name;
    },
    async vcpuList(domid): Promise<XlVcpuList | undefined> {
      const d = live(domid);
      if (d === undefined) return undefined;
      const sched = hv.slot("sched");
      return {
        nrCpus: hv.machine.cpus.length,
        vcpus: d.vcpus.map((v) => {
          const st = v.state === "offline" ? -1 : sched.runstate(v).state;
          const aff = sched.affinity(v);
          return {
            vcpuid: v.vcpuId,
            cpu: v.processor,
            online: v.state !== "offline",
            blocked: st === RUNSTATE_blocked,
            running: st === RUNSTATE_running,
            vcpuTime: sched.vcpuRuntime(v),
            cpumap: aff.hard,
            cpumapSoft: aff.soft,
          };
        }),
      };
    },
    async physInfo(): Promise<XlPhysInfo> {
      const n = hv.machine.cpus.length;
      return {
        threadsPerCore: 1,
        coresPerSocket: n,
        maxCpuId: n - 1,
        nrCpus: n,
        cpuKhz: 2_000_000,
        totalPages: hv.frames.nrFrames,
        freePages: freePages(hv),
        scrubPages: 0,
        outstandingPages: 0,
        sharingFreedPages: 0,
        sharingUsedFrames: 0,
        maxPossibleMfn: hv.frames.nrFrames - 1,
        nrNodes: 1,
        hwCap: [0, 0, 0, 0, 0, 0, 0, 0],
        capHvm: host.kind === "kvm",
        capPv: host.kind === "xen",
        capHvmDirectio: false,
        capHap: host.kind === "kvm",
        capShadow: false,
        capIommuHapPtShare: false,
        capVmtrace: false,
        capVpmu: false,
        capGnttabV1: host.kind === "xen",
        capGnttabV2: host.kind === "xen",
        freeCpus: [],
        scheduler: credit ? LIBXL_SCHEDULER.CREDIT : LIBXL_SCHEDULER.CREDIT2,
        version: {
          xenVersionMajor: 4,
          xenVersionMinor: 17,
          xenVersionExtra: "-hyperlab",
          compiler: "hyperlab (TypeScript model)",
          compileBy: "hyperlab",
          compileDomain: "hyperlab",
          compileDate: "Thu Jan  1 00:00:00 UTC 1970",
          capabilities: host.kind === "xen" ? "xen-3.0-x86_64" : "hvm-3.0-x86_64",
          changeset: "",
          virtStart: "ffff800000000000",
          pagesize: 4096,
          commandline: host.kind === "xen" ? "sched=credit" : "sched=credit hap",
          buildId: "",
        },
        uname: {
          sysname: "Linux",
          nodename: "hyperlab",
          release: "6.1.0-hyperlab",
          version: "#1 SMP",
          machine: "x86_64",
        },
      };
    },
    async cpupools(): Promise<XlCpupoolInfo[]> {
      return [
        {
          poolid: 0,
          poolName: "Pool-0",
          sched: credit ? LIBXL_SCHEDULER.CREDIT : LIBXL_SCHEDULER.CREDIT2,
          nDom: hv.domains().length,
          cpumap: allCpus(host),
        },
      ];
    },
    async domainSchedParams(domid): Promise<XlDomainSchedParams | undefined> {
      const d = live(domid);
      if (d === undefined) return undefined;
      const p = hv.slot("sched").getParams(d);
      return {
        sched: credit ? LIBXL_SCHEDULER.CREDIT : LIBXL_SCHEDULER.CREDIT2,
        weight: p.weight,
        cap: p.cap,
      };
    },
    async setDomainSchedParams(domid, params) {
      const d = live(domid);
      if (d === undefined) return LIBXL_ERROR.DOMAIN_NOTFOUND;
      const mine = credit ? LIBXL_SCHEDULER.CREDIT : LIBXL_SCHEDULER.CREDIT2;
      if (params.sched !== mine) return LIBXL_ERROR.INVAL;
      const p: { weight?: number; cap?: number } = {};
      if (params.weight !== undefined) p.weight = params.weight;
      if (params.cap !== undefined) p.cap = params.cap;
      try {
        hv.slot("sched").setParams(d, p);
      } catch {
        return LIBXL_ERROR.INVAL;
      }
      return 0;
    },
    async schedCreditParams(poolid) {
      if (poolid !== 0 || !credit) return undefined;
      return { tsliceMs: 30, ratelimitUs: 1000, vcpuMigrDelayUs: 0 };
    },
    async setSchedCreditParams() {
      // The core scheduler's slice and rate limit are fixed (see README).
      return LIBXL_ERROR.NI;
    },
    async schedCredit2Params(poolid) {
      if (poolid !== 0 || credit) return undefined;
      return { ratelimitUs: 1000 };
    },
    async setSchedCredit2Params() {
      return LIBXL_ERROR.NI;
    },
    async blockList(domid): Promise<XlDiskInfo[] | undefined> {
      const r = rec(domid);
      if (r === undefined) return live(domid) === undefined ? undefined : [];
      if (host.xsd === null) return [];
      const out: XlDiskInfo[] = [];
      for (const dev of r.devices.filter((x) => x.type === "vbd")) {
        const i = await deviceInfo(host, r, "vbd", dev.devid, dev.backendDomid);
        out.push({
          backend: i.be,
          backendId: dev.backendDomid,
          frontend: i.fe,
          frontendId: r.domid,
          devid: dev.devid,
          state: i.state,
          evtch: i.evtch,
          rref: await i.num(`${i.fe}/ring-ref`),
        });
      }
      return out;
    },
    async networkList(domid): Promise<XlNicInfo[] | undefined> {
      const r = rec(domid);
      if (r === undefined) return live(domid) === undefined ? undefined : [];
      if (host.xsd === null) return [];
      const out: XlNicInfo[] = [];
      for (const dev of r.devices.filter((x) => x.type === "vif")) {
        const i = await deviceInfo(host, r, "vif", dev.devid, dev.backendDomid);
        out.push({
          backend: i.be,
          backendId: dev.backendDomid,
          frontend: i.fe,
          frontendId: r.domid,
          devid: dev.devid,
          state: i.state,
          evtch: i.evtch,
          rrefTx: await i.num(`${i.fe}/tx-ring-ref`),
          rrefRx: await i.num(`${i.fe}/rx-ring-ref`),
          mac: String(dev.json.mac ?? ""),
        });
      }
      return out;
    },
    async domainConfig(domid): Promise<JsonValue | undefined> {
      const r = rec(domid);
      if (r === undefined) return undefined;
      return toJsonValue({
        ...r.config.json,
        c_info: { ...(r.config.json.c_info as object), name: r.name, uuid: r.config.uuid },
        disks: r.devices.filter((d) => d.type === "vbd").map((d) => d.json),
        nics: r.devices.filter((d) => d.type === "vif").map((d) => d.json),
      });
    },
    async dmesg(clear) {
      if (!hv.hasSlot("pv-cpu")) return "";
      // Xen's console ring keeps its own consumer mark (XEN_SYSCTL_readconsole's clear), so
      // -c stays right after the ring wraps.
      return readConsoleLog(hv, { clear: clear === true });
    },
  };
  return q;
}

/** Plain JSON (JSON.parse's) as the ordered JsonValue xl's printer takes; key order kept. */
export function toJsonValue(x: unknown): JsonValue {
  if (x === null || typeof x === "string" || typeof x === "number" || typeof x === "boolean")
    return x;
  if (Array.isArray(x)) return x.map(toJsonValue);
  if (typeof x === "object") {
    return obj(
      Object.entries(x as Record<string, unknown>).map(([k, v]): [string, JsonValue] => [
        k,
        toJsonValue(v),
      ]),
    );
  }
  return null;
}
