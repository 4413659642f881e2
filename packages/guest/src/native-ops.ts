/*
 * Native pv_ops: the kernel writes its own page tables, loads CR3 and flushes the TLB with
 * the instructions themselves, as on bare metal (or under nested paging, where the guest's
 * tables are the hardware's first dimension).
 *
 * Invariant: nothing here is ever pinned or read-only to the kernel, so every table write
 * is a plain store into the table page.
 */
import { nativeApicOps } from "./apic";
import { dmaDirectOps } from "./dma-direct";
import type { GuestKernel } from "./kernel";
import { PAGE_SIZE, TLB_SINGLE_PAGE_FLUSH_CEILING, X86_FEATURE_PSE } from "./layout";
import type { Mm } from "./mm";
import { E_IOMAP } from "./pte";
import type { BuiltinPvOps, IdtGate, PvCpuOps, PvIrqOps, PvMmuOps, PvTimeOps } from "./pv-ops";

const X86_EFLAGS_IF = 0x200;

export function nativeMmuOps(k: GuestKernel): PvMmuOps {
  const nop = () => {};
  return {
    pfnToFrame: (pfn) => pfn,
    frameToPfn: (frame) => (frame >= 0 && frame < k.nrPfns ? frame : -1),
    // pfn == frame, and without Xen the _PAGE_IOMAP bit is not in __supported_pte_mask.
    makePte: (pfn, flags) => pfn * PAGE_SIZE + (flags & ~E_IOMAP),
    makeIoPte: (frame, flags) => frame * PAGE_SIZE + (flags & ~E_IOMAP),
    setPte: (_mm, t, i, e) => k.tableStore(t, i, e),
    setPmd: (_mm, t, i, e) => k.tableStore(t, i, e),
    setPud: (_mm, t, i, e) => k.tableStore(t, i, e),
    setP4d: (mm: Mm, i, e) => k.tableStore(mm.pgd, i, e),
    setPteAt: (_mm, va, t, i, e, flush) => {
      k.tableStore(t, i, e);
      if (flush) k.hwMmu.flushOne(k.vcpu(0), va);
    },
    pteClear: (_mm, t, i) => k.tableStore(t, i, 0),
    ptepModifyProtStart: (_mm, t, i) => k.readEntry(t, i),
    ptepModifyProtCommit: (_mm, t, i, _old, e) => k.tableStore(t, i, e),
    readCr3: (vi) => k.cr3Pfn[vi],
    writeCr3: (vi, mm) => {
      const v = k.vcpu(vi);
      v.cr3Mfn = mm.pgd;
      k.hwMmu.flushLocal(v);
    },
    flushTlbUser: (vi) => k.hwMmu.flushLocal(k.vcpu(vi)),
    flushTlbKernel: (vi) => k.hwMmu.flushLocal(k.vcpu(vi)),
    flushTlbOneUser: (vi, va) => k.hwMmu.flushOne(k.vcpu(vi), va),
    flushTlbMulti: (vcpus, _mm, start, end) => {
      // native_flush_tlb_multi: a function call on each CPU by IPI (on_each_cpu_cond_mask),
      // whose handler (flush_tlb_func) flushes the range, or everything, on its own CPU.
      const single = (end - start) / PAGE_SIZE <= TLB_SINGLE_PAGE_FLUSH_CEILING;
      k.smp.callFunctionMany(0, vcpus, (vi) => {
        const v = k.vcpu(vi);
        if (single) {
          for (let va = start; va < end; va += PAGE_SIZE) k.hwMmu.flushOne(v, va);
        } else k.hwMmu.flushLocal(v);
      });
    },
    allocPte: nop,
    allocPmd: nop,
    allocPud: nop,
    releasePte: nop,
    releasePmd: nop,
    releasePud: nop,
    pgdAlloc: () => 0,
    pgdFree: nop,
    dupMmap: nop,
    activateMm: nop,
    exitMmap: nop,
    lazyMmuEnter: nop,
    lazyMmuLeave: nop,
    lazyMmuFlush: nop,
  };
}

/**
 * Native pv_ops.cpu: the instructions themselves (LIDT, the TSS, WRMSR, MOV CR0, the serial
 * port), modelled as the registers they load, per vCPU.
 */
