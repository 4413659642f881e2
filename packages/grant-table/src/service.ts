/*
 * The grant table service: Xen's GNTTABOP_* handlers and the per-domain lifecycle.
 *
 * Invariants: every guest-supplied field is checked; an element that cannot be read as its
 * struct ends the call with -EFAULT (elements before it keep their effect and status); any
 * other failure is the element's GNTST_* status, as xen/common/grant_table.c (4.17) answers.
 * Nothing here throws on guest input. References a mapping holds:
 * - device mapping: one general reference, plus a writable type reference unless read-only;
 * - host mapping: the same again, owned by the page-table entry the slot writes (so a PV
 *   page-table teardown gives them back, as Xen's put_page_from_l1e does);
 * - a copy holds references only for the duration of the element.
 * A domain's destruction (the one cleanup path, `domainDestroyed`) releases every mapping it
 * holds and gives back its grant frames; mappings others hold of its grants stay valid (their
 * references keep the frames) until they are unmapped or their holder is destroyed.
 */
import {
  DOMID_SELF,
  DOMID_XEN,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOMEM,
  ENOSYS,
  EPERM,
  ERANGE,
  ESRCH,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTST_bad_copy_arg,
  GNTST_bad_dev_addr,
  GNTST_bad_domain,
  GNTST_bad_gntref,
  GNTST_bad_handle,
  GNTST_bad_page,
  GNTST_general_error,
  GNTST_no_space,
  GNTST_okay,
  GNTST_permission_denied,
  GNTTAB_NR_RESERVED_ENTRIES,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_sub_page,
  GTF_transitive,
  GTF_type_mask,
  GTF_writing,
} from "@hyperlab/abi";
import {
  type Domain,
  type FrameTable,
  type GrantHostMapping,
  type Hypervisor,
  PGC_xen_heap,
  PGT_count_mask,
  PGT_type_mask,
  PGT_validated,
  PGT_writable_page,
  type Vcpu,
} from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import {
  GNTPIN_devr_inc,
  GNTPIN_devw_inc,
  GNTPIN_devw_mask,
  GNTPIN_hstr_inc,
  GNTPIN_hstw_inc,
  GNTPIN_hstw_mask,
  GrantTable,
  INITIAL_NR_GRANT_FRAMES,
  INVALID_MAPTRACK_HANDLE,
  pinOverflowMask,
  statusFramesFor,
} from "./table";
import type {
  GnttabCopy,
  GnttabCopyPtr,
  GnttabGetStatusFrames,
  GnttabGetVersion,
  GnttabMapGrantRef,
  GnttabQuerySize,
  GnttabSetupTable,
  GnttabSetVersion,
  GnttabUnmapAndReplace,
  GnttabUnmapGrantRef,
  GrantTableOpArgs,
} from "./types";

const TWO_64 = 2 ** 64;
const PAGE_SIZE = 4096;

export interface GrantTableOptions {
  /** Most shared frames a domain's table may grow to (Xen's gnttab_max_frames, 64). */
  maxGrantFrames?: number;
  /** Most maptrack frames per domain (gnttab_max_maptrack_frames, 1024; 256 handles each). */
  maxMaptrackFrames?: number;
  /** Highest grant table version a guest may choose, 1 or 2 (Xen x86's default: 2). */
  maxVersion?: 1 | 2;
}

/** Stat counters the service bumps (the plugin fills them from ctx.stats). */
export interface GrantTableCounters {
  maps: { value: number };
  unmaps: { value: number };
  copies: { value: number };
  copiedBytes: { value: number };
  errors: { value: number };
}

/** One live mapping, as the invariant checkers see it. */
export interface GrantMappingInfo {
  mapperDomid: number;
  handle: number;
  granterDomid: number;
  ref: number;
  mfn: number;
  /** GNTMAP_* flags still in force (host_map, device_map, readonly, ...). */
  flags: number;
}

/** One pinned active entry, as the invariant checkers see it. */
export interface ActiveGrantInfo {
  granterDomid: number;
  ref: number;
  pin: number;
  granteeDomid: number;
  mfn: number;
  /** GTF_reading | GTF_writing as they are in guest memory now (-1 once the table is released). */
  statusBits: number;
}

interface UnmapDone {
  table: GrantTable;
  ref: number;
  mfn: number;
  done: number;
}

const u64scratch = { v: 0 };

/** A guest u64 as a number (values above 2^53 lose low bits; they are never valid addresses). */
function readU64(v: unknown, out: { v: number }): boolean {
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 0 || v >= TWO_64) return false;
    out.v = v;
    return true;
  }
  if (typeof v === "bigint") {
    if (v < 0n || v >= 1n << 64n) return false;
    out.v = Number(v);
    return true;
  }
  return false;
}

function isUint(v: unknown, limit: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v < limit;
}

const U16 = 0x1_0000;
const U32 = 0x1_0000_0000;

