import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_multicall,
  __HYPERVISOR_update_va_mapping,
  DOMID_IO,
  DOMID_SELF,
  EACCES,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOSYS,
  EPERM,
  ESRCH,
  MMU_MACHPHYS_UPDATE,
  MMU_NORMAL_PT_UPDATE,
  MMU_PT_UPDATE_NO_TRANSLATE,
  MMU_PT_UPDATE_PRESERVE_AD,
} from "@hyperlab/abi";
import { PGT_l1_page_table, PGT_l2_page_table, PGT_writable_page } from "@hyperlab/core";
import { assertFrameInvariants } from "@hyperlab/testkit";
import { describe, expect, it } from "vitest";
import { MMU_UPDATE_PREEMPTED, RO_MPT_VIRT_START_48 } from "../src/index";
import { boot, type Guest, guest, type World } from "./helpers";

const P = 1n;
const RW = 2n;
const A = 0x20n;
const D = 0x40n;
const PSE = 0x80n;
const PWT = 0x8n;
const NX = 1n << 63n;

function pte(mfn: number, flags: bigint): bigint {
  return (BigInt(mfn) << 12n) | flags;
}

/** A free (unmapped, untyped) page of the guest, beyond its bootstrap region. */
function spare(g: Guest, k: number): number {
  return g.b.p2m[g.b.p2m.length - 1 - k];
}

function mmu(
  w: World,
  g: Guest,
  reqs: { ptr: number | bigint; val: number | bigint }[],
  foreigndom = DOMID_SELF,
) {
  const args: { ureqs: typeof reqs; count: number; foreigndom: number; pdone?: number } = {
    ureqs: reqs,
    count: reqs.length,
    foreigndom,
  };
  const rc = w.hv.hypercall(g.d.vcpus[0], __HYPERVISOR_mmu_update, args);
  return { rc, done: args.pdone };
}

/** The L1 that maps `va` in the guest's kernel tables, and the slot. */
function l1For(w: World, g: Guest, va: number): { l1: number; slot: number } {
  const loc = w.pv.guestL1Slot(g.b.l4Mfn, va);
  return { l1: Math.floor(loc / 512), slot: loc % 512 };
}

function setup(opts: { privileged?: boolean } = {}) {
  const w = boot();
  const g = guest(w, { domid: opts.privileged ? 0 : 1 });
  return { w, g, v: g.d.vcpus[0] };
}

/** A VA in the bootstrap region whose L1 slot is free (just past the mapped pages' L1 coverage end). */
function freeVa(g: Guest): number {
  return g.b.vEnd + 8 * 4096;
}

