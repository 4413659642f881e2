import { _PAGE_ACCESSED, _PAGE_DIRTY } from "@hyperlab/abi";
import { Ram } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import {
  ACCESS_FETCH,
  ACCESS_READ,
  ACCESS_USER,
  ACCESS_WRITE,
  createPagingMode,
  FAULT_NONCANONICAL,
  FAULT_NONE,
  FAULT_NOT_PRESENT,
  FAULT_PROTECTION,
  FAULT_RESERVED,
  PAGING_4LEVEL,
  PageWalkCache,
  PERM_DIRTY,
  PERM_GLOBAL,
  PERM_NX,
  PERM_RW,
  PERM_USER,
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_reserved_bit,
  PFEC_user_mode,
  PFEC_write_access,
  pteIndex,
  pwcStats,
  STEP_LEAF,
  STEP_TABLE,
  WalkResult,
  walk,
  walkBegin,
  walkEntryMfn,
  walkFinish,
  walkStep,
} from "../src/index";
import { TableBuilder } from "./helpers";

const VA = 0x7f12_3456_7000; // L4 254, L3 72, L2 418, L1 359
const DATA = 0x300;
const P = 1n;
const RW = 2n;
const US = 4n;
const NX = 1n << 63n;

function setup(levels: 4 | 5 = 4) {
  const ram = new Ram({ bytes: 16 * 2 ** 20 });
  const b = new TableBuilder(ram, 0x10, levels);
  b.map4k(VA, DATA);
  return { ram, b, out: new WalkResult() };
}

/** Rewrites the entry for VA at `level` with `fn(old)`. */
function patch(b: TableBuilder, level: number, fn: (e: bigint) => bigint): void {
  const ma = b.entryAddr(VA, level);
  b.ram.writeU64(ma, fn(b.ram.readU64(ma)));
}

