import { ENODEV, SIF_INITDOMAIN } from "@hyperlab/abi";
import { isHyperlabError } from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import {
  createGuestPort,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_NONE,
  DMA_TO_DEVICE,
  type DmaDevice,
  type DmaSgEntry,
  defineGuestPlugin,
  dmaSetCoherentMask,
  dmaSetMask,
  E_IOMAP,
  type GuestErrorCode,
  MSI_ADDR_BASE,
  PAGE_KERNEL,
  PAGE_KERNEL_IO,
  PAGE_OFFSET,
  startNativeKernel,
  type XenMmuOps,
} from "../src/index";
import { nativeBuild, xenBuild } from "./helpers";

// A package adds a pv_ops group by declaration merging, as it would from its own plugin.ts.
interface PvClocksourceOps {
  /** Reads the clocksource (a counter). */
  read(): number;
}
declare module "../src/pv-ops" {
  interface PvOps {
    clocksource: PvClocksourceOps;
  }
}

const clocksource = (provide?: () => number) =>
  defineGuestPlugin({
    name: provide === undefined ? "clocksource" : "clocksource-hv",
    defines:
      provide === undefined
        ? { clocksource: (k) => ({ read: () => k.port.clock.now + 1 }) }
        : undefined,
    provides: provide === undefined ? [] : ["clocksource"],
    setup(ctx) {
      if (provide !== undefined) ctx.provide("clocksource", { read: provide });
    },
  });

function code(fn: () => unknown, codes: GuestErrorCode[]): string {
  try {
    fn();
  } catch (e) {
    if (isHyperlabError(e, codes)) return e.code;
    throw e;
  }
  return "no error";
}

describe("pv_ops groups are open", () => {
  it("a plugin defines a new group with its native default; another may provide it", () => {
    const { hv } = nativeBuild(256);
    const d = hv.createDomain({ domid: 2, maxVcpus: 1, maxPages: 300 });
    const frames: number[] = [];
    for (let i = 0; i < 256; i++) frames.push(hv.allocDomainPages(d, 0));
    const k = startNativeKernel(createGuestPort(hv, d), frames, { plugins: [clocksource()] });
    expect(k.ops.clocksource.read()).toBe(hv.machine.clock.now + 1);
    expect(k.describe().pvOps.clocksource).toBe("native");

    const d3 = hv.createDomain({ domid: 3, maxVcpus: 1, maxPages: 300 });
    const f3: number[] = [];
    for (let i = 0; i < 256; i++) f3.push(hv.allocDomainPages(d3, 0));
    const k3 = startNativeKernel(createGuestPort(hv, d3), f3, {
      plugins: [clocksource(), clocksource(() => 7)],
    });
    expect(k3.ops.clocksource.read()).toBe(7);
    expect(k3.describe().pvOps.clocksource).toBe("clocksource-hv");
  });

  it("a group needs a default: naming one nobody defines, or defining one twice, is refused", () => {
    const { hv } = nativeBuild(256);
    const boot = (plugins: ReturnType<typeof clocksource>[]) => {
      const d = hv.createDomain({ maxVcpus: 1, maxPages: 300 });
      const frames: number[] = [];
      for (let i = 0; i < 256; i++) frames.push(hv.allocDomainPages(d, 0));
      return () => startNativeKernel(createGuestPort(hv, d), frames, { plugins });
    };
    const codes: GuestErrorCode[] = ["PV_OPS_GROUP_NO_DEFAULT", "PV_OPS_GROUP_TWICE"];
    expect(code(boot([clocksource(() => 7)]), codes)).toBe("PV_OPS_GROUP_NO_DEFAULT");
    const again = defineGuestPlugin({
      name: "clocksource-again",
      defines: { clocksource: () => ({ read: () => 0 }) },
      setup() {},
    });
    expect(code(boot([clocksource(), again]), codes)).toBe("PV_OPS_GROUP_TWICE");
    const builtin = defineGuestPlugin({
      name: "redefines-dma",
      defines: { dma: () => ({}) as never },
      setup() {},
    });
    expect(code(boot([builtin]), codes)).toBe("PV_OPS_GROUP_TWICE");
  });
});

