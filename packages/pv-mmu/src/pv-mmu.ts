/*
 * Xen PV direct paging: page types, validation and the page-table update paths.
 *
 * Invariants (Xen's, xen/arch/x86/mm.c):
 * - A frame with a page-table type (L1..L4) and a nonzero type count is validated: every
 *   present entry in a guest slot holds one general reference on the frame it names, and one
 *   type reference of the next type down (L1 entries: the writable type when RW is set).
 * - So no frame with a page-table or segment-descriptor type is mapped writable by any
 *   validated L1 entry: a writable mapping holds the writable type, and a frame changes type
 *   only at type count zero.
 * - An entry naming its own table (a linear self-map) holds nothing. An entry of an L2..L4
 *   naming another table of its own level (a linear page table) is read-only, names a
 *   validated table, and is counted in `linear`: a table that holds such entries is never the
 *   target of one, and the reverse (Xen's linear_pt_count).
 * - Only this file writes entries of validated page tables, keeping the references above
 *   (grant-mapping.ts installs grant entries whose references the grant table took; the
 *   walker sets only A and D, which need no references).
 */

import * as abi from "@hyperlab/abi";
import type { Domain, FrameTable, Hypervisor, IomemService } from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import { RO_MPT_SLOT, ROOT_PAGETABLE_FIRST_XEN_SLOT, ROOT_PAGETABLE_LAST_XEN_SLOT } from "./xen";

const { VMASST_TYPE_m2p_strict } = abi;

/**
 * The constants this file's validation paths use, under Xen's names, as a const enum: esbuild
 * (tsx for the bench, tsup for dist) writes each use as a number literal. An imported binding
 * is a module-cell load with a TDZ check at every use, and a bundle turns a module's `const`
 * into a `var`, a context-slot load: a dozen instructions per use per entry validated, and
 * bytecode that kept mod_l1_entry's callees from inlining into mmu_update's loop. Each value
 * is checked against its source (@hyperlab/abi, @hyperlab/core, ./pte) by
 * test/pv-constants.test.ts.
 */
// biome-ignore-start lint/suspicious/noDuplicateEnumValues: constants that share a value
export const enum K {
  // x86 page-table entry bits (abi)
  _PAGE_PRESENT = 0x1,
  _PAGE_RW = 0x2,
  _PAGE_USER = 0x4,
  _PAGE_PWT = 0x8,
  _PAGE_PCD = 0x10,
  _PAGE_ACCESSED = 0x20,
  _PAGE_DIRTY = 0x40,
  _PAGE_PAT = 0x80,
  _PAGE_GLOBAL = 0x100,
  // errno values and mmu_update's command (abi)
  EPERM = 1,
  EACCES = 13,
  EBUSY = 16,
  EINVAL = 22,
  MMU_PT_UPDATE_PRESERVE_AD = 2,
  // the frame table (core)
  FRAME_FREE = -1,
  IOMEM_ACCESS_RO = 1,
  PGC_count_mask = (1 << 28) - 1,
  PGC_xen_heap = 1 << 30,
  PGT_count_mask = (1 << 26) - 1,
  PGT_validated = 1 << 27,
  PGT_pinned = 1 << 28,
  PGT_l1_page_table = 1 << 29,
  PGT_l2_page_table = 2 << 29,
  PGT_l3_page_table = 3 << 29,
  PGT_l4_page_table = (4 << 29) >>> 0,
  PGT_writable_page = (7 << 29) >>> 0,
  PGT_type_mask = (7 << 29) >>> 0,
  // Xen's own entry bits and masks (./pte)
  _PAGE_GUEST_KERNEL_HI = 0x0010_0000,
  PTE_MFN_HI_MASK = 0x000f_ffff,
  PAGE_CACHE_ATTRS = _PAGE_PAT | _PAGE_PCD | _PAGE_PWT,
  L1_DISALLOW_LO = _PAGE_PWT | _PAGE_PCD | _PAGE_PAT,
  L1_DISALLOW_HI = 0x4000_0000,
  L1_DISALLOW_IO_LO = 0,
  L2_DISALLOW_LO = _PAGE_PWT | _PAGE_PCD | _PAGE_PAT | _PAGE_GLOBAL,
  L3_DISALLOW_LO = L2_DISALLOW_LO,
  L4_DISALLOW_LO = L2_DISALLOW_LO,
  FASTPATH_LO = 0xe00 | _PAGE_GLOBAL | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_USER,
  FASTPATH_HI = -0x10_0000,
  FASTPATH_PDE_LO = FASTPATH_LO,
  FASTPATH_PDE_HI = FASTPATH_HI,
  // this file's own
  TWO_20 = 0x10_0000,
  /** promoteL1's inner loop: masked high words below this, frame numbers below 2^30. */
  INNER_HI_LIMIT = 0x400,
  INNER_MFN_LIMIT = 0x4000_0000,
  /** The frame number Xen reads as INVALID_MFN in an entry (all address bits set). */
  INVALID_MFN_IN_PTE = 0xff_ffff_ffff,
  LINEAR_MAX = 0x7fff,
  /** type_info of a frame whose first writable reference was just taken. */
  WRITABLE_ONE = (PGT_writable_page | PGT_validated | 1) >>> 0,
  TYPE_AND_VALIDATED = (PGT_type_mask | PGT_validated) >>> 0,
  WRITABLE_VALIDATED = (PGT_writable_page | PGT_validated) >>> 0,
  L1_VALIDATED = (PGT_l1_page_table | PGT_validated) >>> 0,
  MMU_PT_UPDATE_NO_TRANSLATE = 3,
}
// biome-ignore-end lint/suspicious/noDuplicateEnumValues: constants that share a value

