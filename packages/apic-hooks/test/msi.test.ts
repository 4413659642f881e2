import {
  DOMID_SELF,
  EFAULT,
  EINVAL,
  ENOSPC,
  MAP_PIRQ_TYPE_MSI,
  MAP_PIRQ_TYPE_MSI_SEG,
  MAP_PIRQ_TYPE_MULTI_MSI,
  PHYSDEVOP_map_pirq,
  PHYSDEVOP_unmap_pirq,
} from "@hyperlab/abi";
import {
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_ENABLE,
  type Platform,
} from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { bindPirq, boot, checkIrqRouting, physdev } from "./helpers";

/** A NIC-like function at 00:03.0 with a 64-bit, maskable MSI capability, mastering on. */
function addNic(platform: Platform) {
  const fn = platform.pci.addFunction({
    name: "nic",
    device: 3,
    vendorId: 0x4859,
    deviceId: 0x0e71,
    classCode: 0x020000,
    interruptPin: 1,
    msi: { is64: true, perVectorMask: true },
    dmaMaskBits: 64,
  });
  // pci_set_master: an MSI is a memory write by the function.
  fn.writeConfig(PCI_COMMAND, 2, PCI_COMMAND_MASTER);
  return fn;
}

const mapArgs = (args: Record<string, unknown> = {}) => ({
  domid: DOMID_SELF,
  type: MAP_PIRQ_TYPE_MSI_SEG,
  index: -1,
  pirq: -1,
  bus: 0,
  devfn: 3 << 3,
  entry_nr: 0,
  table_base: 0,
  ...args,
});

describe("MSI delivery under Xen (msi_capability_init, do_IRQ, send_guest_pirq)", () => {
  it("map_pirq writes Xen's message into the function and enables MSI; the device's write reaches the bound port", () => {
    const { hv, platform, irq, evtchn, dom0 } = boot(0);
    const fn = addNic(platform);
    const m = physdev(hv, dom0, PHYSDEVOP_map_pirq, mapArgs());
    expect(m.rc).toBe(0);
    const pirq = m.a.pirq as number;
    const x = irq.pirqStatus(dom0, pirq).irq;
    const cap = fn.msiCap;
    expect(fn.readConfig(cap + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE).toBe(PCI_MSI_FLAGS_ENABLE);
    expect(fn.readConfig(cap + PCI_MSI_ADDRESS_LO, 4) >>> 0).toBe(0xfee0_0000);
    const vector = fn.readConfig(cap + PCI_MSI_DATA_64, 2) & 0xff;
    expect(vector).toBeGreaterThanOrEqual(0x30);

    // Unbound: Xen takes the message (do_IRQ with no action) and nothing is sent.
    fn.setInterrupt(true);
    fn.setInterrupt(false);
    expect(irq.counters.delivered).toBe(1);
    expect(irq.counters.unbound).toBe(1);

    const b = bindPirq(hv, dom0, pirq);
    expect(b.rc).toBe(0);
    fn.setInterrupt(true); // the rising edge sends the message
    expect(evtchn.isPending(dom0, b.port)).toBe(true);
    expect(irq.counters.sent).toBe(1);
    // A maskable MSI needs no EOI: nothing stays in flight, and the LAPIC never latched it.
    expect(irq.inFlightOf(x)).toBe(0);
    const lapic = platform.apics.lapics[0];
    expect(lapic.inIrr(vector) || lapic.inIsr(vector)).toBe(false);
    expect(lapic.intercepted).toBe(2);
    // Still asserted: no new edge, no new message.
    fn.setInterrupt(true);
    expect(irq.counters.sent).toBe(1);
    fn.setInterrupt(false);
    fn.setInterrupt(true);
    expect(irq.counters.sent).toBe(2);
    expect(checkIrqRouting(irq, [dom0])).toEqual([]);

    // Unmapping the last mapping frees the irq: MSI is disabled and the vector forgotten.
    expect(physdev(hv, dom0, PHYSDEVOP_unmap_pirq, { domid: DOMID_SELF, pirq }).rc).toBe(0);
    expect(fn.readConfig(cap + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE).toBe(0);
    const before = irq.counters.delivered;
    platform.apics.msi(0xfee0_0000, vector);
    expect(irq.counters.delivered).toBe(before);
    expect(lapic.inIsr(vector) || lapic.inIrr(vector)).toBe(true); // an ordinary vector again
  });

  it("a second map of the same function reuses its irq; MSI and MSI_SEG name the same one", () => {
    const { hv, platform, irq, dom0 } = boot(0);
    addNic(platform);
    const a = physdev(hv, dom0, PHYSDEVOP_map_pirq, mapArgs());
    const b = physdev(hv, dom0, PHYSDEVOP_map_pirq, mapArgs({ type: MAP_PIRQ_TYPE_MSI }));
    expect(a.rc).toBe(0);
    expect(b.rc).toBe(0);
    expect(b.a.pirq).toBe(a.a.pirq);
    expect(irq.mappings(dom0).filter(([, x]) => x >= irq.nrIrqsGsi)).toHaveLength(1);
  });

  it("error paths: -EFAULT, -EINVAL, -ENOSPC, and nothing is enabled on a refusal", () => {
    const { hv, platform, dom0 } = boot(0, { nrMsiIrqs: 0 });
    const fn = addNic(platform);
    const call = (args: Record<string, unknown>) =>
      physdev(hv, dom0, PHYSDEVOP_map_pirq, mapArgs(args)).rc;
    expect(call({ bus: "0" })).toBe(-EFAULT);
    expect(call({ devfn: undefined })).toBe(-EFAULT);
    expect(call({ entry_nr: 1.5 })).toBe(-EFAULT);
    expect(call({ type: MAP_PIRQ_TYPE_MULTI_MSI, entry_nr: 2 })).toBe(-EINVAL);
    expect(call({ type: 9 })).toBe(-EINVAL);
    expect(call({ index: 0 })).toBe(-EINVAL);
    expect(call({ pirq: 100_000 })).toBe(-EINVAL);
    expect(call({})).toBe(-ENOSPC); // no dynamic irqs at all
    expect(fn.readConfig(fn.msiCap + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE).toBe(0);
  });

  it("when pirqs run out the new irq is given back and MSI stays off", () => {
    // nr_pirqs = nr_irqs_gsi: no pirq above the GSIs for an MSI.
    const { hv, platform, irq, dom0 } = boot(0, { nrPirqs: 24 });
    const fn = addNic(platform);
    expect(physdev(hv, dom0, PHYSDEVOP_map_pirq, mapArgs()).rc).toBe(-ENOSPC);
    expect(fn.readConfig(fn.msiCap + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE).toBe(0);
    expect(irq.mappings(dom0)).toEqual([]);
  });
});
