/*
 * libxl_domain_create_new for a PV guest (tools/libs/light/libxl_create.c, libxl_dom.c,
 * libxl_console.c, libxl_device.c; xl's freemem in tools/xl/xl_vmcontrol.c), in libxl's
 * order: check the name, claim the memory, load the kernel, make the domain (paused), build
 * it (PV builder), give it its console page and port, introduce it to xenstore with its home,
 * write libxl's nodes (/local/domain/N/{vm,memory,cpu,console}, /vm/UUID, /libxl/N), add its
 * disks and vifs, set scheduling parameters and affinity, unpause it, boot its kernel.
 *
 * Invariant (libxl's "one cleanup path"): every step that takes something pushes how to give
 * it back; a failure at any step runs those in reverse, so a failed create leaves no frame,
 * event channel, grant, xenstore node or record behind (test/libxl-create.test.ts injects a
 * failure at every step and checks all five).
 */
import { readFileSync } from "node:fs";
import {
  __HYPERVISOR_event_channel_op,
  EVTCHNOP_alloc_unbound,
  start_info_x86_64,
} from "@hyperlab/abi";
import { type Domain, HyperlabError, pciPassthroughPermission } from "@hyperlab/core";
import { bootNativeKernel, bootXenPvKernel, xenCpuUp } from "@hyperlab/guest";
import { type PciFunction, pciBdf } from "@hyperlab/machine";
import { buildPvDomain } from "@hyperlab/pv-mmu";
import {
  GnttabGuest,
  XenbusComms,
  type XenbusKernel,
  XenconsFrontDriver,
  xenBalloon,
  xenbusRegisterFrontend,
  xenconsConsole0,
  xenManage,
} from "@hyperlab/split-drivers";
import type { XsOps } from "@hyperlab/xenstore";
import { xsPathCleanup } from "../devices";
import { introduceDomainToXenstore } from "../xenstore-domain";
import { type DomainConfig, type PciConfig, pciConfigName } from "./config";
import { attachDevice, diskDevice, nicDevice } from "./devices";
import { libxlError } from "./errors";
import { type DomainRecord, freePages, type Host, hostXs, nameInUse, nextDomid } from "./host";
import { xenPreSuspend } from "./suspend";

/** The steps of a create, in order; a fault can be injected at each (tests). */
export const CREATE_STEPS = [
  "name",
  "memory",
  "kernel",
  "domain",
  "build",
  "console",
  "store",
  "xenstore",
  "devices",
  "pci",
  "sched",
  "unpause",
  "boot",
] as const;
export type CreateStep = (typeof CREATE_STEPS)[number];

export interface CreateOptions {
  /** Fail at this step, as if it failed (tests of the cleanup path). */
  fault?: (step: CreateStep) => boolean;
  /** Use this domid (restore keeps none; tests may pin one). */
  domid?: number;
  /** Skip the kernel file and the builder (restore builds its memory from the save file). */
  noBuild?: boolean;
  /** Restore: fills the new domain's memory instead of the builder (sets r.build). */
  populate?: (r: DomainRecord) => void;
  /** Restore: hands a running kernel over instead of booting one. */
  adopt?: (r: DomainRecord, undo: (() => Promise<void> | void)[]) => Promise<void>;
}

/** Grant frames a domU kernel sets up: 2048 refs, room for blkfront's pool and netfront's rings. */
export const GUEST_GRANT_FRAMES = 4;

/** LIBXL_MAXMEM_CONSTANT: the slack libxl adds to max_memkb for the builder's extra pages. */
export const LIBXL_MAXMEM_CONSTANT_KB = 1024;

/** The smallest guest this builder can make (its bootstrap region is 4 MiB). */
export const MIN_GUEST_MEMKB = 5 * 1024;

function injected(step: CreateStep): Error {
  return libxlError(
    "TOOLSTACK_CREATE_FAILED",
    `libxl: error: domain create failed at ${step} (injected)`,
  );
}

/** xc_dom_find_loader: the kernel must be a 64-bit ELF image. */
export function loadKernel(path: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "EIO";
    throw libxlError(
      "TOOLSTACK_BAD_KERNEL",
      `libxl: error: libxl_dom.c: xc_dom_kernel_file failed: ${path}: ${code}`,
    );
  }
  const elf =
    bytes.length >= 16 &&
    bytes[0] === 0x7f &&
    bytes[1] === 0x45 &&
    bytes[2] === 0x4c &&
    bytes[3] === 0x46;
  if (!elf || bytes[4] !== 2) {
    throw libxlError(
      "TOOLSTACK_BAD_KERNEL",
      `xc: error: panic: xc_dom_core.c: xc_dom_find_loader: no loader found: Invalid kernel (${path} is not a 64-bit ELF image)`,
    );
  }
  return bytes;
}

