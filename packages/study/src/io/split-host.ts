/*
 * A Xen-style host for split-driver I/O: Xen with the PV MMU, grant tables and 2-level event
 * channels, dom0 running xenstored, and domUs booted the way libxl builds them (start_info with
 * the store and console pages and ports, introduced to xenstored). Device directories are
 * written as libxl__device_generic_add and libxl__device_nic_add write them.
 *
 * Invariant: everything the host does follows from `seed` (the machine's PRNG) and the order of
 * calls; upcalls run from one microtask loop, so two hosts driven alike behave byte for byte
 * alike.
 */
import {
  __HYPERVISOR_event_channel_op,
  EVTCHNOP_alloc_unbound,
  start_info_x86_64,
} from "@hyperlab/abi";
import { createHypervisor, type Domain, type Hypervisor, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import { grantTable } from "@hyperlab/grant-table";
import { XenEvtchnGuest } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, pvGrantMapping, pvMmu } from "@hyperlab/pv-mmu";
import {
  GnttabGuest,
  XenbusComms,
  type XenbusKernel,
  type XenbusUpcalls,
} from "@hyperlab/split-drivers";
import { Xenstored, XenstoreRing, XsClient } from "@hyperlab/xenstore";
import { studyError } from "../errors";

const SI = start_info_x86_64.fields;

/** The event loop's upcalls: each running domain whose vCPU 0 has an upcall pending gets it. */
class UpcallLoop implements XenbusUpcalls {
  readonly kernels = new Map<Domain, XenEvtchnGuest>();
  guestOf(d: Domain): XenEvtchnGuest | undefined {
    return this.kernels.get(d);
  }
  register(d: Domain, g: XenEvtchnGuest): void {
    this.kernels.set(d, g);
  }
  kick(): void {
    queueMicrotask(() => {
      for (let more = true; more; ) {
        more = false;
        for (const [d, g] of this.kernels) {
          if (d.state === "running" && g.upcallPending(0)) {
            g.xenEvtchnDoUpcall(0);
            more = true;
          }
        }
      }
    });
  }
}

/** Yields to the event loop until `cond` holds; a run that never gets there is a host error. */
export async function splitHostUntil(
  cond: () => boolean | Promise<boolean>,
  what: string,
  rounds = 4000,
): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (await cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw studyError(
    "STUDY_GUEST_FAILED",
    `The split-driver host did not reach "${what}" after ${rounds} event-loop turns. Report this as a bug with the configuration that ran.`,
  );
}

/** A domU of the host: its domain, its kernel (for drivers) and its grant table client. */
export interface SplitHostDomU {
  domain: Domain;
  kernel: XenbusKernel;
  gnttab: GnttabGuest;
}

export interface SplitHostOptions {
  /** Seed of the machine's PRNG (default 1). */
  seed?: number;
  /** Machine RAM in MiB (default 96). */
  ramMiB?: number;
}

export interface SplitHost {
  hv: Hypervisor;
  dom0: Domain;
  /** dom0's kernel: backends register on it. */
  dom0Kernel: XenbusKernel;
  xs: XsClient;
  /** Builds a domU with 1024 pages (room for 1024 more), introduces it to xenstored. */
  bootDomU(): Promise<SplitHostDomU>;
  /** libxl__device_generic_add: a vbd's front and back directories, state Initialising. */
  addVbd(domid: number, devid: number): Promise<{ fe: string; be: string }>;
  /** libxl__device_nic_add: a vif's directories with mac, handle, bridge, script, type. */
  addVif(domid: number, devid: number, mac: string): Promise<{ fe: string; be: string }>;
  /** A device directory's `state`, or null when there is none. */
  state(path: string): Promise<string | null>;
  /** Waits until both ends of a device are Connected (4). */
  connected(dev: { fe: string; be: string }): Promise<void>;
}