/** TLB maintenance the page-table code needs from the MMU backend. */
export interface TlbMaintenance {
  /** Flushes every vCPU of `domid` (Xen: flush_tlb_mask(d->dirty_cpumask)). */
  flushDomain(domid: number): void;
  /** Flushes every vCPU in the system. */
  flushEverything(): void;
}

/** Whether `a` may act on `b` (XSM's dummy XSM_TARGET rule: itself, privileged, or its target). */
export function xsmTarget(a: Domain, b: Domain): boolean {
  return a === b || a.isPrivileged || a.target === b.domid;
}

export class PvPageTables {
  // Fields the constructor sets are `declare`d: an ES2022 class field is defined as
  // undefined first, and V8 then tracks neither its representation nor its value's map, so
  // every use of a typed array read from it re-checks the map.
  declare readonly hv: Hypervisor;
  declare readonly frames: FrameTable;
  declare readonly ram: Ram;
  /** The frame table's arrays, for the inline common cases of the L1 paths. */
  declare private readonly nrFrames: number;
  /** The frame table's owner keys (core's ownerKey, ~domid), compared with a precomputed key. */
  declare private readonly ownerKeys: Int32Array;
  declare private readonly countInfo: Uint32Array;
  declare private readonly typeInfo: Uint32Array;
  /** Xen's linear_pt_count: > 0 linear entries this table holds; < 0 uses of it as a linear target. */
  declare readonly linear: Int16Array;
  /**
   * Flush epoch in which each frame last lost a writable mapping (Xen's tlbflush_timestamp,
   * set as the writable type count drops): while a frame is mapped writable any TLB may cache
   * that, so one unmapped since the last full flush changes to a page-table type only after a
   * flush.
   */
  declare readonly writableEpoch: Uint32Array;
  flushEpoch = 1;
  /** The L3 of Xen's read-only M2P mapping, for slot 256 of guest L4s; -1 if none. */
  roMptL3 = -1;
  declare tlb: TlbMaintenance;
  /** Count of entries validated and released (stats). */
  readonly counts = { validatedL1e: 0, promotions: 0, demotions: 0, typeChangeFlushes: 0 };

  constructor(hv: Hypervisor, tlb: TlbMaintenance) {
    this.hv = hv;
    this.frames = hv.frames;
    this.ram = hv.machine.ram;
    this.nrFrames = this.frames.nrFrames;
    this.ownerKeys = this.frames.ownerKeys;
    this.countInfo = this.frames.countInfo;
    this.typeInfo = this.frames.typeInfo;
    this.tlb = tlb;
    this.linear = new Int16Array(this.frames.nrFrames);
    this.writableEpoch = new Uint32Array(this.frames.nrFrames);
    for (const type of [
      K.PGT_l1_page_table,
      K.PGT_l2_page_table,
      K.PGT_l3_page_table,
      K.PGT_l4_page_table,
    ]) {
      this.frames.setTypeHooks(type, {
        validate: (mfn, t) => this.validate(mfn, t),
        devalidate: (mfn, t) => this.devalidate(mfn, t),
      });
    }
  }

  // ---- entry access ----

  /** lo half of the entry at index `i` of table `mfn`. */
  readLo(mfn: number, i: number): number {
    return this.ram.frameWords(mfn, false)[i * 2];
  }

  readHi(mfn: number, i: number): number {
    return this.ram.frameWords(mfn, false)[i * 2 + 1];
  }

  writeEntry(mfn: number, i: number, lo: number, hi: number): void {
    const w = this.ram.frameWords(mfn, true);
    const b = i * 2;
    w[b] = lo;
    w[b + 1] = hi;
  }

  private domainOf(mfn: number): Domain | undefined {
    const o = this.frames.ownerOf(mfn);
    return o === K.FRAME_FREE ? undefined : this.hv.domain(o);
  }

  /** Type reference (the frame table's get_page_type). */
  getPageType(mfn: number, type: number): number {
    return this.frames.getPageType(mfn, type);
  }

  /** A full TLB flush of every vCPU: stale writable translations are gone after it. */
  flushAll(): void {
    this.tlb.flushEverything();
    this.flushEpoch++;
  }

  // ---- L1 ----

  /**
   * The `iomem` slot when a provider is composed (looked up once, after boot), else null: then
   * every PTE to a frame that is not RAM is refused with -EPERM, as before iomap existed.
   */
  private iomemSvc: IomemService | null | undefined;
  get iomem(): IomemService | null {
    if (this.iomemSvc === undefined) {
      if (!this.hv.isBooted) return null;
      this.iomemSvc = this.hv.hasSlot("iomem") ? this.hv.slot("iomem") : null;
    }
    return this.iomemSvc;
  }

  /**
   * Xen's l1_disallow_mask(d): cache attributes are allowed only to domains with I/O rights
   * (privileged here, or holding some I/O memory).
   */
  l1DisallowLo(d: Domain): number {
    if (d.isPrivileged) return K.L1_DISALLOW_IO_LO;
    const io = this.iomem;
    return io !== null && io.iomemRanges(d).length > 0 ? K.L1_DISALLOW_IO_LO : K.L1_DISALLOW_LO;
  }