/**
 * libxl__device_pci_add's permission half (do_pci_add): the host function must exist (libxl
 * checks it is assignable, i.e. bound to pciback; this model has no pciback, so every function
 * of the host's bus not yet assigned to a domain is assignable), then the domain gets its irq and BAR frames; the undo
 * takes them back. The guest's pcifront connection is not modelled.
 */
function pciAdd(
  host: Host,
  r: DomainRecord,
  p: PciConfig,
  undo: (() => Promise<void> | void)[],
): void {
  const fn = hostPciFunction(host, p);
  // libxl_device_pci_assignable_list leaves out functions already assigned to a domain.
  let assigned = fn !== undefined && r.pci.includes(fn);
  for (const o of host.domains.values())
    if (fn !== undefined && o.pci.includes(fn)) assigned = true;
  if (fn === undefined || assigned) {
    throw libxlError(
      "TOOLSTACK_CREATE_FAILED",
      `libxl: error: libxl_pci.c: Domain ${r.domid}:PCI device ${pciConfigName(p)} is not assignable`,
    );
  }
  pciPassthroughPermission(host.hv, r.domain, fn, true);
  r.pci.push(fn);
  undo.push(() => pciRemove(host, r, fn));
}

/** do_pci_remove's permission half: the irq and BAR frames go back (no-op once the domain is dead). */
export function pciRemove(host: Host, r: DomainRecord, fn: PciFunction): void {
  const i = r.pci.indexOf(fn);
  if (i < 0) return;
  r.pci.splice(i, 1);
  const d = r.domain;
  if (host.hv.domain(d.domid) === d && d.state !== "dead" && d.state !== "dying")
    pciPassthroughPermission(host.hv, d, fn, false);
}

/** The host's PCI function at a `pci=` BDF (segment 0 only), or undefined. */
export function hostPciFunction(host: Host, p: PciConfig): PciFunction | undefined {
  if (host.platform === null || p.domain !== 0) return undefined;
  return host.platform.pci.get(pciBdf(p.bus, p.dev, p.func));
}

/** What libxl writes under /local/domain/N, /vm/UUID and /libxl/N at create. */
async function writeDomainNodes(
  tx: XsOps,
  host: Host,
  r: DomainRecord,
  consoleMfn: number,
  consolePort: number,
) {
  const c = r.config;
  const home = `/local/domain/${r.domid}`;
  const vm = `/vm/${c.uuid}`;
  await tx.write(`${home}/vm`, vm);
  await tx.write(`${home}/memory/static-max`, String(c.maxMemkb));
  await tx.write(`${home}/memory/target`, String(c.targetMemkb));
  await tx.write(`${home}/memory/videoram`, "-1");
  for (let i = 0; i < c.maxVcpus; i++) {
    await tx.write(`${home}/cpu/${i}/availability`, i < c.vcpus ? "online" : "offline");
  }
  await tx.write(`${home}/console/ring-ref`, String(consoleMfn));
  await tx.write(`${home}/console/port`, String(consolePort));
  await tx.write(`${home}/console/limit`, "1048576");
  await tx.write(`${home}/console/type`, "xenconsoled");
  await tx.write(`${home}/console/output`, "pty");
  await tx.write(`${home}/console/tty`, "");
  await tx.write(`${home}/image/os_type`, "linux");
  await tx.write(`${vm}/uuid`, c.uuid);
  await tx.write(`${vm}/name`, c.name);
  await tx.write(`${vm}/start_time`, (host.hv.machine.clock.now / 1e9).toFixed(2));
  await tx.write(`/libxl/${r.domid}/type`, "pv");
  await tx.write(`/libxl/${r.domid}/dm-version`, "qemu_xen");
}

/** Removes what writeDomainNodes and the introduce wrote. */
export async function removeDomainNodes(host: Host, domid: number, uuid: string): Promise<void> {
  const xs = hostXs(host);
  await xs.transaction(async (tx) => {
    for (const p of [`/local/domain/${domid}`, `/vm/${uuid}`, `/libxl/${domid}`])
      await xsPathCleanup(tx, p);
  });
}

/** Frames a config needs: memory plus the builder's slack (libxl's max_memkb + constant). */
export function pagesFor(c: DomainConfig): { nrPages: number; maxPages: number } {
  return {
    nrPages: Math.ceil(c.targetMemkb / 4),
    maxPages: Math.ceil((c.maxMemkb + LIBXL_MAXMEM_CONSTANT_KB) / 4),
  };
}

