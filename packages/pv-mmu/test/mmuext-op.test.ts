import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_vm_assist,
  DOMID_SELF,
  EACCES,
  EFAULT,
  EINVAL,
  ENOSYS,
  EOPNOTSUPP,
  EPERM,
  ESRCH,
  MMUEXT_CLEAR_PAGE,
  MMUEXT_COPY_PAGE,
  MMUEXT_FLUSH_CACHE,
  MMUEXT_FLUSH_CACHE_GLOBAL,
  MMUEXT_INVLPG_ALL,
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_INVLPG_MULTI,
  MMUEXT_MARK_SUPER,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_NEW_USER_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L2_TABLE,
  MMUEXT_PIN_L3_TABLE,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_SET_LDT,
  MMUEXT_TLB_FLUSH_ALL,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_TLB_FLUSH_MULTI,
  MMUEXT_UNMARK_SUPER,
  MMUEXT_UNPIN_TABLE,
  VMASST_CMD_enable,
  VMASST_TYPE_m2p_strict,
} from "@hyperlab/abi";
import { PGT_l1_page_table, PGT_l3_page_table, PGT_l4_page_table, type Vcpu } from "@hyperlab/core";
import { tlbStats } from "@hyperlab/paging";
import { assertFrameInvariants } from "@hyperlab/testkit";
import { describe, expect, it } from "vitest";
import { type MmuextOp, RO_MPT_SLOT } from "../src/index";
import { boot, type Guest, guest, type World } from "./helpers";

function spare(g: Guest, k: number): number {
  return g.b.p2m[g.b.p2m.length - 1 - k];
}

function ext(w: World, v: Vcpu, ops: MmuextOp[], foreigndom = DOMID_SELF) {
  const args = { uops: ops, count: ops.length, foreigndom, pdone: 0 };
  const rc = w.hv.hypercall(v, __HYPERVISOR_mmuext_op, args);
  return { rc, done: args.pdone };
}

function setup(domid = 1) {
  const w = boot();
  const g = guest(w, { domid });
  return { w, g, v: g.d.vcpus[0] };
}

/** Writes a raw entry into an unused page (type none) through the writable-page path. */
function rawEntry(w: World, v: Vcpu, table: number, i: number, val: bigint) {
  const rc = w.hv.hypercall(v, __HYPERVISOR_mmu_update, {
    ureqs: [{ ptr: table * 4096 + i * 8, val }],
    count: 1,
    foreigndom: DOMID_SELF,
  });
  expect(rc).toBe(0);
}

