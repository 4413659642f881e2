import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IrqLines, MAX_IRQ_LINES } from "../src/index";
import { expectMachineError, fcParams } from "./helpers";

function withLog(n = 24): { irqs: IrqLines; log: number[] } {
  const irqs = new IrqLines(n);
  const log: number[] = [];
  for (let i = 0; i < n; i++) irqs.setHandler(i, (gsi) => log.push(gsi));
  return { irqs, log };
}

describe("IrqLines reset state", () => {
  it("starts edge-triggered and masked, like an IO-APIC after reset", () => {
    const irqs = new IrqLines(24);
    expect(irqs.nrLines).toBe(24);
    expect(irqs.state(5)).toEqual({
      trigger: "edge",
      masked: true,
      asserted: false,
      pending: false,
      inService: false,
      hasHandler: false,
    });
  });
});

describe("edge lines", () => {
  it("deliver a pulse at once when unmasked", () => {
    const { irqs, log } = withLog();
    irqs.unmask(4);
    irqs.pulse(4);
    irqs.pulse(4);
    expect(log).toEqual([4, 4]);
    expect(irqs.stats(4)).toEqual({
      raised: 2,
      delivered: 2,
      heldWhileMasked: 0,
      unhandled: 0,
      eois: 0,
    });
  });

  it("hold pulses while masked, coalesce them, and deliver one on unmask", () => {
    const { irqs, log } = withLog();
    irqs.pulse(3);
    irqs.pulse(3);
    expect(log).toEqual([]);
    expect(irqs.state(3).pending).toBe(true);
    irqs.unmask(3);
    expect(log).toEqual([3]);
    expect(irqs.state(3).pending).toBe(false);
    irqs.unmask(3);
    expect(log).toEqual([3]);
    expect(irqs.stats(3)).toMatchObject({ raised: 2, delivered: 1, heldWhileMasked: 2 });
  });

  it("see only rising edges: raise while high is not a new edge", () => {
    const { irqs, log } = withLog();
    irqs.unmask(1);
    irqs.raise(1);
    irqs.raise(1);
    expect(log).toEqual([1]);
    irqs.lower(1);
    irqs.raise(1);
    expect(log).toEqual([1, 1]);
    expect(irqs.state(1).asserted).toBe(true);
  });

  it("a latched edge survives lower()", () => {
    const { irqs, log } = withLog();
    irqs.raise(2);
    irqs.lower(2);
    irqs.unmask(2);
    expect(log).toEqual([2]);
  });

  it("a pulse during its own handler runs after the handler, not nested", () => {
    const irqs = new IrqLines(4);
    const log: string[] = [];
    let depth = 0;
    let first = true;
    irqs.setHandler(0, () => {
      depth++;
      log.push(`enter ${depth}`);
      if (first) {
        first = false;
        irqs.pulse(0);
      }
      log.push(`leave ${depth}`);
      depth--;
    });
    irqs.pulse(0); // latched while masked
    irqs.unmask(0);
    expect(log).toEqual(["enter 1", "leave 1", "enter 1", "leave 1"]);
    expect(irqs.stats(0).delivered).toBe(2);
  });
});

describe("level lines", () => {
  it("deliver once per assertion until EOI, then again if still asserted", () => {
    const { irqs, log } = withLog();
    irqs.configure(9, "level");
    irqs.unmask(9);
    irqs.raise(9);
    expect(log).toEqual([9]);
    expect(irqs.state(9).inService).toBe(true);
    irqs.raise(9);
    expect(log).toEqual([9]);
    irqs.eoi(9);
    expect(log).toEqual([9, 9]);
    irqs.lower(9);
    irqs.eoi(9);
    expect(log).toEqual([9, 9]);
    expect(irqs.state(9)).toMatchObject({ asserted: false, inService: false, pending: false });
    expect(irqs.stats(9)).toEqual({
      raised: 1,
      delivered: 2,
      heldWhileMasked: 0,
      unhandled: 0,
      eois: 2,
    });
  });

  it("held while masked; delivered on unmask only if still asserted", () => {
    const { irqs, log } = withLog();
    irqs.configure(10, "level");
    irqs.raise(10);
    expect(irqs.state(10).pending).toBe(true);
    irqs.unmask(10);
    expect(log).toEqual([10]);
    irqs.lower(10);
    irqs.eoi(10);
    irqs.mask(10);
    irqs.lower(10);
    irqs.raise(10);
    irqs.lower(10);
    irqs.unmask(10);
    expect(log).toEqual([10]);
    expect(irqs.stats(10).heldWhileMasked).toBe(2);
  });

  it("a handler that EOIs synchronously while the device is serviced gets one call per assertion", () => {
    const irqs = new IrqLines(2);
    irqs.configure(1, "level");
    let device = 3; // three pending conditions in the device
    let calls = 0;
    irqs.setHandler(1, (gsi) => {
      calls++;
      device--;
      if (device === 0) irqs.lower(gsi);
      irqs.eoi(gsi);
    });
    irqs.unmask(1);
    irqs.raise(1);
    expect(calls).toBe(3);
    expect(irqs.state(1).inService).toBe(false);
  });

  it("an interrupt storm (EOI without servicing) is a MachineError, not a hang", () => {
    const irqs = new IrqLines(2);
    irqs.configure(0, "level");
    irqs.setHandler(0, (gsi) => irqs.eoi(gsi));
    irqs.unmask(0);
    expectMachineError(() => irqs.raise(0), "IRQ_STORM");
    // The line is usable afterwards.
    irqs.setHandler(0, () => {});
    irqs.lower(0);
    irqs.eoi(0);
    expect(irqs.state(0).inService).toBe(false);
  });

  it("configure resets latched and in-service state", () => {
    const { irqs, log } = withLog();
    irqs.configure(6, "level");
    irqs.unmask(6);
    irqs.raise(6);
    irqs.configure(6, "edge");
    expect(irqs.state(6)).toMatchObject({
      trigger: "edge",
      inService: false,
      pending: false,
      asserted: true,
    });
    irqs.configure(6, "level");
    expect(log).toEqual([6]);
    irqs.eoi(6);
    expect(log).toEqual([6, 6]);
  });
});

