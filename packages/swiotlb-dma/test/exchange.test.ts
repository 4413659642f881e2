/*
 * XENMEM_exchange as the guest sees it (pv-mmu serves it): Xen 4.17's checks, partial
 * progress through nr_exchanged, the new frames written back into the out list, Xen's M2P
 * updated and the old frames freed.
 */
import {
  __HYPERVISOR_memory_op,
  __HYPERVISOR_update_va_mapping,
  DOMID_SELF,
  EFAULT,
  EINVAL,
  EPERM,
  ESRCH,
  UVMF_INVLPG,
  XENMEM_exchange,
} from "@hyperlab/abi";
import { FRAME_FREE } from "@hyperlab/core";
import { type GuestKernel, PAGE_KERNEL } from "@hyperlab/guest";
import { describe, expect, it } from "vitest";
import { xenBuild } from "./helpers";

function pages(k: GuestKernel, n: number): number {
  const b = k.allocHugePage();
  for (let p = b + n; p < b + 512; p++) k.freePage(p);
  return b;
}
/** Drops the direct map's reference to pfn's frame, so Xen may steal it. */
function unmap(k: GuestKernel, pfn: number): void {
  expect(
    k.port.hypercall(0, __HYPERVISOR_update_va_mapping, {
      va: k.physVa(pfn),
      val: 0,
      flags: UVMF_INVLPG,
    }),
  ).toBe(0);
}
function exchange(
  k: GuestKernel,
  inList: number[],
  inOrder: number,
  outList: number[],
  outOrder: number,
  extra: { bits?: number; nrExchanged?: number; inDomid?: number; outDomid?: number } = {},
) {
  const args = {
    cmd: XENMEM_exchange,
    in: {
      extent_start: inList,
      nr_extents: inList.length,
      extent_order: inOrder,
      domid: extra.inDomid ?? DOMID_SELF,
    },
    out: {
      extent_start: outList,
      nr_extents: outList.length,
      extent_order: outOrder,
      mem_flags: extra.bits ?? 0,
      domid: extra.outDomid ?? DOMID_SELF,
    },
    nr_exchanged: extra.nrExchanged ?? 0,
  };
  const rc = k.port.hypercall(0, __HYPERVISOR_memory_op, args);
  return { rc, nrExchanged: args.nr_exchanged };
}

describe("XENMEM_exchange from a PV guest", () => {
  it("stops at the first frame it cannot steal: nr_exchanged counts what was done, those frames are written back, M2P set, old frames freed", () => {
    const { hv, kernel } = xenBuild();
    const p = pages(kernel, 3);
    const old = [0, 1, 2].map((i) => kernel.frameOf(p + i));
    unmap(kernel, p);
    unmap(kernel, p + 1); // p + 2 stays mapped: its frame has a second reference
    const out = [p, p + 1, p + 2];
    const r = exchange(kernel, [...old], 0, out, 0);
    expect(r).toEqual({ rc: -EINVAL, nrExchanged: 2 });
    const m2p = hv.slot("pv-mmu").m2p;
    for (let i = 0; i < 2; i++) {
      expect(out[i]).not.toBe(p + i);
      expect(out[i]).not.toBe(old[i]);
      expect(m2p.get(out[i])).toBe(p + i);
      expect(hv.frames.ownerOf(out[i])).toBe(1);
      expect(hv.frames.ownerOf(old[i])).toBe(FRAME_FREE);
    }
    expect(out[2]).toBe(p + 2);
    expect(hv.frames.ownerOf(old[2])).toBe(1);
    // Continuing from nr_exchanged once the last frame is free does only the rest.
    unmap(kernel, p + 2);
    const r2 = exchange(kernel, [...old], 0, out, 0, { nrExchanged: 2 });
    expect(r2).toEqual({ rc: 0, nrExchanged: 3 });
    expect(hv.frames.ownerOf(old[2])).toBe(FRAME_FREE);
    expect(m2p.get(out[2])).toBe(p + 2);
    // Put the kernel's view back (as xen_create_contiguous_region's remap does).
    for (let i = 0; i < 3; i++) {
      kernel.xen!.p2m[p + i] = out[i];
      kernel.port.hypercall(0, __HYPERVISOR_update_va_mapping, {
        va: kernel.physVa(p + i),
        val: out[i] * 4096 + PAGE_KERNEL,
        flags: UVMF_INVLPG,
      });
    }
  });

  it("exchanges in chunks of the larger order: a chunk that cannot be stolen whole gives its frames back", () => {
    const { hv, kernel } = xenBuild();
    const p = pages(kernel, 4);
    const old = [0, 1, 2, 3].map((i) => kernel.frameOf(p + i));
    for (let i = 0; i < 3; i++) unmap(kernel, p + i);
    const out = [p];
    expect(exchange(kernel, [...old], 0, out, 2)).toEqual({ rc: -EINVAL, nrExchanged: 0 });
    expect(out).toEqual([p]);
    for (const m of old) expect(hv.frames.ownerOf(m)).toBe(1);
    unmap(kernel, p + 3);
    expect(exchange(kernel, [...old], 0, out, 2, { bits: 32 })).toEqual({ rc: 0, nrExchanged: 4 });
    expect(out[0] % 4).toBe(0);
    expect(out[0] * 4096 + 4 * 4096).toBeLessThanOrEqual(2 ** 32);
    for (let i = 0; i < 4; i++) expect(hv.slot("pv-mmu").m2p.get(out[0] + i)).toBe(p + i);
  });

  it("answers Xen's errnos for bad arguments, exchanging nothing", () => {
    const { hv, kernel } = xenBuild();
    const p = pages(kernel, 2);
    const old = [kernel.frameOf(p), kernel.frameOf(p + 1)];
    unmap(kernel, p);
    unmap(kernel, p + 1);
    // A domU's max order is 9.
    expect(exchange(kernel, [old[0]], 10, [p], 10).rc).toBe(-EPERM);
    expect(exchange(kernel, [...old], 0, [p], 0).rc).toBe(-EINVAL); // 2 pages in, 1 out
    expect(exchange(kernel, [...old], 0, [p, p + 1], 0, { nrExchanged: 3 }).rc).toBe(-EINVAL);
    expect(exchange(kernel, [...old], 0, [p, p + 1], 0, { outDomid: 1 }).rc).toBe(-EINVAL);
    expect(exchange(kernel, [...old], 0, [p, p + 1], 0, { inDomid: 77, outDomid: 77 }).rc).toBe(
      -ESRCH,
    );
    expect(exchange(kernel, [2 ** 40, old[1]], 0, [p, p + 1], 0).rc).toBe(-EINVAL);
    const rc = kernel.port.hypercall(0, __HYPERVISOR_memory_op, { cmd: XENMEM_exchange });
    expect(rc).toBe(-EFAULT);
    for (const m of old) expect(hv.frames.ownerOf(m)).toBe(1);
  });
});