const dev = (): DmaDevice => ({ name: "disk", dmaMaskBits: 32, coherentDmaMaskBits: 32 });

describe("pv_ops.dma, native default (dma-direct)", () => {
  it("maps a buffer to its physical address; a mask too narrow is a mapping error", () => {
    const { kernel: k } = nativeBuild(256);
    const dma = k.ops.dma;
    const pfn = k.allocPage();
    expect(dma.mapPage(dev(), pfn, 0x123, 512, DMA_TO_DEVICE)).toBe(pfn * 4096 + 0x123);
    // A pfn above 16 MiB is out of reach of a 24-bit device.
    const high = k.nrPfns - 1;
    const narrow: DmaDevice = { name: "isa", dmaMaskBits: 24, coherentDmaMaskBits: 24 };
    expect(high * 4096).toBeGreaterThan(2 ** 24);
    expect(dma.mapPage(narrow, high, 0, 4096, DMA_FROM_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(dma.mapPage(dev(), k.nrPfns, 0, 16, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(dma.mapPage(dev(), pfn, 0, 0, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    // x86 is coherent: syncs and unmap change nothing, but check the direction.
    dma.syncSingleForCpu(dev(), pfn * 4096, 512, DMA_FROM_DEVICE);
    dma.syncSingleForDevice(dev(), pfn * 4096, 512, DMA_TO_DEVICE);
    dma.unmapPage(dev(), pfn * 4096, 512, DMA_TO_DEVICE);
    const bad: GuestErrorCode[] = ["DMA_BAD_DIRECTION", "DMA_BAD_MASK"];
    expect(code(() => dma.mapPage(dev(), pfn, 0, 8, DMA_NONE), bad)).toBe("DMA_BAD_DIRECTION");
    expect(code(() => dma.syncSingleForCpu(dev(), 0, 8, 7 as never), bad)).toBe(
      "DMA_BAD_DIRECTION",
    );
  });

  it("scatter-gather maps every entry, or none when one fails", () => {
    const { kernel: k } = nativeBuild(256);
    const dma = k.ops.dma;
    const a = k.allocPage();
    const b = k.allocPage();
    const sg = (pfns: number[]): DmaSgEntry[] =>
      pfns.map((pfn, i) => ({ pfn, offset: i * 8, length: 100, busAddr: -1, busLength: 0 }));
    const ok = sg([a, b]);
    expect(dma.mapSg(dev(), ok, DMA_BIDIRECTIONAL)).toBe(2);
    expect(ok.map((e) => e.busAddr)).toEqual([a * 4096, b * 4096 + 8]);
    expect(ok.map((e) => e.busLength)).toEqual([100, 100]);
    dma.syncSgForCpu(dev(), ok, DMA_BIDIRECTIONAL);
    dma.syncSgForDevice(dev(), ok, DMA_BIDIRECTIONAL);
    dma.unmapSg(dev(), ok, DMA_BIDIRECTIONAL);
    expect(ok[0].busAddr).toBe(DMA_MAPPING_ERROR);
    const failing = sg([a, k.nrPfns + 5, b]);
    expect(dma.mapSg(dev(), failing, DMA_TO_DEVICE)).toBe(0);
    expect(failing.every((e) => e.busAddr === DMA_MAPPING_ERROR && e.busLength === 0)).toBe(true);
  });

  it("coherent memory is zeroed, contiguous, under the mask, and goes back when freed", () => {
    const { kernel: k } = nativeBuild(256);
    const dma = k.ops.dma;
    const before = k.freePages;
    const probe = k.allocPage();
    k.ram.write32(k.frameOf(probe) * 4096 + 4, 0xdead);
    k.freePage(probe);
    const c = dma.allocCoherent(dev(), 3 * 4096)!;
    expect(c).not.toBeNull();
    expect(c.busAddr).toBe(c.pfn * 4096);
    expect(c.va).toBe(PAGE_OFFSET + c.pfn * 4096);
    expect(k.freePages).toBe(before - 3);
    for (let i = 0; i < 3 * 1024; i++) expect(k.ram.read32(c.busAddr + i * 4)).toBe(0);
    dma.freeCoherent(dev(), 3 * 4096, c.pfn, c.busAddr);
    expect(k.freePages).toBe(before);
    expect(dma.allocCoherent(dev(), 0)).toBeNull();
    expect(dma.allocCoherent(dev(), (before + 1) * 4096)).toBeNull();
    expect(k.freePages).toBe(before); // a failed allocation gives everything back
  });

  it("dma_set_mask accepts 24 to 64 bits (-EIO below ZONE_DMA), and throws on a nonsense width", () => {
    const { kernel: k } = nativeBuild(256);
    const d = dev();
    expect(dmaSetMask(k.ops.dma, d, 16)).toBe(-5);
    expect(d.dmaMaskBits).toBe(32);
    expect(dmaSetMask(k.ops.dma, d, 64)).toBe(0);
    expect(d.dmaMaskBits).toBe(64);
    expect(dmaSetCoherentMask(k.ops.dma, d, 24)).toBe(0);
    expect(d.coherentDmaMaskBits).toBe(24);
    expect(code(() => dmaSetMask(k.ops.dma, d, 65), ["DMA_BAD_MASK"])).toBe("DMA_BAD_MASK");
  });

  it("under Xen PV the native ops hand the device the pfn, not the machine frame", () => {
    const { kernel: k } = xenBuild(2048);
    const pfn = k.allocPage();
    const bus = k.ops.dma.mapPage(dev(), pfn, 0, 4096, DMA_TO_DEVICE);
    expect(bus).toBe(pfn * 4096);
    // The device would write another page: why a Xen kernel replaces pv_ops.dma (swiotlb-xen).
    expect(k.frameOf(pfn)).not.toBe(pfn);
  });
});

describe("pv_ops.apic, native default (the kernel programs the IO-APIC)", () => {
  it("a GSI's irq is the GSI; its redirection entry reads back; a level line waits for EOI", () => {
    const { hv, kernel: k } = nativeBuild(256);
    const apic = k.ops.apic;
    const lines = hv.machine.irqs;
    expect(apic.ioApicRead(0, 1)).toBe(((lines.nrLines - 1) << 16) | 0x20);
    expect(apic.setupGsi(19, "level", "low")).toBe(19);
    const rte = apic.ioApicRead(0, 0x10 + 2 * 19);
    expect(rte & (1 << 15)).not.toBe(0); // level
    expect(rte & (1 << 13)).not.toBe(0); // active low
    expect(rte & (1 << 16)).not.toBe(0); // masked until the driver unmasks
    expect(rte & 0xff).toBeGreaterThanOrEqual(0x20);
    const seen: number[] = [];
    expect(apic.bindIrq(19, (irq) => seen.push(irq))).toBe(0);
    expect(apic.unmask(19)).toBe(0);
    lines.raise(19);
    expect(seen).toEqual([19]);
    expect(apic.ioApicRead(0, 0x10 + 2 * 19) & (1 << 14)).not.toBe(0); // remote IRR: in service
    lines.raise(19);
    expect(seen).toEqual([19]); // not again before the EOI
    lines.lower(19);
    expect(apic.eoi(19)).toBe(0);
    expect(apic.ioApicRead(0, 0x10 + 2 * 19) & (1 << 14)).toBe(0);
    lines.raise(19);
    expect(seen).toEqual([19, 19]);
    expect(apic.mask(19)).toBe(0);
    expect(apic.ioApicRead(0, 0x10 + 2 * 19) & (1 << 16)).not.toBe(0);
  });

  it("ioApicWrite programs trigger and mask; an MSI gets a dynamic irq and its message", () => {
    const { hv, kernel: k } = nativeBuild(256);
    const apic = k.ops.apic;
    apic.ioApicWrite(0, 0x10 + 2 * 5, 0x41 | (1 << 15));
    expect(hv.machine.irqs.state(5)).toMatchObject({ trigger: "level", masked: false });
    expect(apic.ioApicRead(0, 0x10 + 2 * 5) & 0xff).toBe(0x41);
    apic.ioApicWrite(0, 0x10 + 2 * 5 + 1, 0x0300_0000);
    expect(apic.ioApicRead(0, 0x10 + 2 * 5 + 1)).toBe(0x0300_0000);
    expect(apic.ioApicRead(1, 1)).toBe(0xffff_ffff); // there is one IO-APIC
    expect(apic.setupMsi({ bus: Number.NaN, devfn: 0 })).toBeLessThan(0);
    const msi = apic.setupMsi({ bus: 0, devfn: 3 << 3 });
    if (typeof msi === "number") throw new Error(`setupMsi: ${msi}`);
    expect(msi.irq).toBe(hv.machine.irqs.nrLines);
    expect(msi.address).toBe(MSI_ADDR_BASE);
    expect(msi.data).toBeGreaterThanOrEqual(0x20);
    expect(apic.eoi(msi.irq)).toBe(0);
    expect(apic.setupGsi(hv.machine.irqs.nrLines, "edge", "high")).toBeLessThan(0);
    expect(apic.eoi(msi.irq + 1)).toBeLessThan(0);
  });

  it("a Xen PV kernel cannot program the IO-APIC itself: -ENODEV", () => {
    const { hv, kernel: k } = xenBuild(2048);
    const apic = k.ops.apic;
    expect(apic.setupGsi(19, "level", "low")).toBe(-ENODEV);
    expect(apic.setupMsi({ bus: 0, devfn: 8 })).toBe(-ENODEV);
    expect(apic.eoi(19)).toBe(-ENODEV);
    apic.ioApicWrite(0, 0x10 + 2 * 19, 0);
    expect(hv.machine.irqs.state(19).masked).toBe(true); // untouched
    expect(apic.ioApicRead(0, 1)).toBe(0xffff_ffff);
  });
});

describe("pv_ops.mmu builds RAM and I/O entries (_PAGE_IOMAP)", () => {
  it("native: RAM and I/O frames are kept as given, and the software bit is dropped", () => {
    const { kernel: k } = nativeBuild(256);
    const m = k.ops.mmu;
    expect(m.makePte(77, PAGE_KERNEL)).toBe(77 * 4096 + PAGE_KERNEL);
    expect(m.makeIoPte(0xfebf0, PAGE_KERNEL_IO)).toBe(0xfebf0 * 4096 + PAGE_KERNEL);
  });

  it("Xen PV: RAM goes through the P2M, an I/O entry keeps its frame and _PAGE_IOMAP", () => {
    const { kernel: k } = xenBuild(2048);
    const m = k.ops.mmu;
    const pfn = 300;
    expect(m.makePte(pfn, PAGE_KERNEL)).toBe(k.frameOf(pfn) * 4096 + PAGE_KERNEL);
    const io = m.makeIoPte(0xfebf0, PAGE_KERNEL);
    expect(io).toBe(0xfebf0 * 4096 + PAGE_KERNEL_IO);
    expect(m.makePte(0xfebf0, PAGE_KERNEL_IO)).toBe(io); // make_pte decides by the bit
    expect(k.entryPfn(io)).toBe(-1); // an I/O entry names no page of this kernel
    // A domU may not map ISA space untranslated: below 1 MiB the frame is a pfn of its RAM.
    expect((k.xen!.flags & SIF_INITDOMAIN) === 0).toBe(true);
    expect(m.makeIoPte(0xa0, PAGE_KERNEL_IO)).toBe(k.frameOf(0xa0) * 4096 + PAGE_KERNEL);
    expect((m as XenMmuOps).initialDomain).toBe(false);
    expect(E_IOMAP).toBe(1 << 10);
  });
});
