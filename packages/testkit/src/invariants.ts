/*
 * Invariant checkers for the frame table and the page tables built on it. They read only
 * core's frame table, machine RAM and the vCPUs, so every MMU backend that uses Xen's page
 * types can be checked by the same code.
 *
 * What they prove, after any hypercall (no operation is half done between calls):
 * 1. No frame with a page-table (or segment-descriptor) type is mapped writable by any
 *    validated L1 entry.
 * 2. Every general and type reference count equals what page tables, pins, vCPU base
 *    pointers, allocation and the pluggable `extraRefs` (grant mappings, later) hold.
 * 3. No domain maps a frame it neither owns nor was granted (`granted` is pluggable; a
 *    privileged mapper may be allowed with `privilegedMayMapForeign`).
 * 4. No frame is lost or owned twice: a frame is owned exactly when the allocator does not
 *    have it free, free frames carry no counts, and each domain's tot_pages equals the
 *    frames it owns (Xen heap pages shared with it excepted).
 */
import { DOMID_XEN } from "@hyperlab/abi";
import {
  FRAME_FREE,
  type FrameTable,
  type Hypervisor,
  PGC_allocated,
  PGC_count_mask,
  PGC_xen_heap,
  PGT_count_mask,
  PGT_l1_page_table,
  PGT_l4_page_table,
  PGT_pinned,
  PGT_seg_desc_page,
  PGT_type_mask,
  PGT_validated,
  PGT_writable_page,
} from "@hyperlab/core";
import { InvariantError } from "./errors";

const TWO_20 = 0x10_0000;

export interface InvariantOptions {
  /**
   * Whether `mapper` may map `mfn`, which another domain owns, because it was granted (the
   * grant table plugs its active grants in here). Default: never.
   */
  granted?: (mapperDomid: number, mfn: number, writable: boolean) => boolean;
  /** Whether privileged domains may map any domain's frames (Xen's foreigndom mappings). Default true. */
  privilegedMayMapForeign?: boolean;
  /**
   * References held outside page tables, pins and base pointers (e.g. grant mappings made
   * through the grant table): general and type references per frame.
   */
  extraRefs?: (mfn: number) => { general: number; type: number } | undefined;
  /** Stop after this many violations (default 20). */
  limit?: number;
  /**
   * Whether a vCPU's base tables (cr3Mfn, userCr3Mfn) hold an L4 type and a general
   * reference, as a PV guest's do. Default true; false under a backend whose CR3 holds none
   * (native, nested and shadow paging: the guest's tables are plain frames to Xen).
   */
  baseRefs?: boolean;
}

/** L4 slots a 64-bit PV guest owns (Xen's is_guest_l4_slot). */
function isGuestL4Slot(i: number): boolean {
  return i < 256 || i > 271;
}

function isPageTableType(type: number): boolean {
  return type >= PGT_l1_page_table && type <= PGT_l4_page_table;
}

/**
 * Checks the frame-table and page-table invariants of a hypervisor. Returns the violations
 * found, each a sentence naming the frame and what is wrong (empty when all hold).
 */
