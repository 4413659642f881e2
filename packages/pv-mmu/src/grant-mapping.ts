/*
 * Grant host mappings in PV page tables: Xen's create_grant_pv_mapping and
 * replace_grant_pv_mapping (xen/arch/x86/pv/grant_table.c), written for this model.
 *
 * Invariants: an entry written here holds no reference of its own making (the grant table took
 * the references, one general and a writable type one when RW, exactly what a validated L1
 * entry holds, so the entry owns them from then on and a page-table teardown gives them
 * back); an entry is written only into a validated L1 page table the mapping domain owns;
 * `create` drops the references of the entry it overwrites; `replace` clears (or fills with an
 * entry moved from `newAddr`) only an entry that maps the granted frame with the grant's
 * present and writable bits. Guest input never throws: failures are GNTST_general_error.
 * Provided for core's `grant-host-mapping` slot by `pvGrantMapping()` (plugin.ts).
 */
import {
  _PAGE_ACCESSED,
  _PAGE_AVAIL,
  _PAGE_DIRTY,
  _PAGE_GLOBAL,
  _PAGE_NX_HI,
  _PAGE_PRESENT,
  _PAGE_RW,
  _PAGE_USER,
  GNTMAP_application_map,
  GNTMAP_contains_pte,
  GNTMAP_readonly,
  GNTST_general_error,
  GNTST_okay,
} from "@hyperlab/abi";
import {
  type Domain,
  type GrantHostMapping,
  PGT_l1_page_table,
  PGT_type_mask,
  type Vcpu,
} from "@hyperlab/core";
import { _PAGE_GNTTAB_HI, _PAGE_GUEST_KERNEL_HI, PTE_MFN_HI_MASK } from "./pte";
import type { PvMmu } from "./service";

const TWO_20 = 0x10_0000;
const TWO_32 = 0x1_0000_0000;
const _GNTMAP_guest_avail0 = 16;

/** grant_to_pte_flags for a RAM frame (no cache attributes): the `lo` flags. */
function grantPteLo(flags: number): number {
  let lo = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY;
  if ((flags & GNTMAP_application_map) !== 0) lo |= _PAGE_USER;
  if ((flags & GNTMAP_readonly) === 0) lo |= _PAGE_RW;
  lo |= ((flags >>> _GNTMAP_guest_avail0) << 9) & _PAGE_AVAIL;
  return lo;
}

/** Where an entry is: the L1 frame and the index in it, or -1. */
const loc = { l1: -1, index: 0 };

export class PvGrantMapping implements GrantHostMapping {
  readonly kind = "pv";
  /** PV page tables give a host mapping's references back when they are torn down. */
  readonly releasedWithPageTables = true;
  private readonly pv: PvMmu;

  constructor(pv: PvMmu) {
    this.pv = pv;
  }

  /**
   * The L1 entry `addr` names for `v` (a linear address under its kernel page tables, or with
   * `containsPte` the machine address of the entry), with a general reference on the L1 that
   * the caller drops; false if there is none, or it is not a validated L1 the domain owns.
   */
  private findEntry(v: Vcpu, addr: number, containsPte: boolean): boolean {
    const d = v.domain;
    const f = this.pv.frames;
    if (containsPte) {
      if (addr % 8 !== 0) return false;
      loc.l1 = Math.floor(addr / 4096);
      loc.index = (addr % 4096) / 8;
    } else {
      if (d.addressSize === 32 && addr >= TWO_32) return false;
      const slot = this.pv.guestL1Slot(v.cr3Mfn, addr);
      if (slot < 0) return false;
      loc.l1 = Math.floor(slot / 512);
      loc.index = slot % 512;
    }
    if (!f.getPage(loc.l1, d.domid)) return false;
    if (
      !this.pv.pt.lockable(loc.l1) ||
      (f.typeInfo[loc.l1] & PGT_type_mask) >>> 0 !== PGT_l1_page_table
    ) {
      f.putPage(loc.l1);
      return false;
    }
    return true;
  }

  create(v: Vcpu, addr: number, mfn: number, flags: number): number {
    if (!this.findEntry(v, addr, (flags & GNTMAP_contains_pte) !== 0)) return GNTST_general_error;
    const pt = this.pv.pt;
    const { l1, index } = loc;
    // adjust_guest_l1e for a 64-bit guest: kernel mappings carry GUEST_KERNEL, user ones GLOBAL.
    let lo = grantPteLo(flags);
    let hi = _PAGE_NX_HI | _PAGE_GNTTAB_HI | (Math.floor(mfn / TWO_20) & PTE_MFN_HI_MASK);
    if ((lo & _PAGE_USER) === 0) {
      lo |= _PAGE_USER;
      hi |= _PAGE_GUEST_KERNEL_HI;
    } else lo |= _PAGE_GLOBAL;
    lo = ((mfn % TWO_20) * 4096 + lo) >>> 0;
    const olo = pt.readLo(l1, index);
    const ohi = pt.readHi(l1, index);
    pt.writeEntry(l1, index, lo, hi >>> 0);
    // A writable translation may now be cached: the frame becomes a page table only after a
    // flush (the grant took its writable type reference outside pt.getPageType).
    if ((lo & _PAGE_RW) !== 0) pt.writableEpoch[mfn] = pt.flushEpoch;
    this.pv.frames.putPage(l1);
    pt.putPageFromL1e(olo, ohi);
    return GNTST_okay;
  }

  replace(v: Vcpu, addr: number, mfn: number, newAddr: number, flags: number): number {
    const containsPte = (flags & GNTMAP_contains_pte) !== 0;
    if (containsPte && newAddr !== 0) return GNTST_general_error;
    const pt = this.pv.pt;
    let nlo = 0;
    let nhi = 0;
    if (newAddr !== 0) {
      // steal_linear_address: the entry at newAddr moves, with its references.
      if (v.domain.addressSize === 32 && newAddr >= TWO_32) return GNTST_general_error;
      if (!this.findEntry(v, newAddr, false)) return GNTST_general_error;
      nlo = pt.readLo(loc.l1, loc.index);
      nhi = pt.readHi(loc.l1, loc.index);
      pt.writeEntry(loc.l1, loc.index, 0, 0);
      this.pv.frames.putPage(loc.l1);
    }
    if (!this.findEntry(v, addr, containsPte)) {
      pt.putPageFromL1e(nlo, nhi);
      return GNTST_general_error;
    }
    const { l1, index } = loc;
    const olo = pt.readLo(l1, index);
    const ohi = pt.readHi(l1, index);
    const want = grantPteLo(flags);
    const omfn = (ohi & PTE_MFN_HI_MASK) * TWO_20 + (olo >>> 12);
    if (omfn !== mfn || ((olo ^ want) & (_PAGE_PRESENT | _PAGE_RW)) !== 0) {
      this.pv.frames.putPage(l1);
      pt.putPageFromL1e(nlo, nhi);
      return GNTST_general_error;
    }
    pt.writeEntry(l1, index, nlo, nhi);
    this.pv.frames.putPage(l1);
    return GNTST_okay;
  }

  flushTlb(d: Domain): void {
    for (const v of d.vcpus) this.pv.flushLocal(v);
  }
}