  /**
   * get_page_from_l1e for a frame that is not RAM: I/O memory. Both the page owner (the
   * caller for DOMID_IO) and the table's owner need it in iomem_caps (-EPERM otherwise).
   * Accepted, it answers the flags the caller flips in the entry, as Xen 4.17 does: RW off in
   * a read-only MMIO range (Xen forces read-only access, it does not refuse), and a write-back
   * entry made uncached (PCD|PWT), a write-through one made uncached (PCD) and a
   * write-protect one too (PCD set, PAT cleared).
   */
  private getIoPageFromL1e(lo: number, mfn: number, l1eOwner: Domain, pgOwner: Domain): number {
    const io = this.iomem;
    if (io === null) return -K.EPERM;
    const a = io.mmioAccess(pgOwner, mfn);
    if (a < 0) return -K.EPERM;
    let access = a;
    if (pgOwner !== l1eOwner) {
      const b = io.mmioAccess(l1eOwner, mfn);
      if (b < 0) return -K.EPERM;
      if (b === K.IOMEM_ACCESS_RO) access = b;
    }
    let flip = 0;
    if (access === K.IOMEM_ACCESS_RO && (lo & K._PAGE_RW) !== 0) flip |= K._PAGE_RW;
    const cache = lo & K.PAGE_CACHE_ATTRS;
    if (cache === 0) flip |= K._PAGE_PWT | K._PAGE_PCD;
    else if (cache === K._PAGE_PWT || cache === (K._PAGE_PWT | K._PAGE_PAT)) {
      flip |= K._PAGE_PCD | (cache & K._PAGE_PAT);
    }
    return flip;
  }

  /**
   * Xen's get_page_from_l1e: the references a present L1 entry holds. 0, flags the caller
   * flips in the entry (> 0, only for I/O memory), or -errno: -EINVAL bad flags, -EPERM a
   * frame that is not RAM without I/O memory permission, -EBUSY a frame the domain may not
   * map (or may not map writable), -EACCES a cache attribute on a Xen heap page.
   */
  getPageFromL1e(lo: number, hi: number, l1eOwner: Domain, pgOwnerIn: Domain): number {
    if ((lo & this.l1DisallowLo(l1eOwner)) !== 0 || (hi & K.L1_DISALLOW_HI) !== 0) return -K.EINVAL;
    return this.getPageFromL1eFlagsChecked(lo, hi, l1eOwner, pgOwnerIn);
  }

  /**
   * getPageFromL1e after its caller checked the flags against l1_disallow_mask(l1eOwner).
   * The common case (a RAM frame of the page owner, no cache attributes) stays in this small
   * function, so that it inlines into mod_l1_entry; the rare ones are calls.
   */
  private getPageFromL1eFlagsChecked(
    lo: number,
    hi: number,
    l1eOwner: Domain,
    pgOwner: Domain,
  ): number {
    const mfn = (hi & K.PTE_MFN_HI_MASK) * K.TWO_20 + (lo >>> 12);
    // The common case whole, changing nothing unless it succeeds: a RAM frame of the page
    // owner that can take a reference, no cache attribute, and if writable a type count of
    // zero or a validated writable type below its limit. Anything else: the general path.
    if (
      mfn < this.nrFrames &&
      this.ownerKeys[mfn] === ~pgOwner.domid &&
      (lo & K.PAGE_CACHE_ATTRS) === 0
    ) {
      const ci = this.countInfo;
      const c = ci[mfn];
      const n = c & K.PGC_count_mask;
      if (n !== 0 && n < K.PGC_count_mask - 1) {
        if ((lo & K._PAGE_RW) === 0) {
          ci[mfn] = c + 1;
          return 0;
        }
        const ti = this.typeInfo;
        const x = ti[mfn];
        const count = x & K.PGT_count_mask;
        if (count === 0) {
          ti[mfn] = K.WRITABLE_ONE;
          ci[mfn] = c + 1;
          return 0;
        }
        if (
          (x & K.TYPE_AND_VALIDATED) >>> 0 === K.WRITABLE_VALIDATED &&
          count !== K.PGT_count_mask
        ) {
          ti[mfn] = x + 1;
          ci[mfn] = c + 1;
          return 0;
        }
      }
    }
    return this.getPageFromL1eGeneral(lo, mfn, l1eOwner, pgOwner);
  }

  /** getPageFromL1eFlagsChecked for frame `mfn`, in every case. */
  private getPageFromL1eGeneral(
    lo: number,
    mfn: number,
    l1eOwner: Domain,
    pgOwner: Domain,
  ): number {
    // Not RAM: I/O memory, which needs iomem permission (the iomem slot; none: -EPERM).
    if (mfn >= this.nrFrames) return this.getNotRamPageFromL1e(lo, mfn, l1eOwner, pgOwner);
    // page_get_owner_and_reference: none on a free frame, at count 0 (not allocated) or at
    // the top two counts (reserved, as in Xen).
    const ci = this.countInfo;
    const c = ci[mfn];
    const n = c & K.PGC_count_mask;
    const owner = ~this.ownerKeys[mfn];
    if (owner === K.FRAME_FREE || n === 0 || n >= K.PGC_count_mask - 1) return -K.EBUSY;
    ci[mfn] = c + 1;
    if (owner !== pgOwner.domid && !this.mayMapOwnersFrame(owner, l1eOwner, pgOwner)) {
      this.frames.putPage(mfn);
      return -K.EBUSY;
    }
    if ((lo & K._PAGE_RW) !== 0 && this.getWritableType(mfn) !== 0) {
      this.frames.putPage(mfn);
      return -K.EBUSY;
    }
    if ((lo & K.PAGE_CACHE_ATTRS) !== 0 && (ci[mfn] & K.PGC_xen_heap) !== 0) {
      if ((lo & K._PAGE_RW) !== 0) this.frames.putPageType(mfn);
      this.frames.putPage(mfn);
      return -K.EACCES;
    }
    return 0;
  }

