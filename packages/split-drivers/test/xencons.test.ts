import { xencons_interface } from "@hyperlab/abi";
import { createMachine } from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MASK_XENCONS_IDX,
  XENCONS_IN_BYTES,
  XENCONS_INTERFACE_BYTES,
  XENCONS_OUT_BYTES,
  XenconsError,
  XenconsInterface,
} from "../src/index";

const LONG = process.env.HYPERLAB_LONG !== undefined;

describe("the console page", () => {
  it("has struct xencons_interface's layout", () => {
    expect(XENCONS_INTERFACE_BYTES).toBe(xencons_interface.sizeof);
    expect(XENCONS_IN_BYTES).toBe(xencons_interface.fields.in!.count);
    expect(XENCONS_OUT_BYTES).toBe(xencons_interface.fields.out!.count);
    const m = createMachine({ ramBytes: 1 << 20, cpus: 1, seed: 1 });
    const c = new XenconsInterface(m.ram.frameBytes(3));
    c.inCons = 1;
    c.inProd = 2;
    c.outCons = 3;
    c.outProd = 4;
    expect([3072, 3076, 3080, 3084].map((o) => m.ram.read32(3 * 4096 + o))).toEqual([1, 2, 3, 4]);
    expect(MASK_XENCONS_IDX(0xffffffff, 2048)).toBe(2047);
  });

  it("throws a XenconsError for a page too small or misaligned", () => {
    expect(() => new XenconsInterface(new Uint8Array(3000))).toThrow(XenconsError);
    try {
      new XenconsInterface(new Uint8Array(4100).subarray(1, 4097));
      expect.unreachable();
    } catch (e) {
      expect((e as XenconsError).code).toBe("XENCONS_BAD_PAGE");
      expect((e as Error).message).toMatch(/ram\.frameBytes/);
    }
  });

  it("stops a producer at a full ring and wraps bytes at 2^32", () => {
    const c = XenconsInterface.create();
    c.outProd = 0xfffffffe;
    c.outCons = 0xfffffffe;
    const data = new Uint8Array(3000).map((_, i) => i & 0xff);
    expect(c.writeOut(data)).toBe(2048);
    expect(c.outProd).toBe(2046);
    expect(c.writeOut(data)).toBe(0);
    const sink = new Uint8Array(4096);
    expect(c.readOut(sink, 0, 10)).toBe(10);
    expect(Array.from(sink.subarray(0, 10))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(c.readOut(sink)).toBe(2038);
    expect(c.outCons).toBe(c.outProd);
    expect(c.readOut(sink)).toBe(0);
  });

  it("delivers every byte once and in order, both ways (fast-check)", () => {
    const op = fc.oneof(
      fc.record({ w: fc.constant(true), out: fc.boolean(), n: fc.integer({ min: 0, max: 3000 }) }),
      fc.record({ w: fc.constant(false), out: fc.boolean(), n: fc.integer({ min: 0, max: 3000 }) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.array(op, { maxLength: 60 }),
        (start, ops) => {
          const c = XenconsInterface.create();
          c.inCons = c.inProd = c.outCons = c.outProd = start;
          const sent = { out: 0, in: 0 };
          const got = { out: 0, in: 0 };
          const buf = new Uint8Array(4096);
          for (const o of ops) {
            const k = o.out ? "out" : "in";
            if (o.w) {
              const data = new Uint8Array(o.n).map((_, i) => (sent[k] + i) & 0xff);
              const n = o.out ? c.writeOut(data) : c.writeIn(data);
              sent[k] += n;
            } else {
              const n = o.out ? c.readOut(buf, 0, o.n) : c.readIn(buf, 0, o.n);
              for (let i = 0; i < n; i++) expect(buf[i]).toBe((got[k] + i) & 0xff);
              got[k] += n;
            }
            expect(c.outPending()).toBe(sent.out - got.out);
            expect(c.inPending()).toBe(sent.in - got.in);
            expect(c.outPending()).toBeLessThanOrEqual(XENCONS_OUT_BYTES);
            expect(c.inPending()).toBeLessThanOrEqual(XENCONS_IN_BYTES);
          }
        },
      ),
      { seed: 0xc0de, numRuns: LONG ? 2000 : 150 },
    );
  });
});
