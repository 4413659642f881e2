// XenbusComms, a domain kernel's xenstore connection, against a xenstored in dom0 wired by hand
// (the toolstack's Dom0Xenstored is tested end to end in the toolstack package).
import {
  __HYPERVISOR_event_channel_op,
  EVTCHNOP_alloc_unbound,
  EVTCHNSTAT_closed,
  EVTCHNSTAT_interdomain,
  start_info_x86_64,
  XENSTORE_ERROR_NONE,
} from "@hyperlab/abi";
import { createHypervisor, type Domain, schedCredit } from "@hyperlab/core";
import { evtchn2l, evtchnFifo } from "@hyperlab/evtchn";
import { XenEvtchnGuest } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, type PvBuildResult, pvMmu } from "@hyperlab/pv-mmu";
import { Xenstored, XenstoreRing, XsClient } from "@hyperlab/xenstore";
import { describe, expect, it } from "vitest";
import { XenbusComms, XenbusError, type XenbusUpcalls } from "../src/index";

type Abi = "2-level" | "fifo";
const SI = start_info_x86_64.fields;

/** Delivers every registered kernel's pending upcalls on a microtask after a kick. */
class Upcalls implements XenbusUpcalls {
  readonly kernels = new Map<Domain, XenEvtchnGuest>();
  kicks = 0;
  guestOf(d: Domain): XenEvtchnGuest | undefined {
    return this.kernels.get(d);
  }
  register(d: Domain, g: XenEvtchnGuest): void {
    this.kernels.set(d, g);
  }
  kick(): void {
    this.kicks++;
    queueMicrotask(() => {
      for (let more = true; more; ) {
        more = false;
        for (const [d, g] of this.kernels) {
          for (let cpu = 0; cpu < d.vcpus.length; cpu++) {
            if (d.state === "running" && g.upcallPending(cpu)) {
              g.xenEvtchnDoUpcall(cpu);
              more = true;
            }
          }
        }
      }
    });
  }
}

function world(abi: Abi) {
  const hv = createHypervisor({
    machine: createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 3 }),
    plugins: [pvMmu(), abi === "fifo" ? evtchnFifo() : evtchn2l(), schedCredit()],
  }).boot();
  const builds = new Map<Domain, PvBuildResult>();
  const boot = (domid?: number, maxPages = 1100) => {
    const d = hv.createDomain({ domid, maxVcpus: 1, maxPages });
    builds.set(d, buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 1024 }));
    hv.unpauseDomain(d);
    return d;
  };
  const dom0 = boot(0);
  const loop = new Upcalls();
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
  /** The toolstack's part for `d`: ring frame, store port, start_info fields, INTRODUCE. */
  const introduce = async (d: Domain) => {
    const storeMfn = hv.allocDomainPages(d);
    hv.machine.ram.clearFrame(storeMfn);
    const a = { cmd: EVTCHNOP_alloc_unbound, dom: d.domid, remote_dom: 0, port: 0 };
    expect(hv.hypercall(dom0.vcpus[0], __HYPERVISOR_event_channel_op, a)).toBe(0);
    const si = builds.get(d)!.startInfoMfn * 4096;
    hv.machine.ram.write64n(si + SI.store_mfn.offset, storeMfn);
    hv.machine.ram.write32(si + SI.store_evtchn.offset, a.port);
    const home = `/local/domain/${d.domid}`;
    await xs.mkdir(home);
    await xs.setPerms(home, [`n${d.domid}`]);
    await xs.write(`${home}/name`, `dom${d.domid}`);
    await xs.introduce(d.domid, storeMfn, a.port);
    return { storeMfn, storeEvtchn: a.port, startInfoMfn: builds.get(d)!.startInfoMfn };
  };
  return { hv, dom0, loop, daemon, xs, boot, introduce, evtchn: hv.slot("evtchn") };
}

