import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CHUNK_FRAMES,
  FRAME_WORDS,
  MAX_RAM_BYTES,
  MachineError,
  PAGE_SIZE,
  Ram,
} from "../src/index";
import { expectMachineError, fcParams } from "./helpers";

const MiB = 1024 * 1024;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(
    Buffer.from(b.buffer, b.byteOffset, b.length),
  );
}
const GiB = 1024 * MiB;
const CHUNK = CHUNK_FRAMES * PAGE_SIZE;

describe("Ram construction", () => {
  it("rounds up to whole frames", () => {
    const ram = new Ram({ bytes: PAGE_SIZE + 1 });
    expect(ram.nrFrames).toBe(2);
    expect(ram.bytes).toBe(2 * PAGE_SIZE);
    expect(ram.residentBytes).toBe(0);
  });

  it.each([0, -1, 1.5, Number.NaN, MAX_RAM_BYTES + 1, 2 ** 60])("refuses size %s", (bytes) => {
    expectMachineError(() => new Ram({ bytes }), "RAM_BAD_SIZE");
  });

  it("accepts the largest size without touching memory", () => {
    const ram = new Ram({ bytes: 64 * GiB });
    expect(ram.nrFrames).toBe(16 * 1024 * 1024);
    expect(ram.residentBytes).toBe(0);
  });
});

describe("Ram accessors", () => {
  const ram = new Ram({ bytes: 3 * CHUNK + 5 * PAGE_SIZE });

  it("8-bit", () => {
    ram.write8(7, 0x1ab);
    expect(ram.read8(7)).toBe(0xab);
    ram.write8(CHUNK - 1, 0xfe);
    expect(ram.read8(CHUNK - 1)).toBe(0xfe);
  });

  it("16-bit, aligned, unaligned and across a chunk boundary", () => {
    for (const a of [0x100, 0x101, CHUNK - 1, 2 * CHUNK - 1]) {
      ram.write16(a, 0xbeef);
      expect(ram.read16(a)).toBe(0xbeef);
      expect(ram.read8(a)).toBe(0xef);
      expect(ram.read8(a + 1)).toBe(0xbe);
    }
    ram.write16(0x200, 0x12345);
    expect(ram.read16(0x200)).toBe(0x2345);
  });

  it("32-bit, little-endian, unsigned, at every misalignment and across chunks", () => {
    for (const base of [0x1000, CHUNK - 4, 2 * CHUNK - 4]) {
      for (let mis = 0; mis < 4; mis++) {
        const a = base + mis;
        ram.write32(a, 0xdeadbeef);
        expect(ram.read32(a)).toBe(0xdeadbeef);
        expect([0, 1, 2, 3].map((i) => ram.read8(a + i))).toEqual([0xef, 0xbe, 0xad, 0xde]);
      }
    }
    ram.write32(0x2000, -1);
    expect(ram.read32(0x2000)).toBe(0xffffffff);
  });

  it("64-bit as halves, as a number and as a BigInt", () => {
    for (const a of [0x3000, 0x3004, 0x3003, CHUNK - 8, CHUNK - 4, CHUNK - 3]) {
      ram.write64(a, 0x89abcdef, 0x01234567);
      expect(ram.read64lo(a)).toBe(0x89abcdef);
      expect(ram.read64hi(a)).toBe(0x01234567);
      expect(ram.readU64(a)).toBe(0x0123456789abcdefn);
      ram.write64(a, 0x89abcdef, 0x001fffff);
      expect(ram.read64(a)).toBe(0x001fffff89abcdef);
      ram.writeU64(a, 0xfedcba9876543210n);
      expect(ram.read64lo(a)).toBe(0x76543210);
      expect(ram.read64hi(a)).toBe(0xfedcba98);
      ram.write64n(a, 2 ** 53 - 1);
      expect(ram.read64(a)).toBe(2 ** 53 - 1);
      ram.write64n(a, -1);
      expect(ram.readU64(a)).toBe(0xffffffffffffffffn);
      ram.writeU64(a, -2n);
      expect(ram.readU64(a)).toBe(0xfffffffffffffffen);
    }
  });

  it("bytes in and out across chunk boundaries", () => {
    const src = new Uint8Array(CHUNK + 100).map((_, i) => (i * 7) & 0xff);
    ram.writeBytes(CHUNK - 50, src);
    expect(sameBytes(ram.readBytes(CHUNK - 50, src.length), src)).toBe(true);
    const dst = new Uint8Array(src.length);
    ram.readInto(CHUNK - 50, dst);
    expect(sameBytes(dst, src)).toBe(true);
    expect(ram.readBytes(0, 0)).toEqual(new Uint8Array(0));
  });

  it("the last byte of RAM is addressable", () => {
    const end = ram.bytes;
    ram.write8(end - 1, 9);
    expect(ram.read8(end - 1)).toBe(9);
    ram.write32(end - 4, 0x01020304);
    expect(ram.read32(end - 4)).toBe(0x01020304);
    ram.write64(end - 8, 1, 2);
    expect(ram.read64(end - 8)).toBe(2 * 2 ** 32 + 1);
  });
});

