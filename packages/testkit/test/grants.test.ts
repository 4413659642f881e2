import {
  createHypervisor,
  PGC_allocated,
  PGT_l1_page_table,
  PGT_pinned,
  PGT_validated,
  PGT_writable_page,
} from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import {
  assertGrantInvariants,
  checkFrameInvariants,
  checkGrantInvariants,
  type GrantView,
  type GrantViewActive,
  type GrantViewMapping,
  grantInvariantOptions,
} from "../src/index";

const HOST = 0x2;
const DEVICE = 0x1;
const RO = 0x4;
const READING = 0x8;
const WRITING = 0x10;

function world() {
  const machine = createMachine({ ramBytes: 4 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [] }).boot();
  const granter = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 64 });
  const mapper = hv.createDomain({ domid: 2, maxVcpus: 1, maxPages: 64 });
  const page = hv.allocDomainPages(granter);
  return { hv, granter, mapper, page, ram: machine.ram };
}

/** A grant view over plain lists. */
function view(mappings: GrantViewMapping[], active: GrantViewActive[]): GrantView {
  return {
    forEachMapping: (fn) => {
      for (const m of mappings) fn(m);
    },
    forEachActive: (fn) => {
      for (const a of active) fn(a);
    },
  };
}

const mapping = (over: Partial<GrantViewMapping>): GrantViewMapping => ({
  mapperDomid: 2,
  handle: 0,
  granterDomid: 1,
  ref: 8,
  mfn: 0,
  flags: HOST,
  ...over,
});
const active = (over: Partial<GrantViewActive>): GrantViewActive => ({
  granterDomid: 1,
  ref: 8,
  pin: 1,
  granteeDomid: 2,
  mfn: 0,
  statusBits: READING | WRITING,
  ...over,
});