describe("mmuext_op: pinning", () => {
  it("pins and unpins tables of every level, validating on pin", () => {
    const { w, g, v } = setup();
    const f = w.hv.frames;
    const [l1, l3] = [spare(g, 0), spare(g, 1)];
    rawEntry(w, v, l1, 0, (BigInt(spare(g, 5)) << 12n) | 3n);
    expect(ext(w, v, [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: { mfn: l1 } }])).toEqual({
      rc: 0,
      done: 1,
    });
    expect(f.typeOf(l1)).toBe(PGT_l1_page_table);
    expect(f.isPinned(l1)).toBe(true);
    expect(f.typeCount(spare(g, 5))).toBe(1);
    expect(ext(w, v, [{ cmd: MMUEXT_PIN_L3_TABLE, arg1: { mfn: l3 } }]).rc).toBe(0);
    expect(f.typeOf(l3)).toBe(PGT_l3_page_table);
    assertFrameInvariants(w.hv);
    // Pinning twice is refused and leaves the counts alone.
    expect(ext(w, v, [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: { mfn: l1 } }]).rc).toBe(-EINVAL);
    assertFrameInvariants(w.hv);
    expect(ext(w, v, [{ cmd: MMUEXT_UNPIN_TABLE, arg1: { mfn: l1 } }]).rc).toBe(0);
    expect(f.typeCount(l1)).toBe(0);
    expect(f.typeCount(spare(g, 5))).toBe(0);
    expect(ext(w, v, [{ cmd: MMUEXT_UNPIN_TABLE, arg1: { mfn: l3 } }]).rc).toBe(0);
    assertFrameInvariants(w.hv);
  });

  it("refuses to pin a frame as another type while in use, or one that fails validation", () => {
    const { w, g, v } = setup();
    // The L4 is in use as an L4: pinning it as an L2 fails.
    expect(ext(w, v, [{ cmd: MMUEXT_PIN_L2_TABLE, arg1: { mfn: g.b.l4Mfn } }]).rc).toBe(-EINVAL);
    // A page mapping an L4 writable fails L1 validation with get_page_from_l1e's answer.
    const bad = spare(g, 0);
    rawEntry(w, v, bad, 3, (BigInt(g.b.l4Mfn) << 12n) | 3n);
    expect(ext(w, v, [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: { mfn: bad } }]).rc).toBe(-16);
    expect(w.hv.frames.typeCount(bad)).toBe(0);
    assertFrameInvariants(w.hv);
  });

  it("refuses frames the domain does not own, and unpinning what is not pinned (-EINVAL)", () => {
    const { w, g, v } = setup();
    const other = guest(w, { domid: 9, nrPages: 1100 });
    expect(
      ext(w, v, [
        { cmd: MMUEXT_PIN_L1_TABLE, arg1: { mfn: other.b.p2m[2000 % other.b.p2m.length] } },
      ]).rc,
    ).toBe(-EINVAL);
    expect(ext(w, v, [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: {} }]).rc).toBe(-EINVAL);
    expect(ext(w, v, [{ cmd: MMUEXT_UNPIN_TABLE, arg1: { mfn: spare(g, 0) } }]).rc).toBe(-EINVAL);
    expect(ext(w, v, [{ cmd: MMUEXT_UNPIN_TABLE, arg1: { mfn: other.b.l4Mfn } }]).rc).toBe(-EINVAL);
    assertFrameInvariants(w.hv);
  });

  it("lets a privileged domain pin another's table (foreigndom) and refuses an unprivileged one (-EPERM)", () => {
    const w = boot();
    const dom0 = guest(w, { domid: 0 });
    const domu = guest(w, { domid: 2, nrPages: 1100 });
    const t = spare(domu, 0);
    expect(ext(w, dom0.d.vcpus[0], [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: { mfn: t } }], 2).rc).toBe(0);
    expect(w.hv.frames.isPinned(t)).toBe(true);
    expect(
      ext(w, domu.d.vcpus[0], [{ cmd: MMUEXT_UNPIN_TABLE, arg1: { mfn: dom0.b.l4Mfn } }], 0).rc,
    ).toBe(-EPERM);
    expect(ext(w, domu.d.vcpus[0], [], 77).rc).toBe(-ESRCH);
    assertFrameInvariants(w.hv);
  });
});

