import { EFAULT, EINVAL } from "@hyperlab/abi";
import {
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_reserved_bit,
  PFEC_user_mode,
  PFEC_write_access,
} from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import {
  EXIT_REASON_CR_ACCESS,
  EXIT_REASON_EXCEPTION_NMI,
  EXIT_REASON_INVLPG,
  shadowMmu,
} from "../src/index";
import { boot, G, GuestMem, GuestTables, NX_HI, P, PRW, RW, US } from "./helpers";

/** The in-sync model (KVM with unsync pages and write-flood detection turned off). */
const IN_SYNC = { outOfSync: false, writeFlooding: false };

function setup(options = {}) {
  const w = boot(options);
  const mem = new GuestMem(w);
  const v = mem.d.vcpus[0];
  const t = new GuestTables(mem, v);
  v.cr3Mfn = t.cr3;
  return { w, mem, t, v, sh: w.sh };
}

const refs = (sh: { counts: { shadowRefs: number } }, fn: () => void) => {
  const before = sh.counts.shadowRefs;
  fn();
  return sh.counts.shadowRefs - before;
};

describe("shadow faults and the hardware walk", () => {
  it("a first access exits, builds the shadow path and write-protects the guest tables", () => {
    const { w, mem, t, v, sh } = setup();
    const data = mem.alloc();
    t.map(0x40_0000, data);
    expect(sh.translate(v, 0x40_0123, 0)).toBe(data * 4096 + 0x123);
    expect(sh.exitCount(EXIT_REASON_CR_ACCESS)).toBe(1); // the CR3 load
    expect(sh.exitCount(EXIT_REASON_EXCEPTION_NMI)).toBe(1); // the shadow page fault
    expect(sh.counts.shadowPagesCreated).toBe(4);
    expect(sh.shadowPageCount(mem.d)).toBe(4);
    expect(sh.isWriteProtected(t.cr3)).toBe(true);
    expect(sh.isWriteProtected(data)).toBe(false);
    expect(sh.counts.hostGuestRefs).toBe(4);
    expect(w.hv.frames.ownerOf(sh.shadowRoot(v))).toBe(0x7ff2);
    expect(w.hv.stats.read("shadow-mmu", "exit_EXCEPTION_NMI")).toBe(1);
    // The TLB-hit path makes no references; after INVLPG the hardware walks 4 shadow levels.
    expect(refs(sh, () => sh.translate(v, 0x40_0000, 0))).toBe(0);
    sh.flushOne(v, 0x40_0000);
    expect(sh.exitCount(EXIT_REASON_INVLPG)).toBe(1);
    expect(refs(sh, () => expect(sh.translate(v, 0x40_0000, 0)).toBe(data * 4096))).toBe(4);
    expect(sh.exitCount(EXIT_REASON_EXCEPTION_NMI)).toBe(1);
  });

  it("a read maps the page read-only until the guest leaf is dirty; a write sets D", () => {
    const { w, mem, t, v, sh } = setup();
    const data = mem.alloc();
    t.map(0x1000, data);
    sh.translate(v, 0x1000, 0);
    expect(sh.shadowLookup(v, 0x1000)?.writable).toBe(false);
    const exits = sh.exitCount(EXIT_REASON_EXCEPTION_NMI);
    expect(sh.translate(v, 0x1000, PFEC_write_access)).toBe(data * 4096);
    expect(sh.exitCount(EXIT_REASON_EXCEPTION_NMI)).toBe(exits + 1);
    expect(sh.shadowLookup(v, 0x1000)?.writable).toBe(true);
    expect(w.ram.read64lo(t.slot(0x1000, 1)) & 0x60).toBe(0x60);
  });

  it("guest faults are injected with the guest's error code", () => {
    const { mem, t, v, sh } = setup();
    t.map(0x1000, mem.alloc(), P | US);
    t.map(0x2000, mem.alloc(), P | RW);
    t.map(0x3000, mem.alloc(), PRW, 1, NX_HI);
    expect(sh.translate(v, 0x9000, PFEC_user_mode)).toBe(-1);
    expect(sh.fault).toMatchObject({
      va: 0x9000,
      errorCode: PFEC_user_mode,
      exitReason: EXIT_REASON_EXCEPTION_NMI,
    });
    expect(sh.translate(v, 0x1000, PFEC_write_access)).toBe(-1);
    expect(sh.fault.errorCode).toBe(PFEC_page_present | PFEC_write_access);
    expect(sh.translate(v, 0x2000, PFEC_user_mode)).toBe(-1);
    expect(sh.fault.errorCode).toBe(PFEC_page_present | PFEC_user_mode);
    expect(sh.translate(v, 0x3000, PFEC_insn_fetch)).toBe(-1);
    expect(sh.fault.errorCode).toBe(PFEC_page_present | PFEC_insn_fetch);
    expect(sh.translate(v, 0x3000, 0)).toBeGreaterThan(0);
    // The same answers from the TLB and the shadow after a first success.
    expect(sh.translate(v, 0x3000, PFEC_insn_fetch)).toBe(-1);
    expect(sh.counts.injectedFaults).toBe(5);
  });

  it("reserved bits and frames the domain does not own fault with RSVD", () => {
    const { w, mem, t, v, sh } = setup();
    t.store(t.cr3 * 4096 + 8, (mem.alloc() * 4096 + PRW + 0x80) >>> 0, 0); // PSE in an L4 entry
    expect(sh.translate(v, 0x80_0000_0000, 0)).toBe(-1);
    expect(sh.fault.errorCode).toBe(PFEC_page_present | PFEC_reserved_bit);
    t.map(0x4000_0000, 514, PRW, 2); // misaligned 2 MiB page (513 would be PAT)
    expect(sh.translate(v, 0x4000_0000, 0)).toBe(-1);
    expect(sh.fault.errorCode).toBe(PFEC_page_present | PFEC_reserved_bit);
    const other = w.hv.createDomain({ maxVcpus: 1, maxPages: 4 });
    const foreign = w.hv.allocDomainPages(other, 0);
    t.map(0x5000, foreign);
    expect(sh.translate(v, 0x5000, 0)).toBe(-1);
    expect(sh.fault.errorCode).toBe(PFEC_page_present | PFEC_reserved_bit);
    // A table frame the domain does not own.
    t.store(t.slot(0x60_0000, 2), (foreign * 4096 + PRW) >>> 0, 0);
    expect(sh.translate(v, 0x60_0000, 0)).toBe(-1);
    expect(sh.counts.unbackedAccesses).toBe(2);
    t.map(0x7000, 2 ** 31);
    expect(sh.translate(v, 0x7000, 0)).toBe(-1);
  });

  it("a CR3 the domain does not own, and addresses outside the address space, fault", () => {
    const { sh, mem } = setup();
    const v = mem.d.vcpus[1];
    v.cr3Mfn = 0;
    expect(sh.translate(v, 0x1000, 0)).toBe(-1);
    expect(sh.shadowRoot(v)).toBe(-1);
    v.cr3Mfn = mem.frames[0];
    for (const va of [-4096, 2 ** 48, Number.NaN, 1.5]) expect(sh.translate(v, va, 0)).toBe(-1);
  });

  it("a guest large page is shadowed by direct pages that protect nothing", () => {
    const w = boot();
    const mem = new GuestMem(w, { pages: 600, order: 9 });
    const v = mem.d.vcpus[0];
    const t = new GuestTables(mem, v);
    v.cr3Mfn = t.cr3;
    const base = mem.frames[512];
    t.map(0x4000_0000, base, PRW, 2);
    for (const off of [0, 0x1000, 0x1f_f000]) {
      expect(w.sh.translate(v, 0x4000_0000 + off + 5, 0)).toBe(base * 4096 + off + 5);
    }
    expect(w.sh.isWriteProtected(base)).toBe(false);
    expect(w.sh.translate(v, 0x4000_1000, PFEC_write_access)).toBe((base + 1) * 4096);
  });
});

