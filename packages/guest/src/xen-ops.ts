/*
 * Xen PV pv_ops, after Linux's arch/x86/xen (mmu_pv.c, multicalls.c, enlighten_pv.c, p2m.c),
 * written against Xen's ABI: the kernel reaches Xen only through its GuestPort's hypercall()
 * with Xen's arguments, and through shared memory (start_info, the P2M list, shared_info).
 *
 * Invariants:
 * - Every entry the kernel writes names a machine frame: pfn -> mfn through the P2M first.
 * - A page-table page of a pinned tree is read-only to the kernel (its direct-map alias is
 *   mapped read-only before it joins the tree, and made writable again only after it left),
 *   so it changes only through mmu_update, or through a trapping store that Xen emulates.
 * - The multicall buffer holds at most MC_BATCH entries and MC_ARGS bytes of arguments, as
 *   Linux's; in lazy MMU mode it is flushed on leave, on overflow and on an explicit flush;
 *   outside lazy mode each operation is issued at once. A one-entry batch is issued as that
 *   hypercall itself (Linux's singleton bypass).
 * - With batching off there is no multicall at all: every operation is its own hypercall and
 *   PTE stores trap to Xen's writable-page-table emulation (ptwr).
 * - A failed hypercall never throws: its errno is recorded on the kernel and returned by the
 *   system call that made it.
 */
import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_multicall,
  __HYPERVISOR_update_va_mapping,
  DOMID_SELF,
  ENOMEM,
  MMU_NORMAL_PT_UPDATE,
  MMU_PT_UPDATE_PRESERVE_AD,
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_INVLPG_MULTI,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_NEW_USER_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_TLB_FLUSH_ALL,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_TLB_FLUSH_MULTI,
  MMUEXT_UNPIN_TABLE,
  mmu_update,
  mmuext_op,
  SIF_INITDOMAIN,
  shared_info_x86_64,
  UVMF_INVLPG,
  UVMF_LOCAL,
  UVMF_NONE,
  UVMF_TLB_FLUSH,
  vcpu_info_x86_64,
} from "@hyperlab/abi";
import { guestError } from "./errors";
import type { GuestKernel } from "./kernel";
import { PAGE_SIZE, PT_PMD, PT_PTE, PT_PUD, USER_PGD_SLOTS } from "./layout";
import type { Mm } from "./mm";
import { defineGuestPlugin, type GuestPlugin } from "./plugins";
import { E_IOMAP, E_PRESENT, entryHi, entryLo, PAGE_KERNEL, PAGE_KERNEL_RO } from "./pte";
import type { BuiltinPvOps, PvMmuOps } from "./pv-ops";
import { XenCpuOps, xenTimeOps } from "./xen-cpu";

/** Linux's MC_BATCH: entries per multicall. */
export const MC_BATCH = 32;
/** Linux's MC_ARGS: bytes of argument space per batch. */
export const MC_ARGS = MC_BATCH * 16;
/** Linux's ISA_END_ADDRESS: the top of the ISA hole (1 MiB). */
const ISA_END_ADDRESS = 0x10_0000;

export interface XenPvOpsOptions {
  /** Lazy MMU mode batches into multicalls and PTE writes use mmu_update (default true). */
  batching?: boolean;
}

/** What the Xen ops count (the "xen-pv-ops" stat group). */
export interface XenOpsCounts {
  /** Traps into Xen for hypercalls: a multicall counts once. */
  hypercalls: number;
  multicalls: number;
  /** Entries issued inside multicalls. */
  multicallEntries: number;
  /** mmu_update requests (inside or outside multicalls). */
  mmuUpdateRequests: number;
  mmuextOps: number;
  updateVaMappings: number;
  /** PTE stores left to Xen's trap-and-emulate path. */
  ptwrTraps: number;
  pins: number;
  unpins: number;
}

interface McEntry {
  op: number;
  args: Record<string, unknown>;
  result?: number;
  /** mmu_update requests as u32 quadruples while the entry is open. */
  reqs?: number[];
}

