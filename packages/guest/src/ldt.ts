/*
 * A process's local descriptor table, after Linux's arch/x86/kernel/ldt.c (write_ldt,
 * install_ldt, free_ldt_struct, destroy_context_ldt) and its pv_ops hooks: a new LDT is built,
 * handed to paravirt_alloc_ldt (Xen PV: its pages made read-only, xen_alloc_ldt), installed in
 * the mm and loaded on every CPU that runs the mm (load_mm_ldt; on other CPUs by a function
 * call over IPI, on_each_cpu_mask(flush_ldt)), and only then is the old one freed
 * (paravirt_free_ldt). Loading is pv_ops.cpu.setLdt: LLDT natively, MMUEXT_SET_LDT on Xen PV
 * (xen_set_ldt).
 *
 * Invariants: an mm's LDT is never written after alloc_ldt (a change builds a new one);
 * every CPU running the mm has loaded the new LDT before the old one is freed; an mm's LDT is
 * freed with the mm. The model keeps an LDT in one kernel page (512 entries, where Linux
 * allows 8192 in a vmalloc area): a larger index is refused with -EINVAL.
 */
import { EINVAL, ENOMEM } from "@hyperlab/abi";
import type { Ram } from "@hyperlab/machine";
import { type TaskLdt, taskCpu } from "./cpu";
import type { SmpCalls } from "./ipi";
import { PAGE_SIZE } from "./layout";
import type { Mm } from "./mm";
import type { PvOps } from "./pv-ops";

/** Bytes of one descriptor (LDT_ENTRY_SIZE). */
export const LDT_ENTRY_SIZE = 8;
/** Entries this model's one-page LDT holds. */
export const LDT_ENTRIES_MODELLED = PAGE_SIZE / LDT_ENTRY_SIZE;

/** What freeing an LDT needs of the kernel. */
export interface LdtFreeKernel {
  readonly ops: PvOps;
  freePage(pfn: number): void;
}

/** What writing an LDT needs of the kernel (a GuestKernel has it). */
export interface LdtKernel extends LdtFreeKernel {
  readonly ram: Ram;
  readonly loadedMm: readonly (Mm | null)[];
  readonly smp: SmpCalls;
  allocPage(): number;
  clearPage(pfn: number): void;
  frameOf(pfn: number): number;
  physVa(pfn: number): number;
}

/**
 * modify_ldt(1, ...) (write_ldt): sets descriptor `index` of `mm`'s LDT to the 8 bytes
 * (lo, hi), growing the LDT to index + 1 entries. 0, or -EINVAL / -ENOMEM.
 */
export function writeLdt(k: LdtKernel, mm: Mm, index: number, lo: number, hi: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= LDT_ENTRIES_MODELLED) return -EINVAL;
  if (!isU32(lo) || !isU32(hi)) return -EINVAL;
  const t = taskCpu(mm);
  const old = t.ldt;
  const pfn = k.allocPage();
  if (pfn < 0) return -ENOMEM;
  k.clearPage(pfn);
  const ram = k.ram;
  const ma = k.frameOf(pfn) * PAGE_SIZE;
  if (old !== null) ram.copyFrame(k.frameOf(pfn), k.frameOf(old.pfn));
  ram.write32(ma + index * LDT_ENTRY_SIZE, lo);
  ram.write32(ma + index * LDT_ENTRY_SIZE + 4, hi);
  const entries = Math.max(old?.entries ?? 0, index + 1);
  k.ops.cpu.allocLdt([pfn]);
  const ldt: TaskLdt = { pfn, va: k.physVa(pfn), entries };
  t.ldt = ldt;
  // install_ldt: load it on this CPU, and on the others running the mm by IPI.
  const others: number[] = [];
  for (let vi = 0; vi < k.loadedMm.length; vi++) {
    if (k.loadedMm[vi] !== mm) continue;
    if (vi === 0) k.ops.cpu.setLdt(0, ldt.va, ldt.entries);
    else others.push(vi);
  }
  if (others.length > 0) {
    k.smp.callFunctionMany(0, others, (cpu) => {
      if (k.loadedMm[cpu] === mm) k.ops.cpu.setLdt(cpu, ldt.va, ldt.entries);
    });
  }
  if (old !== null) releaseLdt(k, old);
  return 0;
}

/** The entries of `mm`'s LDT (0: none). */
export function ldtEntries(mm: Mm): number {
  return taskCpu(mm).ldt?.entries ?? 0;
}

/** destroy_context_ldt: the mm is gone (no CPU runs it); its LDT is freed. */
export function destroyLdt(k: LdtFreeKernel, mm: Mm): void {
  const t = taskCpu(mm);
  if (t.ldt === null) return;
  releaseLdt(k, t.ldt);
  t.ldt = null;
}

function releaseLdt(k: LdtFreeKernel, ldt: TaskLdt): void {
  k.ops.cpu.freeLdt([ldt.pfn]);
  k.freePage(ldt.pfn);
}

function isU32(x: number): boolean {
  return typeof x === "number" && x >>> 0 === x;
}
