/*
 * Inter-processor interrupts and cross-CPU function calls, after Linux's kernel/smp.c
 * (smp_call_function_many / smp_call_function_single and the per-CPU call_single_queue),
 * arch/x86/xen/smp.c and smp_pv.c (xen_smp_intr_init binds, per vCPU, the RESCHEDULE,
 * CALL_FUNCTION, CALL_FUNCTION_SINGLE and IRQ_WORK IPIs with EVTCHNOP_bind_ipi;
 * xen_send_IPI_mask raises them with EVTCHNOP_send), and the native x2APIC send
 * (x2apic_send_IPI_mask: one write of the ICR, MSR 0x830, per target; the target takes the
 * vector and ends it with a write of the EOI register, MSR 0x80b).
 *
 * Invariants: a call asked of a set of CPUs runs exactly once on each CPU of the set that is
 * online (the caller's own CPU is never in the set, as smp_call_function_many excludes it),
 * before the call returns (wait = 1, as TLB shootdowns ask); an IPI is sent to a CPU only
 * when its queue was empty (llist_add's answer), so calls queued together share one
 * interrupt; on Xen PV every IPI is one EVTCHNOP_send and arrives as the target's upcall
 * (read from the vcpu_info it registered); natively it is one ICR write, one interrupt and
 * one EOI. Counts say which, so a study can price them (VM exits under nested paging).
 */
import { EINVAL } from "@hyperlab/abi";
import { type MmuBackend, PFEC_user_mode, PFEC_write_access, type Vcpu } from "@hyperlab/core";
import { guestError } from "./errors";
import type { XenEvtchnGuest } from "./events";
import type { Mm } from "./mm";
import type { GuestPort } from "./port";

/** What the IPI layer needs of the kernel (a GuestKernel, which makes one SmpCalls for itself). */
export interface IpiKernel {
  readonly port: GuestPort;
  readonly events: XenEvtchnGuest | null;
  readonly hwMmu: MmuBackend;
  vcpu(vi: number): Vcpu;
  switchMm(vi: number, mm: Mm): void;
  handleFault(mm: Mm, va: number, write: boolean): number;
}

/** Linux's enum ipi_vector (include/xen/events.h): the IPIs a Xen PV guest binds per vCPU. */
export const XEN_RESCHEDULE_VECTOR = 0;
export const XEN_CALL_FUNCTION_VECTOR = 1;
export const XEN_CALL_FUNCTION_SINGLE_VECTOR = 2;
export const XEN_SPIN_UNLOCK_VECTOR = 3;
export const XEN_IRQ_WORK_VECTOR = 4;
export const XEN_NMI_VECTOR = 5;

/** The native vectors (arch/x86/include/asm/irq_vectors.h). */
export const RESCHEDULE_VECTOR = 0xfd;
export const CALL_FUNCTION_VECTOR = 0xfc;
export const CALL_FUNCTION_SINGLE_VECTOR = 0xfb;
/** x2APIC MSRs: the interrupt command register and end of interrupt. */
export const MSR_X2APIC_ICR = 0x830;
export const MSR_X2APIC_EOI = 0x80b;

/** The IPIs xen_smp_intr_init (and xen_smp_intr_init_pv) bind on every vCPU. */
const XEN_IPIS = [
  XEN_RESCHEDULE_VECTOR,
  XEN_CALL_FUNCTION_VECTOR,
  XEN_CALL_FUNCTION_SINGLE_VECTOR,
  XEN_IRQ_WORK_VECTOR,
] as const;

export interface IpiCounts {
  /** IPIs sent (one per target CPU per interrupt). */
  sent: number;
  /** IPIs taken by their target (its handler ran). */
  received: number;
  /** Native: writes of the x2APIC ICR (one per IPI); each is a VM exit without IPI virtualization. */
  icrWrites: number;
  /** Native: EOI writes ending an IPI (one per IPI taken); a VM exit without APICv. */
  eoiWrites: number;
  /** Xen PV: EVTCHNOP_send hypercalls raising an IPI. */
  evtchnSends: number;
  /** Xen PV: upcalls the targets took (Xen bouncing into the event callback). */
  upcalls: number;
  /** Functions run on other CPUs (smp_call_function*). */
  calls: number;
  /** Reschedule IPIs. */
  reschedules: number;
}

export type SmpCallFunction = (cpu: number) => void;

/** Cross-CPU calls for one kernel (Linux's smp_ops + kernel/smp.c). */
export class SmpCalls {
  readonly counts: IpiCounts = {
    sent: 0,
    received: 0,
    icrWrites: 0,
    eoiWrites: 0,
    evtchnSends: 0,
    upcalls: 0,
    calls: 0,
    reschedules: 0,
  };
  private readonly k: IpiKernel;
  /** Per CPU: the functions queued for it (call_single_queue). */
  private readonly queue: SmpCallFunction[][];
  /** Xen PV: whether the IPIs are bound (xen_smp_intr_init ran) on each CPU. */
  private readonly bound: boolean[];

  constructor(k: IpiKernel) {
    this.k = k;
    const n = k.port.vcpus.length;
    this.queue = Array.from({ length: n }, () => []);
    this.bound = new Array<boolean>(n).fill(false);
  }

  /** Whether IPIs travel as event channels (a Xen PV kernel with its event channels set up). */
  get xen(): boolean {
    return this.k.events !== null;
  }