describe("walk: translations", () => {
  it("translates a 4 KiB page in 4 reads and sets A on every level, once", () => {
    const { ram, b, out } = setup();
    expect(walk(ram, b.root, VA + 0x123, ACCESS_READ, 4, out)).toBe(true);
    expect(out.ok).toBe(true);
    expect(out.fault).toBe(FAULT_NONE);
    expect(out.maddr).toBe(DATA * 4096 + 0x123);
    expect(out.pageMfn).toBe(DATA);
    expect(out.pageShift).toBe(12);
    expect(out.leafLevel).toBe(1);
    expect(out.perms).toBe(PERM_RW | PERM_USER);
    expect(out.reads).toBe(4);
    expect(out.writes).toBe(4);
    for (let level = 1; level <= 4; level++) {
      const e = ram.readU64(b.entryAddr(VA, level));
      expect(e & BigInt(_PAGE_ACCESSED)).not.toBe(0n);
      expect(e & BigInt(_PAGE_DIRTY)).toBe(0n); // a read sets no D
      expect(walkEntryMfn(out, level)).toBe(Number(e >> 12n));
    }
    walk(ram, b.root, VA, ACCESS_READ, 4, out);
    expect(out.reads).toBe(4);
    expect(out.writes).toBe(0);
    expect(out.totalWalks).toBe(2);
    expect(out.totalReads).toBe(8);
    expect(out.totalWrites).toBe(4);
    expect(out.totalFaults).toBe(0);
    out.resetTotals();
    expect(out.totalWalks + out.totalReads + out.totalWrites).toBe(0);
  });

  it("sets D on the leaf of a write only, with A, in one write", () => {
    const { ram, b, out } = setup();
    walk(ram, b.root, VA, ACCESS_READ, 4, out);
    expect(walk(ram, b.root, VA, ACCESS_WRITE, 4, out)).toBe(true);
    expect(out.writes).toBe(1);
    expect(out.perms & PERM_DIRTY).toBe(PERM_DIRTY);
    expect(ram.readU64(b.entryAddr(VA, 1)) & 0x60n).toBe(0x60n);
    expect(ram.readU64(b.entryAddr(VA, 2)) & BigInt(_PAGE_DIRTY)).toBe(0n);
    expect(out.leafLo & 0x60).toBe(0x60);
    const fresh = setup();
    walk(fresh.ram, fresh.b.root, VA, ACCESS_WRITE | ACCESS_USER, 4, fresh.out);
    expect(fresh.out.writes).toBe(4); // A on three tables, A|D on the leaf together
  });

  it("translates 2 MiB and 1 GiB leaves (PAT bit 12 is not part of the frame)", () => {
    const ram = new Ram({ bytes: 16 * 2 ** 20 });
    const b = new TableBuilder(ram, 0x10);
    const va2m = 0x4000_0000 + 5 * 0x20_0000;
    b.set(va2m, 2, (0x400n << 12n) | 0x1000n | 0x80n | 0x7n); // 2 MiB at mfn 0x400, PAT
    const va1g = 0x80_0000_0000;
    b.set(va1g, 3, (0x40000n << 12n) | 0x80n | 0x3n | 0x100n); // 1 GiB, supervisor, global
    const out = new WalkResult();
    expect(walk(ram, b.root, va2m + 0x12_3456, ACCESS_READ, 4, out)).toBe(true);
    expect(out.pageShift).toBe(21);
    expect(out.leafLevel).toBe(2);
    expect(out.pageMfn).toBe(0x400);
    expect(out.maddr).toBe(0x400 * 4096 + 0x12_3456);
    expect(out.reads).toBe(3);
    expect(walk(ram, b.root, va1g + 0x3456_789a, ACCESS_WRITE, 4, out)).toBe(true);
    expect(out.pageShift).toBe(30);
    expect(out.leafLevel).toBe(3);
    expect(out.pageMfn).toBe(0x40000);
    expect(out.maddr).toBe(0x4000_0000 + 0x3456_789a);
    expect(out.reads).toBe(2);
    expect(out.perms).toBe(PERM_RW | PERM_DIRTY | PERM_GLOBAL);
    expect(ram.readU64(b.entryAddr(va1g, 3)) & 0x60n).toBe(0x60n);
  });

  it("walks 5 levels with 5 reads", () => {
    const { ram, b, out } = setup(5);
    const mode = createPagingMode({ levels: 5 });
    expect(walk(ram, b.root, VA + 8, ACCESS_READ, mode, out)).toBe(true);
    expect(out.reads).toBe(5);
    expect(out.maddr).toBe(DATA * 4096 + 8);
    const hi = 0x1_2345_6789_a000; // above 2^48: PML5 index 1
    b.map4k(hi, 0x301);
    expect(walk(ram, b.root, hi, ACCESS_READ, 5, out)).toBe(true);
    expect(out.maddr).toBe(0x301 * 4096);
    expect(pteIndex(hi, 5)).toBe(1);
  });

  it("reports the XD, G and effective rights of a translation", () => {
    const { ram, b, out } = setup();
    patch(b, 3, (e) => e & ~RW);
    patch(b, 2, (e) => e | NX);
    patch(b, 1, (e) => e | 0x100n);
    expect(walk(ram, b.root, VA, ACCESS_READ | ACCESS_USER, 4, out)).toBe(true);
    expect(out.perms).toBe(PERM_USER | PERM_NX | PERM_GLOBAL);
  });
});