/** Linux's multicall buffer (arch/x86/xen/multicalls.c). */
export class Multicalls {
  private entries: McEntry[] = [];
  /** The CPU whose buffer collects (Linux's per-cpu mc_buffer): entries leave from that vCPU. */
  private cpu = 0;

  /**
   * Makes `vi` the collecting CPU; what another CPU had collected leaves first, from that
   * CPU (each CPU's multicall buffer is its own).
   */
  onCpu(vi: number): void {
    if (vi === this.cpu) return;
    this.flush();
    this.cpu = vi;
  }
  private argBytes = 0;
  lazy = false;
  /** Lazy CPU mode (a context switch): CPU and MMU operations collect until it ends. */
  lazyCpu = false;
  private readonly k: GuestKernel;
  private readonly c: XenOpsCounts;
  readonly batching: boolean;

  constructor(k: GuestKernel, c: XenOpsCounts, batching: boolean) {
    this.k = k;
    this.c = c;
    this.batching = batching;
  }

  private entry(op: number, args: Record<string, unknown>, bytes: number): McEntry {
    // Without batching every operation is its own hypercall.
    if (!this.batching) this.flush();
    if (this.entries.length === MC_BATCH || this.argBytes + bytes > MC_ARGS) this.flush();
    const e: McEntry = { op, args };
    this.entries.push(e);
    this.argBytes += bytes;
    return e;
  }

  /** One mmu_update request, merged into the open mmu_update entry when it has room (xen_extend_mmu_update). */
  mmuUpdate(maddr: number, cmd: number, val: number): void {
    this.c.mmuUpdateRequests++;
    const last = this.entries[this.entries.length - 1];
    let e: McEntry;
    if (
      last !== undefined &&
      last.op === __HYPERVISOR_mmu_update &&
      last.reqs !== undefined &&
      this.argBytes + mmu_update.sizeof <= MC_ARGS
    ) {
      e = last;
      this.argBytes += mmu_update.sizeof;
    } else {
      e = this.entry(__HYPERVISOR_mmu_update, {}, mmu_update.sizeof);
      e.reqs = [];
    }
    e.reqs!.push((entryLo(maddr) + cmd) >>> 0, entryHi(maddr), entryLo(val), entryHi(val));
  }

  mmuext(cmd: number, arg1?: { mfn?: number; linear_addr?: number }, vcpumask?: number[]): void {
    this.c.mmuextOps++;
    const op: Record<string, unknown> = { cmd };
    if (arg1 !== undefined) op.arg1 = arg1;
    if (vcpumask !== undefined) op.arg2 = { vcpumask };
    this.entry(
      __HYPERVISOR_mmuext_op,
      { uops: [op], count: 1, foreigndom: DOMID_SELF },
      mmuext_op.sizeof,
    );
  }

  /** A CPU hypercall whose arguments travel in registers (stack_switch, fpu_taskswitch). */
  cpuOp(op: number, args: Record<string, unknown>): void {
    this.entry(op, args, 0);
  }

  /** update_va_mapping: its arguments travel in registers, no argument space. */
  updateVaMapping(va: number, val: number, flags: number): void {
    this.c.updateVaMappings++;
    this.entry(__HYPERVISOR_update_va_mapping, { va, val, flags }, 0);
  }

  /** xen_mc_issue: flush unless lazy MMU or lazy CPU mode is collecting (and batching is on). */
  issue(): void {
    if (!this.batching || (!this.lazy && !this.lazyCpu)) this.flush();
  }

