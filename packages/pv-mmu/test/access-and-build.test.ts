import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_update_va_mapping,
  __HYPERVISOR_vm_assist,
  DOMID_SELF,
  MMUEXT_PIN_L1_TABLE,
  SIF_INITDOMAIN,
  SIF_PRIVILEGED,
  start_info_x86_64,
  VMASST_CMD_enable,
  VMASST_TYPE_writable_pagetables,
} from "@hyperlab/abi";
import {
  HyperlabError,
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_user_mode,
  PFEC_write_access,
  PGT_l4_page_table,
} from "@hyperlab/core";
import { tlbStats } from "@hyperlab/paging";
import { assertFrameInvariants } from "@hyperlab/testkit";
import { describe, expect, it } from "vitest";
import { buildPvDomain } from "../src/index";
import { boot, type Guest, guest, type World } from "./helpers";

function spare(g: Guest, k: number): number {
  return g.b.p2m[g.b.p2m.length - 1 - k];
}

/** Maps `mfn` at a free VA of the guest (flags in the low bits of the entry); returns the VA. */
function mapAt(w: World, g: Guest, k: number, mfn: number, flags: number, nx = false): number {
  const va = g.b.vEnd + (8 + k) * 4096;
  const val = (BigInt(mfn) << 12n) | BigInt(flags) | (nx ? 1n << 63n : 0n);
  expect(w.hv.hypercall(g.d.vcpus[0], __HYPERVISOR_update_va_mapping, { va, val, flags: 2 })).toBe(
    0,
  );
  return va;
}

