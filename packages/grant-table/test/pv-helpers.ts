import {
  __HYPERVISOR_grant_table_op,
  __HYPERVISOR_update_va_mapping,
  DOMID_SELF,
  GNTTABOP_setup_table,
  GTF_permit_access,
  UVMF_INVLPG,
} from "@hyperlab/abi";
import { createHypervisor, type Domain, type Hypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import {
  buildPvDomain,
  type PvBuildResult,
  type PvMmu,
  pvGrantMapping,
  pvMmu,
} from "@hyperlab/pv-mmu";
import {
  checkFrameInvariants,
  checkGrantInvariants,
  grantInvariantOptions,
} from "@hyperlab/testkit";
import { type GrantTableService, grantTable } from "../src/index";

export interface PvWorld {
  hv: Hypervisor;
  pv: PvMmu;
  gt: GrantTableService;
}

export interface PvGuest {
  d: Domain;
  b: PvBuildResult;
  /** Where the guest mapped its first grant-table frame. */
  gntVa: number;
}

/** A booted hypervisor with the PV MMU, PV grant host mappings and grant tables. */
export function bootPv(ramBytes = 32 << 20): PvWorld {
  const machine = createMachine({ ramBytes, cpus: 2, seed: 3 });
  const hv = createHypervisor({
    machine,
    plugins: [pvMmu(), pvGrantMapping(), grantTable()],
  }).boot();
  return { hv, pv: hv.slot("pv-mmu"), gt: hv.slot("grant-table") };
}

/**
 * Builds a 64-bit PV guest and, as Linux's gnttab_init does, asks for its grant frames with
 * setup_table and maps the first one writable just past its bootstrap region.
 */
export function pvGuest(w: PvWorld, domid: number, nrPages = 1100): PvGuest {
  const d = w.hv.createDomain({ domid, maxVcpus: 1, maxPages: nrPages + 64 });
  const b = buildPvDomain(w.hv, w.pv, { domain: d, nrPages });
  const v = d.vcpus[0];
  const setup = { dom: DOMID_SELF, nr_frames: 1, frame_list: [0] };
  w.hv.hypercall(v, __HYPERVISOR_grant_table_op, {
    cmd: GNTTABOP_setup_table,
    uops: [setup],
    count: 1,
  });
  const gntVa = b.vEnd + 32 * 4096;
  const rc = w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, {
    va: gntVa,
    val: setup.frame_list[0] * 4096 + 0x67,
    flags: UVMF_INVLPG,
  });
  if (rc !== 0) throw new Error(`mapping the grant frame failed: ${rc}`);
  return { d, b, gntVa };
}

/** The guest writes v1 grant entry `ref` through its own mapping (frame and domid, then flags). */
export function guestGrant(
  w: PvWorld,
  g: PvGuest,
  ref: number,
  grantee: number,
  frame: number,
  flags = GTF_permit_access,
): boolean {
  const v = g.d.vcpus[0];
  const va = g.gntVa + ref * 8;
  return (
    w.pv.write(v, va + 4, 4, frame) &&
    w.pv.write(v, va + 2, 2, grantee) &&
    w.pv.write(v, va, 2, flags)
  );
}

/** Maps one of the guest's own frames writable at `va` (a fresh L1 slot past its region). */
export function mapOwn(w: PvWorld, g: PvGuest, va: number, mfn: number, rw = true): number {
  return w.hv.hypercall(g.d.vcpus[0], __HYPERVISOR_update_va_mapping, {
    va,
    val: mfn * 4096 + (rw ? 0x67 : 0x65),
    flags: UVMF_INVLPG,
  });
}

/** Every frame, page-table and grant invariant, with host references in the PV page tables. */
export function violations(w: PvWorld): string[] {
  return [
    ...checkFrameInvariants(w.hv, grantInvariantOptions(w.gt, { hostRefsInPageTables: true })),
    ...checkGrantInvariants(w.hv, w.gt, { hostRefsInPageTables: true }),
  ];
}