  /** xen_mc_flush. */
  flush(): void {
    const entries = this.entries;
    const n = entries.length;
    if (n === 0) return;
    this.entries = [];
    this.argBytes = 0;
    for (const e of entries) {
      if (e.reqs !== undefined) {
        const count = e.reqs.length / 4;
        e.args = { ureqs: Uint32Array.from(e.reqs), count, foreigndom: DOMID_SELF };
        e.reqs = undefined;
      }
    }
    const k = this.k;
    this.c.hypercalls++;
    if (n === 1) {
      const e = entries[0];
      const rc = k.port.hypercall(this.cpu, e.op, e.args);
      if (rc < 0) k.kernelError(e.op, rc);
      return;
    }
    this.c.multicalls++;
    this.c.multicallEntries += n;
    const rc = k.port.hypercall(this.cpu, __HYPERVISOR_multicall, { entries });
    if (rc < 0) {
      k.kernelError(__HYPERVISOR_multicall, rc);
      return;
    }
    for (const e of entries) {
      if (typeof e.result === "number" && e.result < 0) k.kernelError(e.op, e.result);
    }
  }
}

function vcpuMask(vcpus: readonly number[]): number[] {
  const mask: number[] = [];
  for (const vi of vcpus) {
    const w = vi >>> 5;
    while (mask.length <= w) mask.push(0);
    mask[w] = (mask[w] | (1 << (vi & 31))) >>> 0;
  }
  return mask;
}

/** Xen PV pv_ops.mmu. */
export class XenMmuOps implements PvMmuOps {
  readonly counts: XenOpsCounts = {
    hypercalls: 0,
    multicalls: 0,
    multicallEntries: 0,
    mmuUpdateRequests: 0,
    mmuextOps: 0,
    updateVaMappings: 0,
    ptwrTraps: 0,
    pins: 0,
    unpins: 0,
  };
  readonly mc: Multicalls;
  private readonly k: GuestKernel;
  private readonly p2m: Float64Array;
  private readonly m2p: Int32Array;
  /** start_info.flags has SIF_INITDOMAIN: this kernel is dom0. */
  readonly initialDomain: boolean;

  constructor(k: GuestKernel, batching: boolean) {
    if (k.xen === null) {
      throw guestError(
        "GUEST_NOT_XEN_PV",
        "xenPvOps() needs a kernel booted as a Xen PV guest: use bootXenPvKernel, not bootNativeKernel.",
      );
    }
    this.k = k;
    this.p2m = k.xen.p2m;
    this.m2p = k.xen.m2p;
    this.initialDomain = (k.xen.flags & SIF_INITDOMAIN) !== 0;
    this.mc = new Multicalls(k, this.counts, batching);
  }

  get batching(): boolean {
    return this.mc.batching;
  }

  pfnToFrame(pfn: number): number {
    return this.p2m[pfn];
  }

  frameToPfn(frame: number): number {
    // mfn_to_pfn, checked against the P2M as Linux does (a foreign frame has no pfn here).
    const pfn = frame >= 0 && frame < this.m2p.length ? this.m2p[frame] : -1;
    return pfn >= 0 && this.p2m[pfn] === frame ? pfn : -1;
  }

  /**
   * xen_make_pte: a RAM pfn goes through the P2M; with _PAGE_IOMAP the entry is an I/O
   * mapping (makeIoPte), as Linux 2.6.30's xen_make_pte decides by the bit.
   */
  makePte(pfn: number, flags: number): number {
    if ((flags & E_IOMAP) !== 0) return this.makeIoPte(pfn, flags);
    return this.p2m[pfn] * PAGE_SIZE + flags;
  }

  /**
   * The I/O half of xen_make_pte (iomap_pte): the frame stays as given and keeps _PAGE_IOMAP,
   * so Xen is asked for the device frame itself. An unprivileged domain may not map ISA space
   * this way (below 1 MiB its frames are RAM pfns, translated, the bit dropped), as Linux's
   * test of xen_initial_domain() || addr >= ISA_END_ADDRESS.
   */
  makeIoPte(frame: number, flags: number): number {
    if (!this.initialDomain && frame * PAGE_SIZE < ISA_END_ADDRESS) {
      return this.p2m[frame] * PAGE_SIZE + (flags & ~E_IOMAP);
    }
    return frame * PAGE_SIZE + (flags | E_IOMAP);
  }

