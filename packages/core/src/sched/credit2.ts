/*
 * The credit2 scheduler (Xen's xen/common/sched/credit2.c, sched=credit2): credits are
 * nanoseconds that burn faster for lighter domains (by max weight / weight); the queue runs
 * the vCPU with most credit; when the best candidate has no credit left, every vCPU of the
 * run queue gets CSCHED2_CREDIT_INIT more. Slices last until the runner's credit meets the
 * next waiter's, within [CSCHED2_MIN_TIMER, CSCHED2_MAX_TIMER].
 *
 * Invariants: each run queue is sorted by credit, highest first (credits of queued vCPUs
 * only change together, at a reset, which keeps the order); a queued vCPU sits on the
 * queue of its `processor`'s run queue. With runqueue "machine" (the default, as Xen's
 * per-socket queue on a one-socket host) all pCPUs share one queue; with "cpu" each pCPU
 * has its own and idle pCPUs steal.
 */
import { finishPick, firstEligible, growTo, KEEP_PREV, takePrev } from "./policy-common";
import type { Policy, SchedCore } from "./scheduler";

export const CSCHED2_CREDIT_INIT = 10_000_000;
export const CSCHED2_CREDIT_MIN = -CSCHED2_CREDIT_INIT;
export const CSCHED2_MIN_TIMER = 500_000;
export const CSCHED2_MAX_TIMER = CSCHED2_CREDIT_INIT;
export const CSCHED2_CARRYOVER_MAX = CSCHED2_MIN_TIMER;
export const CSCHED2_MIGRATE_RESIST = 500_000;

export interface Credit2Options {
  /** One run queue for the whole machine (default) or one per pCPU. */
  runqueue?: "machine" | "cpu";
  /** Minimum run before a preemption, µs (default 1000; 0 = off). */
  ratelimitUs?: number;
}

export class Credit2Policy implements Policy {
  readonly name = "credit2";
  private s!: SchedCore;
  private n = 0;
  private readonly perCpu: boolean;
  private readonly ratelimitNs: number;
  private credit = new Float64Array(0);
  private yielding = new Uint8Array(0);
  private maxWeight = 256;
  private readonly uids: number[] = [];

  constructor(options: Credit2Options = {}) {
    this.perCpu = (options.runqueue ?? "machine") === "cpu";
    this.ratelimitNs = (options.ratelimitUs ?? 1000) * 1000;
  }

  queues(nrCpus: number): number {
    return this.perCpu ? nrCpus : 1;
  }

  attach(core: SchedCore): void {
    this.s = core;
    this.n = core.nrCpus;
  }

  creditOf(uid: number): number {
    return this.credit[uid];
  }

  private rqOf(cpu: number): number {
    return this.perCpu ? cpu : 0;
  }

  addVcpu(uid: number): void {
    this.credit = growTo(this.credit, uid);
    this.yielding = growTo(this.yielding, uid);
    this.credit[uid] = CSCHED2_CREDIT_INIT;
    this.yielding[uid] = 0;
    this.uids.push(uid);
  }

  private readonly insert = (cpu: number, uid: number): void => {
    this.s.hv.vcpus[uid].processor = cpu;
    this.s.rq.insertSorted(this.rqOf(cpu), uid, this.credit);
  };

  wake(uid: number): number {
    const cpu = this.s.placeCpu(uid);
    this.insert(cpu, uid);
    return this.tickleFor(uid, cpu);
  }

  /** Xen's runq_tickle: an idle pCPU of the queue, else the runner with least credit if we beat it. */
  private tickleFor(uid: number, cpu: number): number {
    const s = this.s;
    if (s.currUid[cpu] < 0) return cpu;
    const q = this.rqOf(cpu);
    let best = -1;
    let lowest = Number.POSITIVE_INFINITY;
    const now = s.clock.now;
    for (let c = 0; c < this.n; c++) {
      if (this.rqOf(c) !== q || !s.canRun(uid, c)) continue;
      const cur = s.currUid[c];
      if (cur < 0) {
        if (!s.softirq[c]) return c;
        continue;
      }
      s.account(cur, now);
      if (this.credit[cur] < lowest) {
        lowest = this.credit[cur];
        best = c;
      }
    }
    if (best >= 0 && this.credit[uid] > lowest + CSCHED2_MIGRATE_RESIST) return best;
    return this.perCpu ? s.idleCpuFor(uid) : -1;
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
    const w = this.s.weight[this.s.dom[uid]];
    this.credit[uid] -= w > 0 ? (ns * this.maxWeight) / w : ns;
  }

  pick(cpu: number, now: number, prev: number, requeue: boolean): number {
    const s = this.s;
    const q = this.rqOf(cpu);
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
    let next = firstEligible(s, q, yielder, cpu);
    if (next < 0 && this.perCpu) {
      let bestCredit = Number.NEGATIVE_INFINITY;
      for (let i = 1; i < this.n; i++) {
        const u = firstEligible(s, (cpu + i) % this.n, -1, cpu);
        if (u >= 0 && this.credit[u] > bestCredit) {
          bestCredit = this.credit[u];
          next = u;
        }
      }
      if (next >= 0) s.cMigrations.value++;
    }
    next = finishPick(s, next, yielder);
    if (next < 0) return -1;
    s.hv.vcpus[next].processor = cpu;
    if (this.credit[next] <= 0) this.resetCredit(q, next, now);
    // Run until our credit meets the next waiter's, within the timer bounds.
    let rt = this.credit[next];
    const h = s.rq.head[q]; // Xen looks at the queue's head, runnable or not
    if (h >= 0 && this.credit[h] > 0) rt -= this.credit[h];
    const w = s.weight[s.dom[next]];
    let time = rt > 0 ? (rt * w) / this.maxWeight : 0;
    if (time < CSCHED2_MIN_TIMER) time = CSCHED2_MIN_TIMER;
    else if (time > CSCHED2_MAX_TIMER) time = CSCHED2_MAX_TIMER;
    s.slice = time;
    return next;
  }

  /** Xen's reset_credit: every vCPU of the run queue moves up by CSCHED2_CREDIT_INIT. */
  private resetCredit(q: number, snext: number, now: number): void {
    const s = this.s;
    const add =
      this.credit[snext] <= CSCHED2_CREDIT_MIN ? 2 * CSCHED2_CREDIT_INIT : CSCHED2_CREDIT_INIT;
    const max = CSCHED2_CREDIT_INIT + CSCHED2_CARRYOVER_MAX;
    for (const uid of this.uids) {
      if (s.dom[uid] < 0 || s.domains[s.dom[uid]] === undefined) continue;
      if (this.rqOf(s.hv.vcpus[uid].processor) !== q) continue;
      if (s.onCpu[uid] >= 0) s.account(uid, now);
      let c = this.credit[uid] + add;
      if (c > max) c = max;
      this.credit[uid] = c;
    }
  }

  tick(): void {}

  paramsChanged(): void {
    let m = 1;
    const s = this.s;
    for (let slot = 0; slot < s.domains.length; slot++) {
      if (s.domains[slot] !== undefined && s.weight[slot] > m) m = s.weight[slot];
    }
    this.maxWeight = m;
  }
}
