/*
 * HYPERVISOR_mmu_update and update_va_mapping (Xen's do_mmu_update and
 * do_update_va_mapping in arch/x86/mm.c): a guest's requests to change one page-table entry
 * or one M2P entry.
 *
 * Invariant: an entry of a validated page table changes only through the PvPageTables
 * mod_l*_entry paths (modL1Run included, mod_l1_entry for a run of requests on one L1), which
 * take the new entry's references before they drop the old one's;
 * a request on a frame that is not a page table of the page owner is a plain write only
 * where Xen allows it; every request is checked and answers Xen's negative errno, and
 * `pdone` counts the requests done before the first failure.
 */

import * as abi from "@hyperlab/abi";
import { type Domain, ownerKey, type Vcpu } from "@hyperlab/core";
import { type Batch, getPgOwner, type PvMmuContext, readBatch, vcpusOf } from "./context";
import { splitU64 } from "./pte";
import * as ptwr from "./ptwr";
import { xsmTarget } from "./pv-mmu";

const { _PAGE_PRESENT, UVMF_ALL, UVMF_FLUSHTYPE_MASK, UVMF_INVLPG, UVMF_LOCAL, UVMF_TLB_FLUSH } =
  abi;

/**
 * mmu_update's constants as number literals (see pv-mmu.ts's K for why; checked by
 * test/pv-constants.test.ts).
 */
// biome-ignore-start lint/suspicious/noDuplicateEnumValues: constants that share a value
export const enum U {
  MMU_NORMAL_PT_UPDATE = 0,
  MMU_MACHPHYS_UPDATE = 1,
  MMU_PT_UPDATE_PRESERVE_AD = 2,
  MMU_PT_UPDATE_NO_TRANSLATE = 3,
  EPERM = 1,
  ESRCH = 3,
  EFAULT = 14,
  EINVAL = 22,
  ENOSYS = 38,
  PGC_count_mask = (1 << 28) - 1,
  PGT_count_mask = (1 << 26) - 1,
  PGT_validated = 1 << 27,
  PGT_l1_page_table = 1 << 29,
  PGT_l2_page_table = 2 << 29,
  PGT_l4_page_table = (4 << 29) >>> 0,
  PGT_writable_page = (7 << 29) >>> 0,
  PGT_type_mask = (7 << 29) >>> 0,
  TWO_20 = 0x10_0000,
  TYPE_AND_VALIDATED = (PGT_type_mask | PGT_validated) >>> 0,
  L1_VALIDATED = (PGT_l1_page_table | PGT_validated) >>> 0,
}
// biome-ignore-end lint/suspicious/noDuplicateEnumValues: constants that share a value

const batch: Batch = { count: 0, foreigndom: 0, done: 0 };
const EMPTY_WORDS: Uint32Array = new Uint32Array(0);

/** One mmu_update request (struct mmu_update): `ptr` with the MMU_* command in bits 0..1, `val`. */
export interface MmuUpdate {
  ptr: number | bigint;
  val: number | bigint;
}

/** Arguments of HYPERVISOR_mmu_update. `ureqs` is an array, or 4 words per request (ptr lo, hi, val lo, hi). */
export interface MmuUpdateArgs {
  ureqs: readonly MmuUpdate[] | Uint32Array;
  count: number;
  /** Output: requests done (Xen's *pdone). */
  pdone?: number;
  foreigndom: number;
}

/** update_va_mapping: `flags` is UVMF_*; for a vCPU subset (UVMF_MULTI) pass `vcpumask`. */
export interface UpdateVaMappingArgs {
  va: number;
  val: number | bigint;
  flags: number;
  vcpumask?: readonly number[] | Uint32Array;
  /** update_va_mapping_otherdomain only. */
  domid?: number;
}

const scratch = { lo: 0, hi: 0 };
const scratch2 = { lo: 0, hi: 0 };