  /** get_page_from_l1e of a frame number beyond RAM. */
  private getNotRamPageFromL1e(lo: number, mfn: number, l1eOwner: Domain, pgOwner: Domain): number {
    if (mfn === K.INVALID_MFN_IN_PTE) return -K.EINVAL;
    return this.getIoPageFromL1e(lo, mfn, l1eOwner, pgOwner);
  }

  /**
   * Whether the page owner may map a frame `owner` owns: a privileged caller may pass on its
   * right to map its target's frames (never for its own tables).
   */
  private mayMapOwnersFrame(owner: number, l1eOwner: Domain, pgOwner: Domain): boolean {
    const realDom = this.hv.domain(owner);
    return realDom !== undefined && pgOwner !== l1eOwner && xsmTarget(pgOwner, realDom);
  }

  /**
   * get_page_type(mfn, PGT_writable_page), with the frame table's two common cases inline (a
   * type count of zero, which takes the writable type at once as no validator runs for it,
   * and a validated writable type below its count limit); anything else goes to the frame
   * table.
   */
  private getWritableType(mfn: number): number {
    const ti = this.typeInfo;
    const x = ti[mfn];
    const count = x & K.PGT_count_mask;
    if (count === 0) {
      ti[mfn] = K.WRITABLE_ONE;
      return 0;
    }
    if ((x & K.TYPE_AND_VALIDATED) >>> 0 === K.WRITABLE_VALIDATED && count !== K.PGT_count_mask) {
      ti[mfn] = x + 1;
      return 0;
    }
    return this.frames.getPageType(mfn, K.PGT_writable_page);
  }

  /**
   * Xen's put_page_from_l1e. put_page_type and put_page are the frame table's, inline for a
   * writable type (no devalidation) and for a general count that stays above zero.
   */
  putPageFromL1e(lo: number, hi: number): void {
    if ((lo & K._PAGE_PRESENT) === 0) return;
    const mfn = (hi & K.PTE_MFN_HI_MASK) * K.TWO_20 + (lo >>> 12);
    if (mfn >= this.nrFrames) return;
    if ((lo & K._PAGE_RW) !== 0) {
      this.writableEpoch[mfn] = this.flushEpoch;
      const ti = this.typeInfo;
      const x = ti[mfn];
      const count = x & K.PGT_count_mask;
      if (count > 1) ti[mfn] = x - 1;
      else if (count === 1 && (x & K.PGT_type_mask) >>> 0 === K.PGT_writable_page) {
        ti[mfn] = ((x & ~K.PGT_validated & ~K.PGT_pinned) - 1) >>> 0;
      } else this.frames.putPageType(mfn);
    }
    const ci = this.countInfo;
    const c = ci[mfn];
    if ((c & K.PGC_count_mask) > 1) ci[mfn] = c - 1;
    else this.frames.putPage(mfn);
  }

  // ---- L2..L4 ----

  /**
   * Xen's get_page_from_l2e / l3e / l4e: the next table down, by type, or a read-only
   * linear entry naming a validated table of the same level. 0 or -errno.
   */
  getPageFromLne(level: number, lo: number, hi: number, tableMfn: number, d: Domain): number {
    const disallow =
      level === 2 ? K.L2_DISALLOW_LO : level === 3 ? K.L3_DISALLOW_LO : K.L4_DISALLOW_LO;
    if ((lo & disallow) !== 0) return -K.EINVAL;
    const mfn = (hi & K.PTE_MFN_HI_MASK) * K.TWO_20 + (lo >>> 12);
    const childType = (((level - 1) << 29) >>> 0) as number;
    let rc: number;
    if (!this.frames.getPage(mfn, d.domid)) {
      rc = -K.EINVAL;
    } else {
      rc = this.frames.getPageType(mfn, childType);
      if (rc !== 0) this.frames.putPage(mfn);
    }
    if (rc === -K.EINVAL && this.getLinearPagetable(level, lo, mfn, tableMfn, d)) rc = 0;
    return rc;
  }

  /** Xen's get_lN_linear_pagetable: true if the entry is an acceptable linear entry. */
  private getLinearPagetable(
    level: number,
    lo: number,
    mfn: number,
    tableMfn: number,
    d: Domain,
  ): boolean {
    if ((lo & K._PAGE_RW) !== 0) return false;
    if (mfn === tableMfn) return true; // a self-map holds no reference
    if (!this.frames.ownedBy(tableMfn, d.domid)) return false;
    if (!this.frames.getPage(mfn, d.domid)) return false;
    const lin = this.linear;
    if (lin[tableMfn] < 0 || lin[tableMfn] >= K.LINEAR_MAX) {
      this.frames.putPage(mfn);
      return false;
    }
    if (lin[mfn] > 0 || lin[mfn] <= -K.LINEAR_MAX) {
      this.frames.putPage(mfn);
      return false;
    }
    const x = this.frames.typeInfo[mfn];
    const want = ((level << 29) | K.PGT_validated) >>> 0;
    if (
      (x & K.PGT_count_mask) === K.PGT_count_mask ||
      (x & (K.PGT_type_mask | K.PGT_validated)) >>> 0 !== want
    ) {
      this.frames.putPage(mfn);
      return false;
    }
    lin[tableMfn]++;
    lin[mfn]--;
    this.frames.typeInfo[mfn] = x + 1;
    return true;
  }

  /** Xen's put_page_from_l2e / l3e / l4e (the deferred put is done at once). */
  putPageFromLne(lo: number, hi: number, tableMfn: number): void {
    if ((lo & K._PAGE_PRESENT) === 0) return;
    const mfn = (hi & K.PTE_MFN_HI_MASK) * K.TWO_20 + (lo >>> 12);
    if (mfn === tableMfn) return;
    if (((this.frames.typeInfo[mfn] ^ this.frames.typeInfo[tableMfn]) & K.PGT_type_mask) === 0) {
      this.linear[mfn]++;
      this.linear[tableMfn]--;
    }
    this.frames.putPageType(mfn);
    this.frames.putPage(mfn);
  }

