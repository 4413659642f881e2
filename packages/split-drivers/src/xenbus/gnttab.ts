/*
 * The two grant operations xenbus drivers need (Linux drivers/xen/xenbus/xenbus_client.c):
 * a frontend grants its ring page to the backend domain (xenbus_grant_ring, over the
 * kernel's grant table as drivers/xen/grant-table.c keeps it), and a backend maps the
 * frontend's grant by hypercall (xenbus_map_ring_valloc / xenbus_unmap_ring_vfree).
 *
 * Invariant: a domain writes only its own grant entries (the frames GNTTABOP_setup_table
 * returned for DOMID_SELF), frame and domid before flags; a backend reaches a foreign page
 * only through a mapping the hypervisor granted (GNTTABOP_map_grant_ref succeeded) and only
 * until it unmaps it. A bad ref from the other end is a GNTST_* status, never a throw.
 */
import {
  __HYPERVISOR_grant_table_op,
  DOMID_SELF,
  ENOSPC,
  GNTMAP_device_map,
  GNTST_okay,
  GNTTAB_NR_RESERVED_ENTRIES,
  GNTTABOP_map_grant_ref,
  GNTTABOP_setup_table,
  GNTTABOP_unmap_grant_ref,
  GTF_permit_access,
  GTF_readonly,
  GTF_type_mask,
} from "@hyperlab/abi";
import type { Domain, Hypervisor } from "@hyperlab/core";
import { xenbusError } from "./errors";

const ENTRY_BYTES = 8; // sizeof(grant_entry_v1): flags u16, domid u16, frame u32

/** A domain kernel's v1 grant table: its frames, and a free list of references. */
export class GnttabGuest {
  readonly domain: Domain;
  private readonly hv: Hypervisor;
  private readonly frames: number[];
  private readonly free: number[] = [];
  private readonly cpu: number;

  /**
   * gnttab_init: asks for `nrFrames` grant frames with GNTTABOP_setup_table. Throws a
   * XenbusError when the hypervisor refuses (no grant-table plugin, too many frames).
   */
  constructor(hv: Hypervisor, domain: Domain, nrFrames = 1, cpu = 0) {
    this.hv = hv;
    this.domain = domain;
    this.cpu = cpu;
    const setup = {
      dom: DOMID_SELF,
      nr_frames: nrFrames,
      status: 0,
      frame_list: new Array<number>(nrFrames).fill(0),
    };
    const rc = hv.hypercall(domain.vcpus[cpu]!, __HYPERVISOR_grant_table_op, {
      cmd: GNTTABOP_setup_table,
      uops: [setup],
      count: 1,
    });
    if (rc !== 0 || setup.status !== GNTST_okay || setup.frame_list.length < nrFrames) {
      throw xenbusError(
        "XENBUS_GNTTAB_INIT",
        `Domain ${domain.domid} could not set up ${nrFrames} grant frame(s) (rc ${rc}, status ${setup.status}); compose the hypervisor with the grant-table plugin and keep nrFrames within its limit.`,
      );
    }
    this.frames = setup.frame_list.slice(0, nrFrames);
    const n = (nrFrames * 4096) / ENTRY_BYTES;
    for (let ref = n - 1; ref >= GNTTAB_NR_RESERVED_ENTRIES; ref--) this.free.push(ref);
  }

  /** References still free. */
  get freeCount(): number {
    return this.free.length;
  }

  /** gnttab_grant_foreign_access: a new ref for `mfn`, or -ENOSPC. */
  grantForeignAccess(domid: number, mfn: number, readonly = false): number {
    const ref = this.free.pop();
    if (ref === undefined) return -ENOSPC;
    this.grantForeignAccessRef(ref, domid, mfn, readonly);
    return ref;
  }

  /** gnttab_grant_foreign_access_ref: fill a given ref (e.g. the reserved console one). */
  grantForeignAccessRef(ref: number, domid: number, mfn: number, readonly = false): void {
    const ram = this.hv.machine.ram;
    const at = this.entryAddr(ref);
    ram.write32(at + 4, mfn);
    ram.write16(at + 2, domid);
    ram.write16(at, GTF_permit_access | (readonly ? GTF_readonly : 0));
  }

  /**
   * gnttab_end_foreign_access_ref: revoke `ref` if no one has it mapped; true when revoked
   * (the ref returns to the free list), false while the grantee still uses it.
   */
  endForeignAccess(ref: number): boolean {
    const ram = this.hv.machine.ram;
    const at = this.entryAddr(ref);
    const flags = ram.read16(at);
    if ((flags & 0x18) !== 0) return false; // GTF_reading | GTF_writing: still mapped
    ram.write16(at, flags & ~GTF_type_mask);
    if (ref >= GNTTAB_NR_RESERVED_ENTRIES) this.free.push(ref);
    return true;
  }

  private entryAddr(ref: number): number {
    const perFrame = 4096 / ENTRY_BYTES;
    const frame = this.frames[Math.floor(ref / perFrame)];
    if (!Number.isInteger(ref) || ref < 0 || frame === undefined) {
      throw xenbusError(
        "XENBUS_BAD_OPTION",
        `grant ref ${ref} is outside domain ${this.domain.domid}'s ${this.frames.length} grant frame(s).`,
      );
    }
    return frame * 4096 + (ref % perFrame) * ENTRY_BYTES;
  }

  /** The vCPU this table's hypercalls run on. */
  get vcpu(): number {
    return this.cpu;
  }
}

/** A foreign page a backend has mapped: the machine frame it may touch, and the handle. */
export interface MappedRing {
  mfn: number;
  handle: number;
}

/**
 * xenbus_map_ring_valloc for one page: GNTTABOP_map_grant_ref of (`otherend`, `ref`) from
 * `domain`'s vCPU. A device mapping (the frame's machine address comes back in dev_bus_addr)
 * stands for the kernel's virtual mapping. Returns the mapping, or the GNTST_* status (< 0).
 */
export function xenbusMapRing(
  hv: Hypervisor,
  domain: Domain,
  otherend: number,
  ref: number,
  cpu = 0,
): MappedRing | number {
  const op = {
    host_addr: 0,
    flags: GNTMAP_device_map,
    ref,
    dom: otherend,
    status: 0,
    handle: 0,
    dev_bus_addr: 0,
  };
  const rc = hv.hypercall(domain.vcpus[cpu]!, __HYPERVISOR_grant_table_op, {
    cmd: GNTTABOP_map_grant_ref,
    uops: [op],
    count: 1,
  });
  if (rc < 0) return rc;
  if (op.status !== GNTST_okay) return op.status < 0 ? op.status : -1;
  return { mfn: Math.floor(op.dev_bus_addr / 4096), handle: op.handle };
}

/** xenbus_unmap_ring_vfree: GNTTABOP_unmap_grant_ref. Returns GNTST_okay (0) or the status. */
export function xenbusUnmapRing(hv: Hypervisor, domain: Domain, ring: MappedRing, cpu = 0): number {
  const op = { host_addr: 0, dev_bus_addr: ring.mfn * 4096, handle: ring.handle, status: 0 };
  const rc = hv.hypercall(domain.vcpus[cpu]!, __HYPERVISOR_grant_table_op, {
    cmd: GNTTABOP_unmap_grant_ref,
    uops: [op],
    count: 1,
  });
  return rc < 0 ? rc : op.status;
}
