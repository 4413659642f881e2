/*
 * The guest dimension of NptMmu's 2D walk (written out inline in translateSlow) answers exactly as
 * @hyperlab/paging's one-dimensional `walk` over the same guest tables: where the nested
 * dimension lets the walk through (every gfn maps to the same mfn), the machine address,
 * the #PF error code and the A/D bits written are the same.
 */
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_GLOBAL,
  _PAGE_NX_HI,
  _PAGE_PRESENT,
  _PAGE_PSE,
} from "@hyperlab/abi";
import {
  accessDenied,
  createPagingMode,
  PFEC_page_present,
  PFEC_reserved_bit,
  tlbGrants,
  WalkResult,
  walk,
} from "@hyperlab/paging";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  PT_PAGE_SIZE_MASK,
  VMX_EPT_MT_EPTE_SHIFT,
  VMX_EPT_MT_MASK,
  VMX_EPT_READABLE_MASK,
  VMX_EPT_RWX_MASK,
  VMX_EPT_WRITABLE_MASK,
} from "../src/index";
import { denied, grants } from "../src/npt";
import { boot, GuestMem, GuestTables, NO_CACHES, runs, seed } from "./helpers";

const BASE = 0x7f00_0000_0000;

describe("NptMmu's guest dimension against paging's walk", () => {
  it("same address, error code and A/D writes on random tables and accesses (property)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(4 as const, 5 as const),
        fc.constantFrom("none", "tlb"),
        fc.array(
          fc.tuple(
            fc.nat(63),
            fc.nat(7),
            fc.nat(0xfff),
            fc.nat(95),
            fc.constantFrom(0, 0x8000_0000, 0x4000, 0x8000, 0x7ff0_0000),
          ),
          { maxLength: 12 },
        ),
        fc.array(fc.tuple(fc.nat(63), fc.nat(0xfff), fc.constantFrom(0, 2, 4, 6, 0x10, 0x14)), {
          minLength: 1,
          maxLength: 40,
        }),
        (levels, caches, writes, accesses) => {
          const options =
            caches === "none"
              ? {
                  guestLevels: levels,
                  tlb: false as const,
                  nestedPwcEntries: 0,
                  nestedTlbEntries: 0,
                }
              : { guestLevels: levels };
          // Two identical worlds: NptMmu translates in one, paging's walk runs in the other.
          const worlds = [boot(options, 16 << 20), boot(options, 16 << 20)];
          const mems = worlds.map((w) => new GuestMem(w, { pages: 96 }));
          const tables = mems.map((m) => new GuestTables(m, levels));
          for (let k = 0; k < 2; k++) {
            const t = tables[k];
            for (let p = 0; p < 64; p++) {
              // 4 KiB pages, some global, some read-only, some NX, some with A already set.
              const flags = 0x7 | (p % 5 === 0 ? 0x100 : 0) | (p % 7 === 0 ? 0x20 : 0);
              const hi = p % 11 === 0 ? 0x8000_0000 : 0;
              t.map(
                BASE + p * 4096,
                mems[k].frames[32 + (p % 32)],
                p % 3 ? flags : flags & ~2,
                1,
                hi,
              );
            }
            // Corrupt entries on the path of some pages: any bits, at any level (the
            // addresses first, so that no corrupted entry is followed to find the next).
            const slots = writes.map(([p, level]) => t.slot(BASE + p * 4096, 1 + (level % levels)));
            // A corrupted entry keeps a frame of the guest (a plausible table or page) with
            // any low flags, and high bits that are NX, reserved (MAXPHYADDR 46) or clear.
            for (let i = 0; i < writes.length; i++) {
              const [, , flags, f, hi] = writes[i];
              worlds[k].ram.write64(slots[i], (mems[k].frames[f] * 4096 + flags) >>> 0, hi);
            }
          }
          const [wa, wb] = worlds;
          const v = mems[0].d.vcpus[0];
          v.cr3Mfn = tables[0].cr3;
          const out = new WalkResult();
          for (const [p, off, access] of accesses) {
            const va = BASE + p * 4096 + off;
            const r = wa.npt.translate(v, va, access);
            if (r < 0 && wa.npt.fault.exitReason !== -1) break; // the nested dimension stopped it
            const ok = walk(wb.ram, tables[1].cr3, va, access, wa.npt.mode, out);
            if (r >= 0) {
              expect(ok).toBe(true);
              expect(r).toBe(out.maddr);
            } else {
              expect(ok).toBe(false);
              expect(wa.npt.fault.errorCode).toBe(out.errorCode);
            }
          }
          const frames = mems[0].allocated();
          for (const f of frames) {
            for (let i = 0; i < 512; i++) {
              if (wa.ram.read64lo(f * 4096 + i * 8) !== wb.ram.read64lo(f * 4096 + i * 8)) {
                expect.fail(`entry ${i} of frame ${f} differs`);
              }
            }
          }
        },
      ),
      { seed, numRuns: runs(40) },
    );
  });

  it("a reserved address bit (above MAXPHYADDR 46) in a guest entry is a #PF with RSVD, not an EPT exit", () => {
    for (const level of [4, 3, 2, 1]) {
      const w = boot(NO_CACHES, 16 << 20);
      const mem = new GuestMem(w, { pages: 16 });
      const t = new GuestTables(mem);
      t.map(BASE, mem.frames[8]);
      const v = mem.d.vcpus[0];
      v.cr3Mfn = t.cr3;
      expect(w.npt.translate(v, BASE, 0)).toBeGreaterThanOrEqual(0); // backs every table
      const a = t.slot(BASE, level);
      w.ram.write64(a, w.ram.read64lo(a), 0x4000); // bit 46
      const refs = w.npt.counts.guestRefs;
      expect(w.npt.translate(v, BASE, 0)).toBe(-1);
      expect(w.npt.fault.errorCode).toBe(PFEC_page_present | PFEC_reserved_bit);
      expect(w.npt.fault.exitReason).toBe(-1);
      expect(w.npt.counts.guestRefs - refs).toBe(5 - level);
    }
  });

  it("the literal bits of translateSlow and nestedWalk are the named constants' values", () => {
    expect([_PAGE_PRESENT, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PSE, _PAGE_GLOBAL]).toEqual([
      1, 0x20, 0x40, 0x80, 0x100,
    ]);
    expect(_PAGE_NX_HI >>> 0).toBe(0x8000_0000);
    expect([VMX_EPT_READABLE_MASK, VMX_EPT_WRITABLE_MASK, VMX_EPT_RWX_MASK]).toEqual([1, 2, 7]);
    expect([PT_PAGE_SIZE_MASK, VMX_EPT_MT_MASK, VMX_EPT_MT_EPTE_SHIFT]).toEqual([0x80, 0x38, 3]);
  });

  it("grants and denied answer as paging's tlbGrants and accessDenied for every rights and access bit", () => {
    for (const wp of [false, true]) {
      const mode = { ...createPagingMode({ levels: 4 }), wp };
      for (let perms = 0; perms < 0x200; perms++) {
        for (let access = 0; access < 0x20; access++) {
          expect(grants(perms, access, mode)).toBe(tlbGrants(perms, access, mode));
          expect(denied(perms, access, mode)).toBe(accessDenied(perms, access, mode));
        }
      }
    }
  });
});