describe("Ram range errors", () => {
  const ram = new Ram({ bytes: CHUNK + PAGE_SIZE });
  const end = ram.bytes;

  it.each([
    ["read8", () => ram.read8(end)],
    ["read8 negative", () => ram.read8(-1)],
    ["read16 straddling the end", () => ram.read16(end - 1)],
    ["read32 aligned", () => ram.read32(end)],
    ["read32 straddling", () => ram.read32(end - 2)],
    ["read32 negative", () => ram.read32(-4)],
    ["read32 fractional", () => ram.read32(4.5)],
    ["read32 NaN", () => ram.read32(Number.NaN)],
    ["read32 Infinity", () => ram.read32(Number.POSITIVE_INFINITY)],
    ["read64", () => ram.read64(end - 4)],
    ["read64 aligned past end", () => ram.read64(end)],
    ["read64hi", () => ram.read64hi(end - 4)],
    ["read64lo", () => ram.read64lo(end)],
    ["read64lo straddling", () => ram.read64lo(end - 4)],
    ["read64lo fractional", () => ram.read64lo(8.5)],
    ["read64hi fractional", () => ram.read64hi(0.5)],
    ["readU64", () => ram.readU64(end - 4)],
    ["write8", () => ram.write8(end, 1)],
    ["write16", () => ram.write16(end - 1, 1)],
    ["write32 aligned", () => ram.write32(end, 1)],
    ["write32 fractional", () => ram.write32(8.25, 1)],
    ["write64", () => ram.write64(end - 4, 1, 2)],
    ["write64 aligned past end", () => ram.write64(end, 1, 2)],
    ["write64n", () => ram.write64n(end, 1)],
    ["writeU64", () => ram.writeU64(end - 4, 1n)],
    ["readBytes", () => ram.readBytes(end - 2, 3)],
    ["readInto", () => ram.readInto(end - 2, new Uint8Array(3))],
    ["writeBytes", () => ram.writeBytes(end - 2, new Uint8Array(3))],
    ["frameBytes", () => ram.frameBytes(ram.nrFrames)],
    ["frameWords", () => ram.frameWords(ram.nrFrames, true)],
    ["frameWords negative", () => ram.frameWords(-1, false)],
    ["frameResident", () => ram.frameResident(ram.nrFrames)],
    ["clearFrame", () => ram.clearFrame(ram.nrFrames)],
    ["copyFrame dst", () => ram.copyFrame(ram.nrFrames, 0)],
    ["copyFrame src", () => ram.copyFrame(0, 1.5)],
  ])("%s throws RAM_OUT_OF_RANGE", (_name, fn) => {
    const err = expectMachineError(fn, "RAM_OUT_OF_RANGE");
    expect(err.message).toMatch(/validMfn/);
  });

  it("a bad length throws RAM_BAD_LENGTH", () => {
    expectMachineError(() => ram.readBytes(0, -1), "RAM_BAD_LENGTH");
    expectMachineError(() => ram.readBytes(0, 1.5), "RAM_BAD_LENGTH");
  });

  it("a refused write changes nothing", () => {
    ram.write32(end - 4, 0x11223344);
    expect(() => ram.write64(end - 4, 0xaaaaaaaa, 0xbbbbbbbb)).toThrow(MachineError);
    expect(() => ram.write32(end - 2, 0xcccccccc)).toThrow(MachineError);
    expect(() => ram.write16(end - 1, 0xdddd)).toThrow(MachineError);
    expect(() => ram.writeBytes(end - 3, new Uint8Array([1, 2, 3, 4]))).toThrow(MachineError);
    expect(ram.read32(end - 4)).toBe(0x11223344);
  });

  it("validMfn and validRange say what is inside", () => {
    expect(ram.validMfn(0)).toBe(true);
    expect(ram.validMfn(ram.nrFrames - 1)).toBe(true);
    for (const bad of [ram.nrFrames, -1, 0.5, Number.NaN, 2 ** 32]) {
      expect(ram.validMfn(bad)).toBe(false);
    }
    expect(ram.validRange(0, end)).toBe(true);
    expect(ram.validRange(end, 0)).toBe(true);
    expect(ram.validRange(end - 1, 2)).toBe(false);
    expect(ram.validRange(-1, 1)).toBe(false);
    expect(ram.validRange(0.5, 1)).toBe(false);
    expect(ram.validRange(0, -1)).toBe(false);
  });
});

