import { createHypervisor, schedCredit } from "@hyperlab/core";
import { XenEvtchnGuest } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { expect, it } from "vitest";
import { evtchn2l, vcpuTimers } from "../src/index";

it("runs the README example", () => {
  const machine = createMachine({ ramBytes: 64 * 2 ** 20, cpus: 2, seed: 1 });
  const hv = createHypervisor({
    machine,
    plugins: [schedCredit(), evtchn2l(), vcpuTimers()],
  }).boot();

  function start(domid?: number) {
    const d = hv.createDomain({ domid, maxVcpus: 1, maxPages: 64 });
    hv.unpauseDomain(d);
    const g = new XenEvtchnGuest({ hv, vcpus: d.vcpus, sharedInfoMfn: d.sharedInfoMfn });
    g.init();
    return { d, g };
  }
  const dom0 = start(0);
  const domU = start();

  // The backend in dom0 offers a port to domU; the frontend binds to it.
  const got: string[] = [];
  const backIrq = dom0.g.bindListeningPortToIrqHandler(domU.d.domid, (irq) =>
    got.push(`irq ${irq}`),
  );
  const frontIrq = domU.g.bindInterdomainEvtchnToIrqHandler(
    0,
    dom0.g.evtchnFromIrq(backIrq),
    () => {},
  );

  domU.g.notifyRemoteViaIrq(frontIrq); // EVTCHNOP_send
  dom0.g.xenEvtchnDoUpcall(0); // the upcall scans shared_info and runs the handler
  expect(got).toEqual(["irq 16"]);
});
