/*
 * The hardware view of a PV vCPU's address space: a 4-level walk over the guest's tables in
 * machine RAM and a small per-vCPU TLB in front of it.
 *
 * Invariants: a TLB entry caches exactly what a completed walk allowed (writable only if
 * every level had RW, user only if every level had USER, no-execute if any level had NX);
 * it is dropped by a flush of its vCPU, of its address, or of everything; entries are never
 * made more permissive than the tables were when they were filled. A write through an entry
 * whose leaf was not yet dirty walks again so the walk sets D, as hardware does. Walks set A
 * on every level they use and D on the leaf of a write.
 */

import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_NX_HI,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_USER,
} from "@hyperlab/abi";
import {
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_reserved_bit,
  PFEC_user_mode,
  PFEC_write_access,
} from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import { PTE_MFN_HI_MASK } from "./pte";

const TWO_20 = 0x10_0000;
/** TLB entries per vCPU (direct-mapped on the virtual page number). */
export const TLB_SIZE = 64;
const P_VALID = 1;
const P_RW = 2;
const P_USER = 4;
const P_NX = 8;
const P_DIRTY = 16;

/** Per-vCPU TLB, direct-mapped. */
export class VcpuTlb {
  readonly vpn = new Float64Array(TLB_SIZE);
  readonly frame = new Float64Array(TLB_SIZE);
  readonly perm = new Uint8Array(TLB_SIZE);
  /** The L4 the entries were filled from: loading another one (a CR3 write) flushes. */
  cr3 = -1;
  hits = 0;
  misses = 0;
  flushes = 0;

  flush(): void {
    this.perm.fill(0);
    this.flushes++;
  }

  flushVa(va: number): void {
    const vpn = Math.floor(va / 4096);
    const s = vpn % TLB_SIZE;
    if (this.vpn[s] === vpn) this.perm[s] = 0;
  }
}

/** Outcome of a walk or a lookup: a machine address, or -1 with `errorCode` set. */
export class Walker {
  private readonly ram: Ram;
  /** x86 page-fault error code of the last failed translation (PFEC_* bits). */
  errorCode = 0;
  /** Memory references made by walks (entries read). */
  walkReads = 0;

  constructor(ram: Ram) {
    this.ram = ram;
  }

  /**
   * Translates `va` (48-bit) under the L4 at `cr3`, through `tlb`. `access` holds PFEC_write_access,
   * PFEC_user_mode and PFEC_insn_fetch. Returns the machine address or -1.
   */
  translate(tlb: VcpuTlb, cr3: number, va: number, access: number): number {
    if (tlb.cr3 !== cr3) {
      tlb.flush();
      tlb.cr3 = cr3;
    }
    const vpn = Math.floor(va / 4096);
    const s = vpn % TLB_SIZE;
    const p = tlb.perm[s];
    if (p !== 0 && tlb.vpn[s] === vpn) {
      const write = (access & PFEC_write_access) !== 0;
      if (
        (!write || (p & (P_RW | P_DIRTY)) === (P_RW | P_DIRTY)) &&
        ((access & PFEC_user_mode) === 0 || (p & P_USER) !== 0) &&
        ((access & PFEC_insn_fetch) === 0 || (p & P_NX) === 0)
      ) {
        tlb.hits++;
        return tlb.frame[s] * 4096 + (va % 4096);
      }
    }
    tlb.misses++;
    if (cr3 < 0) {
      this.errorCode = access;
      return -1;
    }
    const ram = this.ram;
    let table = cr3;
    let rw = _PAGE_RW;
    let user = _PAGE_USER;
    let nx = 0;
    let frame = 0;
    // Entry addresses of the levels used, to set A (and D) once the walk succeeds.
    let e4 = 0;
    let e3 = 0;
    let e2 = 0;
    let e1 = 0;
    let pageShift = 12;
    for (let level = 4; level >= 1; level--) {
      const shift = 12 + 9 * (level - 1);
      const idx = Math.floor(va / 2 ** shift) % 512;
      const w = ram.frameWords(table, false);
      const b = ram.frameWordBase(table) + idx * 2;
      const lo = w[b];
      const hi = w[b + 1];
      this.walkReads++;
      if ((lo & _PAGE_PRESENT) === 0) {
        this.errorCode = access & (PFEC_write_access | PFEC_user_mode | PFEC_insn_fetch);
        return -1;
      }
      const ea = table * 4096 + idx * 8;
      if (level === 4) e4 = ea;
      else if (level === 3) e3 = ea;
      else if (level === 2) e2 = ea;
      else e1 = ea;
      rw &= lo;
      user &= lo;
      nx |= hi & _PAGE_NX_HI;
      const next = (hi & PTE_MFN_HI_MASK) * TWO_20 + (lo >>> 12);
      if (level > 1 && (lo & _PAGE_PSE) !== 0) {
        if (level === 4) {
          this.errorCode =
            PFEC_page_present |
            PFEC_reserved_bit |
            (access & (PFEC_write_access | PFEC_user_mode | PFEC_insn_fetch));
          return -1;
        }
        // A superpage: the frame of this 4 KiB page within it (PAT bit 12 is not an address bit).
        pageShift = shift;
        const baseFrame = next - (next % 2 ** (shift - 12));
        frame = baseFrame + (Math.floor(va / 4096) % 2 ** (shift - 12));
        break;
      }
      if (level === 1) frame = next;
      else table = next;
      if (next >= ram.nrFrames) {
        this.errorCode =
          PFEC_page_present |
          PFEC_reserved_bit |
          (access & (PFEC_write_access | PFEC_user_mode | PFEC_insn_fetch));
        return -1;
      }
    }
    const write = (access & PFEC_write_access) !== 0;
    if (
      (write && rw === 0) ||
      ((access & PFEC_user_mode) !== 0 && user === 0) ||
      ((access & PFEC_insn_fetch) !== 0 && nx !== 0)
    ) {
      this.errorCode =
        PFEC_page_present | (access & (PFEC_write_access | PFEC_user_mode | PFEC_insn_fetch));
      return -1;
    }
    if (frame >= ram.nrFrames) {
      this.errorCode =
        PFEC_page_present |
        PFEC_reserved_bit |
        (access & (PFEC_write_access | PFEC_user_mode | PFEC_insn_fetch));
      return -1;
    }
    // Accessed on every level used, Dirty on the leaf of a write.
    this.setBits(e4, _PAGE_ACCESSED);
    this.setBits(e3, _PAGE_ACCESSED);
    if (pageShift <= 21) this.setBits(e2, _PAGE_ACCESSED);
    const leaf = pageShift === 12 ? e1 : pageShift === 21 ? e2 : e3;
    if (pageShift === 12) this.setBits(e1, _PAGE_ACCESSED);
    if (write) this.setBits(leaf, _PAGE_DIRTY);
    const leafLo = ram.read32(leaf);
    tlb.vpn[s] = vpn;
    tlb.frame[s] = frame;
    tlb.perm[s] =
      P_VALID |
      (rw !== 0 ? P_RW : 0) |
      (user !== 0 ? P_USER : 0) |
      (nx !== 0 ? P_NX : 0) |
      ((leafLo & _PAGE_DIRTY) !== 0 ? P_DIRTY : 0);
    return frame * 4096 + (va % 4096);
  }

  private setBits(maddr: number, bits: number): void {
    const v = this.ram.read32(maddr);
    if ((v & bits) !== bits) this.ram.write32(maddr, (v | bits) >>> 0);
  }
}
