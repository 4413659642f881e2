import { describe, expect, it } from "vitest";
import { CHUNK_FRAMES, DMA_EFAULT, DMA_OK, DmaEngine, PAGE_SIZE, Ram } from "../src/index";
import { expectMachineError } from "./helpers";

describe("DmaEngine", () => {
  const CHUNK = CHUNK_FRAMES * PAGE_SIZE;

  it("moves bytes by machine address and counts them", () => {
    const ram = new Ram({ bytes: 2 * CHUNK });
    const dma = new DmaEngine(ram);
    const src = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(dma.write(CHUNK - 4, src)).toBe(DMA_OK);
    expect(ram.read32(CHUNK)).toBe(0x08070605);
    const dst = new Uint8Array(8);
    expect(dma.read(CHUNK - 4, dst)).toBe(DMA_OK);
    expect([...dst]).toEqual([...src]);
    expect(dma.stats()).toEqual({ reads: 1, writes: 1, bytesRead: 8, bytesWritten: 8, faults: 0 });
  });

  it("refuses ranges outside RAM with -EFAULT, counts them, and moves nothing", () => {
    const ram = new Ram({ bytes: CHUNK });
    const dma = new DmaEngine(ram);
    ram.write32(CHUNK - 4, 0x11111111);
    const buf = new Uint8Array(8).fill(0xee);
    for (const a of [CHUNK - 4, CHUNK, -1, 0.5, Number.NaN, 2 ** 60]) {
      expect(dma.write(a, buf)).toBe(DMA_EFAULT);
      expect(dma.read(a, buf)).toBe(DMA_EFAULT);
    }
    expect(ram.read32(CHUNK - 4)).toBe(0x11111111);
    expect(buf.every((x) => x === 0xee)).toBe(true);
    expect(dma.stats()).toEqual({ reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, faults: 12 });
    expect(DMA_EFAULT).toBe(-14);
  });

  it("reading untouched memory allocates nothing; zero-length transfers are fine", () => {
    const ram = new Ram({ bytes: 4 * CHUNK });
    const dma = new DmaEngine(ram);
    const dst = new Uint8Array(PAGE_SIZE).fill(9);
    expect(dma.read(3 * CHUNK, dst)).toBe(DMA_OK);
    expect(dst.every((x) => x === 0)).toBe(true);
    expect(dma.read(4 * CHUNK, new Uint8Array(0))).toBe(DMA_OK);
    expect(ram.residentBytes).toBe(0);
  });

  it("a buffer that is not a Uint8Array is a device-model bug", () => {
    const dma = new DmaEngine(new Ram({ bytes: PAGE_SIZE }));
    expectMachineError(() => dma.read(0, [1, 2] as unknown as Uint8Array), "DMA_BAD_BUFFER");
    expectMachineError(
      () => dma.write(0, new Uint16Array(2) as unknown as Uint8Array),
      "DMA_BAD_BUFFER",
    );
  });
});
