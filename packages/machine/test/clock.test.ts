import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Clock } from "../src/index";
import { expectMachineError, fcParams } from "./helpers";

describe("Clock", () => {
  it("runs events in time order, ties in scheduling order, and advances now", () => {
    const clock = new Clock();
    const log: string[] = [];
    clock.schedule(30, (t) => log.push(`c@${t}`));
    clock.schedule(10, (t) => log.push(`a@${t}`));
    clock.schedule(30, (t) => log.push(`d@${t}`));
    clock.schedule(10, (t) => log.push(`b@${t}`));
    expect(clock.pendingEvents).toBe(4);
    expect(clock.nextEventNs).toBe(10);
    expect(clock.runNext()).toBe(true);
    expect(clock.now).toBe(10);
    expect(clock.runUntil(100)).toBe(3);
    expect(log).toEqual(["a@10", "b@10", "c@30", "d@30"]);
    expect(clock.now).toBe(100);
    expect(clock.runNext()).toBe(false);
    expect(clock.nextEventNs).toBe(Number.POSITIVE_INFINITY);
    expect(clock.eventsRun).toBe(4);
  });

  it("runUntil runs events that events schedule within the window, and stops at its bound", () => {
    const clock = new Clock();
    const log: number[] = [];
    const tick = (t: number) => {
      log.push(t);
      clock.scheduleAfter(25, tick);
    };
    clock.schedule(0, tick);
    expect(clock.runUntil(100)).toBe(5);
    expect(log).toEqual([0, 25, 50, 75, 100]);
    expect(clock.pendingEvents).toBe(1);
    expect(clock.nextEventNs).toBe(125);
    // An event at now runs in the same runUntil.
    clock.schedule(100, () => log.push(-1));
    expect(clock.runUntil(100)).toBe(1);
  });

  it("cancels by handle; stale handles cancel nothing", () => {
    const clock = new Clock();
    const log: string[] = [];
    const a = clock.schedule(5, () => log.push("a"));
    const b = clock.schedule(6, () => log.push("b"));
    expect(a).not.toBe(0);
    expect(clock.isPending(a)).toBe(true);
    expect(clock.cancel(a)).toBe(true);
    expect(clock.cancel(a)).toBe(false);
    expect(clock.isPending(a)).toBe(false);
    // The slot is reused; the old handle still names nothing.
    const c = clock.schedule(7, () => log.push("c"));
    expect(c).not.toBe(a);
    expect(clock.cancel(a)).toBe(false);
    clock.runUntil(10);
    expect(log).toEqual(["b", "c"]);
    expect(clock.cancel(b)).toBe(false);
    for (const h of [0, -1, 1.5, Number.NaN, 2 ** 60]) expect(clock.cancel(h)).toBe(false);
  });

  it("refuses the past, bad times, bad callbacks and re-entry", () => {
    const clock = new Clock();
    clock.runUntil(50);
    expectMachineError(() => clock.schedule(49, () => {}), "CLOCK_PAST");
    expectMachineError(() => clock.scheduleAfter(-1, () => {}), "CLOCK_PAST");
    expectMachineError(() => clock.schedule(Number.NaN, () => {}), "CLOCK_BAD_TIME");
    expectMachineError(() => clock.schedule(Number.POSITIVE_INFINITY, () => {}), "CLOCK_BAD_TIME");
    expectMachineError(() => clock.schedule(60, null as never), "CLOCK_BAD_CALLBACK");
    expectMachineError(() => clock.runUntil(10), "CLOCK_PAST");
    expectMachineError(() => clock.runUntil(Number.NaN), "CLOCK_BAD_TIME");
    let inner: unknown;
    clock.schedule(60, () => {
      try {
        clock.runUntil(70);
      } catch (e) {
        inner = e;
      }
    });
    clock.runUntil(60);
    expect((inner as { code: string }).code).toBe("CLOCK_REENTRANT");
    clock.schedule(61, () => clock.runNext());
    expectMachineError(() => clock.runNext(), "CLOCK_REENTRANT");
    // After a throwing event the clock still runs.
    clock.schedule(62, () => {});
    expect(clock.runNext()).toBe(true);
  });

  it("agrees with a sorted reference under random schedule/cancel", () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant("s" as const), dt: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ k: fc.constant("c" as const), pick: fc.nat() }),
      fc.record({ k: fc.constant("r" as const), dt: fc.integer({ min: 0, max: 30 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const clock = new Clock();
        const ran: number[] = [];
        const ref: { at: number; id: number; h: number }[] = [];
        const expected: number[] = [];
        let id = 0;
        for (const o of ops) {
          if (o.k === "s") {
            const me = id++;
            const h = clock.schedule(clock.now + o.dt, () => ran.push(me));
            ref.push({ at: clock.now + o.dt, id: me, h });
          } else if (o.k === "c") {
            if (ref.length === 0) continue;
            const [e] = ref.splice(o.pick % ref.length, 1);
            expect(clock.cancel(e.h)).toBe(true);
          } else {
            const until = clock.now + o.dt;
            ref.sort((a, b) => a.at - b.at || a.id - b.id);
            while (ref.length > 0 && ref[0].at <= until) expected.push(ref.shift()!.id);
            clock.runUntil(until);
            expect(ran).toEqual(expected);
          }
          expect(clock.pendingEvents).toBe(ref.length);
        }
      }),
      fcParams(100),
    );
  });
});