describe("the PV builder", () => {
  it("lays out start_info as xen.h says, with the P2M list in guest memory", () => {
    const w = boot();
    const d = w.hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 3000 });
    const kernel = new Uint8Array(6000).fill(0x90);
    const b = buildPvDomain(w.hv, w.pv, {
      domain: d,
      nrPages: 2048,
      kernel,
      cmdline: "console=hvc0",
    });
    const v = d.vcpus[0];
    const f = start_info_x86_64.fields;
    const si = b.startInfoVa;
    const u64 = (off: number) => {
      const o = { lo: 0, hi: 0 };
      expect(w.pv.read64(v, si + off, o)).toBe(true);
      return o.hi * 2 ** 32 + o.lo;
    };
    const magic = Array.from({ length: 14 }, (_, i) => w.pv.read(v, si + i, 1));
    expect(String.fromCharCode(...magic)).toBe("xen-3.0-x86_64");
    expect(u64(f.nr_pages.offset)).toBe(2048);
    expect(u64(f.shared_info.offset)).toBe(d.sharedInfoMfn * 4096);
    expect(w.pv.read(v, si + f.flags.offset, 4)).toBe(SIF_PRIVILEGED | SIF_INITDOMAIN);
    expect(u64(f.nr_pt_frames.offset)).toBe(b.nrPtFrames);
    // pt_base and mfn_list hold canonical 64-bit addresses.
    const o = { lo: 0, hi: 0 };
    w.pv.read64(v, si + f.mfn_list.offset, o);
    expect(o.hi >>> 16).toBe(0xffff);
    expect((o.hi & 0xffff) * 2 ** 32 + o.lo).toBe(b.p2mVa);
    expect(
      String.fromCharCode(
        ...Array.from({ length: 12 }, (_, i) => w.pv.read(v, si + f.cmd_line.offset + i, 1)),
      ),
    ).toBe("console=hvc0");
    // The P2M list: the guest reads pfn -> mfn at mfn_list.
    for (const pfn of [0, 1, 700, 2047]) {
      w.pv.read64(v, b.p2mVa + pfn * 8, o);
      expect(o.lo).toBe(b.p2m[pfn]);
      expect(w.pv.m2p.get(b.p2m[pfn])).toBe(pfn);
    }
    // The kernel image, and the bootstrap region's pfn = (va - base) / 4096 rule.
    expect(w.pv.read(v, b.kernelVa + 5999, 1)).toBe(0x90);
    expect(w.hv.machine.ram.read8(b.p2m[1] * 4096)).toBe(0x90);
    // CR3 holds the pinned L4.
    expect(v.cr3Mfn).toBe(b.l4Mfn);
    expect(w.hv.frames.typeOf(b.l4Mfn)).toBe(PGT_l4_page_table);
    expect(w.hv.frames.isPinned(b.l4Mfn)).toBe(true);
    expect(w.hv.frames.typeCount(b.l4Mfn)).toBe(2);
    // Page tables are mapped read-only; the stack and shared_info writable.
    expect(w.pv.write(v, b.ptBaseVa, 4, 0)).toBe(false);
    expect(w.pv.write(v, b.stackTop - 8, 4, 1)).toBe(true);
    expect(w.pv.write(v, b.sharedInfoVa, 4, 1)).toBe(true);
    expect(w.hv.machine.ram.read32(d.sharedInfoMfn * 4096)).toBe(1);
    expect(b.vEnd % (4 << 20)).toBe(0);
    assertFrameInvariants(w.hv);
  });

  it("refuses impossible builds with a HyperlabError that says what to do", () => {
    const w = boot();
    const d = w.hv.createDomain({ maxVcpus: 1, maxPages: 600 });
    expect(() => buildPvDomain(w.hv, w.pv, { domain: d, nrPages: 500 })).toThrow(
      /at least 1024 pages/,
    );
    expect(() => buildPvDomain(w.hv, w.pv, { domain: d, nrPages: 5000 })).toThrow(HyperlabError);
    const d2 = w.hv.createDomain({ maxVcpus: 1, maxPages: 3000 });
    expect(() =>
      buildPvDomain(w.hv, w.pv, { domain: d2, nrPages: 1100, virtBase: 0x8000_0000_0000 }),
    ).toThrow(/Xen's private area/);
    expect(() => buildPvDomain(w.hv, w.pv, { domain: d2, nrPages: 1100, virtBase: 123 })).toThrow(
      /page-aligned/,
    );
    const d3 = w.hv.createDomain({ maxVcpus: 1, maxPages: 3000, addressSize: 32 });
    expect(() => buildPvDomain(w.hv, w.pv, { domain: d3, nrPages: 1100 })).toThrow(/64-bit/);
    const g = guest(w, { nrPages: 1100 });
    expect(() => buildPvDomain(w.hv, w.pv, { domain: g.d, nrPages: 10 })).toThrow(/once/);
    const small = boot(6 << 20);
    const d4 = small.hv.createDomain({ maxVcpus: 1, maxPages: 5000 });
    expect(() => buildPvDomain(small.hv, small.pv, { domain: d4, nrPages: 1600 })).toThrow(
      /ran out of frames/,
    );
  });
});

