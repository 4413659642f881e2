/*
 * apic-hooks benchmarks (pnpm bench): interrupt delivery, device raise to the guest's
 * handler, per second. One round: a level-triggered NIC on GSI 19 asserts its line, the
 * handler runs (native: from the IO-APIC line; Xen dom0: Xen's do_IRQ sends the pirq's event,
 * dom0's upcall finds the port's irq), the driver acknowledges the device and EOIs (Xen:
 * PHYSDEVOP_eoi, or none for an edge line with the EOI map). Times depend on the host.
 */
import { createHypervisor, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import { type GuestPort, nativeApicOps, XenEvtchnGuest, xenApicOps } from "@hyperlab/guest";
import { createMachine, createPlatform } from "@hyperlab/machine";
import { apicHooks } from "../src/index";

const GSI = 19;

function measure(label: string, round: () => void, check: () => number) {
  for (let i = 0; i < 5000; i++) round();
  const h0 = check();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < 300) {
    for (let i = 0; i < 200; i++) round();
    n += 200;
    t = performance.now();
  }
  const handled = check() - h0;
  if (handled !== n) throw new Error(`${label}: ${handled} handled of ${n} raised`);
  const perSec = (n * 1000) / (t - t0);
  console.log(`${label.padEnd(44)} ${(perSec / 1e6).toFixed(3)} M interrupts/s`);
}

// Native: the kernel's own IO-APIC.
{
  const machine = createMachine({ ramBytes: 16 << 20, cpus: 1, seed: 1 });
  const ops = nativeApicOps({ ioApic: machine.irqs } as unknown as GuestPort);
  let handled = 0;
  const irq = ops.setupGsi(GSI, "level", "low");
  ops.bindIrq(irq, (i) => {
    handled++;
    machine.irqs.lower(GSI);
    ops.eoi(i);
  });
  ops.unmask(irq);
  measure(
    "native, level GSI 19",
    () => machine.irqs.raise(GSI),
    () => handled,
  );
}

// Xen dom0: apic-hooks, the evtchn slot, dom0's event channels and Xen apic ops.
for (const level of [true, false]) {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const platform = createPlatform(machine);
  const hv = createHypervisor({
    machine,
    plugins: [schedCredit(), evtchn2l(), apicHooks({ platform })],
  }).boot();
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 64 });
  const g = new XenEvtchnGuest({ hv, vcpus: dom0.vcpus, sharedInfoMfn: dom0.sharedInfoMfn });
  g.init();
  const ops = xenApicOps({
    evtchn: g,
    hypercall: (op, a) => hv.hypercall(dom0.vcpus[0], op, a),
    eoiMap: { mfn: hv.allocDomainPages(dom0), ram: machine.ram },
  });
  let handled = 0;
  const irq = ops.setupGsi(GSI, level ? "level" : "edge", level ? "low" : "high");
  ops.bindIrq(irq, (i) => {
    handled++;
    if (level) machine.irqs.lower(GSI);
    ops.eoi(i);
  });
  const round = level
    ? () => {
        machine.irqs.raise(GSI);
        g.xenEvtchnDoUpcall(0);
      }
    : () => {
        machine.irqs.pulse(GSI);
        g.xenEvtchnDoUpcall(0);
      };
  measure(
    `Xen dom0, ${level ? "level (PHYSDEVOP_eoi)" : "edge (no EOI hypercall)"} GSI 19`,
    round,
    () => handled,
  );
}
