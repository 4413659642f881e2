import {
  DOMID_SELF,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOSYS,
  EPERM,
  ERANGE,
  ESRCH,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTST_bad_copy_arg,
  GNTST_bad_domain,
  GNTST_bad_gntref,
  GNTST_bad_page,
  GNTST_general_error,
  GNTST_okay,
  GNTST_permission_denied,
  GNTTABOP_copy,
  GNTTABOP_get_status_frames,
  GNTTABOP_get_version,
  GNTTABOP_map_grant_ref,
  GNTTABOP_query_size,
  GNTTABOP_set_version,
  GNTTABOP_setup_table,
  GNTTABOP_unmap_grant_ref,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_sub_page,
  GTF_transitive,
  GTF_writing,
} from "@hyperlab/abi";
import { HyperlabError, PGC_xen_heap, PGT_writable_page } from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import type { GnttabCopy, GnttabCopyPtr } from "../src/index";
import { grantTable } from "../src/index";
import { boot, check, dom, flagsV1, gnttab, grantV1, M } from "./helpers";

describe("setup_table and query_size", () => {
  it("starts with one frame, shared with the guest as a Xen heap page, and grows on request", () => {
    const w = boot({ maxGrantFrames: 4 });
    const d = dom(w, { domid: 1 });
    const f = w.hv.frames;
    const q = { dom: DOMID_SELF };
    expect(gnttab(w, d, GNTTABOP_query_size, [q])).toBe(0);
    expect(q).toMatchObject({ nr_frames: 1, max_nr_frames: 4, status: GNTST_okay });
    const first = w.gt.table(1)!.shared[0];
    expect(f.ownerOf(first)).toBe(1);
    expect(f.countInfo[first] & PGC_xen_heap).toBe(PGC_xen_heap);
    expect(f.typeOf(first)).toBe(PGT_writable_page);
    expect(d.totPages).toBe(0);
    const s = { dom: DOMID_SELF, nr_frames: 3, frame_list: [0, 0, 0], status: 1 };
    expect(gnttab(w, d, GNTTABOP_setup_table, [s])).toBe(0);
    expect(s.status).toBe(GNTST_okay);
    expect(s.frame_list[0]).toBe(first);
    expect(new Set(s.frame_list).size).toBe(3);
    const too = { dom: 1, nr_frames: 5, frame_list: [0, 0, 0, 0, 0], status: 1 };
    gnttab(w, d, GNTTABOP_setup_table, [too]);
    expect(too.status).toBe(GNTST_general_error);
    gnttab(w, d, GNTTABOP_query_size, [q]);
    expect(q).toMatchObject({ nr_frames: 3 });
    // Asking for fewer frames than it has lists those, without shrinking.
    const fewer = { dom: 1, nr_frames: 1, frame_list: [0], status: 1 };
    gnttab(w, d, GNTTABOP_setup_table, [fewer]);
    expect(fewer).toMatchObject({ status: GNTST_okay, frame_list: [first] });
    check(w);
  });

  it("answers other domains by XSM_TARGET: self, privileged, or the domain's target", () => {
    const w = boot();
    const d1 = dom(w, { domid: 1 });
    const d2 = dom(w, { domid: 2 });
    const d0 = dom(w, { domid: 0 });
    const ask = (from: typeof d1, domid: number) => {
      const q = { dom: domid, status: 99 };
      gnttab(w, from, GNTTABOP_query_size, [q]);
      const s = { dom: domid, nr_frames: 1, frame_list: [0], status: 99 };
      gnttab(w, from, GNTTABOP_setup_table, [s]);
      return [q.status, s.status];
    };
    expect(ask(d2, 1)).toEqual([GNTST_permission_denied, GNTST_permission_denied]);
    expect(ask(d0, 1)).toEqual([GNTST_okay, GNTST_okay]);
    expect(ask(d2, 77)).toEqual([GNTST_bad_domain, GNTST_bad_domain]);
    d2.target = 1;
    expect(ask(d2, 1)).toEqual([GNTST_okay, GNTST_okay]);
    expect(
      gnttab(
        w,
        d1,
        GNTTABOP_setup_table,
        [{ dom: 1, nr_frames: 1, frame_list: [0], status: 1 }],
        2,
      ),
    ).toBe(-EINVAL);
    expect(
      gnttab(w, d1, GNTTABOP_setup_table, [{ dom: 1, nr_frames: 2, frame_list: [0], status: 1 }]),
    ).toBe(-EFAULT);
    expect(
      gnttab(w, d1, GNTTABOP_setup_table, [{ dom: 1, nr_frames: -1, frame_list: [], status: 1 }]),
    ).toBe(-EFAULT);
    expect(gnttab(w, d1, GNTTABOP_query_size, [{ dom: 1 }], 0)).toBe(-EINVAL);
    expect(gnttab(w, d1, GNTTABOP_query_size, ["x"])).toBe(-EFAULT);
    check(w);
  });

  it("fails to grow with GNTST_general_error when the machine is out of frames", () => {
    const w = boot({}, 1 << 20);
    const d = dom(w, { domid: 1, maxPages: 1024 });
    while (w.hv.machine.frames.nrFreeFrames > 10) w.hv.allocDomainPages(d);
    const s = { dom: 1, nr_frames: 64, frame_list: new Array(64).fill(0), status: 1 };
    gnttab(w, d, GNTTABOP_setup_table, [s]);
    expect(s.status).toBe(GNTST_general_error);
    expect(w.gt.table(1)!.shared).toHaveLength(1);
    check(w);
  });

  it("checks the plugin's options and says what to do", () => {
    expect(() => grantTable({ maxGrantFrames: 0 })).toThrow(HyperlabError);
    expect(() => grantTable({ maxMaptrackFrames: -1 })).toThrow(/maxMaptrackFrames/);
    expect(() => grantTable({ maxVersion: 3 as 2 })).toThrow(/maxVersion/);
    const w = boot({}, 1 << 20);
    while (w.hv.machine.frames.nrFreeFrames > 1) w.hv.machine.frames.allocFrame();
    expect(() => w.hv.createDomain({ maxVcpus: 1, maxPages: 1 })).toThrow(/grant-table frame/);
  });
});