/** HYPERVISOR_mmu_update (Xen's do_mmu_update). */
export function mmuUpdate(ctx: PvMmuContext, v: Vcpu, a: MmuUpdateArgs): number {
  if (!readBatch(a, batch)) return -U.EFAULT;
  const count = batch.count;
  const foreigndom = batch.foreigndom;
  const done = batch.done;
  const ureqs = a.ureqs;
  // The packed words, or null for an array of structs (a null test per request, where a
  // boolean would be a generic truthiness check).
  const packed = ureqs instanceof Uint32Array ? ureqs : null;
  if (packed !== null ? packed.length < count * 4 : !Array.isArray(ureqs) || ureqs.length < count)
    return -U.EFAULT;
  const d = v.domain;
  let ptOwner = d;
  const ptDom = foreigndom >>> 16;
  if (ptDom !== 0) {
    const o = ctx.hv.domain(ptDom - 1);
    if (o === undefined || o.state === "dead") return -U.ESRCH;
    if (o !== d && o.vcpus.length === 0) {
      a.pdone = done;
      return -U.EINVAL;
    }
    ptOwner = o;
  }
  const pgOwner = getPgOwner(ctx, v, foreigndom & 0xffff);
  if (pgOwner === undefined) {
    a.pdone = done;
    return -U.ESRCH;
  }
  const pt = ctx.pt;
  const f = ctx.frames;
  const typeInfo = f.typeInfo;
  const countInfo = f.countInfo;
  const keys = f.ownerKeys;
  const nr = f.nrFrames;
  // What cannot change during one hypercall: l1_disallow_mask(ptOwner) and the XSM checks.
  // `| 0`: loop-invariant values as untagged int32, not re-checked at every request.
  const disallowLo = pt.l1DisallowLo(ptOwner) | 0;
  const ptRights =
    (ptOwner === d || xsmTarget(d, ptOwner)) && (pgOwner === d || xsmTarget(d, pgOwner)) ? 1 : 0;
  // The owners' keys in the frame table (core's ownerKey), compared with ownerKeys directly.
  const ptKey = ownerKey(ptOwner.domid) | 0;
  const pgKey = ownerKey(pgOwner.domid) | 0;
  let rc = 0;
  let flushLinear = false;
  let l1Mfn = -1;
  let l1Words = EMPTY_WORDS;
  let i = 0;
  // Runs of validated L1 updates on the table of the request before go to modL1Run; the
  // loop body does any other request (and the first on each table) through the general path.
  for (; i < count; i++) {
    if (l1Mfn >= 0 && packed !== null && ptRights !== 0) {
      i = pt.modL1Run(packed, i, count, l1Mfn, l1Words, ptKey, pgKey, disallowLo);
      if (i >= count) break;
    }
    let plo: number;
    let phi: number;
    let vlo: number;
    let vhi: number;
    if (packed !== null) {
      plo = packed[i * 4];
      phi = packed[i * 4 + 1];
      vlo = packed[i * 4 + 2];
      vhi = packed[i * 4 + 3];
    } else {
      if (!readRequest(ureqs as readonly MmuUpdate[], i)) {
        rc = -U.EFAULT;
        break;
      }
      plo = scratch.lo;
      phi = scratch.hi;
      vlo = scratch2.lo;
      vhi = scratch2.hi;
    }
    // The command is ptr's low three bits (sizeof(l1_pgentry_t) - 1); 4..7 are unknown.
    const cmd = plo & 7;
    if (
      cmd === U.MMU_NORMAL_PT_UPDATE ||
      cmd === U.MMU_PT_UPDATE_PRESERVE_AD ||
      cmd === U.MMU_PT_UPDATE_NO_TRANSLATE
    ) {
      if (ptRights === 0) {
        rc = -U.EPERM;
        break;
      }
      const gmfn = phi * U.TWO_20 + (plo >>> 12);
      // get_page(gmfn, ptOwner) as the frame table's getPage (gmfn is a whole number >= 0),
      // written out here so that V8's inlining budget goes to mod_l1_entry's callees.
      if (gmfn >= nr || keys[gmfn] !== ptKey) {
        rc = -U.EINVAL;
        break;
      }
      const c = countInfo[gmfn];
      const n = c & U.PGC_count_mask;
      if (n === 0 || n >= U.PGC_count_mask - 1) {
        rc = -U.EINVAL;
        break;
      }
      countInfo[gmfn] = c + 1;
      const x = typeInfo[gmfn];
      if ((x & U.TYPE_AND_VALIDATED) >>> 0 === U.L1_VALIDATED && (x & U.PGT_count_mask) !== 0) {
        // The table's view, handed out (and reported to a write hook) once per table a batch
        // writes: views are made once per frame and never replaced.
        if (gmfn !== l1Mfn) {
          l1Words = ctx.ram.frameWords(gmfn, true);
          l1Mfn = gmfn;
        }
        const slot = (plo & 0xfff) >>> 3;
        rc = pt.modL1EntryIn(l1Words, slot, vlo, vhi, cmd, ptOwner, pgOwner, disallowLo);
      } else {
        rc = updateOtherFrame(ctx, x, gmfn, plo, vlo, vhi, cmd, ptOwner, pgOwner);
        // A linear page table may map the entry just changed.
        if (rc === 0 && isValidatedLn(x)) flushLinear = true;
      }
      // put_page(gmfn): the frame table's, inline while the count stays above zero.
      const c2 = countInfo[gmfn];
      if ((c2 & U.PGC_count_mask) > 1) countInfo[gmfn] = c2 - 1;
      else f.putPage(gmfn);
    } else if (cmd !== U.MMU_MACHPHYS_UPDATE) {
      rc = -U.ENOSYS;
    } else {
      rc = machphysUpdate(ctx, d, ptOwner, pgOwner, phi * U.TWO_20 + (plo >>> 12), vlo, vhi);
    }
    if (rc !== 0) break;
  }
  ctx.counters.mmuUpdates.value += i;
  if (flushLinear) ctx.flushDomain(ptOwner.domid);
  a.pdone = done + i;
  return rc;
}

