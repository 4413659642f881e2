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
  EXIT_REASON_EPT_MISCONFIG,
  EXIT_REASON_EPT_VIOLATION,
  nptMmu,
  VMX_EPT_EXTENT_GLOBAL,
  VMX_EPT_WRITABLE_MASK,
} from "../src/index";
import { boot, GuestMem, GuestTables, NX_HI, P, PRW, RW, US } from "./helpers";

function setup(options = {}) {
  const w = boot(options);
  const mem = new GuestMem(w);
  const t = new GuestTables(mem);
  const v = mem.d.vcpus[0];
  v.cr3Mfn = t.cr3;
  return { w, mem, t, v };
}

describe("EPT violations", () => {
  it("back each guest-physical page on first touch and count the exits", () => {
    const { w, mem, t, v } = setup();
    const data = mem.alloc();
    t.map(0x3000, data);
    expect(w.npt.eptRoot(mem.d)).toBe(-1);
    expect(w.npt.translate(v, 0x3000, 0)).toBe(data * 4096);
    // The four guest tables and the data page: five violations, five 4 KiB mappings.
    expect(w.npt.exitCount(EXIT_REASON_EPT_VIOLATION)).toBe(5);
    expect(w.npt.counts.backed4k).toBe(5);
    expect(w.npt.eptRoot(mem.d)).toBeGreaterThan(0);
    expect(w.npt.counts.nestedTableFrames).toBe(4);
    expect(w.hv.frames.ownerOf(w.npt.eptRoot(mem.d))).toBe(0x7ff2);
    expect(w.npt.nestedMapping(mem.d, data)).toEqual({ mfn: data, pageSize: "4K" });
    expect(w.npt.nestedMapping(mem.d, t.cr3)).toEqual({ mfn: t.cr3, pageSize: "4K" });
    expect(w.hv.stats.read("npt-mmu", "exit_EPT_VIOLATION")).toBe(5);
    expect(w.hv.stats.read("npt-mmu", "backed_4k")).toBe(5);
    // A neighbour in the same tables: one more violation, for its data page only.
    const data2 = mem.alloc();
    t.map(0x4000, data2);
    expect(w.npt.translate(v, 0x4000, 0)).toBe(data2 * 4096);
    expect(w.npt.exitCount(EXIT_REASON_EPT_VIOLATION)).toBe(6);
  });

  it("a gfn the domain does not own faults to the guest, then exits as EPT_MISCONFIG", () => {
    const { w, mem, t, v } = setup();
    const other = w.hv.createDomain({ maxVcpus: 1, maxPages: 4 });
    const foreign = w.hv.allocDomainPages(other, 0);
    t.map(0x9000, foreign);
    expect(w.npt.translate(v, 0x9000, PFEC_write_access)).toBe(-1);
    expect(w.npt.fault).toMatchObject({
      va: 0x9000,
      errorCode: PFEC_page_present | PFEC_reserved_bit | PFEC_write_access,
      gpa: foreign * 4096,
      exitReason: EXIT_REASON_EPT_VIOLATION,
    });
    expect(w.npt.counts.unbackedAccesses).toBe(1);
    expect(w.npt.nestedMapping(mem.d, foreign)).toBeNull();
    const mis = w.npt.exitCount(EXIT_REASON_EPT_MISCONFIG);
    expect(w.npt.translate(v, 0x9000, 0)).toBe(-1);
    expect(w.npt.exitCount(EXIT_REASON_EPT_MISCONFIG)).toBe(mis + 1);
    expect(w.npt.fault.exitReason).toBe(EXIT_REASON_EPT_MISCONFIG);
  });

  it("a marked gfn that the domain owns later is backed on its EPT_MISCONFIG exit", () => {
    const { w, mem, t, v } = setup();
    const free = w.hv.machine.frames.allocFrame();
    w.hv.machine.frames.freeFrame(free);
    t.map(0xa000, free);
    expect(w.npt.translate(v, 0xa000, 0)).toBe(-1);
    w.hv.frames.assign(free, mem.d.domid);
    expect(w.npt.translate(v, 0xa000, 0)).toBe(free * 4096);
    expect(w.npt.exitCount(EXIT_REASON_EPT_MISCONFIG)).toBe(1);
  });

  it("a gfn beyond RAM gets KVM's MMIO marker too (a device window), so it then exits as a misconfig", () => {
    const { w, t, v } = setup();
    t.map(0xb000, 2 ** 30);
    expect(w.npt.translate(v, 0xb000, 0)).toBe(-1);
    expect(w.npt.fault.exitReason).toBe(EXIT_REASON_EPT_VIOLATION);
    expect(w.npt.fault.gpa).toBe(2 ** 30 * 4096);
    expect(w.npt.translate(v, 0xb000, 0)).toBe(-1);
    expect(w.npt.fault.exitReason).toBe(EXIT_REASON_EPT_MISCONFIG);
    expect(w.npt.exitCount(EXIT_REASON_EPT_MISCONFIG)).toBe(1);
  });

  it("a misconfigured nested entry the host did not make is an EPT_MISCONFIG exit and a fault", () => {
    const { w, mem, t, v } = setup({ nestedTlbEntries: 0, nestedPwcEntries: 0, tlb: false });
    const data = mem.alloc();
    t.map(0xc000, data);
    w.npt.translate(v, 0xc000, 0);
    // Corrupt the root's first entry: writable without readable.
    const root = w.npt.eptRoot(mem.d);
    w.ram.write64(root * 4096, (w.ram.read64lo(root * 4096) & ~7) | VMX_EPT_WRITABLE_MASK, 0);
    expect(w.npt.translate(v, 0xc000, 0)).toBe(-1);
    expect(w.npt.fault.exitReason).toBe(EXIT_REASON_EPT_MISCONFIG);
  });

  it("a nested leaf whose frame is 2^32 or more is an EPT_MISCONFIG exit and a fault, for a table and for the data page", () => {
    for (const options of [
      { nestedTlbEntries: 0, nestedPwcEntries: 0, tlb: false as const },
      { tlb: false as const },
      {},
    ]) {
      for (const target of ["table", "data"] as const) {
        const { w, mem, t, v } = setup(options);
        const data = mem.alloc();
        t.map(0xc000, data);
        expect(w.npt.translate(v, 0xc000, 0)).toBe(data * 4096);
        // The level-1 EPT entry of the gfn: the guest's level-1 table, or the data page.
        const gfn = target === "data" ? data : w.ram.read64lo(t.cr3 * 4096) >>> 12;
        let table = w.npt.eptRoot(mem.d);
        for (let L = 4; L > 1; L--) {
          const a = table * 4096 + (Math.floor(gfn / 512 ** (L - 1)) % 512) * 8;
          table = w.ram.read64lo(a) >>> 12;
        }
        const leaf = table * 4096 + (gfn % 512) * 8;
        w.ram.write64(leaf, w.ram.read64lo(leaf), 0x1000);
        w.npt.invept(VMX_EPT_EXTENT_GLOBAL);
        const mis = w.npt.exitCount(EXIT_REASON_EPT_MISCONFIG);
        const refs = w.npt.counts.nestedRefs;
        expect(w.npt.translate(v, 0xc000, 0)).toBe(-1);
        expect(w.npt.fault.exitReason).toBe(EXIT_REASON_EPT_MISCONFIG);
        expect(w.npt.fault.gpa).toBe(gfn * 4096);
        expect(w.npt.exitCount(EXIT_REASON_EPT_MISCONFIG)).toBe(mis + 1);
        // Every nested level up to the bad leaf was read (the root's gfn first).
        expect(w.npt.counts.nestedRefs).toBeGreaterThan(refs + 3);
      }
    }
  });

  it("a gfn of 2^32 or more is marked at its own nested slot (gfn's high bits index the walk)", () => {
    for (const options of [{ nestedTlbEntries: 0, nestedPwcEntries: 0, tlb: false as const }, {}]) {
      const { w, mem, t, v } = setup(options);
      const low = mem.alloc();
      t.map(0x3000, low);
      expect(w.npt.translate(v, 0x3000, 0)).toBe(low * 4096);
      // Same low 32 bits as `low`, so a walk that dropped the high bits would find low's leaf.
      const high = 2 ** 32 * 3 + low;
      t.map(0x5000, high);
      const mis = w.npt.exitCount(EXIT_REASON_EPT_MISCONFIG);
      expect(w.npt.translate(v, 0x5000, 0)).toBe(-1);
      expect(w.npt.fault.gpa).toBe(high * 4096);
      expect(w.npt.fault.exitReason).toBe(EXIT_REASON_EPT_VIOLATION);
      // Marked with KVM's MMIO value: the next access exits as a misconfiguration.
      expect(w.npt.translate(v, 0x5000, 0)).toBe(-1);
      expect(w.npt.fault.exitReason).toBe(EXIT_REASON_EPT_MISCONFIG);
      expect(w.npt.exitCount(EXIT_REASON_EPT_MISCONFIG)).toBe(mis + 1);
      expect(w.npt.translate(v, 0x3000, 0)).toBe(low * 4096);
    }
  });

  it("zapGfn removes a mapping, flushes with INVEPT, and the next access backs it again", () => {
    const { w, mem, t, v } = setup();
    const data = mem.alloc();
    t.map(0x3000, data);
    w.npt.translate(v, 0x3000, 0);
    const exits = w.npt.exitCount(EXIT_REASON_EPT_VIOLATION);
    const invept = w.npt.counts.invept;
    expect(w.npt.zapGfn(mem.d, data)).toBe(true);
    expect(w.npt.counts.invept).toBe(invept + 1);
    expect(w.npt.nestedMapping(mem.d, data)).toBeNull();
    expect(w.npt.zapGfn(mem.d, data)).toBe(false);
    expect(w.npt.translate(v, 0x3000, 0)).toBe(data * 4096);
    expect(w.npt.exitCount(EXIT_REASON_EPT_VIOLATION)).toBe(exits + 1);
    expect(() => w.npt.zapGfn(mem.d, -1)).toThrow(expect.objectContaining({ code: "NPT_BAD_GFN" }));
    expect(w.npt.nestedMapping(mem.d, -5)).toBeNull();
  });

  it("a zapped 2 MiB mapping is rebuilt on demand", () => {
    const w = boot({ hostPageSize: "2M" });
    const mem = new GuestMem(w, { pages: 64, order: 9 });
    const t = new GuestTables(mem);
    const data = mem.alloc();
    t.map(0x3000, data);
    const v = mem.d.vcpus[0];
    v.cr3Mfn = t.cr3;
    w.npt.translate(v, 0x3000, 0);
    expect(w.npt.nestedMapping(mem.d, data)?.pageSize).toBe("2M");
    expect(w.npt.zapGfn(mem.d, data)).toBe(true);
    expect(w.npt.nestedMapping(mem.d, t.cr3)).toBeNull(); // the whole 2 MiB page went
    expect(w.npt.translate(v, 0x3000, 0)).toBe(data * 4096);
  });

  it("domain destruction frees the nested table", () => {
    const { w, mem, t, v } = setup();
    t.map(0x3000, mem.alloc());
    w.npt.translate(v, 0x3000, 0);
    const root = w.npt.eptRoot(mem.d);
    w.hv.destroyDomain(mem.d);
    expect(w.hv.frames.ownerOf(root)).toBe(-1);
    expect(w.npt.counts.nestedTableFrames).toBe(0);
    expect(w.npt.eptRoot(mem.d)).toBe(-1);
  });

  it("a host out of frames for nested tables fails the access, counted", () => {
    const w = boot({}, 1 << 20);
    const mem = new GuestMem(w, { pages: 8 });
    const t = new GuestTables(mem);
    const data = mem.alloc();
    t.map(0x1000, data);
    const v = mem.d.vcpus[0];
    v.cr3Mfn = t.cr3;
    while (w.hv.machine.frames.allocFrame() >= 0) {
      // exhaust the machine
    }
    expect(w.npt.translate(v, 0x1000, 0)).toBe(-1);
    expect(w.npt.counts.nestedAllocFailures).toBeGreaterThan(0);
  });
});

