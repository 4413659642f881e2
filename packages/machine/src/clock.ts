/*
 * The machine's clock: virtual time in nanoseconds (a plain number) and an event queue.
 *
 * Invariants: `now` never goes backwards and changes only when an event runs or runUntil
 * ends. Events run in order of time, and events due at the same time run in the order they
 * were scheduled, so a run is reproducible. The queue is a binary min-heap of slot indices
 * over typed arrays; `pos[slot]` is the slot's index in the heap, or -1 when the slot is free.
 * A handle names one scheduling (slot and generation), so a stale handle cancels nothing.
 * Nothing here reads the wall clock.
 */

import { MachineError } from "./errors";

/** Names one scheduled event; pass it to cancel. Never 0. */
export type TimerHandle = number;

/** An event's action; gets the time it runs at (= clock.now). */
export type ClockCallback = (nowNs: number) => void;

const SLOT_BITS = 2 ** 26;

export class Clock {
  private nowNs = 0;
  private seq = 0;
  private size = 0;
  private cap = 0;
  private at = new Float64Array(0);
  private order = new Float64Array(0);
  private gen = new Float64Array(0);
  private pos = new Int32Array(0);
  private heap = new Int32Array(0);
  private cbs: (ClockCallback | undefined)[] = [];
  private freeSlots: number[] = [];
  private running = false;
  /** Events run so far. */
  eventsRun = 0;

  constructor() {
    this.grow(64);
  }

  /** Virtual time now, in nanoseconds. */
  get now(): number {
    return this.nowNs;
  }

  /** Events waiting. */
  get pendingEvents(): number {
    return this.size;
  }

  /** Time of the earliest waiting event, or Infinity. */
  get nextEventNs(): number {
    return this.size === 0 ? Number.POSITIVE_INFINITY : this.at[this.heap[0]];
  }

  private grow(cap: number): void {
    if (cap > SLOT_BITS) {
      throw new MachineError(
        "CLOCK_FULL",
        `more than ${SLOT_BITS} events are waiting; something schedules without ever running the clock`,
      );
    }
    const at = new Float64Array(cap);
    at.set(this.at);
    const order = new Float64Array(cap);
    order.set(this.order);
    const gen = new Float64Array(cap).fill(1);
    gen.set(this.gen);
    const pos = new Int32Array(cap).fill(-1);
    pos.set(this.pos);
    const heap = new Int32Array(cap);
    heap.set(this.heap);
    for (let s = cap - 1; s >= this.cap; s--) this.freeSlots.push(s);
    this.at = at;
    this.order = order;
    this.gen = gen;
    this.pos = pos;
    this.heap = heap;
    this.cap = cap;
  }

  private less(a: number, b: number): boolean {
    const ta = this.at[a];
    const tb = this.at[b];
    return ta < tb || (ta === tb && this.order[a] < this.order[b]);
  }

  private place(i: number, slot: number): void {
    this.heap[i] = slot;
    this.pos[slot] = i;
  }

  private siftUp(i: number, slot: number): void {
    while (i > 0) {
      const p = (i - 1) >>> 1;
      const ps = this.heap[p];
      if (!this.less(slot, ps)) break;
      this.place(i, ps);
      i = p;
    }
    this.place(i, slot);
  }

