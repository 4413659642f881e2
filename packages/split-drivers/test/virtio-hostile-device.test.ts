/*
 * A hostile device against the guest's virtqueue: whatever it writes into the used ring (ids
 * that are not heads, ids given back twice, lengths beyond the buffers, a used index far ahead),
 * the driver never throws, hands each token back at most once, never reports more bytes than
 * the chain could hold, and stops using a queue it found broken.
 */

import { createHypervisor } from "@hyperlab/core";
import { bootNativeKernel } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { nptMmu } from "@hyperlab/npt-mmu";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Virtqueue } from "../src/index";

/** A KVM-style guest kernel (nested paging); the "device" is the test itself. */
function guest(seed: number) {
  const machine = createMachine({ ramBytes: 64 * 2 ** 20, cpus: 1, seed });
  const hv = createHypervisor({ machine, plugins: [nptMmu()] }).boot();
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 600 });
  hv.unpauseDomain(d);
  return { k: bootNativeKernel(hv, d, { nrPages: 512 }) };
}

const RUNS = process.env.HYPERLAB_LONG ? 300 : 40;

describe("the guest's virtqueue against a hostile device", () => {
  it("property: tokens come back at most once, lengths are clamped, a broken queue stays quiet", () => {
    const g = guest(11);
    const ram = g.k.ram;
    fc.assert(
      fc.property(
        fc.nat(3).map((x) => 2 << x),
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant("add" as const),
              out: fc.nat(3),
              in: fc.nat(3),
              len: fc.integer({ min: 1, max: 4096 }),
            }),
            fc.record({
              op: fc.constant("used" as const),
              id: fc.nat(40),
              len: fc.nat(0xffff_ffff),
              bump: fc.integer({ min: 0, max: 40 }),
            }),
            fc.record({ op: fc.constant("get" as const) }),
          ),
          { minLength: 1, maxLength: 40 },
        ),
        (num, ops) => {
          const vq = new Virtqueue<number>(g.k, 0, num, { eventIdx: true, notify: () => {} });
          const out = new Map<number, number>(); // token -> writable bytes
          const returned = new Set<number>();
          let token = 0;
          let usedIdx = 0;
          for (const o of ops) {
            if (o.op === "add") {
              const buf = (n: number) =>
                Array.from({ length: n }, () => ({ addr: 0x1000, len: o.len }));
              const rc = vq.add(buf(o.out), buf(o.in), token);
              if (rc >= 0) {
                expect(rc).toBeLessThan(num);
                out.set(token, o.in * o.len);
              } else expect([-5, -28]).toContain(rc);
              token++;
              vq.kick();
            } else if (o.op === "used") {
              const e = vq.usedPa + 4 + 8 * (usedIdx % num);
              ram.write32(e, o.id);
              ram.write32(e + 4, o.len);
              usedIdx = (usedIdx + o.bump) & 0xffff;
              ram.write16(vq.usedPa + 2, usedIdx);
            } else {
              const b = vq.getBuf();
              if (b === null) continue;
              expect(out.has(b.token)).toBe(true);
              expect(returned.has(b.token)).toBe(false);
              expect(b.len).toBeLessThanOrEqual(out.get(b.token) as number);
              returned.add(b.token);
              out.delete(b.token);
            }
            expect(vq.numFree).toBeGreaterThanOrEqual(0);
            expect(vq.numFree).toBeLessThanOrEqual(num);
            if (vq.broken !== null) {
              expect(vq.getBuf()).toBeNull();
              expect(vq.add([{ addr: 0, len: 1 }], [], -1)).toBe(-5);
            }
          }
          for (const p of vq.ringPages()) g.k.freePage(p);
        },
      ),
      { seed: 13, numRuns: RUNS },
    );
  });

  it("named cases: an id that is not a head, a used index far ahead", () => {
    const g = guest(12);
    const ram = g.k.ram;
    const vq = new Virtqueue<string>(g.k, 0, 8, { eventIdx: false, notify: () => {} });
    expect(vq.add([{ addr: 0x2000, len: 16 }], [{ addr: 0x3000, len: 100 }], "a")).toBe(0);
    ram.write32(vq.usedPa + 4, 0);
    ram.write32(vq.usedPa + 8, 5000);
    ram.write16(vq.usedPa + 2, 1);
    expect(vq.getBuf()).toEqual({ token: "a", len: 100 }); // clamped to the writable bytes
    expect(vq.numFree).toBe(8);
    vq.add([{ addr: 0x2000, len: 16 }], [], "b");
    ram.write32(vq.usedPa + 4 + 8, 3); // descriptor 3 heads nothing
    ram.write16(vq.usedPa + 2, 2);
    expect(vq.getBuf()).toBeNull();
    expect(vq.broken).toBe("id 3 is not a head");
    const vq2 = new Virtqueue<string>(g.k, 1, 8, { eventIdx: false, notify: () => {} });
    vq2.add([{ addr: 0x2000, len: 16 }], [], "c");
    ram.write16(vq2.usedPa + 2, 200);
    expect(vq2.getBuf()).toBeNull();
    expect(vq2.broken).toContain("used index");
  });
});