  private maddr(table: number, index: number): number {
    return this.p2m[table] * PAGE_SIZE + index * 8;
  }

  /** A write to a pinned table through mmu_update (batched in lazy mode). */
  private update(table: number, index: number, entry: number, cmd = MMU_NORMAL_PT_UPDATE): void {
    this.mc.mmuUpdate(this.maddr(table, index), cmd, entry);
    this.mc.issue();
  }

  setPte(_mm: Mm, table: number, index: number, entry: number): void {
    const k = this.k;
    if (k.pinned[table] === 0) {
      k.tableStore(table, index, entry);
    } else if (!this.mc.batching) {
      this.counts.ptwrTraps++;
      k.cpuStoreEntry(table, index, entry);
    } else this.update(table, index, entry);
  }

  setPmd(_mm: Mm, table: number, index: number, entry: number): void {
    if (this.k.pinned[table] === 0) this.k.tableStore(table, index, entry);
    else this.update(table, index, entry);
  }

  setPud(mm: Mm, table: number, index: number, entry: number): void {
    this.setPmd(mm, table, index, entry);
  }

  setP4d(mm: Mm, index: number, entry: number): void {
    // xen_set_p4d: a user slot goes into the user pgd too.
    const user = index < USER_PGD_SLOTS && mm.userPgd >= 0;
    if (this.k.pinned[mm.pgd] === 0) {
      this.k.tableStore(mm.pgd, index, entry);
      if (user) this.k.tableStore(mm.userPgd, index, entry);
      return;
    }
    this.mc.mmuUpdate(this.maddr(mm.pgd, index), MMU_NORMAL_PT_UPDATE, entry);
    if (user) this.mc.mmuUpdate(this.maddr(mm.userPgd, index), MMU_NORMAL_PT_UPDATE, entry);
    this.mc.issue();
  }

  /**
   * Linux's old xen_set_pte_at / ptep_establish: a PTE of the loaded mm is one
   * update_va_mapping, with UVMF_INVLPG when the old translation must go. Otherwise (another
   * mm, lazy mode, batching off) setPte, then an INVLPG if asked.
   */
  setPteAt(mm: Mm, va: number, table: number, index: number, entry: number, flush: boolean): void {
    const k = this.k;
    if (this.mc.batching && !this.mc.lazy && k.pinned[table] !== 0 && k.loadedMm[0] === mm) {
      this.mc.updateVaMapping(va, entry, flush ? UVMF_INVLPG | UVMF_LOCAL : UVMF_NONE);
      this.mc.issue();
      return;
    }
    this.setPte(mm, table, index, entry);
    if (flush) this.flushTlbOneUser(0, va);
  }

  pteClear(mm: Mm, table: number, index: number): void {
    this.setPte(mm, table, index, 0);
  }

  ptepModifyProtStart(_mm: Mm, table: number, index: number): number {
    // Just the entry as it is: the commit keeps whatever A/D bits are set by then.
    return this.k.readEntry(table, index);
  }

  ptepModifyProtCommit(_mm: Mm, table: number, index: number, _old: number, entry: number): void {
    if (this.k.pinned[table] === 0) this.k.tableStore(table, index, entry);
    else this.update(table, index, entry, MMU_PT_UPDATE_PRESERVE_AD);
  }

  readCr3(vi: number): number {
    return this.k.cr3Pfn[vi];
  }

  writeCr3(vi: number, mm: Mm): void {
    // xen_write_cr3: the kernel base pointer and the user one, in one batch, from that vCPU.
    this.mc.onCpu(vi);
    this.mc.mmuext(MMUEXT_NEW_BASEPTR, { mfn: this.p2m[mm.pgd] });
    this.mc.mmuext(MMUEXT_NEW_USER_BASEPTR, { mfn: mm.userPgd >= 0 ? this.p2m[mm.userPgd] : 0 });
    this.mc.issue();
    this.mc.onCpu(0);
  }

