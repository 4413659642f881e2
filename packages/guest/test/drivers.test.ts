import { EBUSY, EINVAL, EIO, ENODEV, ENOMEM } from "@hyperlab/abi";
import { createHypervisor } from "@hyperlab/core";
import {
  createMachine,
  createPlatform,
  DISK_SECTOR_SIZE,
  DISK_ST_OK,
  DiskController,
  LoopbackPort,
  MemoryDiskImage,
  Nic,
} from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { describe, expect, it } from "vitest";
import {
  bootNativeKernel,
  DMA_MAPPING_ERROR,
  defineGuestPlugin,
  dmaDirectOps,
  type GuestKernel,
  type GuestPlugin,
  hldiskMatch,
  hldiskProbe,
  hlnicMatch,
  hlnicProbe,
  type PciDev,
  pciScanBus,
  readl,
  requestIrq,
  writel,
} from "../src/index";

/** A bare-metal machine with the disk controller and the NIC, and a native kernel on it. */
function nativeHost(options: { apics?: boolean; plugins?: GuestPlugin[] } = {}) {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 5 });
  const platform = createPlatform(machine);
  const image = new MemoryDiskImage(64);
  for (let i = 0; i < image.bytes.length; i++) image.bytes[i] = (i * 7 + (i >> 9)) & 0xff;
  const disk = new DiskController(platform.pci, { image });
  const nic = new Nic(platform.pci);
  nic.attach(new LoopbackPort(nic));
  platform.pci.assignResources();
  const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
  const d = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 4096 + 16 });
  const k = bootNativeKernel(hv, d, {
    nrPages: 4096,
    apics: options.apics === false ? undefined : platform.apics,
    plugins: options.plugins,
  });
  return { machine, platform, image, disk, nic, hv, k };
}

function scan(k: GuestKernel, ecamBase: number): PciDev[] {
  const devs = pciScanBus(k, { ecamBase });
  if (typeof devs === "number") throw new Error(`scan: ${devs}`);
  return devs;
}

describe("PCI probing through ECAM on bare metal", () => {
  it("finds both functions with their ids and the GSI firmware routed", () => {
    const { k, platform, disk, nic } = nativeHost();
    const devs = scan(k, platform.pci.ecamBase);
    expect(devs.map((d) => d.devfn)).toEqual([disk.pci.bdf & 0xff, nic.pci.bdf & 0xff]);
    expect(devs.filter(hldiskMatch)).toHaveLength(1);
    expect(devs.filter(hlnicMatch)).toHaveLength(1);
    expect(devs[0].irqLine).toBe(disk.pci.gsi);
    expect(devs[1].irqLine).toBe(nic.pci.gsi);
    expect(k.counts.kernelErrors).toBe(0);
    // Probing the wrong driver on a function is -ENODEV; a bad window is -EINVAL.
    expect(hldiskProbe(k, devs[1])).toBe(-ENODEV);
    expect(hlnicProbe(k, devs[0])).toBe(-ENODEV);
    expect(pciScanBus(k, { ecamBase: -1 })).toBe(-EINVAL);
  });

  it("MMIO through an ioremap mapping reaches the registers on native paging; a fault reads -1 and counts a kernel error", () => {
    const { k, platform } = nativeHost();
    const [diskDev] = scan(k, platform.pci.ecamBase);
    const d = hldiskProbe(k, diskDev);
    if (typeof d === "number") throw new Error(`probe ${d}`);
    expect(readl(k, d.regs)).toBe(0x4b444c48); // DISK_MAGIC read through the mapping
    expect(writel(k, d.regs + 0x34, 0)).toBe(true); // INT_MASK
    expect(readl(k, d.regs + 0x34)).toBe(0);
    const f0 = k.counts.kernelErrors;
    expect(readl(k, 0x1234_0000_0000)).toBe(-1);
    expect(writel(k, 0x1234_0000_0000, 1)).toBe(false);
    expect(k.counts.kernelErrors).toBe(f0 + 2);
    // The port refuses what no CPU instruction does: another cpu, a width of 3, a page straddle.
    expect(k.port.mmioRead(1, d.regs, 4)).toBe(-1);
    expect(k.port.mmioRead(0, d.regs, 3 as 4)).toBe(-1);
    expect(k.port.mmioRead(0, d.regs + 4094, 4)).toBe(-1);
    expect(k.port.mmioWrite(0, d.regs + 4095, 2, 1)).toBe(false);
    expect(k.port.mmioWrite(-1, d.regs, 4, 1)).toBe(false);
    // Narrow accesses reach the register's low bytes.
    expect(k.port.mmioRead(0, d.regs, 4)).toBe(0x4b444c48);
  });
});

