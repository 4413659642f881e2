import {
  __HYPERVISOR_memory_op,
  __HYPERVISOR_update_va_mapping,
  __HYPERVISOR_update_va_mapping_otherdomain,
  DOMID_SELF,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  EPERM,
  ESRCH,
  UVMF_ALL,
  UVMF_INVLPG,
  UVMF_LOCAL,
  UVMF_NONE,
  UVMF_TLB_FLUSH,
  XENMEM_current_reservation,
  XENMEM_decrease_reservation,
  XENMEM_exchange,
  XENMEM_increase_reservation,
  XENMEM_machphys_mapping,
  XENMEM_maximum_ram_page,
  XENMEM_maximum_reservation,
  XENMEM_populate_physmap,
  XENMEMF_populate_on_demand,
} from "@hyperlab/abi";
import { assertFrameInvariants } from "@hyperlab/testkit";
import { describe, expect, it } from "vitest";
import { type MemoryOpArgs, RO_MPT_VIRT_START_48 } from "../src/index";
import { boot, type Guest, guest, type World } from "./helpers";

function spare(g: Guest, k: number): number {
  return g.b.p2m[g.b.p2m.length - 1 - k];
}

function setup(domid = 1) {
  const w = boot();
  const g = guest(w, { domid });
  return { w, g, v: g.d.vcpus[0] };
}

function mem(w: World, g: Guest, a: MemoryOpArgs) {
  return w.hv.hypercall(g.d.vcpus[0], __HYPERVISOR_memory_op, a);
}

describe("update_va_mapping", () => {
  it("maps a page at a VA, and each UVMF flush type reaches the right TLBs", () => {
    const { w, g, v } = setup();
    const va = g.b.vEnd + 8 * 4096;
    const page = spare(g, 0);
    const v1 = g.d.vcpus[1];
    const flushes = () => [w.pv.tlbFlushCount(v), w.pv.tlbFlushCount(v1)];
    for (const flags of [
      UVMF_NONE,
      UVMF_TLB_FLUSH | UVMF_LOCAL,
      UVMF_TLB_FLUSH | UVMF_ALL,
      UVMF_INVLPG | UVMF_LOCAL,
      UVMF_INVLPG | UVMF_ALL,
    ]) {
      expect(
        w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, { va, val: page * 4096 + 3, flags }),
      ).toBe(0);
    }
    const before = flushes();
    expect(
      w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, {
        va,
        val: page * 4096 + 3,
        flags: UVMF_TLB_FLUSH | 8,
        vcpumask: [0b10],
      }),
    ).toBe(0);
    expect(flushes()).toEqual([before[0], before[1] + 1]);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, {
        va,
        val: page * 4096 + 3,
        flags: UVMF_INVLPG | 8,
        vcpumask: [0b11],
      }),
    ).toBe(0);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, {
        va,
        val: page * 4096 + 3,
        flags: UVMF_INVLPG | 8,
      }),
    ).toBe(-EFAULT);
    expect(w.pv.write(v, va + 8, 4, 5)).toBe(true);
    expect(w.hv.machine.ram.read32(page * 4096 + 8)).toBe(5);
    assertFrameInvariants(w.hv);
  });

  it("refuses a writable mapping of a page table and leaves the old entry", () => {
    const { w, g, v } = setup();
    const va = g.b.vEnd + 8 * 4096;
    expect(
      w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, {
        va,
        val: BigInt(g.b.l4Mfn) * 4096n + 3n,
        flags: 0,
      }),
    ).toBe(-EBUSY);
    expect(w.pv.read(v, va, 4)).toBe(-1);
    assertFrameInvariants(w.hv);
  });

  it("answers -EINVAL for a VA with no L1, in Xen's range, or out of range; -EFAULT for a bad value", () => {
    const { w, g, v } = setup();
    expect(
      w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, { va: 0x1000, val: 0, flags: 0 }),
    ).toBe(-EINVAL);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, {
        va: RO_MPT_VIRT_START_48,
        val: 0,
        flags: 0,
      }),
    ).toBe(-EINVAL);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, { va: 2 ** 48, val: 0, flags: 0 }),
    ).toBe(-EINVAL);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, { va: g.b.virtBase, val: -1, flags: 0 }),
    ).toBe(-EFAULT);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, { va: g.b.virtBase, val: 0, flags: -1 }),
    ).toBe(-EFAULT);
  });

  it("otherdomain maps another domain's page for a privileged caller only", () => {
    const w = boot();
    const dom0 = guest(w, { domid: 0 });
    const domu = guest(w, { domid: 3, nrPages: 1100 });
    const va = dom0.b.vEnd + 8 * 4096;
    const theirs = spare(domu, 0);
    const v0 = dom0.d.vcpus[0];
    expect(
      w.hv.hypercall(v0, __HYPERVISOR_update_va_mapping_otherdomain, {
        va,
        val: theirs * 4096 + 3,
        flags: 0,
        domid: 3,
      }),
    ).toBe(0);
    expect(w.pv.write(v0, va, 4, 9)).toBe(true);
    expect(w.hv.machine.ram.read32(theirs * 4096)).toBe(9);
    assertFrameInvariants(w.hv);
    const vu = domu.d.vcpus[0];
    expect(
      w.hv.hypercall(vu, __HYPERVISOR_update_va_mapping_otherdomain, {
        va: domu.b.vEnd + 4096 * 8,
        val: spare(dom0, 0) * 4096 + 1,
        flags: 0,
        domid: 0,
      }),
    ).toBe(-EPERM);
    expect(
      w.hv.hypercall(vu, __HYPERVISOR_update_va_mapping_otherdomain, {
        va,
        val: 0,
        flags: 0,
        domid: 55,
      }),
    ).toBe(-ESRCH);
    expect(
      w.hv.hypercall(vu, __HYPERVISOR_update_va_mapping_otherdomain, { va, val: 0, flags: 0 }),
    ).toBe(-EFAULT);
  });
});