export class GrantTableService {
  readonly hv: Hypervisor;
  readonly frames: FrameTable;
  readonly ram: Ram;
  readonly host: GrantHostMapping;
  readonly maxGrantFrames: number;
  readonly maxMaptrackFrames: number;
  readonly maxVersion: 1 | 2;
  counters: GrantTableCounters = {
    maps: { value: 0 },
    unmaps: { value: 0 },
    copies: { value: 0 },
    copiedBytes: { value: 0 },
    errors: { value: 0 },
  };
  private readonly tables = new Map<number, GrantTable>();
  /** Tables of destroyed domains that other domains' mappings still name. */
  private readonly zombies = new Set<GrantTable>();
  private readonly pending: UnmapDone[] = [];

  constructor(hv: Hypervisor, host: GrantHostMapping, options: GrantTableOptions = {}) {
    this.hv = hv;
    this.frames = hv.frames;
    this.ram = hv.machine.ram;
    this.host = host;
    this.maxGrantFrames = options.maxGrantFrames ?? 64;
    this.maxMaptrackFrames = options.maxMaptrackFrames ?? 1024;
    this.maxVersion = options.maxVersion ?? 2;
  }

  /** A domain's grant table (undefined for a domain that never had one or is gone). */
  table(domid: number): GrantTable | undefined {
    return this.tables.get(domid);
  }

  // ---- domain lifecycle ----

  /** grant_table_init: a version 1 table with its first shared frame. */
  domainCreated(d: Domain): boolean {
    const t = new GrantTable(d.domid, this.ram, this.maxGrantFrames, this.maxMaptrackFrames);
    this.tables.set(d.domid, t);
    return this.growTable(d, t, INITIAL_NR_GRANT_FRAMES);
  }

  /**
   * Xen's gnttab_release_mappings then grant_table_destroy's frame release: every mapping the
   * domain holds goes (device references and, unless the page tables give them back, host
   * references), and its shared and status frames return to Xen.
   */
  domainDestroyed(d: Domain): void {
    const lt = this.tables.get(d.domid);
    if (lt === undefined) return;
    for (let h = lt.mtLimit - 1; h >= 0; h--) {
      const flags = lt.mtFlags[h];
      if ((flags & (GNTMAP_device_map | GNTMAP_host_map)) === 0) continue;
      const rt = lt.mtTable[h]!;
      const ref = lt.mtRef[h];
      const mfn = rt.actMfn[ref];
      const ro = (flags & GNTMAP_readonly) !== 0;
      if ((flags & GNTMAP_device_map) !== 0) {
        rt.pin[ref] -= ro ? GNTPIN_devr_inc : GNTPIN_devw_inc;
        if (ro) this.frames.putPage(mfn);
        else this.frames.putPageAndType(mfn);
      }
      if ((flags & GNTMAP_host_map) !== 0) {
        rt.pin[ref] -= ro ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
        if (!this.host.releasedWithPageTables) {
          if (ro) this.frames.putPage(mfn);
          else this.frames.putPageAndType(mfn);
        }
      }
      this.reduceStatusForPin(rt, ref, ro);
      lt.putMaptrackHandle(h);
      this.maybeForget(rt);
    }
    this.releaseFrames(lt, lt.shared);
    this.releaseFrames(lt, lt.status);
    lt.shared.length = 0;
    lt.status.length = 0;
    lt.released = true;
    this.tables.delete(d.domid);
    if (this.anyPinned(lt)) this.zombies.add(lt);
  }

  private anyPinned(t: GrantTable): boolean {
    const p = t.pin;
    for (let i = 0; i < p.length; i++) if (p[i] !== 0) return true;
    return false;
  }

  private maybeForget(t: GrantTable): void {
    if (t.released && this.zombies.has(t) && !this.anyPinned(t)) this.zombies.delete(t);
  }

  /** Frames shared with a guest go back to Xen (page_set_owner(NULL), then their last put). */
  private releaseFrames(t: GrantTable, list: readonly number[]): void {
    const f = this.frames;
    for (const mfn of list) {
      if (f.ownerOf(mfn) !== t.domid) continue;
      const x = f.typeInfo[mfn];
      if ((x & PGT_type_mask) >>> 0 === PGT_writable_page && (x & PGT_count_mask) !== 0)
        f.putPageType(mfn);
      f.setOwner(mfn, DOMID_XEN);
      f.release(mfn);
    }
  }

  /** share_xen_page_with_guest(SHARE_rw) for a new frame: owned, Xen heap, writable for life. */
  private allocShared(d: Domain): number {
    const mfn = this.frames.allocate(d.domid, 0);
    if (mfn < 0) return -1;
    this.frames.countInfo[mfn] = (this.frames.countInfo[mfn] | PGC_xen_heap) >>> 0;
    this.frames.typeInfo[mfn] = (PGT_writable_page | PGT_validated | 1) >>> 0;
    this.ram.clearFrame(mfn);
    return mfn;
  }

  /** Frees frames allocateShared handed out (an allocation that failed half way). */
  private freeShared(t: GrantTable, list: number[], from: number): void {
    this.releaseFrames(t, list.slice(from));
    list.length = from;
  }