  flushTlbUser(vi: number): void {
    this.mc.onCpu(vi);
    this.mc.mmuext(MMUEXT_TLB_FLUSH_LOCAL);
    this.mc.issue();
    this.mc.onCpu(0);
  }

  flushTlbKernel(vi: number): void {
    this.mc.onCpu(vi);
    this.mc.mmuext(MMUEXT_TLB_FLUSH_ALL);
    this.mc.issue();
    this.mc.onCpu(0);
  }

  flushTlbOneUser(vi: number, va: number): void {
    this.mc.onCpu(vi);
    this.mc.mmuext(MMUEXT_INVLPG_LOCAL, { linear_addr: va });
    this.mc.issue();
    this.mc.onCpu(0);
  }

  flushTlbMulti(vcpus: readonly number[], _mm: Mm, start: number, end: number): void {
    // xen_flush_tlb_multi: one INVLPG for a single page, else a full flush of the set.
    const mask = vcpuMask(vcpus);
    if (end - start <= PAGE_SIZE) this.mc.mmuext(MMUEXT_INVLPG_MULTI, { linear_addr: start }, mask);
    else this.mc.mmuext(MMUEXT_TLB_FLUSH_MULTI, undefined, mask);
    this.mc.issue();
  }

  /** xen_alloc_ptpage: a new table of a pinned mm becomes read-only (and an L1 is pinned). */
  private allocPtpage(mm: Mm, pfn: number, level: number): void {
    if (!mm.pinned) return;
    this.k.pinned[pfn] = 1;
    this.mc.updateVaMapping(
      this.k.physVa(pfn),
      this.p2m[pfn] * PAGE_SIZE + PAGE_KERNEL_RO,
      UVMF_NONE,
    );
    if (level === PT_PTE) {
      this.counts.pins++;
      this.mc.mmuext(MMUEXT_PIN_L1_TABLE, { mfn: this.p2m[pfn] });
    }
    this.mc.issue();
  }

  /** xen_release_ptpage: a table leaving a pinned mm is unpinned and made writable again. */
  private releasePtpage(pfn: number, level: number): void {
    if (this.k.pinned[pfn] === 0) return;
    if (level === PT_PTE) {
      this.counts.unpins++;
      this.mc.mmuext(MMUEXT_UNPIN_TABLE, { mfn: this.p2m[pfn] });
    }
    this.mc.updateVaMapping(this.k.physVa(pfn), this.p2m[pfn] * PAGE_SIZE + PAGE_KERNEL, UVMF_NONE);
    this.k.pinned[pfn] = 0;
    this.mc.issue();
  }

  allocPte(mm: Mm, pfn: number): void {
    this.allocPtpage(mm, pfn, PT_PTE);
  }
  allocPmd(mm: Mm, pfn: number): void {
    this.allocPtpage(mm, pfn, PT_PMD);
  }
  allocPud(mm: Mm, pfn: number): void {
    this.allocPtpage(mm, pfn, PT_PUD);
  }
  releasePte(pfn: number): void {
    this.releasePtpage(pfn, PT_PTE);
  }
  releasePmd(pfn: number): void {
    this.releasePtpage(pfn, PT_PMD);
  }
  releasePud(pfn: number): void {
    this.releasePtpage(pfn, PT_PUD);
  }

  /** xen_pgd_alloc: a 64-bit PV process has a second top-level table for user mode. */
  pgdAlloc(mm: Mm): number {
    const pfn = this.k.allocPage();
    if (pfn < 0) return -ENOMEM;
    this.k.clearPage(pfn);
    this.k.ptLevel[pfn] = 4;
    mm.userPgd = pfn;
    return 0;
  }

  pgdFree(mm: Mm): void {
    const pfn = mm.userPgd;
    if (pfn < 0) return;
    mm.userPgd = -1;
    this.k.ptLevel[pfn] = 0;
    this.k.pinned[pfn] = 0;
    this.k.freePage(pfn);
  }