describe("guest page faults", () => {
  it("not present, protection, reserved bits, CR3 and address checks", () => {
    const { w, mem, t, v } = setup();
    const ro = mem.alloc();
    const sup = mem.alloc();
    const nx = mem.alloc();
    t.map(0x1000, ro, P | US);
    t.map(0x2000, sup, P | RW);
    t.map(0x3000, nx, PRW, 1, NX_HI);
    const npt = w.npt;
    expect(npt.translate(v, 0x7000, PFEC_user_mode)).toBe(-1);
    expect(npt.fault).toMatchObject({ va: 0x7000, errorCode: PFEC_user_mode, exitReason: -1 });
    expect(npt.translate(v, 0x1000, 0)).toBe(ro * 4096);
    expect(npt.translate(v, 0x1000, PFEC_write_access)).toBe(-1);
    expect(npt.fault.errorCode).toBe(PFEC_page_present | PFEC_write_access);
    expect(npt.translate(v, 0x2000, PFEC_user_mode)).toBe(-1);
    expect(npt.fault.errorCode).toBe(PFEC_page_present | PFEC_user_mode);
    expect(npt.translate(v, 0x2000, PFEC_write_access)).toBe(sup * 4096);
    expect(npt.translate(v, 0x3000, PFEC_insn_fetch)).toBe(-1);
    expect(npt.fault.errorCode).toBe(PFEC_page_present | PFEC_insn_fetch);
    expect(npt.translate(v, 0x3000, 0)).toBe(nx * 4096);
    // TLB entries keep the permissions: the same faults on a hit.
    expect(npt.translate(v, 0x1000, PFEC_write_access)).toBe(-1);
    expect(npt.translate(v, 0x3000, PFEC_insn_fetch)).toBe(-1);
    expect(npt.counts.guestFaults).toBe(6);
  });

  it("reserved bits: PSE in a top-level entry, a misaligned large page", () => {
    const { w, mem, t, v } = setup();
    // PSE in the L4 entry of 0x80_0000_0000 (slot 1).
    w.ram.write64(t.cr3 * 4096 + 8, (mem.alloc() * 4096 + PRW + 0x80) >>> 0, 0);
    expect(w.npt.translate(v, 0x80_0000_0000, 0)).toBe(-1);
    expect(w.npt.fault.errorCode).toBe(PFEC_page_present | PFEC_reserved_bit);
    t.map(0x4000_0000, 514, PRW, 2); // 2 MiB leaf at a frame that is not 512-aligned (513: PAT)
    expect(w.npt.translate(v, 0x4000_0000, 0)).toBe(-1);
    expect(w.npt.fault.errorCode).toBe(PFEC_page_present | PFEC_reserved_bit);
    t.map(0x80_4000_0000, 512 * 3, PRW, 3); // 1 GiB leaf, misaligned
    expect(w.npt.translate(v, 0x80_4000_0000, 0)).toBe(-1);
    expect(w.npt.fault.errorCode & PFEC_reserved_bit).toBe(PFEC_reserved_bit);
  });

  it("no CR3, and addresses outside the guest's address space, fault", () => {
    const { w, mem } = setup();
    const v = mem.d.vcpus[1];
    expect(w.npt.translate(v, 0x1000, 0)).toBe(-1);
    v.cr3Mfn = mem.frames[0];
    for (const va of [-4096, 2 ** 48, Number.NaN, 1.5, Number.POSITIVE_INFINITY]) {
      expect(w.npt.translate(v, va, 0)).toBe(-1);
    }
  });
});

