/*
 * Tasks and their address spaces over a lifetime (Linux's kernel/fork.c dup_mm, fs/exec.c
 * exec_mmap, kernel/exit.c with mm/mmap.c exit_mmap): the pid table, fork's copy of an mm,
 * exec's fresh one, and the teardown at exit.
 *
 * Invariants: every process has its own mm; a fork that fails (no memory, or a hypercall
 * refused) leaves no half-made child mm behind; exit tears an mm down completely, after
 * switching every vCPU off it, so afterwards none of its pages, tables or pins remain. The
 * pid table holds tasks through their Task view only (task.ts), never the program interface.
 */

import { ENOMEM } from "@hyperlab/abi";
import { KernelFaults } from "./fault";
import { PAGE_SIZE, PROT_READ, PROT_WRITE, STACK_PAGES, STACK_TOP, USER_VA_END } from "./layout";
import { destroyLdt } from "./ldt";
import type { Mm } from "./mm";
import type { Task } from "./task";

/** The kernel with its tasks. */
export class KernelTasks extends KernelFaults {
  private nextPid = 1;
  /** The pid table (Linux's task list): every process made by spawn or fork, dead ones too. */
  readonly processes = new Map<number, Task>();

  /** A fresh user address space with a stack area, activated for exec (or the first process). */
  mmForExec(prev: Mm): Mm | null {
    const mm = this.mmAlloc();
    if (mm === null) return null;
    mm.insert({
      start: STACK_TOP - STACK_PAGES * PAGE_SIZE,
      end: STACK_TOP,
      prot: PROT_READ | PROT_WRITE,
    });
    this.ops.mmu.activateMm(prev, mm);
    return mm;
  }

  /** fork()'s copy of an address space (dup_mmap): every area, COW for private writable ones. */
  dupMm(old: Mm): Mm | number {
    const mm = this.mmAlloc();
    if (mm === null) return -ENOMEM;
    const m = this.ops.mmu;
    m.dupMmap(old, mm);
    let failed = false;
    for (const a of old.vmas) {
      mm.vmas.push({ start: a.start, end: a.end, prot: a.prot });
      if (!failed && !this.copyRange(old, mm, a.start, a.end, (a.prot & PROT_WRITE) !== 0))
        failed = true;
    }
    // flush_tlb_mm(oldmm): the parent's entries lost RW.
    this.flushRange(old, 0, USER_VA_END);
    const rc = this.takeError();
    if (failed || rc !== 0) {
      this.mmTeardown(mm);
      return rc !== 0 ? rc : -ENOMEM;
    }
    return mm;
  }

  /** Tears an mm down completely (exit_mmap): unloads it, lets pv_ops unpin, zaps, frees. */
  mmTeardown(mm: Mm): void {
    for (let vi = 0; vi < this.loadedMm.length; vi++) {
      if (this.loadedMm[vi] === mm) this.switchMm(vi, this.initMm);
    }
    this.ops.mmu.exitMmap(mm);
    for (const a of mm.vmas) this.zapRange(mm, a.start, a.end);
    mm.vmas = [];
    this.freeAllTables(mm);
    destroyLdt(this, mm);
  }

  /** The next free pid. */
  allocPid(): number {
    return this.nextPid++;
  }

  /** The pid the next allocPid gives (a suspend record keeps it). */
  get pidCursor(): number {
    return this.nextPid;
  }

  /** Resume: the pid allocator where a suspend record left it. */
  set pidCursor(pid: number) {
    this.nextPid = pid;
  }
}