describe("walk: faults", () => {
  it("faults on a not-present entry at each level, with the access in the error code", () => {
    for (let level = 4; level >= 1; level--) {
      const { ram, b, out } = setup();
      patch(b, level, (e) => e & ~P);
      const access = ACCESS_WRITE | ACCESS_USER;
      expect(walk(ram, b.root, VA, access, 4, out)).toBe(false);
      expect(out.fault).toBe(FAULT_NOT_PRESENT);
      expect(out.faultLevel).toBe(level);
      expect(out.errorCode).toBe(PFEC_write_access | PFEC_user_mode);
      expect(out.reads).toBe(5 - level);
      expect(out.writes).toBe(0);
      expect(out.totalFaults).toBe(1);
      // A faulting walk sets no A flag.
      expect(ram.readU64(b.entryAddr(VA, 4)) & BigInt(_PAGE_ACCESSED)).toBe(0n);
    }
  });

  it("faults on a reserved bit at each level with P and RSVD", () => {
    for (let level = 4; level >= 1; level--) {
      const { ram, b, out } = setup();
      patch(b, level, (e) => e | (1n << 50n)); // above MAXPHYADDR 46
      expect(walk(ram, b.root, VA, ACCESS_READ, 4, out)).toBe(false);
      expect(out.fault).toBe(FAULT_RESERVED);
      expect(out.faultLevel).toBe(level);
      expect(out.errorCode).toBe(PFEC_page_present | PFEC_reserved_bit);
      expect(out.writes).toBe(0);
    }
    // PS in a PML4E is reserved.
    const { ram, b, out } = setup();
    patch(b, 4, (e) => e | 0x80n);
    expect(walk(ram, b.root, VA, ACCESS_FETCH, 4, out)).toBe(false);
    expect(out.errorCode).toBe(PFEC_page_present | PFEC_reserved_bit | PFEC_insn_fetch);
    // A not-present entry's reserved bits do not matter.
    const np = setup();
    patch(np.b, 2, () => 1n << 50n);
    walk(np.ram, np.b.root, VA, ACCESS_READ, 4, np.out);
    expect(np.out.fault).toBe(FAULT_NOT_PRESENT);
  });

  it("faults on a write to a page read-only at any one level", () => {
    for (let level = 4; level >= 1; level--) {
      const { ram, b, out } = setup();
      patch(b, level, (e) => e & ~RW);
      expect(walk(ram, b.root, VA, ACCESS_WRITE | ACCESS_USER, 4, out)).toBe(false);
      expect(out.fault).toBe(FAULT_PROTECTION);
      expect(out.faultLevel).toBe(level);
      expect(out.errorCode).toBe(PFEC_page_present | PFEC_write_access | PFEC_user_mode);
      expect(out.reads).toBe(4);
      expect(out.writes).toBe(0);
      // Supervisor writes fault too with CR0.WP (the default) and not without it.
      expect(walk(ram, b.root, VA, ACCESS_WRITE, 4, out)).toBe(false);
      expect(out.errorCode).toBe(PFEC_page_present | PFEC_write_access);
      expect(walk(ram, b.root, VA, ACCESS_WRITE, createPagingMode({ wp: false }), out)).toBe(true);
      // Reads are fine.
      expect(walk(ram, b.root, VA, ACCESS_READ | ACCESS_USER, 4, out)).toBe(true);
    }
  });

  it("faults on a user access to a supervisor page at any one level", () => {
    for (let level = 4; level >= 1; level--) {
      const { ram, b, out } = setup();
      patch(b, level, (e) => e & ~US);
      expect(walk(ram, b.root, VA, ACCESS_READ | ACCESS_USER, 4, out)).toBe(false);
      expect(out.fault).toBe(FAULT_PROTECTION);
      expect(out.faultLevel).toBe(level);
      expect(out.errorCode).toBe(PFEC_page_present | PFEC_user_mode);
      expect(walk(ram, b.root, VA, ACCESS_WRITE, 4, out)).toBe(true);
    }
  });

  it("faults on a fetch from a no-execute page at any one level (with EFER.NXE)", () => {
    for (let level = 4; level >= 1; level--) {
      const { ram, b, out } = setup();
      patch(b, level, (e) => e | NX);
      expect(walk(ram, b.root, VA, ACCESS_FETCH | ACCESS_USER, 4, out)).toBe(false);
      expect(out.fault).toBe(FAULT_PROTECTION);
      expect(out.faultLevel).toBe(level);
      expect(out.errorCode).toBe(PFEC_page_present | PFEC_user_mode | PFEC_insn_fetch);
      expect(walk(ram, b.root, VA, ACCESS_READ, 4, out)).toBe(true);
      // Without NXE, XD is a reserved bit.
      expect(walk(ram, b.root, VA, ACCESS_FETCH, createPagingMode({ nxe: false }), out)).toBe(
        false,
      );
      expect(out.fault).toBe(FAULT_RESERVED);
      expect(out.errorCode).toBe(PFEC_page_present | PFEC_reserved_bit);
    }
  });

  it("reports I/D only with EFER.NXE", () => {
    const { ram, out } = setup();
    const empty = 0x200;
    expect(walk(ram, empty, VA, ACCESS_FETCH, 4, out)).toBe(false);
    expect(out.errorCode).toBe(PFEC_insn_fetch);
    walk(ram, empty, VA, ACCESS_FETCH, createPagingMode({ nxe: false }), out);
    expect(out.errorCode).toBe(0);
  });

  it("refuses a VA outside the mode's range without reading memory", () => {
    const { ram, b, out } = setup();
    for (const va of [2 ** 48, -4096, 0.5, Number.NaN]) {
      expect(walk(ram, b.root, va, ACCESS_READ, 4, out)).toBe(false);
      expect(out.fault).toBe(FAULT_NONCANONICAL);
      expect(out.reads).toBe(0);
    }
  });

  it("reads a table frame outside RAM as not-present, without throwing", () => {
    const { ram, b, out } = setup();
    patch(b, 3, (e) => (e & 0xfffn) | (0x4_0000n << 12n)); // 1 GiB: beyond 16 MiB of RAM
    expect(walk(ram, b.root, VA, ACCESS_READ, 4, out)).toBe(false);
    expect(out.fault).toBe(FAULT_NOT_PRESENT);
    expect(out.faultLevel).toBe(2);
    expect(out.reads).toBe(3);
    // The entry read from the frame outside RAM: zeros, at that frame's address.
    expect([out.entryLo[2], out.entryHi[2]]).toEqual([0, 0]);
    expect(out.entryMaddr[2]).toBe(0x4_0000 * 4096 + pteIndex(VA, 2) * 8);
    expect(walk(ram, 0x1_0000_0000, VA, ACCESS_READ, 4, out)).toBe(false);
    expect(out.faultLevel).toBe(4);
    expect(out.entryMaddr[4]).toBe(0x1_0000_0000 * 4096 + pteIndex(VA, 4) * 8);
  });

  it("maps a leaf frame outside RAM (MMIO) as a translation", () => {
    const { ram, b, out } = setup();
    patch(b, 1, (e) => (e & 0xfffn) | (0xfee00n << 12n));
    expect(walk(ram, b.root, VA, ACCESS_READ, 4, out)).toBe(true);
    expect(out.maddr).toBe(0xfee0_0000);
  });
});

