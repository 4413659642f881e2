/*
 * Interrupt lines: numbered global system interrupts (GSIs) as an x86 IO-APIC presents
 * them. Each line is edge- or level-triggered, masked or not, and has at most one handler,
 * installed by the hypervisor (apic-hooks routes lines into event channels).
 *
 * Invariants:
 * - Lines start as after an IO-APIC reset: edge-triggered and masked.
 * - A line's input is a level (`asserted`). raise() and lower() drive it; pulse() is both.
 * - Edge: a rising input latches `pending`. Delivery clears it. An edge that arrives while
 *   masked stays pending and is delivered on unmask; several coalesce into one, as Linux's
 *   lazy disable resends one (kernel/irq/resend.c). A bare 82093AA pin would drop it.
 * - Level: delivery sets `inService` (the IO-APIC's Remote IRR); the line is not delivered
 *   again until eoi(). After eoi(), on unmask, or on a rising input, a line whose input is
 *   still asserted, unmasked and not in service is delivered again.
 * - A handler runs synchronously. If it makes its own line deliverable again (eoi while the
 *   device still asserts), the next delivery runs after it returns, not nested inside it.
 */

import { MachineError } from "./errors";

/** Largest number of lines an IrqLines models. */
export const MAX_IRQ_LINES = 4096;

/** How a line signals. */
export type IrqTrigger = "edge" | "level";

/** Called on delivery with the line number. */
export type IrqHandler = (gsi: number) => void;

/** Counters of one line. */
export interface IrqLineStats {
  /** Rising edges of the input (raise from low, or pulse). */
  raised: number;
  /** Handler calls. */
  delivered: number;
  /** Rising edges that found the line masked (held pending, or for level, asserted). */
  heldWhileMasked: number;
  /** Deliveries with no handler installed (dropped). */
  unhandled: number;
  /** eoi() calls. */
  eois: number;
}

/** A line's state, for tests and tools. */
export interface IrqLineState {
  trigger: IrqTrigger;
  masked: boolean;
  asserted: boolean;
  /** Edge: latched, waiting for delivery. Level: asserted and not in service. */
  pending: boolean;
  inService: boolean;
  hasHandler: boolean;
}

/** Consecutive redeliveries of one line inside one call that mean an interrupt storm. */
const STORM_LIMIT = 100_000;

const F_LEVEL = 1;
const F_MASKED = 2;
const F_ASSERTED = 4;
const F_PENDING = 8;
const F_IN_SERVICE = 16;
const F_RUNNING = 32;
const F_AGAIN = 64;

const C_RAISED = 0;
const C_DELIVERED = 1;
const C_HELD = 2;
const C_UNHANDLED = 3;
const C_EOIS = 4;
const NR_COUNTERS = 5;

export class IrqLines {
  /** Lines 0 .. nrLines - 1. */
  readonly nrLines: number;
  private readonly flags: Uint8Array;
  private readonly counters: Float64Array;
  private readonly handlers: (IrqHandler | null)[];

  constructor(nrLines: number) {
    if (!(Number.isInteger(nrLines) && nrLines >= 1 && nrLines <= MAX_IRQ_LINES)) {
      throw new MachineError(
        "IRQ_BAD_COUNT",
        `the number of interrupt lines must be a whole number from 1 to ${MAX_IRQ_LINES}, got ${nrLines}; ` +
          "one IO-APIC has 24",
      );
    }
    this.nrLines = nrLines;
    this.flags = new Uint8Array(nrLines).fill(F_MASKED);
    this.counters = new Float64Array(nrLines * NR_COUNTERS);
    this.handlers = new Array(nrLines).fill(null);
  }

  private check(gsi: number): void {
    if (!(gsi >>> 0 === gsi && gsi < this.nrLines)) {
      throw new MachineError(
        "IRQ_BAD_LINE",
        `interrupt line ${gsi} does not exist (lines are 0 .. ${this.nrLines - 1}); ` +
          "use a GSI the machine was built with",
      );
    }
  }

  /** Sets a line's trigger mode. Clears any latched edge and in-service state. */
  configure(gsi: number, trigger: IrqTrigger): void {
    this.check(gsi);
    if (trigger !== "edge" && trigger !== "level") {
      throw new MachineError(
        "IRQ_BAD_TRIGGER",
        `trigger must be "edge" or "level", got ${String(trigger)}`,
      );
    }
    let f = this.flags[gsi] & ~(F_LEVEL | F_PENDING | F_IN_SERVICE);
    if (trigger === "level") f |= F_LEVEL;
    this.flags[gsi] = f;
  }

  /** Installs (or with null removes) the handler of a line. */
  setHandler(gsi: number, handler: IrqHandler | null): void {
    this.check(gsi);
    this.handlers[gsi] = handler;
  }