  /** gnttab_grow_table: to `nr` shared frames (and their status frames in version 2). */
  private growTable(d: Domain, t: GrantTable, nr: number): boolean {
    const want = Math.max(nr, INITIAL_NR_GRANT_FRAMES);
    const had = t.shared.length;
    const hadStatus = t.status.length;
    for (let i = had; i < want; i++) {
      const mfn = this.allocShared(d);
      if (mfn < 0) {
        this.freeShared(t, t.shared, had);
        return false;
      }
      t.shared.push(mfn);
    }
    if (t.version === 2 && !this.populateStatus(d, t, want)) {
      this.freeShared(t, t.status, hadStatus);
      this.freeShared(t, t.shared, had);
      return false;
    }
    return true;
  }

  private populateStatus(d: Domain, t: GrantTable, nrShared: number): boolean {
    const want = statusFramesFor(nrShared);
    const had = t.status.length;
    for (let i = had; i < want; i++) {
      const mfn = this.allocShared(d);
      if (mfn < 0) {
        this.freeShared(t, t.status, had);
        return false;
      }
      t.status.push(mfn);
    }
    return true;
  }

  // ---- dispatch ----

  /** Checks `count` and `uops` as do_grant_table_op does; the count, or a negative errno. */
  private batch(a: GrantTableOpArgs): number {
    const count = a.count;
    if (!isUint(count, U32)) return -EFAULT;
    if (count >= 0x8000_0000) return -EINVAL; // (int)count < 0
    if (!Array.isArray(a.uops) || a.uops.length < count) return -EFAULT;
    return count;
  }

  /** GNTTABOP_map_grant_ref. */
  mapGrantRef(v: Vcpu, a: GrantTableOpArgs): number {
    const count = this.batch(a);
    if (count < 0) return count;
    const lt = this.tables.get(v.domain.domid);
    if (lt === undefined) return -EINVAL;
    for (let i = 0; i < count; i++) {
      const op = a.uops[i] as GnttabMapGrantRef;
      if (
        typeof op !== "object" ||
        op === null ||
        !readU64(op.host_addr, u64scratch) ||
        !isUint(op.flags, U32) ||
        !isUint(op.ref, U32) ||
        !isUint(op.dom, U16)
      )
        return -EFAULT;
      const st = this.mapOne(v, lt, op, u64scratch.v);
      op.status = st;
      if (st !== GNTST_okay) this.counters.errors.value++;
    }
    return 0;
  }

  /** Xen's map_grant_ref for one element. */
  private mapOne(v: Vcpu, lt: GrantTable, op: GnttabMapGrantRef, hostAddr: number): number {
    const ld = v.domain;
    const flags = op.flags;
    const ro = (flags & GNTMAP_readonly) !== 0;
    let pinIncr = 0;
    if ((flags & GNTMAP_device_map) !== 0) pinIncr += ro ? GNTPIN_devr_inc : GNTPIN_devw_inc;
    if ((flags & GNTMAP_host_map) !== 0) pinIncr += ro ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
    if (pinIncr === 0) return GNTST_bad_gntref;
    const rd = this.hv.domain(op.dom);
    const rt = rd === undefined ? undefined : this.tables.get(rd.domid);
    if (rd === undefined || rt === undefined) return GNTST_bad_domain;
    const handle = lt.getMaptrackHandle();
    if (handle === INVALID_MAPTRACK_HANDLE) return GNTST_no_space;
    const rc = this.mapPin(ld, rd, rt, op.ref, flags, pinIncr, hostAddr, v);
    if (rc !== GNTST_okay) {
      lt.putMaptrackHandle(handle);
      return rc;
    }
    const mfn = rt.actMfn[op.ref];
    lt.mtDomid[handle] = rd.domid;
    lt.mtRef[handle] = op.ref;
    lt.mtTable[handle] = rt;
    lt.mtFlags[handle] = flags & 0xffff;
    op.dev_bus_addr = mfn * PAGE_SIZE;
    op.handle = handle;
    this.counters.maps.value++;
    return GNTST_okay;
  }

