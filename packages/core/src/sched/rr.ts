/*
 * A plain round robin (sched=rr): one FIFO per pCPU, a fixed slice, no weights (every
 * runnable vCPU gets the same turn; caps still apply through the core's budget). An idle
 * pCPU takes the first runnable vCPU from the longest other queue.
 *
 * Invariant: a queued vCPU sits on the FIFO of its `processor`.
 */
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
    if (uid >= this.yielding.length) {
      let cap = Math.max(64, this.yielding.length);
      while (cap <= uid) cap *= 2;
      const y = new Uint8Array(cap);
      y.set(this.yielding);
      this.yielding = y;
    }
    this.yielding[uid] = 0;
  }

  private insert(cpu: number, uid: number): void {
    this.s.hv.vcpus[uid].processor = cpu;
    this.s.rq.pushTail(cpu, uid);
  }

  wake(uid: number): number {
    const cpu = this.s.placeCpu(uid);
    this.insert(cpu, uid);
    return this.tickle(uid);
  }

  tickle(uid: number): number {
    const cpu = this.s.hv.vcpus[uid].processor;
    return this.s.currUid[cpu] < 0 ? cpu : this.s.idleCpu();
  }

  sleep(uid: number): void {
    this.s.rq.remove(uid);
  }

  yield(uid: number): void {
    this.yielding[uid] = 1;
  }

  burn(): void {}

  private first(q: number, skip: number): number {
    const rq = this.s.rq;
    for (let u = rq.head[q]; u >= 0; u = rq.next[u]) {
      if (u !== skip && this.s.eligible(u)) return u;
    }
    return -1;
  }

  pick(cpu: number, _now: number, prev: number, requeue: boolean): number {
    const s = this.s;
    let yielder = -1;
    if (prev >= 0 && requeue) {
      if (this.yielding[prev]) {
        yielder = prev;
        this.yielding[prev] = 0;
      }
      this.insert(cpu, prev);
    }
    let next = this.first(cpu, yielder);
    if (next < 0) {
      let longest = 0;
      for (let i = 1; i < this.n; i++) {
        const peer = (cpu + i) % this.n;
        if (s.rq.len[peer] <= longest) continue;
        const u = this.first(peer, -1);
        if (u >= 0) {
          longest = s.rq.len[peer];
          next = u;
        }
      }
      if (next >= 0) s.cMigrations.value++;
    }
    if (next < 0 && yielder >= 0 && s.eligible(yielder)) next = yielder;
    if (next < 0) return -1;
    s.rq.remove(next);
    s.slice = this.sliceNs;
    return next;
  }

  tick(): void {}

  paramsChanged(): void {}
}