  mask(gsi: number): void {
    this.check(gsi);
    this.flags[gsi] |= F_MASKED;
  }

  /** Unmasks a line and delivers what it holds: a latched edge, or an asserted level. */
  unmask(gsi: number): void {
    this.check(gsi);
    this.flags[gsi] &= ~F_MASKED;
    this.deliver(gsi);
  }

  /** Drives the line's input high (a device asserts it). */
  raise(gsi: number): void {
    this.check(gsi);
    const f = this.flags[gsi];
    if ((f & F_ASSERTED) !== 0) return;
    this.counters[gsi * NR_COUNTERS + C_RAISED]++;
    if ((f & F_MASKED) !== 0) this.counters[gsi * NR_COUNTERS + C_HELD]++;
    this.flags[gsi] = (f & F_LEVEL) !== 0 ? f | F_ASSERTED : f | F_ASSERTED | F_PENDING;
    this.deliver(gsi);
  }

  /** Drives the line's input low (a device deasserts it). A latched edge stays latched. */
  lower(gsi: number): void {
    this.check(gsi);
    this.flags[gsi] &= ~F_ASSERTED;
  }

  /** A short pulse: raise then lower. An edge-triggered device's interrupt. */
  pulse(gsi: number): void {
    try {
      this.raise(gsi);
    } finally {
      this.flags[gsi] &= ~F_ASSERTED;
    }
  }

  /** End of interrupt for a level line: clears in-service, redelivers if still asserted. */
  eoi(gsi: number): void {
    this.check(gsi);
    this.counters[gsi * NR_COUNTERS + C_EOIS]++;
    this.flags[gsi] &= ~F_IN_SERVICE;
    this.deliver(gsi);
  }

  private deliverable(f: number): boolean {
    if ((f & F_MASKED) !== 0) return false;
    if ((f & F_LEVEL) === 0) return (f & F_PENDING) !== 0;
    return (f & (F_ASSERTED | F_IN_SERVICE)) === F_ASSERTED;
  }

  private deliver(gsi: number): void {
    if (!this.deliverable(this.flags[gsi])) return;
    if ((this.flags[gsi] & F_RUNNING) !== 0) {
      this.flags[gsi] |= F_AGAIN;
      return;
    }
    let rounds = 0;
    do {
      const f = this.flags[gsi] & ~F_AGAIN;
      if (!this.deliverable(f)) {
        this.flags[gsi] = f;
        return;
      }
      if (++rounds > STORM_LIMIT) {
        this.flags[gsi] = f;
        throw new MachineError(
          "IRQ_STORM",
          `interrupt line ${gsi} was redelivered ${STORM_LIMIT} times inside one call: its ` +
            "handler acknowledges it while the device keeps asserting it; clear the device's " +
            "condition (or mask the line) before eoi()",
        );
      }
      const handler = this.handlers[gsi];
      if (handler === null) {
        this.flags[gsi] = f & ~F_PENDING;
        this.counters[gsi * NR_COUNTERS + C_UNHANDLED]++;
        return;
      }
      this.flags[gsi] = ((f & F_LEVEL) !== 0 ? f | F_IN_SERVICE : f & ~F_PENDING) | F_RUNNING;
      this.counters[gsi * NR_COUNTERS + C_DELIVERED]++;
      try {
        handler(gsi);
      } finally {
        this.flags[gsi] &= ~F_RUNNING;
      }
    } while ((this.flags[gsi] & F_AGAIN) !== 0);
  }

  /** Whether a level line is in service (Remote IRR), without building a state object. */
  inService(gsi: number): boolean {
    this.check(gsi);
    return (this.flags[gsi] & F_IN_SERVICE) !== 0;
  }

  /** The counters of a line. */
  stats(gsi: number): IrqLineStats {
    this.check(gsi);
    const b = gsi * NR_COUNTERS;
    const c = this.counters;
    return {
      raised: c[b + C_RAISED],
      delivered: c[b + C_DELIVERED],
      heldWhileMasked: c[b + C_HELD],
      unhandled: c[b + C_UNHANDLED],
      eois: c[b + C_EOIS],
    };
  }

  /** The state of a line. */
  state(gsi: number): IrqLineState {
    this.check(gsi);
    const f = this.flags[gsi];
    const level = (f & F_LEVEL) !== 0;
    return {
      trigger: level ? "level" : "edge",
      masked: (f & F_MASKED) !== 0,
      asserted: (f & F_ASSERTED) !== 0,
      pending: level ? (f & (F_ASSERTED | F_IN_SERVICE)) === F_ASSERTED : (f & F_PENDING) !== 0,
      inService: (f & F_IN_SERVICE) !== 0,
      hasHandler: this.handlers[gsi] !== null,
    };
  }
}