  /** The user-half table pages of `mm`, deepest last per branch (pud, its pmds, their ptes). */
  private walkTables(mm: Mm, fn: (pfn: number, level: number) => void): void {
    const k = this.k;
    for (let i4 = 0; i4 < USER_PGD_SLOTS; i4++) {
      const e4 = k.readEntry(mm.pgd, i4);
      if ((e4 & E_PRESENT) === 0) continue;
      const pud = k.entryPfn(e4);
      fn(pud, PT_PUD);
      for (let i3 = 0; i3 < 512; i3++) {
        const e3 = k.readEntry(pud, i3);
        if ((e3 & E_PRESENT) === 0) continue;
        const pmd = k.entryPfn(e3);
        fn(pmd, PT_PMD);
        for (let i2 = 0; i2 < 512; i2++) {
          const e2 = k.readEntry(pmd, i2);
          if ((e2 & E_PRESENT) === 0) continue;
          fn(k.entryPfn(e2), PT_PTE);
        }
      }
    }
  }

  /** xen_pgd_pin: every table read-only, each L1 pinned, then both pgds pinned as L4s. */
  pgdPin(mm: Mm): void {
    const k = this.k;
    const mc = this.mc;
    this.walkTables(mm, (pfn, level) => {
      if (k.pinned[pfn] !== 0) return;
      k.pinned[pfn] = 1;
      mc.updateVaMapping(k.physVa(pfn), this.p2m[pfn] * PAGE_SIZE + PAGE_KERNEL_RO, UVMF_NONE);
      if (level === PT_PTE) {
        this.counts.pins++;
        mc.mmuext(MMUEXT_PIN_L1_TABLE, { mfn: this.p2m[pfn] });
      }
    });
    for (const pgd of [mm.pgd, mm.userPgd]) {
      if (pgd < 0) continue;
      k.pinned[pgd] = 1;
      mc.updateVaMapping(k.physVa(pgd), this.p2m[pgd] * PAGE_SIZE + PAGE_KERNEL_RO, UVMF_NONE);
      this.counts.pins++;
      mc.mmuext(MMUEXT_PIN_L4_TABLE, { mfn: this.p2m[pgd] });
    }
    mm.pinned = true;
    mc.flush();
  }

  /** xen_pgd_unpin: both pgds unpinned, then every table unpinned (L1s) and made writable. */
  pgdUnpin(mm: Mm): void {
    const k = this.k;
    const mc = this.mc;
    for (const pgd of [mm.pgd, mm.userPgd]) {
      if (pgd < 0) continue;
      this.counts.unpins++;
      mc.mmuext(MMUEXT_UNPIN_TABLE, { mfn: this.p2m[pgd] });
    }
    this.walkTables(mm, (pfn, level) => {
      if (k.pinned[pfn] === 0) return;
      if (level === PT_PTE) {
        this.counts.unpins++;
        mc.mmuext(MMUEXT_UNPIN_TABLE, { mfn: this.p2m[pfn] });
      }
      mc.updateVaMapping(k.physVa(pfn), this.p2m[pfn] * PAGE_SIZE + PAGE_KERNEL, UVMF_NONE);
      k.pinned[pfn] = 0;
    });
    for (const pgd of [mm.userPgd, mm.pgd]) {
      if (pgd < 0) continue;
      mc.updateVaMapping(
        k.physVa(pgd),
        this.p2m[pgd] * PAGE_SIZE + PAGE_KERNEL,
        pgd === mm.pgd ? UVMF_TLB_FLUSH : UVMF_NONE,
      );
      k.pinned[pgd] = 0;
    }
    mm.pinned = false;
    mc.flush();
  }

  dupMmap(_old: Mm, mm: Mm): void {
    this.pgdPin(mm);
  }

  activateMm(_prev: Mm, next: Mm): void {
    this.pgdPin(next);
  }

  exitMmap(mm: Mm): void {
    // xen_exit_mmap: the caller has already switched every vCPU off this mm (drop_mm_ref).
    if (mm.pinned) this.pgdUnpin(mm);
  }

