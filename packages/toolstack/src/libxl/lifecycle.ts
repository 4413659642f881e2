/*
 * libxl's lifecycle calls on a created domain (tools/libs/light/libxl_domain.c,
 * libxl_mem.c, libxl_sched.c; xl's death handling in tools/xl/xl_vmcontrol.c
 * handle_domain_death): destroy, pause, unpause, shutdown and reboot through
 * control/shutdown, the on_poweroff/on_reboot/on_crash/on_watchdog actions, mem-set through
 * memory/target, vcpu-pin and scheduler parameters.
 *
 * Invariants: destroyDomainRecord gives back everything create took, in libxl's order
 * (xenconsoled's end, devices, the domU kernel's connection, xenstore nodes, the domain);
 * a shut-down domain's action runs once (`reapShutdowns` marks the record before acting).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  SHUTDOWN_crash,
  SHUTDOWN_poweroff,
  SHUTDOWN_reboot,
  SHUTDOWN_soft_reset,
  SHUTDOWN_suspend,
  SHUTDOWN_watchdog,
} from "@hyperlab/abi";
import { destroyIntroducedDomain } from "../xenstore-domain";
import type { DomainAction } from "./config";
import {
  domainCreate,
  makeUuid,
  pciRemove,
  removeDomainNodes,
  runPendingDecisions,
  setVcpuAffinity,
} from "./create";
import { detachDevice } from "./devices";
import { libxlError } from "./errors";
import { type DomainRecord, type Host, hostXs, settle } from "./host";

/** libxl_domain_destroy: everything the domain holds goes, then the domain. */
export async function destroyDomainRecord(host: Host, r: DomainRecord): Promise<void> {
  if (r.destroying) return;
  r.destroying = true;
  host.domains.delete(r.domid);
  const { hv } = host;
  if (host.kind === "kvm") {
    hv.destroyDomain(r.domain);
    return;
  }
  host.consoles!.detach(r.domid, 0);
  for (const d of [...r.devices]) await detachDevice(host, r, d.type, d.devid, true);
  for (const fn of [...r.pci].reverse()) pciRemove(host, r, fn);
  await r.manage?.stop();
  await r.balloon?.stop();
  r.comms?.close();
  host.loop!.unregister(r.domain);
  await destroyIntroducedDomain(host.xsd!, r.domain);
  await removeDomainNodes(host, r.domid, r.config.uuid);
  await settle();
  host.xsd!.domainCleanup();
}

export function pauseDomain(host: Host, r: DomainRecord): void {
  host.hv.pauseDomain(r.domain);
}

/** libxl_domain_unpause: -EINVAL-like failure when the domain is not paused (xl prints it). */
export function unpauseDomain(host: Host, r: DomainRecord): boolean {
  if (r.domain.pauseCount === 0) return false;
  host.hv.unpauseDomain(r.domain);
  return true;
}

export type ShutdownRequest = "poweroff" | "reboot" | "suspend" | "crash";

/**
 * libxl_domain_shutdown / _reboot for a PV guest: writes the request to control/shutdown,
 * which the guest's watcher (split-drivers' xenManage) acts on with SCHEDOP_shutdown.
 * Without a guest kernel that watches (no feature-poweroff), libxl answers as xl prints:
 * "PV control interface not available".
 */
export async function requestShutdown(
  host: Host,
  r: DomainRecord,
  req: ShutdownRequest,
): Promise<void> {
  const xs = hostXs(host);
  const home = `/local/domain/${r.domid}`;
  let feature = "";
  try {
    feature = await xs.read(`${home}/control/feature-${req === "crash" ? "poweroff" : req}`);
  } catch {
    feature = "";
  }
  if (feature !== "1") {
    throw libxlError(
      "TOOLSTACK_CREATE_FAILED",
      `libxl: error: libxl_domain.c: Domain ${r.domid}:PV control interface not available`,
    );
  }
  await xs.write(`${home}/control/shutdown`, req);
}

