// The kernel's page allocator against a model of its contract: a page freed since boot is
// handed out first (last freed first), else the lowest page boot gave that nobody took; a huge
// page is the highest 2 MiB block whose 512 pages are all free; the free count follows. The
// allocator writes nothing per page before handing it out (pages.ts), which this checks too:
// a page never handed out is not the kernel's to free.

import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createGuestPort, startNativeKernel } from "../src/index";
import { nativeBuild, xenBuild } from "./helpers";

/**
 * A native kernel over frames 500 .. 1599 of an aligned 2048-frame run: one run of pages with
 * a whole 2 MiB block inside, so a huge page splits the run in two.
 */
function oddFrames() {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 4096 });
  const base = hv.allocDomainPages(d, 11);
  expect(base % 2048).toBe(0);
  const frames = Float64Array.from({ length: 1100 }, (_, i) => base + 500 + i);
  return startNativeKernel(createGuestPort(hv, d), frames);
}

type Op = { kind: "alloc" } | { kind: "free"; pick: number } | { kind: "huge" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<Op>({ kind: "alloc" }) },
  { weight: 4, arbitrary: fc.nat().map<Op>((pick) => ({ kind: "free", pick })) },
  { weight: 1, arbitrary: fc.constant<Op>({ kind: "huge" }) },
);

const BUILDS = {
  native: () => nativeBuild(2048).kernel,
  "xen-pv": () => xenBuild(4096).kernel,
  "native, a run with a block inside": oddFrames,
};

describe("the guest's page allocator", () => {
  for (const [name, build] of Object.entries(BUILDS)) {
    it(`${name}: hands out the last freed page, else the lowest never used; huge pages from the highest free block`, () => {
      // Draining one kernel gives the never-used pages, in the order they are handed out.
      const probe = build();
      const fresh0: number[] = [];
      for (let p = probe.allocPage(); p >= 0; p = probe.allocPage()) fresh0.push(p);
      expect(fresh0.length).toBeGreaterThan(1000);
      for (let i = 1; i < fresh0.length; i++) expect(fresh0[i]).toBeGreaterThan(fresh0[i - 1]);
      expect(probe.freePages).toBe(0);
      expect(probe.allocHugePage()).toBe(-1);

      fc.assert(
        fc.property(fc.array(opArb, { maxLength: 400 }), (ops) => {
          const k = build();
          const fresh = [...fresh0];
          const free = new Set(fresh);
          const stack: number[] = [];
          const held: number[] = [];
          expect(k.freePages).toBe(fresh.length);
          // A page boot gave but nobody took is not the kernel's to free.
          expect(() => k.freePage(fresh[fresh.length - 1])).toThrow(/not a free-able page/);
          for (const op of ops) {
            if (op.kind === "alloc") {
              const want = stack.length > 0 ? stack.pop()! : (fresh.shift() ?? -1);
              expect(k.allocPage()).toBe(want);
              if (want >= 0) {
                free.delete(want);
                held.push(want);
              }
            } else if (op.kind === "free") {
              if (held.length === 0) continue;
              const [pfn] = held.splice(op.pick % held.length, 1);
              k.freePage(pfn);
              stack.push(pfn);
              free.add(pfn);
            } else {
              let want = -1;
              const top = Math.floor(Math.max(...fresh0) / 512);
              for (let b = top; b >= 0 && want < 0; b--) {
                let all = true;
                for (let i = 0; i < 512 && all; i++) all = free.has(b * 512 + i);
                if (all) want = b * 512;
              }
              expect(k.allocHugePage()).toBe(want);
              if (want < 0) continue;
              for (let i = 0; i < 512; i++) {
                const pfn = want + i;
                free.delete(pfn);
                held.push(pfn);
                const at = stack.indexOf(pfn);
                if (at >= 0) {
                  // Taken off the stack by swapping the last page into its place.
                  const last = stack.pop()!;
                  if (at !== stack.length) stack[at] = last;
                }
                const f = fresh.indexOf(pfn);
                if (f >= 0) fresh.splice(f, 1);
              }
            }
            expect(k.freePages).toBe(stack.length + fresh.length);
          }
          // Whatever happened, the pool drains in the model's order and then is empty.
          for (let want = stack.pop() ?? fresh.shift(); want !== undefined; ) {
            expect(k.allocPage()).toBe(want);
            want = stack.pop() ?? fresh.shift();
          }
          expect(k.allocPage()).toBe(-1);
          expect(k.freePages).toBe(0);
        }),
        { seed: 10, numRuns: process.env.HYPERLAB_LONG ? 200 : 15 },
      );
    }, 120_000);
  }
});