  /** The pin, the references and the host entry of one map; on failure everything is undone. */
  private mapPin(
    ld: Domain,
    rd: Domain,
    rt: GrantTable,
    ref: number,
    flags: number,
    pinIncr: number,
    hostAddr: number,
    v: Vcpu,
  ): number {
    if (ref >= rt.nrEntries) return GNTST_bad_gntref;
    const ro = (flags & GNTMAP_readonly) !== 0;
    const pin = rt.pin[ref];
    if (
      pin !== 0 &&
      (rt.actDomid[ref] !== ld.domid ||
        (pin & pinOverflowMask(pinIncr)) !== 0 ||
        rt.actSubPage[ref] !== 0)
    )
      return GNTST_general_error;
    let gotRef = false;
    const f = this.frames;
    if (pin === 0 || (!ro && (pin & (GNTPIN_hstw_mask | GNTPIN_devw_mask)) === 0)) {
      const rc = this.setStatus(rt, ref, pin, ro, true, ld.domid);
      if (rc !== GNTST_okay) return rc;
      if (pin === 0) {
        const gfn = rt.frame(ref);
        // get_paged_frame for a PV granter: the frame is the mfn, and must be the granter's.
        if (!f.getPage(gfn, rd.domid)) {
          this.reduceStatusForPin(rt, ref, ro);
          return GNTST_bad_page;
        }
        gotRef = true;
        rt.actDomid[ref] = ld.domid;
        rt.actMfn[ref] = gfn;
        rt.actStart[ref] = 0;
        rt.actLength[ref] = PAGE_SIZE;
        rt.actSubPage[ref] = 0;
      }
    }
    rt.pin[ref] += pinIncr;
    const mfn = rt.actMfn[ref];
    let refcnt = 0;
    let typecnt = 0;
    let hostMade = false;
    let rc = GNTST_okay;
    if (gotRef) refcnt++;
    else if (f.getPage(mfn, rd.domid)) refcnt++;
    else rc = GNTST_general_error; // the frame is no longer the granter's: could not pin
    if (rc === GNTST_okay && (flags & GNTMAP_device_map) !== 0 && !ro) {
      if (f.getPageType(mfn, PGT_writable_page) === 0) typecnt++;
      else rc = GNTST_general_error;
    }
    if (rc === GNTST_okay && (flags & GNTMAP_host_map) !== 0) {
      if ((flags & GNTMAP_device_map) !== 0) {
        if (f.getPage(mfn, rd.domid)) refcnt++;
        else rc = GNTST_general_error;
      }
      if (rc === GNTST_okay && !ro) {
        if (f.getPageType(mfn, PGT_writable_page) === 0) typecnt++;
        else rc = GNTST_general_error;
      }
      if (rc === GNTST_okay) {
        rc = this.host.create(v, hostAddr, mfn, flags);
        if (rc === GNTST_okay) hostMade = true;
      }
    }
    if (rc === GNTST_okay) return GNTST_okay;
    if (hostMade) {
      this.host.replace(v, hostAddr, mfn, 0, flags);
      this.host.flushTlb(ld);
    }
    while (typecnt-- > 0) f.putPageType(mfn);
    while (refcnt-- > 0) f.putPage(mfn);
    rt.pin[ref] -= pinIncr;
    this.reduceStatusForPin(rt, ref, ro);
    return rc;
  }

  /**
   * _set_status_v1 / _set_status_v2: checks an unpinned entry's type and grantee, refuses a
   * writable pin of a read-only grant, and sets GTF_reading (and GTF_writing).
   */
  private setStatus(
    rt: GrantTable,
    ref: number,
    pin: number,
    ro: boolean,
    mapping: boolean,
    ldomid: number,
  ): number {
    const flags = rt.flags(ref);
    const mask = mapping ? GTF_type_mask | GTF_sub_page : GTF_type_mask;
    if (pin === 0) {
      const type = flags & mask;
      const typeOk =
        type === GTF_permit_access || (rt.version === 2 && !mapping && type === GTF_transitive);
      if (!typeOk || rt.grantee(ref) !== ldomid) return GNTST_general_error;
    }
    if (!ro && (flags & GTF_readonly) !== 0) return GNTST_general_error;
    rt.setStatusBits(ref, ro ? GTF_reading : GTF_reading | GTF_writing);
    return GNTST_okay;
  }

  /** reduce_status_for_pin: the status bits follow the pin after a pin is dropped. */
  private reduceStatusForPin(rt: GrantTable, ref: number, ro: boolean): void {
    const pin = rt.pin[ref];
    let clear = pin === 0 ? GTF_reading : 0;
    if (!ro && (pin & (GNTPIN_hstw_mask | GNTPIN_devw_mask)) === 0) clear |= GTF_writing;
    if (clear !== 0) rt.clearStatusBits(ref, clear);
  }

  /** GNTTABOP_unmap_grant_ref. */
  unmapGrantRef(v: Vcpu, a: GrantTableOpArgs): number {
    return this.unmapBatch(v, a, false);
  }

  /** GNTTABOP_unmap_and_replace. */
  unmapAndReplace(v: Vcpu, a: GrantTableOpArgs): number {
    return this.unmapBatch(v, a, true);
  }

  private unmapBatch(v: Vcpu, a: GrantTableOpArgs, replace: boolean): number {
    const count = this.batch(a);
    if (count < 0) return count;
    const lt = this.tables.get(v.domain.domid);
    if (lt === undefined) return -EINVAL;
    const pending = this.pending;
    pending.length = 0;
    let rc = 0;
    for (let i = 0; i < count; i++) {
      const op = a.uops[i] as GnttabUnmapGrantRef & GnttabUnmapAndReplace;
      if (typeof op !== "object" || op === null || !readU64(op.host_addr, u64scratch)) {
        rc = -EFAULT;
        break;
      }
      const hostAddr = u64scratch.v;
      let second = 0;
      if (!readU64(replace ? op.new_addr : op.dev_bus_addr, u64scratch)) {
        rc = -EFAULT;
        break;
      }
      second = u64scratch.v;
      if (!isUint(op.handle, U32)) {
        rc = -EFAULT;
        break;
      }
      const st = replace
        ? this.unmapCommon(v, lt, op.handle, hostAddr, 0, second)
        : this.unmapCommon(v, lt, op.handle, hostAddr, second, 0);
      op.status = st;
      if (st !== GNTST_okay) this.counters.errors.value++;
    }
    // Xen flushes the mapping domain's TLBs before it lets go of the frames.
    if (pending.length > 0) this.host.flushTlb(v.domain);
    for (const p of pending) this.unmapComplete(p);
    pending.length = 0;
    return rc;
  }