describe("write-protected guest page tables", () => {
  it("a guest PTE store traps, is emulated, and the shadow follows it without INVLPG", () => {
    const { mem, t, v, sh } = setup(IN_SYNC);
    const a = mem.alloc();
    const b = mem.alloc();
    t.map(0x1000, a);
    expect(sh.translate(v, 0x1000, 0)).toBe(a * 4096);
    const exits = sh.exitCount(EXIT_REASON_EXCEPTION_NMI);
    t.map(0x1000, b);
    expect(sh.counts.emulatedWrites).toBe(1);
    expect(sh.exitCount(EXIT_REASON_EXCEPTION_NMI)).toBe(exits + 1);
    expect(sh.counts.sptesZapped).toBe(1);
    expect(sh.translate(v, 0x1000, 0)).toBe(b * 4096);
    t.unmap(0x1000);
    expect(sh.translate(v, 0x1000, 0)).toBe(-1);
    expect(sh.fault.errorCode).toBe(0);
  });

  it("a PTE store by one vCPU flushes the other vCPUs' TLBs (the remote flush)", () => {
    const { mem, t, v, sh } = setup(IN_SYNC);
    const v1 = mem.d.vcpus[1];
    v1.cr3Mfn = t.cr3;
    const a = mem.alloc();
    const b = mem.alloc();
    t.map(0x1000, a);
    expect(sh.translate(v1, 0x1000, 0)).toBe(a * 4096);
    expect(refs(sh, () => sh.translate(v1, 0x1000, 0))).toBe(0); // cached in v1's TLB
    t.map(0x1000, b); // stored by vCPU 0
    expect(sh.translate(v1, 0x1000, 0)).toBe(b * 4096);
    expect(sh.translate(v, 0x1000, 0)).toBe(b * 4096);
  });

  it("a store to a frame that is not a page table is a plain store", () => {
    const { w, mem, v, sh } = setup();
    const data = mem.alloc();
    expect(sh.guestStore(v, data * 4096 + 8, 7, 9)).toBe(0);
    expect(w.ram.read64(data * 4096 + 8)).toBe(9 * 2 ** 32 + 7);
    expect(sh.counts.plainStores).toBeGreaterThan(0);
  });

  it("changing an upper-level entry unlinks the subtree it pointed to", () => {
    const { mem, t, v, sh } = setup();
    const a = mem.alloc();
    t.map(0x20_1000, a);
    sh.translate(v, 0x20_1000, 0);
    // Point the L2 entry at a fresh L1 table mapping another frame.
    const l1 = mem.alloc();
    const b = mem.alloc();
    t.store(l1 * 4096 + 8, (b * 4096 + PRW) >>> 0, 0);
    t.store(t.slot(0x20_1000, 2), (l1 * 4096 + PRW) >>> 0, 0);
    expect(sh.translate(v, 0x20_1000, 0)).toBe(b * 4096);
    expect(sh.isWriteProtected(l1)).toBe(true);
  });

  it("a data page that becomes a page table loses write access; writing it as data unprotects it", () => {
    const { mem, t, v, sh } = setup(IN_SYNC);
    const x = mem.alloc();
    t.map(0x1000, x);
    expect(sh.translate(v, 0x1000, PFEC_write_access)).toBe(x * 4096);
    expect(sh.shadowLookup(v, 0x1000)?.writable).toBe(true);
    // The guest now uses x as the L1 table of 0x4000_0000.
    const y = mem.alloc();
    t.store(x * 4096, (y * 4096 + PRW) >>> 0, 0);
    t.store(t.slot(0x4000_0000, 2), (x * 4096 + PRW) >>> 0, 0);
    expect(sh.translate(v, 0x4000_0000, 0)).toBe(y * 4096);
    expect(sh.isWriteProtected(x)).toBe(true);
    expect(sh.shadowLookup(v, 0x1000)?.writable).toBe(false);
    const faults = sh.exitCount(EXIT_REASON_EXCEPTION_NMI);
    expect(sh.translate(v, 0x1000, PFEC_write_access)).toBe(x * 4096);
    expect(sh.exitCount(EXIT_REASON_EXCEPTION_NMI)).toBe(faults + 1);
    expect(sh.counts.unprotects).toBe(1);
    expect(sh.isWriteProtected(x)).toBe(false);
  });

  it("a write through a mapping of a table the address space needs asks for emulation", () => {
    const { t, v, sh } = setup();
    t.map(0x1000, t.cr3); // the L4 table, mapped at 0x1000
    expect(sh.translate(v, 0x1000, 0)).toBe(t.cr3 * 4096);
    expect(sh.translate(v, 0x1000, PFEC_write_access)).toBe(-1);
    expect(sh.fault).toMatchObject({
      emulate: true,
      errorCode: PFEC_page_present | PFEC_write_access,
    });
    expect(sh.guestStore(v, t.cr3 * 4096 + 8, 0, 0)).toBe(0);
    expect(sh.translate(v, 0x1000, 0)).toBe(t.cr3 * 4096);
  });

  it("write64 through a mapping of a live table is emulated and propagated", () => {
    const { w, mem, t, v, sh } = setup(IN_SYNC);
    const a = mem.alloc();
    const b = mem.alloc();
    t.map(0x5000, a);
    expect(sh.translate(v, 0x5000, 0)).toBe(a * 4096);
    const l1 = Math.floor(t.slot(0x5000, 1) / 4096);
    t.map(0x1000, l1); // the L1 table, mapped at 0x1000 (the guest's direct map, in effect)
    const emulated = sh.counts.emulatedWrites;
    expect(sh.write64(v, 0x1000 + 5 * 8, (b * 4096 + PRW) >>> 0, 0)).toBe(true);
    expect(sh.counts.emulatedWrites).toBe(emulated + 1);
    expect(sh.translate(v, 0x5000, 0)).toBe(b * 4096);
    // A data page is a plain store; faults and misaligned addresses are refused.
    expect(sh.write64(v, 0x5008, 7, 0)).toBe(true);
    expect(w.ram.read64lo(b * 4096 + 8)).toBe(7);
    expect(sh.write64(v, 0x5004, 7, 0)).toBe(false);
    expect(sh.write64(v, 0x9000, 7, 0)).toBe(false);
    expect(sh.fault.emulate).toBe(false);
  });

  it("guestStore answers -EINVAL and -EFAULT for bad addresses", () => {
    const { w, v, sh } = setup();
    expect(sh.guestStore(v, 4, 0, 0)).toBe(-EINVAL);
    expect(sh.guestStore(v, -8, 0, 0)).toBe(-EINVAL);
    expect(sh.guestStore(v, Number.NaN, 0, 0)).toBe(-EINVAL);
    expect(sh.guestStore(v, 8, 0, 0)).toBe(-EFAULT);
    expect(sh.guestStore(v, w.ram.bytes + 8, 0, 0)).toBe(-EFAULT);
  });
});