function copyOp(
  source: Partial<GnttabCopyPtr>,
  dest: Partial<GnttabCopyPtr>,
  len: number,
  flags: number,
): GnttabCopy {
  return {
    source: { u: {}, domid: DOMID_SELF, offset: 0, ...source },
    dest: { u: {}, domid: DOMID_SELF, offset: 0, ...dest },
    len,
    flags,
  };
}

describe("copy", () => {
  function setup() {
    const w = boot();
    const a = dom(w, { domid: 1 });
    const b = dom(w, { domid: 2 });
    const pa = w.hv.allocDomainPages(a);
    const pb = w.hv.allocDomainPages(b);
    const ram = w.hv.machine.ram;
    for (let i = 0; i < 16; i++) ram.write8(pa * 4096 + 100 + i, i + 1);
    grantV1(w, a, 1, 2, pa, GTF_permit_access | GTF_readonly);
    grantV1(w, a, 2, 2, pa);
    return { w, a, b, pa, pb, ram };
  }

  it("copies from a grant to the caller's frame and back, holding nothing afterwards", () => {
    const { w, a, b, pa, pb, ram } = setup();
    const refs = w.hv.frames.refCount(pa);
    const c1 = copyOp(
      { u: { ref: 1 }, domid: 1, offset: 100 },
      { u: { gmfn: pb }, offset: 8 },
      16,
      GNTCOPY_source_gref,
    );
    const c2 = copyOp(
      { u: { gmfn: pb }, offset: 8 },
      { u: { ref: 2 }, domid: 1, offset: 2000 },
      16,
      GNTCOPY_dest_gref,
    );
    expect(gnttab(w, b, GNTTABOP_copy, [c1, c2])).toBe(0);
    expect([c1.status, c2.status]).toEqual([GNTST_okay, GNTST_okay]);
    expect(ram.read8(pb * 4096 + 8)).toBe(1);
    expect(ram.read8(pa * 4096 + 2015)).toBe(16);
    expect(w.hv.frames.refCount(pa)).toBe(refs);
    expect(w.hv.frames.typeCount(pa)).toBe(0);
    expect(flagsV1(w, a, 1)).toBe(GTF_permit_access | GTF_readonly);
    expect(flagsV1(w, a, 2)).toBe(GTF_permit_access);
    expect(w.hv.stats.snapshot()["grant-table"].find((s) => s.name === "copied_bytes")?.value).toBe(
      32,
    );
    check(w);
  });

  it("answers each element with Xen's status, in Xen's order of checks", () => {
    const { w, a, b, pa, pb } = setup();
    const other = dom(w, { domid: 3 });
    grantV1(w, a, 3, 3, pa); // granted to domain 3
    grantV1(w, a, 4, 2, 99999); // not a's frame
    const G = GNTCOPY_source_gref;
    const ops = [
      copyOp({ u: { gmfn: pa }, domid: 1 }, { u: { gmfn: pb } }, 8, 0), // frame of another domain
      copyOp({ u: { ref: 1 }, domid: 9 }, { u: { gmfn: pb } }, 8, G),
      copyOp({ u: { ref: 1 }, domid: 1 }, { u: { ref: 0 }, domid: 9 }, 8, G | GNTCOPY_dest_gref),
      copyOp({ u: { ref: 4096 }, domid: 1 }, { u: { gmfn: pb } }, 8, G),
      copyOp({ u: { ref: 3 }, domid: 1 }, { u: { gmfn: pb } }, 8, G),
      copyOp({ u: { ref: 4 }, domid: 1 }, { u: { gmfn: pb } }, 8, G),
      copyOp({ u: { gmfn: pa } }, { u: { gmfn: pb } }, 8, 0), // not the caller's own frame
      copyOp({ u: { gmfn: pb } }, { u: { ref: 1 }, domid: 1 }, 8, GNTCOPY_dest_gref), // read-only
      copyOp({ u: { ref: 1 }, domid: 1, offset: 4090 }, { u: { gmfn: pb } }, 8, G),
      copyOp({ u: { ref: 1 }, domid: 1 }, { u: { gmfn: pb }, offset: 4095 }, 2, G),
      copyOp({ u: { ref: 1 }, domid: 1 }, { u: { gmfn: pb } }, 0, G),
    ];
    expect(gnttab(w, b, GNTTABOP_copy, ops)).toBe(0);
    expect(ops.map((o) => o.status)).toEqual([
      GNTST_permission_denied,
      GNTST_bad_domain,
      GNTST_bad_domain,
      GNTST_bad_gntref,
      GNTST_general_error,
      GNTST_bad_page,
      GNTST_bad_page,
      GNTST_general_error,
      GNTST_bad_copy_arg,
      GNTST_bad_copy_arg,
      GNTST_okay,
    ]);
    // A grant pinned by a mapping of domain 2 cannot be copied by domain 3.
    gnttab(w, b, GNTTABOP_map_grant_ref, [
      M({ host_addr: 0, flags: GNTMAP_device_map, ref: 2, dom: 1 }),
    ]);
    const third = copyOp(
      { u: { ref: 2 }, domid: 1 },
      { u: { gmfn: w.hv.allocDomainPages(other) } },
      8,
      G,
    );
    gnttab(w, other, GNTTABOP_copy, [third]);
    expect(third.status).toBe(GNTST_general_error);
    // ...but the mapper may copy through it while mapped, and the pin survives.
    const mine = copyOp({ u: { ref: 2 }, domid: 1 }, { u: { gmfn: pb } }, 8, G);
    gnttab(w, b, GNTTABOP_copy, [mine]);
    expect(mine.status).toBe(GNTST_okay);
    expect(flagsV1(w, a, 2)).toBe(GTF_permit_access | GTF_reading | GTF_writing);
    check(w);
    expect(gnttab(w, b, GNTTABOP_copy, [{ source: {}, dest: {}, len: 1, flags: 0 }])).toBe(-EFAULT);
    expect(gnttab(w, b, GNTTABOP_copy, [copyOp({}, {}, 70000, 0)])).toBe(-EFAULT);
  });
});

