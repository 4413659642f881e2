/*
 * The `mmu` slot: how a vCPU's virtual addresses reach machine memory. Every MMU backend
 * (native, Xen PV direct paging, nested paging, shadow paging) fills it, so one guest
 * workload runs unchanged over each.
 *
 * Contract (what every provider keeps): `translate` answers exactly what the hardware would
 * for the vCPU's current page tables and the access kind (present, write, user, no-execute
 * checks all applied, on a TLB hit as on a walk); it never allocates, never throws on any
 * guest-chosen address, and on a fault returns -1 with the x86 error code and CR2 in `fault`;
 * a TLB entry never grants more than the walk that filled it; `flushLocal` and `flushOne`
 * drop what they name and nothing the guest can still reach stale after them. `guestStore`
 * and `write64`, where offered, answer with an errno or false, never a throw.
 */
import type { Vcpu } from "../domain";

// x86 page-fault error code bits: one definition, in @hyperlab/paging (the hardware model).
export {
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_reserved_bit,
  PFEC_user_mode,
  PFEC_write_access,
} from "@hyperlab/paging";

/** The last fault a translation reported. */
export interface MmuFault {
  /** x86 page-fault error code (PFEC_* bits). */
  errorCode: number;
  /** The faulting virtual address (CR2). */
  va: number;
}

export interface MmuBackend {
  /** "native", "pv", "nested", "shadow". */
  readonly kind: string;
  /**
   * Translates `va` for `vcpu` as the hardware would: TLB, then a walk. `access` holds
   * PFEC_write_access, PFEC_user_mode and PFEC_insn_fetch. Returns the machine address, or
   * -1 after a fault, whose details are in `fault`. Never allocates.
   */
  translate(vcpu: Vcpu, va: number, access: number): number;
  /** Details of the last fault returned by translate. */
  readonly fault: MmuFault;
  /** Flushes the vCPU's non-global TLB entries (a CR3 reload). */
  flushLocal(vcpu: Vcpu): void;
  /** Flushes one virtual address from the vCPU's TLB (INVLPG). */
  flushOne(vcpu: Vcpu, va: number): void;
  /**
   * Backends that must see the guest kernel's page-table stores (nested and shadow paging)
   * offer this entry point: a 64-bit store at a guest-physical address, as the CPU would make
   * it. Returns 0, or a negative errno when the host refuses it. A kernel writes its tables
   * through it when it exists and straight to RAM when it does not (native, Xen PV, where
   * page tables are read-only to the guest anyway).
   */
  guestStore?(vcpu: Vcpu, gpa: number, lo: number, hi: number): number;
  /**
   * A 64-bit store at a virtual address with the hardware's write fault fix-up: Xen PV's
   * ptwr emulation, shadow paging's emulated page-table write. False if it did not take effect.
   */
  write64?(vcpu: Vcpu, va: number, lo: number, hi: number): boolean;
}
