/*
 * A host: one composed hypervisor with its control domain, as a running Xen machine is after
 * boot (Xen-style: pv-mmu, event channels, grant tables, credit; dom0 built by the PV builder,
 * running xenstored and xenconsoled in its kernel) or a KVM-style one (nested paging, no dom0,
 * no xenstore). libxl's calls (create.ts, lifecycle.ts, save.ts) act on it; the host daemon
 * (daemon/) serves it over sockets.
 *
 * Invariants:
 * - `domains` holds exactly the guest domains libxl created and has not yet destroyed; each
 *   record's `domain` is live in `hv` (running, paused or shut down), and its name is unique
 *   among them and differs from dom0's ("Domain-0").
 * - Everything a record owns (its frames, its xenstore nodes, dom0's ends of its console and
 *   store channels, its devices' nodes) is released by destroyDomainRecord, in libxl's order:
 *   devices, dom0's console end, xenstore (release, home, /vm, /libxl), the domain.
 */
import { apicHooks } from "@hyperlab/apic-hooks";
import { createHypervisor, type Domain, type Hypervisor, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import { grantTable } from "@hyperlab/grant-table";
import { type GuestKernel, XenEvtchnGuest } from "@hyperlab/guest";
import { iomap } from "@hyperlab/iomap";
import {
  createMachine,
  createPlatform,
  DiskController,
  MemoryDiskImage,
  Nic,
  type PciFunction,
  type Platform,
} from "@hyperlab/machine";
import { nptMmu } from "@hyperlab/npt-mmu";
import { pvCpu } from "@hyperlab/pv-cpu";
import { buildPvDomain, type PvBuildResult, pvGrantMapping, pvMmu } from "@hyperlab/pv-mmu";
import {
  type GnttabGuest,
  type XenBalloon,
  type XenbusComms,
  type XenbusDriver,
  type XenbusKernel,
  XenconsBack,
  type XenconsFrontConsole,
  type XenconsStream,
  type XenManage,
  xenbusRegisterBackend,
} from "@hyperlab/split-drivers";
import type { XsClient } from "@hyperlab/xenstore";
import { UpcallLoop } from "../upcall-loop";
import { Dom0Xenstored } from "../xenstore-domain";
import type { DomainConfig } from "./config";
import type { DeviceDriverPair } from "./driver-pair";

export type { DeviceDriverPair } from "./driver-pair";

import { libxlError } from "./errors";
import { type SplitDevices, splitDevices, splitDriverPairs } from "./split-devices";

export type HostKind = "xen" | "kvm";

export interface HostOptions {
  /** "xen" (default) or "kvm" (nested paging, no dom0). */
  kind?: HostKind;
  /** Machine RAM in MiB (default 1024). */
  ramMiB?: number;
  /** Physical CPUs (default 4). */
  cpus?: number;
  /** The machine's seed (default 2009). */
  seed?: number;
  /** dom0's memory in MiB (default 8). */
  dom0MiB?: number;
  /**
   * Split drivers beside the console (Xen-style). Default: blkback/blkfront serving `disk=`
   * image files and netback/netfront on dom0 bridges named by `vif=` (split-devices.ts);
   * `[]` leaves vbds and vifs in Initialising, as a host without the backend modules.
   */
  drivers?: readonly DeviceDriverPair[];
  /** Capture each dom0 bridge NAME's frames to `${pcapDir}/NAME.pcap` (default: none). */
  pcapDir?: string;
  /** Boot the guest kernel in each domU (default true; benches of the toolstack alone skip it). */
  bootGuests?: boolean;
}

/** One device libxl attached to a domain. */
export interface DeviceRecord {
  type: string;
  devid: number;
  backendDomid: number;
  /** The libxl_device_* JSON (disk or nic). */
  json: Record<string, unknown>;
}

/** One guest domain as libxl and its daemon know it. */
export interface DomainRecord {
  readonly domid: number;
  name: string;
  config: DomainConfig;
  readonly domain: Domain;
  build: PvBuildResult | null;
  /** The guest kernel running in it (null when guests are not booted). */
  kernel: GuestKernel | null;
  /** The domU kernel's xenbus connection, console 0 and shutdown watcher (Xen hosts). */
  comms: XenbusComms | null;
  xenbus: XenbusKernel | null;
  console0: XenconsFrontConsole | null;
  manage: XenManage | null;
  /** The guest's balloon driver (watches memory/target). */
  balloon: XenBalloon | null;
  /** dom0's end of console 0. */
  stream: XenconsStream | null;
  devices: DeviceRecord[];
  /** Hard affinity per vCPU (empty list: all pCPUs). */
  hardAffinity: number[][];
  /** Pages the balloon target asks for (memory/target / 4). */
  targetPages: number;
  /** Virtual time the domain was created (ns). */
  readonly startNs: number;
  /** The domU kernel's grant table (shared by all its frontends). */
  gnttab: GnttabGuest | null;
  /** The domU kernel's frontend drivers by device type (blkfront is `vbd`, netfront `vif`). */
  readonly frontends: Map<string, XenbusDriver>;
  /** The host PCI functions passed through to it (xl.cfg `pci=`), permissions granted. */
  pci: PciFunction[];
  /** Set while the record is being torn down. */
  destroying: boolean;
}

export interface Host {
  readonly kind: HostKind;
  readonly hv: Hypervisor;
  readonly options: Required<Omit<HostOptions, "drivers" | "pcapDir">> & {
    drivers: readonly DeviceDriverPair[];
  };
  /** dom0's block/network backends and bridges (Xen-style hosts with the default drivers). */
  readonly split: SplitDevices | null;
  /**
   * Xen-style only: the chipset (IO-APIC, PCI bus) with a disk controller at 00:02.0 and a
   * NIC at 00:03.0, BARs placed by firmware; what `pci=` passes through.
   */
  readonly platform: Platform | null;
  /** Xen-style only: dom0, its upcall loop, xenstored, xenconsoled. */
  readonly dom0: Domain | null;
  readonly loop: UpcallLoop | null;
  readonly xsd: Dom0Xenstored | null;
  readonly dom0Kernel: XenbusKernel | null;
  readonly consoles: XenconsBack | null;
  readonly domains: Map<number, DomainRecord>;
  readonly dom0Name: string;
  /** Xen's domid rover: the next id tried (ids are not reused at once, as in Xen). */
  domidRover: number;
}

const MiB_PAGES = 256;

/** Boots a host: the machine, the hypervisor, and (Xen-style) dom0 with xenstored and xenconsoled. */
export function createHost(options: HostOptions = {}): Host {
  const kind = options.kind ?? "xen";
  if (kind !== "xen" && kind !== "kvm") {
    throw libxlError(
      "TOOLSTACK_BAD_OPTION",
      `kind must be "xen" or "kvm", got ${JSON.stringify(kind)}.`,
    );
  }
  const opts = {
    kind,
    ramMiB: options.ramMiB ?? 1024,
    cpus: options.cpus ?? 4,
    seed: options.seed ?? 2009,
    dom0MiB: options.dom0MiB ?? 8,
    bootGuests: options.bootGuests ?? true,
    drivers: options.drivers ?? [],
  };
  const split = kind === "xen" && options.drivers === undefined ? splitDevices(options) : null;
  if (split !== null) opts.drivers = splitDriverPairs(split);
  for (const [k, v, lo, hi] of [
    ["ramMiB", opts.ramMiB, 16, 65536],
    ["cpus", opts.cpus, 1, 64],
    ["dom0MiB", opts.dom0MiB, 5, 4096],
  ] as const) {
    if (!(Number.isInteger(v) && v >= lo && v <= hi)) {
      throw libxlError(
        "TOOLSTACK_BAD_OPTION",
        `${k} must be a whole number from ${lo} to ${hi}, got ${v}.`,
      );
    }
  }
  const machine = createMachine({
    ramBytes: opts.ramMiB * 2 ** 20,
    cpus: opts.cpus,
    seed: opts.seed,
  });
  if (kind === "kvm") {
    const hv = createHypervisor({
      machine,
      plugins: [nptMmu({ hostPageSize: "4K" }), schedCredit()],
    }).boot();
    return {
      kind,
      hv,
      options: opts,
      dom0: null,
      loop: null,
      xsd: null,
      dom0Kernel: null,
      consoles: null,
      split: null,
      platform: null,
      domains: new Map(),
      dom0Name: "Domain-0",
      domidRover: 1,
    };
  }
  // The chipset and its two PCI devices, as firmware leaves them (BARs placed); Xen takes
  // over the IO-APIC (apicHooks) and keeps per-domain irq and I/O-memory permissions (iomap).
  const platform = createPlatform(machine);
  new DiskController(platform.pci, { image: new MemoryDiskImage(64) });
  new Nic(platform.pci);
  platform.pci.assignResources();
  const hv = createHypervisor({
    machine,
    plugins: [
      pvMmu(),
      pvCpu(),
      pvGrantMapping(),
      grantTable(),
      evtchn2l(),
      schedCredit(),
      apicHooks({ platform }),
      iomap(),
    ],
  }).boot();
  const dom0Pages = opts.dom0MiB * MiB_PAGES;
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: dom0Pages + 256 });
  buildPvDomain(hv, hv.slot("pv-mmu"), { domain: dom0, nrPages: dom0Pages });
  hv.unpauseDomain(dom0);
  const loop = new UpcallLoop(hv);
  const evtchn = new XenEvtchnGuest({ hv, vcpus: dom0.vcpus, sharedInfoMfn: dom0.sharedInfoMfn });
  evtchn.init();
  loop.register(dom0, evtchn);
  const xsd = new Dom0Xenstored({ hv, dom0, loop, evtchn });
  const dom0Kernel: XenbusKernel = {
    hv,
    domain: dom0,
    client: xsd.xs,
    evtchn,
    kick: () => loop.kick(),
  };
  const consoles = new XenconsBack(dom0Kernel);
  const host: Host = {
    kind,
    hv,
    options: opts,
    dom0,
    loop,
    xsd,
    dom0Kernel,
    consoles,
    split,
    platform,
    domains: new Map(),
    dom0Name: "Domain-0",
    domidRover: 1,
  };
  return host;
}

