/*
 * Grant-table invariant checkers. They read a grant table through `GrantView` (which
 * @hyperlab/grant-table's service implements) and plug grants into the frame checkers
 * through their `granted` and `extraRefs` inputs.
 *
 * What they prove, after any hypercall (a copy holds nothing between calls):
 * 1. Every active entry's pin equals the mappings that name it, counted per kind (host or
 *    device, writable or read-only), and names the domain that maps it.
 * 2. GTF_reading is set exactly while an entry is pinned and GTF_writing exactly while it
 *    has a writable pin, for a guest that behaves as Linux does: it leaves those two bits to
 *    Xen, writes its grant frames only through entries, and does not change the type of an
 *    entry in use (Xen's set_version drops a reserved entry whose type is not permit_access).
 * 3. Every frame whose references a mapping holds (device mappings; host mappings too when
 *    the host entries are not page-table entries) is still its granter's (or, after the
 *    granter died, Xen's, for its grant frames).
 * 4. With the frame checkers: a domain's page tables map a foreign frame only through a live
 *    host mapping (writable only if the grant is), and every reference count equals what
 *    page tables, pins, allocation and grant mappings hold.
 */
import {
  DOMID_XEN,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GTF_reading,
  GTF_writing,
} from "@hyperlab/abi";
import { FRAME_FREE, type Hypervisor } from "@hyperlab/core";
import { InvariantError } from "./errors";
import type { InvariantOptions } from "./invariants";

// Values from Xen's public/grant_table.h and xen/common/grant_table.c.
const GNTPIN_hstw_inc = 1;
const GNTPIN_hstr_inc = 1 << 8;
const GNTPIN_devw_inc = 1 << 16;
const GNTPIN_devr_inc = 1 << 24;
const GNTPIN_writable_mask = 0xff | (0xff << 16);

/** One live grant mapping (a maptrack entry in use). */
export interface GrantViewMapping {
  mapperDomid: number;
  handle: number;
  granterDomid: number;
  ref: number;
  mfn: number;
  /** GNTMAP_* flags still in force. */
  flags: number;
}

/** One active grant entry. */
export interface GrantViewActive {
  granterDomid: number;
  ref: number;
  pin: number;
  granteeDomid: number;
  mfn: number;
  /** GTF_reading | GTF_writing as in guest memory; -1 when the table's frames are gone. */
  statusBits: number;
}

/** What the checkers need from a grant table implementation. */
export interface GrantView {
  forEachMapping(fn: (m: GrantViewMapping) => void): void;
  /** Pinned entries; with `all`, also the unpinned entries of live tables. */
  forEachActive(fn: (a: GrantViewActive) => void, all?: boolean): void;
}

export interface GrantCheckOptions {
  /**
   * Whether a host mapping's references are held by a page-table entry the frame checkers
   * count (true with PV page tables; false with a slot that writes no real entries).
   */
  hostRefsInPageTables: boolean;
}

function key(domid: number, x: number): string {
  return `${domid}:${x}`;
}

/**
 * Frame-checker inputs for the grants as they are now: pass the result to
 * checkFrameInvariants / assertFrameInvariants right away (it is a snapshot).
 */
export function grantInvariantOptions(
  view: GrantView,
  options: GrantCheckOptions,
): Pick<InvariantOptions, "granted" | "extraRefs"> {
  const general = new Map<number, number>();
  const typed = new Map<number, number>();
  const hostRo = new Set<string>();
  const hostRw = new Set<string>();
  const add = (mfn: number, rw: boolean) => {
    general.set(mfn, (general.get(mfn) ?? 0) + 1);
    if (rw) typed.set(mfn, (typed.get(mfn) ?? 0) + 1);
  };
  view.forEachMapping((m) => {
    const rw = (m.flags & GNTMAP_readonly) === 0;
    if ((m.flags & GNTMAP_device_map) !== 0) add(m.mfn, rw);
    if ((m.flags & GNTMAP_host_map) !== 0) {
      (rw ? hostRw : hostRo).add(key(m.mapperDomid, m.mfn));
      if (!options.hostRefsInPageTables) add(m.mfn, rw);
    }
  });
  return {
    granted: (mapper, mfn, writable) =>
      hostRw.has(key(mapper, mfn)) || (!writable && hostRo.has(key(mapper, mfn))),
    extraRefs: (mfn) => {
      const g = general.get(mfn);
      return g === undefined ? undefined : { general: g, type: typed.get(mfn) ?? 0 };
    },
  };
}

