/*
 * The credit scheduler (Xen's xen/common/sched/credit.c, sched=credit): weighted fair
 * share by credits, 30 ms slices, 10 ms ticks, BOOST / UNDER / OVER priorities, and work
 * stealing between pCPUs.
 *
 * Invariants: each pCPU has three FIFO queues, one per priority (queue cpu*3 + cls with
 * cls 0 = BOOST, 1 = UNDER, 2 = OVER); a queued vCPU sits in the queue of its `pri` on its
 * `processor`. Credits fall by CSCHED_CREDITS_PER_MSEC per ms of run time and are handed
 * out every accounting period (one slice) to active vCPUs in proportion to their domain's
 * weight. Credits are doubles, not Xen's integers, so small weights get no rounding bonus.
 * Caps are enforced by the core's budget (see scheduler.ts), not by parking.
 */
import { finishPick, firstEligible, growTo, KEEP_PREV, takePrev } from "./policy-common";
import type { Policy, SchedCore } from "./scheduler";

export const CSCHED_DEFAULT_TSLICE_MS = 30;
export const CSCHED_TICKS_PER_TSLICE = 3;
export const CSCHED_CREDITS_PER_MSEC = 10;
export const CSCHED_PRI_TS_BOOST = 0;
export const CSCHED_PRI_TS_UNDER = -1;
export const CSCHED_PRI_TS_OVER = -2;
/** Xen's default sched_ratelimit_us: a vCPU runs at least this long before preemption. */
export const SCHED_DEFAULT_RATELIMIT_US = 1000;

export interface CreditOptions {
  /** Time slice, ms (Xen's sched_credit_tslice_ms; default 30). */
  tsliceMs?: number;
  /** Minimum run before a preemption, µs (Xen's sched_ratelimit_us; default 1000; 0 = off). */
  ratelimitUs?: number;
  /** Whether waking vCPUs get BOOST priority (Xen always does; off for comparisons). */
  boost?: boolean;
}

const MS = 1_000_000;

export class CreditPolicy implements Policy {
  readonly name = "credit";
  private s!: SchedCore;
  private n = 0;
  private readonly tsliceNs: number;
  private readonly ratelimitNs: number;
  private readonly boost: boolean;
  private readonly creditsPerTslice: number;
  private credit = new Float64Array(0);
  private pri = new Int8Array(0);
  private active = new Uint8Array(0);
  private yielding = new Uint8Array(0);
  private creditBalance = 0;

  constructor(options: CreditOptions = {}) {
    const tslice = options.tsliceMs ?? CSCHED_DEFAULT_TSLICE_MS;
    this.tsliceNs = tslice * MS;
    this.ratelimitNs = (options.ratelimitUs ?? SCHED_DEFAULT_RATELIMIT_US) * 1000;
    this.boost = options.boost ?? true;
    this.creditsPerTslice = CSCHED_CREDITS_PER_MSEC * tslice;
  }

  queues(nrCpus: number): number {
    return nrCpus * 3;
  }

  attach(core: SchedCore): void {
    this.s = core;
    this.n = core.nrCpus;
    const acct = (now: number) => {
      this.acct();
      core.clock.schedule(now + this.tsliceNs, acct);
    };
    core.clock.schedule(core.clock.now + this.tsliceNs, acct);
  }

  /** The credit a vCPU has now (its running time charged up to the last accounting). */
  creditOf(uid: number): number {
    return this.credit[uid];
  }

  priOf(uid: number): number {
    return this.pri[uid];
  }

  addVcpu(uid: number): void {
    this.credit = growTo(this.credit, uid);
    this.pri = growTo(this.pri, uid);
    this.active = growTo(this.active, uid);
    this.yielding = growTo(this.yielding, uid);
    this.credit[uid] = 0;
    this.pri[uid] = CSCHED_PRI_TS_UNDER;
    this.active[uid] = 0;
    this.yielding[uid] = 0;
  }

  private readonly insert = (cpu: number, uid: number): void => {
    this.s.hv.vcpus[uid].processor = cpu;
    this.s.rq.pushTail(cpu * 3 - this.pri[uid], uid);
  };

  wake(uid: number, boostable: boolean): number {
    const s = this.s;
    if (boostable && this.boost && this.pri[uid] === CSCHED_PRI_TS_UNDER && !s.parked[uid]) {
      this.pri[uid] = CSCHED_PRI_TS_BOOST;
    }
    const cpu = s.placeCpu(uid);
    this.insert(cpu, uid);
    return this.tickleFor(uid, cpu);
  }

  /** Xen's __runq_tickle: an idle pCPU, or the vCPU's own pCPU if it now outranks its current. */
  private tickleFor(uid: number, cpu: number): number {
    const s = this.s;
    const cur = s.currUid[cpu];
    if (cur < 0) return cpu;
    if (this.pri[uid] > this.pri[cur]) return cpu;
    return s.idleCpuFor(uid);
  }

  tickle(uid: number): number {
    return this.tickleFor(uid, this.s.hv.vcpus[uid].processor);
  }

