// xl.cfg `pci=` through libxl: the domain gets the function's irq and BAR frames at create
// (do_pci_add's permissions), destroy takes them back, a BDF the host lacks fails the create.
import { HyperlabError, pciPassthroughResources } from "@hyperlab/core";
import { type PciFunction, pciName } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { destroyDomainRecord, domainCreate, type Host } from "../../src/index";
import { pciRemove } from "../../src/libxl/create";
import { config, host, snapshot } from "./world";

/** Whether domain `domid` may use the function's irq, and each of its BARs' frames. */
function caps(h: Host, domid: number, fn: PciFunction): { irq: boolean; iomem: boolean[] } {
  const d = h.hv.domain(domid)!;
  const irq = h.hv.slot("irq").irqAccessPermitted(d, fn.gsi);
  const io = h.hv.slot("iomem");
  const iomem = pciPassthroughResources(fn).iomem.map((r) =>
    io.iomemAccessPermitted(d, r.start, r.end),
  );
  return { irq, iomem };
}

function fnNamed(h: Host, name: string): PciFunction {
  const fn = h.platform!.pci.list().find((f) => pciName(f.bdf) === name);
  if (fn === undefined) throw new Error(`no ${name}`);
  return fn;
}

describe("pci= passthrough (libxl__device_pci_add's permissions)", () => {
  it("the Xen-style host has the chipset with a disk controller and a NIC, BARs placed", async () => {
    const h = await host();
    const names = h.platform!.pci.list().map((f) => pciName(f.bdf));
    expect(names).toEqual(["0000:00:02.0", "0000:00:03.0"]);
    for (const fn of h.platform!.pci.list()) {
      expect(fn.gsi).toBeGreaterThan(0);
      expect(fn.barAddress(0)).toBeGreaterThan(0);
    }
    const kvm = await host({ kind: "kvm" });
    expect(kvm.platform).toBeNull();
  });

  it("a domU with pci= holds the irq and BAR frames; one without has neither; destroy revokes", async () => {
    const h = await host();
    const nic = fnNamed(h, "0000:00:03.0");
    const disk = fnNamed(h, "0000:00:02.0");
    const c = config("pt", 'pci = ["0000:00:03.0"]');
    expect(c.pcidevs).toEqual([{ domain: 0, bus: 0, dev: 3, func: 0 }]);
    const r = await domainCreate(h, c);
    const plain = await domainCreate(h, config("plain"));
    expect(r.pci).toEqual([nic]);
    expect(caps(h, r.domid, nic)).toEqual({ irq: true, iomem: [true] });
    // The BAR's frames are exactly what was granted: a frame past it is not.
    const bar = pciPassthroughResources(nic).iomem[0]!;
    const io = h.hv.slot("iomem");
    expect(io.iomemAccessPermitted(r.domain, bar.end + 1, bar.end + 1)).toBe(false);
    // Nothing of the function not passed through, nothing for the other domain.
    expect(caps(h, r.domid, disk).iomem).toEqual([false]);
    if (disk.gsi !== nic.gsi) expect(caps(h, r.domid, disk).irq).toBe(false);
    expect(caps(h, plain.domid, nic)).toEqual({ irq: false, iomem: [false] });
    expect(plain.pci).toEqual([]);

    const dom = r.domain;
    await destroyDomainRecord(h, r);
    expect(dom.state).toBe("dead");
    expect(h.hv.slot("irq").irqAccessPermitted(dom, nic.gsi)).toBe(false);
    expect(r.pci).toEqual([]);
    // Once freed, the function is assignable again.
    const again = await domainCreate(h, config("pt2", 'pci = ["00:03.0"]'));
    expect(caps(h, again.domid, nic)).toEqual({ irq: true, iomem: [true] });
  });

  it("two functions in one pci= list are both granted, and both revoked", async () => {
    const h = await host();
    const r = await domainCreate(h, config("both", 'pci = ["00:02.0", "00:03.0"]'));
    for (const fn of h.platform!.pci.list())
      expect(caps(h, r.domid, fn)).toEqual({ irq: true, iomem: [true] });
    // do_pci_remove, as destroy runs it while the domain still lives: both taken back.
    for (const fn of [...r.pci]) pciRemove(h, r, fn);
    expect(r.pci).toEqual([]);
    for (const fn of h.platform!.pci.list())
      expect(caps(h, r.domid, fn)).toEqual({ irq: false, iomem: [false] });
    pciRemove(h, r, h.platform!.pci.list()[0]!); // not held: nothing to do
    await destroyDomainRecord(h, r);
    expect(h.hv.domain(r.domid)).toBeUndefined();
  });

  it("a BDF the host lacks, or one another domain holds: libxl's message, nothing left behind", async () => {
    const h = await host();
    const holder = await domainCreate(h, config("holder", 'pci = ["00:03.0"]'));
    const before = await snapshot(h);
    for (const [spec, bdf] of [
      ['"00:07.0"', "0000:00:07.0"],
      ['"0001:00:03.0"', "0001:00:03.0"],
      ['"00:02.0", "00:03.0"', "0000:00:03.0"],
      ['"00:02.0", "00:02.0"', "0000:00:02.0"],
    ]) {
      const err = await domainCreate(h, config("x", `pci = [${spec}]`)).catch((e) => e);
      expect(err).toBeInstanceOf(HyperlabError);
      expect(err.code).toBe("TOOLSTACK_CREATE_FAILED");
      expect(err.message).toMatch(new RegExp(`PCI device ${bdf} is not assignable$`));
      expect(await snapshot(h)).toEqual(before);
    }
    // The holder keeps its grant through the failures.
    expect(caps(h, holder.domid, fnNamed(h, "0000:00:03.0"))).toEqual({ irq: true, iomem: [true] });
  });

  it("a KVM-style host has no PCI functions to pass through", async () => {
    const h = await host({ kind: "kvm" });
    const err = await domainCreate(h, config("k", 'pci = ["00:03.0"]')).catch((e) => e);
    expect(err).toBeInstanceOf(HyperlabError);
  });
});
