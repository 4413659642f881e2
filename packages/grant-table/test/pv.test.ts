/*
 * Grant mappings through real PV page tables: pv-mmu's PvGrantMapping in the
 * `grant-host-mapping` slot.
 */
import {
  __HYPERVISOR_grant_table_op,
  __HYPERVISOR_memory_op,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_update_va_mapping,
  DOMID_SELF,
  DOMID_XEN,
  GNTMAP_contains_pte,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTST_general_error,
  GNTST_okay,
  GNTTABOP_map_grant_ref,
  GNTTABOP_unmap_and_replace,
  GNTTABOP_unmap_grant_ref,
  GTF_permit_access,
  GTF_reading,
  GTF_writing,
  MMUEXT_PIN_L1_TABLE,
  XENMEM_decrease_reservation,
} from "@hyperlab/abi";
import type { Vcpu } from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import type { GnttabMapGrantRef, GnttabUnmapAndReplace, GnttabUnmapGrantRef } from "../src/index";
import { bootPv, guestGrant, mapOwn, type PvWorld, pvGuest, violations } from "./pv-helpers";

function gnttab(w: PvWorld, v: Vcpu, cmd: number, uops: object[]): number {
  return w.hv.hypercall(v, __HYPERVISOR_grant_table_op, {
    cmd,
    uops: uops as GnttabMapGrantRef[],
    count: uops.length,
  });
}

function setup() {
  const w = bootPv();
  const a = pvGuest(w, 1);
  const b = pvGuest(w, 2);
  // The granter writes its data through its own mapping of a spare page.
  const page = a.b.p2m[1090];
  const dataVa = a.b.vEnd + 40 * 4096;
  expect(mapOwn(w, a, dataVa, page)).toBe(0);
  expect(w.pv.write(a.d.vcpus[0], dataVa, 4, 0x5ca1ab1e)).toBe(true);
  expect(guestGrant(w, a, 8, 2, page)).toBe(true);
  expect(violations(w)).toEqual([]);
  return { w, a, b, page, dataVa, va: b.b.vEnd + 8 * 4096 };
}