describe("the disk driver on bare metal", () => {
  for (const mode of ["intx", "msi"] as const) {
    it(`reads and writes sectors by DMA and completes them from its ${mode} interrupt`, () => {
      const { k, platform, image, disk, machine } = nativeHost();
      const [diskDev] = scan(k, platform.pci.ecamBase);
      const d = hldiskProbe(k, diskDev, { irq: mode });
      if (typeof d === "number") throw new Error(`probe ${d}`);
      expect(d.capacity).toBe(64);
      expect(d.irq.msi).toBe(mode === "msi");
      if (mode === "intx") expect(d.irq.irq).toBe(disk.pci.gsi);
      else expect(d.irq.irq).toBeGreaterThanOrEqual(24);
      const pfn = k.allocPage();
      const seen: number[] = [];
      expect(d.submit({ op: "read", sector: 3, count: 2, pfn, done: (s) => seen.push(s) })).toBe(0);
      // Native: the doorbell's interrupt ran the handler before submit returned.
      expect(seen).toEqual([DISK_ST_OK]);
      const page = k.ram.frameBytes(k.frameOf(pfn));
      expect([...page.subarray(0, 2 * DISK_SECTOR_SIZE)]).toEqual([
        ...image.bytes.subarray(3 * DISK_SECTOR_SIZE, 5 * DISK_SECTOR_SIZE),
      ]);
      page.fill(0xa5, 0, DISK_SECTOR_SIZE);
      expect(d.submit({ op: "write", sector: 9, count: 1, pfn, done: (s) => seen.push(s) })).toBe(
        0,
      );
      expect(image.bytes[9 * DISK_SECTOR_SIZE + 100]).toBe(0xa5);
      expect(
        d.submit({ op: "flush", sector: 0, count: 0, pfn: 0, done: (s) => seen.push(s) }),
      ).toBe(0);
      expect(seen).toEqual([DISK_ST_OK, DISK_ST_OK, DISK_ST_OK]);
      expect(d.counts.interrupts).toBe(3);
      expect(d.inFlight()).toBe(0);
      if (mode === "intx") expect(machine.irqs.inService(disk.pci.gsi)).toBe(false);
      else expect(disk.pci.msiSent).toBe(3);
    });
  }

  it("answers a driver's mistakes with -errno and a device error through the status byte", () => {
    const { k, platform } = nativeHost();
    const [diskDev] = scan(k, platform.pci.ecamBase);
    expect(hldiskProbe(k, diskDev, { ringSize: 1 })).toBe(-EINVAL);
    const d = hldiskProbe(k, diskDev, { ringSize: 2, irq: "intx" });
    if (typeof d === "number") throw new Error(`probe ${d}`);
    const pfn = k.allocPage();
    const done = () => {};
    expect(d.submit({ op: "read", sector: 63, count: 2, pfn, done })).toBe(-EINVAL);
    expect(d.submit({ op: "read", sector: 0, count: 0, pfn, done })).toBe(-EINVAL);
    expect(d.submit({ op: "erase" as "read", sector: 0, count: 1, pfn, done })).toBe(-EINVAL);
    expect(d.submit(null as never)).toBe(-EINVAL);
    // A full ring is -EBUSY: mask the device's interrupt so nothing completes.
    writel(k, d.regs + 0x34, 0);
    expect(d.submit({ op: "read", sector: 0, count: 1, pfn, done })).toBe(0);
    expect(d.submit({ op: "read", sector: 0, count: 1, pfn, done })).toBe(-EBUSY);
    expect(d.inFlight()).toBe(1);
  });

  it("a function without MSI or a routed pin gets -ENODEV from requestIrq", () => {
    const { k, platform } = nativeHost();
    const [diskDev] = scan(k, platform.pci.ecamBase);
    expect(requestIrq(k, { ...diskDev, irqLine: 0xff }, () => {}, "intx")).toBe(-ENODEV);
    expect(requestIrq(k, diskDev, () => {}, "bogus" as "intx")).toBe(-EINVAL);
    expect(requestIrq(k, diskDev, null as never)).toBe(-EINVAL);
  });
});

