import { __HYPERVISOR_grant_table_op, GTF_permit_access } from "@hyperlab/abi";
import { createHypervisor, type Domain, type Hypervisor, type Plugin } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import {
  assertFrameInvariants,
  assertGrantInvariants,
  GrantMappingDouble,
  grantInvariantOptions,
} from "@hyperlab/testkit";
import {
  type GnttabMapGrantRef,
  type GnttabUnmapAndReplace,
  type GnttabUnmapGrantRef,
  type GrantTableOptions,
  type GrantTableService,
  grantHostMapping,
  grantTable,
} from "../src/index";

export interface World {
  hv: Hypervisor;
  gt: GrantTableService;
  dbl: GrantMappingDouble;
}

/** A booted hypervisor with grant tables whose host mappings go to the testkit double. */
export function boot(
  options: GrantTableOptions = {},
  ramBytes = 16 << 20,
  extra: Plugin[] = [],
): World {
  const machine = createMachine({ ramBytes, cpus: 2, seed: 7 });
  const dbl = new GrantMappingDouble();
  const hv = createHypervisor({
    machine,
    plugins: [grantHostMapping(() => dbl), grantTable(options), ...extra],
  }).boot();
  return { hv, gt: hv.slot("grant-table"), dbl };
}

export function dom(
  w: World,
  opts: { domid?: number; privileged?: boolean; maxPages?: number } = {},
): Domain {
  return w.hv.createDomain({
    domid: opts.domid,
    privileged: opts.privileged,
    maxVcpus: 2,
    maxPages: opts.maxPages ?? 64,
  });
}

/** HYPERVISOR_grant_table_op(cmd, uops, count) from vCPU 0 of `d`. */
// biome-ignore lint/suspicious/noExplicitAny: tests pass malformed elements on purpose
export function gnttab(w: World, d: Domain, cmd: number, uops: any[], count = uops.length): number {
  return w.hv.hypercall(d.vcpus[0], __HYPERVISOR_grant_table_op, { cmd, uops, count });
}

/** Writes grant entry `ref` (v1) into the granter's shared frame, as the guest would. */
export function grantV1(
  w: World,
  granter: Domain,
  ref: number,
  grantee: number,
  frame: number,
  flags = GTF_permit_access,
): void {
  const t = w.gt.table(granter.domid)!;
  const a = t.shared[ref >> 9] * 4096 + (ref % 512) * 8;
  const ram = w.hv.machine.ram;
  ram.write32(a + 4, frame);
  ram.write16(a + 2, grantee);
  ram.write16(a, flags);
}

/** The flags of v1 entry `ref` as they are in guest memory. */
export function flagsV1(w: World, granter: Domain, ref: number): number {
  const t = w.gt.table(granter.domid)!;
  return w.hv.machine.ram.read16(t.shared[ref >> 9] * 4096 + (ref % 512) * 8);
}

/** Frame and grant invariants, with host references held by the double (not page tables). */
export function check(w: World): void {
  assertFrameInvariants(w.hv, grantInvariantOptions(w.gt, { hostRefsInPageTables: false }));
  assertGrantInvariants(w.hv, w.gt, { hostRefsInPageTables: false });
}

/** Typed element literals (outputs are written back into them). */
export const M = (o: GnttabMapGrantRef): GnttabMapGrantRef => o;
export const U = (o: GnttabUnmapGrantRef): GnttabUnmapGrantRef => o;
export const R = (o: GnttabUnmapAndReplace): GnttabUnmapAndReplace => o;