export class NativeCpu implements PvCpuOps {
  /** Each vCPU's IDT: 256 handler addresses per vCPU (0: none). */
  readonly idt: Float64Array;
  readonly sp0: Float64Array;
  /** Each vCPU's LDT register: base and entries (0: no LDT). */
  readonly ldtBase: Float64Array;
  readonly ldtEntries: Float64Array;
  readonly fsBase: Float64Array;
  readonly gsBaseUser: Float64Array;
  readonly cr0: Float64Array;
  /** What the kernel wrote to the serial port. */
  serial = "";

  constructor(nrVcpus: number) {
    this.idt = new Float64Array(256 * nrVcpus);
    this.sp0 = new Float64Array(nrVcpus);
    this.ldtBase = new Float64Array(nrVcpus);
    this.ldtEntries = new Float64Array(nrVcpus);
    this.fsBase = new Float64Array(nrVcpus);
    this.gsBaseUser = new Float64Array(nrVcpus);
    // CR0 after boot: PE, MP, ET, NE, WP, AM, PG.
    this.cr0 = new Float64Array(nrVcpus).fill(0x80050033);
  }

  cpuid(leaf: number, out: Uint32Array): void {
    out.fill(0);
    // Leaf 0: highest basic leaf and "GenuineIntel"; no hypervisor leaves on bare metal.
    if (leaf === 0) {
      out[0] = 0x16;
      out[1] = 0x756e6547;
      out[2] = 0x6c65746e;
      out[3] = 0x49656e69;
    }
    // Leaf 1: the features the model has; of them the kernel asks only for PSE (2 MiB pages).
    if (leaf === 1) out[3] = 1 << X86_FEATURE_PSE;
  }

  allocLdt(_pfns: readonly number[]): void {}

  freeLdt(_pfns: readonly number[]): void {}

  /** LLDT: the LDT register of the vCPU (its base and limit in entries). */
  setLdt(vi: number, va: number, entries: number): void {
    this.ldtBase[vi] = entries === 0 ? 0 : va;
    this.ldtEntries[vi] = entries;
  }

  loadIdt(vi: number, gates: readonly IdtGate[]): void {
    this.idt.fill(0, vi * 256, vi * 256 + 256);
    for (const g of gates) this.idt[vi * 256 + g.vector] = g.address;
  }

  loadSp0(vi: number, sp0: number): void {
    this.sp0[vi] = sp0;
  }

  writeFsBase(vi: number, base: number): void {
    this.fsBase[vi] = base;
  }

  writeGsBaseUser(vi: number, base: number): void {
    this.gsBaseUser[vi] = base;
  }

  readCr0(vi: number): number {
    return this.cr0[vi];
  }

  writeCr0(vi: number, cr0: number): void {
    this.cr0[vi] = cr0;
  }

  startContextSwitch(): void {}

  endContextSwitch(): void {}

  consoleWrite(text: string): void {
    this.serial += text;
  }
}

export function nativeCpuOps(nrVcpus = 1): PvCpuOps {
  return new NativeCpu(nrVcpus);
}

export function nativeIrqOps(k: GuestKernel): PvIrqOps {
  const masked = new Uint8Array(k.port.vcpus.length);
  return {
    saveFl: (vi) => (masked[vi] === 0 ? X86_EFLAGS_IF : 0),
    restoreFl: (vi, flags) => {
      masked[vi] = (flags & X86_EFLAGS_IF) !== 0 ? 0 : 1;
    },
    irqDisable: (vi) => {
      masked[vi] = 1;
    },
    irqEnable: (vi) => {
      masked[vi] = 0;
    },
  };
}

export function nativeTimeOps(k: GuestKernel): PvTimeOps {
  return {
    schedClock: () => k.port.clock.now,
    stealClock: () => 0,
  };
}

/** The native defaults of every pv_ops group this package defines. */
export function nativePvOps(k: GuestKernel): BuiltinPvOps {
  return {
    mmu: nativeMmuOps(k),
    cpu: nativeCpuOps(k.port.vcpus.length),
    irq: nativeIrqOps(k),
    time: nativeTimeOps(k),
    dma: dmaDirectOps(k),
    apic: nativeApicOps(k.port),
  };
}