/** Waits (by letting the guest run) until the domain has shut down or is gone; false on timeout. */
export async function waitShutdown(_host: Host, r: DomainRecord, rounds = 2000): Promise<boolean> {
  for (let i = 0; i < rounds; i++) {
    if (r.domain.state === "shutdown" || r.domain.state === "dying" || r.domain.state === "dead")
      return true;
    await settle();
  }
  return false;
}

/** The action xl.cfg(5) gives a shutdown reason. */
export function actionFor(r: DomainRecord, reason: number): DomainAction | null {
  const c = r.config;
  switch (reason) {
    case SHUTDOWN_poweroff:
      return c.onPoweroff;
    case SHUTDOWN_reboot:
      return c.onReboot;
    case SHUTDOWN_crash:
      return c.onCrash;
    case SHUTDOWN_watchdog:
      return c.onWatchdog;
    case SHUTDOWN_soft_reset:
      return "soft-reset";
    case SHUTDOWN_suspend:
      return null; // a save in progress owns it
    default:
      return c.onPoweroff;
  }
}

export interface ReapEvent {
  domid: number;
  name: string;
  reason: number;
  action: DomainAction;
  /** The new domain's id after a restart. */
  newDomid?: number;
  /** The core file written by coredump-*. */
  core?: string;
}

/** Where coredump-* actions write (xl: /var/lib/xen/dump); the daemon sets its run dir. */
export const coreDump = { dir: "" };

/** Writes a domain's memory, pfn by pfn, to DIR/NAME (xl: XEN_DUMP_DIR/NAME; raw pages, without libxc's ELF headers). */
export function dumpCore(host: Host, r: DomainRecord, dir: string): string {
  const path = join(dir, r.name);
  const p2m = r.kernel?.xen?.p2m ?? r.build?.p2m;
  const n = p2m?.length ?? 0;
  const out = new Uint8Array(n * 4096);
  for (let pfn = 0; pfn < n; pfn++) {
    const mfn = p2m![pfn]!;
    if (host.hv.frames.validMfn(mfn) && host.hv.frames.ownedBy(mfn, r.domid)) {
      out.set(host.hv.machine.ram.frameBytes(mfn), pfn * 4096);
    }
  }
  writeFileSync(path, out);
  return path;
}

/**
 * xl's handle_domain_death for every domain that has shut down and not been handled:
 * destroy, restart (same config, new domid), rename-restart (the old one preserved as
 * NAME-%Y%m%dT%H%MZ with a new uuid), preserve (left shut down), coredump-destroy,
 * coredump-restart, soft-reset (modelled as restart; see README).
 */
export async function reapShutdowns(host: Host): Promise<ReapEvent[]> {
  const events: ReapEvent[] = [];
  for (const r of [...host.domains.values()]) {
    const d = r.domain;
    if (d.state !== "shutdown" || r.destroying || (r as { reaped?: boolean }).reaped) continue;
    const reason = d.shutdownCode;
    const action = actionFor(r, reason);
    if (action === null) continue;
    (r as { reaped?: boolean }).reaped = true;
    const ev: ReapEvent = { domid: r.domid, name: r.name, reason, action };
    if (action === "preserve") {
      events.push(ev);
      continue;
    }
    if (action.startsWith("coredump")) ev.core = dumpCore(host, r, coreDump.dir || ".");
    if (action === "rename-restart") {
      // xl's preserve_domain: the old domain keeps its memory under NAME-%Y%m%dT%H%MZ with a
      // new uuid (libxl_domain_preserve); a new one starts under the original name.
      const c = r.config;
      await renameDomain(host, r, `${c.name}${preserveSuffix(host.hv.machine.clock.now)}`);
      r.config = { ...c, name: r.name, uuid: makeUuid(host) };
      const again = await domainCreate(host, c);
      ev.newDomid = again.domid;
      events.push(ev);
      continue;
    }
    await destroyDomainRecord(host, r);
    if (action === "restart" || action === "coredump-restart" || action === "soft-reset") {
      const again = await domainCreate(host, r.config);
      ev.newDomid = again.domid;
    }
    events.push(ev);
  }
  return events;
}

