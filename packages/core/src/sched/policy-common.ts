/*
 * What the policies (credit, credit2, rr) do the same way, written once: growing per-vCPU
 * typed arrays, scanning a run queue for the first vCPU that may run, the start of Xen's
 * do_schedule for the previous vCPU (yield, rate limit, requeue), and the end of it (fall
 * back to the yielder, take the choice off its queue).
 *
 * Invariant: none of these allocates on the decision path (only growTo does, and only when
 * a new vCPU uid exceeds the arrays), and none changes run queues except through `insert`
 * and `rq.remove`, so each policy's own queue invariant still holds.
 */
import type { SchedCore } from "./scheduler";

type TypedArray = Float64Array | Int32Array | Int8Array | Uint8Array;

/** A copy of `a` long enough for index `uid` (doubling from 64), or `a` itself if it is. */
export function growTo<T extends TypedArray>(a: T, uid: number): T {
  if (uid < a.length) return a;
  let cap = Math.max(64, a.length);
  while (cap <= uid) cap *= 2;
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

/**
 * The first vCPU on queue `q` that may run on pCPU `cpu` (its hard affinity holds `cpu`, and,
 * in a soft balance step, its soft affinity too) and that core.eligible() accepts, other than
 * `skip`; -1 if none.
 */
export function firstEligible(
  s: SchedCore,
  q: number,
  skip: number,
  cpu: number,
  softStep = false,
): number {
  const rq = s.rq;
  for (let u = rq.head[q]; u >= 0; u = rq.next[u]) {
    if (u === skip || u === s.movedAway || !s.canRun(u, cpu)) continue;
    if (softStep && !s.prefers(u, cpu)) continue;
    if (s.eligible(u)) return u;
  }
  return -1;
}

/** Returned by takePrev when the previous vCPU keeps the pCPU under the rate limit. */
export const KEEP_PREV = -2;

/**
 * The start of do_schedule for `prev` (which the core has charged): a vCPU that yielded is
 * requeued and returned as the yielder (so the pick can skip it); one that has run less than
 * `ratelimitNs` and may still run keeps the pCPU (KEEP_PREV, with core.slice set to the rest
 * of its rate-limit window); any other vCPU that wants to run is requeued. Returns the
 * yielder's uid, -1, or KEEP_PREV. A `prev` whose affinity changed while it ran is placed
 * again (Xen's vcpu_migrate_finish): if placeCpu puts it on another pCPU (always so when its
 * hard mask no longer holds `cpu`), it is queued there and that pCPU asked to decide.
 */
export function takePrev(
  s: SchedCore,
  cpu: number,
  now: number,
  prev: number,
  requeue: boolean,
  yielding: Uint8Array,
  ratelimitNs: number,
  insert: (cpu: number, uid: number) => void,
): number {
  if (prev < 0) return -1;
  const migrating = s.migrating[prev] === 1;
  s.migrating[prev] = 0;
  if (!requeue) return -1;
  if (migrating || !s.canRun(prev, cpu)) {
    const to = s.placeCpu(prev);
    if (to !== cpu) {
      yielding[prev] = 0;
      s.movedAway = prev;
      insert(to, prev);
      s.raiseSoftirq(to);
      return -1;
    }
  }
  let yielder = -1;
  if (yielding[prev]) {
    yielder = prev;
    yielding[prev] = 0;
  } else if (ratelimitNs > 0 && s.eligible(prev)) {
    const ran = now - s.runStart[cpu];
    if (ran < ratelimitNs) {
      s.slice = ratelimitNs - ran;
      return KEEP_PREV;
    }
  }
  insert(cpu, prev);
  return yielder;
}

/**
 * The end of a pick: with nothing else to run, a yielder that may still run runs again.
 * Takes the chosen vCPU off its queue and returns it, or -1 to idle.
 */
export function finishPick(s: SchedCore, next: number, yielder: number): number {
  let u = next;
  if (u < 0 && yielder >= 0 && s.eligible(yielder)) u = yielder; // on this pCPU's queue
  if (u < 0) return -1;
  s.rq.remove(u);
  return u;
}