describe("mmu_update: MMU_NORMAL_PT_UPDATE on an L1", () => {
  it("maps a page, validating it and taking the writable type", () => {
    const { w, g, v } = setup();
    const va = freeVa(g);
    const { l1, slot } = l1For(w, g, va);
    const page = spare(g, 0);
    const r = mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: pte(page, P | RW | A | D) }]);
    expect(r).toEqual({ rc: 0, done: 1 });
    expect(w.hv.frames.typeOf(page)).toBe(PGT_writable_page);
    expect(w.hv.frames.typeCount(page)).toBe(1);
    expect(w.pv.write(v, va, 4, 0xcafe)).toBe(true);
    expect(w.hv.machine.ram.read32(page * 4096)).toBe(0xcafe);
    // Xen's adjust_guest_l1e marks a kernel page USER and _PAGE_GUEST_KERNEL.
    expect(w.hv.machine.ram.readU64(l1 * 4096 + slot * 8) & ((1n << 52n) | 4n)).toBe(
      (1n << 52n) | 4n,
    );
    assertFrameInvariants(w.hv);
  });

  it("takes the same answers from the packed Uint32Array form", () => {
    const { w, g, v } = setup();
    const { l1, slot } = l1For(w, g, freeVa(g));
    const page = spare(g, 0);
    const reqs = new Uint32Array([l1 * 4096 + slot * 8, 0, page * 4096 + 3, 0]);
    const args = { ureqs: reqs, count: 1, foreigndom: DOMID_SELF, pdone: 0 };
    expect(w.hv.hypercall(v, __HYPERVISOR_mmu_update, args)).toBe(0);
    expect(args.pdone).toBe(1);
    assertFrameInvariants(w.hv);
  });

  it("drops the old mapping's references when an entry is replaced or cleared", () => {
    const { w, g } = setup();
    const { l1, slot } = l1For(w, g, freeVa(g));
    const [a, b] = [spare(g, 0), spare(g, 1)];
    expect(mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: pte(a, P | RW) }]).rc).toBe(0);
    expect(mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: pte(b, P) }]).rc).toBe(0);
    expect(w.hv.frames.typeCount(a)).toBe(0);
    expect(w.hv.frames.refCount(a)).toBe(1);
    expect(w.hv.frames.refCount(b)).toBe(2);
    expect(mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: 0 }]).rc).toBe(0);
    expect(w.hv.frames.refCount(b)).toBe(1);
    assertFrameInvariants(w.hv);
  });

  it("changes whitelisted flags (NX, A, D) without new references", () => {
    const { w, g } = setup();
    const { l1, slot } = l1For(w, g, freeVa(g));
    const a = spare(g, 0);
    mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: pte(a, P | RW) }]);
    expect(mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: pte(a, P | RW | A | D) | NX }]).rc).toBe(0);
    expect(w.hv.frames.typeCount(a)).toBe(1);
    assertFrameInvariants(w.hv);
  });

  it("keeps A and D with MMU_PT_UPDATE_PRESERVE_AD", () => {
    const { w, g } = setup();
    const { l1, slot } = l1For(w, g, freeVa(g));
    const a = spare(g, 0);
    mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: pte(a, P | RW | A | D) }]);
    const b = spare(g, 1);
    expect(
      mmu(w, g, [{ ptr: l1 * 4096 + slot * 8 + MMU_PT_UPDATE_PRESERVE_AD, val: pte(b, P | RW) }])
        .rc,
    ).toBe(0);
    expect(w.hv.machine.ram.read32(l1 * 4096 + slot * 8) & 0x60).toBe(0x60);
    assertFrameInvariants(w.hv);
  });

  it("refuses to map a page table writable (-EBUSY) but allows it read-only", () => {
    const { w, g } = setup();
    const { l1, slot } = l1For(w, g, freeVa(g));
    expect(mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: pte(g.b.l4Mfn, P | RW) }]).rc).toBe(-EBUSY);
    expect(mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: pte(l1, P | RW) }]).rc).toBe(-EBUSY);
    expect(mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: pte(l1, P) }]).rc).toBe(0);
    assertFrameInvariants(w.hv);
  });

  it("refuses another domain's frame (-EBUSY), a free frame (-EBUSY), non-RAM (-EPERM) and INVALID_MFN (-EINVAL)", () => {
    const { w, g } = setup();
    const other = guest(w, { domid: 7, nrPages: 1100 });
    const { l1, slot } = l1For(w, g, freeVa(g));
    const at = l1 * 4096 + slot * 8;
    expect(mmu(w, g, [{ ptr: at, val: pte(other.b.p2m[0], P) }]).rc).toBe(-EBUSY);
    let free = 1;
    while (w.hv.frames.ownerOf(free) !== -1 || w.hv.machine.frames.isReserved(free)) free++;
    expect(mmu(w, g, [{ ptr: at, val: pte(free, P) }]).rc).toBe(-EBUSY);
    expect(mmu(w, g, [{ ptr: at, val: pte(w.hv.frames.nrFrames + 5, P) }]).rc).toBe(-EPERM);
    expect(mmu(w, g, [{ ptr: at, val: pte(2 ** 40 - 1, P) }]).rc).toBe(-EINVAL);
    assertFrameInvariants(w.hv);
  });

  it("refuses disallowed L1 bits: cache attributes and _PAGE_GNTTAB (-EINVAL)", () => {
    const { w, g } = setup();
    const { l1, slot } = l1For(w, g, freeVa(g));
    const at = l1 * 4096 + slot * 8;
    expect(mmu(w, g, [{ ptr: at, val: pte(spare(g, 0), P | PWT) }]).rc).toBe(-EINVAL);
    expect(mmu(w, g, [{ ptr: at, val: pte(spare(g, 0), P) | (1n << 62n) }]).rc).toBe(-EINVAL);
    // The Global bit is allowed in an L1.
    expect(mmu(w, g, [{ ptr: at, val: pte(spare(g, 0), P | 0x100n) }]).rc).toBe(0);
  });

  it("lets a privileged domain use cache attributes, but not on a Xen heap page (-EACCES)", () => {
    const { w, g } = setup({ privileged: true });
    const { l1, slot } = l1For(w, g, freeVa(g));
    const at = l1 * 4096 + slot * 8;
    expect(mmu(w, g, [{ ptr: at, val: pte(spare(g, 0), P | PWT) }]).rc).toBe(0);
    expect(mmu(w, g, [{ ptr: at + 8, val: pte(g.d.sharedInfoMfn, P | RW | PWT) }]).rc).toBe(
      -EACCES,
    );
    assertFrameInvariants(w.hv);
  });
});