describe("the NIC driver on bare metal", () => {
  for (const mode of ["intx", "msi"] as const) {
    it(`sends a frame and receives it back through loopback (${mode})`, () => {
      const { k, platform, nic } = nativeHost();
      const devs = scan(k, platform.pci.ecamBase);
      const got: Uint8Array[] = [];
      const n = hlnicProbe(k, devs[1], { irq: mode, onReceive: (f) => got.push(f) });
      if (typeof n === "number") throw new Error(`probe ${n}`);
      expect([...n.mac]).toEqual([...nic.mac]);
      const frame = new Uint8Array(60);
      frame.set(n.mac, 0);
      frame.set([2, 0, 0, 0, 0, 9], 6);
      frame[12] = 0x08;
      for (let i = 14; i < 60; i++) frame[i] = i;
      for (let i = 0; i < 40; i++) expect(n.xmit(frame)).toBe(0); // more than a ring: reused
      expect(got).toHaveLength(40);
      expect([...got[39]]).toEqual([...frame]);
      expect(n.counts.txFrames).toBe(40);
      expect(n.counts.rxFrames).toBe(40);
      expect(n.txInFlight()).toBe(0);
      expect(nic.stats.rxDropped).toBe(0);
      expect(n.xmit(new Uint8Array(5))).toBe(-EINVAL);
    });
  }
});

describe("without the LAPIC in the port, MSI has nowhere to land", () => {
  it("the kernel still sets it up; the device's message is not taken by any handler", () => {
    const { k, platform, disk } = nativeHost({ apics: false });
    const [diskDev] = scan(k, platform.pci.ecamBase);
    const d = hldiskProbe(k, diskDev, { irq: "msi" });
    if (typeof d === "number") throw new Error(`probe ${d}`);
    const seen: number[] = [];
    d.submit({ op: "flush", sector: 0, count: 0, pfn: 0, done: (s) => seen.push(s) });
    expect(disk.pci.msiSent).toBe(1);
    expect(seen).toEqual([]);
  });
});

/** pv_ops.dma that refuses: every streaming map fails, and coherent memory too if asked. */
function refusingDma(coherent: boolean): GuestPlugin {
  return defineGuestPlugin({
    name: "refusing-dma",
    description: "dma-direct whose maps fail",
    provides: ["dma"],
    setup(ctx) {
      const base = dmaDirectOps(ctx.kernel);
      ctx.provide("dma", {
        ...base,
        mapPage: () => DMA_MAPPING_ERROR,
        allocCoherent: coherent ? base.allocCoherent.bind(base) : () => null,
      });
    },
  });
}

describe("the drivers when the DMA API refuses", () => {
  it("a refused streaming mapping is -EIO and nothing is queued; no coherent ring is -ENOMEM", () => {
    const { k, platform } = nativeHost({ plugins: [refusingDma(true)] });
    const devs = scan(k, platform.pci.ecamBase);
    const d = hldiskProbe(k, devs[0]);
    if (typeof d === "number") throw new Error(`probe ${d}`);
    const pfn = k.allocPage();
    expect(d.submit({ op: "read", sector: 0, count: 1, pfn, done: () => {} })).toBe(-EIO);
    expect(d.inFlight()).toBe(0);
    // The NIC posts its receive buffers at probe: a refused mapping fails the probe.
    expect(hlnicProbe(k, devs[1])).toBe(-EIO);
    const n = nativeHost({ plugins: [refusingDma(false)] });
    const ndevs = scan(n.k, n.platform.pci.ecamBase);
    expect(hldiskProbe(n.k, ndevs[0])).toBe(-ENOMEM);
    expect(hlnicProbe(n.k, ndevs[1])).toBe(-ENOMEM);
  });
});

describe("native MSI vectors on cpu 0's LAPIC", () => {
  it("a vector with no handler is acknowledged and dropped; a bound one runs its handler until unbound", () => {
    const { k, platform, disk } = nativeHost();
    const m = k.ops.apic.setupMsi({ bus: 0, devfn: disk.pci.bdf & 0xff });
    if (typeof m === "number") throw new Error(`setupMsi ${m}`);
    const lapic = platform.apics.lapics[0];
    const vector = m.data & 0xff;
    expect(m.address).toBe(0xfee0_0000);
    platform.apics.msi(m.address, m.data);
    expect(lapic.inIsr(vector) || lapic.inIrr(vector)).toBe(false);
    const seen: number[] = [];
    expect(k.ops.apic.bindIrq(m.irq, (irq) => seen.push(irq))).toBe(0);
    platform.apics.msi(m.address, m.data);
    // Not EOId yet: the vector stays in service until the handler's EOI.
    expect(lapic.inIsr(vector)).toBe(true);
    expect(k.ops.apic.eoi(m.irq)).toBe(0);
    expect(lapic.inIsr(vector)).toBe(false);
    expect(seen).toEqual([m.irq]);
    expect(k.ops.apic.bindIrq(m.irq, null)).toBe(0);
    platform.apics.msi(m.address, m.data);
    expect(seen).toEqual([m.irq]);
    expect(k.ops.apic.eoi(999)).toBe(-EINVAL);
  });
});
