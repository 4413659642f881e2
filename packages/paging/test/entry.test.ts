import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_GLOBAL,
  _PAGE_IOMAP,
  _PAGE_NX_HI,
  _PAGE_PAT,
  _PAGE_PAT_LARGE,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_USER,
} from "@hyperlab/abi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  canonicalVa,
  createPagingMode,
  decodePte,
  encodePte,
  formatPte,
  l1TableOffset,
  l2TableOffset,
  l3TableOffset,
  l4TableOffset,
  l5TableOffset,
  makePte,
  PAGING_4LEVEL,
  PAGING_5LEVEL,
  pteHi,
  pteIndex,
  pteIsLeaf,
  pteLo,
  pteMfn,
  pteReserved,
  pteToBigInt,
  vaBits,
  vaFromBigInt,
  vaFromHalves,
  vaToBigInt,
  vaToHalves,
} from "../src/index";
import { expectPagingError, fcParams } from "./helpers";

const mfnArb = fc.integer({ min: 0, max: 2 ** 40 - 1 });
const flagsLoArb = fc.integer({ min: 0, max: 0xfff });
const flagsHiArb = fc.integer({ min: 0, max: 0xfff }).map((x) => (x << 20) >>> 0);

describe("entries as halves", () => {
  it("makePte and pteMfn round-trip every frame number and flag (property)", () => {
    const out = new Uint32Array(2);
    fc.assert(
      fc.property(mfnArb, flagsLoArb, flagsHiArb, (mfn, flo, fhi) => {
        makePte(mfn, flo, fhi, out);
        expect(pteMfn(out[0], out[1])).toBe(mfn);
        expect(out[0] & 0xfff).toBe(flo);
        expect((out[1] & 0xfff0_0000) >>> 0).toBe(fhi);
        expect(out[0]).toBe(pteLo(mfn, flo));
        expect(out[1]).toBe(pteHi(mfn, fhi));
        // The same entry as a BigInt.
        const v = pteToBigInt(out[0], out[1]);
        expect(v).toBe((BigInt(fhi) << 32n) | (BigInt(mfn) << 12n) | BigInt(flo));
      }),
      fcParams(300),
    );
  });

  it("the BigInt decoder reads back what the halves encode, and encodePte agrees (property)", () => {
    const out = new Int32Array(2);
    fc.assert(
      fc.property(
        mfnArb,
        flagsLoArb,
        flagsHiArb,
        fc.integer({ min: 1, max: 5 }),
        (mfn, flo, fhi, level) => {
          const large = (level === 2 || level === 3) && (flo & _PAGE_PSE) !== 0;
          if (large) mfn -= mfn % 2; // bit 12 is PAT in a large leaf
          makePte(mfn, flo, fhi, out);
          const v = pteToBigInt(out[0], out[1]);
          const f = decodePte(v, level);
          expect(f.mfn).toBe(mfn);
          expect(f.present).toBe((flo & _PAGE_PRESENT) !== 0);
          expect(f.rw).toBe((flo & _PAGE_RW) !== 0);
          expect(f.user).toBe((flo & _PAGE_USER) !== 0);
          expect(f.pwt).toBe((flo & 8) !== 0);
          expect(f.pcd).toBe((flo & 0x10) !== 0);
          expect(f.accessed).toBe((flo & _PAGE_ACCESSED) !== 0);
          expect(f.dirty).toBe((flo & _PAGE_DIRTY) !== 0);
          expect(f.ps).toBe(level > 1 && (flo & _PAGE_PSE) !== 0);
          expect(f.pat).toBe(level === 1 && (flo & _PAGE_PAT) !== 0);
          expect(f.global).toBe((flo & _PAGE_GLOBAL) !== 0);
          expect(f.nx).toBe((fhi & _PAGE_NX_HI) !== 0);
          expect(f.softLo).toBe((flo >>> 9) & 7);
          expect(f.softHi).toBe((fhi >>> 20) & 0x7ff);
          if (!(level >= 4 && f.ps)) expect(encodePte(f, level)).toBe(v);
        },
      ),
      fcParams(300),
    );
  });

  it("keeps PAT of a large leaf in bit 12 and the software bits (Linux's _PAGE_IOMAP)", () => {
    const v = encodePte({ mfn: 0x200, present: true, ps: true, pat: true, softLo: 2 }, 2);
    expect(v & 0x1000n).toBe(0x1000n);
    expect(Number(v & 0xfffn) & _PAGE_IOMAP).toBe(_PAGE_IOMAP);
    const f = decodePte(v | BigInt(_PAGE_PAT_LARGE), 2);
    expect(f.pat).toBe(true);
    expect(f.mfn).toBe(0x200);
    expect(decodePte(0x7ff0_0000_0000_0000n, 1).softHi).toBe(0x7ff);
  });

  it("tells leaves from tables", () => {
    expect(pteIsLeaf(0, 1)).toBe(true);
    expect(pteIsLeaf(_PAGE_PSE, 2)).toBe(true);
    expect(pteIsLeaf(_PAGE_PSE, 3)).toBe(true);
    expect(pteIsLeaf(_PAGE_PSE, 4)).toBe(false);
    expect(pteIsLeaf(0, 2)).toBe(false);
  });

  it("prints an entry", () => {
    const v = encodePte(
      { mfn: 0x1234, present: true, rw: true, user: true, accessed: true, dirty: true, nx: true },
      1,
    );
    expect(formatPte(v, 1)).toBe("PTE mfn=0x1234 P RW US A D NX");
    expect(formatPte(0n, 4)).toBe("PML4E mfn=0x0 !P");
    const big = encodePte({ mfn: 0x40000, present: true, ps: true, global: true, softHi: 1 }, 3);
    expect(formatPte(big, 3)).toBe("PDPTE mfn=0x40000 P PS(1G) G SW52-62=0x1");
    expect(formatPte(0x83n | (1n << 13n), 2)).toBe("PDE mfn=0x2 P RW PS(2M) RSVD(0x2000)");
    expect(formatPte(0x681n, 5)).toBe("PML5E mfn=0x0 P PS SW9-11=0x3 RSVD(0x80)");
    expect(formatPte(0x10n | 0x8n | 0x1n, 1)).toBe("PTE mfn=0x0 P PWT PCD");
  });
});