describe("guest memory access through a vCPU", () => {
  it("reads and writes through the TLB, and faults as hardware would", () => {
    const w = boot();
    const g = guest(w);
    const v = g.d.vcpus[0];
    const ro = mapAt(w, g, 0, spare(g, 0), 0x1);
    const rw = mapAt(w, g, 1, spare(g, 1), 0x3, true);
    expect(w.pv.write(v, rw + 4, 4, 0xdead)).toBe(true);
    expect(w.pv.read(v, rw + 4, 4)).toBe(0xdead);
    expect(w.pv.read(v, rw + 4, 2)).toBe(0xdead);
    const t = w.pv.tlbOf(v);
    const hits = tlbStats(t).levels[0].hits;
    w.pv.read(v, rw, 4);
    expect(tlbStats(t).levels[0].hits).toBe(hits + 1);
    // Write to read-only: a protection fault (U clear: the guest kernel).
    expect(w.pv.write(v, ro, 4, 1)).toBe(false);
    expect(w.pv.fault).toEqual({ va: ro, errorCode: PFEC_page_present | PFEC_write_access });
    // Not present.
    expect(w.pv.read(v, g.b.vEnd + 100 * 4096, 4)).toBe(-1);
    expect(w.pv.fault.errorCode).toBe(0);
    // Instruction fetch from an NX page.
    expect(w.pv.translate(v, rw, PFEC_insn_fetch)).toBe(-1);
    expect(w.pv.fault.errorCode).toBe(PFEC_page_present | PFEC_insn_fetch);
    // Unaligned accesses that straddle pages go byte by byte.
    const two = mapAt(w, g, 2, spare(g, 2), 0x3);
    expect(w.pv.write(v, two + 4094, 4, 0x01020304)).toBe(false);
    expect(w.pv.write(v, rw + 4094, 4, 0x01020304)).toBe(true);
    expect(w.pv.read(v, rw + 4094, 4)).toBe(0x01020304);
    expect(w.pv.write64(v, rw + 16, 1, 2)).toBe(true);
    expect(w.pv.write64(v, rw + 20, 3, 4)).toBe(true);
    expect(w.pv.write64(v, ro + 16, 1, 2)).toBe(false);
    // Accessed and dirty bits are set by the walk.
    const loc = w.pv.guestL1Slot(g.b.l4Mfn, rw);
    expect(w.hv.machine.ram.read32(Math.floor(loc / 512) * 4096 + (loc % 512) * 8) & 0x60).toBe(
      0x60,
    );
    // In user mode, with no user table, everything faults with U set.
    v.inKernel = false;
    expect(w.pv.read(v, rw, 4)).toBe(-1);
    expect(w.pv.fault.errorCode & PFEC_user_mode).toBe(PFEC_user_mode);
    v.inKernel = true;
    // Xen's slots other than the M2P are not reachable.
    expect(w.pv.read(v, 0x8080_0000_0000, 4)).toBe(-1);
  });

  it("reads a u32 with bit 31 set whole, whether the read walks, hits the TLB or the last page", () => {
    const w = boot();
    const g = guest(w);
    const v = g.d.vcpus[0];
    const a = mapAt(w, g, 1, spare(g, 1), 0x3);
    const b = mapAt(w, g, 2, spare(g, 2), 0x3);
    expect(w.pv.write(v, a + 8, 4, 0xfedc_ba98)).toBe(true);
    expect(w.pv.write(v, b + 12, 4, 0x8000_0001)).toBe(true);
    w.pv.flushLocal(v);
    const walks = w.pv.walkCounts.walks;
    expect(w.pv.read(v, a + 8, 4)).toBe(0xfedc_ba98); // a walk
    expect(w.pv.read(v, b + 12, 4)).toBe(0x8000_0001); // a walk
    expect(w.pv.walkCounts.walks).toBe(walks + 2);
    const hits = tlbStats(w.pv.tlbOf(v)).levels[0].hits;
    expect(w.pv.read(v, a + 8, 4)).toBe(0xfedc_ba98); // a TLB hit (another page was last)
    expect(w.pv.read(v, a + 8, 4)).toBe(0xfedc_ba98); // the last page's words
    expect(w.pv.read(v, a + 9, 2)).toBe(0xdcba); // a short read through translate
    expect(w.pv.walkCounts.walks).toBe(walks + 2);
    expect(tlbStats(w.pv.tlbOf(v)).levels[0].hits).toBe(hits + 3);
    expect(w.pv.translate(v, b + 12, 0)).toBe(spare(g, 2) * 4096 + 12);
  });

  it("emulates a write to a read-only L1 page table (ptwr) only with writable_pagetables", () => {
    const w = boot();
    const g = guest(w);
    const v = g.d.vcpus[0];
    const va = g.b.vEnd + 8 * 4096;
    const loc = w.pv.guestL1Slot(g.b.l4Mfn, va);
    const l1 = Math.floor(loc / 512);
    const slot = loc % 512;
    // The L1 that maps va is itself mapped read-only in the bootstrap region.
    const pfn = g.b.p2m.indexOf(l1);
    const l1Va = g.b.virtBase + pfn * 4096;
    const page = spare(g, 0);
    expect(w.pv.write64(v, l1Va + slot * 8, page * 4096 + 3, 0)).toBe(false);
    expect(w.pv.counters.ptwrEmulations.value).toBe(0);
    w.hv.hypercall(v, __HYPERVISOR_vm_assist, {
      cmd: VMASST_CMD_enable,
      type: VMASST_TYPE_writable_pagetables,
    });
    expect(w.pv.write64(v, l1Va + slot * 8, page * 4096 + 3, 0)).toBe(true);
    expect(w.pv.counters.ptwrEmulations.value).toBe(1);
    expect(w.hv.frames.typeCount(page)).toBe(1);
    expect(w.pv.write(v, va, 4, 0xabc)).toBe(true);
    // A 4-byte store to the low half of the entry: merged, then validated.
    expect(w.pv.write(v, l1Va + slot * 8, 4, spare(g, 1) * 4096 + 1)).toBe(true);
    expect(w.hv.frames.typeCount(page)).toBe(0);
    // A write that would map a page table writable is not emulated: the guest gets the fault.
    expect(w.pv.write64(v, l1Va + slot * 8, g.b.l4Mfn * 4096 + 3, 0)).toBe(false);
    expect(w.pv.fault.errorCode).toBe(PFEC_page_present | PFEC_write_access);
    // Misaligned stores and writes to non-L1 page tables are not emulated either.
    expect(w.pv.write(v, l1Va + slot * 8 + 2, 4, 0)).toBe(false);
    expect(w.pv.write64(v, g.b.ptBaseVa, 0, 0)).toBe(false);
    // In guest user mode there is no emulation.
    assertFrameInvariants(w.hv);
  });

  it("flushes TLBs before a once-writable frame becomes a page table", () => {
    const w = boot();
    const g = guest(w);
    const v = g.d.vcpus[0];
    const page = spare(g, 0);
    const va = mapAt(w, g, 0, page, 0x3);
    expect(w.pv.write(v, va, 4, 0)).toBe(true); // the TLB now holds a writable entry
    // Unmap without a flush: the stale entry stays, as on hardware.
    expect(w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, { va, val: 0, flags: 0 })).toBe(0);
    expect(w.pv.write(v, va, 4, 0)).toBe(true);
    // Pinning it as an L1 flushes first, so the stale writable entry is gone.
    expect(
      w.hv.hypercall(v, __HYPERVISOR_mmuext_op, {
        uops: [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: { mfn: page } }],
        count: 1,
        foreigndom: DOMID_SELF,
      }),
    ).toBe(0);
    expect(w.pv.pt.counts.typeChangeFlushes).toBe(1);
    expect(w.pv.write(v, va, 4, 0)).toBe(false);
    assertFrameInvariants(w.hv);
  });
  it("flushes a writable translation cached long after the mapping was made (found by the property test)", () => {
    const w = boot();
    const g = guest(w);
    const v = g.d.vcpus[0];
    const page = g.b.p2m[0]; // the kernel's first page, mapped writable by the builder
    w.pv.pt.flushAll(); // some full flush after the mapping was made, before the TLB caches it
    expect(w.pv.write(v, g.b.kernelVa, 4, 0)).toBe(true); // cached writable now, no new type reference
    expect(
      w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, { va: g.b.kernelVa, val: 0, flags: 0 }),
    ).toBe(0);
    const pin = {
      uops: [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: { mfn: page } }],
      count: 1,
      foreigndom: DOMID_SELF,
    };
    expect(w.hv.hypercall(g.d.vcpus[1], __HYPERVISOR_mmuext_op, pin)).toBe(0);
    expect(w.pv.write(v, g.b.kernelVa, 4, 2)).toBe(false);
    assertFrameInvariants(w.hv);
  });
  it("flushes stale translations before a freed frame is handed to another domain", () => {
    const w = boot(16 << 20);
    const g = guest(w, { nrPages: 1100 });
    const other = w.hv.createDomain({ domid: 9, maxVcpus: 1, maxPages: 1 << 20 });
    const v = g.d.vcpus[0];
    const page = spare(g, 0);
    const va = mapAt(w, g, 0, page, 0x3);
    expect(w.pv.write(v, va, 4, 0)).toBe(true);
    // Unmap without a flush, and give the frame back: the TLB still has it.
    expect(w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, { va, val: 0, flags: 0 })).toBe(0);
    const dec = { cmd: 1, extent_start: [page], nr_extents: 1, extent_order: 0, domid: DOMID_SELF };
    expect(w.hv.hypercall(v, 12, dec)).toBe(1);
    expect(w.pv.write(v, va, 4, 0)).toBe(true);
    // The other domain takes every free frame, this one among them.
    const list = new Array(4096).fill(0);
    const n = w.hv.hypercall(other.vcpus[0], 12, {
      cmd: 0,
      extent_start: list,
      nr_extents: 4096,
      extent_order: 0,
      domid: DOMID_SELF,
    });
    expect(list.slice(0, n)).toContain(page);
    expect(w.pv.write(v, va, 4, 0)).toBe(false);
    assertFrameInvariants(w.hv);
  });
});