  /**
   * xen_smp_intr_init for `cpu`: binds its IPIs to their handlers over EVTCHNOP_bind_ipi.
   * 0, or Xen's negative errno (the IPIs bound so far stay bound, as Linux unwinds later).
   * Natively there is nothing to bind (the vectors are fixed): 0.
   */
  intrInit(cpu: number): number {
    this.checkCpu(cpu);
    const ev = this.k.events;
    if (ev === null || this.bound[cpu]) return 0;
    for (const ipi of XEN_IPIS) {
      const irq = ev.bindIpiToIrqHandler(ipi, cpu, () => this.interrupt(ipi, cpu));
      if (irq < 0) return irq;
    }
    this.bound[cpu] = true;
    return 0;
  }

  /**
   * restore_cpu_ipis (Linux's xen_irq_resume): after a save and restore the event channels
   * are new, so each CPU whose IPIs were bound binds them again. 0, or the first negative
   * errno (that CPU and the ones after it stay unbound).
   */
  restoreIpis(): number {
    for (let cpu = 0; cpu < this.bound.length; cpu++) {
      if (!this.bound[cpu]) continue;
      this.bound[cpu] = false;
      const rc = this.intrInit(cpu);
      if (rc < 0) {
        for (let c = cpu + 1; c < this.bound.length; c++) this.bound[c] = false;
        return rc;
      }
    }
    return 0;
  }

  /**
   * smp_call_function_many(mask, fn, wait = 1) from CPU `from`: runs `fn` on every CPU of
   * `cpus` (but `from`). Returns 0, or a negative errno when a CPU cannot be reached (an
   * IPI not bound on Xen, a send Xen refused); `fn` then has not run on that CPU.
   */
  callFunctionMany(from: number, cpus: readonly number[], fn: SmpCallFunction): number {
    this.checkCpu(from);
    const single = cpus.filter((c) => c !== from).length === 1;
    let rc = 0;
    for (const cpu of cpus) {
      this.checkCpu(cpu);
      if (cpu === from) continue;
      const q = this.queue[cpu];
      q.push(fn);
      // llist_add: only the first entry of an empty queue raises the interrupt.
      if (q.length !== 1) continue;
      const r = this.send(
        from,
        cpu,
        single ? XEN_CALL_FUNCTION_SINGLE_VECTOR : XEN_CALL_FUNCTION_VECTOR,
      );
      if (r < 0) {
        q.length = 0;
        rc = r;
      }
    }
    return rc;
  }

  /** smp_call_function_single(cpu, fn, wait = 1). 0 or a negative errno. */
  callFunctionSingle(from: number, cpu: number, fn: SmpCallFunction): number {
    if (cpu === from) {
      this.checkCpu(cpu);
      fn(cpu);
      return 0;
    }
    return this.callFunctionMany(from, [cpu], fn);
  }

  /** smp_send_reschedule: a reschedule IPI to `cpu`. 0 or a negative errno. */
  sendReschedule(from: number, cpu: number): number {
    this.checkCpu(from);
    this.checkCpu(cpu);
    if (cpu === from) return -EINVAL;
    return this.send(from, cpu, XEN_RESCHEDULE_VECTOR);
  }

  /** Raises one IPI and lets its target take it (the target CPU runs; wait = 1). */
  private send(from: number, cpu: number, ipi: number): number {
    const ev = this.k.events;
    this.counts.sent++;
    if (ev !== null) {
      if (!this.bound[cpu]) return -EINVAL;
      this.counts.evtchnSends++;
      const rc = ev.sendIpi(cpu, ipi, from);
      if (rc < 0) return rc;
      // The target vCPU enters its event callback when Xen flagged an upcall for it.
      if (ev.upcallPending(cpu)) {
        this.counts.upcalls++;
        ev.xenEvtchnDoUpcall(cpu);
      }
      return 0;
    }
    // x2apic_send_IPI: one ICR write (destination, vector); the target takes the vector,
    // runs the handler, and writes EOI.
    this.counts.icrWrites++;
    this.interrupt(ipi, cpu);
    this.counts.eoiWrites++;
    return 0;
  }

  /** The IPI handlers: reschedule, or flush_smp_call_function_queue. */
  private interrupt(ipi: number, cpu: number): void {
    this.counts.received++;
    if (ipi === XEN_RESCHEDULE_VECTOR) {
      this.counts.reschedules++;
      return;
    }
    if (ipi !== XEN_CALL_FUNCTION_VECTOR && ipi !== XEN_CALL_FUNCTION_SINGLE_VECTOR) return;
    const q = this.queue[cpu];
    // Take the whole queue (llist_del_all), then run it.
    const run = q.splice(0, q.length);
    for (const f of run) {
      this.counts.calls++;
      f(cpu);
    }
  }

  private checkCpu(cpu: number): void {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.queue.length) {
      throw guestError(
        "GUEST_BAD_CPU",
        `cpu ${cpu} is not a cpu of this kernel (0..${this.queue.length - 1}).`,
      );
    }
  }
}

/**
 * A user access by a thread of `mm` running on cpu `vi` (the kernel switches to `mm` there
 * first): translated by that vCPU's MMU, so its TLB holds the entry afterwards; a miss takes
 * the fault path. Returns the machine address, or -1 when the access would fault fatally.
 */
export function threadTouch(k: IpiKernel, vi: number, mm: Mm, va: number, write: boolean): number {
  const v = k.vcpu(vi);
  k.switchMm(vi, mm);
  const access = PFEC_user_mode | (write ? PFEC_write_access : 0);
  for (let tries = 0; tries < 4; tries++) {
    v.inKernel = false;
    const ma = k.hwMmu.translate(v, va, access);
    v.inKernel = true;
    if (ma >= 0) return ma;
    if (k.handleFault(mm, va, write) !== 0) return -1;
  }
  return -1;
}
