import { expect, it } from "vitest";

it("README example", async () => {
  // --- the README's example, verbatim from here ---
  const { createHypervisor, schedCredit } = await import("@hyperlab/core");
  const { evtchn2l } = await import("@hyperlab/evtchn");
  const { createMachine, createPlatform } = await import("@hyperlab/machine");
  const { apicHooks } = await import("../src/index");

  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const platform = createPlatform(machine);
  const hv = createHypervisor({
    machine,
    plugins: [schedCredit(), evtchn2l(), apicHooks({ platform })],
  }).boot();
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 64 });
  const call = (op: number, args: object) => hv.hypercall(dom0.vcpus[0], op, args as never);
  // dom0's xen_register_gsi for a level-triggered NIC on GSI 19: pirq = gsi.
  call(33, { cmd: 13 /* map_pirq */, domid: 0x7ff0, type: 1 /* GSI */, index: 19, pirq: 19 });
  call(33, { cmd: 21 /* setup_gsi */, gsi: 19, triggering: 1, polarity: 1 });
  const bind = { cmd: 2 /* EVTCHNOP_bind_pirq */, pirq: 19, flags: 1, port: 0 };
  call(32, bind);
  machine.irqs.raise(19); // the device asserts its line
  const pending = hv.slot("evtchn").isPending(dom0, bind.port); // true
  machine.irqs.lower(19);
  call(33, { cmd: 12 /* eoi */, irq: 19 }); // the line is released at the IO-APIC
  // --- end of the example ---

  expect(bind.port).toBeGreaterThan(0);
  expect(pending).toBe(true);
  expect(machine.irqs.inService(19)).toBe(false);
  expect(hv.slot("irq").pirqStatus(dom0, 19)).toMatchObject({
    irq: 19,
    sharers: 1,
    inFlight: false,
  });
});