describe("mmuext_op: base pointers", () => {
  it("NEW_BASEPTR switches to another validated L4, moving the references", () => {
    const { w, g, v } = setup();
    const f = w.hv.frames;
    const n = spare(g, 0);
    // Copy the guest part of the current L4 into a fresh page, then make it the base.
    for (const i of [511]) {
      const lo = w.hv.machine.ram.read32(g.b.l4Mfn * 4096 + i * 8);
      const hi = w.hv.machine.ram.read32(g.b.l4Mfn * 4096 + i * 8 + 4);
      rawEntry(w, v, n, i, (BigInt(hi) << 32n) | BigInt(lo));
    }
    expect(ext(w, v, [{ cmd: MMUEXT_NEW_BASEPTR, arg1: { mfn: n } }]).rc).toBe(0);
    expect(v.cr3Mfn).toBe(n);
    expect(f.typeOf(n)).toBe(PGT_l4_page_table);
    // Without m2p_strict the RO M2P appears in slot 256 of a kernel base table.
    expect(w.hv.machine.ram.read32(n * 4096 + RO_MPT_SLOT * 8) & 1).toBe(1);
    expect(w.pv.read(v, g.b.startInfoVa, 4)).toBe(0x2d6e6578);
    // Same base again: a flush only.
    expect(ext(w, v, [{ cmd: MMUEXT_NEW_BASEPTR, arg1: { mfn: n } }]).rc).toBe(0);
    expect(ext(w, v, [{ cmd: MMUEXT_NEW_BASEPTR, arg1: { mfn: spare(g, 1) + 0 } }]).rc).toBe(0);
    expect(ext(w, v, [{ cmd: MMUEXT_NEW_BASEPTR, arg1: { mfn: g.b.p2m[0] } }]).rc).toBe(-EINVAL);
    assertFrameInvariants(w.hv);
  });

  it("NEW_USER_BASEPTR sets, replaces and clears the user table; m2p_strict keeps the M2P out of it", () => {
    const { w, g, v } = setup();
    w.hv.hypercall(v, __HYPERVISOR_vm_assist, {
      cmd: VMASST_CMD_enable,
      type: VMASST_TYPE_m2p_strict,
    });
    const u = spare(g, 0);
    expect(ext(w, v, [{ cmd: MMUEXT_NEW_USER_BASEPTR, arg1: { mfn: u } }]).rc).toBe(0);
    expect(v.userCr3Mfn).toBe(u);
    expect(w.hv.machine.ram.read32(u * 4096 + RO_MPT_SLOT * 8)).toBe(0);
    expect(ext(w, v, [{ cmd: MMUEXT_NEW_USER_BASEPTR, arg1: { mfn: u } }]).rc).toBe(0);
    assertFrameInvariants(w.hv);
    // In user mode the vCPU runs on the user table, which maps nothing yet.
    v.inKernel = false;
    expect(w.pv.read(v, g.b.startInfoVa, 4)).toBe(-1);
    expect(w.pv.fault.errorCode & 4).toBe(4);
    v.inKernel = true;
    expect(ext(w, v, [{ cmd: MMUEXT_NEW_USER_BASEPTR, arg1: { mfn: 0 } }]).rc).toBe(0);
    expect(v.userCr3Mfn).toBe(-1);
    expect(w.hv.frames.typeCount(u)).toBe(0);
    expect(ext(w, v, [{ cmd: MMUEXT_NEW_USER_BASEPTR, arg1: { mfn: g.b.p2m[0] } }]).rc).toBe(
      -EINVAL,
    );
    assertFrameInvariants(w.hv);
  });

  it("refuses base pointers of another domain (-EPERM)", () => {
    const w = boot();
    const dom0 = guest(w, { domid: 0 });
    guest(w, { domid: 2, nrPages: 1100 });
    const v = dom0.d.vcpus[0];
    expect(ext(w, v, [{ cmd: MMUEXT_NEW_BASEPTR, arg1: { mfn: 1 } }], 2).rc).toBe(-EPERM);
    expect(ext(w, v, [{ cmd: MMUEXT_NEW_USER_BASEPTR, arg1: { mfn: 1 } }], 2).rc).toBe(-EPERM);
  });
});

describe("walkRefSink", () => {
  it("hears the machine address of every entry a hardware walk reads", () => {
    const { w, g, v } = setup();
    const heard: number[] = [];
    w.pv.walkRefSink = (ma) => heard.push(ma);
    const reads = w.pv.walkCounts.reads;
    w.pv.read(v, g.b.startInfoVa, 4);
    expect(heard.length).toBe(w.pv.walkCounts.reads - reads);
    expect(heard.length).toBeGreaterThan(0);
    // The last entry heard is the leaf, in a page table the guest owns.
    const leaf = heard[heard.length - 1];
    expect(w.hv.frames.ownerOf(Math.floor(leaf / 4096))).toBe(g.d.domid);
    // Without a sink the walks go on unheard.
    const n = heard.length;
    w.pv.walkRefSink = null;
    w.pv.flushLocal(v);
    const r1 = w.pv.walkCounts.reads;
    w.pv.read(v, g.b.startInfoVa, 4);
    expect(w.pv.walkCounts.reads).toBeGreaterThan(r1);
    expect(heard.length).toBe(n);
  });
});