/**
 * Xen-style: writes dom0's own nodes (/local/domain/0/name = Domain-0, domid, /vm, memory)
 * as xl's init does, and starts dom0's xenbus backends (console, plus `drivers`).
 */
export async function startHostServices(host: Host): Promise<void> {
  if (host.kind !== "xen") return;
  const xs = host.xsd!.xs;
  const d0 = host.dom0!;
  await xs.transaction(async (tx) => {
    await tx.write("/local/domain/0/name", host.dom0Name);
    await tx.write("/local/domain/0/domid", "0");
    await tx.write("/local/domain/0/memory/target", String(d0.totPages * 4));
    await tx.write("/local/domain/0/vm", "/vm/00000000-0000-0000-0000-000000000000");
    await tx.write("/vm/00000000-0000-0000-0000-000000000000/name", host.dom0Name);
  });
  await xenbusRegisterBackend(host.dom0Kernel!, host.consoles!).start();
  for (const p of host.options.drivers) {
    await xenbusRegisterBackend(host.dom0Kernel!, p.backend(host.dom0Kernel!)).start();
  }
}

/** The toolstack's xenstore connection (Xen-style hosts). */
export function hostXs(host: Host): XsClient {
  if (host.xsd === null) {
    throw libxlError(
      "TOOLSTACK_NOT_XEN",
      "This is a KVM-style host: it has no xenstore. Start the host without --kvm for xenstore, consoles and devices.",
    );
  }
  return host.xsd.xs;
}

