/*
 * What the Xen PV MMU service (Xen's arch/x86/mm.c with pv/ro-page-fault.c, as
 * @hyperlab/pv-mmu models it) offers its consumers beyond the `mmu` slot: guest memory access
 * through the vCPU's page tables with the ptwr fix-up, the L1 slot lookup that grant mappings
 * and tools use, and per-vCPU TLB views for studies. The service is keyed `pvMmu` today
 * (pv-mmu's plugin declares the key); consumers type what they use with this interface.
 *
 * Contract (what every provider keeps): `read`/`write` translate exactly as `translate` does
 * and fail (-1 / false, details in `fault`) where the hardware would fault, except that a
 * kernel-mode write to a present read-only page table goes through ptwr emulation (validated
 * as mmu_update validates it); nothing reaches a frame the vCPU's page tables do not map;
 * `guestL1Slot` only reads page tables and answers -1 for anything it cannot follow; no
 * method throws on a guest-chosen address or value.
 */
import type { Tlb } from "@hyperlab/paging";
import type { Domain, Vcpu } from "../domain";
import type { MmuBackend } from "./mmu";

export interface PvMmuService extends MmuBackend {
  /** Reads `size` (1, 2 or 4) bytes at `va`; the value, or -1 after a fault (details in `fault`). */
  read(v: Vcpu, va: number, size: 1 | 2 | 4): number;
  /** Reads the u64 at `va` into `out`; false after a fault. */
  read64(v: Vcpu, va: number, out: { lo: number; hi: number }): boolean;
  /** Writes `size` bytes at `va`, with ptwr emulation for page tables; false after a fault. */
  write(v: Vcpu, va: number, size: 1 | 2 | 4, value: number): boolean;
  /** Writes the u64 (lo, hi) at `va` (naturally aligned writes reach ptwr whole). */
  write64(v: Vcpu, va: number, lo: number, hi: number): boolean;
  /**
   * The L1 slot that maps `va` under the L4 `l4` (Xen's linear L1 lookup): l1mfn * 512 +
   * index, or -1 if an upper level is not present or is a superpage.
   */
  guestL1Slot(l4: number, va: number): number;
  /** The vCPU's TLB (tags 0 and 1 are the kernel and user tables). */
  tlbOf(v: Vcpu): Tlb;
  /** How many times the vCPU's TLB was flushed (locally, by a CR3 load, or remotely). */
  tlbFlushCount(v: Vcpu): number;
  /** Flushes every vCPU of the domain (a remote TLB shootdown). */
  flushAll(d: Domain): void;
  /** Walks made, and the entries they read and wrote (A/D), for studies. */
  readonly walkCounts: { walks: number; reads: number; writes: number };
  /** XENMEM_maximum_ram_page: frames of machine memory. */
  maximumRamPage(): number;
}