  /** Xen's unmap_common: checks the handle, undoes the entry; references go in unmapComplete. */
  private unmapCommon(
    v: Vcpu,
    lt: GrantTable,
    handle: number,
    hostAddr: number,
    devBusAddr: number,
    newAddr: number,
  ): number {
    if (handle >= lt.mtLimit) return GNTST_bad_handle;
    const flags = lt.mtFlags[handle];
    if ((flags & (GNTMAP_device_map | GNTMAP_host_map)) === 0) return GNTST_bad_handle;
    const rt = lt.mtTable[handle]!;
    const ref = lt.mtRef[handle];
    const mfn = rt.actMfn[ref];
    if (devBusAddr !== 0 && (flags & GNTMAP_device_map) !== 0 && devBusAddr !== mfn * PAGE_SIZE)
      return GNTST_bad_dev_addr;
    let done = 0;
    if (hostAddr !== 0 && (flags & GNTMAP_host_map) !== 0) {
      const rc = this.host.replace(v, hostAddr, mfn, newAddr, flags);
      if (rc !== GNTST_okay) return rc;
      lt.mtFlags[handle] &= ~GNTMAP_host_map;
      done |= GNTMAP_host_map | (flags & GNTMAP_readonly);
    }
    if (devBusAddr !== 0 && (flags & GNTMAP_device_map) !== 0) {
      lt.mtFlags[handle] &= ~GNTMAP_device_map;
      done |= GNTMAP_device_map | (flags & GNTMAP_readonly);
    }
    if ((lt.mtFlags[handle] & (GNTMAP_device_map | GNTMAP_host_map)) === 0)
      lt.putMaptrackHandle(handle);
    if (done !== 0) {
      this.pending.push({ table: rt, ref, mfn, done });
      this.counters.unmaps.value++;
    }
    return GNTST_okay;
  }

  /** Xen's unmap_common_complete: drops the references and pins the unmap released. */
  private unmapComplete(p: UnmapDone): void {
    const { table: rt, ref, mfn, done } = p;
    const ro = (done & GNTMAP_readonly) !== 0;
    const f = this.frames;
    if ((done & GNTMAP_device_map) !== 0) {
      if (ro) f.putPage(mfn);
      else f.putPageAndType(mfn);
      rt.pin[ref] -= ro ? GNTPIN_devr_inc : GNTPIN_devw_inc;
    }
    if ((done & GNTMAP_host_map) !== 0) {
      if (ro) f.putPage(mfn);
      else f.putPageAndType(mfn);
      rt.pin[ref] -= ro ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
    }
    this.reduceStatusForPin(rt, ref, ro);
    this.maybeForget(rt);
  }

  // ---- setup_table, query_size, versions ----

  /** rcu_lock_domain_by_any_id plus XSM_TARGET (itself, privileged, or its target). */
  private targetDomain(v: Vcpu, dom: number): Domain | undefined | null {
    const d = dom === DOMID_SELF ? v.domain : this.hv.domain(dom);
    if (d === undefined || !this.tables.has(d.domid)) return undefined;
    const c = v.domain;
    if (c !== d && !c.isPrivileged && c.target !== d.domid) return null;
    return d;
  }

  /** GNTTABOP_setup_table. */
  setupTable(v: Vcpu, a: GrantTableOpArgs): number {
    if (a.count !== 1) return typeof a.count === "number" ? -EINVAL : -EFAULT;
    const op = (Array.isArray(a.uops) ? a.uops[0] : undefined) as GnttabSetupTable | undefined;
    if (typeof op !== "object" || op === null || !isUint(op.dom, U16) || !isUint(op.nr_frames, U32))
      return -EFAULT;
    if (!Array.isArray(op.frame_list) || op.frame_list.length < op.nr_frames) return -EFAULT;
    const d = this.targetDomain(v, op.dom);
    if (d === undefined) {
      op.status = GNTST_bad_domain;
      return 0;
    }
    if (d === null) {
      op.status = GNTST_permission_denied;
      return 0;
    }
    const t = this.tables.get(d.domid)!;
    const n = op.nr_frames;
    if (n > t.maxFrames) {
      op.status = GNTST_general_error;
      return 0;
    }
    if (
      (n > t.shared.length || (t.version === 2 && statusFramesFor(n) > t.status.length)) &&
      !this.growTable(d, t, n)
    ) {
      op.status = GNTST_general_error;
      return 0;
    }
    for (let i = 0; i < n; i++) op.frame_list[i] = t.shared[i];
    op.status = GNTST_okay;
    return 0;
  }

