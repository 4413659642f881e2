/*
 * The write audit: every store the hypervisor makes on a domain's behalf lands in a frame that
 * domain owns or was granted, or in an area another domain shared with the hypervisor for
 * event delivery (its shared_info, its registered vcpu_info and runstate areas, and whatever
 * `sharedAreas` adds, e.g. FIFO control blocks and event arrays).
 *
 * Invariant it checks: while `audit.as(domid, fn)` runs, each store the RAM takes (through the
 * debug write hook: write8..writeBytes, clearFrame, copyFrame) and each frame view handed out
 * for writing (frameWords(mfn, true), frameBytes) is checked against the rule above. Stores
 * through a view handed out earlier are not seen one by one; they cannot leave that view's
 * frame (Ram's views are one frame each), and the frame was checked when it was handed out.
 * That is Xen's own model: it maps a guest frame once (map_domain_page after
 * get_page_and_type) and writes through that mapping later.
 */

import { HyperlabError, type Hypervisor } from "@hyperlab/core";
import { PAGE_SIZE, type RamWriteHook } from "@hyperlab/machine";
import { InvariantError, type TestkitUsageCode } from "./errors";
import type { GrantView } from "./grants";

/** One store the audit refused. */
export interface StrayWrite {
  /** The domain on whose behalf the hypervisor was acting. */
  domid: number;
  /** First machine address of the store (a view hand-out reports its whole frame). */
  maddr: number;
  len: number;
  /** The frame the store landed in, and its owner then (-1: free; DOMID_XEN etc. as is). */
  mfn: number;
  owner: number;
}

export interface WriteAuditOptions {
  /** Grant mappings and pins: frames mapped by or pinned for the acting domain are allowed. */
  grants?: GrantView;
  /**
   * Frames of domain `domid` that it shared with the hypervisor for event delivery, beyond
   * shared_info and the vcpu_info/runstate areas core knows (FIFO control blocks, event
   * arrays, the PIRQ EOI bitmap...). Any domain's stores may land there.
   */
  sharedAreas?: (domid: number) => Iterable<number>;
  /** Stop at the first stray store with a thrown InvariantError instead of recording it. */
  throwOnStray?: boolean;
}

export interface WriteAudit {
  /** Runs `fn` as the hypervisor acting for `domid`, checking every store it makes. */
  as<T>(domid: number, fn: () => T): T;
  /** Stray stores seen so far, in order. */
  readonly strays: readonly StrayWrite[];
  /** Stores checked so far (hand-outs included). */
  readonly checked: number;
  /** Throws an InvariantError listing the stray stores, if any. */
  assertClean(): void;
  /** Removes the hook (restoring any hook that was there before). */
  dispose(): void;
}

/**
 * Installs the write audit on `hv`'s RAM. Outside `as()` the hook returns at once, so stores
 * the hypervisor makes for itself (domain building, timers) are not checked.
 */
export function createWriteAudit(hv: Hypervisor, options: WriteAuditOptions = {}): WriteAudit {
  const ram = hv.machine.ram;
  const frames = hv.frames;
  const keys = frames.ownerKeys;
  const strays: StrayWrite[] = [];
  let acting = -1;
  let checked = 0;
  let disposed = false;
  /** The acting domain's grants and the domains' shared areas, built on first need per `as`. */
  let granted: Set<number> | null = null;
  let shared: Set<number> | null = null;

  const grantedTo = (domid: number): Set<number> => {
    const out = new Set<number>();
    const g = options.grants;
    if (g === undefined) return out;
    g.forEachMapping((m) => {
      if (m.mapperDomid === domid) out.add(m.mfn);
    });
    g.forEachActive((a) => {
      if (a.granteeDomid === domid && a.mfn >= 0) out.add(a.mfn);
    });
    return out;
  };

  const sharedFrames = (): Set<number> => {
    const out = new Set<number>();
    for (const d of hv.domains()) {
      out.add(d.sharedInfoMfn);
      for (const v of d.vcpus) {
        const info = hv.vcpuAreas.vcpuInfoMaddr(v);
        if (info >= 0) out.add(Math.floor(info / PAGE_SIZE));
        const rs = hv.vcpuAreas.runstateAreaMaddr(v);
        if (rs >= 0) {
          out.add(Math.floor(rs / PAGE_SIZE));
          const end = hv.vcpuAreas.runstateAreaAt(v, 47);
          if (end >= 0) out.add(Math.floor(end / PAGE_SIZE));
        }
      }
      if (options.sharedAreas !== undefined)
        for (const m of options.sharedAreas(d.domid)) out.add(m);
    }
    return out;
  };

  const allowed = (mfn: number): boolean => {
    // A frame of the acting domain's populate-on-demand block is its memory too: a native
    // guest (no owner check on its accesses) writes one without populating it.
    if (keys[mfn] === ~acting || frames.isPod(mfn, acting)) return true;
    if (granted === null) granted = grantedTo(acting);
    if (granted.has(mfn)) return true;
    if (shared === null) shared = sharedFrames();
    return shared.has(mfn);
  };

  const hook: RamWriteHook = (maddr, len) => {
    if (acting < 0) return;
    checked++;
    const first = Math.floor(maddr / PAGE_SIZE);
    const last = Math.floor((maddr + len - 1) / PAGE_SIZE);
    for (let mfn = first; mfn <= last; mfn++) {
      if (allowed(mfn)) continue;
      const s: StrayWrite = { domid: acting, maddr, len, mfn, owner: frames.ownerOf(mfn) };
      strays.push(s);
      if (options.throwOnStray === true) {
        throw new InvariantError("WRITE_AUDIT_STRAY", "write audit", [describeStray(s)]);
      }
    }
  };
  const previous = ram.setWriteHook(hook);

  return {
    as<T>(domid: number, fn: () => T): T {
      if (disposed) {
        throw new HyperlabError<TestkitUsageCode>(
          "WRITE_AUDIT_DISPOSED",
          "this write audit was disposed; create a new one with createWriteAudit(hv)",
        );
      }
      if (acting >= 0) {
        throw new HyperlabError<TestkitUsageCode>(
          "WRITE_AUDIT_NESTED",
          `audit.as(${domid}) inside audit.as(${acting}): the hypervisor acts for one domain at ` +
            "a time; end the outer call first",
        );
      }
      acting = domid;
      granted = null;
      shared = null;
      try {
        return fn();
      } finally {
        acting = -1;
      }
    },
    get strays() {
      return strays;
    },
    get checked() {
      return checked;
    },
    assertClean(): void {
      if (strays.length === 0) return;
      throw new InvariantError("WRITE_AUDIT_STRAY", "write audit", strays.map(describeStray));
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      ram.setWriteHook(previous);
    },
  };
}

function describeStray(s: StrayWrite): string {
  return (
    `a store on behalf of domain ${s.domid} landed in frame ${s.mfn} (owner ${s.owner}) at ` +
    `machine address ${s.maddr} (+${s.len} bytes): the domain neither owns it nor was granted it`
  );
}
