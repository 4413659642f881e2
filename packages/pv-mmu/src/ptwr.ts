/*
 * Guest access fix-ups (Xen's arch/x86/pv/ro-page-fault.c, ptwr_emulated_update): a kernel
 * store that faults on a read-only mapping of one of its own L1 page tables, with
 * VMASST_TYPE_writable_pagetables, becomes a validated mmu_update of the entry it covers;
 * and the linear L1 lookup (guest_get_eff_kern_l1e) that finds the entry mapping a VA.
 *
 * Invariant: an emulated store reaches a page table only through modL1Entry, so it is
 * validated exactly as mmu_update validates it; a store to anything else, or one that is not
 * a naturally aligned 1, 2, 4 or 8 bytes, is not emulated and stays a fault. A lookup only
 * reads page tables and answers -1 for what it cannot follow.
 */

import {
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_RW,
  MMU_NORMAL_PT_UPDATE,
  VMASST_TYPE_writable_pagetables,
} from "@hyperlab/abi";
import {
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_reserved_bit,
  PFEC_write_access,
  PGT_l1_page_table,
  PGT_type_mask,
  type Vcpu,
} from "@hyperlab/core";
import type { PvMmuContext } from "./context";
import { TWO_20 } from "./context";
import { PTE_MFN_HI_MASK } from "./pte";
import { HYPERVISOR_VIRT_END_48, HYPERVISOR_VIRT_START_48, VA_LIMIT } from "./xen";

/**
 * After a kernel store at `va` faulted (the fault is in ctx.fault): emulates it as Xen's
 * page-fault handler does when the fault is a write to a present read-only page and the
 * guest enabled writable_pagetables. True if the store took effect; the fault is then not
 * counted, since the guest never sees it.
 */
export function tryPtwr(
  ctx: PvMmuContext,
  v: Vcpu,
  va: number,
  size: number,
  lo: number,
  hi: number,
): boolean {
  const ec = ctx.fault.errorCode;
  if (
    v.inKernel &&
    v.domain.vmAssist.has(VMASST_TYPE_writable_pagetables) &&
    (ec & (PFEC_page_present | PFEC_write_access | PFEC_reserved_bit | PFEC_insn_fetch)) ===
      (PFEC_page_present | PFEC_write_access) &&
    ptwrEmulate(ctx, v, va, size, lo, hi)
  ) {
    ctx.counters.pageFaults.value--; // fixed up by Xen: the guest never sees it
    return true;
  }
  return false;
}

/**
 * Xen's ptwr_emulated_update: the guest wrote `size` bytes at `va`, which its kernel L1
 * maps read-only onto one of its own validated L1 page tables. The write becomes a
 * validated update of the entry it covers. True if handled.
 */
export function ptwrEmulate(
  ctx: PvMmuContext,
  v: Vcpu,
  va: number,
  size: number,
  lo: number,
  hi: number,
): boolean {
  const d = v.domain;
  // guest_get_eff_kern_l1e: the kernel L1 entry that maps va.
  const loc = guestL1Slot(ctx, v.cr3Mfn, va);
  if (loc < 0) return false;
  const l1mfn = Math.floor(loc / 512);
  const slot = loc % 512;
  const plo = ctx.pt.readLo(l1mfn, slot);
  const phi = ctx.pt.readHi(l1mfn, slot);
  if ((plo & (_PAGE_PRESENT | _PAGE_RW)) !== _PAGE_PRESENT) return false;
  const mfn = (phi & PTE_MFN_HI_MASK) * TWO_20 + (plo >>> 12);
  if (!ctx.frames.getPage(mfn, d.domid)) return false;
  let ok = false;
  if (
    ctx.pt.lockable(mfn) &&
    (ctx.frames.typeInfo[mfn] & PGT_type_mask) >>> 0 === PGT_l1_page_table
  ) {
    // Only naturally aligned stores of 1, 2, 4 or 8 bytes.
    if ((size === 1 || size === 2 || size === 4 || size === 8) && va % size === 0) {
      const off = va % 4096;
      const entry = off >>> 3;
      let nlo = lo;
      let nhi = hi;
      if (size !== 8) {
        // A sub-word store: merge into the full entry.
        let olo = ctx.pt.readLo(mfn, entry);
        let ohi = ctx.pt.readHi(mfn, entry);
        const bit = (off % 8) * 8;
        const mask = size === 4 ? 0xffff_ffff : (1 << (size * 8)) - 1;
        if (bit < 32) {
          olo = ((olo & ~(mask << bit)) | ((lo & mask) << bit)) >>> 0;
        } else {
          ohi = ((ohi & ~(mask << (bit - 32))) | ((lo & mask) << (bit - 32))) >>> 0;
        }
        nlo = olo;
        nhi = ohi;
      }
      ok = ctx.pt.modL1Entry(mfn, entry, nlo, nhi, MMU_NORMAL_PT_UPDATE, d, d) === 0;
      if (ok) ctx.counters.ptwrEmulations.value++;
    }
  }
  ctx.frames.putPage(mfn);
  return ok;
}

/**
 * The L1 slot that maps `va` under the L4 `l4` (Xen's map_guest_l1e / linear L1 lookup):
 * l1mfn * 512 + index, or -1 if an upper level is not present or is a superpage.
 */
export function guestL1Slot(ctx: PvMmuContext, l4: number, va: number): number {
  if (
    l4 < 0 ||
    !(va >= 0 && va < VA_LIMIT) ||
    (va >= HYPERVISOR_VIRT_START_48 && va < HYPERVISOR_VIRT_END_48)
  )
    return -1;
  let table = l4;
  for (let level = 4; level >= 2; level--) {
    const shift = 12 + 9 * (level - 1);
    const idx = Math.floor(va / 2 ** shift) % 512;
    const lo = ctx.pt.readLo(table, idx);
    if ((lo & _PAGE_PRESENT) === 0 || (level < 4 && (lo & _PAGE_PSE) !== 0)) return -1;
    const next = (ctx.pt.readHi(table, idx) & PTE_MFN_HI_MASK) * TWO_20 + (lo >>> 12);
    if (next >= ctx.frames.nrFrames) return -1;
    table = next;
  }
  return table * 512 + (Math.floor(va / 4096) % 512);
}
