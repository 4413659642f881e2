import { MAP_PIRQ_TYPE_GSI, PHYSDEVOP_map_pirq } from "@hyperlab/abi";
import {
  createHypervisor,
  isHyperlabError,
  pciPassthroughPermission,
  pciPassthroughResources,
  schedCredit,
} from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import { iomap } from "@hyperlab/iomap";
import {
  createMachine,
  createPlatform,
  DiskController,
  MemoryDiskImage,
  Nic,
} from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { apicHooks } from "../src/index";
import { bindPirq, physdev } from "./helpers";

function host(assign = true) {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 4 });
  const platform = createPlatform(machine);
  const disk = new DiskController(platform.pci, { image: new MemoryDiskImage(8) });
  const nic = new Nic(platform.pci);
  if (assign) platform.pci.assignResources();
  const hv = createHypervisor({
    machine,
    plugins: [schedCredit(), evtchn2l(), apicHooks({ platform }), iomap()],
  }).boot();
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 64 });
  const domU = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 64 });
  return { hv, platform, disk, nic, dom0, domU };
}

describe("PCI passthrough permissions (libxl's do_pci_add / do_pci_remove)", () => {
  it("grants the function's GSI and BAR frames, and nothing of the other function", () => {
    const { hv, nic, disk, dom0, domU } = host();
    const res = pciPassthroughResources(nic.pci);
    expect(res.irq).toBe(nic.pci.gsi);
    expect(res.iomem).toEqual([
      { start: nic.pci.barAddress(0) / 4096, end: nic.pci.barAddress(0) / 4096 },
    ]);
    const irq = hv.slot("irq");
    const io = hv.slot("iomem");
    const r0 = res.iomem[0];
    expect(irq.irqAccessPermitted(domU, nic.pci.gsi)).toBe(false);
    expect(io.iomemAccessPermitted(domU, r0.start, r0.end)).toBe(false);
    expect(pciPassthroughPermission(hv, domU, nic.pci, true)).toEqual(res);
    expect(irq.irqAccessPermitted(domU, nic.pci.gsi)).toBe(true);
    expect(io.iomemAccessPermitted(domU, r0.start, r0.end)).toBe(true);
    const diskFrame = disk.pci.barAddress(0) / 4096;
    expect(io.iomemAccessPermitted(domU, diskFrame, diskFrame)).toBe(false);
    if (disk.pci.gsi !== nic.pci.gsi)
      expect(irq.irqAccessPermitted(domU, disk.pci.gsi)).toBe(false);

    // dom0 maps the GSI for the domU (xc_physdev_map_pirq), which then binds it itself.
    const m = physdev(hv, dom0, PHYSDEVOP_map_pirq, {
      domid: domU.domid,
      type: MAP_PIRQ_TYPE_GSI,
      index: nic.pci.gsi,
      pirq: -1,
    });
    expect(m.rc).toBe(0);
    hv.unpauseDomain(domU);
    expect(bindPirq(hv, domU, m.a.pirq).rc).toBe(0);

    // do_pci_remove: both are taken back; the mapped pirq is unmapped (and unbound) first.
    pciPassthroughPermission(hv, domU, nic.pci, false);
    expect(irq.irqAccessPermitted(domU, nic.pci.gsi)).toBe(false);
    expect(irq.irqToPirq(domU, nic.pci.gsi)).toBe(-1);
    expect(io.iomemAccessPermitted(domU, r0.start, r0.end)).toBe(false);
  });

  it("a user's mistakes are typed errors: a BAR firmware never placed, a dead domain", () => {
    const a = host(false);
    expect(() => pciPassthroughPermission(a.hv, a.domU, a.nic.pci, true)).toThrow(
      /assignResources/,
    );
    const b = host();
    b.hv.destroyDomain(b.domU);
    try {
      pciPassthroughPermission(b.hv, b.domU, b.nic.pci, true);
      expect.unreachable();
    } catch (e) {
      expect(isHyperlabError(e, ["DOMAIN_GONE"])).toBe(true);
    }
    try {
      pciPassthroughPermission(a.hv, a.domU, a.nic.pci, true);
      expect.unreachable();
    } catch (e) {
      expect(isHyperlabError(e, ["PASSTHROUGH_BAR_UNASSIGNED"])).toBe(true);
    }
  });
});
