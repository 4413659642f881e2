import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_TO_DEVICE,
  type DmaDirection,
  type DmaSgEntry,
  dmaSetMask,
  type GuestKernel,
} from "@hyperlab/guest";
import { DmaEngine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import {
  IO_TLB_SEGMENT_BYTES,
  IO_TLB_SEGMENT_PAGES,
  IO_TLB_SEGSIZE,
  SwiotlbXen,
  swiotlbOf,
  xenCreateContiguousRegion,
  xenDestroyContiguousRegion,
} from "../src/index";
import { device, xenBuild } from "./helpers";

const GiB4 = 2 ** 32;

/** Fills `len` bytes of the buffer at pseudo-physical (pfn, off) with a pattern, through its frames. */
function fill(k: GuestKernel, pfn: number, off: number, len: number, seed: number): Uint8Array {
  const data = new Uint8Array(len);
  for (let i = 0; i < len; i++) data[i] = (i * 31 + seed) & 0xff;
  writeBuf(k, pfn, off, data);
  return data;
}
function writeBuf(k: GuestKernel, pfn: number, off: number, data: Uint8Array): void {
  for (let i = 0; i < data.length; i++) {
    const p = pfn * 4096 + off + i;
    k.ram.write8(k.frameOf(Math.floor(p / 4096)) * 4096 + (p % 4096), data[i]);
  }
}
function readBuf(k: GuestKernel, pfn: number, off: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    const p = pfn * 4096 + off + i;
    out[i] = k.ram.read8(k.frameOf(Math.floor(p / 4096)) * 4096 + (p % 4096));
  }
  return out;
}
/** A run of `n` free pfns taken from the kernel (highest 2 MiB block). */
function buffer(k: GuestKernel, n = 4): number {
  const b = k.allocHugePage();
  for (let p = b + n; p < b + 512; p++) k.freePage(p);
  return b;
}