describe("Ram laziness", () => {
  it("a 64 GiB RAM that touches 100 MiB holds about 100 MiB", () => {
    const ram = new Ram({ bytes: 64 * GiB });
    const base = 40 * GiB + 12345 * PAGE_SIZE; // not chunk-aligned
    const touched = 100 * MiB;
    for (let a = base; a < base + touched; a += PAGE_SIZE) ram.write32(a, a / PAGE_SIZE);
    expect(ram.residentBytes).toBeGreaterThanOrEqual(touched);
    expect(ram.residentBytes).toBeLessThanOrEqual(touched + 2 * CHUNK);
    expect(ram.read32(base + 5 * PAGE_SIZE)).toBe(base / PAGE_SIZE + 5);
  });

  it("reads of untouched memory are zero and allocate nothing", () => {
    const ram = new Ram({ bytes: 64 * GiB });
    const top = ram.bytes;
    for (const a of [0, 4, 7, CHUNK - 3, 10 * GiB, top - 8]) {
      expect(ram.read8(a)).toBe(0);
      expect(ram.read16(a)).toBe(0);
      expect(ram.read32(a)).toBe(0);
      expect(ram.read64(a)).toBe(0);
      expect(ram.read64lo(a)).toBe(0);
      expect(ram.read64hi(a)).toBe(0);
      expect(ram.readU64(a)).toBe(0n);
    }
    expect(ram.readBytes(CHUNK - 10, 20)).toEqual(new Uint8Array(20));
    const dst = new Uint8Array(16).fill(0xff);
    ram.readInto(5 * GiB, dst);
    expect(dst).toEqual(new Uint8Array(16));
    const mfn = 123456;
    const view = ram.frameWords(mfn, false);
    expect(view[3]).toBe(0);
    ram.clearFrame(mfn);
    ram.copyFrame(mfn, mfn + 1);
    expect(ram.frameResident(mfn)).toBe(false);
    expect(ram.residentBytes).toBe(0);
  });

  it("a write allocates only its chunk; frameBytes allocates; copying a touched frame allocates", () => {
    const ram = new Ram({ bytes: GiB });
    ram.write8(3 * CHUNK + 1, 1);
    expect(ram.residentBytes).toBe(CHUNK);
    expect(ram.frameResident(3 * CHUNK_FRAMES)).toBe(true);
    expect(ram.frameResident(4 * CHUNK_FRAMES)).toBe(false);
    ram.frameBytes(4 * CHUNK_FRAMES);
    expect(ram.residentBytes).toBe(2 * CHUNK);
    ram.copyFrame(10 * CHUNK_FRAMES, 3 * CHUNK_FRAMES);
    expect(ram.residentBytes).toBe(3 * CHUNK);
    expect(ram.read8(10 * CHUNK + 1)).toBe(1);
  });
});