describe("IrqLines handlers and errors", () => {
  it("counts deliveries with no handler as unhandled and drops them", () => {
    const irqs = new IrqLines(4);
    irqs.unmask(2);
    irqs.pulse(2);
    expect(irqs.stats(2)).toMatchObject({ delivered: 0, unhandled: 1 });
    expect(irqs.state(2).pending).toBe(false);
    const log: number[] = [];
    irqs.setHandler(2, (g) => log.push(g));
    irqs.pulse(2);
    irqs.setHandler(2, null);
    irqs.pulse(2);
    expect(log).toEqual([2]);
    expect(irqs.state(2).hasHandler).toBe(false);
  });

  it("a throwing handler leaves the line usable", () => {
    const irqs = new IrqLines(1);
    irqs.setHandler(0, () => {
      throw new Error("boom");
    });
    irqs.unmask(0);
    expect(() => irqs.pulse(0)).toThrow("boom");
    const log: number[] = [];
    irqs.setHandler(0, (g) => log.push(g));
    irqs.pulse(0);
    expect(log).toEqual([0]);
  });

  it("refuses lines that do not exist and bad configuration", () => {
    const irqs = new IrqLines(24);
    const calls: [string, () => unknown][] = [
      ["raise", () => irqs.raise(24)],
      ["lower", () => irqs.lower(-1)],
      ["pulse", () => irqs.pulse(1.5)],
      ["mask", () => irqs.mask(24)],
      ["unmask", () => irqs.unmask(24)],
      ["eoi", () => irqs.eoi(24)],
      ["configure", () => irqs.configure(24, "edge")],
      ["setHandler", () => irqs.setHandler(24, null)],
      ["stats", () => irqs.stats(24)],
      ["state", () => irqs.state(Number.NaN)],
    ];
    for (const [, fn] of calls) expectMachineError(fn, "IRQ_BAD_LINE");
    expectMachineError(() => irqs.configure(0, "both" as never), "IRQ_BAD_TRIGGER");
    for (const n of [0, 1.5, MAX_IRQ_LINES + 1]) {
      expectMachineError(() => new IrqLines(n), "IRQ_BAD_COUNT");
    }
  });
});

describe("IrqLines against a reference model", () => {
  it("random device and hypervisor actions deliver exactly as the model says", () => {
    const op = fc.record({
      k: fc.constantFrom(
        "raise",
        "lower",
        "pulse",
        "mask",
        "unmask",
        "eoi",
        "edge",
        "level",
        "handler",
        "nohandler",
      ),
      gsi: fc.integer({ min: 0, max: 2 }),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const irqs = new IrqLines(3);
        const got: number[] = [];
        const handler = (g: number) => got.push(g);
        const ref = [0, 1, 2].map(() => ({
          level: false,
          masked: true,
          asserted: false,
          pending: false,
          inService: false,
          handler: false,
          delivered: 0,
          unhandled: 0,
        }));
        const want: number[] = [];
        const tryDeliver = (g: number) => {
          const r = ref[g];
          if (r.masked) return;
          const due = r.level ? r.asserted && !r.inService : r.pending;
          if (!due) return;
          if (!r.handler) {
            r.pending = false;
            r.unhandled++;
            return;
          }
          if (r.level) r.inService = true;
          else r.pending = false;
          r.delivered++;
          want.push(g);
        };
        const raise = (g: number) => {
          const r = ref[g];
          if (r.asserted) return;
          r.asserted = true;
          if (!r.level) r.pending = true;
          tryDeliver(g);
        };
        for (const { k, gsi: g } of ops) {
          const r = ref[g];
          switch (k) {
            case "raise":
              irqs.raise(g);
              raise(g);
              break;
            case "lower":
              irqs.lower(g);
              r.asserted = false;
              break;
            case "pulse":
              irqs.pulse(g);
              raise(g);
              r.asserted = false;
              break;
            case "mask":
              irqs.mask(g);
              r.masked = true;
              break;
            case "unmask":
              irqs.unmask(g);
              r.masked = false;
              tryDeliver(g);
              break;
            case "eoi":
              irqs.eoi(g);
              r.inService = false;
              tryDeliver(g);
              break;
            case "edge":
            case "level":
              irqs.configure(g, k);
              r.level = k === "level";
              r.pending = false;
              r.inService = false;
              break;
            case "handler":
              irqs.setHandler(g, handler);
              r.handler = true;
              break;
            case "nohandler":
              irqs.setHandler(g, null);
              r.handler = false;
              break;
          }
          expect(got).toEqual(want);
          for (let i = 0; i < 3; i++) {
            const s = irqs.state(i);
            const m = ref[i];
            expect(s).toEqual({
              trigger: m.level ? "level" : "edge",
              masked: m.masked,
              asserted: m.asserted,
              pending: m.level ? m.asserted && !m.inService : m.pending,
              inService: m.inService,
              hasHandler: m.handler,
            });
            expect(irqs.stats(i)).toMatchObject({ delivered: m.delivered, unhandled: m.unhandled });
          }
        }
      }),
      fcParams(200),
    );
  });
});