describe("map_page: direct or bounced", () => {
  it("a buffer inside one machine frame maps to its machine address, unbounced", () => {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    const pfn = buffer(kernel);
    const bus = kernel.ops.dma.mapPage(device(32), pfn, 100, 1000, DMA_TO_DEVICE);
    expect(bus).toBe(kernel.xen!.p2m[pfn] * 4096 + 100);
    expect(s.counts.bounces).toBe(0);
    expect(s.poolState).toBe("unset");
  });

  it("a buffer straddling two non-contiguous machine frames bounces, and the device reads its bytes", () => {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    const pfn = buffer(kernel);
    const p2m = kernel.xen!.p2m;
    expect(p2m[pfn + 1]).not.toBe(p2m[pfn] + 1);
    const data = fill(kernel, pfn, 3000, 3000, 7);
    const bus = kernel.ops.dma.mapPage(device(32), pfn, 3000, 3000, DMA_TO_DEVICE);
    expect(bus).not.toBe(DMA_MAPPING_ERROR);
    expect(s.counts.bounces).toBe(1);
    expect(s.pool.slotOf(bus)).toBeGreaterThanOrEqual(0);
    const seen = new Uint8Array(3000);
    expect(new DmaEngine(kernel.ram).read(bus, seen)).toBe(0);
    expect(seen).toEqual(data);
    kernel.ops.dma.unmapPage(device(32), bus, 3000, DMA_TO_DEVICE);
    expect(s.pool.used).toBe(0);
  });

  it("a straddling buffer whose frames happen to be contiguous maps directly", () => {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    // A pool segment is 64 pfns over 64 contiguous frames: a buffer there does not straddle.
    expect(s.initPool()).toBe(true);
    const pfn = s.pool.segPfn[0];
    const bus = kernel.ops.dma.mapPage(device(32), pfn, 4000, 6000, DMA_BIDIRECTIONAL);
    expect(bus).toBe(s.pool.segMaddr[0] + 4000);
    expect(s.counts.bounces).toBe(0);
  });

  it("a buffer above a 32-bit mask bounces into the pool below it; a 64-bit device gets it directly", () => {
    const { kernel } = xenBuild({ ramBytes: GiB4 + (64 << 20), nrPages: 8192 });
    const s = swiotlbOf(kernel);
    const pfn = buffer(kernel);
    expect(kernel.xen!.p2m[pfn] * 4096).toBeGreaterThanOrEqual(GiB4);
    const data = fill(kernel, pfn, 16, 512, 3);
    expect(kernel.ops.dma.mapPage(device(64), pfn, 16, 512, DMA_TO_DEVICE)).toBe(
      kernel.xen!.p2m[pfn] * 4096 + 16,
    );
    const bus = kernel.ops.dma.mapPage(device(32), pfn, 16, 512, DMA_TO_DEVICE);
    expect(bus).not.toBe(DMA_MAPPING_ERROR);
    expect(bus + 512).toBeLessThanOrEqual(GiB4);
    expect(s.counts.bounces).toBe(1);
    expect(kernel.ram.readBytes(bus, 512)).toEqual(data);
    expect(s.dmaSupported(device(32), 32)).toBe(true);
  });

  it("a device whose mask even the pool fails gets DMA_MAPPING_ERROR, and the slots go back", () => {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    expect(s.initPool()).toBe(true);
    const top = s.pool.bounds().end;
    // A 24-bit device: the pool sits below 16 MiB only if Xen had frames there; check both ways.
    const pfn = buffer(kernel);
    const bus = kernel.ops.dma.mapPage(device(24), pfn, 0, 8192, DMA_TO_DEVICE);
    if (top <= 2 ** 24) expect(bus).toBeLessThan(2 ** 24);
    else expect(bus).toBe(DMA_MAPPING_ERROR);
    if (bus === DMA_MAPPING_ERROR) expect(s.pool.used).toBe(0);
    expect(s.dmaSupported(device(24), 24)).toBe(top <= 2 ** 24);
  });

  it("bad addresses and sizes are mapping errors, never throws", () => {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    const dma = kernel.ops.dma;
    const dev = device(32);
    for (const [pfn, off, size] of [
      [-1, 0, 10],
      [kernel.nrPfns, 0, 10],
      [kernel.nrPfns - 1, 4000, 200],
      [0, 0, 0],
      [0, -5, 10],
      [0.5, 0, 10],
      [0, 0, IO_TLB_SEGMENT_BYTES * 2],
    ]) {
      expect(dma.mapPage(dev, pfn, off, size, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    }
    expect(s.counts.mappingErrors).toBe(7);
    // Unmapping or syncing what was never mapped is ignored.
    dma.unmapPage(dev, 12345, 10, DMA_FROM_DEVICE);
    dma.syncSingleForCpu(dev, Number.NaN, 10, DMA_FROM_DEVICE);
  });

  it("dma_set_mask asks the pool: a 32-bit device is supported, a 24-bit one only if the pool is below 16 MiB", () => {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    const dev = device(64);
    expect(dmaSetMask(kernel.ops.dma, dev, 32)).toBe(0);
    expect(dev.dmaMaskBits).toBe(32);
    const low = s.pool.bounds().end <= 2 ** 24;
    expect(dmaSetMask(kernel.ops.dma, dev, 24)).toBe(low ? 0 : -5);
    expect(dmaSetMask(kernel.ops.dma, dev, 20)).toBe(-5);
  });

  it("a direction that is none of the three throws SWIOTLB_BAD_DIRECTION (a driver bug)", () => {
    const { kernel } = xenBuild();
    expect(() => kernel.ops.dma.mapPage(device(32), 1, 0, 10, 3 as DmaDirection)).toThrowError(
      expect.objectContaining({ code: "SWIOTLB_BAD_DIRECTION" }),
    );
  });
});

describe("directions", () => {
  function setup() {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    const pfn = buffer(kernel);
    return { kernel, s, pfn, dma: kernel.ops.dma, dev: device(32), eng: new DmaEngine(kernel.ram) };
  }
  const deviceData = new Uint8Array(5000).map((_, i) => (i * 7 + 1) & 0xff);

  it("DMA_TO_DEVICE copies in on map and never back on unmap", () => {
    const { kernel, pfn, dma, dev, eng } = setup();
    const data = fill(kernel, pfn, 2000, 5000, 1);
    const bus = dma.mapPage(dev, pfn, 2000, 5000, DMA_TO_DEVICE);
    expect(kernel.ram.readBytes(bus, 5000)).toEqual(data);
    eng.write(bus, deviceData); // a device writing to a TO_DEVICE buffer: not copied back
    dma.unmapPage(dev, bus, 5000, DMA_TO_DEVICE);
    expect(readBuf(kernel, pfn, 2000, 5000)).toEqual(data);
  });

  it("DMA_FROM_DEVICE copies nothing in on map, and out on unmap", () => {
    const { kernel, s, pfn, dma, dev, eng } = setup();
    fill(kernel, pfn, 0, 8192, 1);
    const around = [readBuf(kernel, pfn, 1999, 1)[0], readBuf(kernel, pfn, 7000, 1)[0]];
    const bus = dma.mapPage(dev, pfn, 2000, 5000, DMA_FROM_DEVICE);
    expect(s.counts.bytesIn).toBe(0);
    expect(kernel.ram.readBytes(bus, 5000).every((b) => b === 0)).toBe(true);
    eng.write(bus, deviceData);
    dma.unmapPage(dev, bus, 5000, DMA_FROM_DEVICE);
    expect(readBuf(kernel, pfn, 2000, 5000)).toEqual(deviceData);
    // Bytes around the buffer are untouched.
    expect([readBuf(kernel, pfn, 1999, 1)[0], readBuf(kernel, pfn, 7000, 1)[0]]).toEqual(around);
  });

  it("DMA_BIDIRECTIONAL copies both ways", () => {
    const { kernel, pfn, dma, dev, eng } = setup();
    const data = fill(kernel, pfn, 2000, 5000, 9);
    const bus = dma.mapPage(dev, pfn, 2000, 5000, DMA_BIDIRECTIONAL);
    expect(kernel.ram.readBytes(bus, 5000)).toEqual(data);
    eng.write(bus, deviceData);
    dma.unmapPage(dev, bus, 5000, DMA_BIDIRECTIONAL);
    expect(readBuf(kernel, pfn, 2000, 5000)).toEqual(deviceData);
  });

  it("sync for CPU copies out (FROM_DEVICE), sync for device copies in (TO_DEVICE), only the range asked", () => {
    const { kernel, pfn, dma, dev, eng } = setup();
    fill(kernel, pfn, 2000, 5000, 4);
    const bus = dma.mapPage(dev, pfn, 2000, 5000, DMA_BIDIRECTIONAL);
    eng.write(bus, deviceData);
    dma.syncSingleForCpu(dev, bus + 100, 50, DMA_TO_DEVICE); // wrong way: nothing
    expect(readBuf(kernel, pfn, 2100, 50)).not.toEqual(deviceData.subarray(100, 150));
    dma.syncSingleForCpu(dev, bus + 100, 50, DMA_FROM_DEVICE);
    expect(readBuf(kernel, pfn, 2100, 50)).toEqual(deviceData.subarray(100, 150));
    expect(readBuf(kernel, pfn, 2150, 1)[0]).not.toBe(deviceData[150]);
    const cpu = fill(kernel, pfn, 2000, 5000, 77);
    dma.syncSingleForDevice(dev, bus, 5000, DMA_FROM_DEVICE); // wrong way: nothing
    expect(kernel.ram.readBytes(bus, 5000)).toEqual(deviceData);
    dma.syncSingleForDevice(dev, bus, 5000, DMA_TO_DEVICE);
    expect(kernel.ram.readBytes(bus, 5000)).toEqual(cpu);
    // A sync longer than the mapping copies only the mapping.
    const before = readBuf(kernel, pfn, 7000, 64);
    eng.write(bus, new Uint8Array(5000).fill(0xee));
    dma.syncSingleForCpu(dev, bus, 1 << 20, DMA_FROM_DEVICE);
    expect(readBuf(kernel, pfn, 2000, 5000).every((b) => b === 0xee)).toBe(true);
    expect(readBuf(kernel, pfn, 7000, 64)).toEqual(before);
  });
});

describe("scatter-gather", () => {
  const entry = (pfn: number, offset: number, length: number): DmaSgEntry => ({
    pfn,
    offset,
    length,
    busAddr: DMA_MAPPING_ERROR,
    busLength: 0,
  });

  it("maps every entry, bouncing only those that need it, and unmaps them", () => {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    const pfn = buffer(kernel, 8);
    const sg = [entry(pfn, 0, 4096), entry(pfn + 2, 3000, 3000), entry(pfn + 5, 10, 100)];
    const data = fill(kernel, pfn + 2, 3000, 3000, 5);
    expect(kernel.ops.dma.mapSg(device(32), sg, DMA_TO_DEVICE)).toBe(3);
    expect(sg[0].busAddr).toBe(kernel.xen!.p2m[pfn] * 4096);
    expect(sg[2].busAddr).toBe(kernel.xen!.p2m[pfn + 5] * 4096 + 10);
    expect(kernel.ram.readBytes(sg[1].busAddr, 3000)).toEqual(data);
    expect(s.counts.bounces).toBe(1);
    kernel.ops.dma.unmapSg(device(32), sg, DMA_TO_DEVICE);
    expect(s.pool.used).toBe(0);
    expect(sg.every((e) => e.busAddr === DMA_MAPPING_ERROR)).toBe(true);
  });

  it("sync_sg for CPU and for device copy each bounced entry by direction", () => {
    const { kernel } = xenBuild();
    const pfn = buffer(kernel, 8);
    const sg = [entry(pfn, 3000, 3000), entry(pfn + 4, 100, 200)];
    const dma = kernel.ops.dma;
    expect(dma.mapSg(device(32), sg, DMA_BIDIRECTIONAL)).toBe(2);
    const eng = new DmaEngine(kernel.ram);
    const devBytes = new Uint8Array(3000).fill(0x3c);
    eng.write(sg[0].busAddr, devBytes);
    dma.syncSgForCpu(device(32), sg, DMA_FROM_DEVICE);
    expect(readBuf(kernel, pfn, 3000, 3000)).toEqual(devBytes);
    const cpu = fill(kernel, pfn, 3000, 3000, 11);
    dma.syncSgForDevice(device(32), sg, DMA_TO_DEVICE);
    expect(kernel.ram.readBytes(sg[0].busAddr, 3000)).toEqual(cpu);
    dma.unmapSg(device(32), sg, DMA_BIDIRECTIONAL);
    expect(swiotlbOf(kernel).pool.used).toBe(0);
  });

  it("is all or nothing: a failing entry unmaps the ones before it without copying back", () => {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    const pfn = buffer(kernel, 8);
    const data = fill(kernel, pfn, 3000, 3000, 5);
    const sg = [entry(pfn, 3000, 3000), entry(pfn + 4, 3000, 3000), entry(kernel.nrPfns, 0, 10)];
    expect(kernel.ops.dma.mapSg(device(32), sg, DMA_BIDIRECTIONAL)).toBe(0);
    expect(s.pool.used).toBe(0);
    expect(s.counts.bytesOut).toBe(0);
    expect(sg.every((e) => e.busAddr === DMA_MAPPING_ERROR)).toBe(true);
    expect(readBuf(kernel, pfn, 3000, 3000)).toEqual(data);
    expect(s.pool.checkAccounting()).toBeNull();
  });
});

describe("the bounce pool", () => {
  it("exhaustion gives DMA_MAPPING_ERROR, and freeing a slot run lets the next map in", () => {
    const { kernel } = xenBuild({ swiotlb: { poolBytes: IO_TLB_SEGMENT_BYTES } });
    const s = swiotlbOf(kernel);
    const pfn = buffer(kernel, 4);
    const dev = device(32);
    const buses: number[] = [];
    for (let i = 0; i < IO_TLB_SEGSIZE; i++) {
      const bus = kernel.ops.dma.mapPage(dev, pfn, 3000, 2048, DMA_TO_DEVICE);
      expect(bus).not.toBe(DMA_MAPPING_ERROR);
      buses.push(bus);
    }
    expect(s.pool.used).toBe(IO_TLB_SEGSIZE);
    expect(kernel.ops.dma.mapPage(dev, pfn, 3000, 2048, DMA_TO_DEVICE)).toBe(DMA_MAPPING_ERROR);
    expect(s.counts.mappingErrors).toBe(1);
    // A buffer that needs no bounce still maps.
    expect(kernel.ops.dma.mapPage(dev, pfn, 0, 100, DMA_TO_DEVICE)).not.toBe(DMA_MAPPING_ERROR);
    kernel.ops.dma.unmapPage(dev, buses[5], 2048, DMA_TO_DEVICE);
    expect(kernel.ops.dma.mapPage(dev, pfn, 3000, 2048, DMA_TO_DEVICE)).toBe(buses[5]);
    expect(s.pool.checkAccounting()).toBeNull();
  });

  it("a mapping never crosses a segment: 3 KiB maps fill each segment up to its last slab", () => {
    const { kernel } = xenBuild({ swiotlb: { poolBytes: 2 * IO_TLB_SEGMENT_BYTES } });
    const s = swiotlbOf(kernel);
    const pfn = buffer(kernel, 4);
    let n = 0;
    for (;;) {
      const bus = kernel.ops.dma.mapPage(device(32), pfn, 3000, 3 * 1024, DMA_TO_DEVICE);
      if (bus === DMA_MAPPING_ERROR) break;
      const slot = s.pool.slotOf(bus);
      expect(Math.floor(slot / IO_TLB_SEGSIZE)).toBe(Math.floor((slot + 1) / IO_TLB_SEGSIZE));
      n++;
    }
    expect(n).toBe(2 * (IO_TLB_SEGSIZE / 2));
    expect(s.pool.checkAccounting()).toBeNull();
  });

  it("its machine frames are contiguous per segment and below 4 GiB: P2M, Xen's M2P, the direct map and RAM agree", () => {
    const { hv, kernel } = xenBuild({ ramBytes: GiB4 + (64 << 20), nrPages: 8192 });
    const s = swiotlbOf(kernel);
    expect(s.initPool()).toBe(true);
    expect(s.poolDmaBits).toBeLessThanOrEqual(32);
    const m2p = hv.slot("pv-mmu").m2p;
    const v = kernel.port.vcpus[0];
    for (let seg = 0; seg < s.pool.nsegs; seg++) {
      const base = s.pool.segMaddr[seg];
      expect(base % IO_TLB_SEGMENT_BYTES).toBe(0);
      expect(base + IO_TLB_SEGMENT_BYTES).toBeLessThanOrEqual(GiB4);
      for (let i = 0; i < IO_TLB_SEGMENT_PAGES; i++) {
        const pfn = s.pool.segPfn[seg] + i;
        const mfn = base / 4096 + i;
        expect(kernel.xen!.p2m[pfn]).toBe(mfn);
        expect(kernel.xen!.m2p[mfn]).toBe(pfn);
        expect(m2p.get(mfn)).toBe(pfn);
        expect(hv.frames.ownerOf(mfn)).toBe(1);
        // The kernel's direct map now reaches the new frame.
        expect(kernel.port.cpu.translate(v, kernel.physVa(pfn) + 8, 0)).toBe(mfn * 4096 + 8);
      }
    }
    // A byte the CPU stores through the direct map is the byte the device reads by bus address.
    const pfn = s.pool.segPfn[0] + 3;
    kernel.ram.write8(kernel.port.cpu.translate(v, kernel.physVa(pfn) + 5, 0), 0x5a);
    const seen = new Uint8Array(1);
    new DmaEngine(kernel.ram).read(s.pool.segMaddr[0] + 3 * 4096 + 5, seen);
    expect(seen[0]).toBe(0x5a);
  });

  it("widens the address limit from 18 bits until Xen finds frames, as xen_swiotlb_fixup", () => {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    expect(s.initPool()).toBe(true);
    expect(s.poolDmaBits).toBeGreaterThanOrEqual(18);
    // Every failed try was one exchange at a narrower width.
    expect(s.counts.exchanges - s.counts.exchangeFailures).toBe(s.pool.nsegs);
    expect(s.counts.exchangeFailures).toBe(s.poolDmaBits - 18);
  });

  it("a pool the kernel cannot build fails every bounce with DMA_MAPPING_ERROR, not a throw", () => {
    // 64 MiB of pool in a 16 MiB kernel: the page allocator runs out of 2 MiB runs.
    const { kernel } = xenBuild({ swiotlb: { poolBytes: 64 << 20 } });
    const s = swiotlbOf(kernel);
    const pfn = buffer(kernel, 4);
    expect(kernel.ops.dma.mapPage(device(32), pfn, 3000, 3000, DMA_TO_DEVICE)).toBe(
      DMA_MAPPING_ERROR,
    );
    expect(s.poolState).toBe("failed");
    expect(s.poolError).toBe(-12);
    expect(s.dmaSupported(device(32), 32)).toBe(false);
    // Buffers that need no bounce still map.
    expect(kernel.ops.dma.mapPage(device(32), pfn, 0, 100, DMA_TO_DEVICE)).toBe(
      kernel.xen!.p2m[pfn] * 4096,
    );
  });
});

describe("coherent memory", () => {
  it("allocCoherent exchanges memory above the coherent mask for a low contiguous extent; free gives it back", () => {
    const { kernel } = xenBuild({ ramBytes: GiB4 + (64 << 20), nrPages: 8192 });
    const s = swiotlbOf(kernel);
    const dev = device(32);
    const free = kernel.freePages;
    const c = kernel.ops.dma.allocCoherent(dev, 3 * 4096);
    expect(c).not.toBeNull();
    const { pfn, busAddr, va } = c!;
    expect(va).toBe(kernel.physVa(pfn));
    expect(busAddr + 4 * 4096).toBeLessThanOrEqual(GiB4);
    for (let i = 0; i < 4; i++) {
      expect(kernel.xen!.p2m[pfn + i]).toBe(busAddr / 4096 + i);
      expect(kernel.ram.readBytes(busAddr + i * 4096, 4096).every((b) => b === 0)).toBe(true);
    }
    expect(s.counts.coherentPages).toBe(4);
    const ex = s.counts.exchanges;
    kernel.ops.dma.freeCoherent(dev, 3 * 4096, pfn, busAddr);
    expect(s.counts.exchanges).toBe(ex + 1);
    expect(s.counts.coherentPages).toBe(0);
    expect(kernel.freePages).toBe(free);
    for (let i = 0; i < 4; i++) expect(kernel.xen!.p2m[pfn + i]).toBeGreaterThanOrEqual(0);
    // Freeing it twice is ignored.
    kernel.ops.dma.freeCoherent(dev, 3 * 4096, pfn, busAddr);
    expect(kernel.freePages).toBe(free);
  });

  it("a single page under the mask needs no exchange", () => {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    const c = kernel.ops.dma.allocCoherent(device(32), 100);
    expect(c!.busAddr).toBe(kernel.xen!.p2m[c!.pfn] * 4096);
    expect(s.counts.exchanges).toBe(0);
    expect(kernel.ops.dma.allocCoherent(device(32), 0)).toBeNull();
    expect(kernel.ops.dma.allocCoherent(device(32), 513 * 4096)).toBeNull();
  });
});

describe("native dma-direct on a Xen PV guest", () => {
  it("hands the device the pseudo-physical address, so its DMA lands in the WRONG machine page; swiotlb-xen does not", () => {
    const pattern = new Uint8Array(256).map((_, i) => i ^ 0xa5);
    for (const withXen of [false, true]) {
      const { hv, kernel } = xenBuild({ plugins: withXen ? undefined : [] });
      expect(kernel.ops.dma instanceof SwiotlbXen).toBe(withXen);
      const pfn = buffer(kernel, 1);
      const mfn = kernel.xen!.p2m[pfn];
      expect(mfn).not.toBe(pfn);
      const bus = kernel.ops.dma.mapPage(device(32), pfn, 64, 256, DMA_FROM_DEVICE);
      const wrongBefore = kernel.ram.readBytes(pfn * 4096 + 64, 256);
      expect(new DmaEngine(kernel.ram).write(bus, pattern)).toBe(0);
      kernel.ops.dma.unmapPage(device(32), bus, 256, DMA_FROM_DEVICE);
      const got = readBuf(kernel, pfn, 64, 256);
      if (withXen) {
        expect(bus).toBe(mfn * 4096 + 64);
        expect(got).toEqual(pattern);
        expect(kernel.ram.readBytes(pfn * 4096 + 64, 256)).toEqual(wrongBefore);
      } else {
        expect(bus).toBe(pfn * 4096 + 64);
        expect(got).not.toEqual(pattern);
        // The device wrote machine frame `pfn`: someone else's page (or Xen's).
        expect(kernel.ram.readBytes(pfn * 4096 + 64, 256)).toEqual(pattern);
        expect(hv.frames.ownerOf(pfn) === 1 && kernel.xen!.m2p[pfn] === pfn).toBe(false);
      }
    }
  });
});

describe("errors", () => {
  it("swiotlbOf on a kernel without the plugin throws SWIOTLB_NOT_INSTALLED", () => {
    const { kernel } = xenBuild({ plugins: [] });
    expect(() => swiotlbOf(kernel)).toThrowError(
      expect.objectContaining({ code: "SWIOTLB_NOT_INSTALLED" }),
    );
  });
  it("a pool size that is not whole segments throws SWIOTLB_BAD_OPTIONS", () => {
    expect(() => xenBuild({ swiotlb: { poolBytes: 100_000 } })).toThrowError(
      expect.objectContaining({ code: "SWIOTLB_BAD_OPTIONS" }),
    );
  });
});

describe("xen_create_contiguous_region", () => {
  it("refuses an order above 9 with -ENOMEM and pfns outside the kernel with -EINVAL, touching nothing", () => {
    const { kernel } = xenBuild();
    const counts = { exchanges: 0, exchangeFailures: 0 };
    expect(xenCreateContiguousRegion(kernel, 0, 10, 32, counts)).toBe(-12);
    expect(xenCreateContiguousRegion(kernel, kernel.nrPfns - 1, 1, 32, counts)).toBe(-22);
    expect(xenCreateContiguousRegion(kernel, -1, 0, 32, counts)).toBe(-22);
    expect(xenDestroyContiguousRegion(kernel, 0.5, 0, counts)).toBe(-22);
    expect(counts.exchanges).toBe(0);
  });

  it("a failed exchange leaves every pfn on its old frame, mapped again", () => {
    const { kernel } = xenBuild();
    const pfn = kernel.allocHugePage();
    const before = Array.from(kernel.xen!.p2m.subarray(pfn, pfn + 4));
    const counts = { exchanges: 0, exchangeFailures: 0 };
    // Nothing this large fits below 2^14 (16 KiB) on this machine.
    expect(xenCreateContiguousRegion(kernel, pfn, 2, 14, counts)).toBe(-12);
    expect(counts).toEqual({ exchanges: 1, exchangeFailures: 1 });
    expect(Array.from(kernel.xen!.p2m.subarray(pfn, pfn + 4))).toEqual(before);
    const v = kernel.port.vcpus[0];
    for (let i = 0; i < 4; i++) {
      expect(kernel.port.cpu.translate(v, kernel.physVa(pfn + i), 0)).toBe(before[i] * 4096);
      expect(kernel.xen!.m2p[before[i]]).toBe(pfn + i);
    }
  });
});
