/*
 * Property: random map / unmap / sync sequences, with random buffers, directions and device
 * masks, never throw, never write outside the buffers and the pool, keep the pool's slot
 * accounting consistent, and move exactly the bytes the directions say.
 */
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_TO_DEVICE,
  type DmaDirection,
  type GuestKernel,
} from "@hyperlab/guest";
import { DmaEngine } from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IO_TLB_SEGMENT_BYTES, IO_TLB_SIZE, swiotlbOf } from "../src/index";
import { device, xenBuild } from "./helpers";

const BUF_PAGES = 128;
const GUARD_PAGES = 8;
const RUNS = process.env.HYPERLAB_LONG ? 300 : 25;

function readBuf(k: GuestKernel, base: number, off: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let done = 0; done < len; ) {
    const p = off + done;
    const n = Math.min(len - done, 4096 - (p % 4096));
    out.set(k.ram.readBytes(k.frameOf(base + Math.floor(p / 4096)) * 4096 + (p % 4096), n), done);
    done += n;
  }
  return out;
}

/** Byte equality without vitest's element-by-element diff (fast on 64 KiB). */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

type Op =
  | { kind: "map"; off: number; size: number; dir: DmaDirection; bits: number; fill: number }
  | { kind: "unmap"; which: number }
  | { kind: "syncCpu"; which: number; dir: DmaDirection }
  | { kind: "syncDev"; which: number; dir: DmaDirection; fill: number };

const dirArb = fc.constantFrom<DmaDirection>(DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL);
const mapArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constant("map" as const),
  off: fc.nat(BUF_PAGES * 4096 - 1),
  size: fc.oneof(
    fc.integer({ min: 1, max: 3000 }),
    fc.integer({ min: 1, max: 70_000 }),
    fc.integer({ min: 1, max: 300_000 }),
  ),
  dir: dirArb,
  bits: fc.constantFrom(24, 26, 32, 64),
  fill: fc.integer({ min: 0, max: 255 }),
});
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: mapArb, weight: 3 },
  fc.record({ kind: fc.constant("unmap" as const), which: fc.nat(31) }),
  fc.record({ kind: fc.constant("syncCpu" as const), which: fc.nat(15), dir: dirArb }),
  fc.record({
    kind: fc.constant("syncDev" as const),
    which: fc.nat(15),
    dir: dirArb,
    fill: fc.integer({ min: 0, max: 255 }),
  }),
);

