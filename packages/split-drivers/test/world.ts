// Shared set-up for the xenbus device and console tests: dom0 with xenstored, a domU with a
// store connection (as test/xenbus.test.ts wires them), grant tables, and libxl's device
// directories written the way libxl__device_generic_add writes them.
import {
  __HYPERVISOR_event_channel_op,
  EVTCHNOP_alloc_unbound,
  start_info_x86_64,
} from "@hyperlab/abi";
import { createHypervisor, type Domain, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import { grantTable } from "@hyperlab/grant-table";
import { XenEvtchnGuest } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, type PvBuildResult, pvGrantMapping, pvMmu } from "@hyperlab/pv-mmu";
import { Xenstored, XenstoreRing, XsClient } from "@hyperlab/xenstore";
import { XenbusComms, type XenbusKernel, type XenbusUpcalls } from "../src/index";

const SI = start_info_x86_64.fields;

export class Upcalls implements XenbusUpcalls {
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

/** Waits (by yielding to the event loop) until `cond` holds; fails after `rounds` turns. */
export async function until(cond: () => boolean | Promise<boolean>, rounds = 4000): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (await cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`condition not reached after ${rounds} rounds: ${cond.toString()}`);
}

export interface DomU {
  domain: Domain;
  build: PvBuildResult;
  kernel: XenbusKernel;
  comms: XenbusComms;
  consoleMfn: number;
  consolePort: number;
}

export function world() {
  const hv = createHypervisor({
    machine: createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 5 }),
    plugins: [pvMmu(), pvGrantMapping(), grantTable(), evtchn2l(), schedCredit()],
  }).boot();
  const loop = new Upcalls();
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 1200 });
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

  /** The toolstack's part: build a domU with a console page and port, introduce it. */
  const bootDomU = async (): Promise<DomU> => {
    const domain = hv.createDomain({ maxVcpus: 1, maxPages: 1200 });
    const alloc = (remote: number) => {
      const a = { cmd: EVTCHNOP_alloc_unbound, dom: domain.domid, remote_dom: remote, port: 0 };
      if (hv.hypercall(dom0.vcpus[0]!, __HYPERVISOR_event_channel_op, a) !== 0) throw new Error();
      return a.port;
    };
    const consolePort = alloc(0);
    const storePort = alloc(0);
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
    await xs.write(`${h}/console/ring-ref`, String(consoleMfn));
    await xs.write(`${h}/console/port`, String(consolePort));
    await xs.write(`${h}/console/type`, "xenconsoled");
    await xs.introduce(domain.domid, storeMfn, storePort);
    const comms = new XenbusComms({ hv, domain, loop, startInfoMfn: build.startInfoMfn });
    const kernel: XenbusKernel = {
      hv,
      domain,
      client: comms.client,
      evtchn: comms.evtchn,
      kick: () => loop.kick(),
    };
    return { domain, build, kernel, comms, consoleMfn, consolePort };
  };

  /** libxl__device_generic_add: both directories with state 1, in one transaction. */
  const addDevice = async (
    domid: number,
    type: string,
    devid: number,
    backendKeys: Record<string, string> = {},
  ) => {
    const fe = `/local/domain/${domid}/device/${type}/${devid}`;
    const be = `/local/domain/0/backend/${type}/${domid}/${devid}`;
    await xs.transaction(async (tx) => {
      await tx.mkdir(fe);
      await tx.setPerms(fe, [`n${domid}`, "r0"]);
      await tx.write(`${fe}/backend`, be);
      await tx.write(`${fe}/backend-id`, "0");
      await tx.write(`${fe}/state`, "1");
      await tx.mkdir(be);
      await tx.setPerms(be, ["n0", `r${domid}`]);
      await tx.write(`${be}/frontend`, fe);
      await tx.write(`${be}/frontend-id`, String(domid));
      await tx.write(`${be}/online`, "1");
      await tx.write(`${be}/state`, "1");
      for (const [k, v] of Object.entries(backendKeys)) await tx.write(`${be}/${k}`, v);
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

  return { hv, loop, dom0, dom0Kernel, xs, daemon, bootDomU, addDevice, state };
}