/** Checks the grant-table invariants 1-3; returns the violations found (empty when all hold). */
export function checkGrantInvariants(
  hv: Hypervisor,
  view: GrantView,
  options: GrantCheckOptions,
  limit = 20,
): string[] {
  const out: string[] = [];
  const bad = (s: string) => {
    if (out.length < limit) out.push(s);
  };
  const pins = new Map<string, { pin: number; mapper: number }>();
  const f = hv.frames;
  view.forEachMapping((m) => {
    const ro = (m.flags & GNTMAP_readonly) !== 0;
    let incr = 0;
    if ((m.flags & GNTMAP_device_map) !== 0) incr += ro ? GNTPIN_devr_inc : GNTPIN_devw_inc;
    if ((m.flags & GNTMAP_host_map) !== 0) incr += ro ? GNTPIN_hstr_inc : GNTPIN_hstw_inc;
    const k = key(m.granterDomid, m.ref);
    const p = pins.get(k) ?? { pin: 0, mapper: m.mapperDomid };
    if (p.mapper !== m.mapperDomid)
      bad(`grant ${k} is mapped by both domain ${p.mapper} and domain ${m.mapperDomid}`);
    p.pin += incr;
    pins.set(k, p);
    // A host mapping whose page-table entry the guest overwrote holds nothing any more (Xen's
    // put_page_from_l1e took its references back): only mappings whose references the grant
    // table itself holds must keep their frame.
    if ((m.flags & GNTMAP_device_map) === 0 && options.hostRefsInPageTables) return;
    const owner = f.ownerOf(m.mfn);
    if (owner === FRAME_FREE)
      bad(`domain ${m.mapperDomid} handle ${m.handle} maps free frame ${m.mfn}`);
    else if (owner !== m.granterDomid && owner !== DOMID_XEN)
      bad(
        `domain ${m.mapperDomid} handle ${m.handle} maps frame ${m.mfn} of domain ${owner}, not of its granter ${m.granterDomid}`,
      );
  });
  view.forEachActive((a) => {
    const k = key(a.granterDomid, a.ref);
    const p = pins.get(k);
    const want = p?.pin ?? 0;
    if (a.pin !== want >>> 0)
      bad(
        `grant ${k} has pin ${a.pin.toString(16)} but its mappings account for ${want.toString(16)}`,
      );
    if (p !== undefined && a.pin !== 0 && a.granteeDomid !== p.mapper)
      bad(`grant ${k} is pinned for domain ${a.granteeDomid} but mapped by domain ${p.mapper}`);
    pins.delete(k);
    if (a.statusBits < 0) return;
    const reading = (a.statusBits & GTF_reading) !== 0;
    const writing = (a.statusBits & GTF_writing) !== 0;
    if (reading !== (a.pin !== 0))
      bad(`grant ${k}: GTF_reading is ${reading ? "set" : "clear"} with pin ${a.pin.toString(16)}`);
    if (writing !== ((a.pin & GNTPIN_writable_mask) !== 0))
      bad(`grant ${k}: GTF_writing is ${writing ? "set" : "clear"} with pin ${a.pin.toString(16)}`);
  }, true);
  for (const [k, p] of pins)
    if (p.pin !== 0) bad(`grant ${k} is mapped by domain ${p.mapper} but its entry is not pinned`);
  return out;
}

/** Throws an InvariantError (GRANT_INVARIANTS_BROKEN) listing the violations, if any. */
export function assertGrantInvariants(
  hv: Hypervisor,
  view: GrantView,
  options: GrantCheckOptions,
): void {
  const v = checkGrantInvariants(hv, view, options);
  if (v.length > 0) throw new InvariantError("GRANT_INVARIANTS_BROKEN", "grant invariants", v);
}