describe("CR3 switches and INVLPG", () => {
  it("switching address spaces exits, keeps shadow roots cached, and flushes the TLB", () => {
    const { mem, t, v, sh } = setup();
    const t2 = new GuestTables(mem, v);
    const a = mem.alloc();
    const b = mem.alloc();
    t.map(0x1000, a);
    t2.map(0x1000, b);
    expect(sh.translate(v, 0x1000, 0)).toBe(a * 4096);
    sh.writeCr3(v, t2.cr3);
    expect(sh.translate(v, 0x1000, 0)).toBe(b * 4096);
    const created = sh.counts.shadowPagesCreated;
    v.cr3Mfn = t.cr3; // a MOV to CR3 noticed at the next translation
    expect(sh.translate(v, 0x1000, 0)).toBe(a * 4096);
    expect(sh.counts.shadowPagesCreated).toBe(created);
    expect(sh.exitCount(EXIT_REASON_CR_ACCESS)).toBe(3);
    expect(sh.counts.rootLoads).toBe(3);
  });

  it("a CR3 reload keeps global entries; INVLPG drops them", () => {
    const { mem, t, v, sh } = setup();
    t.map(0x1000, mem.alloc());
    t.map(0x2000, mem.alloc(), PRW | G);
    sh.translate(v, 0x1000, 0);
    sh.translate(v, 0x2000, 0);
    sh.flushLocal(v);
    expect(refs(sh, () => sh.translate(v, 0x2000, 0))).toBe(0);
    expect(refs(sh, () => sh.translate(v, 0x1000, 0))).toBe(4);
    sh.flushOne(v, 0x2000);
    expect(refs(sh, () => sh.translate(v, 0x2000, 0))).toBe(4);
    sh.flushOne(v, Number.NaN);
  });
});

