/*
 * MemoryXlHost: an XlHost kept in memory, for tests, benches, examples and the dashboard's
 * demo. It answers as libxl would for the domains it is given: unknown domains are
 * undefined, setters check the scheduler and ranges as Xen's credit/credit2 do.
 *
 * Invariant: every answer is a copy; callers cannot change the host's state through one.
 */
import type { JsonValue } from "../xlcfg/json";
import {
  LIBXL_DOMAIN_TYPE,
  LIBXL_ERROR,
  LIBXL_SCHEDULER,
  type LibxlScheduler,
  type XlCpupoolInfo,
  type XlDiskInfo,
  type XlDomainSchedParams,
  type XlDomainStats,
  type XlDomInfo,
  type XlHost,
  type XlNicInfo,
  type XlPhysInfo,
  type XlSchedCredit2Params,
  type XlSchedCreditParams,
  type XlVcpuInfo,
  type XlVcpuList,
} from "./types";

/** One domain of a MemoryXlHost. */
export interface MemoryDomain {
  info: XlDomInfo;
  name: string;
  vcpus: XlVcpuInfo[];
  weight: number;
  cap: number;
  disks: XlDiskInfo[];
  nics: XlNicInfo[];
  config?: JsonValue;
  stats?: XlDomainStats;
}

/** A domain's info with libxl's defaults for what is not given. */
export function domInfo(domid: number, over: Partial<XlDomInfo> = {}): XlDomInfo {
  const hex = domid.toString(16).padStart(12, "0");
  return {
    uuid: `00000000-0000-4000-8000-${hex}`,
    domid,
    ssidref: 0,
    running: false,
    blocked: false,
    paused: false,
    shutdown: false,
    dying: false,
    neverStop: false,
    shutdownReason: 0,
    outstandingMemkb: 0,
    currentMemkb: 0,
    sharedMemkb: 0,
    pagingMemkb: 0,
    maxMemkb: 0,
    cpuTime: 0,
    vcpuMaxId: 0,
    vcpuOnline: 1,
    cpupool: 0,
    domainType: LIBXL_DOMAIN_TYPE.PV,
    ...over,
  };
}

/** A host of 8 CPUs and 16 GiB (8 GiB free) running Xen 4.17 with credit2. */
export function defaultPhysInfo(over: Partial<XlPhysInfo> = {}): XlPhysInfo {
  return {
    threadsPerCore: 1,
    coresPerSocket: 8,
    maxCpuId: 7,
    nrCpus: 8,
    cpuKhz: 2000000,
    totalPages: 4194304,
    freePages: 2097152,
    scrubPages: 0,
    outstandingPages: 0,
    sharingFreedPages: 0,
    sharingUsedFrames: 0,
    maxPossibleMfn: 4194303,
    nrNodes: 1,
    hwCap: [0, 0, 0, 0, 0, 0, 0, 0],
    capHvm: true,
    capPv: true,
    capHvmDirectio: true,
    capHap: true,
    capShadow: true,
    capIommuHapPtShare: false,
    capVmtrace: false,
    capVpmu: false,
    capGnttabV1: true,
    capGnttabV2: true,
    freeCpus: [],
    scheduler: LIBXL_SCHEDULER.CREDIT2,
    version: {
      xenVersionMajor: 4,
      xenVersionMinor: 17,
      xenVersionExtra: ".0",
      compiler: "hyperlab",
      compileBy: "hyperlab",
      compileDomain: "hyperlab",
      compileDate: "",
      capabilities: "xen-3.0-x86_64 hvm-3.0-x86_64",
      changeset: "",
      virtStart: "ffff800000000000",
      pagesize: 4096,
      commandline: "",
      buildId: "",
    },
    uname: {
      sysname: "Linux",
      nodename: "hyperlab",
      release: "6.1.0-hyperlab",
      version: "#1 SMP",
      machine: "x86_64",
    },
    ...over,
  };
}

const clone = <T>(v: T): T => structuredClone(v);

/** Credit's and credit2's weight range (xen/common/sched/credit*.c): 1..65535. */
const WEIGHT_MAX = 65535;

export class MemoryXlHost implements XlHost {
  readonly domains = new Map<number, MemoryDomain>();
  phys: XlPhysInfo;
  pools: XlCpupoolInfo[];
  credit = new Map<number, XlSchedCreditParams>();
  credit2 = new Map<number, XlSchedCredit2Params>();
  console = "";

  constructor(phys: XlPhysInfo = defaultPhysInfo()) {
    this.phys = phys;
    const all = Array.from({ length: phys.maxCpuId + 1 }, (_, i) => i);
    this.pools = [{ poolid: 0, poolName: "Pool-0", sched: phys.scheduler, nDom: 0, cpumap: all }];
    this.credit.set(0, { tsliceMs: 30, ratelimitUs: 1000, vcpuMigrDelayUs: 0 });
    this.credit2.set(0, { ratelimitUs: 1000 });
  }

  /** Adds (or replaces) a domain. */
  add(d: MemoryDomain): void {
    this.domains.set(d.info.domid, clone(d));
  }

  /** Removes a domain; false when there was none. */
  remove(domid: number): boolean {
    return this.domains.delete(domid);
  }

