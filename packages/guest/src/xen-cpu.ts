/*
 * Xen PV pv_ops.cpu and pv_ops.time, after Linux's arch/x86/xen/enlighten_pv.c (xen_load_idt,
 * xen_load_sp0, xen_write_msr, xen_write_cr0, xen_start_context_switch /
 * xen_end_context_switch), setup.c (register_callback for the event, failsafe, syscall and NMI
 * entries), time.c (xen_clocksource_read, xen_steal_clock) and hvc_xen.c / xen_raw_console_write.
 *
 * Invariants: stack_switch and fpu_taskswitch go through the multicall buffer, so inside a
 * context switch (lazy CPU mode) they and the CR3 load leave as one multicall, issued when the
 * switch ends; set_segment_base is a hypercall of its own, as xen_write_msr makes it; every
 * pointer Xen is given is a direct-map address of a page this kernel allocated for it; on a
 * Xen without these hypercalls (xen_version answers -ENOSYS, a build without pvCpu()) the
 * kernel keeps the values to itself and makes no further CPU hypercall.
 */
import {
  __HYPERVISOR_callback_op,
  __HYPERVISOR_console_io,
  __HYPERVISOR_fpu_taskswitch,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_set_segment_base,
  __HYPERVISOR_set_trap_table,
  __HYPERVISOR_stack_switch,
  __HYPERVISOR_update_va_mapping,
  __HYPERVISOR_vcpu_op,
  __HYPERVISOR_xen_version,
  CALLBACKF_mask_events,
  CALLBACKOP_register,
  CALLBACKTYPE_event,
  CALLBACKTYPE_failsafe,
  CALLBACKTYPE_nmi,
  CALLBACKTYPE_syscall,
  CONSOLEIO_write,
  DOMID_SELF,
  FLAT_KERNEL_CS,
  FLAT_KERNEL_SS,
  MMUEXT_SET_LDT,
  SEGBASE_FS,
  SEGBASE_GS_USER,
  trap_info,
  UVMF_INVLPG,
  VCPUOP_register_runstate_memory_area,
  XENVER_get_features,
  XENVER_version,
} from "@hyperlab/abi";
import { pvClockNs, readPvClock, readRunstateArea, stealNs, tscAt } from "@hyperlab/core";
import { X86_CR0_TS, XEN_CALLBACKS } from "./cpu";
import type { GuestKernel } from "./kernel";
import { PAGE_SIZE } from "./layout";
import { PAGE_KERNEL, PAGE_KERNEL_RO } from "./pte";
import type { IdtGate, PvCpuOps, PvTimeOps } from "./pv-ops";

/** What the CPU ops need of xen-ops.ts's multicall buffer. */
export interface CpuBatch {
  /** Lazy CPU mode: operations collect until it ends. */
  lazyCpu: boolean;
  /** Queues a hypercall whose arguments travel in registers. */
  cpuOp(op: number, args: Record<string, unknown>): void;
  /** xen_mc_issue: flushes unless a lazy mode is collecting. */
  issue(): void;
  /** Makes `vi` the CPU whose buffer collects (what another CPU collected leaves first). */
  onCpu(vi: number): void;
}

const XEN_CPUID_FIRST_LEAF = 0x4000_0000;
/** TI_SET_IF: the handler runs with events masked, as an interrupt gate would. */
const TI_IF = 4;

/** Xen PV pv_ops.cpu. */
export class XenCpuOps implements PvCpuOps {
  /** Whether this Xen serves the PV CPU hypercalls (xen_version answered). */
  readonly available: boolean;
  /** Xen's version as XENVER_version reports it ((major << 16) | minor), or -1. */
  readonly xenVersion: number;
  /** XENVER_get_features submap 0 (Linux's xen_features), or 0. */
  features = 0;
  /** xen_cr0_value: the CR0 this vCPU believes it has. */
  private readonly cr0: Float64Array;
  /** Machine address of each vCPU's runstate area, or -1. */
  readonly runstateMa: Float64Array;
  private scratchPfn = -1;
  private readonly k: GuestKernel;
  private readonly mc: CpuBatch;
  private readonly c: { hypercalls: number };

