/*
 * blkback's grant work (drivers/block/xen-blkback/blkback.c: xen_blkbk_map, xen_blkbk_unmap,
 * the persistent-grant tree and its LRU purge) and the grant-copy batches of the copy mode:
 * batched GNTTABOP_map_grant_ref / unmap_grant_ref / copy hypercalls from the driver domain's
 * vCPU, over preallocated op arrays, each counted.
 *
 * Invariants: a frame is handed out only from a map or copy element whose status was
 * GNTST_okay; every temporary mapping made by getPages is undone by the next putPages; a
 * persistent grant is mapped once, lives in its device's tree until purged or the device
 * disconnects, and is never purged while a request uses it (the purge runs between requests).
 */
import {
  __HYPERVISOR_grant_table_op,
  DOMID_SELF,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_device_map,
  GNTMAP_readonly,
  GNTST_okay,
  GNTTABOP_copy,
  GNTTABOP_map_grant_ref,
  GNTTABOP_unmap_grant_ref,
} from "@hyperlab/abi";
import type { XenbusKernel } from "../xenbus/device";
import { BLKBACK_LRU_PERCENT_CLEAN, type BlkCounters } from "./blkif";

/** A foreign frame the backend has mapped, and the handle that unmaps it. */
export interface Mapping {
  mfn: number;
  handle: number;
}

interface MapOp {
  host_addr: number;
  flags: number;
  ref: number;
  dom: number;
  status: number;
  handle: number;
  dev_bus_addr: number;
}
interface UnmapOp {
  host_addr: number;
  dev_bus_addr: number;
  handle: number;
  status: number;
}
interface CopyOp {
  source: { u: { ref?: number; gmfn?: number }; domid: number; offset: number };
  dest: { u: { ref?: number; gmfn?: number }; domid: number; offset: number };
  len: number;
  flags: number;
  status: number;
}

/** The grant operations of one blkback, batched `capacity` elements at a time. */
export class BlkbackGrants {
  private readonly mapOps: MapOp[] = [];
  private readonly unmapOps: UnmapOp[] = [];
  private readonly copyOps: CopyOp[] = [];
  private readonly tmpMaps: Mapping[] = [];
  private readonly mapSeg: Int32Array;
  /** The copy mode's own frames (dom0's). */
  readonly bufFrames: number[] = [];
  private readonly kernel: XenbusKernel;
  private readonly c: BlkCounters;