  // ---- promotion and demotion (the frame table's type hooks) ----

  private validate(mfn: number, type: number): number {
    const d = this.domainOf(mfn);
    if (d === undefined) return -K.EINVAL;
    // A frame that may still be writable in some TLB becomes a page table only after a flush.
    if (this.writableEpoch[mfn] === this.flushEpoch) {
      this.counts.typeChangeFlushes++;
      this.flushAll();
    }
    this.linear[mfn] = 0;
    this.counts.promotions++;
    switch (type) {
      case K.PGT_l1_page_table:
        return this.promoteL1(mfn, d);
      case K.PGT_l4_page_table:
        return this.promoteLn(4, mfn, d);
      case K.PGT_l3_page_table:
        return this.promoteLn(3, mfn, d);
      default:
        return this.promoteLn(2, mfn, d);
    }
  }

  /**
   * promote_l1: get_page_from_l1e for every present entry, then adjust_guest_l1e's form
   * written back where it differs; on a failure the entries already taken are released.
   *
   * Written for V8: get_page_from_l1e's common case (getPageFromL1eFlagsChecked's) is
   * written out over locals loaded once per table (the frame table's arrays, the domain's
   * id, the frame count), the loop steps over entry words (no index arithmetic to check for
   * overflow), the frame number is an int32 (a masked high word below 2^10 keeps it below
   * 2^30; a larger one takes the general path, exact for any frame number), and the
   * table's writable view is taken at its first write (the write hook hears of the frame
   * once). Anything else is getPageFromL1eFlagsChecked's general path, a call.
   */
  private promoteL1(mfn: number, d: Domain): number {
    const w = this.ram.frameWords(mfn, false);
    // l1_disallow_mask(d), once for the table (`| 0`: an untagged int32 in the loop).
    const disallowLo = this.l1DisallowLo(d) | 0;
    // Low bits that send an entry to the general path: disallowed ones and cache attributes.
    const slowLo = disallowLo | K.PAGE_CACHE_ATTRS;
    const keys = this.ownerKeys;
    const ci = this.countInfo;
    const ti = this.typeInfo;
    const key = ~d.domid;
    let ww: Uint32Array | null = null;
    for (let b = 0; b < 1024; b += 2) {
      // `| 0`: int32 whatever the frame number (a u32 above 2^31 is not a Smi).
      const lo = w[b] | 0;
      if ((lo & K._PAGE_PRESENT) === 0) continue;
      const hi = w[b + 1] | 0;
      let taken = false;
      const hm = hi & K.PTE_MFN_HI_MASK;
      // Below 2^30 when hm is below INNER_HI_LIMIT; a frame beyond RAM is beyond `owner`,
      // whose element there is undefined, not the domain's id.
      const m = (hm << 20) | (lo >>> 12);
      if (
        ((lo & slowLo) | (hi & K.L1_DISALLOW_HI)) === 0 &&
        hm < K.INNER_HI_LIMIT &&
        keys[m] === key
      ) {
        const c = ci[m];
        // 0 < count < PGC_count_mask - 1, as one unsigned compare.
        if (((c & K.PGC_count_mask) - 1) >>> 0 < K.PGC_count_mask - 2) {
          if ((lo & K._PAGE_RW) === 0) {
            ci[m] = c + 1;
            taken = true;
          } else {
            const x = ti[m];
            const count = x & K.PGT_count_mask;
            if (count === 0) {
              ti[m] = K.WRITABLE_ONE;
              ci[m] = c + 1;
              taken = true;
            } else if (
              (x & K.TYPE_AND_VALIDATED) >>> 0 === K.WRITABLE_VALIDATED &&
              count !== K.PGT_count_mask
            ) {
              ti[m] = x + 1;
              ci[m] = c + 1;
              taken = true;
            }
          }
        }
      }
      let flip = 0;
      if (!taken) {
        flip =
          (lo & disallowLo) !== 0 || (hi & K.L1_DISALLOW_HI) !== 0
            ? -K.EINVAL
            : this.getPageFromL1eFlagsChecked(lo, hi, d, d);
        if (flip < 0) {
          for (let j = b - 2; j >= 0; j -= 2) this.putPageFromL1e(w[j], w[j + 1]);
          return flip;
        }
      }
      // adjust_guest_l1e (with get_page_from_l1e's flips), all int32. Nothing changes for an
      // entry with USER and _PAGE_GUEST_KERNEL_HI and no flips (one expression, not `||`: an
      // operand a first pin never evaluated would have no type feedback, and a later pin
      // that reached it would deoptimize).
      if ((flip | (~lo & K._PAGE_USER) | (~hi & K._PAGE_GUEST_KERNEL_HI)) !== 0) {
        let nlo = lo ^ flip;
        let nhi = hi;
        if ((nlo & K._PAGE_USER) === 0) {
          nlo |= K._PAGE_USER;
          nhi |= K._PAGE_GUEST_KERNEL_HI;
        }
        if ((nhi & K._PAGE_GUEST_KERNEL_HI) === 0) nlo |= K._PAGE_GLOBAL | K._PAGE_USER;
        if (((nlo ^ lo) | (nhi ^ hi)) !== 0) {
          if (ww === null) ww = this.ram.frameWords(mfn, true);
          ww[b] = nlo;
          ww[b + 1] = nhi;
        }
      }
    }
    this.counts.validatedL1e += 512;
    return 0;
  }

