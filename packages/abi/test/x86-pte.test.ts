/*
 * x86 page-table entry bits have no Xen public header, so the conformance test exempts
 * src/x86-pte.ts and this test checks it against values written out by hand from the Intel
 * SDM vol. 3 §4.5 (tables 4-14 to 4-20, 4-level paging) and Linux's pgtable_types.h.
 */
import { describe, expect, it } from "vitest";
import * as abi from "../src/index";
import * as pte from "../src/x86-pte";

// bit number in the 64-bit entry, as the SDM gives it
const SDM_BITS: Record<string, number> = {
  _PAGE_PRESENT: 0,
  _PAGE_RW: 1,
  _PAGE_USER: 2,
  _PAGE_PWT: 3,
  _PAGE_PCD: 4,
  _PAGE_ACCESSED: 5,
  _PAGE_DIRTY: 6,
  _PAGE_PSE: 7,
  _PAGE_PAT: 7,
  _PAGE_GLOBAL: 8,
  _PAGE_AVAIL0: 9,
  _PAGE_AVAIL1: 10,
  _PAGE_AVAIL2: 11,
  _PAGE_IOMAP: 10,
  _PAGE_PAT_LARGE: 12,
  _PAGE_NX_HI: 63,
};

const OTHER: Record<string, number> = {
  _PAGE_AVAIL: 0xe00,
  _PAGE_BIT_IOMAP: 10,
  PADDR_BITS: 52,
  PADDR_MASK_LO: 0xffffffff,
  PADDR_MASK_HI: 0x000fffff,
  PTE_PFN_MASK_LO: 0xfffff000,
  PTE_PFN_MASK_HI: 0x000fffff,
  PTE_FLAGS_MASK_LO: 0x00000fff,
};

describe("x86 PTE bits", () => {
  it("every export of x86-pte.ts has a hand-written expected value", () => {
    expect(Object.keys(pte).sort()).toEqual(
      [...Object.keys(SDM_BITS), ...Object.keys(OTHER)].sort(),
    );
  });

  it("single-bit masks sit at the SDM's bit positions, in the right half", () => {
    for (const [name, bit] of Object.entries(SDM_BITS)) {
      const value = (pte as Record<string, number>)[name];
      const expected = bit >= 32 ? 2 ** (bit - 32) : 2 ** bit;
      expect(value, name).toBe(expected);
      expect(name.endsWith("_HI"), `${name} names its half`).toBe(bit >= 32);
    }
  });

  it("masks and widths agree with each other", () => {
    for (const [name, v] of Object.entries(OTHER)) {
      expect((pte as Record<string, number>)[name], name).toBe(v);
    }
    expect(pte._PAGE_AVAIL).toBe(pte._PAGE_AVAIL0 | pte._PAGE_AVAIL1 | pte._PAGE_AVAIL2);
    expect(pte._PAGE_IOMAP).toBe(2 ** pte._PAGE_BIT_IOMAP);
    expect(pte._PAGE_IOMAP).toBe(pte._PAGE_AVAIL1);
    expect(pte.PADDR_MASK_HI).toBe(2 ** (pte.PADDR_BITS - 32) - 1);
    expect((pte.PTE_PFN_MASK_LO | pte.PTE_FLAGS_MASK_LO) >>> 0).toBe(0xffffffff);
    expect(pte.PTE_PFN_MASK_LO & pte.PTE_FLAGS_MASK_LO).toBe(0);
  });

  it("high-half masks are unsigned, as a Uint32Array holds them", () => {
    const words = new Uint32Array(1);
    words[0] = 0xffffffff;
    expect(words[0] & pte._PAGE_NX_HI).not.toBe(0);
    words[0] |= pte._PAGE_NX_HI;
    expect(words[0]).toBe(0xffffffff);
    expect(pte._PAGE_NX_HI).toBeGreaterThan(0);
  });

  it("are re-exported from the package entry", () => {
    expect(abi._PAGE_PRESENT).toBe(1);
    expect(abi._PAGE_NX_HI).toBe(0x80000000);
  });
});
