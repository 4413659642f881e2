import {
  DOMID_SELF,
  EFAULT,
  EINVAL,
  ENOSYS,
  GNTMAP_contains_pte,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTST_bad_dev_addr,
  GNTST_bad_domain,
  GNTST_bad_gntref,
  GNTST_bad_handle,
  GNTST_bad_page,
  GNTST_general_error,
  GNTST_no_space,
  GNTST_okay,
  GNTTABOP_dump_table,
  GNTTABOP_map_grant_ref,
  GNTTABOP_unmap_and_replace,
  GNTTABOP_unmap_grant_ref,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_sub_page,
  GTF_writing,
} from "@hyperlab/abi";
import { PGT_writable_page } from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import { boot, check, dom, flagsV1, gnttab, grantV1, M, R, U } from "./helpers";

const VA = 0x7f00_0000_0000;

function setup() {
  const w = boot();
  const granter = dom(w, { domid: 1 });
  const mapper = dom(w, { domid: 2 });
  const page = w.hv.allocDomainPages(granter);
  w.hv.machine.ram.write32(page * 4096, 0xc0ffee);
  return { w, granter, mapper, page };
}

describe("map_grant_ref", () => {
  it("maps a writable grant into the host and pins it with GTF_reading | GTF_writing", () => {
    const { w, granter, mapper, page } = setup();
    grantV1(w, granter, 10, mapper.domid, page);
    const before = w.hv.frames.refCount(page);
    const op = M({ host_addr: VA, flags: GNTMAP_host_map, ref: 10, dom: 1 });
    expect(gnttab(w, mapper, GNTTABOP_map_grant_ref, [op])).toBe(0);
    expect(op).toMatchObject({ status: GNTST_okay, handle: 0, dev_bus_addr: page * 4096 });
    expect(flagsV1(w, granter, 10)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
    expect(w.hv.frames.refCount(page)).toBe(before + 1);
    expect(w.hv.frames.typeOf(page)).toBe(PGT_writable_page);
    expect(w.hv.frames.typeCount(page)).toBe(1);
    expect(w.dbl.lookup(2, VA)).toBe(page);
    check(w);
  });

  it("maps read-only: GTF_reading only, no type reference; a read-only grant refuses a writable map", () => {
    const { w, granter, mapper, page } = setup();
    grantV1(w, granter, 3, mapper.domid, page, GTF_permit_access | GTF_readonly);
    const rw = M({ host_addr: VA, flags: GNTMAP_host_map, ref: 3, dom: 1 });
    gnttab(w, mapper, GNTTABOP_map_grant_ref, [rw]);
    expect(rw.status).toBe(GNTST_general_error);
    expect(flagsV1(w, granter, 3)).toBe(GTF_permit_access | GTF_readonly);
    const ro = M({ host_addr: VA, flags: GNTMAP_host_map | GNTMAP_readonly, ref: 3, dom: 1 });
    gnttab(w, mapper, GNTTABOP_map_grant_ref, [ro]);
    expect(ro.status).toBe(GNTST_okay);
    expect(flagsV1(w, granter, 3)).toBe(GTF_permit_access | GTF_readonly | GTF_reading);
    expect(w.hv.frames.typeCount(page)).toBe(0);
    check(w);
  });

  it("device mappings take a writable type for writable maps; host+device take two references", () => {
    const { w, granter, mapper, page } = setup();
    grantV1(w, granter, 4, mapper.domid, page);
    const base = w.hv.frames.refCount(page);
    const both = M({ host_addr: VA, flags: GNTMAP_host_map | GNTMAP_device_map, ref: 4, dom: 1 });
    const dev = M({ host_addr: 0, flags: GNTMAP_device_map | GNTMAP_readonly, ref: 4, dom: 1 });
    gnttab(w, mapper, GNTTABOP_map_grant_ref, [both, dev]);
    expect(both.status).toBe(GNTST_okay);
    expect(dev.status).toBe(GNTST_okay);
    expect(w.hv.frames.refCount(page)).toBe(base + 3);
    expect(w.hv.frames.typeCount(page)).toBe(2);
    expect(w.gt.statusOf(1, 4)?.pin).toBe(0x0100_0001 + 0x1_0000);
    check(w);
  });

  it("answers each element with Xen's status", () => {
    const { w, granter, mapper, page } = setup();
    const other = dom(w, { domid: 3 });
    grantV1(w, granter, 1, mapper.domid, page);
    grantV1(w, granter, 2, other.domid, page); // granted to someone else
    grantV1(w, granter, 5, mapper.domid, page, 0); // GTF_invalid
    grantV1(w, granter, 6, mapper.domid, 12345); // not the granter's frame
    grantV1(w, granter, 7, mapper.domid, page, GTF_permit_access | GTF_sub_page);
    const el = (over: object) =>
      M({
        host_addr: VA,
        flags: GNTMAP_host_map,
        ref: 1,
        dom: 1,
        ...over,
      });
    const ops = [
      el({ flags: 0 }),
      el({ flags: GNTMAP_readonly }),
      el({ dom: 9 }),
      el({ dom: DOMID_SELF }),
      el({ ref: 512 }),
      el({ ref: 2 }),
      el({ ref: 5 }),
      el({ ref: 6 }),
      el({ ref: 7 }),
      el({ host_addr: 2 ** 50 }), // the double refuses it, as page tables would
      el({}),
    ];
    expect(gnttab(w, mapper, GNTTABOP_map_grant_ref, ops)).toBe(0);
    expect(ops.map((o) => (o as { status?: number }).status)).toEqual([
      GNTST_bad_gntref,
      GNTST_bad_gntref,
      GNTST_bad_domain,
      GNTST_bad_domain,
      GNTST_bad_gntref,
      GNTST_general_error,
      GNTST_general_error,
      GNTST_bad_page,
      GNTST_general_error,
      GNTST_general_error,
      GNTST_okay,
    ]);
    // The failures left nothing behind: no pins, no status bits, no references.
    for (const ref of [2, 5, 6, 7])
      expect(w.gt.statusOf(1, ref)).toEqual({ pin: 0, statusBits: 0 });
    // A grant pinned by one domain cannot be mapped by another.
    const steal = el({});
    gnttab(w, other, GNTTABOP_map_grant_ref, [steal]);
    expect(steal.status).toBe(GNTST_general_error);
    check(w);
  });

  it("stops an 8-bit pin counter before it overflows", () => {
    const { w, granter, mapper, page } = setup();
    grantV1(w, granter, 1, mapper.domid, page);
    const ops = Array.from({ length: 129 }, () => ({
      host_addr: 0,
      flags: GNTMAP_device_map | GNTMAP_readonly,
      ref: 1,
      dom: 1,
    }));
    gnttab(w, mapper, GNTTABOP_map_grant_ref, ops);
    expect(ops.slice(0, 128).every((o) => (o as { status?: number }).status === GNTST_okay)).toBe(
      true,
    );
    expect((ops[128] as { status?: number }).status).toBe(GNTST_general_error);
    check(w);
  });

  it("runs out of maptrack handles as Xen does (one entry always kept back)", () => {
    const w = boot({ maxMaptrackFrames: 1, maxGrantFrames: 1 });
    const granter = dom(w, { domid: 1 });
    const mapper = dom(w, { domid: 2 });
    const page = w.hv.allocDomainPages(granter);
    for (let r = 0; r < 256; r++) grantV1(w, granter, r, mapper.domid, page);
    const ops = Array.from({ length: 256 }, (_, r) => ({
      host_addr: 0,
      flags: GNTMAP_device_map,
      ref: r,
      dom: 1,
    }));
    gnttab(w, mapper, GNTTABOP_map_grant_ref, ops);
    const st = ops.map((o) => (o as { status?: number }).status);
    expect(st.filter((s) => s === GNTST_okay)).toHaveLength(255);
    expect(st[255]).toBe(GNTST_no_space);
    expect((ops[254] as { handle?: number }).handle).toBe(254);
    check(w);
  });

  it("refuses malformed calls with -EFAULT / -EINVAL / -ENOSYS, keeping earlier elements", () => {
    const { w, granter, mapper, page } = setup();
    grantV1(w, granter, 1, mapper.domid, page);
    const good = M({ host_addr: VA, flags: GNTMAP_host_map, ref: 1, dom: 1 });
    expect(gnttab(w, mapper, GNTTABOP_map_grant_ref, [good, { ref: "x" }])).toBe(-EFAULT);
    expect(good.status).toBe(GNTST_okay);
    expect(gnttab(w, mapper, GNTTABOP_map_grant_ref, [null])).toBe(-EFAULT);
    expect(gnttab(w, mapper, GNTTABOP_map_grant_ref, [], 2)).toBe(-EFAULT);
    expect(gnttab(w, mapper, GNTTABOP_map_grant_ref, [], 0x8000_0000)).toBe(-EINVAL);
    expect(gnttab(w, mapper, GNTTABOP_map_grant_ref, [], -1)).toBe(-EFAULT);
    expect(gnttab(w, mapper, GNTTABOP_dump_table, [{ dom: 1 }])).toBe(-ENOSYS);
    expect(
      w.hv.hypercall(mapper.vcpus[0], 20 /* grant_table_op */, {
        cmd: 0,
        uops: 5,
        count: 1,
      } as never),
    ).toBe(-EFAULT);
    const big = M({ host_addr: 2n ** 64n, flags: GNTMAP_host_map, ref: 1, dom: 1 });
    expect(gnttab(w, mapper, GNTTABOP_map_grant_ref, [big])).toBe(-EFAULT);
    const bigint = M({ host_addr: BigInt(VA + 4096), flags: GNTMAP_host_map, ref: 1, dom: 1 });
    expect(gnttab(w, mapper, GNTTABOP_map_grant_ref, [bigint])).toBe(0);
    expect(bigint.status).toBe(GNTST_okay);
    check(w);
  });
});

describe("unmap_grant_ref and unmap_and_replace", () => {
  it("unmaps, gives the references back, clears the status bits and recycles the handle", () => {
    const { w, granter, mapper, page } = setup();
    grantV1(w, granter, 1, mapper.domid, page);
    const refs = w.hv.frames.refCount(page);
    const m = M({ host_addr: VA, flags: GNTMAP_host_map | GNTMAP_device_map, ref: 1, dom: 1 });
    gnttab(w, mapper, GNTTABOP_map_grant_ref, [m]);
    const u = U({ host_addr: VA, dev_bus_addr: page * 4096, handle: 0 });
    expect(gnttab(w, mapper, GNTTABOP_unmap_grant_ref, [u])).toBe(0);
    expect(u).toMatchObject({ status: GNTST_okay });
    expect(w.hv.frames.refCount(page)).toBe(refs);
    expect(w.hv.frames.typeCount(page)).toBe(0);
    expect(flagsV1(w, granter, 1)).toBe(GTF_permit_access);
    expect(w.dbl.lookup(2, VA)).toBe(-1);
    expect(w.dbl.flushes).toBe(1);
    // The freed handle goes to the tail: the next map gets handle 1.
    const m2 = M({ host_addr: VA, flags: GNTMAP_host_map, ref: 1, dom: 1 });
    gnttab(w, mapper, GNTTABOP_map_grant_ref, [m2]);
    expect(m2.handle).toBe(1);
    check(w);
  });

  it("undoes only the kinds whose address is given, as Xen does", () => {
    const { w, granter, mapper, page } = setup();
    grantV1(w, granter, 1, mapper.domid, page);
    const m = M({ host_addr: VA, flags: GNTMAP_host_map | GNTMAP_device_map, ref: 1, dom: 1 });
    gnttab(w, mapper, GNTTABOP_map_grant_ref, [m]);
    const nothing = U({ host_addr: 0, dev_bus_addr: 0, handle: 0 });
    gnttab(w, mapper, GNTTABOP_unmap_grant_ref, [nothing]);
    expect(nothing.status).toBe(GNTST_okay);
    expect(w.gt.statusOf(1, 1)?.pin).toBe(0x1_0001);
    const devOnly = U({ host_addr: 0, dev_bus_addr: page * 4096, handle: 0 });
    gnttab(w, mapper, GNTTABOP_unmap_grant_ref, [devOnly]);
    expect(w.gt.statusOf(1, 1)?.pin).toBe(1);
    expect(flagsV1(w, granter, 1)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
    check(w);
    const hostOnly = U({ host_addr: VA, dev_bus_addr: 0, handle: 0 });
    gnttab(w, mapper, GNTTABOP_unmap_grant_ref, [hostOnly]);
    expect(w.gt.statusOf(1, 1)).toEqual({ pin: 0, statusBits: 0 });
    check(w);
  });

  it("answers bad handles, a wrong bus address and a wrong host address", () => {
    const { w, granter, mapper, page } = setup();
    grantV1(w, granter, 1, mapper.domid, page);
    const m = M({ host_addr: VA, flags: GNTMAP_host_map | GNTMAP_device_map, ref: 1, dom: 1 });
    gnttab(w, mapper, GNTTABOP_map_grant_ref, [m]);
    const ops = [
      { host_addr: VA, dev_bus_addr: 0, handle: 5000 },
      { host_addr: VA, dev_bus_addr: 0, handle: 7 },
      { host_addr: 0, dev_bus_addr: page * 4096 + 4096, handle: 0 },
      { host_addr: VA + 4096, dev_bus_addr: 0, handle: 0 },
    ];
    expect(gnttab(w, mapper, GNTTABOP_unmap_grant_ref, ops)).toBe(0);
    expect(ops.map((o) => (o as { status?: number }).status)).toEqual([
      GNTST_bad_handle,
      GNTST_bad_handle,
      GNTST_bad_dev_addr,
      GNTST_general_error,
    ]);
    expect(gnttab(w, mapper, GNTTABOP_unmap_grant_ref, [{ handle: 0 }])).toBe(-EFAULT);
    expect(
      gnttab(w, mapper, GNTTABOP_unmap_grant_ref, [{ host_addr: 0, dev_bus_addr: 0, handle: -1 }]),
    ).toBe(-EFAULT);
    // Another domain's handle numbers are its own.
    const other = dom(w, { domid: 3 });
    const theirs = U({ host_addr: VA, dev_bus_addr: 0, handle: 0 });
    gnttab(w, other, GNTTABOP_unmap_grant_ref, [theirs]);
    expect(theirs.status).toBe(GNTST_bad_handle);
    check(w);
  });

  it("unmap_and_replace moves the entry at new_addr into the grant's place", () => {
    const { w, granter, mapper, page } = setup();
    const page2 = w.hv.allocDomainPages(granter);
    grantV1(w, granter, 1, mapper.domid, page);
    grantV1(w, granter, 2, mapper.domid, page2);
    const a = M({ host_addr: VA, flags: GNTMAP_host_map, ref: 1, dom: 1 });
    const b = M({ host_addr: VA + 4096, flags: GNTMAP_host_map, ref: 2, dom: 1 });
    gnttab(w, mapper, GNTTABOP_map_grant_ref, [a, b]);
    const r = R({ host_addr: VA, new_addr: VA + 4096, handle: 0 });
    expect(gnttab(w, mapper, GNTTABOP_unmap_and_replace, [r])).toBe(0);
    expect(r.status).toBe(GNTST_okay);
    expect(w.dbl.lookup(2, VA)).toBe(page2);
    expect(w.dbl.lookup(2, VA + 4096)).toBe(-1);
    expect(w.gt.statusOf(1, 1)).toEqual({ pin: 0, statusBits: 0 });
    const bad = R({ host_addr: VA, new_addr: VA + 8192, handle: 1 });
    gnttab(w, mapper, GNTTABOP_unmap_and_replace, [bad]);
    expect(bad.status).toBe(GNTST_general_error);
    const pte = M({ host_addr: 8, flags: GNTMAP_host_map | GNTMAP_contains_pte, ref: 1, dom: 1 });
    gnttab(w, mapper, GNTTABOP_map_grant_ref, [pte]);
    const noReplace = R({ host_addr: 8, new_addr: VA, handle: pte.handle ?? -1 });
    gnttab(w, mapper, GNTTABOP_unmap_and_replace, [noReplace]);
    expect(noReplace.status).toBe(GNTST_general_error);
    expect(gnttab(w, mapper, GNTTABOP_unmap_and_replace, [{ host_addr: VA, handle: 0 }])).toBe(
      -EFAULT,
    );
    check(w);
  });
});

describe("domain destruction", () => {
  it("destroying the mapper releases its mappings, pins and status bits", () => {
    const { w, granter, mapper, page } = setup();
    grantV1(w, granter, 1, mapper.domid, page);
    const refs = w.hv.frames.refCount(page);
    const ops = [
      { host_addr: VA, flags: GNTMAP_host_map, ref: 1, dom: 1 },
      { host_addr: 0, flags: GNTMAP_device_map, ref: 1, dom: 1 },
    ];
    gnttab(w, mapper, GNTTABOP_map_grant_ref, ops);
    w.hv.destroyDomain(mapper);
    w.dbl.forget(mapper.domid);
    expect(mapper.state).toBe("dead");
    expect(w.hv.frames.refCount(page)).toBe(refs);
    expect(w.gt.statusOf(1, 1)).toEqual({ pin: 0, statusBits: 0 });
    check(w);
  });

  it("destroying the granter keeps mapped frames alive until the mapper lets go", () => {
    const { w, granter, mapper, page } = setup();
    grantV1(w, granter, 1, mapper.domid, page);
    const shared = [...w.gt.table(1)!.shared];
    const m = M({ host_addr: VA, flags: GNTMAP_host_map, ref: 1, dom: 1 });
    gnttab(w, mapper, GNTTABOP_map_grant_ref, [m]);
    w.hv.destroyDomain(granter);
    expect(granter.state).toBe("dying");
    expect(w.hv.frames.ownerOf(page)).toBe(1);
    expect(w.hv.machine.ram.read32(page * 4096)).toBe(0xc0ffee);
    for (const f of shared) expect(w.hv.frames.ownerOf(f)).toBe(-1);
    check(w);
    // New maps of the dying domain's grants are refused; the existing one unmaps cleanly.
    const again = M({ host_addr: VA + 4096, flags: GNTMAP_host_map, ref: 1, dom: 1 });
    gnttab(w, mapper, GNTTABOP_map_grant_ref, [again]);
    expect(again.status).toBe(GNTST_bad_domain);
    const u = U({ host_addr: VA, dev_bus_addr: 0, handle: 0 });
    gnttab(w, mapper, GNTTABOP_unmap_grant_ref, [u]);
    expect(u.status).toBe(GNTST_okay);
    expect(granter.state).toBe("dead");
    expect(w.hv.frames.ownerOf(page)).toBe(-1);
    check(w);
  });

  it("destroying both, in either order, leaves no frame behind", () => {
    for (const order of [0, 1]) {
      const { w, granter, mapper, page } = setup();
      grantV1(w, granter, 1, mapper.domid, page);
      grantV1(w, mapper, 1, granter.domid, w.hv.allocDomainPages(mapper));
      gnttab(w, mapper, GNTTABOP_map_grant_ref, [
        { host_addr: VA, flags: GNTMAP_host_map | GNTMAP_device_map, ref: 1, dom: 1 },
      ]);
      gnttab(w, granter, GNTTABOP_map_grant_ref, [
        { host_addr: VA, flags: GNTMAP_device_map | GNTMAP_readonly, ref: 1, dom: 2 },
      ]);
      const [first, second] = order === 0 ? [granter, mapper] : [mapper, granter];
      w.hv.destroyDomain(first);
      check(w);
      w.hv.destroyDomain(second);
      expect(granter.state).toBe("dead");
      expect(mapper.state).toBe("dead");
      expect(Array.from(w.hv.frames.ownerKeys, (k) => ~k).every((o) => o === -1)).toBe(true);
      check(w);
    }
  });
});
