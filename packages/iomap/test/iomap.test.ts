import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_IOMAP,
  _PAGE_PAT,
  _PAGE_PCD,
  _PAGE_PRESENT,
  _PAGE_PWT,
  _PAGE_RW,
  EBUSY,
  EINVAL,
  EPERM,
  ESRCH,
} from "@hyperlab/abi";
import {
  IOMEM_ACCESS_RO,
  IOMEM_ACCESS_RW,
  isHyperlabError,
  PGT_type_mask,
  PGT_writable_page,
} from "@hyperlab/core";
import { checkFrameInvariants } from "@hyperlab/testkit";
import { describe, expect, it } from "vitest";
import { IOMEM_FRAME_LIMIT, iomap } from "../src/index";
import {
  boot,
  DEV_MFN,
  DEV2_MFN,
  freeVa,
  guest,
  HOLE_MFN,
  iomemViolations,
  l1Lo,
  setL1,
} from "./helpers";

const KIO = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_IOMAP;

describe("iomem_caps: who may map I/O memory", () => {
  it("gives the hardware domain every non-RAM frame and a domU none", () => {
    const w = boot();
    const d0 = guest(w, 0);
    const d1 = guest(w, 1);
    const ram = w.hv.frames.nrFrames;
    expect(w.io.iomemRanges(d0.d)).toEqual([{ start: ram, end: IOMEM_FRAME_LIMIT - 1 }]);
    expect(w.io.iomemRanges(d1.d)).toEqual([]);
    expect(w.io.mmioAccess(d0.d, DEV_MFN)).toBe(IOMEM_ACCESS_RW);
    expect(w.io.mmioAccess(d1.d, DEV_MFN)).toBe(-EPERM);
    // RAM is never I/O, even for dom0, and frames past the address width are not frames.
    expect(w.io.mmioAccess(d0.d, 5)).toBe(-EINVAL);
    expect(w.io.mmioAccess(d0.d, IOMEM_FRAME_LIMIT)).toBe(-EINVAL);
    expect(w.io.mmioAccess(d0.d, -1)).toBe(-EINVAL);
    expect(w.io.mmioAccess(d0.d, 1.5)).toBe(-EINVAL);
    expect(w.io.isRam(5)).toBe(true);
    expect(w.io.isMmio(5)).toBe(false);
    expect(w.io.isMmio(DEV_MFN)).toBe(true);
    expect(w.io.hasDevice(DEV_MFN)).toBe(true);
    expect(w.io.hasDevice(HOLE_MFN)).toBe(false);
  });

  it("grants and revokes as XEN_DOMCTL_iomem_permission, merging and splitting ranges", () => {
    const w = boot();
    const d0 = guest(w, 0);
    const d1 = guest(w, 1);
    expect(w.io.iomemPermission(null, d1.d, DEV_MFN, 4, true)).toBe(0);
    expect(w.io.iomemPermission(d0.d, d1.d, DEV_MFN + 4, 4, true)).toBe(0);
    expect(w.io.iomemRanges(d1.d)).toEqual([{ start: DEV_MFN, end: DEV_MFN + 7 }]);
    expect(w.io.iomemPermission(null, d1.d, DEV_MFN + 2, 2, false)).toBe(0);
    expect(w.io.iomemRanges(d1.d)).toEqual([
      { start: DEV_MFN, end: DEV_MFN + 1 },
      { start: DEV_MFN + 4, end: DEV_MFN + 7 },
    ]);
    expect(w.io.iomemAccessPermitted(d1.d, DEV_MFN, DEV_MFN + 1)).toBe(true);
    expect(w.io.iomemAccessPermitted(d1.d, DEV_MFN, DEV_MFN + 4)).toBe(false);
    // A domU cannot pass on what it holds; a wrapping or empty range is -EINVAL.
    expect(w.io.iomemPermission(d1.d, d1.d, DEV_MFN, 1, true)).toBe(-EPERM);
    expect(w.io.iomemPermission(null, d1.d, DEV_MFN, 0, true)).toBe(-EINVAL);
    expect(w.io.iomemPermission(null, d1.d, IOMEM_FRAME_LIMIT - 1, 2, true)).toBe(-EINVAL);
    // dom0 may pass on only frames it holds itself (not RAM, which is not in its caps).
    expect(w.io.iomemPermission(d0.d, d1.d, 10, 1, true)).toBe(-EPERM);
    w.hv.destroyDomain(d1.d);
    expect(w.io.iomemRanges(d1.d)).toEqual([]);
    expect(w.io.iomemPermission(null, d1.d, DEV_MFN, 1, true)).toBe(-ESRCH);
  });

  it("throws typed errors for a toolstack's bad range, domain or option", () => {
    const w = boot();
    const d1 = guest(w, 1);
    const code = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return isHyperlabError(e, ["IOMAP_BAD_RANGE", "IOMAP_BAD_DOMAIN", "IOMAP_BAD_OPTION"])
          ? e.code
          : "other";
      }
      return "none";
    };
    expect(code(() => w.io.iomemPermitAccess(d1.d, 9, 8))).toBe("IOMAP_BAD_RANGE");
    expect(code(() => w.io.iomemDenyAccess(d1.d, -1, 8))).toBe("IOMAP_BAD_RANGE");
    w.hv.destroyDomain(d1.d);
    expect(code(() => w.io.iomemPermitAccess(d1.d, DEV_MFN, DEV_MFN))).toBe("IOMAP_BAD_DOMAIN");
    expect(code(() => iomap({ readOnly: [{ start: 5, end: 4 }] }).setup({} as never))).toBe(
      "IOMAP_BAD_OPTION",
    );
  });
});

