/*
 * What xl's read-side verbs print, as data: libxl's own structs (tools/libs/light/
 * libxl_types.idl, Xen 4.17) with camelCased field names, and XlHost, the asynchronous
 * source the verbs query. A lifecycle daemon implements XlHost over its control socket;
 * tests implement it in memory. The formatters in ./format/ turn these values into xl's
 * exact bytes, so every field here is one xl reads.
 *
 * Invariant: numbers are plain JS numbers. Sizes are in KiB (as libxl's *_memkb), CPU
 * times in nanoseconds (as libxl's cpu_time and vcpu_time); both stay below 2^53 for any
 * host a model can describe, so no BigInt is needed.
 */
import type { JsonValue } from "../xlcfg/json";

/** libxl_error (libxl_types.idl): what a failed libxl call returns; xl prints some of them. */
export const LIBXL_ERROR = {
  NONSPECIFIC: -1,
  VERSION: -2,
  FAIL: -3,
  NI: -4,
  NOMEM: -5,
  INVAL: -6,
  BADFAIL: -7,
  DOMAIN_NOTFOUND: -21,
  NOTFOUND: -23,
  DOMAIN_DESTROYED: -24,
} as const;

/** libxl_shutdown_reason. */
export const LIBXL_SHUTDOWN_REASON = {
  UNKNOWN: -1,
  POWEROFF: 0,
  REBOOT: 1,
  SUSPEND: 2,
  CRASH: 3,
  WATCHDOG: 4,
  SOFT_RESET: 5,
} as const;

/** libxl_domain_type. */
export const LIBXL_DOMAIN_TYPE = { INVALID: -1, HVM: 1, PV: 2, PVH: 3 } as const;

/** libxl_scheduler. */
export const LIBXL_SCHEDULER = {
  UNKNOWN: 0,
  SEDF: 4,
  CREDIT: 5,
  CREDIT2: 6,
  ARINC653: 7,
  RTDS: 8,
  NULL: 9,
} as const;
export type LibxlScheduler = (typeof LIBXL_SCHEDULER)[keyof typeof LIBXL_SCHEDULER];

/** libxl_dominfo: one domain as `xl list` sees it. */
export interface XlDomInfo {
  /** "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower-case hex. */
  uuid: string;
  domid: number;
  ssidref: number;
  /** The XSM label, or undefined when XSM is off (xl then prints "-"). */
  ssidLabel?: string;
  running: boolean;
  blocked: boolean;
  paused: boolean;
  shutdown: boolean;
  dying: boolean;
  neverStop: boolean;
  /** A LIBXL_SHUTDOWN_REASON value; meaningful when `shutdown` (or `dying`) is set. */
  shutdownReason: number;
  outstandingMemkb: number;
  currentMemkb: number;
  sharedMemkb: number;
  pagingMemkb: number;
  maxMemkb: number;
  /** Total CPU time of all the domain's vCPUs, nanoseconds. */
  cpuTime: number;
  vcpuMaxId: number;
  vcpuOnline: number;
  cpupool: number;
  /** A LIBXL_DOMAIN_TYPE value. */
  domainType: number;
  /**
   * The domain's name, when the host has it at hand (not in libxl_dominfo: xl asks
   * libxl_domid_to_name per domain). Present, it spares the verbs one domname() per row.
   */
  name?: string;
}

/** libxl_vcpuinfo: one vCPU as `xl vcpu-list` sees it. */
export interface XlVcpuInfo {
  vcpuid: number;
  /** The physical CPU it last ran on. */
  cpu: number;
  online: boolean;
  blocked: boolean;
  running: boolean;
  /** nanoseconds */
  vcpuTime: number;
  /** Hard affinity: physical CPU numbers, ascending. */
  cpumap: readonly number[];
  /** Soft affinity: physical CPU numbers, ascending. */
  cpumapSoft: readonly number[];
}

/** libxl_list_vcpu's answer: the vCPUs and the host's CPU count (`nr_cpus_out`). */
export interface XlVcpuList {
  vcpus: XlVcpuInfo[];
  /** Number of physical CPUs the affinity maps range over (max_cpu_id + 1). */
  nrCpus: number;
}

/** libxl_physinfo, plus what `xl info` prints from libxl_version_info and uname(2). */
export interface XlPhysInfo {
  threadsPerCore: number;
  coresPerSocket: number;
  maxCpuId: number;
  nrCpus: number;
  cpuKhz: number;
  totalPages: number;
  freePages: number;
  scrubPages: number;
  outstandingPages: number;
  sharingFreedPages: number;
  sharingUsedFrames: number;
  maxPossibleMfn: number;
  nrNodes: number;
  /** libxl_hwcap: eight 32-bit words. */
  hwCap: readonly number[];
  capHvm: boolean;
  capPv: boolean;
  capHvmDirectio: boolean;
  capHap: boolean;
  capShadow: boolean;
  capIommuHapPtShare: boolean;
  capVmtrace: boolean;
  capVpmu: boolean;
  capGnttabV1: boolean;
  capGnttabV2: boolean;
  /** CPUs in no cpupool (libxl_get_freecpus), ascending. */
  freeCpus: readonly number[];
  /** The scheduler `xl info` names (xen_scheduler): Pool-0's. */
  scheduler: LibxlScheduler;
  /** libxl_version_info. */
  version: XlVersionInfo;
  /** uname(2) of the control domain. */
  uname: { sysname: string; nodename: string; release: string; version: string; machine: string };
}

