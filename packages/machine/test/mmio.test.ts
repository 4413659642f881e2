import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MMIO_ADDRESS_LIMIT,
  MmioMap,
  type MmioRegion,
  type MmioRegionSpec,
  type MmioWidth,
} from "../src/index";
import { expectMachineError, fcParams } from "./helpers";

/** A device of 32-bit registers that records accesses. */
function regs(name: string, base: number, len: number) {
  const log: string[] = [];
  const store = new Map<number, [number, number]>();
  const spec: MmioRegionSpec = {
    name,
    base,
    len,
    read(offset, width, out) {
      log.push(`r ${offset} ${width}`);
      const [lo, hi] = store.get(offset) ?? [0x1000 + offset, 0];
      out.hi = hi;
      return lo;
    },
    write(offset, width, value, hi) {
      log.push(`w ${offset} ${width} ${value.toString(16)} ${hi.toString(16)}`);
      store.set(offset, [value, hi]);
    },
  };
  return { spec, log };
}

describe("MmioMap", () => {
  it("routes accesses to the region that holds them, with offsets", () => {
    const mmio = new MmioMap();
    const a = regs("a", 0xfee0_0000, 0x1000);
    const b = regs("b", 0xfec0_0000, 0x20);
    const ra = mmio.register(a.spec);
    mmio.register(b.spec);
    expect(mmio.read(0xfee0_0030, 4)).toBe(0x1030);
    mmio.write(0xfec0_0010, 4, 0xabc);
    expect(mmio.read(0xfec0_0010, 4)).toBe(0xabc);
    expect(b.log).toEqual(["w 16 4 abc 0", "r 16 4"]);
    expect(ra.reads).toBe(1);
    expect(mmio.reads).toBe(2);
    expect(mmio.writes).toBe(1);
    expect(mmio.lookup(0xfee0_0fff)?.name).toBe("a");
    expect(mmio.lookup(0xfee0_1000)).toBeUndefined();
    expect(mmio.list().map((r) => r.name)).toEqual(["b", "a"]);
  });

  it("masks values to the access width", () => {
    const mmio = new MmioMap();
    const d = regs("d", 0x1000, 0x100);
    mmio.register(d.spec);
    mmio.write(0x1000, 1, 0x1ff);
    mmio.write(0x1004, 2, -1);
    expect(d.log).toEqual(["w 0 1 ff 0", "w 4 2 ffff 0"]);
    expect(mmio.read(0x1000, 1)).toBe(0xff);
    mmio.write(0x1010, 4, -1);
    expect(mmio.read(0x1010, 4)).toBe(0xffffffff);
  });

  it("carries 8-byte accesses as lo/hi halves", () => {
    const mmio = new MmioMap();
    const d = regs("hpet", 0xfed0_0000, 0x400);
    mmio.register(d.spec);
    mmio.write(0xfed0_00f0, 8, 0x89abcdef, 0x01234567);
    expect(d.log).toEqual(["w 240 8 89abcdef 1234567"]);
    expect(mmio.read(0xfed0_00f0, 8)).toBe(0x89abcdef);
    expect(mmio.hi).toBe(0x01234567);
    mmio.read(0xfed0_00f0, 4);
    expect(mmio.hi).toBe(0);
  });

  it("unclaimed reads return all ones, unclaimed writes are dropped, both counted", () => {
    const mmio = new MmioMap();
    const d = regs("d", 0x1000, 0x10);
    mmio.register(d.spec);
    expect(mmio.read(0x2000, 1)).toBe(0xff);
    expect(mmio.read(0x2000, 2)).toBe(0xffff);
    expect(mmio.read(0x2000, 4)).toBe(0xffffffff);
    expect(mmio.read(0x2000, 8)).toBe(0xffffffff);
    expect(mmio.hi).toBe(0xffffffff);
    // Straddling the end of a region is not claimed by it.
    expect(mmio.read(0x100e, 4)).toBe(0xffffffff);
    for (const bad of [-1, Number.NaN, 0x1000 + 0.5, Number.POSITIVE_INFINITY, 2 ** 60]) {
      expect(mmio.read(bad, 4)).toBe(0xffffffff);
      mmio.write(bad, 4, 1);
    }
    mmio.write(0x0fff, 2, 1);
    expect(mmio.unclaimedReads).toBe(10);
    expect(mmio.unclaimedWrites).toBe(6);
    expect(d.log).toEqual([]);
  });

  it("refuses overlaps, naming both regions", () => {
    const mmio = new MmioMap();
    mmio.register(regs("a", 0x1000, 0x1000).spec);
    mmio.register(regs("c", 0x3000, 0x1000).spec);
    for (const [base, len] of [
      [0x1fff, 1],
      [0x0800, 0x801],
      [0x1800, 0x10],
      [0x0, 0x10000],
      [0x2fff, 2],
    ]) {
      const err = expectMachineError(
        () => mmio.register(regs("b", base, len).spec),
        "MMIO_OVERLAP",
      );
      expect(err.message).toMatch(/"b"/);
    }
    // Touching is fine.
    mmio.register(regs("b", 0x2000, 0x1000).spec);
    mmio.register(regs("z", 0, 0x1000).spec);
    expect(mmio.list().map((r) => r.name)).toEqual(["z", "a", "b", "c"]);
  });

  it("unregisters a region (a BAR moves)", () => {
    const mmio = new MmioMap();
    const r = mmio.register(regs("bar0", 0xe000_0000, 0x1000).spec);
    expect(mmio.read(0xe000_0000, 4)).toBe(0x1000);
    mmio.unregister(r);
    expect(mmio.read(0xe000_0000, 4)).toBe(0xffffffff);
    mmio.register({ ...regs("bar0", 0xe000_0000, 0x1000).spec });
    expectMachineError(() => mmio.unregister(r), "MMIO_NOT_REGISTERED");
  });

  it("refuses bad regions and widths", () => {
    const mmio = new MmioMap();
    for (const [base, len] of [
      [-1, 4],
      [0, 0],
      [0.5, 4],
      [MMIO_ADDRESS_LIMIT - 2, 4],
      [0, Number.NaN],
    ]) {
      expectMachineError(() => mmio.register(regs("x", base, len).spec), "MMIO_BAD_REGION");
    }
    expectMachineError(
      () => mmio.register({ name: "x", base: 0, len: 1 } as unknown as MmioRegionSpec),
      "MMIO_BAD_REGION",
    );
    for (const w of [0, 3, 16]) {
      expectMachineError(() => mmio.read(0, w as MmioWidth), "MMIO_BAD_WIDTH");
      expectMachineError(() => mmio.write(0, w as MmioWidth, 0), "MMIO_BAD_WIDTH");
    }
  });

  it("finds the right region among many (binary search and cache)", () => {
    const mmio = new MmioMap();
    const names: string[] = [];
    for (let i = 99; i >= 0; i--) {
      mmio.register({ ...regs(`r${i}`, i * 0x2000, 0x1000).spec });
      names.push(`r${i}`);
    }
    for (let i = 0; i < 100; i++) {
      expect(mmio.lookup(i * 0x2000 + 0x800)?.name).toBe(`r${i}`);
      expect(mmio.lookup(i * 0x2000 + 0x1000)).toBeUndefined();
      expect(mmio.read(i * 0x2000 + 4, 4)).toBe(0x1004);
    }
  });
});