  /** Whether slot `i` of an L4 belongs to the guest (Xen's is_guest_l4_slot, 64-bit). */
  static isGuestL4Slot(i: number): boolean {
    return i < ROOT_PAGETABLE_FIRST_XEN_SLOT || i > ROOT_PAGETABLE_LAST_XEN_SLOT;
  }

  private promoteLn(level: number, mfn: number, d: Domain): number {
    const w = this.ram.frameWords(mfn, false);
    for (let i = 0; i < 512; i++) {
      if (level === 4 && !PvPageTables.isGuestL4Slot(i)) continue;
      const lo = w[i * 2];
      if ((lo & K._PAGE_PRESENT) === 0) continue;
      const hi = w[i * 2 + 1];
      const rc = this.getPageFromLne(level, lo, hi, mfn, d);
      if (rc !== 0) {
        for (let j = i - 1; j >= 0; j--) {
          if (level === 4 && !PvPageTables.isGuestL4Slot(j)) continue;
          this.putPageFromLne(w[j * 2], w[j * 2 + 1], mfn);
        }
        return rc;
      }
      // adjust_guest_l2e/l3e add USER; adjust_guest_l4e adds USER and ACCESSED.
      const add = level === 4 ? K._PAGE_USER | K._PAGE_ACCESSED : K._PAGE_USER;
      if ((lo & add) !== add) this.writeEntry(mfn, i, (lo | add) >>> 0, hi);
    }
    if (level === 4) this.initXenL4Slots(mfn, d.vmAssist.has(VMASST_TYPE_m2p_strict));
    return 0;
  }

  /**
   * Xen's init_xen_l4_slots, reduced to what a guest can see: slot 256 maps the read-only M2P
   * when `roMpt`; the other Xen slots (257..271) are cleared (Xen fills them with its own
   * supervisor-only mappings, which a PV guest running in ring 3 cannot use).
   */
  initXenL4Slots(mfn: number, roMpt: boolean): void {
    for (let i = ROOT_PAGETABLE_FIRST_XEN_SLOT; i <= ROOT_PAGETABLE_LAST_XEN_SLOT; i++)
      this.writeEntry(mfn, i, 0, 0);
    if (roMpt) this.fillRoMpt(mfn);
  }

  /** Xen's fill_ro_mpt: maps the read-only M2P in slot 256 if that slot is empty. */
  fillRoMpt(mfn: number): boolean {
    if (this.roMptL3 < 0) return false;
    if (this.readLo(mfn, RO_MPT_SLOT) !== 0 || this.readHi(mfn, RO_MPT_SLOT) !== 0) return false;
    const m = this.roMptL3;
    this.writeEntry(
      mfn,
      RO_MPT_SLOT,
      ((m % K.TWO_20) * 4096 + (K._PAGE_PRESENT | K._PAGE_USER | K._PAGE_ACCESSED)) >>> 0,
      Math.floor(m / K.TWO_20),
    );
    return true;
  }

  /** Xen's zap_ro_mpt. */
  zapRoMpt(mfn: number): void {
    this.writeEntry(mfn, RO_MPT_SLOT, 0, 0);
  }

  /** Releases what a page table's entries hold (demotion; also forced at domain teardown). */
  devalidateForTeardown(mfn: number, type: number): void {
    this.devalidate(mfn, type);
  }

  private devalidate(mfn: number, type: number): void {
    this.counts.demotions++;
    const w = this.ram.frameWords(mfn, false);
    if (type === K.PGT_l1_page_table) {
      for (let i = 0; i < 512; i++) {
        // `| 0`: an int32 whatever the frame number (a u32 above 2^31 is not a Smi).
        const lo = w[i * 2] | 0;
        if ((lo & K._PAGE_PRESENT) !== 0) this.putPageFromL1e(lo, w[i * 2 + 1]);
      }
      return;
    }
    const isL4 = type === K.PGT_l4_page_table;
    for (let i = 511; i >= 0; i--) {
      if (isL4 && !PvPageTables.isGuestL4Slot(i)) continue;
      const lo = w[i * 2];
      if ((lo & K._PAGE_PRESENT) !== 0) this.putPageFromLne(lo, w[i * 2 + 1], mfn);
    }
  }

  // ---- entry updates ----

  /**
   * Xen's mod_l1_entry: replaces entry `i` of L1 table `l1mfn` with (nlo, nhi), taking the
   * references the new entry needs before dropping the old one's. 0 or -errno. A batch may
   * pass `disallowLo`, l1DisallowLo(ptDom), computed once for all its requests.
   */
  modL1Entry(
    l1mfn: number,
    i: number,
    nloIn: number,
    nhiIn: number,
    cmd: number,
    ptDom: Domain,
    pgDom: Domain,
    disallowLo: number = this.l1DisallowLo(ptDom),
  ): number {
    const w = this.ram.frameWords(l1mfn, true);
    return this.modL1EntryIn(w, i, nloIn, nhiIn, cmd, ptDom, pgDom, disallowLo);
  }

