/*
 * xen_create_contiguous_region / xen_destroy_contiguous_region, after Linux's
 * arch/x86/xen/mmu_pv.c: swap the machine frames behind 2^order pfns for one extent of
 * 2^order contiguous frames below 2^addressBits (or back to scattered frames) with
 * XENMEM_exchange, keeping the kernel's direct map and P2M in step.
 *
 * Invariants: the pages are reached only by hypercall (update_va_mapping, memory_op); during
 * the exchange they are unmapped from the direct map and their P2M entries invalid, so Xen
 * sees them with nothing but their allocation reference; afterwards every pfn is mapped
 * again and its P2M (and the kernel's M2P copy) names the frame it now has, the new
 * contiguous run on success, the old frames on failure. A failure is a negative errno,
 * never a throw.
 */
import {
  __HYPERVISOR_memory_op,
  __HYPERVISOR_update_va_mapping,
  DOMID_SELF,
  EINVAL,
  ENOMEM,
  UVMF_INVLPG,
  XENMEM_exchange,
} from "@hyperlab/abi";
import { type GuestKernel, PAGE_KERNEL } from "@hyperlab/guest";
import { swiotlbError } from "./errors";

/** Linux's MAX_CONTIG_ORDER: 2 MiB. */
export const MAX_CONTIG_ORDER = 9;
/** The P2M's "no frame" while a page is out with Xen (Linux's INVALID_P2M_ENTRY). */
export const INVALID_P2M_ENTRY = -1;

/** Counts of exchanges (for stats and the study). */
export interface ContigCounts {
  /** XENMEM_exchange hypercalls issued. */
  exchanges: number;
  /** Of those, how many did not exchange every extent. */
  exchangeFailures: number;
}

/** Reusable argument space: one list of up to 512 frames, one of one gpfn. */
const oldMfns = new Float64Array(1 << MAX_CONTIG_ORDER);

function xen(k: GuestKernel) {
  const x = k.xen;
  if (x === null) {
    throw swiotlbError(
      "SWIOTLB_NOT_XEN_PV",
      "xen_create_contiguous_region needs a Xen PV kernel (its P2M). Boot it with bootXenPvKernel.",
    );
  }
  return x;
}

function unmapAll(k: GuestKernel, pfn: number, n: number): void {
  const x = xen(k);
  for (let i = 0; i < n; i++) {
    oldMfns[i] = x.p2m[pfn + i];
    k.port.hypercall(0, __HYPERVISOR_update_va_mapping, {
      va: k.physVa(pfn + i),
      val: 0,
      flags: UVMF_INVLPG,
    });
    x.p2m[pfn + i] = INVALID_P2M_ENTRY;
  }
}

function remapAll(k: GuestKernel, pfn: number, n: number, frameOf: (i: number) => number): void {
  const x = xen(k);
  for (let i = 0; i < n; i++) {
    const old = oldMfns[i];
    if (old >= 0 && old < x.m2p.length && x.m2p[old] === pfn + i) x.m2p[old] = -1;
  }
  for (let i = 0; i < n; i++) {
    const mfn = frameOf(i);
    x.p2m[pfn + i] = mfn;
    if (mfn < x.m2p.length) x.m2p[mfn] = pfn + i;
    k.port.hypercall(0, __HYPERVISOR_update_va_mapping, {
      va: k.physVa(pfn + i),
      val: mfn * 4096 + PAGE_KERNEL,
      flags: UVMF_INVLPG,
    });
  }
}

/**
 * xen_create_contiguous_region: makes pfns [pfn, pfn + 2^order) one machine-contiguous
 * extent below 2^addressBits (0: no limit), zeroed. Its first machine address, or -errno
 * (the pages keep their old frames then).
 */
export function xenCreateContiguousRegion(
  k: GuestKernel,
  pfn: number,
  order: number,
  addressBits: number,
  counts: ContigCounts,
): number {
  if (!Number.isInteger(order) || order < 0 || order > MAX_CONTIG_ORDER) return -ENOMEM;
  const n = 2 ** order;
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn + n > xen(k).nrPages) return -EINVAL;
  for (let i = 0; i < n; i++) k.clearPage(pfn + i);
  unmapAll(k, pfn, n);
  const inList: number[] = [];
  for (let i = 0; i < n; i++) inList.push(oldMfns[i]);
  const outList = [pfn];
  const args = {
    cmd: XENMEM_exchange,
    in: { extent_start: inList, nr_extents: n, extent_order: 0, domid: DOMID_SELF },
    out: {
      extent_start: outList,
      nr_extents: 1,
      extent_order: order,
      mem_flags: addressBits,
      domid: DOMID_SELF,
    },
    nr_exchanged: 0,
  };
  counts.exchanges++;
  const rc = k.port.hypercall(0, __HYPERVISOR_memory_op, args);
  const ok = rc === 0 && args.nr_exchanged === n;
  if (!ok) {
    counts.exchangeFailures++;
    remapAll(k, pfn, n, (i) => oldMfns[i]);
    return rc < 0 ? rc : -ENOMEM;
  }
  const first = outList[0];
  remapAll(k, pfn, n, (i) => first + i);
  return first * 4096;
}

/**
 * xen_destroy_contiguous_region: gives the contiguous extent behind [pfn, pfn + 2^order)
 * back for 2^order frames anywhere (no address limit). 0 or -errno.
 */
export function xenDestroyContiguousRegion(
  k: GuestKernel,
  pfn: number,
  order: number,
  counts: ContigCounts,
): number {
  if (!Number.isInteger(order) || order < 0 || order > MAX_CONTIG_ORDER) return -ENOMEM;
  const n = 2 ** order;
  if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn + n > xen(k).nrPages) return -EINVAL;
  for (let i = 0; i < n; i++) k.clearPage(pfn + i);
  unmapAll(k, pfn, n);
  const outList: number[] = [];
  for (let i = 0; i < n; i++) outList.push(pfn + i);
  const args = {
    cmd: XENMEM_exchange,
    in: { extent_start: [oldMfns[0]], nr_extents: 1, extent_order: order, domid: DOMID_SELF },
    out: { extent_start: outList, nr_extents: n, extent_order: 0, mem_flags: 0, domid: DOMID_SELF },
    nr_exchanged: 0,
  };
  counts.exchanges++;
  const rc = k.port.hypercall(0, __HYPERVISOR_memory_op, args);
  if (rc !== 0 || args.nr_exchanged !== 1) {
    counts.exchangeFailures++;
    remapAll(k, pfn, n, (i) => oldMfns[i]);
    return rc < 0 ? rc : -ENOMEM;
  }
  remapAll(k, pfn, n, (i) => outList[i]);
  return 0;
}