describe("limits, teardown, options", () => {
  it("past maxShadowPages the domain's shadows are reset and translation goes on", () => {
    const { mem, t, v, sh } = setup({ maxShadowPages: 8 });
    const frames = [0, 1, 2, 3].map(() => mem.alloc());
    for (const [i, f] of frames.entries()) t.map(i * 2 ** 30, f);
    for (let round = 0; round < 2; round++) {
      for (const [i, f] of frames.entries()) expect(sh.translate(v, i * 2 ** 30, 0)).toBe(f * 4096);
    }
    expect(sh.counts.shadowResets).toBeGreaterThan(0);
    expect(sh.shadowPageCount(mem.d)).toBeLessThanOrEqual(8);
  });

  it("a host out of frames faults the access and counts it", () => {
    const w = boot({}, 1 << 20);
    const mem = new GuestMem(w, { pages: 8 });
    const v = mem.d.vcpus[0];
    const t = new GuestTables(mem, v);
    v.cr3Mfn = t.cr3;
    t.map(0x1000, mem.alloc());
    while (w.hv.machine.frames.allocFrame() >= 0) {
      // exhaust the machine
    }
    expect(w.sh.translate(v, 0x1000, 0)).toBe(-1);
    expect(w.sh.counts.allocFailures).toBeGreaterThan(0);
  });

  it("destroying the domain frees its shadow pages", () => {
    const { w, mem, t, v, sh } = setup();
    t.map(0x1000, mem.alloc());
    sh.translate(v, 0x1000, PFEC_write_access);
    const root = sh.shadowRoot(v);
    w.hv.destroyDomain(mem.d);
    expect(w.hv.frames.ownerOf(root)).toBe(-1);
    expect(sh.counts.shadowPages).toBe(0);
    expect(sh.shadowPageCount(mem.d)).toBe(0);
    expect(sh.isWriteProtected(t.cr3)).toBe(false);
  });

  it("rejects bad options with a typed error, and fills the mmu slot", () => {
    for (const bad of [{ tlb: 5 }, { maxShadowPages: 2 }, null]) {
      // biome-ignore lint/suspicious/noExplicitAny: testing bad input
      expect(() => boot(bad as any)).toThrow(
        expect.objectContaining({ code: "SHADOW_BAD_OPTION" }),
      );
    }
    expect(() => boot({ tlb: { levels: [] } })).toThrow(
      expect.objectContaining({ code: "TLB_BAD_CONFIG" }),
    );
    const w = boot({ tlb: false });
    expect(w.sh.tlbOf(w.hv.createDomain({ maxVcpus: 1, maxPages: 1 }).vcpus[0])).toBeNull();
    expect(w.hv.slot("mmu")).toBe(w.sh);
    expect(w.sh.kind).toBe("shadow");
    expect(w.hv.describe().slots.mmu).toBe("shadow-mmu");
    expect(shadowMmu().provides).toEqual(["mmu", "shadow-mmu"]);
    expect(w.sh.isWriteProtected(-1)).toBe(false);
    void RW;
  });
});