  constructor(k: GuestKernel, mc: CpuBatch, counts: { hypercalls: number }) {
    this.k = k;
    this.mc = mc;
    this.c = counts;
    const n = k.port.vcpus.length;
    this.cr0 = new Float64Array(n).fill(0x80050033);
    this.runstateMa = new Float64Array(n).fill(-1);
    this.xenVersion = this.call(__HYPERVISOR_xen_version, { cmd: XENVER_version });
    this.available = this.xenVersion >= 0;
  }

  private call(op: number, args: object): number {
    this.c.hypercalls++;
    return this.k.port.hypercall(0, op, args);
  }

  /** A page for the arguments Xen reads through a pointer: its direct-map address and frame. */
  private scratch(): { va: number; ma: number } | null {
    if (this.scratchPfn < 0) this.scratchPfn = this.k.allocPage();
    if (this.scratchPfn < 0) return null;
    return {
      va: this.k.physVa(this.scratchPfn),
      ma: this.k.frameOf(this.scratchPfn) * PAGE_SIZE,
    };
  }

  cpuid(leaf: number, out: Uint32Array): void {
    // Leaf 1 has no PSE: Xen 4.17 refuses superpages for PV guests, so Linux's Xen PV
    // never maps 2 MiB pages (transparent huge pages fall back to 4 KiB ones).
    out.fill(0);
    if (leaf === XEN_CPUID_FIRST_LEAF) {
      // "XenVMMXenVMM", as Xen answers its first hypervisor leaf.
      out[0] = XEN_CPUID_FIRST_LEAF + 5;
      out[1] = 0x566e6558;
      out[2] = 0x65584d4d;
      out[3] = 0x4d4d566e;
    }
  }

  /** xen_load_idt: the gates as trap_info entries (xen_convert_trap_info), then set_trap_table. */
  loadIdt(_vi: number, gates: readonly IdtGate[]): void {
    const page = this.available ? this.scratch() : null;
    if (page === null) return;
    const { va, ma } = page;
    const ram = this.k.ram;
    const f = trap_info.fields;
    let i = 0;
    for (const g of gates) {
      const at = ma + i * trap_info.sizeof;
      ram.write8(at + f.vector.offset, g.vector);
      // Exceptions are interrupt gates (events masked on entry); int 0x80 is a trap gate.
      ram.write8(at + f.flags.offset, g.dpl | (g.vector === 0x80 ? 0 : TI_IF));
      ram.write16(at + f.cs.offset, FLAT_KERNEL_CS);
      ram.write64n(at + f.address.offset, g.address);
      i++;
    }
    ram.write64n(ma + i * trap_info.sizeof + f.address.offset, 0);
    this.check(__HYPERVISOR_set_trap_table, this.call(__HYPERVISOR_set_trap_table, { traps: va }));
  }

  /**
   * Boot, after the IDT: Linux's xen_setup_features and the callbacks of xen_enable_syscall /
   * xen_setup_callbacks / xen_enable_nmi, each through CALLBACKOP_register.
   */
  setupCallbacks(): void {
    const page = this.available ? this.scratch() : null;
    if (page === null) return;
    const { va, ma } = page;
    const ram = this.k.ram;
    ram.write32(ma, 0);
    if (this.call(__HYPERVISOR_xen_version, { cmd: XENVER_get_features, arg: va }) === 0) {
      this.features = ram.read32(ma + 4);
    }
    const register = (type: number, flags: number, address: number) => {
      ram.write16(ma, type);
      ram.write16(ma + 2, flags);
      ram.write32(ma + 4, 0);
      ram.write64n(ma + 8, address);
      const rc = this.call(__HYPERVISOR_callback_op, { cmd: CALLBACKOP_register, arg: va });
      this.check(__HYPERVISOR_callback_op, rc);
    };
    register(CALLBACKTYPE_event, 0, XEN_CALLBACKS.event);
    register(CALLBACKTYPE_failsafe, 0, XEN_CALLBACKS.failsafe);
    register(CALLBACKTYPE_syscall, CALLBACKF_mask_events, XEN_CALLBACKS.syscall);
    register(CALLBACKTYPE_nmi, 0, XEN_CALLBACKS.nmi);
  }

