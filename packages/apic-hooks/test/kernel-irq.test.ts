import { createHypervisor, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import { bootNativeKernel, bootXenPvKernel, type GuestKernel, xenApic } from "@hyperlab/guest";
import { createMachine, createPlatform, type Machine } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { describe, expect, it } from "vitest";
import { apicHooks } from "../src/index";

const GSI = 19;

/** The same NIC driver on any kernel: route the GSI, bind a handler that acks and EOIs. */
function driver(k: GuestKernel, machine: Machine) {
  const seen: number[] = [];
  const irq = k.ops.apic.setupGsi(GSI, "level", "low");
  const rc = k.ops.apic.bindIrq(irq, (i) => {
    seen.push(i);
    machine.irqs.lower(GSI);
    k.ops.apic.eoi(i);
  });
  k.ops.apic.unmask(irq);
  return { irq, rc, seen };
}

describe("pv_ops.apic in booted kernels: the NIC on GSI 19 raises irq 19 on native and on Xen dom0", () => {
  it("native kernel", () => {
    const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
    const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 2064 });
    const k = bootNativeKernel(hv, d, { nrPages: 2048 });
    const drv = driver(k, machine);
    machine.irqs.raise(GSI);
    expect(k.composition.pvOps.apic).toBe("native");
    expect(drv.rc).toBe(0);
    expect(drv.irq).toBe(GSI);
    expect(drv.seen).toEqual([GSI]);
  });

  it("Xen PV dom0 kernel with the xen-apic plugin", () => {
    const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
    const platform = createPlatform(machine);
    const hv = createHypervisor({
      machine,
      plugins: [pvMmu(), schedCredit(), evtchn2l(), apicHooks({ platform })],
    }).boot();
    const d = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 2064 });
    const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 2048 });
    const k = bootXenPvKernel(hv, d, { startInfoVa: b.rsi, plugins: [xenApic()] });
    const drv = driver(k, machine);
    machine.irqs.raise(GSI);
    k.events!.xenEvtchnDoUpcall(0);
    expect(k.composition.pvOps.apic).toBe("xen-apic");
    expect(drv.rc).toBe(0);
    expect(drv.irq).toBe(GSI);
    expect(drv.seen).toEqual([GSI]);
    expect(machine.irqs.inService(GSI)).toBe(false);
    expect(hv.slot("irq").pirqStatus(d, GSI)).toMatchObject({ irq: GSI, inFlight: false });
  });
});