describe("walk: page-walk caches", () => {
  it("skips the levels a cached entry covers and counts hits", () => {
    const { ram, b, out } = setup();
    const other2m = VA + 0x20_0000; // same PDPTE, other PDE
    const other1g = VA + 0x4000_0000; // same PML4E, other PDPTE
    const other512g = VA - 0x80_0000_0000; // other PML4E
    for (const va of [other2m, other1g, other512g]) b.map4k(va, 0x301);
    const pwc = new PageWalkCache();
    expect(walk(ram, b.root, VA, ACCESS_READ, 4, out, pwc, 1)).toBe(true);
    expect(out.reads).toBe(4);
    expect(out.pwcLevel).toBe(0);
    expect(walk(ram, b.root, VA + 8, ACCESS_READ, 4, out, pwc, 1)).toBe(true);
    expect(out.reads).toBe(1);
    expect(out.pwcLevel).toBe(2);
    expect(out.startLevel).toBe(1);
    expect(out.maddr).toBe(DATA * 4096 + 8);
    expect(walk(ram, b.root, other2m, ACCESS_READ, 4, out, pwc, 1)).toBe(true);
    expect(out.reads).toBe(2);
    expect(out.pwcLevel).toBe(3);
    expect(walk(ram, b.root, other1g, ACCESS_READ, 4, out, pwc, 1)).toBe(true);
    expect(out.reads).toBe(3);
    expect(out.pwcLevel).toBe(4);
    expect(walk(ram, b.root, other512g, ACCESS_READ, 4, out, pwc, 1)).toBe(true);
    expect(out.reads).toBe(4);
    // Another tag shares nothing.
    expect(walk(ram, b.root, VA, ACCESS_READ, 4, out, pwc, 2)).toBe(true);
    expect(out.reads).toBe(4);
    const s = pwcStats(pwc);
    expect(s.lookups).toBe(6);
    expect(s.misses).toBe(3);
    expect(s.pde.hits).toBe(1);
    expect(s.pdpte.hits).toBe(1);
    expect(s.pml4e.hits).toBe(1);
    expect(s.pml5e.hits).toBe(0);
    expect(s.pde.inserts).toBe(5);
    pwc.flush(1);
    walk(ram, b.root, VA, ACCESS_READ, 4, out, pwc, 1);
    expect(out.reads).toBe(4);
    expect(pwcStats(pwc).flushes).toBe(1);
    expect(pwcStats(pwc).entriesFlushed).toBeGreaterThan(0);
  });

  it("keeps the rights of the cached levels", () => {
    const { ram, b, out } = setup();
    patch(b, 3, (e) => e & ~RW);
    const pwc = new PageWalkCache();
    expect(walk(ram, b.root, VA, ACCESS_READ | ACCESS_USER, 4, out, pwc, 0)).toBe(true);
    expect(walk(ram, b.root, VA, ACCESS_WRITE | ACCESS_USER, 4, out, pwc, 0)).toBe(false);
    expect(out.reads).toBe(1);
    expect(out.fault).toBe(FAULT_PROTECTION);
    expect(out.faultLevel).toBe(2); // denied above the start level: the cached PDE's rights
  });

  it("fills nothing from a faulting walk", () => {
    const { ram, b, out } = setup();
    patch(b, 1, (e) => e & ~P);
    const pwc = new PageWalkCache();
    walk(ram, b.root, VA, ACCESS_READ, 4, out, pwc, 0);
    walk(ram, b.root, VA, ACCESS_READ, 4, out, pwc, 0);
    expect(out.reads).toBe(4);
    expect(pwcStats(pwc).pde.inserts).toBe(0);
  });

  it("uses the PML5E cache under 5-level paging", () => {
    const { ram, b, out } = setup(5);
    const far = VA + 0x8000_0000_0000; // other PML4E, same PML5E
    b.map4k(far, 0x302);
    const pwc = new PageWalkCache({ pml5e: { sets: 1, ways: 2 } });
    walk(ram, b.root, VA, ACCESS_READ, 5, out, pwc, 0);
    expect(out.reads).toBe(5);
    walk(ram, b.root, far, ACCESS_READ, 5, out, pwc, 0);
    expect(out.reads).toBe(4);
    expect(out.pwcLevel).toBe(5);
    expect(out.maddr).toBe(0x302 * 4096);
  });
});