  /** GNTTABOP_query_size. */
  querySize(v: Vcpu, a: GrantTableOpArgs): number {
    if (a.count !== 1) return typeof a.count === "number" ? -EINVAL : -EFAULT;
    const op = (Array.isArray(a.uops) ? a.uops[0] : undefined) as GnttabQuerySize | undefined;
    if (typeof op !== "object" || op === null || !isUint(op.dom, U16)) return -EFAULT;
    const d = this.targetDomain(v, op.dom);
    if (d === undefined) op.status = GNTST_bad_domain;
    else if (d === null) op.status = GNTST_permission_denied;
    else {
      const t = this.tables.get(d.domid)!;
      op.nr_frames = t.shared.length;
      op.max_nr_frames = t.maxFrames;
      op.status = GNTST_okay;
    }
    return 0;
  }

  /** GNTTABOP_set_version (for the calling domain). */
  setVersion(v: Vcpu, a: GrantTableOpArgs): number {
    const op = (Array.isArray(a.uops) ? a.uops[0] : undefined) as GnttabSetVersion | undefined;
    if (typeof op !== "object" || op === null || !isUint(op.version, U32)) return -EFAULT;
    const gt = this.tables.get(v.domain.domid);
    if (gt === undefined) return -EINVAL;
    const res = this.doSetVersion(v.domain, gt, op.version);
    op.version = gt.version;
    return res;
  }

  private doSetVersion(d: Domain, gt: GrantTable, version: number): number {
    if (version !== 1 && version !== 2) return -EINVAL;
    if (version === 2 && this.maxVersion === 1) return -ENOSYS;
    if (gt.version === version) return 0;
    const nr = gt.nrEntries;
    for (let i = GNTTAB_NR_RESERVED_ENTRIES; i < nr; i++) if (gt.pin[i] !== 0) return -EBUSY;
    // The reserved entries (toolstack grants) survive the switch.
    const saved: { flags: number; domid: number; frame: number }[] = [];
    if (gt.version === 2) {
      for (let i = 0; i < GNTTAB_NR_RESERVED_ENTRIES; i++) {
        const type = gt.flags(i) & GTF_type_mask;
        if ((type === GTF_permit_access && gt.frame(i) >= U32) || type === GTF_transitive)
          return -ERANGE;
      }
    }
    for (let i = 0; i < GNTTAB_NR_RESERVED_ENTRIES; i++) {
      const flags = gt.flags(i);
      if (gt.version === 2 && (flags & GTF_type_mask) !== GTF_permit_access)
        saved.push({ flags: 0, domid: 0, frame: 0 });
      else
        saved.push({
          flags: gt.version === 2 ? flags | gt.statusBits(i) : flags,
          domid: gt.grantee(i),
          frame: gt.frame(i),
        });
    }
    if (gt.version === 1) {
      if (!this.populateStatus(d, gt, gt.shared.length)) return -ENOMEM;
    } else {
      // gnttab_unpopulate_status_frames: refused while the guest still maps a status frame.
      for (const mfn of gt.status) if (this.frames.refCount(mfn) > 1) return -EBUSY;
      this.releaseFrames(gt, gt.status);
      gt.status.length = 0;
    }
    for (const mfn of gt.shared) this.ram.clearFrame(mfn);
    gt.version = version;
    for (let i = 0; i < GNTTAB_NR_RESERVED_ENTRIES; i++) {
      const s = saved[i];
      const a = gt.entryAddr(i);
      if (version === 1) {
        this.ram.write16(a, s.flags);
        this.ram.write16(a + 2, s.domid);
        this.ram.write32(a + 4, s.frame);
      } else {
        this.ram.write16(gt.statusAddr(i), s.flags & (GTF_reading | GTF_writing));
        this.ram.write16(a, s.flags & ~(GTF_reading | GTF_writing));
        this.ram.write16(a + 2, s.domid);
        this.ram.write32(a + 8, s.frame);
      }
    }
    return 0;
  }

  /** GNTTABOP_get_version. */
  getVersion(v: Vcpu, a: GrantTableOpArgs): number {
    const op = (Array.isArray(a.uops) ? a.uops[0] : undefined) as GnttabGetVersion | undefined;
    if (typeof op !== "object" || op === null || !isUint(op.dom, U16)) return -EFAULT;
    const d = this.targetDomain(v, op.dom);
    if (d === undefined) return -ESRCH;
    if (d === null) return -EPERM;
    op.version = this.tables.get(d.domid)!.version;
    return 0;
  }

  /** GNTTABOP_get_status_frames. */
  getStatusFrames(v: Vcpu, a: GrantTableOpArgs): number {
    if (a.count !== 1) return typeof a.count === "number" ? -EINVAL : -EFAULT;
    const op = (Array.isArray(a.uops) ? a.uops[0] : undefined) as GnttabGetStatusFrames | undefined;
    if (typeof op !== "object" || op === null || !isUint(op.dom, U16) || !isUint(op.nr_frames, U32))
      return -EFAULT;
    if (!Array.isArray(op.frame_list) || op.frame_list.length < op.nr_frames) return -EFAULT;
    const d = this.targetDomain(v, op.dom);
    if (d === undefined) op.status = GNTST_bad_domain;
    else if (d === null) op.status = GNTST_permission_denied;
    else {
      const t = this.tables.get(d.domid)!;
      if (op.nr_frames > t.status.length) op.status = GNTST_general_error;
      else {
        for (let i = 0; i < op.nr_frames; i++) op.frame_list[i] = t.status[i];
        op.status = GNTST_okay;
      }
    }
    return 0;
  }