/**
 * Creates and starts a domain from a config. Resolves to its record; rejects with a typed
 * HyperlabError (message as libxl/xl print it) after undoing every step taken.
 */
export async function domainCreate(
  host: Host,
  config: DomainConfig,
  options: CreateOptions = {},
): Promise<DomainRecord> {
  const undo: (() => Promise<void> | void)[] = [];
  const step = (s: CreateStep) => {
    if (options.fault?.(s) === true) throw injected(s);
  };
  const { hv } = host;
  if (config.uuid === "") config = { ...config, uuid: makeUuid(host) };
  try {
    step("name");
    if (config.name === "" || nameInUse(host, config.name)) {
      throw libxlError(
        "TOOLSTACK_NAME_IN_USE",
        `libxl: error: libxl_domain.c: domain with name "${config.name}" already exists.`,
      );
    }
    step("memory");
    const { nrPages, maxPages } = pagesFor(config);
    if (config.targetMemkb < MIN_GUEST_MEMKB) {
      throw libxlError(
        "TOOLSTACK_NO_MEMORY",
        `libxl: error: memory=${config.targetMemkb / 1024} MiB is below the ${MIN_GUEST_MEMKB / 1024} MiB this PV builder needs; set memory to at least ${MIN_GUEST_MEMKB / 1024}.`,
      );
    }
    if (nrPages + 8 > freePages(hv))
      throw libxlError("TOOLSTACK_NO_MEMORY", "failed to free memory for the domain");
    step("kernel");
    let image: Uint8Array | undefined;
    if (host.kind === "xen" && options.noBuild !== true && options.populate === undefined) {
      if (config.kernel === undefined) {
        throw libxlError("TOOLSTACK_BAD_KERNEL", "Neither kernel nor bootloader specified");
      }
      image = loadKernel(config.kernel);
      if (config.ramdisk !== undefined) loadRamdisk(config.ramdisk);
    }
    step("domain");
    const domain: Domain = hv.createDomain({
      domid: options.domid ?? nextDomid(host),
      maxVcpus: config.maxVcpus,
      maxPages,
    });
    const domid = domain.domid;
    undo.push(() => hv.destroyDomain(domain));
    const r: DomainRecord = {
      domid,
      name: config.name,
      config,
      domain,
      build: null,
      kernel: null,
      comms: null,
      xenbus: null,
      console0: null,
      manage: null,
      balloon: null,
      stream: null,
      devices: [],
      gnttab: null,
      frontends: new Map(),
      pci: [],
      hardAffinity: config.hardAffinity.map((m) => [...m]),
      targetPages: nrPages,
      startNs: hv.machine.clock.now,
      destroying: false,
    };
    if (host.kind === "kvm") {
      step("build");
      step("pci");
      for (const p of config.pcidevs) pciAdd(host, r, p, undo);
      step("sched");
      applySched(host, r);
      step("unpause");
      hv.unpauseDomain(domain);
      undo.push(() => {
        if (domain.pauseCount === 0) hv.pauseDomain(domain);
      });
      step("boot");
      if (host.options.bootGuests) r.kernel = bootNativeKernel(hv, domain, { nrPages });
      host.domains.set(domid, r);
      return r;
    }
    if (options.populate !== undefined) {
      step("build");
      options.populate(r);
    } else if (options.noBuild !== true) {
      step("build");
      r.build = buildPvDomain(hv, hv.slot("pv-mmu"), {
        domain,
        nrPages,
        kernel: image,
        cmdline: config.cmdline,
      });
    }
    step("console");
    const dom0 = host.dom0!;
    const consoleMfn = hv.allocDomainPages(domain);
    if (consoleMfn < 0)
      throw libxlError("TOOLSTACK_NO_MEMORY", "failed to free memory for the domain");
    hv.machine.ram.clearFrame(consoleMfn);
    const a = { cmd: EVTCHNOP_alloc_unbound, dom: domid, remote_dom: dom0.domid, port: 0 };
    const rc = hv.hypercall(dom0.vcpus[0]!, __HYPERVISOR_event_channel_op, a);
    if (rc < 0)
      throw libxlError("TOOLSTACK_CREATE_FAILED", `libxl: error: console event channel: ${rc}`);
    const consolePort = a.port;
    if (r.build !== null) {
      const si = r.build.startInfoMfn * 4096;
      const f = start_info_x86_64.fields;
      hv.machine.ram.write64n(si + f["console.domU.mfn"]!.offset, consoleMfn);
      hv.machine.ram.write32(si + f["console.domU.evtchn"]!.offset, consolePort);
    }
    step("store");
    const xs = hostXs(host);
    await introduceDomainToXenstore(host.xsd!, {
      domain,
      startInfoMfn: r.build?.startInfoMfn,
      name: config.name,
    });
    undo.push(async () => {
      await removeDomainNodes(host, domid, config.uuid);
      try {
        await xs.release(domid);
      } catch {
        // Already released.
      }
    });
    step("xenstore");
    await xs.transaction(async (tx) => {
      await writeDomainNodes(tx, host, r, consoleMfn, consolePort);
      step("xenstore");
    });
    step("devices");
    for (const d of config.disks) await attachDevice(host, r, diskDevice(r, d), undo);
    for (const n of config.nics) await attachDevice(host, r, nicDevice(r, n), undo);
    step("pci");
    for (const p of config.pcidevs) pciAdd(host, r, p, undo);
    step("sched");
    applySched(host, r);
    // xenconsoled notices the new domain and maps console 0.
    const stream = await host.consoles!.attachConsole0(domid);
    if (typeof stream === "number") {
      throw libxlError(
        "TOOLSTACK_CREATE_FAILED",
        `xenconsoled could not attach domain ${domid}'s console (${stream}).`,
      );
    }
    r.stream = stream;
    undo.push(() => host.consoles!.detach(domid, 0));
    step("unpause");
    hv.unpauseDomain(domain);
    step("boot");
    if (options.adopt !== undefined) await options.adopt(r, undo);
    else if (host.options.bootGuests && r.build !== null && options.populate === undefined)
      await bootGuest(host, r, undo);
    host.domains.set(domid, r);
    runPendingDecisions(host);
    return r;
  } catch (e) {
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch {
        // Keep undoing: each step gives back what it took, whatever the others do.
      }
    }
    if (host.loop !== null) {
      host.loop.kick();
      host.xsd?.domainCleanup();
    }
    if (e instanceof HyperlabError) throw e;
    throw libxlError(
      "TOOLSTACK_CREATE_FAILED",
      `libxl: error: domain create failed: ${(e as Error).message}`,
    );
  }
}

