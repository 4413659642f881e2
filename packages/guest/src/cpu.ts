/*
 * The guest's CPU setup and task switch, after Linux's arch/x86/kernel/process_64.c
 * (__switch_to), arch/x86/kernel/idt.c and, under Xen, arch/x86/xen/enlighten_pv.c
 * (xen_start_kernel, xen_load_sp0, xen_write_cr0, xen_load_idt) and setup.c
 * (xen_enable_sysenter/syscall, xen_setup_callbacks's register_callback): at boot the kernel
 * loads its IDT and (on Xen) registers its callbacks and says hello on the console; on every
 * switch between tasks it loads the next task's kernel stack, its FS base if it differs, and
 * sets CR0.TS so the next FPU use traps (lazy FPU), all inside one lazy-CPU section that Xen
 * pv_ops turn into one multicall.
 *
 * Invariants: every hook goes through pv_ops.cpu, so native kernels make no hypercall here;
 * a task's CPU state (TaskCpu) belongs to its address space and is dropped with it; the FS
 * base a vCPU holds after a switch is the next task's.
 */

import type { Mm } from "./mm";
import type { KernelPages } from "./pages";
import type { IdtGate } from "./pv-ops";

/** X86_CR0_TS: the next FPU instruction raises #NM. */
export const X86_CR0_TS = 0x8;
/** THREAD_SIZE: a kernel stack (16 KiB on x86-64). */
export const THREAD_SIZE = 0x4000;
/** Where the model places kernel stacks: the vmalloc area (Linux's VMAP_STACK), 48-bit spelling. */
export const KERNEL_STACKS = 0xc900_0000_0000;
/** The kernel text (its handlers live here), 48-bit spelling of __START_KERNEL_map + 16 MiB. */
const KERNEL_TEXT = 0xffff_8100_0000;

/** The kernel's IDT: the exception vectors, int3/into open to user space, and int 0x80. */
export const KERNEL_IDT: readonly IdtGate[] = [
  ...Array.from({ length: 20 }, (_, vector) => ({
    vector,
    dpl: vector === 3 || vector === 4 ? 3 : 0,
    address: KERNEL_TEXT + 0x1000 + vector * 0x40,
  })),
  { vector: 0x80, dpl: 3, address: KERNEL_TEXT + 0x2000 },
];

/** The kernel's Xen entry points (xen_asm_exc_xen_hypervisor_callback and co.). */
export const XEN_CALLBACKS = {
  event: KERNEL_TEXT + 0x3000,
  failsafe: KERNEL_TEXT + 0x3100,
  syscall: KERNEL_TEXT + 0x3200,
  nmi: KERNEL_TEXT + 0x3300,
} as const;

/** What __switch_to loads for a task. */
export interface TaskCpu {
  /** Top of its kernel stack (thread.sp0). */
  sp0: number;
  /** Its FS base (arch_prctl(ARCH_SET_FS), the TLS pointer). */
  fsBase: number;
  /** Its mm's LDT (mm->context.ldt): one kernel page of descriptors, or null. */
  ldt: TaskLdt | null;
}

/** An installed LDT: its page, where the kernel maps it, and how many entries it holds. */
export interface TaskLdt {
  readonly pfn: number;
  readonly va: number;
  readonly entries: number;
}

const tasks = new WeakMap<Mm, TaskCpu>();

/** The CPU state of the task that runs on `mm` (made on first use). */
export function taskCpu(mm: Mm): TaskCpu {
  let t = tasks.get(mm);
  if (t === undefined) {
    t = { sp0: KERNEL_STACKS + (mm.id + 1) * THREAD_SIZE, fsBase: 0, ldt: null };
    tasks.set(mm, t);
  }
  return t;
}

/**
 * Boot: load the IDT on the boot vCPU, then the platform's own setup (`arch`: Xen's callbacks),
 * set CR0.TS for lazy FPU, and greet the console (start_kernel's banner).
 */
export function cpuInit(k: KernelPages, arch?: () => void): void {
  const cpu = k.ops.cpu;
  cpu.loadIdt(0, KERNEL_IDT);
  arch?.();
  cpu.writeCr0(0, cpu.readCr0(0) | X86_CR0_TS);
  cpu.consoleWrite(`Linux version 6.1.0-hyperlab (${k.platform.kind})\n`);
}

/**
 * context_switch's CPU half, from the task on `prev` to the one on `next`, with the address
 * space switch `switchMm` in the middle as Linux orders them.
 */
export function contextSwitch(
  k: KernelPages,
  vi: number,
  prev: Mm | null,
  next: Mm,
  switchMm: () => void,
): void {
  const cpu = k.ops.cpu;
  cpu.startContextSwitch(vi);
  switchMm();
  const t = taskCpu(next);
  cpu.loadSp0(vi, t.sp0);
  const was = prev === null ? 0 : taskCpu(prev).fsBase;
  if (t.fsBase !== was) cpu.writeFsBase(vi, t.fsBase);
  // switch_ldt: load the next mm's LDT when it differs (none: a null LDT).
  const prevLdt = prev === null ? null : taskCpu(prev).ldt;
  if (t.ldt !== prevLdt) cpu.setLdt(vi, t.ldt?.va ?? 0, t.ldt?.entries ?? 0);
  // Lazy FPU: the next task's first FPU instruction traps and restores its state.
  const cr0 = cpu.readCr0(vi);
  if ((cr0 & X86_CR0_TS) === 0) cpu.writeCr0(vi, cr0 | X86_CR0_TS);
  cpu.endContextSwitch(vi);
}

/** arch_prctl(ARCH_SET_FS) for the task on `mm`, running on `vi`. */
export function setFsBase(k: KernelPages, vi: number, mm: Mm, base: number): void {
  taskCpu(mm).fsBase = base;
  if (k.loadedMm[vi] === mm) k.ops.cpu.writeFsBase(vi, base);
}

/** The first FPU instruction after a switch: #NM, and the kernel clears TS (clts). */
export function fpuTrap(k: KernelPages, vi: number): void {
  const cpu = k.ops.cpu;
  const cr0 = cpu.readCr0(vi);
  if ((cr0 & X86_CR0_TS) !== 0) cpu.writeCr0(vi, cr0 & ~X86_CR0_TS);
}

/** printk: a line to the early console. */
export function printk(k: KernelPages, text: string): void {
  k.ops.cpu.consoleWrite(text.endsWith("\n") ? text : `${text}\n`);
}
