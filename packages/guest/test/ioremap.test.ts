import { _PAGE_PCD, _PAGE_RW, EINVAL, EPERM } from "@hyperlab/abi";
import { createHypervisor, type Hypervisor } from "@hyperlab/core";
import { iomap } from "@hyperlab/iomap";
import { createMachine } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { describe, expect, it } from "vitest";
import {
  bootNativeKernel,
  bootXenPvKernel,
  E_IOMAP,
  E_PRESENT,
  fixToVirt,
  type GuestKernel,
  type IoremapStrategy,
  ioremap,
  ioremapOps,
  mmapBar,
  PAGE_KERNEL,
  remapPfnRange,
  setFixmapIo,
} from "../src/index";

const DEV_BASE = 0xf000_0000;
const DEV_MFN = DEV_BASE / 4096;

function withDevice(ramBytes: number) {
  const machine = createMachine({ ramBytes, cpus: 1, seed: 1 });
  const regs = new Uint32Array(2048);
  machine.mmio.register({
    name: "regs",
    base: DEV_BASE,
    len: 8192,
    read: (o) => regs[o >>> 2],
    write: (o, _w, v) => {
      regs[o >>> 2] = v;
    },
  });
  return { machine, regs };
}

/** A Xen host with pv-mmu and iomap, and one PV kernel (dom0 when domid is 0). */
function xenKernel(strategy: IoremapStrategy, domid = 0) {
  const { machine, regs } = withDevice(64 << 20);
  const hv = createHypervisor({ machine, plugins: [pvMmu(), iomap()] }).boot();
  const d = hv.createDomain({ domid, maxVcpus: 1, maxPages: 2048 + 16 });
  const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 2048 });
  const k = bootXenPvKernel(hv, d, { startInfoVa: b.rsi, plugins: [ioremapOps({ strategy })] });
  return { hv, k, regs };
}

/** The entry mapping kernel `va`, read from the kernel's own tables. */
function entryOf(k: GuestKernel, va: number): number {
  const pte = k.ptePage(k.initMm, va, false);
  return k.readEntry(pte, Math.floor(va / 4096) % 512);
}

function load(hv: Hypervisor, k: GuestKernel, va: number): number {
  return hv.slot("pv-mmu").read(k.vcpu(0), va, 4);
}

function store(hv: Hypervisor, k: GuestKernel, va: number, x: number): boolean {
  return hv.slot("pv-mmu").write(k.vcpu(0), va, 4, x);
}

describe("ioremap under Xen PV: both strategies give the same machine mapping", () => {
  for (const strategy of ["iomap-bit", "identity-p2m"] as const) {
    it(`${strategy}: the entry holds the device frame untranslated; MMIO reaches the registers`, () => {
      const { hv, k, regs } = xenKernel(strategy);
      const va = ioremap(k, DEV_BASE + 0x10, 4096);
      expect(va).toBeGreaterThan(0);
      expect(va % 4096).toBe(0x10);
      const e = entryOf(k, va);
      expect(Math.floor(e / 4096) % 2 ** 40).toBe(DEV_MFN);
      expect((e & E_IOMAP) !== 0).toBe(strategy === "iomap-bit");
      // Xen forced it uncached.
      expect(e & _PAGE_PCD).toBe(_PAGE_PCD);
      expect(store(hv, k, va, 0xabcd)).toBe(true);
      expect(regs[4]).toBe(0xabcd);
      regs[5] = 77;
      expect(load(hv, k, va + 4)).toBe(77);
      // The fixmap and a BAR mmap reach the same registers.
      expect(setFixmapIo(k, 3, DEV_BASE + 4096)).toBe(0);
      regs[1024] = 5;
      expect(load(hv, k, fixToVirt(3))).toBe(5);
      const bar = 0xc800_0000_0000;
      expect(mmapBar(k, k.initMm, bar, DEV_BASE, 8192, PAGE_KERNEL)).toBe(0);
      expect(load(hv, k, bar + 4096)).toBe(5);
      expect(store(hv, k, bar + 8, 9)).toBe(true);
      expect(regs[2]).toBe(9);
    });
  }

  it("refuses RAM: ioremap of a RAM pfn is -EINVAL; remap_pfn_range of RAM goes through the P2M", () => {
    const { k } = xenKernel("iomap-bit");
    expect(ioremap(k, 0x1000, 4096)).toBe(-EINVAL);
    expect(ioremap(k, DEV_BASE, 0)).toBe(-EINVAL);
    const pfn = k.allocPage();
    const va = 0xc800_0010_0000;
    expect(remapPfnRange(k, k.initMm, va, pfn, 4096, PAGE_KERNEL)).toBe(0);
    const e = entryOf(k, va);
    expect(Math.floor(e / 4096) % 2 ** 40).toBe(k.xen!.p2m[pfn]);
    expect(e & E_IOMAP).toBe(0);
  });

  it("a domU without I/O memory permission gets Xen's -EPERM, and the device sees nothing", () => {
    for (const strategy of ["iomap-bit", "identity-p2m"] as const) {
      const { hv, k, regs } = xenKernel(strategy, 1);
      expect(ioremap(k, DEV_BASE, 4096)).toBe(-EPERM);
      // Granted by the toolstack, the same call succeeds.
      hv.slot("iomap").iomemPermitAccess(k.vcpu(0).domain, DEV_MFN, DEV_MFN);
      const va = ioremap(k, DEV_BASE, 4096);
      expect(va).toBeGreaterThan(0);
      expect(store(hv, k, va, 3)).toBe(true);
      expect(regs[0]).toBe(3);
    }
  });
});

describe("ioremap on bare metal", () => {
  it("keeps the physical frame and drops the software bit, with or without the plugin", () => {
    for (const plugins of [[ioremapOps({ strategy: "identity-p2m" })], []]) {
      const { machine } = withDevice(64 << 20);
      const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
      const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 2048 + 16 });
      const k = bootNativeKernel(hv, d, { nrPages: 2048, plugins });
      const va = ioremap(k, DEV_BASE, 4096);
      expect(va).toBeGreaterThan(0);
      const e = entryOf(k, va);
      expect(Math.floor(e / 4096) % 2 ** 40).toBe(DEV_MFN);
      expect(e & E_IOMAP).toBe(0);
      expect(e & (E_PRESENT | _PAGE_RW)).toBe(E_PRESENT | _PAGE_RW);
      expect(ioremap(k, 0x2000, 4096)).toBe(-EINVAL);
    }
  });
});
