/*
 * HYPERVISOR_memory_op (Xen's xen/common/memory.c, and arch_memory_op for the M2P queries):
 * increase/decrease_reservation, populate_physmap, exchange, and the reservation and M2P
 * queries.
 *
 * Invariant: a domain never holds more than its maxPages; a page leaves a domain only when
 * it holds no type references but its allocation's (guest_remove_page), and its M2P entry is
 * cleared; an exchange gives the guest its new extents only after taking back every old one;
 * the count of extents done is what Xen answers (a partial success is not an error).
 */

import {
  EFAULT,
  EINVAL,
  ENOMEM,
  ENXIO,
  EPERM,
  ESRCH,
  MACH2PHYS_NR_ENTRIES,
  XENMEMF_populate_on_demand,
} from "@hyperlab/abi";
import {
  type Domain,
  PGC_allocated,
  PGC_count_mask,
  PGC_xen_heap,
  type Vcpu,
} from "@hyperlab/core";
import type { PvMmuContext } from "./context";
import { anyDomain } from "./context";
import { exchangeAddressLimit } from "./exchange";
import { xsmTarget } from "./pv-mmu";
import { RO_MPT_VIRT_START_48 } from "./xen";

/** struct xen_memory_reservation. `extent_start` is read and written in place. */
export interface MemoryReservation {
  extent_start?: number[] | null;
  nr_extents: number;
  extent_order: number;
  mem_flags?: number;
  domid: number;
}

export interface MemoryOpArgs extends Partial<MemoryReservation> {
  cmd: number;
  in?: MemoryReservation;
  out?: MemoryReservation;
  nr_exchanged?: number;
}

/** Xen's max_order(d) for memory_op: 9 for a domU, MAX_ORDER for a control domain. */
function maxOrder(d: Domain): number {
  return d.isPrivileged ? 20 : 9;
}

/** Parses a reservation into the domain and allocation bound; undefined if Xen would stop at once. */
function reservation(
  ctx: PvMmuContext,
  v: Vcpu,
  r: Partial<MemoryReservation>,
): { d: Domain; below: number | undefined } | undefined {
  const { nr_extents, extent_order } = r;
  if (
    typeof nr_extents !== "number" ||
    nr_extents >>> 0 !== nr_extents ||
    nr_extents > 0xffff_ffff >>> 6
  )
    return undefined;
  if (typeof extent_order !== "number" || extent_order >>> 0 !== extent_order) return undefined;
  const memFlags = r.mem_flags ?? 0;
  if (typeof memFlags !== "number" || memFlags >>> 0 !== memFlags) return undefined;
  const d = anyDomain(ctx, v, r.domid);
  if (d === undefined) return undefined;
  let below: number | undefined;
  const bits = memFlags & 0xff;
  const maxBits = Math.ceil(Math.log2(ctx.frames.nrFrames)) + 12;
  if (bits !== 0 && bits < maxBits) {
    if (bits <= 12) return undefined;
    below = 2 ** bits; // a machine address, as allocDomainPages takes it
  }
  // One NUMA node (node 0); asking for another fails as an offline node does.
  const node = ((memFlags >>> 8) & 0xff) - 1;
  if (node > 0) return undefined;
  if (!xsmTarget(v.domain, d)) return undefined;
  return { d, below };
}

/** XENMEM_increase_reservation: returns extents done. */
export function increaseReservation(ctx: PvMmuContext, v: Vcpu, a: MemoryOpArgs): number {
  const r = reservation(ctx, v, a);
  if (r === undefined) return 0;
  const list = a.extent_start;
  const n = a.nr_extents as number;
  const order = a.extent_order as number;
  if (list !== undefined && list !== null && (!Array.isArray(list) || list.length < n)) return 0;
  if (order > maxOrder(v.domain)) return 0;
  ctx.flushIfFramesReused();
  let i = 0;
  for (; i < n; i++) {
    const mfn = ctx.hv.allocDomainPages(r.d, order, r.below);
    if (mfn < 0) break;
    if (Array.isArray(list)) list[i] = mfn;
  }
  return i;
}