describe("get_page_from_l1e with iomap composed", () => {
  it("lets dom0 map a device frame untranslated; loads and stores reach its registers", () => {
    const w = boot();
    const d0 = guest(w, 0);
    const va = freeVa(d0);
    expect(setL1(w, d0, va, DEV_MFN, KIO)).toBe(0);
    const v = d0.d.vcpus[0];
    expect(w.pv.write(v, va + 8, 4, 0xdead_beef)).toBe(true);
    expect(w.dev.regs[2]).toBe(0xdead_beef);
    w.dev.regs[5] = 0x1234_5678;
    expect(w.pv.read(v, va + 20, 4)).toBe(0x1234_5678);
    expect(w.pv.write64(v, va + 32, 0x1111, 0x2222)).toBe(true);
    expect(w.dev.writes).toBe(2);
    expect(w.dev.reads).toBe(1);
    // RAM was not touched: the frame number is beyond it.
    expect(DEV_MFN).toBeGreaterThan(w.hv.frames.nrFrames);
    expect(iomemViolations(w, d0.d)).toEqual([]);
  });

  it("forces device memory uncached: PCD|PWT on a write-back entry, PCD on write-through", () => {
    const w = boot();
    const d0 = guest(w, 0);
    expect(setL1(w, d0, freeVa(d0, 0), DEV_MFN, KIO)).toBe(0);
    expect(l1Lo(w, d0, freeVa(d0, 0)) & (_PAGE_PCD | _PAGE_PWT)).toBe(_PAGE_PCD | _PAGE_PWT);
    expect(setL1(w, d0, freeVa(d0, 1), DEV_MFN, KIO | _PAGE_PWT)).toBe(0);
    expect(l1Lo(w, d0, freeVa(d0, 1)) & (_PAGE_PCD | _PAGE_PWT)).toBe(_PAGE_PCD | _PAGE_PWT);
    expect(setL1(w, d0, freeVa(d0, 2), DEV_MFN, KIO | _PAGE_PCD)).toBe(0);
    expect(l1Lo(w, d0, freeVa(d0, 2)) & (_PAGE_PCD | _PAGE_PWT)).toBe(_PAGE_PCD);
    // Write-protect (PWT|PAT) becomes UC too: PCD set, PAT cleared.
    const ALL = _PAGE_PCD | _PAGE_PWT | _PAGE_PAT;
    expect(setL1(w, d0, freeVa(d0, 3), DEV_MFN, KIO | _PAGE_PWT | _PAGE_PAT)).toBe(0);
    expect(l1Lo(w, d0, freeVa(d0, 3)) & ALL).toBe(_PAGE_PCD | _PAGE_PWT);
  });

  it("refuses a domU without permission with -EPERM, accepts it once granted, refuses again once revoked", () => {
    const w = boot();
    guest(w, 0);
    const d1 = guest(w, 1);
    const va = freeVa(d1);
    expect(setL1(w, d1, va, DEV_MFN, KIO)).toBe(-EPERM);
    expect(w.dev.writes + w.dev.reads).toBe(0);
    w.io.iomemPermitAccess(d1.d, DEV_MFN, DEV_MFN);
    // A domU holding I/O memory may set cache attributes (Xen's l1_disallow_mask).
    expect(setL1(w, d1, va, DEV_MFN, KIO | _PAGE_PWT)).toBe(0);
    expect(w.pv.write(d1.d.vcpus[0], va, 4, 7)).toBe(true);
    expect(w.dev.regs[0]).toBe(7);
    expect(iomemViolations(w, d1.d)).toEqual([]);
    w.io.iomemDenyAccess(d1.d, DEV_MFN, DEV_MFN);
    expect(setL1(w, d1, freeVa(d1, 1), DEV_MFN, KIO)).toBe(-EPERM);
    // Without any I/O memory, cache attributes are refused again.
    expect(setL1(w, d1, freeVa(d1, 2), DEV_MFN, KIO | _PAGE_PCD)).toBe(-EINVAL);
  });

  it("never takes RAM as I/O: the bit is ignored, a foreign domain's RAM stays -EBUSY", () => {
    const w = boot();
    const d0 = guest(w, 0);
    const d1 = guest(w, 1);
    // The domU is even given every frame as I/O memory; RAM still goes the RAM way.
    w.io.iomemPermitAccess(d1.d, 0, IOMEM_FRAME_LIMIT - 1);
    const dom0Page = d0.b.p2m[d0.b.p2m.length - 1];
    expect(setL1(w, d1, freeVa(d1), dom0Page, KIO)).toBe(-EBUSY);
    expect(iomemViolations(w, d1.d)).toEqual([]);
    // dom0's own RAM with the bit: validated as RAM (writable type taken, no UC forced).
    expect(setL1(w, d0, freeVa(d0), dom0Page, KIO)).toBe(0);
    expect((w.hv.frames.typeInfo[dom0Page] & PGT_type_mask) >>> 0).toBe(PGT_writable_page);
    expect(l1Lo(w, d0, freeVa(d0)) & _PAGE_PCD).toBe(0);
    // Even dom0 cannot take a domU's RAM with the bit: it is RAM of another owner (-EBUSY).
    const domUPage = d1.b.p2m[d1.b.p2m.length - 1];
    expect(setL1(w, d0, freeVa(d0, 1), domUPage, KIO)).toBe(-EBUSY);
    expect(checkFrameInvariants(w.hv)).toEqual([]);
  });

  it("forces read-only access to a read-only MMIO range (Xen 4.17 strips RW, it does not refuse)", () => {
    const w = boot({ readOnly: [{ start: DEV2_MFN, end: DEV2_MFN }] });
    const d0 = guest(w, 0);
    expect(w.io.mmioAccess(d0.d, DEV2_MFN)).toBe(IOMEM_ACCESS_RO);
    const va = freeVa(d0);
    expect(setL1(w, d0, va, DEV2_MFN, KIO)).toBe(0);
    expect(l1Lo(w, d0, va) & _PAGE_RW).toBe(0);
    const v = d0.d.vcpus[0];
    w.dev.regs[1024] = 99;
    expect(w.pv.read(v, va, 4)).toBe(99);
    expect(w.pv.write(v, va, 4, 5)).toBe(false);
    expect(w.dev.regs[1024]).toBe(99);
    expect(iomemViolations(w, d0.d)).toEqual([]);
  });

  it("keeps -EPERM for every non-RAM frame when no iomem provider is composed", () => {
    const w = boot({ withIomap: false });
    const d0 = guest(w, 0);
    expect(setL1(w, d0, freeVa(d0), DEV_MFN, KIO)).toBe(-EPERM);
  });
});