  // ---- copy ----

  /** GNTTABOP_copy. */
  copy(v: Vcpu, a: GrantTableOpArgs): number {
    const count = this.batch(a);
    if (count < 0) return count;
    for (let i = 0; i < count; i++) {
      const op = a.uops[i] as GnttabCopy;
      if (
        typeof op !== "object" ||
        op === null ||
        !isUint(op.len, U16) ||
        !isUint(op.flags, U16) ||
        !validPtr(op.source, (op.flags & GNTCOPY_source_gref) !== 0) ||
        !validPtr(op.dest, (op.flags & GNTCOPY_dest_gref) !== 0)
      )
        return -EFAULT;
      const st = this.copyOne(v, op);
      op.status = st;
      if (st === GNTST_okay) {
        this.counters.copies.value++;
        this.counters.copiedBytes.value += op.len;
      } else this.counters.errors.value++;
    }
    return 0;
  }

  private readonly src = new CopyBuf();
  private readonly dst = new CopyBuf();

  private copyOne(v: Vcpu, op: GnttabCopy): number {
    const srcGref = (op.flags & GNTCOPY_source_gref) !== 0;
    const dstGref = (op.flags & GNTCOPY_dest_gref) !== 0;
    // gnttab_copy_lock_domains: only DOMID_SELF may be named by frame.
    if (op.source.domid !== DOMID_SELF && !srcGref) return GNTST_permission_denied;
    const sd = this.anyDomain(v, op.source.domid);
    if (sd === undefined) return GNTST_bad_domain;
    if (op.dest.domid !== DOMID_SELF && !dstGref) return GNTST_permission_denied;
    const dd = this.anyDomain(v, op.dest.domid);
    if (dd === undefined) return GNTST_bad_domain;
    const src = this.src;
    const dst = this.dst;
    let rc = this.claim(v, sd, op.source, srcGref, true, src);
    if (rc === GNTST_okay) rc = this.claim(v, dd, op.dest, dstGref, false, dst);
    if (rc === GNTST_okay) {
      const so = op.source.offset;
      const doff = op.dest.offset;
      const len = op.len;
      if (so + len > PAGE_SIZE || doff + len > PAGE_SIZE) rc = GNTST_bad_copy_arg;
      else if (so < src.start || so + len > src.start + src.length) rc = GNTST_general_error;
      else if (doff < dst.start || doff + len > dst.start + dst.length) rc = GNTST_general_error;
      else if (len > 0) {
        const from = this.ram.frameBytes(src.mfn);
        const to = this.ram.frameBytes(dst.mfn);
        to.set(from.subarray(so, so + len), doff);
      }
    }
    this.release(dst);
    this.release(src);
    return rc;
  }

  private anyDomain(v: Vcpu, domid: number): Domain | undefined {
    const d = domid === DOMID_SELF ? v.domain : this.hv.domain(domid);
    if (d === undefined || !this.tables.has(d.domid)) return undefined;
    return d;
  }

  /** gnttab_copy_claim_buf: a frame (and a grant pin) for one side of a copy. */
  private claim(
    v: Vcpu,
    d: Domain,
    ptr: GnttabCopyPtr,
    isGref: boolean,
    readonly: boolean,
    buf: CopyBuf,
  ): number {
    buf.reset();
    const f = this.frames;
    if (isGref) {
      const rc = this.acquireForCopy(d, ptr.u.ref as number, v.domain.domid, readonly, buf);
      if (rc !== GNTST_okay) return rc;
    } else {
      const gmfn = ptr.u.gmfn as number;
      if (!f.getPage(gmfn, d.domid)) return GNTST_bad_page;
      buf.mfn = gmfn;
      buf.hasPage = true;
      buf.start = 0;
      buf.length = PAGE_SIZE;
    }
    if (!readonly) {
      if (f.getPageType(buf.mfn, PGT_writable_page) !== 0) return GNTST_general_error;
      buf.hasType = true;
    }
    return GNTST_okay;
  }

