/*
 * Per-vCPU timers (Xen's VCPUOP_set_singleshot_timer and VCPUOP_set_periodic_timer, from
 * xen/common/domain.c): each raises VIRQ_TIMER on its vCPU through the `evtchn` slot.
 *
 * Invariants: a vCPU has at most one pending single-shot and one periodic clock event;
 * both are cancelled when the domain is destroyed, so no timer fires into a dead domain.
 */
import {
  __HYPERVISOR_vcpu_op,
  EFAULT,
  EINVAL,
  ENOENT,
  ETIME,
  VCPU_SSHOTTMR_future,
  VCPUOP_set_periodic_timer,
  VCPUOP_set_singleshot_timer,
  VCPUOP_stop_periodic_timer,
  VCPUOP_stop_singleshot_timer,
  VIRQ_TIMER,
} from "@hyperlab/abi";
import type { Plugin, SetupContext, Vcpu } from "@hyperlab/core";

/** Shortest periodic timer a guest may ask for (Xen: 1 ms). */
export const PERIODIC_TIMER_MIN_NS = 1_000_000;
/** Xen's STIME_DELTA_MAX, rounded to what a double holds exactly. */
const STIME_DELTA_MAX = 2 ** 62;

type Args = Record<string, unknown>;

class VcpuTimers {
  private readonly ctx: SetupContext;
  private readonly single = new Map<number, number>();
  private readonly periodic = new Map<number, number>();
  private readonly fired;

  constructor(ctx: SetupContext) {
    this.ctx = ctx;
    this.fired = ctx.stats.counter("timer_virqs", "events", "VIRQ_TIMER raised by vCPU timers");
    const op = __HYPERVISOR_vcpu_op;
    ctx.hypercall(
      op,
      (v, a) => this.withTarget(v, a, (t) => this.setSingle(v, t, a)),
      VCPUOP_set_singleshot_timer,
    );
    ctx.hypercall(
      op,
      (v, a) => this.withTarget(v, a, (t) => this.stopSingle(v, t)),
      VCPUOP_stop_singleshot_timer,
    );
    ctx.hypercall(
      op,
      (v, a) => this.withTarget(v, a, (t) => this.setPeriodic(t, a)),
      VCPUOP_set_periodic_timer,
    );
    ctx.hypercall(
      op,
      (v, a) => this.withTarget(v, a, (t) => this.stopPeriodic(t)),
      VCPUOP_stop_periodic_timer,
    );
    ctx.onDomainDestroy((d) => {
      for (const v of d.vcpus) {
        this.cancel(this.single, v.uid);
        this.cancel(this.periodic, v.uid);
      }
    });
  }

  private get clock() {
    return this.ctx.hv.machine.clock;
  }

  private withTarget(v: Vcpu, a: Args, fn: (t: Vcpu) => number): number {
    const id = a.vcpuid;
    if (typeof id !== "number" || !Number.isInteger(id)) return -EFAULT;
    const t = v.domain.vcpus[id];
    return t === undefined ? -ENOENT : fn(t);
  }

  private cancel(map: Map<number, number>, uid: number): void {
    const h = map.get(uid);
    if (h !== undefined) {
      this.clock.cancel(h);
      map.delete(uid);
    }
  }

  private raise(t: Vcpu): void {
    this.fired.value++;
    this.ctx.slot("evtchn").sendVirq(t, VIRQ_TIMER);
  }

  private setSingle(v: Vcpu, t: Vcpu, a: Args): number {
    if (t !== v) return -EINVAL;
    const { timeout_abs_ns: timeout, flags } = a;
    if (typeof timeout !== "number" || !(timeout >= 0) || !Number.isFinite(timeout)) return -EFAULT;
    if (typeof flags !== "number" || !Number.isInteger(flags)) return -EFAULT;
    const now = this.clock.now;
    if (flags & VCPU_SSHOTTMR_future && timeout < now) return -ETIME;
    this.cancel(this.single, t.uid);
    const h = this.clock.schedule(Math.max(now, timeout), () => {
      this.single.delete(t.uid);
      this.raise(t);
    });
    this.single.set(t.uid, h);
    return 0;
  }

  private stopSingle(v: Vcpu, t: Vcpu): number {
    if (t !== v) return -EINVAL;
    this.cancel(this.single, t.uid);
    return 0;
  }

  private setPeriodic(t: Vcpu, a: Args): number {
    const period = a.period_ns;
    if (typeof period !== "number" || !Number.isFinite(period)) return -EFAULT;
    if (period < PERIODIC_TIMER_MIN_NS || period > STIME_DELTA_MAX) return -EINVAL;
    this.cancel(this.periodic, t.uid);
    const tick = (now: number) => {
      this.periodic.set(t.uid, this.clock.schedule(now + period, tick));
      this.raise(t);
    };
    this.periodic.set(t.uid, this.clock.schedule(this.clock.now + period, tick));
    return 0;
  }

  private stopPeriodic(t: Vcpu): number {
    this.cancel(this.periodic, t.uid);
    return 0;
  }

  /** Whether a vCPU has a single-shot or periodic timer armed. */
  armed(t: Vcpu): { singleshot: boolean; periodic: boolean } {
    return { singleshot: this.single.has(t.uid), periodic: this.periodic.has(t.uid) };
  }
}

/** Per-vCPU one-shot and periodic timers that raise VIRQ_TIMER; needs an `evtchn` plugin. */
export function vcpuTimers(): Plugin {
  return {
    name: "vcpu-timers",
    description: "VCPUOP single-shot and periodic timers raising VIRQ_TIMER",
    requires: ["evtchn"],
    hypercalls: [
      VCPUOP_set_periodic_timer,
      VCPUOP_stop_periodic_timer,
      VCPUOP_set_singleshot_timer,
      VCPUOP_stop_singleshot_timer,
    ].map((cmd) => ({ op: __HYPERVISOR_vcpu_op, cmd })),
    setup(ctx) {
      new VcpuTimers(ctx);
    },
  };
}