describe("versions", () => {
  it("switches to v2 with status frames, keeps the reserved entries, and maps v2 grants", () => {
    const w = boot();
    const a = dom(w, { domid: 1 });
    const b = dom(w, { domid: 2 });
    const page = w.hv.allocDomainPages(a);
    const ram = w.hv.machine.ram;
    grantV1(w, a, 1, 0, 0x1234); // a toolstack entry (xenstore), kept across the switch
    grantV1(w, a, 20, 2, page); // not kept
    const sv = { version: 2 };
    expect(gnttab(w, a, GNTTABOP_set_version, [sv])).toBe(0);
    expect(sv.version).toBe(2);
    const gv = { dom: DOMID_SELF };
    expect(gnttab(w, a, GNTTABOP_get_version, [gv])).toBe(0);
    expect((gv as { version?: number }).version).toBe(2);
    const t = w.gt.table(1)!;
    expect(t.status).toHaveLength(1);
    const e1 = t.shared[0] * 4096 + 16;
    expect([ram.read16(e1), ram.read16(e1 + 2), ram.read32(e1 + 8)]).toEqual([
      GTF_permit_access,
      0,
      0x1234,
    ]);
    expect(ram.read16(t.shared[0] * 4096 + 20 * 16)).toBe(0);
    const sf = { dom: DOMID_SELF, nr_frames: 1, frame_list: [0], status: 1 };
    expect(gnttab(w, a, GNTTABOP_get_status_frames, [sf])).toBe(0);
    expect(sf).toMatchObject({ status: GNTST_okay, frame_list: [t.status[0]] });
    const sf2 = { dom: DOMID_SELF, nr_frames: 2, frame_list: [0, 0], status: 1 };
    gnttab(w, a, GNTTABOP_get_status_frames, [sf2]);
    expect(sf2.status).toBe(GNTST_general_error);
    // A v2 full-page grant: flags and domid in the header, the frame as a u64 at offset 8.
    const e9 = t.shared[0] * 4096 + 9 * 16;
    ram.write32(e9 + 8, page);
    ram.write16(e9 + 2, 2);
    ram.write16(e9, GTF_permit_access);
    const m = M({ host_addr: 0x1000, flags: GNTMAP_host_map, ref: 9, dom: 1 });
    gnttab(w, b, GNTTABOP_map_grant_ref, [m]);
    expect(m.status).toBe(GNTST_okay);
    expect(ram.read16(t.status[0] * 4096 + 18)).toBe(GTF_reading | GTF_writing);
    expect(ram.read16(e9)).toBe(GTF_permit_access); // v2 keeps status out of the entry
    check(w);
    // Pinned beyond the reserved entries: the version cannot change.
    expect(gnttab(w, a, GNTTABOP_set_version, [{ version: 1 }])).toBe(-EBUSY);
    gnttab(w, b, GNTTABOP_unmap_grant_ref, [{ host_addr: 0x1000, dev_bus_addr: 0, handle: 0 }]);
    expect(ram.read16(t.status[0] * 4096 + 18)).toBe(0);
    // Sub-page grants copy within their window and are refused for mapping.
    const e10 = t.shared[0] * 4096 + 10 * 16;
    ram.write32(e10 + 8, page);
    ram.write16(e10 + 4, 512);
    ram.write16(e10 + 6, 64);
    ram.write16(e10 + 2, 2);
    ram.write16(e10, GTF_permit_access | GTF_sub_page);
    const pb = w.hv.allocDomainPages(b);
    const inWin = copyOp(
      { u: { ref: 10 }, domid: 1, offset: 512 },
      { u: { gmfn: pb } },
      64,
      GNTCOPY_source_gref,
    );
    const outWin = copyOp(
      { u: { ref: 10 }, domid: 1, offset: 500 },
      { u: { gmfn: pb } },
      64,
      GNTCOPY_source_gref,
    );
    gnttab(w, b, GNTTABOP_copy, [inWin, outWin]);
    expect([inWin.status, outWin.status]).toEqual([GNTST_okay, GNTST_general_error]);
    const subMap = M({ host_addr: 0x1000, flags: GNTMAP_host_map, ref: 10, dom: 1 });
    gnttab(w, b, GNTTABOP_map_grant_ref, [subMap]);
    expect(subMap.status).toBe(GNTST_general_error);
    // Transitive grants are not modelled: copies through them fail as with Xen's switch off.
    ram.write16(e10, GTF_transitive);
    const trans = copyOp({ u: { ref: 10 }, domid: 1 }, { u: { gmfn: pb } }, 8, GNTCOPY_source_gref);
    gnttab(w, b, GNTTABOP_copy, [trans]);
    expect(trans.status).toBe(GNTST_general_error);
    check(w);
    // Back to v1: a reserved entry that v1 cannot hold is -ERANGE; fixed, the switch goes.
    ram.write16(t.shared[0] * 4096 + 3 * 16, GTF_transitive);
    expect(gnttab(w, a, GNTTABOP_set_version, [{ version: 1 }])).toBe(-ERANGE);
    ram.write16(t.shared[0] * 4096 + 3 * 16, 0);
    const status = t.status[0];
    expect(gnttab(w, a, GNTTABOP_set_version, [{ version: 1 }])).toBe(0);
    expect(w.hv.frames.ownerOf(status)).toBe(-1);
    expect(flagsV1(w, a, 1)).toBe(GTF_permit_access);
    expect(w.hv.machine.ram.read32(t.shared[0] * 4096 + 8 + 4)).toBe(0x1234);
    check(w);
  });

  it("answers bad versions, a v1-only build, bad domains and busy status frames", () => {
    const w = boot({ maxVersion: 1 });
    const a = dom(w, { domid: 1 });
    const b = dom(w, { domid: 2 });
    expect(gnttab(w, a, GNTTABOP_set_version, [{ version: 3 }])).toBe(-EINVAL);
    const two = { version: 2 };
    expect(gnttab(w, a, GNTTABOP_set_version, [two])).toBe(-ENOSYS);
    expect(two.version).toBe(1);
    expect(gnttab(w, a, GNTTABOP_set_version, [{ version: 1 }])).toBe(0);
    expect(gnttab(w, a, GNTTABOP_set_version, [{}])).toBe(-EFAULT);
    expect(gnttab(w, a, GNTTABOP_get_version, [{ dom: 42 }])).toBe(-ESRCH);
    expect(gnttab(w, b, GNTTABOP_get_version, [{ dom: 1 }])).toBe(-EPERM);
    expect(gnttab(w, a, GNTTABOP_get_version, [{}])).toBe(-EFAULT);
    const sf = { dom: 1, nr_frames: 1, frame_list: [0], status: 1 };
    gnttab(w, a, GNTTABOP_get_status_frames, [sf]);
    expect(sf.status).toBe(GNTST_general_error);
    const sf2 = { dom: 1, nr_frames: 0, frame_list: [] as number[], status: 1 };
    gnttab(w, b, GNTTABOP_get_status_frames, [sf2]);
    expect(sf2.status).toBe(GNTST_permission_denied);
    const sf3 = { dom: 9, nr_frames: 0, frame_list: [] as number[], status: 1 };
    gnttab(w, b, GNTTABOP_get_status_frames, [sf3]);
    expect(sf3.status).toBe(GNTST_bad_domain);
    expect(gnttab(w, b, GNTTABOP_get_status_frames, [sf3], 2)).toBe(-EINVAL);
    expect(
      gnttab(w, b, GNTTABOP_get_status_frames, [
        { dom: 1, nr_frames: 1, frame_list: [], status: 1 },
      ]),
    ).toBe(-EFAULT);

    const w2 = boot();
    const c = dom(w2, { domid: 1 });
    gnttab(w2, c, GNTTABOP_set_version, [{ version: 2 }]);
    const st = w2.gt.table(1)!.status[0];
    // The guest still holds a reference on its status frame: v1 is refused, -EBUSY.
    w2.hv.frames.getPage(st, 1);
    expect(gnttab(w2, c, GNTTABOP_set_version, [{ version: 1 }])).toBe(-EBUSY);
    w2.hv.frames.putPage(st);
    expect(gnttab(w2, c, GNTTABOP_set_version, [{ version: 1 }])).toBe(0);
    void GNTMAP_readonly;
  });
});