describe("swiotlb-xen under random use", () => {
  it("never throws, never writes outside buffer and pool, keeps slot accounting, copies by direction", () => {
    const { kernel } = xenBuild({ swiotlb: { poolBytes: IO_TLB_SEGMENT_BYTES } });
    const s = swiotlbOf(kernel);
    const dma = kernel.ops.dma;
    const base = kernel.allocHugePage();
    const total = BUF_PAGES + GUARD_PAGES;
    for (let p = base + total; p < base + 512; p++) kernel.freePage(p);
    const eng = new DmaEngine(kernel.ram);
    const guard = new Uint8Array(GUARD_PAGES * 4096).fill(0xcc);
    for (let g = 0; g < GUARD_PAGES; g++) {
      kernel.ram.writeBytes(kernel.frameOf(base + BUF_PAGES + g) * 4096, guard.subarray(0, 4096));
    }
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 5, maxLength: 80 }), (ops) => {
        // The model: what the CPU should see in the buffer.
        const model = readBuf(kernel, base, 0, BUF_PAGES * 4096);
        interface Live {
          bus: number;
          off: number;
          size: number;
          dir: DmaDirection;
          bounced: boolean;
          /** What the device last wrote into its view (bounced only), or null. */
          devBytes: Uint8Array | null;
        }
        const live: Live[] = [];
        const dev = device(32);
        const slotsOf = (l: Live) => (l.bounced ? Math.ceil(l.size / IO_TLB_SIZE) : 0);
        for (const op of ops) {
          if (op.kind === "map") {
            const size = Math.min(op.size, BUF_PAGES * 4096 - op.off);
            // Overlapping live mappings would race; a driver does not do that.
            if (live.some((l) => op.off < l.off + l.size && l.off < op.off + size)) continue;
            dev.dmaMaskBits = op.bits;
            const bus = dma.mapPage(dev, base, op.off, size, op.dir);
            if (bus === DMA_MAPPING_ERROR) continue;
            expect(bus + size).toBeLessThanOrEqual(2 ** Math.min(op.bits, 52));
            const bounced = s.pool.slotOf(bus) >= 0;
            const seen = kernel.ram.readBytes(bus, size);
            if (op.dir !== DMA_FROM_DEVICE || !bounced) {
              expect(same(seen, model.subarray(op.off, op.off + size))).toBe(true);
            }
            const l: Live = { bus, off: op.off, size, dir: op.dir, bounced, devBytes: null };
            if (op.dir !== DMA_TO_DEVICE) {
              // The device writes the whole buffer.
              const data = new Uint8Array(size).fill(op.fill);
              expect(eng.write(bus, data)).toBe(0);
              if (bounced) l.devBytes = data;
              else model.set(data, op.off);
            }
            live.push(l);
          } else if (live.length > 0) {
            const idx = op.which % live.length;
            const l = live[idx];
            if (op.kind === "unmap") {
              dma.unmapPage(dev, l.bus, l.size, l.dir);
              if (l.bounced && l.dir !== DMA_TO_DEVICE && l.devBytes !== null) {
                model.set(l.devBytes, l.off);
              }
              live.splice(idx, 1);
            } else if (op.kind === "syncCpu") {
              dma.syncSingleForCpu(dev, l.bus, l.size, op.dir);
              if (l.bounced && op.dir !== DMA_TO_DEVICE) {
                model.set(kernel.ram.readBytes(l.bus, l.size), l.off);
              }
            } else {
              // The CPU writes the buffer, then hands it to the device.
              const data = new Uint8Array(l.size).fill(op.fill);
              for (let done = 0; done < l.size; ) {
                const p = l.off + done;
                const n = Math.min(l.size - done, 4096 - (p % 4096));
                const at = kernel.frameOf(base + Math.floor(p / 4096)) * 4096 + (p % 4096);
                kernel.ram.writeBytes(at, data.subarray(done, done + n));
                done += n;
              }
              model.set(data, l.off);
              dma.syncSingleForDevice(dev, l.bus, l.size, op.dir);
              if (!l.bounced || op.dir !== DMA_FROM_DEVICE) {
                expect(same(kernel.ram.readBytes(l.bus, l.size), data)).toBe(true);
                if (l.bounced) l.devBytes = data;
              }
            }
          }
          expect(s.pool.checkAccounting()).toBeNull();
          expect(s.pool.used).toBe(live.reduce((n, l) => n + slotsOf(l), 0));
        }
        for (const l of live) {
          dma.unmapPage(dev, l.bus, l.size, l.dir);
          if (l.bounced && l.dir !== DMA_TO_DEVICE && l.devBytes !== null) {
            model.set(l.devBytes, l.off);
          }
        }
        expect(s.pool.used).toBe(0);
        expect(s.pool.checkAccounting()).toBeNull();
        expect(same(readBuf(kernel, base, 0, BUF_PAGES * 4096), model)).toBe(true);
        expect(same(readBuf(kernel, base, BUF_PAGES * 4096, GUARD_PAGES * 4096), guard)).toBe(true);
      }),
      { seed: 1207, numRuns: RUNS },
    );
    // The runs did exercise every path.
    expect(s.counts.bounces).toBeGreaterThan(RUNS);
    expect(s.counts.bytesIn).toBeGreaterThan(0);
    expect(s.counts.bytesOut).toBeGreaterThan(0);
    expect(s.counts.mappingErrors).toBeGreaterThan(0);
  });
});