  private siftDown(i: number, slot: number): void {
    const n = this.size;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      let cs = this.heap[c];
      if (c + 1 < n) {
        const rs = this.heap[c + 1];
        if (this.less(rs, cs)) {
          c++;
          cs = rs;
        }
      }
      if (!this.less(cs, slot)) break;
      this.place(i, cs);
      i = c;
    }
    this.place(i, slot);
  }

  /** Takes the slot at heap index i out of the heap. */
  private removeAt(i: number): void {
    const last = this.heap[--this.size];
    if (i < this.size) {
      if (i > 0 && this.less(last, this.heap[(i - 1) >>> 1])) this.siftUp(i, last);
      else this.siftDown(i, last);
    }
  }

  private release(slot: number): void {
    this.pos[slot] = -1;
    this.cbs[slot] = undefined;
    this.gen[slot]++;
    this.freeSlots.push(slot);
  }

  /**
   * Schedules `callback` at virtual time `atNs` (>= now). Returns a handle for cancel.
   * Clamp guest-supplied deadlines in the past to `clock.now` before calling.
   */
  schedule(atNs: number, callback: ClockCallback): TimerHandle {
    if (!(atNs >= this.nowNs && atNs < Number.POSITIVE_INFINITY)) {
      throw new MachineError(
        Number.isFinite(atNs) ? "CLOCK_PAST" : "CLOCK_BAD_TIME",
        `cannot schedule at ${atNs} ns: it must be a finite time at or after now (${this.nowNs} ns); ` +
          "clamp a deadline with Math.max(clock.now, t)",
      );
    }
    if (typeof callback !== "function") {
      throw new MachineError("CLOCK_BAD_CALLBACK", "schedule needs a callback function");
    }
    if (this.freeSlots.length === 0) this.grow(this.cap * 2);
    const slot = this.freeSlots.pop()!;
    this.at[slot] = atNs;
    this.order[slot] = this.seq++;
    this.cbs[slot] = callback;
    this.siftUp(this.size++, slot);
    return this.gen[slot] * SLOT_BITS + slot;
  }

  /** Schedules `callback` `delayNs` (>= 0) after now. */
  scheduleAfter(delayNs: number, callback: ClockCallback): TimerHandle {
    if (!(delayNs >= 0)) {
      throw new MachineError(
        "CLOCK_PAST",
        `delay ${delayNs} ns must be >= 0; the clock runs forwards only`,
      );
    }
    return this.schedule(this.nowNs + delayNs, callback);
  }

  private slotOf(handle: TimerHandle): number {
    if (!Number.isSafeInteger(handle) || handle < SLOT_BITS) return -1;
    const slot = handle % SLOT_BITS;
    if (slot >= this.cap || this.pos[slot] < 0) return -1;
    return this.gen[slot] === (handle - slot) / SLOT_BITS ? slot : -1;
  }

  /** Whether the event named by handle still waits. */
  isPending(handle: TimerHandle): boolean {
    return this.slotOf(handle) >= 0;
  }

  /** Cancels a waiting event. False if it already ran or was cancelled. */
  cancel(handle: TimerHandle): boolean {
    const slot = this.slotOf(handle);
    if (slot < 0) return false;
    this.removeAt(this.pos[slot]);
    this.release(slot);
    return true;
  }

  private enter(what: string): void {
    if (this.running) {
      throw new MachineError(
        "CLOCK_REENTRANT",
        `clock.${what} was called from inside an event; schedule a new event instead`,
      );
    }
  }

  /** Runs the earliest event (advancing now to its time). False if none waits. */
  runNext(): boolean {
    this.enter("runNext");
    return this.step();
  }

  private step(): boolean {
    if (this.size === 0) return false;
    const slot = this.heap[0];
    this.removeAt(0);
    this.nowNs = this.at[slot];
    const cb = this.cbs[slot]!;
    this.release(slot);
    this.eventsRun++;
    this.running = true;
    try {
      cb(this.nowNs);
    } finally {
      this.running = false;
    }
    return true;
  }

  /**
   * Runs every event due at or before `ns` (including ones those events schedule), then
   * sets now to `ns`. Returns the number of events run.
   */
  runUntil(ns: number): number {
    this.enter("runUntil");
    if (!(ns >= this.nowNs && ns < Number.POSITIVE_INFINITY)) {
      throw new MachineError(
        Number.isFinite(ns) ? "CLOCK_PAST" : "CLOCK_BAD_TIME",
        `cannot run until ${ns} ns: it must be a finite time at or after now (${this.nowNs} ns)`,
      );
    }
    let n = 0;
    while (this.size > 0 && this.at[this.heap[0]] <= ns) {
      this.step();
      n++;
    }
    this.nowNs = ns;
    return n;
  }
}
