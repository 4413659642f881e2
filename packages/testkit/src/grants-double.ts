/*
 * A test double of the `grant-host-mapping` slot (@hyperlab/grant-table's GrantHostMapping):
 * host mappings kept in a table instead of page tables, so the grant table can be tested
 * without an MMU.
 *
 * Rules it keeps, as a PV implementation would: an address is a linear address below 2^47
 * or, with GNTMAP_contains_pte, an 8-byte-aligned machine address; `create` overwrites what
 * was at the address; `replace` succeeds only on an entry that maps the same frame with the
 * same writability, and moves the entry found at `newAddr` (which must exist) into its place.
 * It holds no frame references: the grant table keeps a mapping's references itself when
 * `releasedWithPageTables` is false.
 */
import {
  GNTMAP_contains_pte,
  GNTMAP_readonly,
  GNTST_general_error,
  GNTST_okay,
} from "@hyperlab/abi";
import type { Domain, Vcpu } from "@hyperlab/core";

const VA_LIMIT = 2 ** 47;

/** One host mapping the double holds. */
export interface DoubleMapping {
  mfn: number;
  readonly: boolean;
}

export class GrantMappingDouble {
  readonly kind = "double";
  readonly releasedWithPageTables = false;
  /** Mappings by domain, then by address. */
  readonly mappings = new Map<number, Map<number, DoubleMapping>>();
  creates = 0;
  replaces = 0;
  flushes = 0;

  private valid(addr: number, flags: number): boolean {
    if ((flags & GNTMAP_contains_pte) !== 0) return addr % 8 === 0;
    return addr < VA_LIMIT;
  }

  private of(domid: number): Map<number, DoubleMapping> {
    let m = this.mappings.get(domid);
    if (m === undefined) {
      m = new Map();
      this.mappings.set(domid, m);
    }
    return m;
  }

  create(v: Vcpu, addr: number, mfn: number, flags: number): number {
    if (!this.valid(addr, flags)) return GNTST_general_error;
    this.of(v.domain.domid).set(addr, { mfn, readonly: (flags & GNTMAP_readonly) !== 0 });
    this.creates++;
    return GNTST_okay;
  }

  replace(v: Vcpu, addr: number, mfn: number, newAddr: number, flags: number): number {
    const m = this.of(v.domain.domid);
    if ((flags & GNTMAP_contains_pte) !== 0 && newAddr !== 0) return GNTST_general_error;
    let moved: DoubleMapping | undefined;
    if (newAddr !== 0) {
      moved = m.get(newAddr);
      if (moved === undefined) return GNTST_general_error;
      m.delete(newAddr);
    }
    const old = m.get(addr);
    if (old === undefined || old.mfn !== mfn || old.readonly !== ((flags & GNTMAP_readonly) !== 0))
      return GNTST_general_error;
    if (moved === undefined) m.delete(addr);
    else m.set(addr, moved);
    this.replaces++;
    return GNTST_okay;
  }

  flushTlb(_d: Domain): void {
    this.flushes++;
  }

  /** The frame mapped at `addr` for `domid`, or -1. */
  lookup(domid: number, addr: number): number {
    return this.mappings.get(domid)?.get(addr)?.mfn ?? -1;
  }

  /** Forgets a domain's mappings (what its page-table teardown would do). */
  forget(domid: number): void {
    this.mappings.delete(domid);
  }
}