describe("walk steps (for two-dimensional walkers)", () => {
  it("walkBegin + walkStep + walkFinish compose to walk", () => {
    const { ram, b, out } = setup();
    const ref = new WalkResult();
    walk(ram, b.root, VA + 0x10, ACCESS_WRITE, 4, ref);
    // Undo the A/D flags so the manual walk sees the same memory.
    const fresh = setup();
    const o = fresh.out;
    walkBegin(o, VA + 0x10, ACCESS_WRITE, 4, PERM_RW | PERM_USER);
    let table = fresh.b.root;
    let level = 4;
    for (;;) {
      const r = walkStep(fresh.ram, table, pteIndex(VA, level), level, PAGING_4LEVEL, o);
      if (r === STEP_LEAF) break;
      expect(r).toBe(STEP_TABLE);
      table = o.nextMfn; // a nested walker would translate this guest frame first
      level--;
    }
    expect(walkFinish(fresh.ram, PAGING_4LEVEL, o)).toBe(true);
    expect(o.maddr).toBe(ref.maddr);
    expect(o.reads).toBe(ref.reads);
    expect(o.writes).toBe(ref.writes);
    expect(o.perms).toBe(ref.perms);
    expect(fresh.ram.readU64(fresh.b.entryAddr(VA, 1))).toBe(ram.readU64(b.entryAddr(VA, 1)));
    expect(out).toBe(out);
  });
});

describe("walk steps: an index past the table stays inside it (issue 15)", () => {
  it("walkStep reads entry index & 511 of its own table, never the next frame", () => {
    const ram = new Ram({ bytes: 16 * 2 ** 20 });
    const table = 0x20;
    // Entry 0 of the next frame looks like a present table entry: before the fix, index 512
    // of `table` read it (the view was the whole 2 MiB chunk).
    ram.write64(((table + 1) * 4096) >>> 0, 0x55000 | 1, 0);
    for (const index of [512, 1024, 512 * 7 + 3, -512]) {
      const o = new WalkResult();
      walkBegin(o, 0, ACCESS_READ, 4, PERM_RW | PERM_USER);
      expect(walkStep(ram, table, index, 4, PAGING_4LEVEL, o)).not.toBe(STEP_TABLE);
      expect(o.entryMaddr[4]).toBe(table * 4096 + (index & 511) * 8);
      expect(o.entryMaddr[4]).toBeLessThan((table + 1) * 4096);
    }
    // The same index reads the same-table entry once it is present.
    ram.write64(table * 4096, 0x77000 | 1, 0);
    const o = new WalkResult();
    walkBegin(o, 0, ACCESS_READ, 4, PERM_RW | PERM_USER);
    expect(walkStep(ram, table, 512, 4, PAGING_4LEVEL, o)).toBe(STEP_TABLE);
    expect(o.nextMfn).toBe(0x77);
  });
});