describe("domain teardown", () => {
  it("releases every frame, including tables kept alive by linear entries", () => {
    const w = boot();
    const g = guest(w);
    const v = g.d.vcpus[0];
    const [a, b] = [spare(g, 0), spare(g, 1)];
    for (const m of [a, b]) {
      w.hv.hypercall(v, __HYPERVISOR_mmuext_op, {
        uops: [{ cmd: 1, arg1: { mfn: m } }],
        count: 1,
        foreigndom: DOMID_SELF,
      });
    }
    // a and b map each other as linear L2s would, if allowed; here a -> b only (b -> a is refused).
    expect(
      w.hv.hypercall(v, __HYPERVISOR_mmu_update, {
        ureqs: [{ ptr: a * 4096, val: b * 4096 + 1 }],
        count: 1,
        foreigndom: DOMID_SELF,
      }),
    ).toBe(0);
    w.hv.destroyDomain(g.d);
    expect(w.hv.frames.framesOf(g.d.domid)).toEqual([]);
    expect(g.d.state).toBe("dead");
    assertFrameInvariants(w.hv);
  });

  it("keeps a frame another domain still maps until it lets go", () => {
    const w = boot();
    const dom0 = guest(w, { domid: 0 });
    const domu = guest(w, { domid: 5, nrPages: 1100 });
    const theirs = spare(domu, 0);
    const va = dom0.b.vEnd + 8 * 4096;
    const v0 = dom0.d.vcpus[0];
    expect(w.hv.hypercall(v0, 22, { va, val: theirs * 4096 + 3, flags: 0, domid: 5 })).toBe(0);
    w.hv.destroyDomain(domu.d);
    expect(domu.d.state).toBe("dying");
    expect(w.hv.frames.framesOf(5)).toEqual([theirs]);
    assertFrameInvariants(w.hv);
    // A pin on a dying domain's frame is dropped at once (Xen races domain_relinquish_resources).
    const pin = {
      uops: [{ cmd: MMUEXT_PIN_L1_TABLE, arg1: { mfn: theirs } }],
      count: 1,
      foreigndom: 5,
    };
    expect(w.hv.hypercall(v0, __HYPERVISOR_mmuext_op, pin)).toBe(-22); // in use as writable: not an L1
    expect(
      w.hv.hypercall(v0, 22, { va, val: theirs * 4096 + 1, flags: 0, domid: 5 }), // read-only now
    ).toBe(0);
    expect(w.hv.hypercall(v0, __HYPERVISOR_mmuext_op, pin)).toBe(0);
    expect(w.hv.frames.isPinned(theirs)).toBe(false);
    assertFrameInvariants(w.hv);
    expect(w.hv.hypercall(v0, __HYPERVISOR_update_va_mapping, { va, val: 0, flags: 0 })).toBe(0);
    expect(domu.d.state).toBe("dead");
    assertFrameInvariants(w.hv);
  });
});
