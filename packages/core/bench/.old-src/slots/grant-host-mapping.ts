/*
 * The `grant-host-mapping` slot: the arch half of a grant host mapping (Xen's
 * create_grant_host_mapping and replace_grant_host_mapping). The grant table takes the
 * references a mapping holds; the slot's provider only writes and clears the page-table entry.
 * pv-mmu provides it for Xen PV page tables (`pvGrantMapping`); testkit's GrantMappingDouble
 * provides it for builds without page tables.
 *
 * Contract (what every provider keeps): `create` installs an entry for `mfn` at the mapping
 * domain's `addr` without taking references for it, and drops the references of the entry it
 * replaces; `replace` clears (or, with `newAddr`, moves another entry into) the entry at
 * `addr` only if it still maps `mfn` with the grant's present and writable bits, and takes or
 * drops no reference of the grant's. Both answer GNTST_okay or a GNTST_* error; neither throws.
 */
import type { Domain, Vcpu } from "../domain";

export interface GrantHostMapping {
  /** What it is, for describe(): "pv", "double", ... */
  readonly kind: string;
  /**
   * Whether the mapping domain's page tables give back a host mapping's references when they
   * are torn down (Xen on PV: gnttab_release_host_mappings is false). When false, the grant
   * table drops them itself when the mapping domain dies.
   */
  readonly releasedWithPageTables: boolean;
  /**
   * Xen's create_grant_host_mapping: an entry for `mfn` at `addr` of `vcpu`'s current page
   * tables (a linear address, or with GNTMAP_contains_pte in `flags` the machine address of
   * the entry), with permissions from `flags` (GNTMAP_readonly, GNTMAP_application_map).
   */
  create(vcpu: Vcpu, addr: number, mfn: number, flags: number): number;
  /**
   * Xen's replace_grant_host_mapping: if the entry at `addr` maps `mfn` as the grant made it,
   * clear it, or when `newAddr` is nonzero move the entry found at `newAddr` there.
   */
  replace(vcpu: Vcpu, addr: number, mfn: number, newAddr: number, flags: number): number;
  /** gnttab_flush_tlb: flushes every vCPU of the domain (before unmapped frames are released). */
  flushTlb(d: Domain): void;
}