const uuidPrng = new WeakMap<Host, ReturnType<Host["hv"]["machine"]["prng"]["fork"]>>();

/** libxl_uuid_generate, from the machine's seeded PRNG (deterministic runs), RFC 4122 version 4. */
export function makeUuid(host: Host): string {
  let prng = uuidPrng.get(host);
  if (prng === undefined) {
    prng = host.hv.machine.prng.fork("libxl-uuid");
    uuidPrng.set(host, prng);
  }
  const b: number[] = [];
  for (let i = 0; i < 16; i++) b.push(prng.nextInt(256));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function loadRamdisk(path: string): void {
  try {
    readFileSync(path);
  } catch (e) {
    throw libxlError(
      "TOOLSTACK_BAD_KERNEL",
      `libxl: error: libxl_dom.c: xc_dom_module_file failed: ${path}: ${(e as NodeJS.ErrnoException).code ?? "EIO"}`,
    );
  }
}

/** sched_params (cpu_weight, cap) and cpus= (hard affinity) as libxl__sched_set_params does. */
export function applySched(host: Host, r: DomainRecord): void {
  const sched = host.hv.slot("sched");
  const p: { weight?: number; cap?: number } = {};
  if (r.config.weight !== undefined) p.weight = r.config.weight;
  if (r.config.cap !== undefined) p.cap = r.config.cap;
  if (p.weight !== undefined || p.cap !== undefined) {
    try {
      sched.setParams(r.domain, p);
    } catch (e) {
      throw libxlError(
        "TOOLSTACK_BAD_ARGUMENT",
        `libxl: error: setting scheduler parameters: ${(e as Error).message}`,
      );
    }
  }
  // libxl__build_pre: libxl_set_vcpuaffinity for each vCPU the config lists (xl lists every
  // vCPU for `cpus="..."`, one per entry for `cpus=[...]`); the rest keep every pCPU.
  for (let v = 0; v < r.domain.vcpus.length; v++) {
    const m = r.hardAffinity[v];
    if (m !== undefined) setVcpuAffinity(host, r, v, m, null);
  }
}

/**
 * Lets the scheduler make the decisions already due (its softirqs at the current virtual
 * time; no time passes), so vCPUs just woken, brought up or pinned elsewhere take their pCPUs.
 */
export function runPendingDecisions(host: Host): void {
  const clock = host.hv.machine.clock;
  clock.runUntil(clock.now);
}

/**
 * libxl_set_vcpuaffinity: XEN_DOMCTL_setvcpuaffinity through the scheduler, which enforces
 * the hard mask. A mask with no pCPU of this host fails as Xen's -EINVAL does in libxl.
 */
export function setVcpuAffinity(
  host: Host,
  r: DomainRecord,
  vcpu: number,
  hard: readonly number[] | null,
  soft: readonly number[] | null,
): void {
  const v = r.domain.vcpus[vcpu];
  if (v === undefined) return;
  const rc = host.hv.slot("sched").setAffinity(v, hard, soft);
  if (rc < 0) {
    throw libxlError(
      "TOOLSTACK_BAD_ARGUMENT",
      `libxl: error: libxl_sched.c: Domain ${r.domid}:Setting vcpu affinity: Invalid argument`,
    );
  }
}

/**
 * The domU's kernel: the guest kernel on the builder's start_info, then its xenbus over its
 * store ring, console 0, the shutdown watcher and its frontends (connectGuest).
 */
async function bootGuest(
  host: Host,
  r: DomainRecord,
  undo: (() => Promise<void> | void)[],
): Promise<void> {
  const build = r.build!;
  // The kernel first (xen_start_kernel), with interrupts off.
  r.kernel = bootXenPvKernel(host.hv, r.domain, { startInfoVa: build.rsi, batching: true });
  await connectGuest(host, r, undo);
  r.console0!.write(`Linux version 6.1.0-hyperlab (${r.config.name}) #1 SMP PREEMPT_DYNAMIC\n`);
  r.console0!.write(`Command line: ${r.config.cmdline}\n`);
  bringUpSecondaryCpus(r);
}

/**
 * smp_init on Xen PV: every vCPU the toolstack marked online (`cpu/N/availability`, N below
 * `vcpus`) comes up as xen_pv_cpu_up brings it (its vcpu_info registered, VCPUOP_initialise,
 * its IPIs bound, VCPUOP_up), then takes events. A vCPU that fails stays offline and the
 * kernel says so on its console, as Linux does and boots on.
 */
export function bringUpSecondaryCpus(r: DomainRecord): void {
  const k = r.kernel!;
  const want = Math.min(r.config.vcpus, r.domain.vcpus.length);
  if (want <= 1) return;
  r.console0!.write("smp: Bringing up secondary CPUs ...\n");
  let up = 1;
  for (let cpu = 1; cpu < want; cpu++) {
    const rc = xenCpuUp(k, cpu);
    if (rc < 0) {
      r.console0!.write(`smp: CPU${cpu} failed to come online (${rc})\n`);
      continue;
    }
    k.events?.enableUpcalls(cpu);
    up++;
  }
  r.console0!.write(`smp: Brought up 1 node, ${up} CPUs\n`);
}

/**
 * A running guest kernel's connections: its event channels join the upcall loop, interrupts
 * go on (local_irq_enable), xenbus over the store ring, console 0 (echoing input, as a getty's
 * tty does), the shutdown watcher (with Linux's suspend hooks) and the frontends.
 */
export async function connectGuest(
  host: Host,
  r: DomainRecord,
  undo: (() => Promise<void> | void)[],
  ballooned: readonly number[] = [],
): Promise<void> {
  const { hv } = host;
  const k = r.kernel!;
  const build = r.build!;
  const events = k.events!;
  host.loop!.register(r.domain, events);
  undo.push(() => host.loop!.unregister(r.domain));
  events.enableUpcalls(0);
  const comms = new XenbusComms({
    hv,
    domain: r.domain,
    loop: host.loop!,
    evtchn: events,
    startInfoMfn: build.startInfoMfn,
  });
  r.comms = comms;
  undo.push(() => comms.close());
  const kernel: XenbusKernel = {
    hv,
    domain: r.domain,
    client: comms.client,
    evtchn: events,
    kick: () => host.loop!.kick(),
  };
  r.xenbus = kernel;
  r.console0 = xenconsConsole0(kernel, build.startInfoMfn);
  r.console0.onInput((b) => r.console0?.write(b));
  r.manage = await xenManage(kernel, { onSuspend: () => xenPreSuspend(r) });
  r.balloon = await xenBalloon(kernel, k, { ballooned });
  // gnttab_init: one grant table for all the kernel's frontends (each hands out refs from it).
  const gnttab = new GnttabGuest(hv, r.domain, GUEST_GRANT_FRAMES);
  r.gnttab = gnttab;
  await xenbusRegisterFrontend(kernel, new XenconsFrontDriver(kernel, gnttab)).start();
  r.frontends.clear();
  for (const p of host.options.drivers) {
    const drv = p.frontend(kernel, gnttab);
    r.frontends.set(p.type, drv);
    await xenbusRegisterFrontend(kernel, drv).start();
  }
}