describe("Ram frame views", () => {
  // Issue 15: frameWords used to hand out the whole 2 MiB chunk, so view[base + i] with an i
  // computed from guest input landed in the next frame. Each view is now one frame.
  it("a frame view ends at its frame: an index past it neither reads nor writes a neighbour", () => {
    const ram = new Ram({ bytes: 8 * MiB });
    const mfn = CHUNK_FRAMES + 3;
    ram.write32((mfn + 1) * PAGE_SIZE, 0x11223344);
    ram.write32((mfn - 1) * PAGE_SIZE + 4092, 0x55667788);
    const view = ram.frameWords(mfn, true);
    expect(view.length).toBe(FRAME_WORDS);
    expect(view.length).toBe(1024);
    expect(ram.frameWordBase(mfn)).toBe(0);
    // Before the fix view[1024] was word 0 of frame mfn + 1, and view[-1]... of mfn - 1 via base.
    expect(view[1024]).toBeUndefined();
    view[1024] = 0xdeadbeef;
    view[4096] = 0xdeadbeef;
    view[-1] = 0xdeadbeef;
    expect(ram.read32((mfn + 1) * PAGE_SIZE)).toBe(0x11223344);
    expect(ram.read32((mfn - 1) * PAGE_SIZE + 4092)).toBe(0x55667788);
    // The same holds for views of untouched frames (the shared zero frame) and read views.
    const cold = ram.frameWords(3 * CHUNK_FRAMES + 7, false);
    expect(cold.length).toBe(FRAME_WORDS);
    expect(ram.frameWords(mfn, false)).toBe(view);
  });

  it("chunkWordsForRead: the chunk view and the frame's base in it, for masked hot-path reads", () => {
    const ram = new Ram({ bytes: 8 * MiB });
    const mfn = CHUNK_FRAMES + 3;
    ram.write32(mfn * PAGE_SIZE + 8, 0x1234);
    const c = ram.chunkWordsForRead(mfn);
    expect(c.length).toBe(CHUNK_FRAMES * FRAME_WORDS);
    const b = ram.chunkWordBase(mfn);
    expect(b).toBe(3 * FRAME_WORDS);
    expect(c[b + 2]).toBe(0x1234);
    // A masked index stays in the frame whatever the guest gave.
    for (const i of [0, 511, 512, 4096, -1, 2 ** 31]) {
      const w = b + ((i * 2) & (FRAME_WORDS - 1));
      expect(w).toBeGreaterThanOrEqual(b);
      expect(w).toBeLessThan(b + FRAME_WORDS);
    }
    // An untouched chunk reads zeros and allocates nothing.
    expect(ram.chunkWordsForRead(3 * CHUNK_FRAMES)[5]).toBe(0);
    expect(ram.residentBytes).toBe(CHUNK);
    expectMachineError(() => ram.chunkWordsForRead(ram.nrFrames), "RAM_OUT_OF_RANGE");
    expectMachineError(() => ram.chunkWordsForRead(-1), "RAM_OUT_OF_RANGE");
  });

  it("handing out a view allocates nothing once the chunk exists (the same view each time)", () => {
    const ram = new Ram({ bytes: 8 * MiB });
    const a = ram.frameWords(5, true);
    expect(ram.frameWords(5, true)).toBe(a);
    expect(ram.frameWords(5, false)).toBe(a);
    expect(ram.frameWords(6, true)).not.toBe(a);
    expect(ram.residentBytes).toBe(CHUNK);
  });

  it("a hostile index into any frame view never changes another frame (property)", () => {
    const ram = new Ram({ bytes: 4 * MiB });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 * CHUNK_FRAMES - 2 }),
        fc.oneof(fc.integer({ min: -5000, max: 5000 }), fc.integer()),
        (mfn, i) => {
          ram.write32((mfn - 1) * PAGE_SIZE + 4092, 0xa5a5a5a5);
          ram.write32((mfn + 1) * PAGE_SIZE, 0x5a5a5a5a);
          const v = ram.frameWords(mfn, true);
          v[i] = 0xffffffff;
          if (i < 0 || i >= 1024) expect(v[i]).toBeUndefined();
          return (
            ram.read32((mfn - 1) * PAGE_SIZE + 4092) === 0xa5a5a5a5 &&
            ram.read32((mfn + 1) * PAGE_SIZE) === 0x5a5a5a5a
          );
        },
      ),
      fcParams(200),
    );
  });

  it("the write hook hears every store and every view handed out for writing, and costs nothing once removed", () => {
    const ram = new Ram({ bytes: 8 * MiB });
    const seen: [number, number][] = [];
    expect(ram.setWriteHook((a, n) => seen.push([a, n]))).toBeUndefined();
    ram.write8(1, 1);
    ram.write16(2, 1);
    ram.write32(4, 1);
    ram.write32(9, 1); // unaligned: the slow path
    ram.write64(16, 1, 2);
    ram.write64(25, 1, 2);
    ram.write64n(32, 5);
    ram.writeU64(40, 5n);
    ram.writeBytes(48, new Uint8Array(3));
    ram.writeBytes(48, new Uint8Array(0));
    ram.frameWords(3, true);
    ram.frameWords(4, false);
    ram.frameBytes(5);
    ram.clearFrame(6);
    ram.copyFrame(7, 3);
    expect(seen).toEqual([
      [1, 1],
      [2, 2],
      [4, 4],
      [9, 4],
      [16, 8],
      [25, 4],
      [29, 4],
      [32, 8],
      [40, 8],
      [48, 3],
      [3 * PAGE_SIZE, PAGE_SIZE],
      [5 * PAGE_SIZE, PAGE_SIZE],
      [6 * PAGE_SIZE, PAGE_SIZE],
      [7 * PAGE_SIZE, PAGE_SIZE],
    ]);
    // Reads never call it.
    ram.read32(4);
    ram.readBytes(0, 64);
    expect(seen.length).toBe(14);
    const hook = ram.setWriteHook(undefined);
    expect(typeof hook).toBe("function");
    ram.write32(4, 2);
    expect(seen.length).toBe(14);
  });

  it("a write hook that is not a function throws RAM_BAD_HOOK", () => {
    const ram = new Ram({ bytes: 8 * MiB });
    expectMachineError(() => ram.setWriteHook(42 as never), "RAM_BAD_HOOK");
  });

  it("frameWords addresses the same words as read32", () => {
    const ram = new Ram({ bytes: 8 * MiB });
    const mfn = CHUNK_FRAMES + 3;
    const view = ram.frameWords(mfn, true);
    view[5] = 0xcafef00d;
    expect(ram.read32(mfn * PAGE_SIZE + 20)).toBe(0xcafef00d);
    ram.write32(mfn * PAGE_SIZE + 4092, 77);
    expect(view[1023]).toBe(77);
  });

  it("frameBytes writes through; clearFrame and copyFrame work on whole frames", () => {
    const ram = new Ram({ bytes: 8 * MiB });
    const f = ram.frameBytes(9);
    f.fill(0x5a);
    expect(ram.read32(9 * PAGE_SIZE + 100)).toBe(0x5a5a5a5a);
    expect(ram.read8(10 * PAGE_SIZE)).toBe(0);
    ram.copyFrame(CHUNK_FRAMES + 1, 9);
    expect(sameBytes(ram.readBytes((CHUNK_FRAMES + 1) * PAGE_SIZE, PAGE_SIZE), f)).toBe(true);
    ram.clearFrame(9);
    expect(sameBytes(ram.readBytes(9 * PAGE_SIZE, PAGE_SIZE), new Uint8Array(PAGE_SIZE))).toBe(
      true,
    );
    // Copying an untouched frame over a touched one clears it.
    ram.copyFrame(CHUNK_FRAMES + 1, 3 * CHUNK_FRAMES);
    expect(ram.read32((CHUNK_FRAMES + 1) * PAGE_SIZE)).toBe(0);
  });
});