/** XENMEM_populate_physmap: extents done; each gpfn's M2P entry is set (PV guests). */
export function populatePhysmap(ctx: PvMmuContext, v: Vcpu, a: MemoryOpArgs): number {
  const r = reservation(ctx, v, a);
  if (r === undefined) return 0;
  const list = a.extent_start;
  const n = a.nr_extents as number;
  const order = a.extent_order as number;
  if (!Array.isArray(list) || list.length < n) return 0;
  const pod = ((a.mem_flags ?? 0) & XENMEMF_populate_on_demand) !== 0;
  if (order > (pod ? 20 : maxOrder(v.domain))) return 0;
  ctx.flushIfFramesReused();
  let i = 0;
  for (; i < n; i++) {
    const gpfn = list[i];
    if (typeof gpfn !== "number" || !Number.isSafeInteger(gpfn) || gpfn < 0) break;
    if (pod) {
      if (r.d === v.domain) break;
      continue; // populate-on-demand is an HVM feature: nothing to do for a PV guest
    }
    const mfn = ctx.hv.allocDomainPages(r.d, order, r.below);
    if (mfn < 0) break;
    for (let j = 0; j < 2 ** order; j++) ctx.m2p.setPfn(mfn + j, gpfn + j);
    list[i] = mfn;
  }
  return i;
}

/** XENMEM_decrease_reservation: extents done. */
export function decreaseReservation(ctx: PvMmuContext, v: Vcpu, a: MemoryOpArgs): number {
  const r = reservation(ctx, v, a);
  if (r === undefined) return 0;
  const list = a.extent_start;
  const n = a.nr_extents as number;
  const order = a.extent_order as number;
  if (!Array.isArray(list) || list.length < n || order > maxOrder(v.domain)) return 0;
  let i = 0;
  outer: for (; i < n; i++) {
    const gmfn = list[i];
    if (typeof gmfn !== "number" || !Number.isSafeInteger(gmfn) || gmfn < 0) break;
    for (let j = 0; j < 2 ** order; j++) {
      if (guestRemovePage(ctx, r.d, gmfn + j) !== 0) break outer;
    }
  }
  return i;
}

/** Xen's guest_remove_page for a PV domain (gmfn is an mfn). 0 or -errno. */
function guestRemovePage(ctx: PvMmuContext, d: Domain, mfn: number): number {
  const f = ctx.frames;
  if (mfn >= f.nrFrames) return -EINVAL;
  if (!f.getPage(mfn, d.domid)) return -ENXIO;
  if ((f.countInfo[mfn] & PGC_xen_heap) === 0) f.release(mfn); // put_page_alloc_ref
  f.putPage(mfn);
  return 0;
}

