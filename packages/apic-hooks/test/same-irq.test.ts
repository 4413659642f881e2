import { type GuestPort, nativeApicOps, XenEvtchnGuest, xenApicOps } from "@hyperlab/guest";
import { createMachine, type Machine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { boot } from "./helpers";

const NIC_GSI = 19;

/** A level-triggered NIC on GSI 19: asserts until its driver acknowledges it. */
function nic(machine: Machine) {
  return {
    raise: () => machine.irqs.raise(NIC_GSI),
    ack: () => machine.irqs.lower(NIC_GSI),
  };
}

/** dom0 on the Xen-style host with its event channels and the Xen apic ops. */
function xenDom0(eoiMap: boolean) {
  const b = boot(0);
  const { hv, dom0 } = b;
  const g = new XenEvtchnGuest({ hv, vcpus: dom0.vcpus, sharedInfoMfn: dom0.sharedInfoMfn });
  expect(g.init()).toBe(0);
  const ops = xenApicOps({
    evtchn: g,
    hypercall: (op, a) => hv.hypercall(dom0.vcpus[0], op, a),
    eoiMap: eoiMap ? { mfn: hv.allocDomainPages(dom0), ram: hv.machine.ram } : undefined,
  });
  return { ...b, g, ops };
}

describe("the Linux irq of a GSI equals the GSI, natively and in Xen dom0", () => {
  it("the same device raise is handled as irq 19 on both", () => {
    // Native: the kernel programs the IO-APIC itself.
    const machine = createMachine({ ramBytes: 16 << 20, cpus: 1, seed: 3 });
    const native = nativeApicOps({ ioApic: machine.irqs } as unknown as GuestPort);
    const dev = nic(machine);
    const nativeSeen: number[] = [];
    const nIrq = native.setupGsi(NIC_GSI, "level", "low");
    expect(
      native.bindIrq(nIrq, (irq) => {
        nativeSeen.push(irq);
        dev.ack();
        native.eoi(irq);
      }),
    ).toBe(0);
    expect(native.unmask(nIrq)).toBe(0);
    dev.raise();

    // Xen dom0: the same driver code, through Xen.
    const x = xenDom0(false);
    const xdev = nic(x.machine);
    const xenSeen: number[] = [];
    const xIrq = x.ops.setupGsi(NIC_GSI, "level", "low");
    expect(
      x.ops.bindIrq(xIrq, (irq) => {
        xenSeen.push(irq);
        xdev.ack();
        x.ops.eoi(irq);
      }),
    ).toBe(0);
    expect(x.ops.unmask(xIrq)).toBe(0);
    xdev.raise();
    expect(x.g.xenEvtchnDoUpcall(0)).toBe(1);

    expect(nIrq).toBe(NIC_GSI);
    expect(xIrq).toBe(NIC_GSI);
    expect(nativeSeen).toEqual([NIC_GSI]);
    expect(xenSeen).toEqual([NIC_GSI]);
    expect(x.ops.pirqOf(xIrq)).toBe(NIC_GSI); // dom0's pirq is the GSI too
    // Without the EOI map, irq_status_query (always needs_eoi in 4.17) decides: one hypercall
    // at startup, one per interrupt; the line is released at the IO-APIC.
    expect(x.ops.counts.eoiHypercalls).toBe(2);
    expect(x.machine.irqs.inService(NIC_GSI)).toBe(false);
    expect(x.irq.inFlightOf(NIC_GSI)).toBe(0);
  });

  it("with the EOI map page, only level pirqs get PHYSDEVOP_eoi; MSI gets a dynamic irq", () => {
    const x = xenDom0(true);
    const seen: number[] = [];
    const handler = (irq: number) => {
      seen.push(irq);
      if (irq === NIC_GSI) x.machine.irqs.lower(NIC_GSI);
      x.ops.eoi(irq);
    };
    expect(x.ops.setupGsi(NIC_GSI, "level", "low")).toBe(NIC_GSI);
    expect(x.ops.setupGsi(4, "edge", "high")).toBe(4);
    expect(x.ops.setupGsi(4, "edge", "high")).toBe(4); // registered once
    expect(x.ops.bindIrq(NIC_GSI, handler)).toBe(0);
    expect(x.ops.bindIrq(4, handler)).toBe(0);
    const hyper0 = x.ops.counts.eoiHypercalls;
    x.machine.irqs.raise(NIC_GSI);
    x.machine.irqs.pulse(4);
    expect(x.g.xenEvtchnDoUpcall(0)).toBe(2);
    expect(seen.sort((a, b) => a - b)).toEqual([4, NIC_GSI]);
    expect(x.ops.counts.eoiHypercalls - hyper0).toBe(1); // the level one only
    expect(x.machine.irqs.inService(NIC_GSI)).toBe(false);
    // MSI: needs a PCI function with an MSI capability; the irq is dynamic, above the GSIs.
    x.platform.pci.addFunction({
      name: "nic",
      device: 3,
      vendorId: 0x8086,
      deviceId: 0x100e,
      classCode: 0x020000,
      msi: { is64: true, perVectorMask: false },
      dmaMaskBits: 64,
    });
    const msi = x.ops.setupMsi({ bus: 0, devfn: 3 << 3 });
    expect(typeof msi).toBe("object");
    expect((msi as { irq: number }).irq).toBeGreaterThanOrEqual(24);
    expect(x.ops.setupMsi({ bus: 0, devfn: 9 << 3 })).toBeLessThan(0); // -ENODEV
    expect(x.ops.bindIrq(77, handler)).toBeLessThan(0);
    // Unbinding closes the port and masks the pin again.
    expect(x.ops.bindIrq(4, null)).toBe(0);
    expect(x.irq.sharersOf(4)).toEqual([]);
  });
});
