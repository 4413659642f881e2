/*
 * A plain round robin (sched=rr): one FIFO per pCPU, a fixed slice, no weights (every
 * runnable vCPU gets the same turn; caps still apply through the core's budget). An idle
 * pCPU takes the first runnable vCPU from the longest other queue.
 *
 * Invariant: a queued vCPU sits on the FIFO of its `processor`.
 */
import { finishPick, firstEligible, growTo, takePrev } from "./policy-common";
import type { Policy, SchedCore } from "./scheduler";

export interface RoundRobinOptions {
  /** Time slice, ms (default 30). */
  sliceMs?: number;
}

export class RoundRobinPolicy implements Policy {
  readonly name = "rr";
  private s!: SchedCore;
  private n = 0;
  private readonly sliceNs: number;
  private yielding = new Uint8Array(0);

  constructor(options: RoundRobinOptions = {}) {
    this.sliceNs = (options.sliceMs ?? 30) * 1_000_000;
  }

  queues(nrCpus: number): number {
    return nrCpus;
  }

  attach(core: SchedCore): void {
    this.s = core;
    this.n = core.nrCpus;
  }

  addVcpu(uid: number): void {
    this.yielding = growTo(this.yielding, uid);
    this.yielding[uid] = 0;
  }

  private readonly insert = (cpu: number, uid: number): void => {
    this.s.hv.vcpus[uid].processor = cpu;
    this.s.rq.pushTail(cpu, uid);
  };

  wake(uid: number): number {
    const cpu = this.s.placeCpu(uid);
    this.insert(cpu, uid);
    return this.tickle(uid);
  }

  tickle(uid: number): number {
    const cpu = this.s.hv.vcpus[uid].processor;
    return this.s.currUid[cpu] < 0 ? cpu : this.s.idleCpuFor(uid);
  }

  sleep(uid: number): void {
    this.s.rq.remove(uid);
  }

  yield(uid: number): void {
    this.yielding[uid] = 1;
  }

  burn(): void {}

  pick(cpu: number, now: number, prev: number, requeue: boolean): number {
    const s = this.s;
    // No rate limit in rr: prev never keeps the pCPU.
    const yielder = takePrev(s, cpu, now, prev, requeue, this.yielding, 0, this.insert);
    let next = firstEligible(s, cpu, yielder, cpu);
    if (next < 0) {
      let longest = 0;
      for (let i = 1; i < this.n; i++) {
        const peer = (cpu + i) % this.n;
        if (s.rq.len[peer] <= longest) continue;
        const u = firstEligible(s, peer, -1, cpu);
        if (u >= 0) {
          longest = s.rq.len[peer];
          next = u;
        }
      }
      if (next >= 0) s.cMigrations.value++;
    }
    next = finishPick(s, next, yielder);
    if (next >= 0) s.slice = this.sliceNs;
    return next;
  }

  tick(): void {}

  paramsChanged(): void {}
}