/** XENMEM_exchange. 0 or -errno; `nr_exchanged` is written back. */
export function exchange(ctx: PvMmuContext, v: Vcpu, a: MemoryOpArgs): number {
  const ein = a.in;
  const eout = a.out;
  if (typeof ein !== "object" || ein === null || typeof eout !== "object" || eout === null)
    return -EFAULT;
  const nrExchanged = a.nr_exchanged ?? 0;
  const u32 = (x: unknown): x is number => typeof x === "number" && x >>> 0 === x;
  if (
    !u32(ein.nr_extents) ||
    !u32(ein.extent_order) ||
    !u32(eout.nr_extents) ||
    !u32(eout.extent_order) ||
    !u32(nrExchanged)
  ) {
    return -EFAULT;
  }
  if (Math.max(ein.extent_order, eout.extent_order) > maxOrder(v.domain)) return -EPERM;
  if (
    nrExchanged > ein.nr_extents ||
    ein.domid !== eout.domid ||
    ein.nr_extents * 2 ** ein.extent_order !== eout.nr_extents * 2 ** eout.extent_order
  ) {
    return -EINVAL;
  }
  if (nrExchanged === ein.nr_extents) return 0;
  const inList = ein.extent_start;
  const outList = eout.extent_start;
  if (
    !Array.isArray(inList) ||
    inList.length < ein.nr_extents ||
    !Array.isArray(outList) ||
    outList.length < eout.nr_extents
  ) {
    return -EFAULT;
  }
  const outFlags = eout.mem_flags ?? 0;
  if (!u32(outFlags) || ((outFlags >>> 8) & 0xff) - 1 > 0) return -EINVAL;
  const d = anyDomain(ctx, v, ein.domid);
  if (d === undefined) return -ESRCH;
  if (!xsmTarget(v.domain, d)) return -EPERM;
  const below = exchangeAddressLimit(outFlags);
  const inChunkOrder =
    ein.extent_order <= eout.extent_order ? eout.extent_order - ein.extent_order : 0;
  const outChunkOrder =
    ein.extent_order <= eout.extent_order ? 0 : ein.extent_order - eout.extent_order;
  const f = ctx.frames;
  ctx.flushIfFramesReused();
  let i = nrExchanged >>> inChunkOrder;
  const end = ein.nr_extents >>> inChunkOrder;
  let rc = 0;
  for (; i < end; i++) {
    // Check the whole chunk can be stolen: each page owned by d with only its allocation reference.
    const stolen: number[] = [];
    for (let j = 0; j < 2 ** inChunkOrder && rc === 0; j++) {
      const gmfn = inList[i * 2 ** inChunkOrder + j];
      if (typeof gmfn !== "number" || !Number.isSafeInteger(gmfn) || gmfn < 0) {
        rc = -EFAULT;
        break;
      }
      for (let k = 0; k < 2 ** ein.extent_order; k++) {
        const mfn = gmfn + k;
        if (mfn >= f.nrFrames) {
          rc = -EINVAL;
          break;
        }
        const c = f.countInfo[mfn];
        if (
          !f.ownedBy(mfn, d.domid) ||
          (c & PGC_xen_heap) !== 0 ||
          (c & (PGC_count_mask | PGC_allocated)) >>> 0 !== (PGC_allocated | 1) >>> 0 ||
          stolen.includes(mfn)
        ) {
          rc = -EINVAL;
          break;
        }
        stolen.push(mfn);
      }
    }
    if (rc !== 0) break;
    // Allocate the chunk's output extents (outside max_pages: the input pages pay for them).
    const got: number[] = [];
    for (let j = 0; j < 2 ** outChunkOrder; j++) {
      const m = f.allocate(d.domid, eout.extent_order, below);
      if (m < 0) break;
      d.totPages += 2 ** eout.extent_order;
      got.push(m);
    }
    if (got.length < 2 ** outChunkOrder) {
      for (const m of got) for (let k = 0; k < 2 ** eout.extent_order; k++) f.release(m + k);
      rc = -ENOMEM;
      break;
    }
    for (const mfn of stolen) f.release(mfn);
    for (let j = 0; j < got.length; j++) {
      const idx = i * 2 ** outChunkOrder + j;
      const gpfn = outList[idx];
      if (typeof gpfn === "number" && Number.isSafeInteger(gpfn) && gpfn >= 0) {
        for (let k = 0; k < 2 ** eout.extent_order; k++) ctx.m2p.setPfn(got[j] + k, gpfn + k);
        outList[idx] = got[j];
      } else {
        rc = -EFAULT; // Xen's chunk is then not counted in nr_exchanged
      }
    }
    if (rc !== 0) break;
  }
  a.nr_exchanged = rc === 0 ? ein.nr_extents : i << inChunkOrder;
  return rc;
}

/**
 * XENMEM_machphys_mapping: where the guest finds the read-only M2P (v_start, v_end as
 * 48-bit addresses) and the largest mfn it may look up there (the real one for a hardware
 * domain, the table's capacity otherwise), as Xen's arch_memory_op answers.
 */
export function machphysMapping(
  ctx: PvMmuContext,
  v: Vcpu,
  a: MemoryOpArgs & { v_start?: number; v_end?: number; max_mfn?: number },
): number {
  a.v_start = RO_MPT_VIRT_START_48;
  a.v_end = RO_MPT_VIRT_START_48 + MACH2PHYS_NR_ENTRIES * 8;
  a.max_mfn = v.domain.isPrivileged ? ctx.frames.nrFrames - 1 : MACH2PHYS_NR_ENTRIES - 1;
  return 0;
}

/** XENMEM_maximum_ram_page. */
export function maximumRamPage(ctx: PvMmuContext): number {
  return ctx.frames.nrFrames;
}

/** XENMEM_current_reservation / XENMEM_maximum_reservation. */
export function reservationOf(ctx: PvMmuContext, v: Vcpu, a: MemoryOpArgs, max: boolean): number {
  if (typeof a.domid !== "number") return -EFAULT;
  const d = anyDomain(ctx, v, a.domid);
  if (d === undefined) return -ESRCH;
  if (!xsmTarget(v.domain, d)) return -EPERM;
  return max ? d.maxPages : d.totPages;
}
