/*
 * The bare-metal MMU: the hardware walks the kernel's own page tables, nothing validates them.
 *
 * Invariants: a vCPU's translations come from the tables at vcpu.cr3Mfn (machine frames: on
 * bare metal a guest-physical frame is a machine frame, pfn == mfn), through that vCPU's
 * TLB, which only ever caches what a completed walk allowed; every translation is one TLB
 * lookup and, on a miss (or a hit that does not grant the access), one walk; every walk,
 * memory reference, hit, miss and fault is counted. Nothing here checks what the tables
 * point at: a kernel that maps another domain's frame reaches it, as on real hardware, which
 * is why this backend is only for a machine with one kernel on it (the native baseline).
 */
import {
  type Hypervisor,
  type MmuBackend,
  type MmuFault,
  PFEC_user_mode,
  PFEC_write_access,
  type Vcpu,
} from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import {
  createPagingMode,
  PERM_DIRTY,
  PERM_RW,
  PERM_USER,
  type PagingMode,
  Tlb,
  type TlbConfig,
  WalkResult,
  walk,
} from "@hyperlab/paging";

export interface NativeMmuOptions {
  /** TLB shape per vCPU (paging's Tlb config); the default is paging's Skylake-like TLB. */
  tlb?: TlbConfig;
}

/** Plain counters, read by the plugin's stat gauges. */
export interface NativeMmuCounts {
  translations: number;
  tlbHits: number;
  tlbMisses: number;
  walks: number;
  walkReads: number;
  walkWrites: number;
  faults: number;
  flushes: number;
  invlpgs: number;
}

export class NativeMmu implements MmuBackend {
  readonly kind = "native";
  readonly fault: MmuFault = { errorCode: 0, va: 0 };
  readonly counts: NativeMmuCounts = {
    translations: 0,
    tlbHits: 0,
    tlbMisses: 0,
    walks: 0,
    walkReads: 0,
    walkWrites: 0,
    faults: 0,
    flushes: 0,
    invlpgs: 0,
  };
  private readonly ram: Ram;
  private readonly mode: PagingMode;
  private readonly out = new WalkResult();
  private readonly tlbs: (Tlb | undefined)[] = [];
  private readonly tlbConfig: TlbConfig;

  constructor(hv: Hypervisor, options: NativeMmuOptions = {}) {
    this.ram = hv.machine.ram;
    this.mode = createPagingMode({});
    const prng = hv.machine.prng.fork("native-mmu");
    this.tlbConfig = { random: () => prng.nextU32(), ...(options.tlb ?? {}) };
  }

  /** The vCPU's TLB (created on first use). */
  tlbOf(v: Vcpu): Tlb {
    let t = this.tlbs[v.uid];
    if (t === undefined) {
      t = new Tlb(this.tlbConfig);
      this.tlbs[v.uid] = t;
    }
    return t;
  }

  translate(v: Vcpu, va: number, access: number): number {
    const c = this.counts;
    c.translations++;
    const tlb = this.tlbs[v.uid] ?? this.tlbOf(v);
    if (tlb.lookup(va, 0)) {
      const p = tlb.hitPerms;
      // A write needs RW (user mode, or CR0.WP) and a dirty leaf, else the walk sets D.
      if (
        ((access & PFEC_user_mode) === 0 || (p & PERM_USER) !== 0) &&
        ((access & PFEC_write_access) === 0 ||
          (p & (PERM_RW | PERM_DIRTY)) === (PERM_RW | PERM_DIRTY))
      ) {
        c.tlbHits++;
        return tlb.hitMfn * 4096 + (va % 4096);
      }
    }
    c.tlbMisses++;
    return this.walkAndFill(v, tlb, va, access);
  }

  private walkAndFill(v: Vcpu, tlb: Tlb, va: number, access: number): number {
    const c = this.counts;
    const out = this.out;
    if (v.cr3Mfn < 0) {
      this.fault.va = va;
      this.fault.errorCode = access & 0x16;
      c.faults++;
      return -1;
    }
    c.walks++;
    const r0 = out.totalReads;
    const w0 = out.totalWrites;
    const ok = walk(this.ram, v.cr3Mfn, va, access, this.mode, out, tlb.pwc);
    c.walkReads += out.totalReads - r0;
    c.walkWrites += out.totalWrites - w0;
    if (!ok) {
      this.fault.va = va;
      this.fault.errorCode = out.errorCode;
      c.faults++;
      return -1;
    }
    tlb.insertWalk(out, 0);
    return out.maddr;
  }

  flushLocal(v: Vcpu): void {
    this.counts.flushes++;
    this.tlbOf(v).flushNonGlobal();
  }

  flushOne(v: Vcpu, va: number): void {
    this.counts.invlpgs++;
    this.tlbOf(v).invlpg(va, 0);
  }
}