/** Request `i` of an array of structs into scratch (ptr) and scratch2 (val); false if unreadable. */
function readRequest(ureqs: readonly MmuUpdate[], i: number): boolean {
  const r = ureqs[i];
  return (
    typeof r === "object" && r !== null && splitU64(r.ptr, scratch) && splitU64(r.val, scratch2)
  );
}

/** Whether type_info `x` is a validated L2..L4 table in use. */
function isValidatedLn(x: number): boolean {
  const type = (x & U.PGT_type_mask) >>> 0;
  return (
    (x & U.PGT_validated) !== 0 &&
    (x & U.PGT_count_mask) !== 0 &&
    type >= U.PGT_l2_page_table &&
    type <= U.PGT_l4_page_table
  );
}

/**
 * A page-table update request on a frame that is not a validated L1 in use (type_info `x`,
 * a general reference held): an L2..L4 entry, a plain write to a writable or untyped frame,
 * or -EINVAL for any other type.
 */
function updateOtherFrame(
  ctx: PvMmuContext,
  x: number,
  gmfn: number,
  plo: number,
  vlo: number,
  vhi: number,
  cmd: number,
  ptOwner: Domain,
  pgOwner: Domain,
): number {
  if ((x & U.PGT_validated) !== 0 && (x & U.PGT_count_mask) !== 0) {
    const type = (x & U.PGT_type_mask) >>> 0;
    if (type >= U.PGT_l2_page_table && type <= U.PGT_l4_page_table) {
      if (pgOwner !== ptOwner) return -U.EINVAL;
      const slot = (plo & 0xfff) >>> 3;
      const preserveAd = cmd === U.MMU_PT_UPDATE_PRESERVE_AD;
      return ctx.pt.modLnEntry(type >>> 29, gmfn, slot, vlo, vhi, preserveAd, ptOwner);
    }
    if (type === U.PGT_writable_page) {
      writeRaw(ctx, gmfn, plo & 0xff8, vlo, vhi);
      return 0;
    }
    return -U.EINVAL;
  }
  if (ctx.pt.getPageType(gmfn, U.PGT_writable_page) !== 0) return -U.EINVAL;
  writeRaw(ctx, gmfn, plo & 0xff8, vlo, vhi);
  ctx.frames.putPageType(gmfn);
  return 0;
}

