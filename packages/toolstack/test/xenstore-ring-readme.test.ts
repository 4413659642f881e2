// The README's xenstore-over-the-ring example, run as written.
import { createHypervisor, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { XenbusComms } from "@hyperlab/split-drivers";
import { expect, it } from "vitest";
import { Dom0Xenstored, introduceDomainToXenstore, UpcallLoop } from "../src/index";

it("README example: xenstore over the ring page and event channels", async () => {
  const out: string[] = [];
  const console = { log: (s: string) => out.push(s) };

  const machine = createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 1 });
  const hv = createHypervisor({
    machine,
    plugins: [pvMmu(), evtchn2l(), schedCredit()],
  }).boot();
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 1100 });
  buildPvDomain(hv, hv.slot("pv-mmu"), { domain: dom0, nrPages: 1024 });
  hv.unpauseDomain(dom0);

  // xenstored in dom0; the loop delivers every domain's upcalls.
  const loop = new UpcallLoop(hv);
  const xenstored = new Dom0Xenstored({ hv, dom0, loop });

  // Build a PV domU (paused), give it its xenstore connection, unpause it.
  const domU = hv.createDomain({ maxVcpus: 1, maxPages: 1100 });
  const built = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: domU, nrPages: 1024 });
  const store = await introduceDomainToXenstore(xenstored, {
    domain: domU,
    startInfoMfn: built.startInfoMfn,
    name: "guest",
  });
  hv.unpauseDomain(domU);

  // The domU's kernel connects with what start_info says, and talks over the ring.
  const xenbus = new XenbusComms({ hv, domain: domU, loop, startInfoMfn: built.startInfoMfn });
  await xenbus.client.write("data/hello", "world");
  console.log(await xenbus.client.read("name")); // "guest"
  console.log(await xenstored.xs.read(`${store.path}/data/hello`)); // "world"

  expect(out).toEqual(["guest", "world"]);
});