describe("mmuext_op: TLB flushes", () => {
  it("flushes the local TLB, one address, a vCPU set and the whole domain", () => {
    const { w, g, v } = setup();
    const v1 = g.d.vcpus[1];
    v1.cr3Mfn = -1;
    w.pv.read(v, g.b.startInfoVa, 4);
    const t = w.pv.tlbOf(v);
    const before = w.pv.tlbFlushCount(v);
    expect(ext(w, v, [{ cmd: MMUEXT_TLB_FLUSH_LOCAL }]).rc).toBe(0);
    expect(w.pv.tlbFlushCount(v)).toBe(before + 1);
    expect(
      ext(w, v, [{ cmd: MMUEXT_INVLPG_LOCAL, arg1: { linear_addr: g.b.startInfoVa } }]).rc,
    ).toBe(0);
    const walks = w.pv.walkCounts.walks;
    w.pv.read(v, g.b.startInfoVa, 4);
    expect(w.pv.walkCounts.walks).toBe(walks + 1);
    expect(tlbStats(t).invlpg).toBeGreaterThan(0);
    expect(ext(w, v, [{ cmd: MMUEXT_TLB_FLUSH_MULTI, arg2: { vcpumask: [0b10] } }]).rc).toBe(0);
    expect(w.pv.tlbFlushCount(v1)).toBe(1);
    expect(
      ext(w, v, [{ cmd: MMUEXT_INVLPG_MULTI, arg1: { linear_addr: 0 }, arg2: { vcpumask: [3] } }])
        .rc,
    ).toBe(0);
    expect(ext(w, v, [{ cmd: MMUEXT_TLB_FLUSH_MULTI, arg2: { vcpumask: [] } }]).rc).toBe(-EINVAL);
    expect(ext(w, v, [{ cmd: MMUEXT_INVLPG_MULTI, arg2: {} }]).rc).toBe(-EINVAL);
    expect(ext(w, v, [{ cmd: MMUEXT_TLB_FLUSH_ALL }]).rc).toBe(0);
    expect(w.pv.tlbFlushCount(v1)).toBe(2);
    expect(ext(w, v, [{ cmd: MMUEXT_INVLPG_ALL, arg1: { linear_addr: g.b.startInfoVa } }]).rc).toBe(
      0,
    );
  });

  it("refuses flushes on behalf of another domain (-EPERM)", () => {
    const w = boot();
    const dom0 = guest(w, { domid: 0 });
    guest(w, { domid: 2, nrPages: 1100 });
    const v = dom0.d.vcpus[0];
    for (const cmd of [
      MMUEXT_TLB_FLUSH_LOCAL,
      MMUEXT_INVLPG_LOCAL,
      MMUEXT_TLB_FLUSH_MULTI,
      MMUEXT_INVLPG_MULTI,
      MMUEXT_TLB_FLUSH_ALL,
      MMUEXT_INVLPG_ALL,
      MMUEXT_FLUSH_CACHE,
      MMUEXT_FLUSH_CACHE_GLOBAL,
      MMUEXT_SET_LDT,
    ]) {
      expect(ext(w, v, [{ cmd, arg2: { vcpumask: [1] } }], 2).rc).toBe(-EPERM);
    }
  });

  it("allows cache flushes only to a domain with I/O rights", () => {
    const { w, v } = setup();
    expect(ext(w, v, [{ cmd: MMUEXT_FLUSH_CACHE }]).rc).toBe(-EACCES);
    expect(ext(w, v, [{ cmd: MMUEXT_FLUSH_CACHE_GLOBAL }]).rc).toBe(-EINVAL);
    const p = setup(0);
    expect(ext(p.w, p.v, [{ cmd: MMUEXT_FLUSH_CACHE }]).rc).toBe(0);
    expect(ext(p.w, p.v, [{ cmd: MMUEXT_FLUSH_CACHE_GLOBAL }]).rc).toBe(0);
  });
});