  /**
   * modL1Entry on `w`, the L1's words as `ram.frameWords(l1mfn, true)` handed them out (a
   * batch takes the view once for all its requests on one table).
   */
  modL1EntryIn(
    w: Uint32Array,
    i: number,
    nloIn: number,
    nhiIn: number,
    cmd: number,
    ptDom: Domain,
    pgDom: Domain,
    disallowLo: number,
  ): number {
    const b = i * 2;
    const olo = w[b];
    const ohi = w[b + 1];
    let nlo = nloIn;
    let nhi = nhiIn;
    if ((nlo & K._PAGE_PRESENT) !== 0) {
      if ((nlo & disallowLo) !== 0 || (nhi & K.L1_DISALLOW_HI) !== 0) return -K.EINVAL;
      // adjust_guest_l1e
      if ((nlo & K._PAGE_USER) === 0) {
        nlo |= K._PAGE_USER;
        nhi |= K._PAGE_GUEST_KERNEL_HI;
      }
      if ((nhi & K._PAGE_GUEST_KERNEL_HI) === 0) nlo |= K._PAGE_GLOBAL | K._PAGE_USER;
      if (cmd === K.MMU_PT_UPDATE_PRESERVE_AD) nlo |= olo & (K._PAGE_ACCESSED | K._PAGE_DIRTY);
      // Fast path: same frame, only whitelisted flags change.
      if (((olo ^ nlo) & ~K.FASTPATH_LO) === 0 && ((ohi ^ nhi) & ~K.FASTPATH_HI) === 0) {
        w[b] = nlo >>> 0;
        w[b + 1] = nhi >>> 0;
        return 0;
      }
      const rc = this.getPageFromL1eFlagsChecked(nlo, nhi, ptDom, pgDom);
      if (rc < 0) return rc;
      nlo ^= rc;
      this.counts.validatedL1e++;
    } else if (cmd === K.MMU_PT_UPDATE_PRESERVE_AD) {
      nlo |= olo & (K._PAGE_ACCESSED | K._PAGE_DIRTY);
    }
    w[b] = nlo >>> 0;
    w[b + 1] = nhi >>> 0;
    if ((olo & K._PAGE_PRESENT) !== 0) this.putPageFromL1e(olo, ohi);
    return 0;
  }

  /**
   * mmu_update's common request, for a run of them: from request `start` of `reqs` (4 words
   * a request: ptr lo, hi, val lo, hi) up to `count`, each request that updates an entry of
   * validated L1 `l1Mfn` (MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD or
   * MMU_PT_UPDATE_NO_TRANSLATE; `w` is the table's view as `ram.frameWords(l1Mfn, true)`
   * handed it out) and that mod_l1_entry completes through get_page_from_l1e's common case
   * (getPageFromL1eFlagsChecked's). The caller has checked the rights over both owners.
   * Returns the index of the first request it did not do; that request is untouched (any
   * reference taken for it was given back), for the caller's general path, which also
   * answers its errno.
   * `ptKey` and `pgKey` are the table owner's and the page owner's keys in the frame table
   * (core's ownerKey), compared with ownerKeys as they are.
   *
   * Each request does what mmuUpdate's general path does, in its order: get_page on the
   * table, mod_l1_entry (get_page_from_l1e of the new entry before put_page_from_l1e of the
   * old one) and put_page on the table. Written out over locals in one call-free loop (only
   * the rare put cases call the frame table), so that no per-request call or inlining
   * decision of V8 sits on mmu_update's hot path.
   */
  modL1Run(
    reqs: Uint32Array,
    start: number,
    count: number,
    l1Mfn: number,
    w: Uint32Array,
    ptKey: number,
    pgKey: number,
    disallowLo: number,
  ): number {
    const keys = this.ownerKeys;
    const ci = this.countInfo;
    const ti = this.typeInfo;
    const epoch = this.writableEpoch;
    // Frame numbers written out here are below 2^30 (INNER_HI_LIMIT), so this is exact.
    const nr = Math.min(this.nrFrames, K.INNER_MFN_LIMIT) | 0;
    const n0 = count | 0;
    const l1 = l1Mfn | 0;
    if (l1 !== l1Mfn || l1 >= nr) return start;
    const tableLo = l1 & (K.TWO_20 - 1);
    const tableHi = l1 >>> 20;
    const ptK = ptKey | 0;
    const pgK = pgKey | 0;
    const dis = disallowLo | 0;
    let validated = 0;
    let i = start | 0;
    for (; i < n0; i++) {
      const q = i * 4;
      const plo = reqs[q] | 0;
      const cmd = plo & 7;
      if (cmd !== 0 && cmd !== K.MMU_PT_UPDATE_PRESERVE_AD && cmd !== K.MMU_PT_UPDATE_NO_TRANSLATE)
        break;
      if (plo >>> 12 !== tableLo || (reqs[q + 1] | 0) !== tableHi) break;
      // get_page(l1Mfn, ptOwner), and the table still a validated L1 in use.
      if (keys[l1] !== ptK) break;
      const tc = ci[l1];
      const tn = tc & K.PGC_count_mask;
      if (tn === 0 || tn >= K.PGC_count_mask - 1) break;
      const tx = ti[l1];
      if ((tx & K.TYPE_AND_VALIDATED) >>> 0 !== K.L1_VALIDATED || (tx & K.PGT_count_mask) === 0)
        break;
      ci[l1] = tc + 1;
      // mod_l1_entry
      const b = ((plo & 0xfff) >>> 3) * 2;
      const olo = w[b] | 0;
      const ohi = w[b + 1] | 0;
      let nlo = reqs[q + 2] | 0;
      let nhi = reqs[q + 3] | 0;
      if ((nlo & K._PAGE_PRESENT) !== 0) {
        if ((nlo & dis) !== 0 || (nhi & K.L1_DISALLOW_HI) !== 0) {
          ci[l1] = tc;
          break;
        }
        // adjust_guest_l1e
        if ((nlo & K._PAGE_USER) === 0) {
          nlo |= K._PAGE_USER;
          nhi |= K._PAGE_GUEST_KERNEL_HI;
        }
        if ((nhi & K._PAGE_GUEST_KERNEL_HI) === 0) nlo |= K._PAGE_GLOBAL | K._PAGE_USER;
        if (cmd === K.MMU_PT_UPDATE_PRESERVE_AD) nlo |= olo & (K._PAGE_ACCESSED | K._PAGE_DIRTY);
        // Fast path: same frame, only whitelisted flags change; nothing to take or drop.
        if ((((olo ^ nlo) & ~K.FASTPATH_LO) | ((ohi ^ nhi) & ~K.FASTPATH_HI)) === 0) {
          w[b] = nlo;
          w[b + 1] = nhi;
          this.putTable(l1);
          continue;
        }
        // get_page_from_l1e's common case, or the request is left to the general path.
        const hm = nhi & K.PTE_MFN_HI_MASK;
        if (hm >= K.INNER_HI_LIMIT || (nlo & K.PAGE_CACHE_ATTRS) !== 0) {
          ci[l1] = tc;
          break;
        }
        const m = (hm << 20) | (nlo >>> 12);
        if (m >= nr || keys[m] !== pgK) {
          ci[l1] = tc;
          break;
        }
        const c = ci[m];
        const n = c & K.PGC_count_mask;
        if (n === 0 || n >= K.PGC_count_mask - 1) {
          ci[l1] = tc;
          break;
        }
        if ((nlo & K._PAGE_RW) !== 0) {
          const x = ti[m];
          const xc = x & K.PGT_count_mask;
          if (xc === 0) ti[m] = K.WRITABLE_ONE;
          else if (
            (x & K.TYPE_AND_VALIDATED) >>> 0 === K.WRITABLE_VALIDATED &&
            xc !== K.PGT_count_mask
          )
            ti[m] = x + 1;
          else {
            ci[l1] = tc;
            break;
          }
        }
        ci[m] = c + 1;
        validated++;
      } else if (cmd === K.MMU_PT_UPDATE_PRESERVE_AD) {
        nlo |= olo & (K._PAGE_ACCESSED | K._PAGE_DIRTY);
      }
      w[b] = nlo;
      w[b + 1] = nhi;
      // put_page_from_l1e(old)
      if ((olo & K._PAGE_PRESENT) !== 0) {
        const ohm = ohi & K.PTE_MFN_HI_MASK;
        if (ohm >= K.INNER_HI_LIMIT) this.putPageFromL1e(olo, ohi);
        else {
          const om = (ohm << 20) | (olo >>> 12);
          if (om < nr) {
            if ((olo & K._PAGE_RW) !== 0) {
              epoch[om] = this.flushEpoch;
              const x = ti[om];
              const xc = x & K.PGT_count_mask;
              if (xc > 1) ti[om] = x - 1;
              else if (xc === 1 && (x & K.PGT_type_mask) >>> 0 === K.PGT_writable_page)
                ti[om] = (x & ~K.PGT_validated & ~K.PGT_pinned) - 1;
              else this.frames.putPageType(om);
            }
            const c = ci[om];
            if ((c & K.PGC_count_mask) > 1) ci[om] = c - 1;
            else this.frames.putPage(om);
          }
          // om >= nr: beyond RAM (om < 2^30, so nr is nrFrames here), nothing to put.
        }
      }
      this.putTable(l1);
    }
    this.counts.validatedL1e += validated;
    return i;
  }