describe("memory_op", () => {
  it("increase_reservation hands out frames and reports their mfns", () => {
    const { w, g } = setup();
    const list = [0, 0, 0];
    const tot = g.d.totPages;
    expect(
      mem(w, g, {
        cmd: XENMEM_increase_reservation,
        extent_start: list,
        nr_extents: 3,
        extent_order: 1,
        domid: DOMID_SELF,
      }),
    ).toBe(3);
    expect(g.d.totPages).toBe(tot + 6);
    for (const m of list) expect(w.hv.frames.ownerOf(m)).toBe(g.d.domid);
    // A null list is allowed; the limit stops it part way (max_pages).
    const room = g.d.maxPages - g.d.totPages;
    expect(
      mem(w, g, {
        cmd: XENMEM_increase_reservation,
        extent_start: null,
        nr_extents: room + 5,
        extent_order: 0,
        domid: DOMID_SELF,
      }),
    ).toBe(room);
    assertFrameInvariants(w.hv);
  });

  it("populate_physmap sets the M2P for each gpfn", () => {
    const { w, g } = setup();
    const list = [5000, 5002];
    expect(
      mem(w, g, {
        cmd: XENMEM_populate_physmap,
        extent_start: list,
        nr_extents: 2,
        extent_order: 1,
        domid: DOMID_SELF,
      }),
    ).toBe(2);
    expect(w.pv.m2p.get(list[0])).toBe(5000);
    expect(w.pv.m2p.get(list[0] + 1)).toBe(5001);
    expect(w.pv.m2p.get(list[1])).toBe(5002);
    // Populate-on-demand is an HVM feature: for oneself it stops at once.
    expect(
      mem(w, g, {
        cmd: XENMEM_populate_physmap,
        extent_start: [1],
        nr_extents: 1,
        extent_order: 0,
        mem_flags: XENMEMF_populate_on_demand,
        domid: DOMID_SELF,
      }),
    ).toBe(0);
    expect(
      mem(w, g, {
        cmd: XENMEM_populate_physmap,
        extent_start: [-1],
        nr_extents: 1,
        extent_order: 0,
        domid: DOMID_SELF,
      }),
    ).toBe(0);
    assertFrameInvariants(w.hv);
  });

  it("decrease_reservation releases frames; a mapped one lingers until unmapped", () => {
    const { w, g, v } = setup();
    const a = spare(g, 0);
    const va = g.b.vEnd + 8 * 4096;
    expect(
      w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, { va, val: a * 4096 + 3, flags: 0 }),
    ).toBe(0);
    const tot = g.d.totPages;
    expect(
      mem(w, g, {
        cmd: XENMEM_decrease_reservation,
        extent_start: [spare(g, 1), a],
        nr_extents: 2,
        extent_order: 0,
        domid: DOMID_SELF,
      }),
    ).toBe(2);
    expect(g.d.totPages).toBe(tot - 1);
    expect(w.hv.frames.ownerOf(a)).toBe(g.d.domid);
    expect(w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, { va, val: 0, flags: UVMF_INVLPG }));
    expect(w.hv.frames.ownerOf(a)).toBe(-1);
    expect(g.d.totPages).toBe(tot - 2);
    // Frames not ours (or not RAM) stop the list.
    expect(
      mem(w, g, {
        cmd: XENMEM_decrease_reservation,
        extent_start: [1],
        nr_extents: 1,
        extent_order: 0,
        domid: DOMID_SELF,
      }),
    ).toBe(0);
    expect(
      mem(w, g, {
        cmd: XENMEM_decrease_reservation,
        extent_start: [2 ** 30],
        nr_extents: 1,
        extent_order: 0,
        domid: DOMID_SELF,
      }),
    ).toBe(0);
    assertFrameInvariants(w.hv);
  });

  it("reservation ops answer with the extents done (0) on bad arguments, as Xen does", () => {
    const { w, g } = setup();
    const bad: MemoryOpArgs[] = [
      {
        cmd: XENMEM_increase_reservation,
        extent_start: [],
        nr_extents: 2,
        extent_order: 0,
        domid: DOMID_SELF,
      },
      {
        cmd: XENMEM_increase_reservation,
        extent_start: null,
        nr_extents: 1,
        extent_order: 10,
        domid: DOMID_SELF,
      },
      {
        cmd: XENMEM_increase_reservation,
        extent_start: null,
        nr_extents: 1,
        extent_order: 0,
        domid: 42,
      },
      {
        cmd: XENMEM_increase_reservation,
        extent_start: null,
        nr_extents: 1,
        extent_order: 0,
        domid: DOMID_SELF,
        mem_flags: 5,
      },
      {
        cmd: XENMEM_increase_reservation,
        extent_start: null,
        nr_extents: 1,
        extent_order: 0,
        domid: DOMID_SELF,
        mem_flags: 2 << 8,
      },
      {
        cmd: XENMEM_increase_reservation,
        extent_start: null,
        nr_extents: 2 ** 30,
        extent_order: 0,
        domid: DOMID_SELF,
      },
      {
        cmd: XENMEM_populate_physmap,
        extent_start: null,
        nr_extents: 1,
        extent_order: 0,
        domid: DOMID_SELF,
      },
      {
        cmd: XENMEM_decrease_reservation,
        extent_start: null,
        nr_extents: 1,
        extent_order: 0,
        domid: DOMID_SELF,
      },
      {
        cmd: XENMEM_populate_physmap,
        extent_start: [1],
        nr_extents: -1,
        extent_order: 0,
        domid: DOMID_SELF,
      },
    ];
    for (const a of bad) expect(mem(w, g, a)).toBe(0);
    // Acting on another domain needs privilege.
    const other = guest(w, { domid: 6, nrPages: 1100 });
    expect(
      mem(w, g, {
        cmd: XENMEM_increase_reservation,
        extent_start: null,
        nr_extents: 1,
        extent_order: 0,
        domid: other.d.domid,
      }),
    ).toBe(0);
    // An address limit allocates below it.
    const list = [0];
    expect(
      mem(w, g, {
        cmd: XENMEM_increase_reservation,
        extent_start: list,
        nr_extents: 1,
        extent_order: 0,
        domid: DOMID_SELF,
        mem_flags: 24,
      }),
    ).toBe(1);
    expect(list[0]).toBeLessThan(2 ** 12);
  });

  it("exchange swaps pages for new ones, all or nothing per chunk", () => {
    const { w, g } = setup();
    const ins = [spare(g, 0), spare(g, 1)];
    const outs = [7000, 7001];
    const a: MemoryOpArgs = {
      cmd: XENMEM_exchange,
      in: { extent_start: ins, nr_extents: 2, extent_order: 0, domid: DOMID_SELF },
      out: { extent_start: outs, nr_extents: 2, extent_order: 0, domid: DOMID_SELF },
      nr_exchanged: 0,
    };
    const tot = g.d.totPages;
    expect(mem(w, g, a)).toBe(0);
    expect(a.nr_exchanged).toBe(2);
    expect(g.d.totPages).toBe(tot);
    expect(w.hv.frames.ownerOf(ins[0])).toBe(-1);
    expect(w.hv.frames.ownerOf(outs[0])).toBe(g.d.domid);
    expect(w.pv.m2p.get(outs[1])).toBe(7001);
    assertFrameInvariants(w.hv);
    // A page in use (here the L4) cannot be stolen.
    const b: MemoryOpArgs = {
      cmd: XENMEM_exchange,
      in: { extent_start: [g.b.l4Mfn], nr_extents: 1, extent_order: 0, domid: DOMID_SELF },
      out: { extent_start: [1], nr_extents: 1, extent_order: 0, domid: DOMID_SELF },
    };
    expect(mem(w, g, b)).toBe(-EINVAL);
    expect(b.nr_exchanged).toBe(0);
    assertFrameInvariants(w.hv);
  });

  it("exchange checks its arguments", () => {
    const { w, g } = setup();
    const r = (over: Partial<MemoryOpArgs>, inO = {}, outO = {}) =>
      mem(w, g, {
        cmd: XENMEM_exchange,
        in: {
          extent_start: [spare(g, 0)],
          nr_extents: 1,
          extent_order: 0,
          domid: DOMID_SELF,
          ...inO,
        },
        out: { extent_start: [1], nr_extents: 1, extent_order: 0, domid: DOMID_SELF, ...outO },
        ...over,
      });
    expect(r({ in: undefined })).toBe(-EFAULT);
    expect(r({}, { extent_order: 10 })).toBe(-EPERM);
    expect(r({}, { domid: 3 })).toBe(-EINVAL);
    expect(r({}, { nr_extents: 2 })).toBe(-EINVAL);
    expect(r({ nr_exchanged: 5 })).toBe(-EINVAL);
    expect(r({ nr_exchanged: 1 })).toBe(0);
    expect(r({}, { extent_start: null })).toBe(-EFAULT);
    expect(r({}, { domid: 44 }, { domid: 44 })).toBe(-ESRCH);
    expect(r({}, {}, { mem_flags: 3 << 8 })).toBe(-EINVAL);
    expect(r({}, { extent_start: [2 ** 30] })).toBe(-EINVAL);
    expect(r({}, { extent_start: ["x" as unknown as number] })).toBe(-EFAULT);
    const other = guest(w, { domid: 8, nrPages: 1100 });
    expect(r({}, { domid: 8 }, { domid: 8 })).toBe(-EPERM);
    expect(other.d.domid).toBe(8);
  });

  it("exchange answers -ENOMEM when the machine has no frames for the output", () => {
    const w = boot(8 << 20);
    const g = guest(w, { nrPages: 1100, maxPages: 4000 });
    while (w.hv.allocDomainPages(g.d, 0) >= 0);
    const a: MemoryOpArgs = {
      cmd: XENMEM_exchange,
      in: {
        extent_start: [spare(g, 0), spare(g, 1)],
        nr_extents: 2,
        extent_order: 0,
        domid: DOMID_SELF,
      },
      out: { extent_start: [1], nr_extents: 1, extent_order: 1, domid: DOMID_SELF },
    };
    expect(mem(w, g, a)).toBe(-ENOMEM);
    expect(a.nr_exchanged).toBe(0);
    assertFrameInvariants(w.hv);
  });

  it("machphys_mapping says where the read-only M2P is, and the guest reads it there", () => {
    const { w, g } = setup();
    const a: MemoryOpArgs & { v_start?: number; v_end?: number; max_mfn?: number } = {
      cmd: XENMEM_machphys_mapping,
    };
    expect(mem(w, g, a)).toBe(0);
    expect(a.v_start).toBe(RO_MPT_VIRT_START_48);
    expect(a.v_end).toBe(RO_MPT_VIRT_START_48 + 2 ** 38);
    expect(a.max_mfn).toBe(2 ** 35 - 1);
    const mfn = g.b.p2m[3];
    expect(w.pv.read(g.d.vcpus[0], (a.v_start as number) + mfn * 8, 4)).toBe(3);
    const dom0 = guest(w, { domid: 0, nrPages: 1100 });
    const b: MemoryOpArgs & { max_mfn?: number } = { cmd: XENMEM_machphys_mapping };
    expect(w.hv.hypercall(dom0.d.vcpus[0], __HYPERVISOR_memory_op, b)).toBe(0);
    expect(b.max_mfn).toBe(w.hv.frames.nrFrames - 1);
  });

  it("maximum_ram_page, current_reservation and maximum_reservation", () => {
    const { w, g } = setup();
    expect(mem(w, g, { cmd: XENMEM_maximum_ram_page })).toBe(w.hv.frames.nrFrames);
    expect(mem(w, g, { cmd: XENMEM_current_reservation, domid: DOMID_SELF })).toBe(g.d.totPages);
    expect(mem(w, g, { cmd: XENMEM_maximum_reservation, domid: DOMID_SELF })).toBe(g.d.maxPages);
    expect(mem(w, g, { cmd: XENMEM_current_reservation, domid: 99 })).toBe(-ESRCH);
    expect(mem(w, g, { cmd: XENMEM_current_reservation })).toBe(-EFAULT);
    const other = guest(w, { domid: 0, nrPages: 1100 });
    expect(mem(w, g, { cmd: XENMEM_maximum_reservation, domid: 0 })).toBe(-EPERM);
    expect(
      w.hv.hypercall(other.d.vcpus[0], __HYPERVISOR_memory_op, {
        cmd: XENMEM_maximum_reservation,
        domid: g.d.domid,
      }),
    ).toBe(g.d.maxPages);
  });
});