describe("mmuext_op: pages, LDT and the rest", () => {
  it("CLEAR_PAGE and COPY_PAGE take the writable type for the write", () => {
    const { w, g, v } = setup();
    const [a, b] = [spare(g, 0), spare(g, 1)];
    const ram = w.hv.machine.ram;
    ram.write32(a * 4096 + 40, 77);
    expect(ext(w, v, [{ cmd: MMUEXT_COPY_PAGE, arg1: { mfn: b }, arg2: { src_mfn: a } }]).rc).toBe(
      0,
    );
    expect(ram.read32(b * 4096 + 40)).toBe(77);
    expect(ext(w, v, [{ cmd: MMUEXT_CLEAR_PAGE, arg1: { mfn: b } }]).rc).toBe(0);
    expect(ram.read32(b * 4096 + 40)).toBe(0);
    // Page tables cannot be written this way; nor frames of others.
    expect(ext(w, v, [{ cmd: MMUEXT_CLEAR_PAGE, arg1: { mfn: g.b.l4Mfn } }]).rc).toBe(-EINVAL);
    expect(ext(w, v, [{ cmd: MMUEXT_CLEAR_PAGE, arg1: { mfn: 1 } }]).rc).toBe(-EINVAL);
    expect(
      ext(w, v, [{ cmd: MMUEXT_COPY_PAGE, arg1: { mfn: g.b.l4Mfn }, arg2: { src_mfn: a } }]).rc,
    ).toBe(-EINVAL);
    expect(ext(w, v, [{ cmd: MMUEXT_COPY_PAGE, arg1: { mfn: b }, arg2: { src_mfn: 1 } }]).rc).toBe(
      -EINVAL,
    );
    expect(ext(w, v, [{ cmd: MMUEXT_COPY_PAGE, arg1: { mfn: 1 }, arg2: { src_mfn: a } }]).rc).toBe(
      -EINVAL,
    );
    assertFrameInvariants(w.hv);
  });

  it("SET_LDT checks its arguments", () => {
    const { w, g, v } = setup();
    expect(
      ext(w, v, [
        { cmd: MMUEXT_SET_LDT, arg1: { linear_addr: g.b.virtBase }, arg2: { nr_ents: 16 } },
      ]).rc,
    ).toBe(0);
    expect(
      ext(w, v, [{ cmd: MMUEXT_SET_LDT, arg1: { linear_addr: 0 }, arg2: { nr_ents: 0 } }]).rc,
    ).toBe(0);
    expect(
      ext(w, v, [{ cmd: MMUEXT_SET_LDT, arg1: { linear_addr: 0 }, arg2: { nr_ents: 8193 } }]).rc,
    ).toBe(-EINVAL);
    expect(
      ext(w, v, [{ cmd: MMUEXT_SET_LDT, arg1: { linear_addr: 12 }, arg2: { nr_ents: 1 } }]).rc,
    ).toBe(-EINVAL);
    expect(
      ext(w, v, [
        { cmd: MMUEXT_SET_LDT, arg1: { linear_addr: 0x8000_0000_0000 }, arg2: { nr_ents: 1 } },
      ]).rc,
    ).toBe(-EINVAL);
    expect(ext(w, v, [{ cmd: MMUEXT_SET_LDT, arg1: {}, arg2: {} }]).rc).toBe(-EINVAL);
  });

  it("SET_LDT follows Xen 4.17 on every path: each bad argument -EINVAL, the state untouched", () => {
    const { w, g, v } = setup();
    const pv = w.hv.slot("pv-mmu");
    const ldt = (linear_addr: unknown, nr_ents: unknown) =>
      ext(w, v, [{ cmd: MMUEXT_SET_LDT, arg1: { linear_addr }, arg2: { nr_ents } } as MmuextOp]).rc;
    const base = g.b.virtBase;
    expect(ldt(base, 16)).toBe(0);
    expect(pv.ldtOf(v)).toEqual({ base, ents: 16, loads: 1 });
    const flushes = pv.tlbFlushCount(v);
    // Each error path, with the LDT left as it was.
    const bad: [unknown, unknown][] = [
      [base, 8193], // more than 8192 entries
      [base, 2 ** 32], // not an unsigned int
      [base, -1],
      [base, 1.5],
      [base, Number.NaN],
      [base, 5n],
      [base + 8, 1], // base not page aligned
      [base + 0.5, 1],
      [-4096, 1],
      [0x8000_0000_0000, 1], // inside the hypervisor's hole (first page)
      [0x87ff_ffff_f000, 1], // inside the hole (last page)
      [2 ** 48, 1], // beyond the 48-bit address space
      [Number.NaN, 1],
      [Infinity, 1],
      [BigInt(base), 1],
      [undefined, 1],
    ];
    for (const [p, n] of bad)
      expect(ldt(p, n), `SET_LDT(${String(p)}, ${String(n)})`).toBe(-EINVAL);
    expect(pv.ldtOf(v)).toEqual({ base, ents: 16, loads: 1 });
    // The edges Xen accepts: 8192 entries; a base just below the hole or at its end (only the
    // base is checked, so an LDT that runs into the hole is accepted here and faults on use).
    expect(ldt(0x7fff_ffff_f000, 8192)).toBe(0);
    expect(ldt(0x8800_0000_0000, 1)).toBe(0);
    expect(pv.ldtOf(v)).toEqual({ base: 0x8800_0000_0000, ents: 1, loads: 3 });
    // The same LDT again is no change (no load_LDT); with no entries the base is ignored.
    expect(ldt(0x8800_0000_0000, 1)).toBe(0);
    expect(pv.ldtOf(v).loads).toBe(3);
    expect(ldt(12, 0)).toBe(0);
    expect(ldt(Number.NaN, 0)).toBe(0);
    expect(pv.ldtOf(v)).toEqual({ base: 0, ents: 0, loads: 4 });
    // pv_destroy_ldt dropped no shadow mapping (none is modelled), so no flush was made.
    expect(pv.tlbFlushCount(v)).toBe(flushes);
  });

  it("answers -EOPNOTSUPP for superpage marking, -ENOSYS for unknown commands, -EFAULT for bad arguments", () => {
    const { w, v } = setup();
    expect(ext(w, v, [{ cmd: MMUEXT_MARK_SUPER }]).rc).toBe(-EOPNOTSUPP);
    expect(ext(w, v, [{ cmd: MMUEXT_UNMARK_SUPER }]).rc).toBe(-EOPNOTSUPP);
    expect(ext(w, v, [{ cmd: 14 }]).rc).toBe(-ENOSYS);
    expect(ext(w, v, [{ cmd: 99 }]).rc).toBe(-ENOSYS);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_mmuext_op, { uops: [], count: 2, foreigndom: DOMID_SELF }),
    ).toBe(-EFAULT);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_mmuext_op, {
        uops: [null as unknown as MmuextOp],
        count: 1,
        foreigndom: DOMID_SELF,
      }),
    ).toBe(-EFAULT);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_mmuext_op, {
        uops: [],
        count: 0,
        foreigndom: "x" as unknown as number,
      }),
    ).toBe(-EFAULT);
  });

  it("stops at the first failing op and reports the done count", () => {
    const { w, g, v } = setup();
    const r = ext(w, v, [
      { cmd: MMUEXT_PIN_L1_TABLE, arg1: { mfn: spare(g, 0) } },
      { cmd: MMUEXT_PIN_L4_TABLE, arg1: { mfn: spare(g, 0) } },
      { cmd: MMUEXT_TLB_FLUSH_LOCAL },
    ]);
    expect(r).toEqual({ rc: -EINVAL, done: 1 });
    assertFrameInvariants(w.hv);
  });
});