describe("MmioMap against a linear-scan reference", () => {
  it("random register/unregister/access agree on who claims what", () => {
    const op = fc.oneof(
      fc.record({
        k: fc.constant("reg" as const),
        base: fc.integer({ min: 0, max: 400 }),
        len: fc.integer({ min: 1, max: 60 }),
      }),
      fc.record({ k: fc.constant("unreg" as const), pick: fc.nat() }),
      fc.record({
        k: fc.constant("acc" as const),
        addr: fc.integer({ min: -2, max: 470 }),
        width: fc.constantFrom(1, 2, 4, 8) as fc.Arbitrary<MmioWidth>,
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const mmio = new MmioMap();
        const live: MmioRegion[] = [];
        let unclaimed = 0;
        for (const o of ops) {
          if (o.k === "reg") {
            const clash = live.find((r) => o.base < r.base + r.len && r.base < o.base + o.len);
            const spec = { ...regs(`r${o.base}`, o.base, o.len).spec };
            if (clash) {
              expectMachineError(() => mmio.register(spec), "MMIO_OVERLAP");
            } else {
              live.push(mmio.register(spec));
            }
          } else if (o.k === "unreg") {
            if (live.length === 0) continue;
            mmio.unregister(live.splice(o.pick % live.length, 1)[0]);
          } else {
            const owner = live.find((r) => o.addr >= r.base && o.addr + o.width <= r.base + r.len);
            const v = mmio.read(o.addr, o.width);
            if (owner === undefined) {
              unclaimed++;
              expect(v).toBe(o.width === 8 ? 0xffffffff : 2 ** (8 * o.width) - 1);
            } else {
              const off = o.addr - owner.base;
              expect(v).toBe(
                (0x1000 + off) & (o.width === 8 ? 0xffffffff : 2 ** (8 * o.width) - 1),
              );
            }
            expect(mmio.lookup(o.addr)?.name).toBe(
              live.find((r) => o.addr >= r.base && o.addr < r.base + r.len)?.name,
            );
          }
          expect(mmio.unclaimedReads).toBe(unclaimed);
          expect(mmio.list().map((r) => r.base)).toEqual(
            live.map((r) => r.base).sort((a, b) => a - b),
          );
        }
      }),
      fcParams(200),
    );
  });
});