describe("Ram against a DataView model", () => {
  it("random mixed-width accesses near chunk boundaries agree", () => {
    const size = 2 * CHUNK + 2 * PAGE_SIZE;
    const hot = [0, CHUNK - 16, 2 * CHUNK - 16, size - 16];
    const addr = fc
      .tuple(fc.constantFrom(...hot), fc.integer({ min: 0, max: 15 }))
      .map(([b, o]) => b + o);
    const op = fc.record({
      kind: fc.constantFrom("w8", "w16", "w32", "w64", "wbytes"),
      addr,
      lo: fc.integer({ min: 0, max: 0xffffffff }),
      hi: fc.integer({ min: 0, max: 0xffffffff }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const ram = new Ram({ bytes: size });
        const ref = new DataView(new ArrayBuffer(size));
        for (const o of ops) {
          const b = new Uint8Array([o.lo & 0xff, o.hi & 0xff, (o.lo >>> 8) & 0xff]);
          const act = {
            w8: () => ram.write8(o.addr, o.lo),
            w16: () => ram.write16(o.addr, o.lo),
            w32: () => ram.write32(o.addr, o.lo),
            w64: () => ram.write64(o.addr, o.lo, o.hi),
            wbytes: () => ram.writeBytes(o.addr, b),
          }[o.kind];
          const width = { w8: 1, w16: 2, w32: 4, w64: 8, wbytes: 3 }[o.kind];
          if (o.addr + width > size) {
            expect(act).toThrow(MachineError);
            continue;
          }
          act();
          switch (o.kind) {
            case "w8":
              ref.setUint8(o.addr, o.lo & 0xff);
              break;
            case "w16":
              ref.setUint16(o.addr, o.lo & 0xffff, true);
              break;
            case "w32":
              ref.setUint32(o.addr, o.lo, true);
              break;
            case "w64":
              ref.setUint32(o.addr, o.lo, true);
              ref.setUint32(o.addr + 4, o.hi, true);
              break;
            case "wbytes":
              for (let i = 0; i < 3; i++) ref.setUint8(o.addr + i, b[i]);
              break;
          }
        }
        for (const b of hot) {
          for (let a = b; a < b + 16; a++) {
            expect(ram.read8(a)).toBe(ref.getUint8(a));
            if (a + 2 <= size) expect(ram.read16(a)).toBe(ref.getUint16(a, true));
            if (a + 4 <= size) expect(ram.read32(a)).toBe(ref.getUint32(a, true));
            if (a + 8 <= size) {
              expect(ram.readU64(a)).toBe(ref.getBigUint64(a, true));
              expect(ram.read64lo(a)).toBe(ref.getUint32(a, true));
              expect(ram.read64hi(a)).toBe(ref.getUint32(a + 4, true));
            }
          }
        }
      }),
      fcParams(60),
    );
  });
});