/** strftime("-%Y%m%dT%H%MZ") of the host's virtual clock (ns since the epoch it starts at, 1970). */
export function preserveSuffix(nowNs: number): string {
  const d = new Date(Math.floor(nowNs / 1e6));
  const p = (n: number) => String(n).padStart(2, "0");
  return `-${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}T${p(d.getUTCHours())}${p(d.getUTCMinutes())}Z`;
}

/** libxl_domain_rename: /local/domain/N/name and /vm/UUID/name. */
export async function renameDomain(host: Host, r: DomainRecord, name: string): Promise<void> {
  for (const o of host.domains.values()) {
    if (o !== r && o.name === name) {
      throw libxlError(
        "TOOLSTACK_NAME_IN_USE",
        `libxl: error: libxl_domain.c: domain with name "${name}" already exists.`,
      );
    }
  }
  r.name = name;
  if (host.kind === "xen") {
    const xs = hostXs(host);
    await xs.write(`/local/domain/${r.domid}/name`, name);
  }
}

/**
 * libxl_set_memory_target (enforce, as xl mem-set): memory/target in KiB and max_pages =
 * target + LIBXL_MAXMEM_CONSTANT; the guest's balloon driver moves its pages toward it.
 */
export async function memSet(host: Host, r: DomainRecord, targetKb: number): Promise<void> {
  const staticMax = r.config.maxMemkb;
  if (targetKb > staticMax) {
    throw libxlError(
      "TOOLSTACK_BAD_ARGUMENT",
      `libxl: error: libxl_mem.c: memory_dynamic_max must be less than or equal to memory_static_max`,
    );
  }
  const xs = hostXs(host);
  await xs.write(`/local/domain/${r.domid}/memory/target`, String(targetKb));
  r.targetPages = Math.ceil(targetKb / 4);
  r.domain.maxPages = Math.max(r.domain.totPages, Math.ceil((targetKb + 1024) / 4) + 4);
}

/**
 * libxl_set_vcpuaffinity: the hard and soft masks of one vCPU, or of all with vcpu = -1
 * (`null`: that mask unchanged). The scheduler enforces the hard mask from its next decision.
 */
export function vcpuPin(
  host: Host,
  r: DomainRecord,
  vcpu: number,
  hard: readonly number[] | null,
  soft: readonly number[] | null = null,
): void {
  const n = r.domain.vcpus.length;
  if (vcpu >= n) {
    throw libxlError(
      "TOOLSTACK_BAD_ARGUMENT",
      `libxl: error: vcpu ${vcpu} of domain ${r.domid} does not exist`,
    );
  }
  const cpus = host.hv.machine.cpus.length;
  const mask = hard === null ? null : hard.filter((c) => c < cpus);
  if (mask !== null && mask.length === 0) {
    throw libxlError("TOOLSTACK_BAD_ARGUMENT", "libxl: error: no valid cpu in the affinity mask");
  }
  const which = vcpu < 0 ? [...Array(n).keys()] : [vcpu];
  for (const v of which) {
    setVcpuAffinity(host, r, v, mask, soft);
    if (mask !== null) r.hardAffinity[v] = [...mask];
  }
  runPendingDecisions(host);
}

/** libxl_domain_sched_params_set for credit: weight 1..65535, cap 0..(100 * vCPUs). */
export function schedCreditSet(
  host: Host,
  r: DomainRecord,
  p: { weight?: number; cap?: number },
): void {
  try {
    host.hv.slot("sched").setParams(r.domain, p);
  } catch (e) {
    throw libxlError(
      "TOOLSTACK_BAD_ARGUMENT",
      `libxl: error: libxl_sched.c: setting domain sched credit: ${(e as Error).message}`,
    );
  }
}