  /** put_page on a table a request held: inline while the count stays above zero. */
  private putTable(mfn: number): void {
    const ci = this.countInfo;
    const c = ci[mfn];
    if ((c & K.PGC_count_mask) > 1) ci[mfn] = c - 1;
    else this.frames.putPage(mfn);
  }

  /** Xen's mod_l2_entry / mod_l3_entry / mod_l4_entry. 0 or -errno. */
  modLnEntry(
    level: number,
    mfn: number,
    i: number,
    nloIn: number,
    nhi: number,
    preserveAd: boolean,
    d: Domain,
  ): number {
    if (level === 4 && !PvPageTables.isGuestL4Slot(i)) return -K.EINVAL;
    const w = this.ram.frameWords(mfn, true);
    const b = i * 2;
    const olo = w[b];
    const ohi = w[b + 1];
    let nlo = nloIn;
    if (preserveAd) nlo |= olo & (K._PAGE_ACCESSED | K._PAGE_DIRTY);
    if ((nlo & K._PAGE_PRESENT) !== 0) {
      const disallow =
        level === 2 ? K.L2_DISALLOW_LO : level === 3 ? K.L3_DISALLOW_LO : K.L4_DISALLOW_LO;
      if ((nlo & disallow) !== 0) return -K.EINVAL;
      nlo |= level === 4 ? K._PAGE_USER | K._PAGE_ACCESSED : K._PAGE_USER;
      if (((olo ^ nlo) & ~K.FASTPATH_PDE_LO) === 0 && ((ohi ^ nhi) & ~K.FASTPATH_PDE_HI) === 0) {
        w[b] = nlo >>> 0;
        w[b + 1] = nhi >>> 0;
        return 0;
      }
      const rc = this.getPageFromLne(level, nlo, nhi, mfn, d);
      if (rc !== 0) return rc;
    }
    w[b] = nlo >>> 0;
    w[b + 1] = nhi >>> 0;
    if ((olo & K._PAGE_PRESENT) !== 0) this.putPageFromLne(olo, ohi, mfn);
    return 0;
  }

  /** Whether a frame is in a state page_lock would accept (validated, type count > 0). */
  lockable(mfn: number): boolean {
    const x = this.frames.typeInfo[mfn];
    return (x & K.PGT_validated) !== 0 && (x & K.PGT_count_mask) !== 0;
  }

  /** Pinned flag helper for tools. */
  isPinned(mfn: number): boolean {
    return (this.frames.typeInfo[mfn] & K.PGT_pinned) !== 0;
  }
}