describe("mmu_update: upper levels", () => {
  it("hooks a new L1 into an L2, validating it as an L1 and refusing superpages", () => {
    const { w, g } = setup();
    const l2 = w.pv.guestL1Slot(g.b.l4Mfn, g.b.virtBase); // locate the L2 by walking
    const l4 = g.b.l4Mfn;
    const ram = w.hv.machine.ram;
    const l3 = Number((ram.readU64(l4 * 4096 + 511 * 8) >> 12n) & 0xff_ffff_ffffn);
    const l2m = Number((ram.readU64(l3 * 4096 + 510 * 8) >> 12n) & 0xff_ffff_ffffn);
    expect(l2).toBeGreaterThan(0);
    const newL1 = spare(g, 2);
    expect(mmu(w, g, [{ ptr: l2m * 4096 + 100 * 8, val: pte(newL1, P | RW | A) }]).rc).toBe(0);
    expect(w.hv.frames.typeOf(newL1)).toBe(PGT_l1_page_table);
    // PSE is in the L2 disallow mask: a 2 MiB superpage is refused.
    expect(
      mmu(w, g, [{ ptr: l2m * 4096 + 101 * 8, val: pte(spare(g, 512), P | RW | PSE) }]).rc,
    ).toBe(-EINVAL);
    // A 1 GiB superpage in the L3 is refused the same way.
    expect(mmu(w, g, [{ ptr: l3 * 4096 + 3 * 8, val: pte(spare(g, 4), P | RW | PSE) }]).rc).toBe(
      -EINVAL,
    );
    // A data page that is mapped writable cannot become an L1.
    const { l1, slot } = l1For(w, g, freeVa(g));
    mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: pte(spare(g, 3), P | RW) }]);
    expect(mmu(w, g, [{ ptr: l2m * 4096 + 102 * 8, val: pte(spare(g, 3), P | RW) }]).rc).toBe(
      -EINVAL,
    );
    // Unhooking the L1 demotes it.
    expect(mmu(w, g, [{ ptr: l2m * 4096 + 100 * 8, val: 0 }]).rc).toBe(0);
    expect(w.hv.frames.typeCount(newL1)).toBe(0);
    assertFrameInvariants(w.hv);
  });

  it("refuses an L4 update in Xen's slots (-EINVAL), and L2..L4 updates for a foreign pg owner (-EINVAL)", () => {
    const { w, g } = setup({ privileged: true });
    const other = guest(w, { domid: 3, nrPages: 1100 });
    expect(mmu(w, g, [{ ptr: g.b.l4Mfn * 4096 + 260 * 8, val: 0 }]).rc).toBe(-EINVAL);
    expect(mmu(w, g, [{ ptr: g.b.l4Mfn * 4096 + 10 * 8, val: 0 }], other.d.domid).rc).toBe(-EINVAL);
  });

  it("accepts read-only linear page tables and refuses writable ones", () => {
    const { w, g } = setup();
    const l4 = g.b.l4Mfn;
    // Self-map of the L4, read-only: allowed, holds no reference.
    const before = w.hv.frames.typeCount(l4);
    expect(mmu(w, g, [{ ptr: l4 * 4096 + 5 * 8, val: pte(l4, P) }]).rc).toBe(0);
    expect(w.hv.frames.typeCount(l4)).toBe(before);
    expect(mmu(w, g, [{ ptr: l4 * 4096 + 6 * 8, val: pte(l4, P | RW) }]).rc).toBe(-EINVAL);
    assertFrameInvariants(w.hv);
    // Read through the linear map: slot 5 maps the L4 as an L3, so 5/5/5/5 reads the L4 itself.
    const v = g.d.vcpus[0];
    const va = 5 * 2 ** 39 + 5 * 2 ** 30 + 5 * 2 ** 21 + 5 * 2 ** 12;
    expect(w.pv.read(v, va + 511 * 8, 4)).toBe(w.hv.machine.ram.read32(l4 * 4096 + 511 * 8));
    expect(w.pv.write(v, va, 4, 1)).toBe(false);
  });

  it("counts linear entries between two L2s and refuses chains", () => {
    const { w, g } = setup();
    const f = w.hv.frames;
    const [a, b, c] = [spare(g, 10), spare(g, 11), spare(g, 12)];
    // Pin two empty L2s.
    const pin = (m: number) =>
      w.hv.hypercall(g.d.vcpus[0], 26, {
        uops: [{ cmd: 1, arg1: { mfn: m } }],
        count: 1,
        foreigndom: DOMID_SELF,
      });
    expect(pin(a)).toBe(0);
    expect(pin(b)).toBe(0);
    expect(pin(c)).toBe(0);
    expect(mmu(w, g, [{ ptr: a * 4096, val: pte(b, P) }]).rc).toBe(0);
    expect(f.typeOf(b)).toBe(PGT_l2_page_table);
    expect(f.typeCount(b)).toBe(2);
    expect(w.pv.pt.linear[a]).toBe(1);
    expect(w.pv.pt.linear[b]).toBe(-1);
    // b is a linear target: it may not itself hold linear entries; a may not be a target.
    expect(mmu(w, g, [{ ptr: b * 4096, val: pte(c, P) }]).rc).toBe(-EINVAL);
    expect(mmu(w, g, [{ ptr: c * 4096, val: pte(a, P) }]).rc).toBe(-EINVAL);
    expect(mmu(w, g, [{ ptr: a * 4096, val: 0 }]).rc).toBe(0);
    expect(w.pv.pt.linear[a]).toBe(0);
    expect(w.pv.pt.linear[b]).toBe(0);
    assertFrameInvariants(w.hv);
  });
});

