// The guest drivers in a Xen PV dom0: the same code as on bare metal (guest/test/drivers.test.ts),
// now with pv_ops.apic through PHYSDEVOP_* (xenApic), pv_ops.dma through swiotlb-xen, ioremap
// through _PAGE_IOMAP entries Xen validates with iomap, and interrupts arriving as events.

import { apicHooks } from "@hyperlab/apic-hooks";
import { createHypervisor, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import {
  bootXenPvKernel,
  type GuestKernel,
  hldiskProbe,
  hlnicProbe,
  ioremapOps,
  type PciDev,
  pciScanBus,
  readl,
  xenApic,
} from "@hyperlab/guest";
import { iomap } from "@hyperlab/iomap";
import {
  createMachine,
  createPlatform,
  DISK_MAGIC,
  DISK_SECTOR_SIZE,
  DISK_ST_OK,
  DiskController,
  LoopbackPort,
  MemoryDiskImage,
  Nic,
} from "@hyperlab/machine";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { describe, expect, it } from "vitest";
import { swiotlbDma, swiotlbOf } from "../src/index";

function xenDom0() {
  const machine = createMachine({ ramBytes: 128 << 20, cpus: 1, seed: 12 });
  const platform = createPlatform(machine);
  const image = new MemoryDiskImage(64);
  for (let i = 0; i < image.bytes.length; i++) image.bytes[i] = (i * 13 + (i >> 9)) & 0xff;
  const disk = new DiskController(platform.pci, { image });
  const nic = new Nic(platform.pci);
  nic.attach(new LoopbackPort(nic));
  platform.pci.assignResources();
  const hv = createHypervisor({
    machine,
    plugins: [pvMmu(), evtchn2l(), schedCredit(), apicHooks({ platform }), iomap()],
  }).boot();
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 8192 + 16 });
  const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: dom0, nrPages: 8192 });
  const k = bootXenPvKernel(hv, dom0, {
    startInfoVa: b.rsi,
    plugins: [swiotlbDma(), xenApic(), ioremapOps()],
  });
  return { machine, platform, image, disk, nic, hv, dom0, k };
}

function scan(k: GuestKernel, ecamBase: number): PciDev[] {
  const devs = pciScanBus(k, { ecamBase });
  if (typeof devs === "number") throw new Error(`scan: ${devs}`);
  return devs;
}

/** Two free pfns next to each other whose machine frames are not. */
function straddlingPair(k: GuestKernel): number {
  const p2m = k.xen!.p2m;
  const pages: number[] = [];
  for (let i = 0; i < 64; i++) pages.push(k.allocPage());
  pages.sort((a, b) => a - b);
  for (let i = 0; i + 1 < pages.length; i++) {
    const p = pages[i];
    if (pages[i + 1] === p + 1 && p2m[p + 1] !== p2m[p] + 1) return p;
  }
  return -1;
}

describe("the disk driver in a Xen PV dom0", () => {
  for (const mode of ["intx", "msi"] as const) {
    it(`DMAs by machine address and completes from the event (${mode}); the GSI irq is the GSI`, () => {
      const { k, platform, image, disk, hv, dom0 } = xenDom0();
      const [diskDev] = scan(k, platform.pci.ecamBase);
      const d = hldiskProbe(k, diskDev, { irq: mode });
      if (typeof d === "number") throw new Error(`probe ${d}`);
      expect(readl(k, d.regs)).toBe(DISK_MAGIC); // BAR0 through a _PAGE_IOMAP entry
      if (mode === "intx") expect(d.irq.irq).toBe(disk.pci.gsi);
      else expect(d.irq.irq).toBeGreaterThanOrEqual(24);
      const pfn = k.allocPage();
      const seen: number[] = [];
      expect(d.submit({ op: "read", sector: 5, count: 1, pfn, done: (s) => seen.push(s) })).toBe(0);
      // Under Xen the interrupt is an event: nothing runs until the upcall.
      expect(seen).toEqual([]);
      expect(k.events!.xenEvtchnDoUpcall(0)).toBe(1);
      expect(seen).toEqual([DISK_ST_OK]);
      const page = k.ram.frameBytes(k.frameOf(pfn));
      expect([...page.subarray(0, DISK_SECTOR_SIZE)]).toEqual([
        ...image.bytes.subarray(5 * DISK_SECTOR_SIZE, 6 * DISK_SECTOR_SIZE),
      ]);
      // The level line was released by PHYSDEVOP_eoi; nothing is left in flight.
      const irqs = hv.slot("irq");
      if (mode === "intx") {
        expect(hv.machine.irqs.inService(disk.pci.gsi)).toBe(false);
        expect(irqs.pirqStatus(dom0, disk.pci.gsi).inFlight).toBe(false);
      } else {
        expect(disk.pci.msiSent).toBe(1);
      }
      expect(k.counts.kernelErrors).toBe(0);
    });
  }

  it("a buffer straddling two scattered machine frames is bounced, and the data lands in it", () => {
    const { k, platform, image } = xenDom0();
    const [diskDev] = scan(k, platform.pci.ecamBase);
    const d = hldiskProbe(k, diskDev);
    if (typeof d === "number") throw new Error(`probe ${d}`);
    const pfn = straddlingPair(k);
    expect(pfn).toBeGreaterThanOrEqual(0);
    const s = swiotlbOf(k);
    const bounces = s.counts.bounces;
    const seen: number[] = [];
    // 1 KiB at offset 3584: half in each page.
    expect(
      d.submit({ op: "read", sector: 7, count: 2, pfn, offset: 3584, done: (x) => seen.push(x) }),
    ).toBe(0);
    k.events!.xenEvtchnDoUpcall(0);
    expect(seen).toEqual([DISK_ST_OK]);
    expect(s.counts.bounces).toBe(bounces + 1);
    const a = k.ram.frameBytes(k.frameOf(pfn));
    const b = k.ram.frameBytes(k.frameOf(pfn + 1));
    const want = image.bytes.subarray(7 * DISK_SECTOR_SIZE, 9 * DISK_SECTOR_SIZE);
    expect([...a.subarray(3584), ...b.subarray(0, 512)]).toEqual([...want]);
  });
});

describe("the NIC driver in a Xen PV dom0", () => {
  it("sends and receives through loopback with MSI, every frame as an event", () => {
    const { k, platform, nic } = xenDom0();
    const devs = scan(k, platform.pci.ecamBase);
    const got: Uint8Array[] = [];
    const n = hlnicProbe(k, devs[1], { irq: "msi", onReceive: (f) => got.push(f) });
    if (typeof n === "number") throw new Error(`probe ${n}`);
    expect([...n.mac]).toEqual([...nic.mac]);
    const frame = new Uint8Array(64).fill(0x11);
    frame.set(n.mac, 0);
    for (let i = 0; i < 3; i++) {
      expect(n.xmit(frame)).toBe(0);
      expect(k.events!.xenEvtchnDoUpcall(0)).toBe(1);
    }
    expect(got).toHaveLength(3);
    expect([...got[2]]).toEqual([...frame]);
    expect(n.counts.txFrames).toBe(3);
    expect(n.txInFlight()).toBe(0);
  });
});