describe("reserved bits", () => {
  const P = _PAGE_PRESENT;
  it("PS is reserved at levels 4 and 5, not at 2 and 3", () => {
    for (const mode of [PAGING_4LEVEL, PAGING_5LEVEL]) {
      expect(pteReserved(P | _PAGE_PSE, 0, 4, mode)).toBe(true);
      expect(pteReserved(P | _PAGE_PSE, 0, 5, mode)).toBe(true);
      expect(pteReserved(P | _PAGE_PSE, 0, 3, mode)).toBe(false);
      expect(pteReserved(P | _PAGE_PSE, 0, 2, mode)).toBe(false);
      expect(pteReserved(P | _PAGE_PAT, 0, 1, mode)).toBe(false);
    }
  });

  it("the address bits below a large page's size are reserved, except PAT", () => {
    for (let bit = 13; bit <= 20; bit++) {
      expect(pteReserved(P | _PAGE_PSE | (1 << bit), 0, 2, PAGING_4LEVEL)).toBe(true);
    }
    expect(pteReserved(P | _PAGE_PSE | (1 << 21), 0, 2, PAGING_4LEVEL)).toBe(false);
    for (let bit = 13; bit <= 29; bit++) {
      expect(pteReserved(P | _PAGE_PSE | (1 << bit), 0, 3, PAGING_4LEVEL)).toBe(true);
    }
    expect(pteReserved((P | _PAGE_PSE | (1 << 30)) >>> 0, 0, 3, PAGING_4LEVEL)).toBe(false);
    expect(pteReserved(P | _PAGE_PSE | _PAGE_PAT_LARGE, 0, 2, PAGING_4LEVEL)).toBe(false);
    expect(pteReserved(P | _PAGE_PSE | _PAGE_PAT_LARGE, 0, 3, PAGING_4LEVEL)).toBe(false);
    // In a table entry (no PS) the same bits are address bits.
    expect(pteReserved(P | (1 << 13), 0, 2, PAGING_4LEVEL)).toBe(false);
  });

  it("address bits at and above MAXPHYADDR are reserved at every level", () => {
    const m40 = createPagingMode({ maxPhysAddr: 40 });
    for (let level = 1; level <= 4; level++) {
      expect(pteReserved(P, 1 << 7, level, m40)).toBe(false); // bit 39
      expect(pteReserved(P, 1 << 8, level, m40)).toBe(true); // bit 40
      expect(pteReserved(P, 1 << 19, level, m40)).toBe(true); // bit 51
      expect(pteReserved(P, 1 << 20, level, m40)).toBe(false); // bit 52: software
    }
    expect(pteReserved(P, 1 << 13, 1, PAGING_4LEVEL)).toBe(false); // bit 45
    expect(pteReserved(P, 1 << 14, 1, PAGING_4LEVEL)).toBe(true); // bit 46
    const m52 = createPagingMode({ maxPhysAddr: 52 });
    expect(pteReserved(P, 0xfffff, 1, m52)).toBe(false);
  });

  it("bit 63 is reserved without EFER.NXE, and PS in a PDPTE without 1 GiB pages", () => {
    const noNx = createPagingMode({ nxe: false });
    expect(pteReserved(P, _PAGE_NX_HI, 1, noNx)).toBe(true);
    expect(pteReserved(P, _PAGE_NX_HI, 1, PAGING_4LEVEL)).toBe(false);
    const no1g = createPagingMode({ gbPages: false });
    expect(pteReserved(P | _PAGE_PSE, 0, 3, no1g)).toBe(true);
    expect(pteReserved(P | _PAGE_PSE, 0, 2, no1g)).toBe(false);
  });
});