describe("grant invariants", () => {
  it("hold for a writable host mapping held in a page-table entry", () => {
    const w = world();
    const f = w.hv.frames;
    // The mapper's pinned L1 maps the granter's page writable; the grant took those references.
    const l1 = w.hv.allocDomainPages(w.mapper);
    w.ram.write64(l1 * 4096, (w.page * 4096 + 3) >>> 0, 0);
    f.typeInfo[l1] = (PGT_l1_page_table | PGT_validated | PGT_pinned | 1) >>> 0;
    f.countInfo[l1] = (PGC_allocated | 2) >>> 0;
    f.countInfo[w.page] += 1;
    f.typeInfo[w.page] = (PGT_writable_page | PGT_validated | 1) >>> 0;
    const v = view([mapping({ mfn: w.page })], [active({ mfn: w.page })]);
    // Without the grant, the foreign entry is a violation...
    expect(checkFrameInvariants(w.hv).join()).toMatch(/without a grant/);
    // ...with it, everything holds.
    const opts = grantInvariantOptions(v, { hostRefsInPageTables: true });
    expect(checkFrameInvariants(w.hv, opts)).toEqual([]);
    expect(checkGrantInvariants(w.hv, v, { hostRefsInPageTables: true })).toEqual([]);
    // A read-only grant does not cover a writable entry.
    const ro = view([mapping({ mfn: w.page, flags: HOST | RO })], []);
    expect(
      checkFrameInvariants(w.hv, grantInvariantOptions(ro, { hostRefsInPageTables: true })).join(),
    ).toMatch(/without a grant/);
  });

  it("count device references, and host ones when no page table holds them", () => {
    const w = world();
    const f = w.hv.frames;
    f.countInfo[w.page] += 3; // device rw, device ro, host rw (double)
    f.typeInfo[w.page] = (PGT_writable_page | PGT_validated | 2) >>> 0;
    const maps = [
      mapping({ mfn: w.page, flags: DEVICE, handle: 0 }),
      mapping({ mfn: w.page, flags: DEVICE | RO, handle: 1 }),
      mapping({ mfn: w.page, flags: HOST, handle: 2 }),
    ];
    const v = view(maps, [active({ mfn: w.page, pin: 0x0101_0001 })]);
    expect(
      checkFrameInvariants(w.hv, grantInvariantOptions(v, { hostRefsInPageTables: false })),
    ).toEqual([]);
    expect(checkGrantInvariants(w.hv, v, { hostRefsInPageTables: false })).toEqual([]);
    // Counted as page-table references instead, the host mapping's are unaccounted for.
    expect(
      checkFrameInvariants(w.hv, grantInvariantOptions(v, { hostRefsInPageTables: true })).join(),
    ).toMatch(/general references/);
  });

  it("report pins that disagree with the mappings, and status bits that disagree with pins", () => {
    const w = world();
    const opts = { hostRefsInPageTables: true };
    const bad = (m: GrantViewMapping[], a: GrantViewActive[]) =>
      checkGrantInvariants(w.hv, view(m, a), opts).join("\n");
    expect(bad([mapping({ mfn: w.page })], [active({ mfn: w.page, pin: 2 })])).toMatch(
      /pin 2 but its mappings account for 1/,
    );
    expect(bad([mapping({ mfn: w.page })], [])).toMatch(/not pinned/);
    expect(bad([mapping({ mfn: w.page })], [active({ mfn: w.page, granteeDomid: 3 })])).toMatch(
      /pinned for domain 3 but mapped by domain 2/,
    );
    expect(
      bad([mapping({ mfn: w.page }), mapping({ mfn: w.page, mapperDomid: 3, handle: 1 })], []),
    ).toMatch(/mapped by both domain 2 and domain 3/);
    expect(bad([], [active({ pin: 0, statusBits: READING })])).toMatch(
      /GTF_reading is set with pin 0/,
    );
    expect(bad([], [active({ pin: 0, statusBits: WRITING })])).toMatch(/GTF_writing is set/);
    expect(bad([mapping({ mfn: w.page })], [active({ mfn: w.page, statusBits: READING })])).toMatch(
      /GTF_writing is clear with pin 1/,
    );
    expect(bad([mapping({ mfn: w.page })], [active({ mfn: w.page, statusBits: 0 })])).toMatch(
      /GTF_reading is clear/,
    );
    // Released tables (statusBits -1) are not checked for status bits.
    expect(bad([mapping({ mfn: w.page })], [active({ mfn: w.page, statusBits: -1 })])).toBe("");
  });

  it("report mappings whose references the grant holds on a free or foreign frame", () => {
    const w = world();
    const free = w.hv.machine.frames.allocFrame();
    w.hv.machine.frames.freeFrame(free);
    const foreign = w.hv.allocDomainPages(w.mapper);
    const dev = (mfn: number) => [mapping({ mfn, flags: DEVICE })];
    const pinned = (mfn: number) => [active({ mfn, pin: 0x1_0000 })];
    const opts = { hostRefsInPageTables: true };
    expect(checkGrantInvariants(w.hv, view(dev(free), pinned(free)), opts).join()).toMatch(
      /maps free frame/,
    );
    expect(checkGrantInvariants(w.hv, view(dev(foreign), pinned(foreign)), opts).join()).toMatch(
      /of domain 2, not of its granter 1/,
    );
    // A host-only mapping in page tables holds nothing once its entry is gone: not reported.
    expect(
      checkGrantInvariants(w.hv, view([mapping({ mfn: free })], [active({ mfn: free })]), opts),
    ).toEqual([]);
    expect(() => assertGrantInvariants(w.hv, view(dev(free), pinned(free)), opts)).toThrow(
      /grant invariants broken/,
    );
    expect(() => assertGrantInvariants(w.hv, view([], []), opts)).not.toThrow();
    const many = Array.from({ length: 30 }, (_, i) =>
      active({ ref: i, pin: 0, statusBits: READING }),
    );
    expect(checkGrantInvariants(w.hv, view([], many), opts, 5)).toHaveLength(5);
  });
});