  /**
   * xen_setup_runstate_info: a page of this kernel as `vi`'s runstate area; `pfn`, when given,
   * is the page it already had (a resume registers the same page again, as xen_vcpu_restore).
   */
  registerRunstate(vi: number, pfn = -1): void {
    if (!this.available || this.runstateMa[vi] >= 0) return;
    const given = pfn >= 0;
    if (!given) pfn = this.k.allocPage();
    if (pfn < 0) return;
    if (!given) this.k.clearPage(pfn);
    const rc = this.call(__HYPERVISOR_vcpu_op, {
      cmd: VCPUOP_register_runstate_memory_area,
      vcpuid: vi,
      addr: this.k.physVa(pfn),
    });
    if (rc === 0) this.runstateMa[vi] = this.k.frameOf(pfn) * PAGE_SIZE;
    else {
      if (!given) this.k.freePage(pfn);
      this.check(__HYPERVISOR_vcpu_op, rc);
    }
  }

  /**
   * What a suspend record keeps of these ops, in pfns (never machine addresses): each vCPU's
   * CR0 as the kernel believes it, its runstate page (-1: none), and the scratch page.
   */
  suspendState(): { cr0: number[]; runstatePfn: number[]; scratchPfn: number } {
    const pfnOf = (ma: number) =>
      ma < 0 ? -1 : this.k.ops.mmu.frameToPfn(Math.floor(ma / PAGE_SIZE));
    return {
      cr0: Array.from(this.cr0),
      runstatePfn: Array.from(this.runstateMa, pfnOf),
      scratchPfn: this.scratchPfn,
    };
  }

  /**
   * Resume on the domain the kernel wakes up in (Linux's xen_post_suspend / xen_vcpu_restore):
   * the scratch page and CR0 as recorded, the IDT as trap_info and the callbacks again, and
   * the boot vCPU's runstate area at the page it had. Secondary vCPUs stay offline.
   */
  resumeState(
    s: { cr0: readonly number[]; runstatePfn: readonly number[]; scratchPfn: number },
    idt: readonly IdtGate[],
  ): void {
    this.scratchPfn = s.scratchPfn;
    for (let vi = 0; vi < this.cr0.length && vi < s.cr0.length; vi++) this.cr0[vi] = s.cr0[vi];
    this.loadIdt(0, idt);
    this.setupCallbacks();
    this.registerRunstate(0, s.runstatePfn[0] ?? -1);
    this.writeCr0(0, this.cr0[0]);
  }

  /** xen_load_sp0: MULTI_stack_switch(__KERNEL_DS, sp0). */
  loadSp0(_vi: number, sp0: number): void {
    if (!this.available) return;
    this.mc.cpuOp(__HYPERVISOR_stack_switch, { ss: FLAT_KERNEL_SS, esp: sp0 });
    this.mc.issue();
  }

  /** xen_write_msr(MSR_FS_BASE): HYPERVISOR_set_segment_base, not batched. */
  writeFsBase(_vi: number, base: number): void {
    if (!this.available) return;
    const rc = this.call(__HYPERVISOR_set_segment_base, { which: SEGBASE_FS, base });
    this.check(__HYPERVISOR_set_segment_base, rc);
  }

  /** xen_write_msr(MSR_KERNEL_GS_BASE). */
  writeGsBaseUser(_vi: number, base: number): void {
    if (!this.available) return;
    const rc = this.call(__HYPERVISOR_set_segment_base, { which: SEGBASE_GS_USER, base });
    this.check(__HYPERVISOR_set_segment_base, rc);
  }

  readCr0(vi: number): number {
    return this.cr0[vi];
  }