describe("virtual addresses", () => {
  it("indexes a VA at each level (property, 48 and 57 bits)", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 57n - 1n }), (big) => {
        const va = Number(big);
        const b = BigInt(va); // above 2^53 a double keeps 16-byte granules, not bytes
        for (let level = 1; level <= 5; level++) {
          expect(pteIndex(va, level)).toBe(Number((b >> BigInt(3 + 9 * level)) & 511n));
        }
        expect(l1TableOffset(va)).toBe(pteIndex(va, 1));
        expect(l2TableOffset(va)).toBe(pteIndex(va, 2));
        expect(l3TableOffset(va)).toBe(pteIndex(va, 3));
        expect(l4TableOffset(va)).toBe(pteIndex(va, 4));
        expect(l5TableOffset(va)).toBe(pteIndex(va, 5));
      }),
      fcParams(300),
    );
  });

  it("converts canonical 64-bit addresses and refuses the others (property)", () => {
    const out = new Uint32Array(2);
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(4, 5), (b, lv) => {
        const levels = lv as 4 | 5;
        const bits = BigInt(vaBits(levels));
        const canonical = BigInt.asUintN(64, BigInt.asIntN(Number(bits), b)) === b;
        const va = vaFromBigInt(b, levels);
        if (!canonical) {
          expect(va).toBe(-1);
          return;
        }
        const low = b & ((1n << bits) - 1n);
        // A 57-bit VA above 2^53 is exact only when its low bits fit a double.
        fc.pre(BigInt(Number(low)) === low);
        expect(va).toBe(Number(low));
        expect(canonicalVa(va, levels)).toBe(true);
        expect(vaToBigInt(va, levels)).toBe(b);
        vaToHalves(va, levels, out);
        expect(pteToBigInt(out[0], out[1])).toBe(b);
        expect(vaFromHalves(out[0], out[1], levels)).toBe(va);
      }),
      fcParams(300),
    );
    expect(vaFromBigInt(0xffff_8000_0000_1000n, 4)).toBe(0x8000_0000_1000);
    expect(vaFromBigInt(0x0000_8000_0000_0000n, 4)).toBe(-1);
    expect(vaFromBigInt(0x0000_8000_0000_0000n, 5)).toBe(0x8000_0000_0000);
    expect(vaFromBigInt(0xff00_0000_0000_0000n, 5)).toBe(0x100_0000_0000_0000);
  });

  it("canonicalVa takes whole numbers below 2^48 or 2^57", () => {
    expect(canonicalVa(0, 4)).toBe(true);
    expect(canonicalVa(2 ** 48 - 1, 4)).toBe(true);
    expect(canonicalVa(2 ** 48, 4)).toBe(false);
    expect(canonicalVa(2 ** 48, 5)).toBe(true);
    expect(canonicalVa(-1, 4)).toBe(false);
    expect(canonicalVa(1.5, 4)).toBe(false);
    expect(canonicalVa(Number.NaN, 4)).toBe(false);
  });
});

describe("API mistakes", () => {
  it("throws PagingError with a code", () => {
    expectPagingError(() => createPagingMode({ levels: 3 as 4 }), "PAGING_BAD_LEVELS");
    expectPagingError(() => createPagingMode({ maxPhysAddr: 53 }), "PAGING_BAD_MAXPHYADDR");
    expectPagingError(() => createPagingMode({ maxPhysAddr: 31 }), "PAGING_BAD_MAXPHYADDR");
    expectPagingError(() => createPagingMode({ maxPhysAddr: 40.5 }), "PAGING_BAD_MAXPHYADDR");
    expectPagingError(() => encodePte({ mfn: 2 ** 40 }, 1), "PAGING_BAD_MFN");
    expectPagingError(() => encodePte({ mfn: -1 }, 1), "PAGING_BAD_MFN");
    expectPagingError(() => encodePte({ mfn: 0, pat: true }, 2), "PAGING_BAD_LEVEL");
    expectPagingError(() => encodePte({ mfn: 0, ps: true }, 1), "PAGING_BAD_LEVEL");
    expectPagingError(() => decodePte(0n, 0), "PAGING_BAD_LEVEL");
    expectPagingError(() => decodePte(0n, 6), "PAGING_BAD_LEVEL");
    expectPagingError(() => vaToBigInt(2 ** 48, 4), "PAGING_BAD_VA");
  });
});
