/*
 * XENMEM_exchange details where Xen 4.17's memory_exchange and page allocator decide the
 * answer: an address width of 12 bits or less still limits the output to zone 1 (below
 * 8 KiB), and a chunk whose output gpfn cannot be read fails with -EFAULT without being
 * counted in nr_exchanged or written back.
 */
import { __HYPERVISOR_memory_op, DOMID_SELF, EFAULT, ENOMEM, XENMEM_exchange } from "@hyperlab/abi";
import { assertFrameInvariants } from "@hyperlab/testkit";
import { describe, expect, it } from "vitest";
import type { MemoryOpArgs } from "../src/index";
import { boot, type Guest, guest, type World } from "./helpers";

function spare(g: Guest, k: number): number {
  return g.b.p2m[g.b.p2m.length - 1 - k];
}
function mem(w: World, g: Guest, a: MemoryOpArgs) {
  return w.hv.hypercall(g.d.vcpus[0], __HYPERVISOR_memory_op, a);
}

describe("XENMEM_exchange as Xen 4.17", () => {
  for (const bits of [1, 12, 13]) {
    it(`address_bits ${bits} limits the output to the lowest zone (below 8 KiB), not to nothing`, () => {
      const w = boot();
      const g = guest(w);
      const outs = [7000];
      const a: MemoryOpArgs = {
        cmd: XENMEM_exchange,
        in: { extent_start: [spare(g, 0)], nr_extents: 1, extent_order: 0, domid: DOMID_SELF },
        out: {
          extent_start: outs,
          nr_extents: 1,
          extent_order: 0,
          mem_flags: bits,
          domid: DOMID_SELF,
        },
        nr_exchanged: 0,
      };
      const rc = mem(w, g, a);
      if (rc === 0) expect(outs[0]).toBeLessThan(2);
      else expect({ rc, done: a.nr_exchanged }).toEqual({ rc: -ENOMEM, done: 0 });
      assertFrameInvariants(w.hv);
    });
  }

  it("a chunk whose output gpfn cannot be read is -EFAULT, not counted, and not written back", () => {
    const w = boot();
    const g = guest(w);
    const ins = [spare(g, 0), spare(g, 1)];
    const outs: unknown[] = [7000, "not a gpfn"];
    const a: MemoryOpArgs = {
      cmd: XENMEM_exchange,
      in: { extent_start: ins, nr_extents: 2, extent_order: 0, domid: DOMID_SELF },
      out: {
        extent_start: outs as number[],
        nr_extents: 2,
        extent_order: 0,
        domid: DOMID_SELF,
      },
      nr_exchanged: 0,
    };
    expect(mem(w, g, a)).toBe(-EFAULT);
    expect(a.nr_exchanged).toBe(1);
    expect(outs[0]).not.toBe(7000);
    expect(w.pv.m2p.get(outs[0] as number)).toBe(7000);
    expect(outs[1]).toBe("not a gpfn");
    // Both inputs were consumed (Xen frees a chunk's inputs before it reads the gpfns).
    expect(w.hv.frames.ownerOf(ins[0])).toBe(-1);
    expect(w.hv.frames.ownerOf(ins[1])).toBe(-1);
    assertFrameInvariants(w.hv);
  });
});