/** Boots the host: Xen, dom0 (1024 pages, room for 1024 more) with xenstored. */
export function xenSplitHost(o: SplitHostOptions = {}): SplitHost {
  const hv = createHypervisor({
    machine: createMachine({ ramBytes: (o.ramMiB ?? 96) << 20, cpus: 2, seed: o.seed ?? 1 }),
    plugins: [pvMmu(), pvGrantMapping(), grantTable(), evtchn2l(), schedCredit()],
  }).boot();
  const loop = new UpcallLoop();
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 2048 });
  buildPvDomain(hv, hv.slot("pv-mmu"), { domain: dom0, nrPages: 1024 });
  hv.unpauseDomain(dom0);
  const dom0Evtchn = new XenEvtchnGuest({
    hv,
    vcpus: dom0.vcpus,
    sharedInfoMfn: dom0.sharedInfoMfn,
  });
  dom0Evtchn.init();
  loop.register(dom0, dom0Evtchn);
  const daemon = new Xenstored({
    mapDomainInterface: ({ domid, gfn, port }) => {
      let irq = -1;
      const ring = new XenstoreRing(hv.machine.ram, gfn, {
        notify: () => {
          dom0Evtchn.notifyRemoteViaIrq(irq);
          loop.kick();
        },
      });
      irq = dom0Evtchn.bindInterdomainEvtchnToIrqHandler(domid, port, () => ring.onEvent());
      return irq < 0 ? null : ring;
    },
  });
  const xs = XsClient.inMemory(daemon);
  const dom0Kernel: XenbusKernel = {
    hv,
    domain: dom0,
    client: xs,
    evtchn: dom0Evtchn,
    kick: () => loop.kick(),
  };

  const bootDomU = async (): Promise<SplitHostDomU> => {
    const domain = hv.createDomain({ maxVcpus: 1, maxPages: 2048 });
    const alloc = () => {
      const a = { cmd: EVTCHNOP_alloc_unbound, dom: domain.domid, remote_dom: 0, port: 0 };
      const rc = hv.hypercall(dom0.vcpus[0]!, __HYPERVISOR_event_channel_op, a);
      if (rc !== 0) {
        throw studyError(
          "STUDY_GUEST_FAILED",
          `EVTCHNOP_alloc_unbound for domU ${domain.domid} failed with ${rc}. Report this as a bug.`,
        );
      }
      return a.port;
    };
    const consolePort = alloc();
    const storePort = alloc();
    const build = buildPvDomain(hv, hv.slot("pv-mmu"), { domain, nrPages: 1024 });
    const consoleMfn = hv.allocDomainPages(domain);
    const storeMfn = hv.allocDomainPages(domain);
    hv.machine.ram.clearFrame(consoleMfn);
    hv.machine.ram.clearFrame(storeMfn);
    const si = build.startInfoMfn * 4096;
    hv.machine.ram.write64n(si + SI.store_mfn.offset, storeMfn);
    hv.machine.ram.write32(si + SI.store_evtchn.offset, storePort);
    hv.machine.ram.write64n(si + SI["console.domU.mfn"]!.offset, consoleMfn);
    hv.machine.ram.write32(si + SI["console.domU.evtchn"]!.offset, consolePort);
    hv.unpauseDomain(domain);
    const h = `/local/domain/${domain.domid}`;
    await xs.mkdir(h);
    await xs.setPerms(h, [`n${domain.domid}`]);
    await xs.introduce(domain.domid, storeMfn, storePort);
    const comms = new XenbusComms({ hv, domain, loop, startInfoMfn: build.startInfoMfn });
    const kernel: XenbusKernel = {
      hv,
      domain,
      client: comms.client,
      evtchn: comms.evtchn,
      kick: () => loop.kick(),
    };
    return { domain, kernel, gnttab: new GnttabGuest(hv, domain, 4) };
  };

  const addDevice = async (
    domid: number,
    type: string,
    devid: number,
    extra: Record<string, string>,
    backExtra: Record<string, string>,
  ) => {
    const fe = `/local/domain/${domid}/device/${type}/${devid}`;
    const be = `/local/domain/0/backend/${type}/${domid}/${devid}`;
    await xs.transaction(async (tx) => {
      await tx.mkdir(fe);
      await tx.setPerms(fe, [`n${domid}`, "r0"]);
      await tx.write(`${fe}/backend`, be);
      await tx.write(`${fe}/backend-id`, "0");
      for (const [k, v] of Object.entries(extra)) await tx.write(`${fe}/${k}`, v);
      await tx.write(`${fe}/state`, "1");
      await tx.mkdir(be);
      await tx.setPerms(be, ["n0", `r${domid}`]);
      await tx.write(`${be}/frontend`, fe);
      await tx.write(`${be}/frontend-id`, String(domid));
      await tx.write(`${be}/online`, "1");
      for (const [k, v] of Object.entries({ ...extra, ...backExtra })) {
        await tx.write(`${be}/${k}`, v);
      }
      await tx.write(`${be}/state`, "1");
    });
    return { fe, be };
  };

  const state = async (path: string) => {
    try {
      return await xs.read(`${path}/state`);
    } catch {
      return null;
    }
  };

  return {
    hv,
    dom0,
    dom0Kernel,
    xs,
    bootDomU,
    addVbd: (domid, devid) => addDevice(domid, "vbd", devid, {}, {}),
    addVif: (domid, devid, mac) =>
      addDevice(
        domid,
        "vif",
        devid,
        { handle: String(devid), mac },
        { script: "/etc/xen/scripts/vif-bridge", bridge: "xenbr0", type: "vif" },
      ),
    state,
    connected: ({ fe, be }) =>
      splitHostUntil(
        async () => (await state(fe)) === "4" && (await state(be)) === "4",
        `${fe} and ${be} Connected`,
      ),
  };
}
