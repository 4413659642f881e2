/*
 * What the PV MMU's hypercall handlers share: the context they run in (the hypervisor, the
 * frame table, the page tables, the M2P, the per-vCPU state and the flushes), the guest's
 * domain lookups (Xen's get_pg_owner, rcu_lock_domain_by_any_id) and the checks of guest
 * words. Every handler file takes a PvMmuContext as its first argument; PvMmu makes the one
 * context at construction.
 *
 * Invariant: a lookup of a guest-named domain answers undefined (the caller's -ESRCH) for
 * anything it cannot name, and the guest-word checks answer false for anything not a C
 * unsigned int or a guest address; nothing here throws on guest input.
 */

import { DOMID_IO, DOMID_SELF, DOMID_XEN } from "@hyperlab/abi";
import type { Domain, FrameTable, Hypervisor, MmuFault, Vcpu } from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import type { M2p } from "./m2p";
import type { PvPageTables } from "./pv-mmu";
import {
  HYPERVISOR_VIRT_END_48,
  HYPERVISOR_VIRT_START_48,
  MMU_UPDATE_PREEMPTED,
  VA_LIMIT,
} from "./xen";

/** Per-vCPU PV state this package keeps. */
export interface PvVcpu {
  /** The root each tag's entries were filled from (-2: none yet). */
  roots: Float64Array;
  /** Flushes of this vCPU's TLB (local, all, CR3 loads). */
  flushes: number;
  /** Xen's arch.pv.ldt_base / ldt_ents (base 0 when ents is 0). */
  ldtBase: number;
  ldtEnts: number;
  /** LDTs loaded (load_LDT after SET_LDT changed them). */
  ldtLoads: number;
  /** Whether a VCPUOP_initialise context was taken over (vCPUs other than 0, once). */
  contextLoaded: boolean;
}

/** Most LDT entries (a 64 KiB LDT of 8-byte descriptors): MMUEXT_SET_LDT's bound. */
export const MAX_LDT_ENTS = 8192;

/** Stat counters the service bumps (filled by the plugin from ctx.stats). */
export interface PvMmuCounters {
  mmuUpdates: { value: number };
  ptwrEmulations: { value: number };
  tlbFlushes: { value: number };
  pageFaults: { value: number };
  /** Flushes on a vCPU other than the caller's (each an IPI to its pCPU in Xen). */
  remoteFlushes: { value: number };
}

/** The context every PV MMU hypercall handler runs in (one per PvMmu). */
export interface PvMmuContext {
  readonly hv: Hypervisor;
  readonly frames: FrameTable;
  readonly ram: Ram;
  readonly pt: PvPageTables;
  readonly m2p: M2p;
  /** The last fault a translation reported (read by the ptwr fix-up). */
  readonly fault: MmuFault;
  /** Stat counters (filled by the plugin). */
  readonly counters: PvMmuCounters;
  /** The vCPU's PV state (made on first use). */
  pvVcpu(v: Vcpu): PvVcpu;
  flushLocal(v: Vcpu): void;
  flushOne(v: Vcpu, va: number): void;
  /** Flushes every vCPU of a domain (Xen's flush_tlb_mask(d->dirty_cpumask)). */
  flushDomain(domid: number): void;
  /** Flushes every TLB if a frame was freed since the last full flush. */
  flushIfFramesReused(): void;
}

export const TWO_20 = 0x10_0000;

/** A C unsigned int as a guest may pass it: any 32-bit integer, signed or not. */
export function isU32(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x) && x >= -0x8000_0000 && x <= 0xffff_ffff;
}

/** __addr_ok for a 64-bit guest: a 48-bit address outside Xen's range. */
export function addrOk(va: number): boolean {
  return (
    va >= 0 && va < VA_LIMIT && !(va >= HYPERVISOR_VIRT_START_48 && va < HYPERVISOR_VIRT_END_48)
  );
}

/** vcpumask_to_pcpumask, on vCPUs: the domain's vCPUs named in a bitmap; undefined if unreadable. */
export function vcpusOf(
  d: Domain,
  mask: readonly number[] | Uint32Array | undefined,
): Vcpu[] | undefined {
  if (mask === undefined || (!Array.isArray(mask) && !(mask instanceof Uint32Array)))
    return undefined;
  const out: Vcpu[] = [];
  for (let w = 0; w * 32 < d.vcpus.length; w++) {
    if (w >= mask.length) return undefined;
    const bits = mask[w];
    if (!isU32(bits)) return undefined;
    for (let b = 0; b < 32; b++) {
      if ((bits >>> b) & 1 && w * 32 + b < d.vcpus.length) out.push(d.vcpus[w * 32 + b]);
    }
  }
  return out;
}

/** get_pg_owner: DOMID_SELF is the caller; naming oneself by number is refused, as in Xen. */
export function getPgOwner(ctx: PvMmuContext, v: Vcpu, domid: number): Domain | undefined {
  const curr = v.domain;
  if (domid === curr.domid) return undefined;
  if (domid === DOMID_SELF) return curr;
  if (domid === DOMID_IO || domid === DOMID_XEN) return undefined; // not modelled (README)
  return ctx.hv.domain(domid);
}

/** rcu_lock_domain_by_any_id: DOMID_SELF or any existing domid. */
export function anyDomain(ctx: PvMmuContext, v: Vcpu, domid: unknown): Domain | undefined {
  if (typeof domid !== "number") return undefined;
  if (domid === DOMID_SELF) return v.domain;
  const d = ctx.hv.domain(domid);
  return d === undefined || d.state === "dead" ? undefined : d;
}

/** A batched hypercall's prologue, read by readBatch. */
export interface Batch {
  count: number;
  foreigndom: number;
  /** Requests already done: the guest's `pdone` when it resumes a preempted batch, else 0. */
  done: number;
}

/**
 * The prologue of do_mmu_update and do_mmuext_op: `count` and `foreigndom` are C unsigned
 * ints, and a count with MMU_UPDATE_PREEMPTED set resumes a preempted batch at `pdone`.
 * False when a word is not a C unsigned int (the caller answers -EFAULT).
 */
export function readBatch(
  a: { count: number; foreigndom: number; pdone?: number },
  out: Batch,
): boolean {
  if (!isU32(a.count) || !isU32(a.foreigndom)) return false;
  let count = a.count >>> 0;
  out.done = 0;
  if ((count & MMU_UPDATE_PREEMPTED) !== 0) {
    count = (count & ~MMU_UPDATE_PREEMPTED) >>> 0;
    if (typeof a.pdone === "number" && a.pdone >>> 0 === a.pdone) out.done = a.pdone;
  }
  out.count = count;
  out.foreigndom = a.foreigndom >>> 0;
  return true;
}