/** MMU_MACHPHYS_UPDATE: M2P[mfn] = (lo, hi) for a frame of the page owner. 0 or -errno. */
function machphysUpdate(
  ctx: PvMmuContext,
  d: Domain,
  ptOwner: Domain,
  pgOwner: Domain,
  mfn: number,
  lo: number,
  hi: number,
): number {
  if (ptOwner !== d) return -U.EPERM;
  if (pgOwner !== d && !xsmTarget(d, pgOwner)) return -U.EPERM;
  if (!ctx.frames.getPage(mfn, pgOwner.domid)) return -U.EINVAL;
  ctx.m2p.set(mfn, lo, hi);
  ctx.frames.putPage(mfn);
  return 0;
}

function writeRaw(ctx: PvMmuContext, mfn: number, off: number, lo: number, hi: number): void {
  const w = ctx.ram.frameWords(mfn, true);
  const b = off >>> 2;
  w[b] = lo;
  w[b + 1] = hi;
}

/** HYPERVISOR_update_va_mapping. */
export function updateVaMapping(ctx: PvMmuContext, v: Vcpu, a: UpdateVaMappingArgs): number {
  return doUpdateVaMapping(ctx, v, a, v.domain);
}

/** HYPERVISOR_update_va_mapping_otherdomain. */
export function updateVaMappingOtherdomain(
  ctx: PvMmuContext,
  v: Vcpu,
  a: UpdateVaMappingArgs,
): number {
  if (typeof a.domid !== "number") return -U.EFAULT;
  const pgOwner = getPgOwner(ctx, v, a.domid);
  if (pgOwner === undefined) return -U.ESRCH;
  return doUpdateVaMapping(ctx, v, a, pgOwner);
}

function doUpdateVaMapping(
  ctx: PvMmuContext,
  v: Vcpu,
  a: UpdateVaMappingArgs,
  pgOwner: Domain,
): number {
  const d = v.domain;
  const { va, flags } = a;
  if (
    typeof va !== "number" ||
    typeof flags !== "number" ||
    !Number.isSafeInteger(flags) ||
    flags < 0
  )
    return -U.EFAULT;
  if (!splitU64(a.val, scratch)) return -U.EFAULT;
  // xsm_update_va_mapping: only a present entry needs rights over the page owner.
  if ((scratch.lo & _PAGE_PRESENT) !== 0 && pgOwner !== d && !xsmTarget(d, pgOwner))
    return -U.EPERM;
  const loc = ptwr.guestL1Slot(ctx, v.cr3Mfn, va);
  if (loc < 0) return -U.EINVAL;
  const l1 = Math.floor(loc / 512);
  if (!ctx.frames.getPage(l1, d.domid)) return -U.EINVAL;
  let rc = -U.EINVAL;
  if (
    ctx.pt.lockable(l1) &&
    (ctx.frames.typeInfo[l1] & U.PGT_type_mask) >>> 0 === U.PGT_l1_page_table
  ) {
    rc = ctx.pt.modL1Entry(
      l1,
      loc % 512,
      scratch.lo,
      scratch.hi,
      U.MMU_NORMAL_PT_UPDATE,
      d,
      pgOwner,
    );
  }
  ctx.frames.putPage(l1);
  if (rc !== 0) return rc;
  const sel = flags & ~UVMF_FLUSHTYPE_MASK;
  const type = flags & UVMF_FLUSHTYPE_MASK;
  if (type === UVMF_TLB_FLUSH || type === UVMF_INVLPG) {
    let targets: readonly Vcpu[] | undefined;
    if (sel === UVMF_LOCAL) targets = [v];
    else if (sel === UVMF_ALL) targets = d.vcpus;
    else {
      targets = vcpusOf(d, a.vcpumask);
      if (targets === undefined) return -U.EFAULT;
    }
    for (const t of targets) {
      if (type === UVMF_TLB_FLUSH) ctx.flushLocal(t);
      else ctx.flushOne(t, va);
    }
  }
  return 0;
}
