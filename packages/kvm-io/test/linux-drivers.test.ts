// h24's Linux-like guest drivers for the machine's disk controller and NIC (PCI probe over
// ECAM, ioremap'd BAR, request_irq, the DMA API), unchanged, in a KVM-style guest: every
// register access is an MMIO exit to kvm-io's device model, DMA goes to guest-physical
// addresses through the VM's memory map, and completions arrive as injected interrupts.
import { createHypervisor } from "@hyperlab/core";
import {
  bootNativeKernel,
  hldiskMatch,
  hldiskProbe,
  hlnicMatch,
  hlnicProbe,
  pciScanBus,
} from "@hyperlab/guest";
import { createMachine, DISK_ST_OK, LoopbackPort, MemoryDiskImage } from "@hyperlab/machine";
import { nptMmu } from "@hyperlab/npt-mmu";
import { describe, expect, it } from "vitest";
import { kvmIo } from "../src/index";

function kvmHost() {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 5 });
  const hv = createHypervisor({ machine, plugins: [nptMmu(), kvmIo()] }).boot();
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 2100 });
  hv.unpauseDomain(d);
  const vm = hv.slot("kvm-io").vm(d);
  const image = new MemoryDiskImage(64);
  for (let i = 0; i < image.bytes.length; i++) image.bytes[i] = (i * 7 + (i >> 9)) & 0xff;
  const disk = vm.addDisk({ image });
  const nic = vm.addNic();
  nic.attach(new LoopbackPort(nic));
  vm.assignPciResources();
  const k = bootNativeKernel(hv, d, { nrPages: 2048 });
  const devs = pciScanBus(k, { ecamBase: vm.pci.ecamBase });
  if (typeof devs === "number") throw new Error(`scan ${devs}`);
  return { hv, vm, image, disk, nic, k, devs };
}

describe("the guest's disk and NIC drivers in a KVM-style guest", () => {
  it("hldisk reads and writes sectors through MMIO exits, with injected INTx and EOI exits", () => {
    const { vm, image, k, devs, disk } = kvmHost();
    const dev = devs.find(hldiskMatch);
    if (dev === undefined) throw new Error("no disk");
    expect(dev.irqLine).toBe(disk.pci.gsi);
    const d = hldiskProbe(k, dev, { irq: "intx" });
    if (typeof d === "number") throw new Error(`probe ${d}`);
    const pfn = k.allocPage();
    const seen: number[] = [];
    const exits0 = vm.counts.mmioExits;
    expect(d.submit({ op: "read", sector: 3, count: 2, pfn, done: (s) => seen.push(s) })).toBe(0);
    expect(seen).toEqual([DISK_ST_OK]);
    for (let i = 0; i < 1024; i++)
      expect(k.ram.read8(pfn * 4096 + i)).toBe(image.bytes[3 * 512 + i]);
    k.ram.write8(pfn * 4096, 0xa5);
    expect(d.submit({ op: "write", sector: 9, count: 1, pfn, done: (s) => seen.push(s) })).toBe(0);
    expect(seen).toEqual([DISK_ST_OK, DISK_ST_OK]);
    expect(image.bytes[9 * 512]).toBe(0xa5);
    expect(vm.counts.mmioExits).toBeGreaterThan(exits0);
    expect(vm.ioApic.injections).toBe(2);
    expect(vm.ioApic.eoiExits).toBe(2);
    expect(k.counts.kernelErrors).toBe(0);
  });

  it("hlnic sends a frame and receives it back through the NIC model's loopback", () => {
    const { vm, k, devs } = kvmHost();
    const dev = devs.find(hlnicMatch);
    if (dev === undefined) throw new Error("no nic");
    const got: Uint8Array[] = [];
    const n = hlnicProbe(k, dev, { irq: "intx", onReceive: (f) => got.push(f.slice()) });
    if (typeof n === "number") throw new Error(`probe ${n}`);
    const frame = new Uint8Array(60);
    frame.fill(0xff, 0, 6);
    frame[59] = 0x42;
    expect(n.xmit(frame)).toBe(0);
    expect(got.length).toBe(1);
    expect(got[0][59]).toBe(0x42);
    expect(vm.ioApic.injections).toBeGreaterThan(0);
    expect(k.counts.kernelErrors).toBe(0);
  });

  it("hldisk with MSI: the message lands in the VM's virtual local APIC and runs the driver's handler", () => {
    const { vm, image, k, devs, disk } = kvmHost();
    const dev = devs.find(hldiskMatch);
    if (dev === undefined) throw new Error("no disk");
    const d = hldiskProbe(k, dev, { irq: "msi" });
    if (typeof d === "number") throw new Error(`probe ${d}`);
    expect(disk.pci.msiEnabled).toBe(true);
    const pfn = k.allocPage();
    const seen: number[] = [];
    const eoi0 = vm.ioApic.eoiExits;
    expect(d.submit({ op: "read", sector: 5, count: 1, pfn, done: (s) => seen.push(s) })).toBe(0);
    expect(seen).toEqual([DISK_ST_OK]);
    expect(k.ram.read8(pfn * 4096 + 7)).toBe(image.bytes[5 * 512 + 7]);
    expect(vm.lapic.delivered).toBe(1);
    expect(vm.injections).toBe(1);
    expect(vm.ioApic.eoiExits - eoi0).toBe(0); // an edge vector's EOI is virtualized
    expect(k.counts.kernelErrors).toBe(0);
  });
});