/** Free machine frames now (Xen's free pages, what `xl info` prints as free_memory). */
export function freePages(hv: Hypervisor): number {
  return hv.machine.frames.nrFreeFrames;
}

/** The record of a domain by id or name (libxl_name_to_domid, then a domid). */
export function findDomain(host: Host, idOrName: string | number): DomainRecord | undefined {
  if (typeof idOrName === "number") return host.domains.get(idOrName);
  if (/^\d+$/.test(idOrName)) {
    const r = host.domains.get(Number(idOrName));
    if (r !== undefined) return r;
  }
  for (const r of host.domains.values()) if (r.name === idOrName) return r;
  return undefined;
}

/** XEN_DOMCTL_createdomain's domid choice: the next free id after the last one given. */
export function nextDomid(host: Host): number {
  const LIMIT = 0x7ff0; // DOMID_FIRST_RESERVED
  for (let i = 0; i < LIMIT; i++) {
    const id = host.domidRover;
    host.domidRover = id + 1 >= LIMIT ? 1 : id + 1;
    if (host.hv.domain(id) === undefined) return id;
  }
  throw libxlError("TOOLSTACK_CREATE_FAILED", "libxl: error: no free domain id");
}

/** Whether `name` is taken (by a guest or by dom0). */
export function nameInUse(host: Host, name: string): boolean {
  if (name === host.dom0Name) return true;
  for (const r of host.domains.values()) if (r.name === name) return true;
  return false;
}

/** Lets queued microtasks and one macrotask turn run (upcalls, in-memory xenstore clients). */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