  /** xen_write_cr0: only TS matters to Xen, as MULTI_fpu_taskswitch. */
  writeCr0(vi: number, cr0: number): void {
    this.cr0[vi] = cr0;
    if (!this.available) return;
    this.mc.cpuOp(__HYPERVISOR_fpu_taskswitch, { set: (cr0 & X86_CR0_TS) !== 0 ? 1 : 0 });
    this.mc.issue();
  }

  startContextSwitch(): void {
    this.mc.lazyCpu = true;
  }

  /** xen_end_context_switch: the batch leaves as one multicall. */
  endContextSwitch(): void {
    this.mc.lazyCpu = false;
    this.mc.issue();
  }

  /**
   * xen_alloc_ldt: each LDT page is made read-only (set_aliased_prot), as Xen will take it as
   * a descriptor page when the CPU first loads a selector from it.
   */
  allocLdt(pfns: readonly number[]): void {
    this.ldtProt(pfns, PAGE_KERNEL_RO);
  }

  /** xen_free_ldt: the pages writable again. */
  freeLdt(pfns: readonly number[]): void {
    this.ldtProt(pfns, PAGE_KERNEL);
  }

  private ldtProt(pfns: readonly number[], prot: number): void {
    const k = this.k;
    for (const pfn of pfns) {
      const rc = this.call(__HYPERVISOR_update_va_mapping, {
        va: k.physVa(pfn),
        val: k.frameOf(pfn) * PAGE_SIZE + prot,
        flags: UVMF_INVLPG,
      });
      if (rc < 0) k.kernelError(__HYPERVISOR_update_va_mapping, rc);
    }
  }

  /** xen_set_ldt: MMUEXT_SET_LDT in the multicall batch, from the vCPU that loads it. */
  setLdt(vi: number, va: number, entries: number): void {
    this.mc.onCpu(vi);
    this.mc.cpuOp(__HYPERVISOR_mmuext_op, {
      uops: [{ cmd: MMUEXT_SET_LDT, arg1: { linear_addr: va }, arg2: { nr_ents: entries } }],
      count: 1,
      foreigndom: DOMID_SELF,
    });
    this.mc.issue();
    this.mc.onCpu(0);
  }

  /** xen_raw_console_write: HYPERVISOR_console_io(CONSOLEIO_write) a page at a time. */
  consoleWrite(text: string): void {
    const page = this.available ? this.scratch() : null;
    if (page === null) return;
    const { va, ma } = page;
    const ram = this.k.ram;
    for (let at = 0; at < text.length; at += PAGE_SIZE) {
      const part = text.slice(at, at + PAGE_SIZE);
      for (let i = 0; i < part.length; i++) ram.write8(ma + i, part.charCodeAt(i) & 0xff);
      const rc = this.call(__HYPERVISOR_console_io, {
        cmd: CONSOLEIO_write,
        count: part.length,
        buffer: va,
      });
      this.check(__HYPERVISOR_console_io, rc);
    }
  }

  private check(op: number, rc: number): void {
    if (rc < 0) this.k.kernelError(op, rc);
  }
}

/** Xen PV pv_ops.time: the PV clock Xen writes into vcpu_info, steal time from the runstate area. */
export function xenTimeOps(k: GuestKernel, cpu: XenCpuOps): PvTimeOps {
  const last = new Float64Array(k.port.vcpus.length);
  return {
    // xen_clocksource_read: the vCPU's vcpu_time_info, extrapolated with the TSC.
    schedClock: (vi) => {
      const at = k.xenVcpuInfo(vi);
      const snap = at < 0 ? null : readPvClock(k.ram, at);
      if (snap === null) return last[vi];
      const ns = pvClockNs(snap, tscAt(k.port.clock.now));
      // Linux's pvclock keeps the clock monotonic across vCPUs' stamps.
      if (ns > last[vi]) last[vi] = ns;
      return last[vi];
    },
    // xen_steal_clock: runnable and offline time from the runstate area.
    stealClock: (vi) => {
      const ma = cpu.runstateMa[vi];
      if (ma < 0) return 0;
      const snap = readRunstateArea(k.ram, (off) => ma + off);
      return snap === null ? 0 : stealNs(snap);
    },
  };
}
