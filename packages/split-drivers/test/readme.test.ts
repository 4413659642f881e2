// The README's xenbus example, run as written (and checked to be the README's text).
import { readFileSync } from "node:fs";
import { __HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound } from "@hyperlab/abi";
import { createHypervisor, type Domain, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import { XenEvtchnGuest } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { Xenstored, XenstoreRing, XsClient } from "@hyperlab/xenstore";
import { expect, it } from "vitest";
import { XenbusComms } from "../src/index";

it("runs the README's xenbus example", async () => {
  const out: string[] = [];
  const console = { log: (s: unknown) => out.push(String(s)) };
  // --- README example: begin ---
  const hv = createHypervisor({
    machine: createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 1 }),
    plugins: [pvMmu(), evtchn2l(), schedCredit()],
  }).boot();
  const boot = (domid?: number) => {
    const d = hv.createDomain({ domid, maxVcpus: 1, maxPages: 1100 });
    buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 1024 });
    hv.unpauseDomain(d);
    return d;
  };
  const dom0 = boot(0);
  const domU = boot();

  // Who runs upcalls: every registered kernel's pending ones, on a microtask after a kick.
  const kernels = new Map<Domain, XenEvtchnGuest>();
  const loop = {
    guestOf: (d: Domain) => kernels.get(d),
    register: (d: Domain, g: XenEvtchnGuest) => void kernels.set(d, g),
    kick: () =>
      queueMicrotask(() => {
        for (const g of kernels.values()) if (g.upcallPending(0)) g.xenEvtchnDoUpcall(0);
      }),
  };

  // Dom0's kernel, and xenstored in it: INTRODUCE binds dom0's end of the store port.
  const dom0Evtchn = new XenEvtchnGuest({
    hv,
    vcpus: dom0.vcpus,
    sharedInfoMfn: dom0.sharedInfoMfn,
  });
  dom0Evtchn.init();
  loop.register(dom0, dom0Evtchn);
  const xenstored = new Xenstored({
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
  const dom0xs = XsClient.inMemory(xenstored);

  // The toolstack's part: a ring frame and a store port for the domU, then INTRODUCE.
  const storeMfn = hv.allocDomainPages(domU);
  const alloc = { cmd: EVTCHNOP_alloc_unbound, dom: domU.domid, remote_dom: 0, port: 0 };
  hv.hypercall(dom0.vcpus[0], __HYPERVISOR_event_channel_op, alloc);
  await dom0xs.mkdir("/local/domain/1");
  await dom0xs.setPerms("/local/domain/1", ["n1"]);
  await dom0xs.introduce(domU.domid, storeMfn, alloc.port);

  // The domU's kernel connects and talks to xenstored over its ring.
  const xenbus = new XenbusComms({ hv, domain: domU, loop, storeMfn, storeEvtchn: alloc.port });
  await xenbus.client.write("data/hello", "world");
  console.log(xenbus.evtchn.abi); // "2-level"
  console.log(await dom0xs.read("/local/domain/1/data/hello")); // "world"
  // --- README example: end ---

  expect(out).toEqual(["2-level", "world"]);
  expect(xenbus.ringError).toBe(0);
});

it("the README shows the same example", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const section = /## xenbus\n([\s\S]*?)(?:\n## |$)/.exec(readme)?.[1] ?? "";
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
  const test = readFileSync(new URL(import.meta.url), "utf8");
  const example =
    /--- README example: begin ---\n([\s\S]*?)\n\s*\/\/ --- README example: end/.exec(test)?.[1] ??
    "";
  const norm = (s: string) =>
    s
      .replace(/^import [\s\S]*?;\n/gm, "")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "");
  expect(norm(example).length).toBeGreaterThan(20);
  expect(norm(block)).toEqual(norm(example));
});