  sleep(uid: number): void {
    this.s.rq.remove(uid);
  }

  yield(uid: number): void {
    this.yielding[uid] = 1;
  }

  burn(uid: number, ns: number): void {
    this.credit[uid] -= (ns * CSCHED_CREDITS_PER_MSEC) / MS;
  }

  /**
   * First vCPU in classes 0..maxCls of pCPU `q`'s queues that may run on pCPU `cpu` (in the
   * soft step, only those whose soft affinity holds it), skipping `skip`.
   */
  private first(q: number, maxCls: number, skip: number, cpu: number, softStep: boolean): number {
    for (let cls = 0; cls <= maxCls; cls++) {
      const u = firstEligible(this.s, q * 3 + cls, skip, cpu, softStep);
      if (u >= 0) return u;
    }
    return -1;
  }

  pick(cpu: number, now: number, prev: number, requeue: boolean): number {
    const s = this.s;
    const yielder = takePrev(
      s,
      cpu,
      now,
      prev,
      requeue,
      this.yielding,
      this.ratelimitNs,
      this.insert,
    );
    if (yielder === KEEP_PREV) return prev;
    let next = this.first(cpu, 2, yielder, cpu, false);
    let cls = next >= 0 ? -this.pri[next] : 3;
    if (cls === 2 || next < 0) {
      // Work stealing (csched_load_balance): a higher-priority vCPU waiting on another pCPU
      // that may run here, first among those that prefer this pCPU (the soft affinity
      // step, skipped when no vCPU has one), then among all (the hard affinity step).
      steal: for (let step = s.nrSoftEff > 0 ? 0 : 1; step < 2; step++) {
        for (let i = 1; i < this.n; i++) {
          const peer = (cpu + i) % this.n;
          const u = this.first(peer, cls - 1, -1, cpu, step === 0);
          if (u >= 0) {
            next = u;
            cls = -this.pri[u];
            s.cMigrations.value++;
            break steal;
          }
        }
      }
    }
    next = finishPick(s, next, yielder);
    if (next >= 0) s.slice = this.tsliceNs;
    return next;
  }

  tick(cpu: number, now: number): void {
    const uid = this.s.currUid[cpu];
    if (uid < 0) return;
    // csched_unit_acct: charge the running vCPU, end its boost, make it active.
    this.s.account(uid, now);
    if (this.pri[uid] === CSCHED_PRI_TS_BOOST) this.pri[uid] = CSCHED_PRI_TS_UNDER;
    this.active[uid] = 1;
  }

  paramsChanged(): void {}

  /** csched_acct: hand out one period's credits to active vCPUs by weight. */
  private acct(): void {
    const s = this.s;
    const doms = s.domains;
    let weightTotal = 0;
    const activeCount: number[] = [];
    for (let slot = 0; slot < doms.length; slot++) {
      const d = doms[slot];
      let c = 0;
      if (d !== undefined) for (const v of d.vcpus) if (this.active[v.uid]) c++;
      activeCount.push(c);
      weightTotal += s.weight[slot] * c;
    }
    if (weightTotal === 0) {
      this.creditBalance = 0;
      return;
    }
    let creditTotal = this.n * this.creditsPerTslice;
    if (this.creditBalance < 0) creditTotal -= this.creditBalance;
    let weightLeft = weightTotal;
    let balance = 0;
    const rq = s.rq;
    for (let slot = 0; slot < doms.length; slot++) {
      const d = doms[slot];
      const c = activeCount[slot];
      if (d === undefined || c === 0) continue;
      const w = s.weight[slot];
      weightLeft -= w * c;
      let peak = c * this.creditsPerTslice;
      if (this.creditBalance < 0) peak += (-this.creditBalance * w * c) / weightTotal;
      if (s.capPct[slot] > 0) peak = Math.min(peak, (s.capPct[slot] * this.creditsPerTslice) / 100);
      let fair = (creditTotal * w * c) / weightTotal;
      if (fair >= peak) {
        if (weightLeft > 0) creditTotal += ((fair - peak) * weightTotal) / weightLeft;
        fair = peak;
      }
      fair /= c;
      for (const v of d.vcpus) {
        const uid = v.uid;
        if (!this.active[uid]) continue;
        let credit = this.credit[uid] + fair;
        const old = this.pri[uid];
        if (credit < 0) {
          this.pri[uid] = CSCHED_PRI_TS_OVER;
          if (credit < -this.creditsPerTslice) credit = -this.creditsPerTslice;
        } else {
          this.pri[uid] = CSCHED_PRI_TS_UNDER;
          if (credit > this.creditsPerTslice) {
            this.active[uid] = 0;
            credit /= 2;
          }
        }
        this.credit[uid] = credit;
        balance += credit;
        if (old !== this.pri[uid] && rq.onQueue(uid)) {
          rq.remove(uid);
          this.insert(v.processor, uid);
        }
      }
    }
    this.creditBalance = balance;
  }
}