  constructor(kernel: XenbusKernel, counters: BlkCounters, capacity: number) {
    this.kernel = kernel;
    this.c = counters;
    this.mapSeg = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) {
      this.mapOps.push({
        host_addr: 0,
        flags: 0,
        ref: 0,
        dom: 0,
        status: 0,
        handle: 0,
        dev_bus_addr: 0,
      });
      this.unmapOps.push({ host_addr: 0, dev_bus_addr: 0, handle: 0, status: 0 });
      this.copyOps.push({
        source: { u: {}, domid: 0, offset: 0 },
        dest: { u: {}, domid: 0, offset: 0 },
        len: 0,
        flags: 0,
        status: 0,
      });
      this.tmpMaps.push({ mfn: 0, handle: -1 });
    }
  }

  /**
   * Frames for `n` grants in `grefs` (xen_blkbk_map): persistent ones from the tree, the rest
   * mapped in one batch (read-only when `readonly` and not persistent). Fills `out[0..n)`;
   * temporary mappings are recorded for putPages. False if any map failed.
   */
  getPages(
    pgnts: Map<number, Mapping> | null,
    dom: number,
    from: number,
    n: number,
    deviceWrites: boolean,
    grefs: Uint32Array,
    out: Float64Array,
  ): boolean {
    const tmp = this.tmpMaps;
    let batch = 0;
    for (let i = 0; i < n; i++) {
      tmp[i]!.handle = -1;
      const ref = grefs[from + i]!;
      if (pgnts !== null) {
        const p = pgnts.get(ref);
        if (p !== undefined) {
          pgnts.delete(ref); // most recently used goes last
          pgnts.set(ref, p);
          out[i] = p.mfn;
          continue;
        }
      }
      this.setMap(batch, ref, dom, pgnts === null && !deviceWrites);
      this.mapSeg[batch] = i; // the segment this op is for
      batch++;
    }
    if (batch === 0) return true;
    const rc = this.grantOp(GNTTABOP_map_grant_ref, this.mapOps, batch);
    let ok = rc >= 0;
    for (let b = 0; b < batch && rc >= 0; b++) {
      const op = this.mapOps[b]!;
      const i = this.mapSeg[b]!;
      if (op.status !== GNTST_okay) {
        ok = false;
        continue;
      }
      const m = { mfn: op.dev_bus_addr / 4096, handle: op.handle };
      out[i] = m.mfn;
      if (pgnts !== null && !pgnts.has(op.ref)) {
        pgnts.set(op.ref, m); // kept; the LRU bound is applied after the I/O
      } else {
        tmp[i]!.mfn = m.mfn;
        tmp[i]!.handle = m.handle;
      }
    }
    return ok;
  }

  /** xen_blkbk_unmap: undo the temporary mappings of the last getPages. */
  putPages(n: number): void {
    let k = 0;
    for (let i = 0; i < n; i++) {
      const t = this.tmpMaps[i]!;
      if (t.handle < 0) continue;
      const u = this.unmapOps[k++]!;
      u.host_addr = 0;
      u.dev_bus_addr = t.mfn * 4096;
      u.handle = t.handle;
      u.status = 0;
      t.handle = -1;
    }
    if (k > 0) this.grantOp(GNTTABOP_unmap_grant_ref, this.unmapOps, k);
  }

  /**
   * purge_persistent_gnt: unmap the least recently used LRU_PERCENT_CLEAN% of the grants
   * (at least enough to get back under the bound). Runs between requests, so none is in use.
   */
  purgePersistent(pgnts: Map<number, Mapping>, max: number): void {
    const n = Math.max(pgnts.size - max, Math.floor((max * BLKBACK_LRU_PERCENT_CLEAN) / 100));
    const victims: Mapping[] = [];
    for (const [ref, m] of pgnts) {
      if (victims.length === n) break;
      victims.push(m);
      pgnts.delete(ref);
    }
    this.unmapAll(victims);
  }

  /** One GNTTABOP_copy batch of `n` prepared ops; true when every element succeeded. */
  copyBatch(n: number): boolean {
    const rc = this.grantOp(GNTTABOP_copy, this.copyOps, n);
    if (rc < 0) return false;
    let ok = true;
    for (let i = 0; i < n; i++) {
      const op = this.copyOps[i]!;
      if (op.status !== GNTST_okay) ok = false;
      else {
        this.c.copies.value++;
        this.c.copiedBytes.value += op.len;
      }
    }
    return ok;
  }

  /**
   * Copy op `i`: between the frontend's grant `ref` (at `gOff`) and our frame `mfn` (at
   * `mOff`); `fromGuest` copies guest → ours (a write's data, an indirect page).
   */
  setCopy(
    i: number,
    fromGuest: boolean,
    ref: number,
    dom: number,
    gOff: number,
    mfn: number,
    mOff: number,
    len: number,
  ): void {
    const op = this.copyOps[i]!;
    const g = fromGuest ? op.source : op.dest;
    const m = fromGuest ? op.dest : op.source;
    g.u.ref = ref;
    g.u.gmfn = undefined;
    g.domid = dom;
    g.offset = gOff;
    m.u.gmfn = mfn;
    m.u.ref = undefined;
    m.domid = DOMID_SELF;
    m.offset = mOff;
    op.len = len;
    op.flags = fromGuest ? GNTCOPY_source_gref : GNTCOPY_dest_gref;
    op.status = 0;
  }

  /** The copy mode's own frames (dom0's), taken once. */
  ensureBuffers(n: number): boolean {
    while (this.bufFrames.length < n) {
      const mfn = this.kernel.hv.allocDomainPages(this.kernel.domain);
      if (mfn < 0) return false;
      this.bufFrames.push(mfn);
    }
    return true;
  }

  setMap(i: number, ref: number, dom: number, readonly: boolean): void {
    const op = this.mapOps[i]!;
    op.host_addr = 0;
    op.flags = GNTMAP_device_map | (readonly ? GNTMAP_readonly : 0);
    op.ref = ref;
    op.dom = dom;
    op.status = 0;
    op.handle = 0;
    op.dev_bus_addr = 0;
  }

  /** One grant-table hypercall over `n` ops; counted unless it sets the ring up or down. */
  grantOp(cmd: number, uops: object[], n: number, io = true): number {
    if (io) {
      this.c.hypercalls.value++;
      this.c.grantOps.value += n;
    }
    const { hv, domain } = this.kernel;
    return hv.hypercall(domain.vcpus[0]!, __HYPERVISOR_grant_table_op, {
      cmd,
      uops: uops as never,
      count: n,
    });
  }

  unmapAll(maps: Mapping[], io = true): void {
    for (let base = 0; base < maps.length; base += this.unmapOps.length) {
      const n = Math.min(this.unmapOps.length, maps.length - base);
      for (let i = 0; i < n; i++) {
        const u = this.unmapOps[i]!;
        const m = maps[base + i]!;
        u.host_addr = 0;
        u.dev_bus_addr = m.mfn * 4096;
        u.handle = m.handle;
        u.status = 0;
      }
      this.grantOp(GNTTABOP_unmap_grant_ref, this.unmapOps, n, io);
    }
  }

  /**
   * xenbus_map_ring_valloc: every ring page in one batch (not counted as I/O). Returns the
   * mappings that succeeded, in order; fewer than `refs` means a failure (the caller unmaps).
   */
  mapRing(refs: number[], dom: number): Mapping[] {
    const n = refs.length;
    for (let i = 0; i < n; i++) this.setMap(i, refs[i]!, dom, false);
    const rc = this.grantOp(GNTTABOP_map_grant_ref, this.mapOps, n, false);
    const maps: Mapping[] = [];
    for (let i = 0; i < n && rc >= 0; i++) {
      const op = this.mapOps[i]!;
      if (op.status === GNTST_okay) maps.push({ mfn: op.dev_bus_addr / 4096, handle: op.handle });
    }
    return maps;
  }
}