describe.each<Abi>(["2-level", "fifo"])("XenbusComms (%s hypervisor)", (abi) => {
  it("reads start_info, picks the event channel ABI as Linux does, and talks over the ring", async () => {
    const w = world(abi);
    const domU = w.boot();
    const store = await w.introduce(domU);
    const xb = new XenbusComms({
      hv: w.hv,
      domain: domU,
      loop: w.loop,
      startInfoMfn: store.startInfoMfn,
    });
    expect(xb.storeMfn).toBe(store.storeMfn);
    expect(xb.storeEvtchn).toBe(store.storeEvtchn);
    expect(xb.evtchn.abi).toBe(abi);
    expect(w.evtchn.domainAbi(domU)).toBe(abi);
    expect(w.loop.guestOf(domU)).toBe(xb.evtchn);
    expect(w.evtchn.portInfo(domU, store.storeEvtchn).status).toBe(EVTCHNSTAT_interdomain);
    expect(await xb.client.read("name")).toBe(`dom${domU.domid}`);
    await xb.client.write("data/x", "1");
    expect(await w.xs.read(`/local/domain/${domU.domid}/data/x`)).toBe("1");
    const watch = await xb.client.watch("data");
    expect((await watch.next()).path).toBe("data");
    await w.xs.write(`/local/domain/${domU.domid}/data/y`, "2");
    expect((await watch.next()).path).toBe("data/y");
    expect(xb.ringError).toBe(XENSTORE_ERROR_NONE);
  });
});

describe("XenbusComms", () => {
  it("uses the event channels a kernel already registered, or the ones it is given", async () => {
    const w = world("2-level");
    const domU = w.boot();
    const store = await w.introduce(domU);
    const g = new XenEvtchnGuest({
      hv: w.hv,
      vcpus: domU.vcpus,
      sharedInfoMfn: domU.sharedInfoMfn,
    });
    expect(g.init()).toBe(0);
    w.loop.register(domU, g);
    const xb = new XenbusComms({ hv: w.hv, domain: domU, loop: w.loop, ...store });
    expect(xb.evtchn).toBe(g);
    expect(await xb.client.read("name")).toBe(`dom${domU.domid}`);
  });

  it("close stops the client and unbinds the store irq (the port closes)", async () => {
    const w = world("2-level");
    const domU = w.boot();
    const store = await w.introduce(domU);
    const xb = new XenbusComms({ hv: w.hv, domain: domU, loop: w.loop, ...store });
    expect(await xb.client.read("name")).toBe(`dom${domU.domid}`);
    xb.close();
    xb.close();
    await expect(xb.client.read("name")).rejects.toMatchObject({ code: "XS_CLOSED" });
    expect(w.evtchn.portInfo(domU, store.storeEvtchn).status).toBe(EVTCHNSTAT_closed);
  });

  it("setup mistakes throw XenbusError with a code that says which", async () => {
    const w = world("2-level");
    const domU = w.boot();
    const other = w.boot();
    const store = await w.introduce(domU);
    const make = (o: object) => () =>
      new XenbusComms({ hv: w.hv, domain: domU, loop: w.loop, ...o } as never);
    const code = (c: string) => expect.objectContaining({ code: c, name: "XenbusError" });
    expect(() => new XenbusComms(undefined as never)).toThrow(code("XENBUS_BAD_OPTION"));
    expect(make({ ...store, cpu: 1 })).toThrow(code("XENBUS_BAD_OPTION"));
    expect(make({ storeMfn: store.storeMfn })).toThrow(code("XENBUS_NO_STORE"));
    expect(make({ storeMfn: store.storeMfn, storeEvtchn: 0 })).toThrow(code("XENBUS_NO_STORE"));
    expect(make({ startInfoMfn: other.sharedInfoMfn })).toThrow(code("XENBUS_NOT_OWNER"));
    expect(make({ storeMfn: w.dom0.sharedInfoMfn, storeEvtchn: 3 })).toThrow(
      code("XENBUS_NOT_OWNER"),
    );
    expect(make({ storeMfn: store.storeMfn, storeEvtchn: 5000 })).toThrow(code("XENBUS_STORE_IRQ"));
    expect(make({ storeMfn: store.storeMfn, storeEvtchn: 5000 })).toThrow(XenbusError);
  });

  it("a kernel without pages left for FIFO control blocks gets a typed error", async () => {
    const w = world("fifo");
    const domU = w.boot();
    const store = await w.introduce(domU);
    expect(
      () =>
        new XenbusComms({ hv: w.hv, domain: domU, loop: w.loop, ...store, allocFrame: () => -1 }),
    ).toThrow(expect.objectContaining({ code: "XENBUS_EVTCHN_INIT" }));
  });
});