  private sorted(): MemoryDomain[] {
    return [...this.domains.values()].sort((a, b) => a.info.domid - b.info.domid);
  }

  private poolSched(poolid: number): LibxlScheduler | undefined {
    return this.pools.find((p) => p.poolid === poolid)?.sched;
  }

  async listDomains(): Promise<XlDomInfo[]> {
    return this.sorted().map((d) => ({ ...d.info, name: d.name }));
  }
  async domainInfo(domid: number): Promise<XlDomInfo | undefined> {
    const d = this.domains.get(domid);
    return d && { ...d.info, name: d.name };
  }
  async domid(name: string): Promise<number | undefined> {
    for (const d of this.sorted()) if (d.name === name) return d.info.domid;
    return undefined;
  }
  async domname(domid: number): Promise<string | undefined> {
    return this.domains.get(domid)?.name;
  }
  async vcpuList(domid: number): Promise<XlVcpuList | undefined> {
    const d = this.domains.get(domid);
    return d && { vcpus: clone(d.vcpus), nrCpus: this.phys.maxCpuId + 1 };
  }
  async physInfo(): Promise<XlPhysInfo> {
    return clone(this.phys);
  }
  async cpupools(): Promise<XlCpupoolInfo[]> {
    return this.pools.map((p) => ({
      ...clone(p),
      nDom: [...this.domains.values()].filter((d) => d.info.cpupool === p.poolid).length,
    }));
  }
  async domainSchedParams(domid: number): Promise<XlDomainSchedParams | undefined> {
    const d = this.domains.get(domid);
    const sched = d && this.poolSched(d.info.cpupool);
    return d && sched !== undefined ? { sched, weight: d.weight, cap: d.cap } : undefined;
  }
  async setDomainSchedParams(
    domid: number,
    p: { sched: LibxlScheduler; weight?: number; cap?: number },
  ): Promise<number> {
    const d = this.domains.get(domid);
    if (d === undefined) return LIBXL_ERROR.DOMAIN_NOTFOUND;
    if (this.poolSched(d.info.cpupool) !== p.sched) return LIBXL_ERROR.INVAL;
    if (p.weight !== undefined && (p.weight < 1 || p.weight > WEIGHT_MAX)) return LIBXL_ERROR.INVAL;
    if (p.cap !== undefined && (p.cap < 0 || p.cap > 100 * (d.info.vcpuMaxId + 1)))
      return LIBXL_ERROR.INVAL;
    if (p.weight !== undefined) d.weight = p.weight;
    if (p.cap !== undefined) d.cap = p.cap;
    return 0;
  }
  async schedCreditParams(poolid: number): Promise<XlSchedCreditParams | undefined> {
    if (this.poolSched(poolid) !== LIBXL_SCHEDULER.CREDIT) return undefined;
    return clone(this.credit.get(poolid));
  }
  async setSchedCreditParams(poolid: number, p: XlSchedCreditParams): Promise<number> {
    if (this.poolSched(poolid) !== LIBXL_SCHEDULER.CREDIT) return LIBXL_ERROR.INVAL;
    // libxl_sched_credit_params_set's checks (tools/libs/light/libxl_sched.c).
    if (p.tsliceMs < 1 || p.tsliceMs > 1000) return LIBXL_ERROR.INVAL;
    if (p.ratelimitUs > 500000 || (p.ratelimitUs > 0 && p.ratelimitUs < 100))
      return LIBXL_ERROR.INVAL;
    if (p.ratelimitUs > p.tsliceMs * 1000) return LIBXL_ERROR.INVAL;
    if (p.vcpuMigrDelayUs < 0 || p.vcpuMigrDelayUs > 100000) return LIBXL_ERROR.INVAL;
    this.credit.set(poolid, { ...p });
    return 0;
  }
  async schedCredit2Params(poolid: number): Promise<XlSchedCredit2Params | undefined> {
    if (this.poolSched(poolid) !== LIBXL_SCHEDULER.CREDIT2) return undefined;
    return clone(this.credit2.get(poolid));
  }
  async setSchedCredit2Params(poolid: number, p: XlSchedCredit2Params): Promise<number> {
    if (this.poolSched(poolid) !== LIBXL_SCHEDULER.CREDIT2) return LIBXL_ERROR.INVAL;
    if (p.ratelimitUs > 500000 || (p.ratelimitUs > 0 && p.ratelimitUs < 100))
      return LIBXL_ERROR.INVAL;
    this.credit2.set(poolid, { ...p });
    return 0;
  }
  async blockList(domid: number): Promise<XlDiskInfo[] | undefined> {
    const d = this.domains.get(domid);
    return d && clone(d.disks);
  }
  async networkList(domid: number): Promise<XlNicInfo[] | undefined> {
    const d = this.domains.get(domid);
    return d && clone(d.nics);
  }
  async domainConfig(domid: number): Promise<JsonValue | undefined> {
    const c = this.domains.get(domid)?.config;
    return c === undefined ? undefined : clone(c);
  }
  async dmesg(clear = false): Promise<string> {
    const text = this.console;
    if (clear) this.console = "";
    return text;
  }
  async domainStats(domid: number): Promise<XlDomainStats | undefined> {
    const s = this.domains.get(domid)?.stats;
    return s && clone(s);
  }
}