describe("guestStore", () => {
  it("stores through the nested table, backing the page on first touch", () => {
    const { w, mem, v } = setup();
    const gfn = mem.alloc();
    expect(w.npt.guestStore(v, gfn * 4096 + 16, 0xdead_beef, 0x1234)).toBe(0);
    expect(w.ram.read64lo(gfn * 4096 + 16)).toBe(0xdead_beef);
    expect(w.ram.read64hi(gfn * 4096 + 16)).toBe(0x1234);
    expect(w.npt.exitCount(EXIT_REASON_EPT_VIOLATION)).toBe(1);
    expect(w.npt.counts.guestStores).toBe(1);
  });

  it("answers -EINVAL for a bad address and -EFAULT where the domain has no RAM", () => {
    const { w, v } = setup();
    expect(w.npt.guestStore(v, 4, 0, 0)).toBe(-EINVAL);
    expect(w.npt.guestStore(v, -8, 0, 0)).toBe(-EINVAL);
    expect(w.npt.guestStore(v, Number.NaN, 0, 0)).toBe(-EINVAL);
    expect(w.npt.guestStore(v, 8, 0, 0)).toBe(-EFAULT); // frame 0 is reserved
    expect(w.npt.guestStore(v, 8, 0, 0)).toBe(-EFAULT); // and marked: EPT_MISCONFIG now
    expect(w.npt.exitCount(EXIT_REASON_EPT_MISCONFIG)).toBe(1);
  });
});