describe("grant host mappings in PV page tables", () => {
  it("the mapper reads and writes the granter's frame through its own vCPU", () => {
    const { w, a, b, page, dataVa, va } = setup();
    const bv = b.d.vcpus[0];
    expect(w.pv.read(bv, va, 4)).toBe(-1); // nothing there yet
    const m: GnttabMapGrantRef = { host_addr: va, flags: GNTMAP_host_map, ref: 8, dom: 1 };
    expect(gnttab(w, bv, GNTTABOP_map_grant_ref, [m])).toBe(0);
    expect(m.status).toBe(GNTST_okay);
    expect(w.pv.read(bv, va, 4)).toBe(0x5ca1ab1e);
    expect(w.pv.write(bv, va + 4, 4, 0xfeedface)).toBe(true);
    expect(w.pv.read(a.d.vcpus[0], dataVa + 4, 4)).toBe(0xfeedface);
    // The granter sees GTF_reading | GTF_writing in its entry, through its own mapping.
    expect(w.pv.read(a.d.vcpus[0], a.gntVa + 8 * 8, 2)).toBe(
      GTF_permit_access | GTF_reading | GTF_writing,
    );
    expect(w.hv.machine.ram.read32(page * 4096)).toBe(0x5ca1ab1e);
    expect(violations(w)).toEqual([]);

    const u: GnttabUnmapGrantRef = { host_addr: va, dev_bus_addr: 0, handle: m.handle ?? -1 };
    expect(gnttab(w, bv, GNTTABOP_unmap_grant_ref, [u])).toBe(0);
    expect(u.status).toBe(GNTST_okay);
    expect(w.pv.read(bv, va, 4)).toBe(-1); // the TLB was flushed with the unmap
    expect(w.pv.read(a.d.vcpus[0], a.gntVa + 8 * 8, 2)).toBe(GTF_permit_access);
    expect(violations(w)).toEqual([]);
  });

  it("a read-only mapping faults on write; GNTMAP_contains_pte names the entry by machine address", () => {
    const { w, b, va } = setup();
    const bv = b.d.vcpus[0];
    const ro: GnttabMapGrantRef = {
      host_addr: va,
      flags: GNTMAP_host_map | GNTMAP_readonly,
      ref: 8,
      dom: 1,
    };
    gnttab(w, bv, GNTTABOP_map_grant_ref, [ro]);
    expect(ro.status).toBe(GNTST_okay);
    expect(w.pv.read(bv, va, 4)).toBe(0x5ca1ab1e);
    expect(w.pv.write(bv, va, 4, 1)).toBe(false);
    const slot = w.pv.guestL1Slot(bv.cr3Mfn, va + 4096);
    const pteMaddr = Math.floor(slot / 512) * 4096 + (slot % 512) * 8;
    const byPte: GnttabMapGrantRef = {
      host_addr: pteMaddr,
      flags: GNTMAP_host_map | GNTMAP_contains_pte,
      ref: 8,
      dom: 1,
    };
    gnttab(w, bv, GNTTABOP_map_grant_ref, [byPte]);
    expect(byPte.status).toBe(GNTST_okay);
    expect(w.pv.read(bv, va + 4096, 4)).toBe(0x5ca1ab1e);
    // Misaligned, foreign or non-L1 entries are refused.
    const bad = [pteMaddr + 1, w.hv.domain(1)!.sharedInfoMfn * 4096, bv.cr3Mfn * 4096].map(
      (host_addr) => ({ host_addr, flags: GNTMAP_host_map | GNTMAP_contains_pte, ref: 8, dom: 1 }),
    );
    gnttab(w, bv, GNTTABOP_map_grant_ref, bad);
    expect(bad.map((o) => (o as GnttabMapGrantRef).status)).toEqual([
      GNTST_general_error,
      GNTST_general_error,
      GNTST_general_error,
    ]);
    // A linear address with no L1 under it is refused too.
    const nowhere = { host_addr: 0x1000, flags: GNTMAP_host_map, ref: 8, dom: 1 };
    gnttab(w, bv, GNTTABOP_map_grant_ref, [nowhere]);
    expect((nowhere as GnttabMapGrantRef).status).toBe(GNTST_general_error);
    expect(violations(w)).toEqual([]);
    const u = [
      { host_addr: va, dev_bus_addr: 0, handle: ro.handle },
      { host_addr: pteMaddr, dev_bus_addr: 0, handle: byPte.handle },
    ];
    gnttab(w, bv, GNTTABOP_unmap_grant_ref, u);
    expect(u.map((o) => (o as GnttabUnmapGrantRef).status)).toEqual([GNTST_okay, GNTST_okay]);
    expect(violations(w)).toEqual([]);
  });

  it("the granter cannot take back a mapped frame: it stays allocated until the unmap", () => {
    const { w, a, b, page, dataVa, va } = setup();
    const av = a.d.vcpus[0];
    const bv = b.d.vcpus[0];
    const m: GnttabMapGrantRef = { host_addr: va, flags: GNTMAP_host_map, ref: 8, dom: 1 };
    gnttab(w, bv, GNTTABOP_map_grant_ref, [m]);
    // Writable-mapped by the grantee, it cannot become a page table.
    const pin = w.hv.hypercall(av, __HYPERVISOR_mmuext_op, {
      uops: [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: { mfn: page } }],
      count: 1,
      foreigndom: DOMID_SELF,
    });
    expect(pin).toBeLessThan(0);
    // Giving it back to Xen drops only the allocation reference: the frame lives on.
    // The granter unmaps it from its own tables first.
    expect(
      w.hv.hypercall(av, __HYPERVISOR_update_va_mapping, { va: dataVa, val: 0, flags: 0 }),
    ).toBe(0);
    const totBefore = a.d.totPages;
    const n = w.hv.hypercall(av, __HYPERVISOR_memory_op, {
      cmd: XENMEM_decrease_reservation,
      extent_start: [page],
      nr_extents: 1,
      extent_order: 0,
      domid: DOMID_SELF,
    });
    expect(n).toBe(1);
    expect(w.hv.frames.ownerOf(page)).toBe(1);
    expect(a.d.totPages).toBe(totBefore);
    expect(w.pv.read(bv, va, 4)).toBe(0x5ca1ab1e);
    expect(violations(w)).toEqual([]);
    gnttab(w, bv, GNTTABOP_unmap_grant_ref, [{ host_addr: va, dev_bus_addr: 0, handle: 0 }]);
    expect(w.hv.frames.ownerOf(page)).toBe(-1);
    expect(a.d.totPages).toBe(totBefore - 1);
    expect(violations(w)).toEqual([]);
  });

  it("an entry the guest overwrites is no longer the grant's: unmap fails, teardown still balances", () => {
    const { w, a, b, va } = setup();
    const bv = b.d.vcpus[0];
    gnttab(w, bv, GNTTABOP_map_grant_ref, [
      { host_addr: va, flags: GNTMAP_host_map, ref: 8, dom: 1 },
    ]);
    const rc = w.hv.hypercall(bv, __HYPERVISOR_update_va_mapping, { va, val: 0, flags: 0 });
    expect(rc).toBe(0);
    expect(violations(w)).toEqual([]);
    const u = { host_addr: va, dev_bus_addr: 0, handle: 0 };
    gnttab(w, bv, GNTTABOP_unmap_grant_ref, [u]);
    expect(u).toMatchObject({ status: GNTST_general_error });
    expect(w.gt.statusOf(1, 8)?.pin).toBe(1);
    w.hv.destroyDomain(b.d);
    expect(b.d.state).toBe("dead");
    expect(w.gt.statusOf(1, 8)).toEqual({ pin: 0, statusBits: 0 });
    expect(violations(w)).toEqual([]);
    w.hv.destroyDomain(a.d);
    expect(a.d.state).toBe("dead");
    expect(
      Array.from(w.hv.frames.ownerKeys, (k) => ~k).every((o) => o === -1 || o === DOMID_XEN),
    ).toBe(true);
  });

  it("a frame once mapped writable through a grant becomes a page table only after a flush", () => {
    const { w, a, b, va } = setup();
    const av = a.d.vcpus[0];
    const bv = b.d.vcpus[0];
    const fresh = a.b.p2m[1080]; // zero-filled: a valid (empty) L1
    expect(guestGrant(w, a, 9, 2, fresh)).toBe(true);
    gnttab(w, bv, GNTTABOP_map_grant_ref, [
      { host_addr: va, flags: GNTMAP_host_map, ref: 9, dom: 1 },
    ]);
    expect(w.pv.write(bv, va, 4, 0)).toBe(true); // the writable translation is now in B's TLB
    // B drops the entry itself, without a flush; A then makes the frame an L1.
    expect(w.hv.hypercall(bv, __HYPERVISOR_update_va_mapping, { va, val: 0, flags: 0 })).toBe(0);
    const pin = w.hv.hypercall(av, __HYPERVISOR_mmuext_op, {
      uops: [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: { mfn: fresh } }],
      count: 1,
      foreigndom: DOMID_SELF,
    });
    expect(pin).toBe(0);
    // Xen flushed before the type change: B cannot write the new page table.
    expect(w.pv.write(bv, va, 4, 0xdead_0067)).toBe(false);
    expect(w.hv.machine.ram.read32(fresh * 4096)).toBe(0);
    expect(violations(w)).toEqual([]);
  });

  it("unmap_and_replace moves another entry into the grant's place", () => {
    const { w, b, va } = setup();
    const bv = b.d.vcpus[0];
    const m: GnttabMapGrantRef = { host_addr: va, flags: GNTMAP_host_map, ref: 8, dom: 1 };
    gnttab(w, bv, GNTTABOP_map_grant_ref, [m]);
    const own = b.b.p2m[1095];
    const other = va + 4096;
    expect(mapOwn(w, b, other, own)).toBe(0);
    expect(w.pv.write(bv, other, 4, 0x1234)).toBe(true);
    const r: GnttabUnmapAndReplace = { host_addr: va, new_addr: other, handle: 0 };
    gnttab(w, bv, GNTTABOP_unmap_and_replace, [r]);
    expect(r.status).toBe(GNTST_okay);
    expect(w.pv.read(bv, va, 4)).toBe(0x1234);
    expect(w.pv.read(bv, other, 4)).toBe(-1);
    expect(violations(w)).toEqual([]);
  });

  it("destroying the mapper or the granter releases everything", () => {
    for (const first of ["mapper", "granter"] as const) {
      const { w, a, b, page, va } = setup();
      const bv = b.d.vcpus[0];
      gnttab(w, bv, GNTTABOP_map_grant_ref, [
        { host_addr: va, flags: GNTMAP_host_map, ref: 8, dom: 1 },
        { host_addr: va + 4096, flags: GNTMAP_host_map | GNTMAP_readonly, ref: 8, dom: 1 },
      ]);
      if (first === "mapper") {
        w.hv.destroyDomain(b.d);
        expect(b.d.state).toBe("dead");
        expect(w.gt.statusOf(1, 8)).toEqual({ pin: 0, statusBits: 0 });
        expect(violations(w)).toEqual([]);
        w.hv.destroyDomain(a.d);
      } else {
        w.hv.destroyDomain(a.d);
        expect(a.d.state).toBe("dying");
        expect(w.pv.read(bv, va, 4)).toBe(0x5ca1ab1e);
        expect(violations(w)).toEqual([]);
        w.hv.destroyDomain(b.d);
        expect(w.hv.frames.ownerOf(page)).toBe(-1);
      }
      expect(a.d.state).toBe("dead");
      expect(b.d.state).toBe("dead");
      expect(violations(w)).toEqual([]);
      expect(
        Array.from(w.hv.frames.ownerKeys, (k) => ~k).every((o) => o === -1 || o === DOMID_XEN),
      ).toBe(true);
    }
  });
});