describe("mmu_update: other commands and errors", () => {
  it("writes a non-page-table frame raw (the writable-page path)", () => {
    const { w, g } = setup();
    const m = spare(g, 0);
    expect(mmu(w, g, [{ ptr: m * 4096 + 16, val: 0x1234_5678_9abcn }]).rc).toBe(0);
    expect(w.hv.machine.ram.readU64(m * 4096 + 16)).toBe(0x1234_5678_9abcn);
    expect(w.hv.frames.typeCount(m)).toBe(0);
  });

  it("MMU_MACHPHYS_UPDATE sets the M2P entry, which the guest reads through RO_MPT", () => {
    const { w, g, v } = setup();
    const m = spare(g, 0);
    expect(mmu(w, g, [{ ptr: m * 4096 + MMU_MACHPHYS_UPDATE, val: 4242 }]).rc).toBe(0);
    expect(w.pv.m2p.get(m)).toBe(4242);
    expect(w.pv.read(v, RO_MPT_VIRT_START_48 + m * 8, 4)).toBe(4242);
    // The M2P is read-only to the guest.
    expect(w.pv.write(v, RO_MPT_VIRT_START_48 + m * 8, 4, 1)).toBe(false);
    expect(mmu(w, g, [{ ptr: 3 * 4096 + MMU_MACHPHYS_UPDATE, val: 1 }]).rc).toBe(-EINVAL);
  });

  it("refuses a page-table owner other than the caller for MMU_MACHPHYS_UPDATE (-EPERM)", () => {
    const { w, g } = setup({ privileged: true });
    const other = guest(w, { domid: 4, nrPages: 1100 });
    const ptDom = (other.d.domid + 1) << 16;
    expect(
      mmu(w, g, [{ ptr: other.b.p2m[0] * 4096 + MMU_MACHPHYS_UPDATE, val: 1 }], ptDom | DOMID_SELF)
        .rc,
    ).toBe(-EPERM);
  });

  it("lets a privileged domain update another domain's tables (foreign pt owner)", () => {
    const { w, g } = setup({ privileged: true });
    const other = guest(w, { domid: 4, nrPages: 1100 });
    const { l1, slot } = l1For(w, other, freeVa(other));
    const ptDom = (other.d.domid + 1) << 16;
    const val = pte(other.b.p2m[other.b.p2m.length - 1], P | RW);
    expect(mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val }], ptDom | other.d.domid).rc).toBe(0);
    assertFrameInvariants(w.hv);
  });

  it("answers -ESRCH for a bad foreign domain, and for naming oneself by number", () => {
    const { w, g } = setup();
    expect(mmu(w, g, [{ ptr: 0, val: 0 }], 99).rc).toBe(-ESRCH);
    expect(mmu(w, g, [{ ptr: 0, val: 0 }], g.d.domid).rc).toBe(-ESRCH);
    expect(mmu(w, g, [{ ptr: 0, val: 0 }], DOMID_IO).rc).toBe(-ESRCH);
    expect(mmu(w, g, [{ ptr: 0, val: 0 }], (99 << 16) | DOMID_SELF).rc).toBe(-ESRCH);
  });

  it("answers -EPERM when an unprivileged domain names another as page owner", () => {
    const { w, g } = setup();
    const other = guest(w, { domid: 5, nrPages: 1100 });
    const { l1, slot } = l1For(w, g, freeVa(g));
    expect(
      mmu(w, g, [{ ptr: l1 * 4096 + slot * 8, val: pte(other.b.p2m[0], P) }], other.d.domid).rc,
    ).toBe(-EPERM);
  });

  it("answers -EFAULT for unreadable arguments", () => {
    const { w, g, v } = setup();
    expect(
      w.hv.hypercall(v, __HYPERVISOR_mmu_update, { ureqs: [], count: 1, foreigndom: DOMID_SELF }),
    ).toBe(-EFAULT);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_mmu_update, { ureqs: [], count: -1, foreigndom: DOMID_SELF }),
    ).toBe(-EFAULT);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_mmu_update, {
        ureqs: [{ ptr: -1, val: 0 }],
        count: 1,
        foreigndom: DOMID_SELF,
      }),
    ).toBe(-EFAULT);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_mmu_update, {
        ureqs: [{ ptr: 0, val: 0.5 }],
        count: 1,
        foreigndom: DOMID_SELF,
      }),
    ).toBe(-EFAULT);
    expect(
      w.hv.hypercall(v, __HYPERVISOR_mmu_update, {
        ureqs: "x" as unknown as Uint32Array,
        count: 1,
        foreigndom: DOMID_SELF,
      }),
    ).toBe(-EFAULT);
    expect(mmu(w, g, [{ ptr: 0, val: 0 }], "x" as unknown as number).rc).toBe(-EFAULT);
  });

  it("stops at the first failing request and reports how many were done", () => {
    const { w, g } = setup();
    const { l1, slot } = l1For(w, g, freeVa(g));
    const r = mmu(w, g, [
      { ptr: l1 * 4096 + slot * 8, val: pte(spare(g, 0), P) },
      { ptr: l1 * 4096 + (slot + 1) * 8, val: pte(g.b.l4Mfn, P | RW) },
      { ptr: l1 * 4096 + (slot + 2) * 8, val: pte(spare(g, 1), P) },
    ]);
    expect(r).toEqual({ rc: -EBUSY, done: 1 });
    // A continuation passes MMU_UPDATE_PREEMPTED and the done count so far.
    const args = {
      ureqs: [{ ptr: l1 * 4096 + (slot + 3) * 8, val: pte(spare(g, 1), P) }],
      count: (1 | MMU_UPDATE_PREEMPTED) >>> 0,
      foreigndom: DOMID_SELF,
      pdone: 1,
    };
    expect(w.hv.hypercall(g.d.vcpus[0], __HYPERVISOR_mmu_update, args)).toBe(0);
    expect(args.pdone).toBe(2);
  });

  it("works under multicall, each result written back", () => {
    const { w, g, v } = setup();
    const va = freeVa(g);
    const { l1, slot } = l1For(w, g, va);
    const entries = [
      {
        op: __HYPERVISOR_mmu_update,
        args: {
          ureqs: [{ ptr: l1 * 4096 + slot * 8, val: pte(spare(g, 0), P | RW) }],
          count: 1,
          foreigndom: DOMID_SELF,
        },
        result: 1,
      },
      {
        op: __HYPERVISOR_update_va_mapping,
        args: { va: va + 4096, val: pte(spare(g, 1), P), flags: 2 },
        result: 1,
      },
      {
        op: __HYPERVISOR_update_va_mapping,
        args: { va: va + 8192, val: pte(g.b.l4Mfn, P | RW), flags: 0 },
        result: 1,
      },
    ];
    expect(w.hv.hypercall(v, __HYPERVISOR_multicall, { entries })).toBe(0);
    expect(entries.map((e) => e.result)).toEqual([0, 0, -EBUSY]);
    assertFrameInvariants(w.hv);
  });

  it("takes the command from ptr's low three bits; 4..7 are -ENOSYS", () => {
    const { w, g } = setup();
    expect(MMU_NORMAL_PT_UPDATE).toBe(0);
    const m = spare(g, 0);
    for (const cmd of [4, 5, 6, 7])
      expect(mmu(w, g, [{ ptr: m * 4096 + cmd, val: 0 }]).rc).toBe(-ENOSYS);
    expect(mmu(w, g, [{ ptr: m * 4096 + 8 + MMU_PT_UPDATE_NO_TRANSLATE, val: 5 }]).rc).toBe(0);
    expect(w.hv.machine.ram.read32(m * 4096 + 8)).toBe(5);
  });
});