/** libxl_version_info. */
export interface XlVersionInfo {
  xenVersionMajor: number;
  xenVersionMinor: number;
  xenVersionExtra: string;
  compiler: string;
  compileBy: string;
  compileDomain: string;
  compileDate: string;
  capabilities: string;
  changeset: string;
  /** Hypervisor virtual start address as lower-case hex without "0x" (it needs 64 bits). */
  virtStart: string;
  pagesize: number;
  commandline: string;
  buildId: string;
}

/** libxl_cpupoolinfo. */
export interface XlCpupoolInfo {
  poolid: number;
  poolName: string;
  sched: LibxlScheduler;
  nDom: number;
  cpumap: readonly number[];
}

/** libxl_domain_sched_params, the fields credit and credit2 use (others: libxl's default). */
export interface XlDomainSchedParams {
  sched: LibxlScheduler;
  weight: number;
  cap: number;
}

/** libxl_sched_credit_params: credit's pool-wide settings. */
export interface XlSchedCreditParams {
  tsliceMs: number;
  ratelimitUs: number;
  vcpuMigrDelayUs: number;
}

/** libxl_sched_credit2_params: credit2's pool-wide settings. */
export interface XlSchedCredit2Params {
  ratelimitUs: number;
}

/** libxl_diskinfo: one virtual block device, as `xl block-list` prints it. */
export interface XlDiskInfo {
  backend: string;
  backendId: number;
  frontend: string;
  frontendId: number;
  devid: number;
  /** XenbusState of the backend. */
  state: number;
  evtch: number;
  rref: number;
}

/** libxl_nicinfo: one virtual network interface, as `xl network-list` prints it. */
export interface XlNicInfo {
  backend: string;
  backendId: number;
  frontend: string;
  frontendId: number;
  devid: number;
  state: number;
  evtch: number;
  rrefTx: number;
  rrefRx: number;
  /** The MAC address ("00:16:3e:..") from the domain's libxl_device_nic. */
  mac: string;
}

/** I/O counters of one domain, as libxenstat gathers them for xentop (bytes and requests). */
export interface XlDomainStats {
  nets: { rxBytes: number; txBytes: number }[];
  vbds: {
    /** libxenstat could not read this device's statistics. */
    error?: boolean;
    ooReqs: number;
    rdReqs: number;
    wrReqs: number;
    rdSects: number;
    wrSects: number;
  }[];
}

/**
 * The host the read-side verbs query. Every method is one libxl call (named in its comment).
 * A domain that does not exist is `undefined` (or a LIBXL_ERROR code for setters); host
 * failures reject with an Error. Setters resolve to 0 or a negative LIBXL_ERROR value.
 */
export interface XlHost {
  /** libxl_list_domain: every domain, ascending domid. */
  listDomains(): Promise<XlDomInfo[]>;
  /** libxl_domain_info. */
  domainInfo(domid: number): Promise<XlDomInfo | undefined>;
  /** libxl_name_to_domid. */
  domid(name: string): Promise<number | undefined>;
  /** libxl_domid_to_name. */
  domname(domid: number): Promise<string | undefined>;
  /** libxl_list_vcpu. */
  vcpuList(domid: number): Promise<XlVcpuList | undefined>;
  /** libxl_get_physinfo + libxl_get_version_info + libxl_get_freecpus + uname. */
  physInfo(): Promise<XlPhysInfo>;
  /** libxl_list_cpupool. */
  cpupools(): Promise<XlCpupoolInfo[]>;
  /** libxl_domain_sched_params_get. */
  domainSchedParams(domid: number): Promise<XlDomainSchedParams | undefined>;
  /**
   * libxl_domain_sched_params_set: `sched` names the scheduler xl asked for; an absent
   * weight or cap stays as it is (libxl's *_DEFAULT). Resolves to 0 or a LIBXL_ERROR value
   * (INVAL when the domain runs another scheduler or a value is out of range).
   */
  setDomainSchedParams(
    domid: number,
    params: { sched: LibxlScheduler; weight?: number; cap?: number },
  ): Promise<number>;
  /** libxl_sched_credit_params_get; undefined when the pool does not run credit. */
  schedCreditParams(poolid: number): Promise<XlSchedCreditParams | undefined>;
  /** libxl_sched_credit_params_set. */
  setSchedCreditParams(poolid: number, params: XlSchedCreditParams): Promise<number>;
  /** libxl_sched_credit2_params_get; undefined when the pool does not run credit2. */
  schedCredit2Params(poolid: number): Promise<XlSchedCredit2Params | undefined>;
  /** libxl_sched_credit2_params_set. */
  setSchedCredit2Params(poolid: number, params: XlSchedCredit2Params): Promise<number>;
  /** libxl_device_disk_list + libxl_device_disk_getinfo. */
  blockList(domid: number): Promise<XlDiskInfo[] | undefined>;
  /** libxl_device_nic_list + libxl_device_nic_getinfo. */
  networkList(domid: number): Promise<XlNicInfo[] | undefined>;
  /** The domain's libxl_domain_config as JSON (libxl_retrieve_domain_configuration). */
  domainConfig(domid: number): Promise<JsonValue | undefined>;
  /** xc_readconsolering: Xen's console ring text; `clear` empties it after reading. */
  dmesg(clear?: boolean): Promise<string>;
  /**
   * libxenstat's per-domain network and block counters, for `hyperlab top`. Optional: without
   * it top counts devices from blockList/networkList and shows zero traffic.
   */
  domainStats?(domid: number): Promise<XlDomainStats | undefined>;
}
