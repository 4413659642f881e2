import { createHypervisor } from "@hyperlab/core";
import { bootNativeKernel, ioremap, readl, readw, writel } from "@hyperlab/guest";
import {
  createMachine,
  DISK_DEVICE_ID,
  DISK_MAGIC,
  DISK_OP_READ,
  DISK_OP_WRITE,
  DISK_REG_MAGIC,
  DISK_ST_DMA_ERROR,
  DISK_ST_OK,
  HYPERLAB_VENDOR_ID,
  MemoryDiskImage,
  PCI_DEVICE_ID,
  PCI_VENDOR_ID,
} from "@hyperlab/machine";
import { EXIT_REASON_EPT_MISCONFIG, EXIT_REASON_EPT_VIOLATION, nptMmu } from "@hyperlab/npt-mmu";
import { EXIT_REASON_EOI_INDUCED } from "@hyperlab/paging";
import { describe, expect, it } from "vitest";
import { bootGuest, kvmBuild, TestDiskDriver } from "./helpers";

describe("MMIO exits to the host's device model", () => {
  it("a guest reads the emulated disk's PCI config and registers through EPT exits", () => {
    const b = kvmBuild();
    const disk = b.vm.addDisk({ image: new MemoryDiskImage(64) });
    b.vm.assignPciResources();
    const k = bootGuest(b);
    const ecam = ioremap(k, b.vm.pci.ecamBase, 1 << 20);
    expect(ecam).toBeGreaterThan(0);
    const cfg = ecam + (disk.pci.bdf << 12);
    expect(readw(k, cfg + PCI_VENDOR_ID)).toBe(HYPERLAB_VENDOR_ID);
    expect(readw(k, cfg + PCI_DEVICE_ID)).toBe(DISK_DEVICE_ID);
    const drv = new TestDiskDriver(k, ecam, disk.pci);
    expect(readl(k, drv.regs + DISK_REG_MAGIC)).toBe(DISK_MAGIC);
    const npt = b.hv.slot("npt-mmu");
    // The first touch of each device page is an EPT violation that installs KVM's MMIO marker;
    // later ones are EPT misconfigurations. Every one of them reached the device model.
    const reasons = b.vm.exits[EXIT_REASON_EPT_VIOLATION] + b.vm.exits[EXIT_REASON_EPT_MISCONFIG];
    expect(b.vm.counts.mmioExits).toBe(reasons);
    expect(b.vm.exits[EXIT_REASON_EPT_VIOLATION]).toBeGreaterThan(0);
    expect(b.vm.exits[EXIT_REASON_EPT_MISCONFIG]).toBeGreaterThan(0);
    expect(npt.exits[EXIT_REASON_EPT_MISCONFIG]).toBeGreaterThanOrEqual(
      b.vm.exits[EXIT_REASON_EPT_MISCONFIG],
    );
    expect(b.vm.counts.unclaimed).toBe(0);
  });

  it("writes and reads sectors by DMA to guest-physical addresses, with injected interrupts and EOI exits", () => {
    const b = kvmBuild();
    const image = new MemoryDiskImage(64);
    const disk = b.vm.addDisk({ image });
    b.vm.assignPciResources();
    const k = bootGuest(b);
    const drv = new TestDiskDriver(k, ioremap(k, b.vm.pci.ecamBase, 1 << 20), disk.pci);
    const buf = k.allocPage();
    for (let i = 0; i < 512; i++) k.ram.write8(buf * 4096 + i, (i * 7) & 0xff);
    const before = b.vm.counts.mmioExits;
    expect(drv.submit(DISK_OP_WRITE, 1, 5, buf * 4096)).toBe(DISK_ST_OK);
    // Two register writes (TAIL, doorbell) plus the handler's INT_STATUS read and INT_ACK write.
    expect(b.vm.counts.mmioExits - before).toBe(4);
    expect(image.bytes[5 * 512 + 3]).toBe(21);
    const back = k.allocPage();
    expect(drv.submit(DISK_OP_READ, 1, 5, back * 4096)).toBe(DISK_ST_OK);
    for (let i = 0; i < 512; i++) expect(k.ram.read8(back * 4096 + i)).toBe((i * 7) & 0xff);
    expect(drv.interrupts).toBe(2);
    expect(b.vm.ioApic.injections).toBe(2);
    // Level-triggered: each EOI exits so the IO-APIC's remote IRR clears (APICv EOI-exit bitmap).
    expect(b.vm.ioApic.eoiExits).toBe(2);
    expect(b.vm.exits[EXIT_REASON_EOI_INDUCED]).toBe(2);
    expect(b.vm.snapshot().exitsByReason.EOI_INDUCED).toBe(2);
    expect(b.vm.ioApic.state(drv.irq).inService).toBe(false);
    expect(disk.pci.intxAsserted).toBe(false);
    expect(EXIT_REASON_EOI_INDUCED).toBe(45);
  });

  it("refuses guest DMA to frames the VM does not own: another VM's memory is untouched", () => {
    const b = kvmBuild();
    const image = new MemoryDiskImage(64);
    image.bytes.fill(0xee);
    const disk = b.vm.addDisk({ image });
    b.vm.assignPciResources();
    const k = bootGuest(b);
    const other = b.hv.createDomain({ maxVcpus: 1, maxPages: 64 });
    const victim = b.hv.allocDomainPages(other, 0);
    b.hv.machine.ram.write32(victim * 4096, 0x1234_5678);
    const drv = new TestDiskDriver(k, ioremap(k, b.vm.pci.ecamBase, 1 << 20), disk.pci);
    expect(drv.submit(DISK_OP_READ, 1, 0, victim * 4096)).toBe(DISK_ST_DMA_ERROR);
    expect(b.hv.machine.ram.read32(victim * 4096)).toBe(0x1234_5678);
    // A buffer straddling into a frame the VM does not own is refused whole.
    const owner = Int32Array.from(b.hv.frames.ownerKeys, (k) => ~k);
    let edge = 0;
    while (!(owner[edge] === b.d.domid && owner[edge + 1] !== b.d.domid)) edge++;
    const lastWord = b.hv.machine.ram.read32(edge * 4096 + 4092);
    expect(drv.submit(DISK_OP_READ, 2, 0, edge * 4096 + 3584)).toBe(DISK_ST_DMA_ERROR);
    expect(b.hv.machine.ram.read32(edge * 4096 + 4092)).toBe(lastWord);
    expect(b.vm.memory.refused).toBeGreaterThan(0);
    expect(drv.interrupts).toBe(2);
  });

  it("answers an unclaimed guest-physical access with all ones and counts it, never throwing", () => {
    const b = kvmBuild();
    b.vm.assignPciResources();
    const k = bootGuest(b);
    const va = ioremap(k, 0xe000_0000, 4096);
    expect(readl(k, va)).toBe(0xffff_ffff);
    expect(writel(k, va, 5)).toBe(true);
    expect(b.vm.counts.unclaimed).toBe(2);
    const v = b.d.vcpus[0];
    expect(b.kvm.mmioExit(v, 49, -5, 4, false, 0)).toBe(-1);
    expect(b.kvm.mmioExit(v, 49, 0xe000_0000, 3 as 4, false, 0)).toBe(-1);
    expect(b.kvm.mmioExit(v, 9999, 2 ** 60, 4, true, 0)).toBe(-1);
  });

  it("keeps each VM's devices to itself", () => {
    const b = kvmBuild();
    b.vm.addDisk({ image: new MemoryDiskImage(8) });
    b.vm.assignPciResources();
    const d2 = b.hv.createDomain({ maxVcpus: 1, maxPages: 2048 });
    b.hv.unpauseDomain(d2);
    const vm2 = b.kvm.vm(d2);
    vm2.assignPciResources();
    const cfg = b.vm.pci.ecamBase + (2 << 15);
    expect(b.kvm.mmioExit(b.d.vcpus[0], 49, cfg, 2, false, 0)).toBe(HYPERLAB_VENDOR_ID);
    expect(b.kvm.mmioExit(d2.vcpus[0], 49, cfg, 2, false, 0)).toBe(0xffff);
    // A vCPU of one VM presented to another VM's bus is refused.
    expect(vm2.mmioExit(b.d.vcpus[0], 49, cfg, 2, false, 0)).toBe(-1);
  });

  it("without a device-model host (no kvm-io), a nested guest's access to a gpa without RAM faults", () => {
    const machine = createMachine({ ramBytes: 64 * 2 ** 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [nptMmu()] }).boot();
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 300 });
    hv.unpauseDomain(d);
    const k = bootNativeKernel(hv, d, { nrPages: 256 });
    expect(k.port.ioApic).toBeNull();
    const va = ioremap(k, 0xd000_0000, 4096);
    expect(readl(k, va)).toBe(-1);
    expect(writel(k, va, 1)).toBe(false);
    expect(k.counts.kernelErrors).toBe(2);
  });

  it("an emulated device's MSI lands in the VM's virtual local APIC: injected, and its EOI does not exit", () => {
    const b = kvmBuild();
    const disk = b.vm.addDisk({ image: new MemoryDiskImage(64) });
    b.vm.assignPciResources();
    const k = bootGuest(b);
    const ecam = ioremap(k, b.vm.pci.ecamBase, 1 << 20);
    const drv = new TestDiskDriver(k, ecam, disk.pci);
    // The guest's MSI setup: message address and data in the capability, then enable (INTx off).
    const cap = ecam + (disk.pci.bdf << 12) + disk.pci.msiCap;
    writel(k, cap + 4, 0xfee0_0000); // PCI_MSI_ADDRESS_LO: APIC ID 0
    writel(k, cap + 8, 0x41); // PCI_MSI_DATA_32: vector 0x41, fixed, edge
    writel(k, cap, 1 << 16); // PCI_MSI_FLAGS_ENABLE (flags are the upper half of the dword)
    expect(disk.pci.msiEnabled).toBe(true);
    const lapic = b.kvm.lapic(b.d);
    const vectors: number[] = [];
    lapic.onDeliver = (vector, apic) => {
      vectors.push(vector);
      writel(k, drv.regs + 0x30, readl(k, drv.regs + 0x2c)); // INT_ACK what INT_STATUS holds
      apic.eoi(); // virtualized: no exit
    };
    const inj0 = b.vm.injections;
    const eoi0 = b.vm.ioApic.eoiExits;
    const buf = k.allocPage();
    expect(drv.submit(DISK_OP_READ, 1, 0, buf * 4096)).toBe(DISK_ST_OK);
    expect(vectors).toEqual([0x41]);
    expect(b.vm.injections - inj0).toBe(1);
    expect(b.vm.ioApic.eoiExits - eoi0).toBe(0);
    expect(drv.interrupts).toBe(0); // INTx stayed quiet
    expect(lapic.highestIsr()).toBe(-1);
  });
});