describe("options and the plugin", () => {
  it("rejects bad options with a typed error", () => {
    for (const bad of [
      { tlb: 5 },
      { nestedPwcEntries: -1 },
      { nestedTlbEntries: 1 << 20 },
      { guestLevels: 3 },
      { nestedLevels: 6 },
      { hostPageSize: "4M" },
    ]) {
      // biome-ignore lint/suspicious/noExplicitAny: testing bad input
      expect(() => boot(bad as any)).toThrow(expect.objectContaining({ code: "NPT_BAD_OPTION" }));
    }
    // biome-ignore lint/suspicious/noExplicitAny: testing bad input
    expect(() => boot(null as any)).toThrow(expect.objectContaining({ code: "NPT_BAD_OPTION" }));
    // A bad TLB shape is paging's typed error, at boot.
    expect(() => boot({ tlb: { levels: [] } })).toThrow(
      expect.objectContaining({ code: "TLB_BAD_CONFIG" }),
    );
  });

  it("fills the mmu slot and lists its stats", () => {
    const w = boot();
    expect(w.hv.slot("mmu")).toBe(w.npt);
    expect(w.npt.kind).toBe("nested");
    const desc = w.hv.describe();
    expect(desc.slots.mmu).toBe("npt-mmu");
    const names = desc.stats["npt-mmu"].map((s) => s.name);
    expect(names).toContain("exit_EPT_VIOLATION");
    expect(names).toContain("exit_CR_ACCESS");
    expect(names).toContain("nested_refs");
    expect(nptMmu().provides).toEqual(["mmu", "npt-mmu"]);
  });

  it("works on a guest with RW pages cleared at an upper level", () => {
    const { w, mem, t, v } = setup();
    const data = mem.alloc();
    t.map(0x5000, data, PRW);
    // Clear RW in the L4 entry: every page under it is read-only.
    const l4 = w.ram.read64lo(t.cr3 * 4096);
    w.ram.write64(t.cr3 * 4096, (l4 & ~RW) >>> 0, 0);
    expect(w.npt.translate(v, 0x5000, PFEC_write_access)).toBe(-1);
    expect(w.npt.translate(v, 0x5000, PFEC_user_mode)).toBe(data * 4096);
    void US;
  });

  it("write64 stores through a virtual address, and refuses faults and misaligned addresses", () => {
    const { w, mem, t, v } = setup();
    const data = mem.alloc();
    t.map(0x3000, data);
    expect(w.npt.write64(v, 0x3010, 0xabcd, 0x12)).toBe(true);
    expect(w.ram.read64(data * 4096 + 0x10)).toBe(0x12 * 2 ** 32 + 0xabcd);
    expect(w.npt.write64(v, 0x3014, 1, 2)).toBe(false);
    expect(w.npt.write64(v, 0x9000, 1, 2)).toBe(false);
    expect(w.npt.fault.va).toBe(0x9000);
  });
});