  /** acquire_grant_for_copy (without transitive grants). */
  private acquireForCopy(
    rd: Domain,
    ref: number,
    ldom: number,
    readonly: boolean,
    buf: CopyBuf,
  ): number {
    const rt = this.tables.get(rd.domid)!;
    if (ref >= rt.nrEntries) return GNTST_bad_gntref;
    const incr = readonly ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
    const pin = rt.pin[ref];
    if (pin !== 0 && (rt.actDomid[ref] !== ldom || (pin & pinOverflowMask(incr)) !== 0))
      return GNTST_general_error;
    const f = this.frames;
    if (rt.version === 2 && (rt.flags(ref) & GTF_type_mask) === GTF_transitive) {
      // Transitive grants are not modelled: as Xen with transitive grants turned off.
      return GNTST_general_error;
    }
    if (pin === 0 || (!readonly && (pin & (GNTPIN_hstw_mask | GNTPIN_devw_mask)) === 0)) {
      const rc = this.setStatus(rt, ref, pin, readonly, false, ldom);
      if (rc !== GNTST_okay) return rc;
      const gfn = rt.frame(ref);
      if (!f.getPage(gfn, rd.domid)) {
        this.reduceStatusForPin(rt, ref, readonly);
        return GNTST_bad_page;
      }
      const sub = rt.version === 2 && (rt.flags(ref) & GTF_sub_page) !== 0;
      if (pin === 0) {
        rt.actDomid[ref] = ldom;
        rt.actMfn[ref] = gfn;
        rt.actSubPage[ref] = sub ? 1 : 0;
        rt.actStart[ref] = sub ? rt.subPageOffset(ref) : 0;
        rt.actLength[ref] = sub ? rt.subPageLength(ref) : PAGE_SIZE;
      } else if (gfn !== rt.actMfn[ref]) {
        // Xen takes the reference on the frame now named, but copies the pinned one.
        f.putPage(gfn);
        if (!f.getPage(rt.actMfn[ref], rd.domid)) {
          this.reduceStatusForPin(rt, ref, readonly);
          return GNTST_bad_domain;
        }
      }
    } else {
      // Already pinned: a reference on the pinned frame, which must still be the granter's.
      const got = f.getPage(rt.actMfn[ref], rd.domid);
      if (!got || rd.state === "dying") {
        if (got) f.putPage(rt.actMfn[ref]);
        this.reduceStatusForPin(rt, ref, readonly);
        return GNTST_bad_domain;
      }
    }
    rt.pin[ref] += incr;
    buf.table = rt;
    buf.ref = ref;
    buf.readonly = readonly;
    buf.mfn = rt.actMfn[ref];
    buf.hasPage = true;
    buf.start = rt.actStart[ref];
    buf.length = rt.actLength[ref];
    return GNTST_okay;
  }

  /** gnttab_copy_release_buf. */
  private release(buf: CopyBuf): void {
    const t = buf.table;
    if (t !== undefined) {
      t.pin[buf.ref] -= buf.readonly ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
      this.reduceStatusForPin(t, buf.ref, buf.readonly);
    }
    if (buf.hasType) this.frames.putPageType(buf.mfn);
    if (buf.hasPage) this.frames.putPage(buf.mfn);
    buf.reset();
  }

  // ---- views for tools and invariant checkers ----

  /** Every live mapping of every domain. */
  forEachMapping(fn: (m: GrantMappingInfo) => void): void {
    for (const lt of this.tables.values()) {
      for (let h = 0; h < lt.mtLimit; h++) {
        const flags = lt.mtFlags[h];
        if ((flags & (GNTMAP_device_map | GNTMAP_host_map)) === 0) continue;
        const rt = lt.mtTable[h]!;
        const ref = lt.mtRef[h];
        fn({
          mapperDomid: lt.domid,
          handle: h,
          granterDomid: rt.domid,
          ref,
          mfn: rt.actMfn[ref],
          flags,
        });
      }
    }
  }

  /** Every pinned active entry, of live and of destroyed granters; with `all`, also unpinned ones of live tables. */
  forEachActive(fn: (a: ActiveGrantInfo) => void, all = false): void {
    for (const t of [...this.tables.values(), ...this.zombies]) {
      const n = all && !t.released ? t.nrEntries : t.pin.length;
      for (let ref = 0; ref < n; ref++) {
        const pin = t.pin[ref];
        if (pin === 0 && (!all || t.released)) continue;
        fn({
          granterDomid: t.domid,
          ref,
          pin,
          granteeDomid: t.actDomid[ref],
          mfn: t.actMfn[ref],
          statusBits: t.released ? -1 : t.statusBits(ref) & (GTF_reading | GTF_writing),
        });
      }
    }
  }

  /** Whether an entry is unpinned, with its status bits (for tests). */
  statusOf(domid: number, ref: number): { pin: number; statusBits: number } | undefined {
    const t = this.tables.get(domid);
    if (t === undefined || ref >= t.nrEntries) return undefined;
    return { pin: t.pin[ref], statusBits: t.statusBits(ref) & (GTF_reading | GTF_writing) };
  }
}

function validPtr(p: unknown, isGref: boolean): p is GnttabCopyPtr {
  if (typeof p !== "object" || p === null) return false;
  const q = p as GnttabCopyPtr;
  if (typeof q.u !== "object" || q.u === null) return false;
  if (!isUint(q.domid, U16) || !isUint(q.offset, U16)) return false;
  return isGref ? isUint(q.u.ref, U32) : isUint(q.u.gmfn, TWO_64) && Number.isSafeInteger(q.u.gmfn);
}

/** One side of a copy in flight (Xen's struct gnttab_copy_buf). */
class CopyBuf {
  table: GrantTable | undefined = undefined;
  ref = 0;
  readonly = true;
  mfn = 0;
  start = 0;
  length = 0;
  hasPage = false;
  hasType = false;

  reset(): void {
    this.table = undefined;
    this.hasPage = false;
    this.hasType = false;
  }
}