  lazyMmuEnter(): void {
    this.mc.lazy = true;
  }

  lazyMmuLeave(): void {
    this.mc.flush();
    this.mc.lazy = false;
  }

  lazyMmuFlush(): void {
    if (this.mc.lazy) this.mc.flush();
  }
}

/** The Xen PV pv_ops for every group, from the kernel's boot information. */
export function xenPvOpsFor(
  k: GuestKernel,
  options: XenPvOpsOptions = {},
): Omit<BuiltinPvOps, "dma" | "apic"> & { mmu: XenMmuOps; cpu: XenCpuOps } {
  const mmu = new XenMmuOps(k, options.batching ?? true);
  const xen = k.xen!;
  const ram = k.ram;
  const vcpuInfo = (vi: number) =>
    xen.sharedInfoMaddr + shared_info_x86_64.fields.vcpu_info.offset + vi * vcpu_info_x86_64.sizeof;
  const maskOff = vcpu_info_x86_64.fields.evtchn_upcall_mask.offset;
  const cpu = new XenCpuOps(k, mmu.mc, mmu.counts);
  return {
    mmu,
    cpu,
    irq: {
      // Linux's xen_save_fl / xen_irq_disable: the event mask byte in this vCPU's vcpu_info.
      saveFl: (vi) => (ram.read8(vcpuInfo(vi) + maskOff) === 0 ? 0x200 : 0),
      restoreFl: (vi, flags) => ram.write8(vcpuInfo(vi) + maskOff, (flags & 0x200) !== 0 ? 0 : 1),
      irqDisable: (vi) => ram.write8(vcpuInfo(vi) + maskOff, 1),
      irqEnable: (vi) => ram.write8(vcpuInfo(vi) + maskOff, 0),
    },
    time: xenTimeOps(k, cpu),
  };
}

/**
 * The Xen PV pv_ops as a guest plugin: `bootXenPvKernel(hv, d, { plugins: [xenPvOps()] })`
 * (bootXenPvKernel adds it when no plugin provides pv_ops.mmu).
 */
export function xenPvOps(options: XenPvOpsOptions = {}): GuestPlugin {
  return defineGuestPlugin({
    name: "xen-pv-ops",
    description:
      "Linux's arch/x86/xen pv_ops: P2M, pinning, mmu_update, multicalls, update_va_mapping",
    provides: ["mmu", "cpu", "irq", "time"],
    setup(ctx) {
      const ops = xenPvOpsFor(ctx.kernel, options);
      const c = ops.mmu.counts;
      const s = ctx.stats;
      s.gauge(
        "hypercalls",
        "calls",
        "traps into Xen for hypercalls (a multicall counts once)",
        () => c.hypercalls,
      );
      s.gauge("multicalls", "calls", "multicall hypercalls", () => c.multicalls);
      s.gauge(
        "multicall_entries",
        "entries",
        "entries issued inside multicalls",
        () => c.multicallEntries,
      );
      s.gauge("mmu_update_requests", "requests", "mmu_update requests", () => c.mmuUpdateRequests);
      s.gauge("mmuext_ops", "ops", "mmuext_op operations", () => c.mmuextOps);
      s.gauge(
        "update_va_mappings",
        "calls",
        "update_va_mapping operations",
        () => c.updateVaMappings,
      );
      s.gauge(
        "ptwr_traps",
        "stores",
        "PTE stores left to Xen's trap-and-emulate path",
        () => c.ptwrTraps,
      );
      s.gauge("pins", "tables", "MMUEXT_PIN_* operations", () => c.pins);
      s.gauge("unpins", "tables", "MMUEXT_UNPIN_TABLE operations", () => c.unpins);
      ctx.provide("mmu", ops.mmu);
      ctx.provide("cpu", ops.cpu);
      ctx.provide("irq", ops.irq);
      ctx.provide("time", ops.time);
    },
  });
}