export function checkFrameInvariants(hv: Hypervisor, options: InvariantOptions = {}): string[] {
  const out: string[] = [];
  const limit = options.limit ?? 20;
  const bad = (s: string) => {
    if (out.length < limit) out.push(s);
  };
  const f: FrameTable = hv.frames;
  const ram = hv.machine.ram;
  const n = f.nrFrames;
  const general = new Uint32Array(n);
  const typed = new Uint32Array(n);
  const granted = options.granted ?? (() => false);
  const iomem = hv.hasSlot("iomem") ? hv.slot("iomem") : null;
  const privOk = options.privilegedMayMapForeign ?? true;
  const domains = new Map(hv.domains().map((d) => [d.domid, d]));

  // References held by validated page tables.
  for (let t = 0; t < n; t++) {
    const x = f.typeInfo[t];
    const type = (x & PGT_type_mask) >>> 0;
    if (!isPageTableType(type) || (x & PGT_count_mask) === 0 || (x & PGT_validated) === 0) continue;
    const owner = f.ownerOf(t);
    if (owner === FRAME_FREE || owner === DOMID_XEN) {
      bad(`frame ${t} is a validated ${type >>> 29}-level page table but is owned by ${owner}`);
      continue;
    }
    const mapper = domains.get(owner);
    const level = type >>> 29;
    const w = ram.frameWords(t, false);
    for (let i = 0; i < 512; i++) {
      if (level === 4 && !isGuestL4Slot(i)) continue;
      const lo = w[i * 2];
      if ((lo & 1) === 0) continue;
      const hi = w[i * 2 + 1];
      const m = (hi & 0xf_ffff) * TWO_20 + (lo >>> 12);
      const rw = (lo & 2) !== 0;
      if (m >= n) {
        // I/O memory: legal only in an L1, with an iomem provider, inside the mapper's caps.
        const io = level === 1 && mapper !== undefined && iomem !== null;
        if (!io || !iomem.iomemAccessPermitted(mapper, m, m)) {
          bad(`L${level} ${t}[${i}] maps frame ${m}, which is not RAM nor I/O memory it was given`);
        }
        continue;
      }
      if (level === 1) {
        general[m]++;
        const mt = (f.typeInfo[m] & PGT_type_mask) >>> 0;
        if (rw) {
          typed[m]++;
          if (isPageTableType(mt) || mt === PGT_seg_desc_page) {
            bad(
              `frame ${m} has type ${mt >>> 29} (a page or descriptor table) but L1 ${t}[${i}] maps it writable`,
            );
          }
        }
        const mo = f.ownerOf(m);
        if (mo !== owner) {
          const ok =
            granted(owner, m, rw) ||
            (privOk && mapper?.isPrivileged === true && mo !== DOMID_XEN && mo !== FRAME_FREE);
          if (!ok)
            bad(`domain ${owner} maps frame ${m} (owner ${mo}) in L1 ${t}[${i}] without a grant`);
        }
      } else {
        if (m === t) continue; // a linear self-map holds nothing
        general[m]++;
        typed[m]++;
        const mt = (f.typeInfo[m] & PGT_type_mask) >>> 0;
        const want = ((level - 1) << 29) >>> 0;
        if (mt === type) {
          if (rw) bad(`linear L${level} entry ${t}[${i}] -> ${m} is writable`);
        } else if (mt !== want) {
          bad(`L${level} ${t}[${i}] names frame ${m} of type ${mt >>> 29}, expected ${level - 1}`);
        }
        if (f.ownerOf(m) !== owner)
          bad(
            `L${level} ${t}[${i}] names frame ${m} of domain ${f.ownerOf(m)}, not its own ${owner}`,
          );
      }
    }
  }
  // Pins, base pointers, allocation, shared Xen heap pages, extra references.
  for (let m = 0; m < n; m++) {
    const x = f.typeInfo[m];
    if ((x & PGT_pinned) !== 0) {
      general[m]++;
      typed[m]++;
    }
    const c = f.countInfo[m];
    if ((c & PGC_allocated) !== 0) general[m]++;
    if (
      (c & PGC_xen_heap) !== 0 &&
      (x & PGT_type_mask) >>> 0 === PGT_writable_page &&
      (x & PGT_count_mask) !== 0
    )
      typed[m]++;
    const e = options.extraRefs?.(m);
    if (e !== undefined) {
      general[m] += e.general;
      typed[m] += e.type;
    }
  }
  for (const v of hv.vcpus) {
    if (v.domain.state === "dead" || options.baseRefs === false) continue;
    for (const b of [v.cr3Mfn, v.userCr3Mfn]) {
      if (b < 0) continue;
      general[b]++;
      typed[b]++;
      if ((f.typeInfo[b] & PGT_type_mask) >>> 0 !== PGT_l4_page_table)
        bad(`vCPU ${v.domain.domid}.${v.vcpuId} base ${b} is not an L4`);
    }
  }
  // Counts against the truth, and ownership against the allocator.
  const owned = new Map<number, number>();
  // Frames of populate-on-demand blocks, per domain: free in the frame table, out of the
  // allocator's pool, counted in the domain's podPages (core's frame-table.ts).
  const pod = new Map<number, number>();
  let podTotal = 0;
  const alloc = hv.machine.frames;
  for (let m = 0; m < n; m++) {
    const owner = f.ownerOf(m);
    const c = f.countInfo[m];
    const x = f.typeInfo[m];
    if (owner === FRAME_FREE) {
      if (c !== 0 || x !== 0)
        bad(`free frame ${m} has count_info ${c.toString(16)} type_info ${x.toString(16)}`);
      const po = f.podOwnerOf(m);
      if (po !== FRAME_FREE) {
        podTotal++;
        pod.set(po, (pod.get(po) ?? 0) + 1);
        if (alloc.isFree(m)) bad(`frame ${m} is in domain ${po}'s PoD block and free: owned twice`);
        else if (hv.domain(po) === undefined)
          bad(`frame ${m} is in a PoD block of domain ${po}, which does not exist: lost`);
        continue;
      }
      if (!alloc.isFree(m) && !alloc.isReserved(m))
        bad(`frame ${m} is neither owned nor free: lost`);
      continue;
    }
    if (alloc.isFree(m))
      bad(`frame ${m} is owned by ${owner} and free in the allocator: owned twice`);
    if (owner === DOMID_XEN) continue;
    if ((c & PGC_xen_heap) === 0) owned.set(owner, (owned.get(owner) ?? 0) + 1);
    if ((c & PGC_count_mask) !== general[m]) {
      bad(
        `frame ${m} (domain ${owner}) has ${c & PGC_count_mask} general references; tables, pins and allocation hold ${general[m]}`,
      );
    }
    if ((x & PGT_count_mask) !== typed[m]) {
      bad(
        `frame ${m} (domain ${owner}) has type count ${x & PGT_count_mask} (type ${(x & PGT_type_mask) >>> 29}); holders account for ${typed[m]}`,
      );
    }
    const type = (x & PGT_type_mask) >>> 0;
    if (isPageTableType(type) && (x & PGT_count_mask) !== 0 && (x & PGT_validated) === 0) {
      bad(`frame ${m} is an in-use page table that is not validated`);
    }
  }
  for (const d of hv.domains()) {
    const have = owned.get(d.domid) ?? 0;
    if (have !== d.totPages)
      bad(`domain ${d.domid} has tot_pages ${d.totPages} but owns ${have} frames`);
    const reserved = pod.get(d.domid) ?? 0;
    if (reserved !== d.podPages)
      bad(`domain ${d.domid} has ${d.podPages} PoD entries but ${reserved} frames in PoD blocks`);
    if (d.totPages + d.podPages > d.maxPages && d.podPages > 0)
      bad(
        `domain ${d.domid} has tot_pages ${d.totPages} + ${d.podPages} PoD entries over max_pages ${d.maxPages}`,
      );
  }
  if (podTotal !== f.podFrames)
    bad(`the frame table counts ${f.podFrames} PoD frames but its blocks hold ${podTotal}`);
  return out;
}

/** Throws an InvariantError (FRAME_INVARIANTS_BROKEN) listing the violations, if any. */
export function assertFrameInvariants(hv: Hypervisor, options?: InvariantOptions): void {
  const v = checkFrameInvariants(hv, options);
  if (v.length > 0) throw new InvariantError("FRAME_INVARIANTS_BROKEN", "frame invariants", v);
}
