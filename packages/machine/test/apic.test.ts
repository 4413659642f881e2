import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  APIC_EOI,
  APIC_ID,
  APIC_IRR,
  APIC_ISR,
  APIC_LVR,
  APIC_PROCPRI,
  APIC_SPIV,
  APIC_SPIV_DIRECTED_EOI,
  APIC_TASKPRI,
  APIC_TMR,
  ApicBus,
  createMachine,
  createPlatform,
  IO_APIC_DEFAULT_BASE,
  IO_APIC_EOI,
  IO_APIC_REDTBL,
  IO_APIC_REGSEL,
  IO_APIC_RTE_DELIVERY_STATUS,
  IO_APIC_RTE_DESTMODE_LOGICAL,
  IO_APIC_RTE_LEVEL,
  IO_APIC_RTE_MASKED,
  IO_APIC_RTE_POLARITY_LOW,
  IO_APIC_RTE_REMOTE_IRR,
  IO_APIC_WINDOW,
  IoApic,
  LocalApic,
  MSI_WINDOW_BASE,
} from "../src/index";
import { MiB, route } from "./device-helpers";
import { expectMachineError, fcParams } from "./helpers";

function plat(cpus = 2) {
  const m = createMachine({ ramBytes: 16 * MiB, cpus, seed: 1 });
  return { m, p: createPlatform(m) };
}

function ioRead(m: ReturnType<typeof plat>["m"], index: number): number {
  m.mmio.write(IO_APIC_DEFAULT_BASE + IO_APIC_REGSEL, 4, index);
  return m.mmio.read(IO_APIC_DEFAULT_BASE + IO_APIC_WINDOW, 4);
}

function ioWrite(m: ReturnType<typeof plat>["m"], index: number, v: number): void {
  m.mmio.write(IO_APIC_DEFAULT_BASE + IO_APIC_REGSEL, 4, index);
  m.mmio.write(IO_APIC_DEFAULT_BASE + IO_APIC_WINDOW, 4, v);
}

describe("IO-APIC registers", () => {
  it("has ID, version with 23 as max redirection entry, and masked entries after reset", () => {
    const { m, p } = plat();
    expect(ioRead(m, 0x01)).toBe(0x20 | (23 << 16));
    expect(ioRead(m, 0x00) >>> 24).toBe(p.ioapic.id);
    ioWrite(m, 0x00, 5 << 24);
    expect(ioRead(m, 0x00)).toBe(5 << 24);
    expect(ioRead(m, 0x02)).toBe(5 << 24);
    for (let pin = 0; pin < 24; pin++) {
      expect(ioRead(m, IO_APIC_REDTBL + 2 * pin)).toBe(IO_APIC_RTE_MASKED);
      expect(m.irqs.state(pin)).toMatchObject({ masked: true, trigger: "edge" });
    }
    expect(m.mmio.read(IO_APIC_DEFAULT_BASE + IO_APIC_REGSEL, 4)).toBe(IO_APIC_REDTBL + 46);
  });

  it("stores vector, delivery mode, destination mode, polarity, trigger, mask, destination", () => {
    const { m, p } = plat();
    const lo =
      0x31 |
      (1 << 8) |
      IO_APIC_RTE_DESTMODE_LOGICAL |
      IO_APIC_RTE_POLARITY_LOW |
      IO_APIC_RTE_LEVEL |
      IO_APIC_RTE_MASKED;
    ioWrite(m, IO_APIC_REDTBL + 2 * 9 + 1, 0x03ff_ffff);
    ioWrite(m, IO_APIC_REDTBL + 2 * 9, lo | IO_APIC_RTE_REMOTE_IRR | IO_APIC_RTE_DELIVERY_STATUS);
    expect(ioRead(m, IO_APIC_REDTBL + 2 * 9)).toBe(lo); // read-only bits ignored
    expect(ioRead(m, IO_APIC_REDTBL + 2 * 9 + 1)).toBe(0x0300_0000);
    expect(p.ioapic.readRte(9)).toEqual({ lo, hi: 0x0300_0000 });
    expect(m.irqs.state(9)).toMatchObject({ trigger: "level", masked: true });
  });

  it("reads 0 and drops writes for registers and pins that do not exist, and odd widths", () => {
    const { m, p } = plat();
    expect(ioRead(m, 0x03)).toBe(0);
    expect(ioRead(m, IO_APIC_REDTBL + 48)).toBe(0);
    ioWrite(m, IO_APIC_REDTBL + 48, 0x30);
    ioWrite(m, 0x07, 1);
    expect(m.mmio.read(IO_APIC_DEFAULT_BASE + IO_APIC_WINDOW, 2)).toBe(0);
    expect(m.mmio.read(IO_APIC_DEFAULT_BASE + 0x20, 4)).toBe(0);
    expect(p.ioapic.readRte(24)).toEqual({ lo: 0, hi: 0 });
    expect(p.ioapic.readRte(-1)).toEqual({ lo: 0, hi: 0 });
    p.ioapic.writeRte(99, 0x30, 0);
    p.ioapic.writeRte(0.5, 0x30, 0);
  });

  it("throws typed errors for bad configuration", () => {
    const m = createMachine({ ramBytes: 16 * MiB, cpus: 1, seed: 1, irqLines: 8 });
    const apics = new ApicBus(1);
    expectMachineError(() => new IoApic(m.irqs, apics, m.mmio, { pins: 24 }), "APIC_BAD_CONFIG");
    const io = new IoApic(m.irqs, apics, m.mmio);
    expect(io.pins).toBe(8);
    expectMachineError(() => io.claim(8, () => {}), "APIC_BAD_CONFIG");
    expectMachineError(() => new ApicBus(0), "APIC_BAD_CONFIG");
    expectMachineError(() => new ApicBus(256), "APIC_BAD_CONFIG");
    expectMachineError(() => new LocalApic(255), "APIC_BAD_CONFIG");
  });
});

describe("delivery", () => {
  it("level: Remote IRR set on delivery, cleared by LAPIC EOI broadcast; an asserted line fires again", () => {
    const { m, p } = plat();
    const l0 = p.apics.lapics[0];
    const seen: number[] = [];
    l0.onDeliver = (v) => seen.push(v);
    route(p, 19, 0x51, true);
    m.irqs.raise(19);
    expect(seen).toEqual([0x51]);
    expect(p.ioapic.readRte(19).lo & IO_APIC_RTE_REMOTE_IRR).toBe(IO_APIC_RTE_REMOTE_IRR);
    expect(l0.inIsr(0x51)).toBe(true);
    expect(m.irqs.inService(19)).toBe(true);
    expect(l0.read(APIC_TMR + 0x20) & (1 << (0x51 & 31))).not.toBe(0);
    l0.write(APIC_EOI, 0); // still asserted: fires again
    expect(seen).toEqual([0x51, 0x51]);
    m.irqs.lower(19);
    l0.eoi();
    expect(seen).toEqual([0x51, 0x51]);
    expect(p.ioapic.readRte(19).lo & IO_APIC_RTE_REMOTE_IRR).toBe(0);
    expect(m.irqs.inService(19)).toBe(false);
    expectMachineError(() => m.irqs.inService(24), "IRQ_BAD_LINE");
    expect(l0.highestIsr()).toBe(-1);
  });

  it("directed EOI: with broadcast suppressed, only the IO-APIC EOI register clears Remote IRR", () => {
    const { m, p } = plat();
    const l0 = p.apics.lapics[0];
    l0.write(APIC_SPIV, 0x1ff | APIC_SPIV_DIRECTED_EOI);
    expect(l0.suppressEoiBroadcast).toBe(true);
    let n = 0;
    l0.onDeliver = (_v, a) => {
      n++;
      a.eoi();
    };
    route(p, 18, 0x60, true);
    m.irqs.raise(18);
    expect(n).toBe(1);
    expect(p.ioapic.readRte(18).lo & IO_APIC_RTE_REMOTE_IRR).toBe(IO_APIC_RTE_REMOTE_IRR);
    m.irqs.lower(18);
    m.mmio.write(IO_APIC_DEFAULT_BASE + IO_APIC_EOI, 4, 0x61); // wrong vector
    expect(p.ioapic.readRte(18).lo & IO_APIC_RTE_REMOTE_IRR).toBe(IO_APIC_RTE_REMOTE_IRR);
    m.mmio.write(IO_APIC_DEFAULT_BASE + IO_APIC_EOI, 4, 0x60);
    expect(p.ioapic.readRte(18).lo & IO_APIC_RTE_REMOTE_IRR).toBe(0);
    expect(p.ioapic.eoisApplied).toBe(1);
  });

  it("edge: one delivery per rising edge; held while masked and delivered on unmask", () => {
    const { m, p } = plat();
    const seen: number[] = [];
    p.apics.lapics[1].onDeliver = (v, a) => {
      seen.push(v);
      a.eoi();
    };
    route(p, 4, 0x30, false, 1);
    m.irqs.raise(4);
    m.irqs.raise(4); // still high: no new edge
    expect(seen).toEqual([0x30]);
    m.irqs.lower(4);
    m.irqs.pulse(4);
    expect(seen).toEqual([0x30, 0x30]);
    p.ioapic.writeRte(4, 0x30 | IO_APIC_RTE_MASKED, 1 << 24);
    m.irqs.pulse(4);
    expect(seen.length).toBe(2);
    expect(p.ioapic.readRte(4).lo & IO_APIC_RTE_DELIVERY_STATUS).toBe(IO_APIC_RTE_DELIVERY_STATUS);
    route(p, 4, 0x30, false, 1);
    expect(seen.length).toBe(3);
    expect(p.apics.lapics[1].read(APIC_TMR + 0x10)).toBe(0);
  });

  it("TPR and in-service priority hold lower vectors in IRR until they drop", () => {
    const l = new LocalApic(0);
    const seen: number[] = [];
    l.onDeliver = (v) => seen.push(v);
    l.write(APIC_TASKPRI, 0x50);
    l.accept(0x45, false);
    expect(seen).toEqual([]);
    expect(l.inIrr(0x45)).toBe(true);
    expect(l.read(APIC_IRR + 0x20)).toBe(1 << 5);
    l.accept(0x91, false);
    expect(seen).toEqual([0x91]);
    expect(l.read(APIC_PROCPRI)).toBe(0x90);
    l.write(APIC_TASKPRI, 0);
    expect(seen).toEqual([0x91]); // 0x45 is below the in-service 0x91
    l.eoi();
    expect(seen).toEqual([0x91, 0x45]);
    expect(l.read(APIC_ISR + 0x20)).toBe(1 << 5);
    l.eoi();
    expect(l.read(APIC_ISR + 0x20)).toBe(0);
    expect(l.read(APIC_ID)).toBe(0);
    expect(l.read(APIC_LVR) & 0xff).toBe(0x14);
    expect(l.read(0x3f0)).toBe(0);
    l.write(0x3f0, 1);
    l.eoi(); // nothing in service: no-op
    expect(l.eois).toBe(2);
  });

  it("refuses illegal vectors 0-15 without latching them", () => {
    const l = new LocalApic(3);
    l.accept(7, false);
    l.accept(300, false);
    expect(l.illegal).toBe(2);
    expect(l.highestIrr()).toBe(-1);
  });

  it("runs a delivery the callback causes after the callback, not nested", () => {
    const l = new LocalApic(0);
    const log: string[] = [];
    l.onDeliver = (v, a) => {
      log.push(`in ${v}`);
      if (v === 0x80) a.accept(0x90, false);
      log.push(`out ${v}`);
    };
    l.accept(0x80, false);
    expect(log).toEqual(["in 128", "out 128", "in 144", "out 144"]);
  });

  it("MSI: a write to 0xFEExxxxx delivers the vector to the addressed LAPIC", () => {
    const { p } = plat(4);
    const seen: string[] = [];
    for (const a of p.apics.lapics) {
      a.onDeliver = (v, x) => {
        seen.push(`${x.id}:${v}`);
        x.eoi();
      };
    }
    p.apics.msi(MSI_WINDOW_BASE | (2 << 12), 0x44);
    expect(seen).toEqual(["2:68"]);
    p.apics.msi(MSI_WINDOW_BASE | (0xff << 12), 0x45); // broadcast
    expect(seen.slice(1)).toEqual(["0:69", "1:69", "2:69", "3:69"]);
    p.apics.msi(MSI_WINDOW_BASE | (0b1010 << 12) | 4, 0x46); // logical: LAPICs 1 and 3
    expect(seen.slice(5)).toEqual(["1:70", "3:70"]);
    p.apics.lapics[0].tpr = 0x20;
    p.apics.lapics[1].tpr = 0x10;
    p.apics.msi(MSI_WINDOW_BASE | (0b0011 << 12) | 4, 0x147); // lowest priority among 0, 1
    expect(seen.slice(7)).toEqual(["1:71"]);
    p.apics.msi(MSI_WINDOW_BASE | (9 << 12), 0x48); // nobody
    expect(p.apics.undeliverable).toBe(1);
    p.apics.msi(MSI_WINDOW_BASE, 0x400 | 0x49); // NMI delivery mode: not modelled
    expect(p.apics.unsupported).toBe(1);
    expect(seen.length).toBe(8);
  });
});

describe("hooks", () => {
  it("claim takes a GSI's delivery away from the APIC bus; release gives it back", () => {
    const { m, p } = plat();
    const got: number[] = [];
    const lapic: number[] = [];
    p.apics.lapics[0].onDeliver = (v, a) => {
      lapic.push(v);
      m.irqs.lower(19); // services the device
      a.eoi();
    };
    route(p, 19, 0x51, true);
    p.ioapic.claim(19, (gsi) => got.push(gsi));
    expect(p.ioapic.isClaimed(19)).toBe(true);
    m.irqs.raise(19);
    expect(got).toEqual([19]);
    expect(lapic).toEqual([]);
    p.apics.eoiBroadcast(0x51); // a LAPIC EOI does not reach a claimed pin
    expect(m.irqs.state(19).inService).toBe(true);
    m.irqs.lower(19);
    m.irqs.eoi(19); // the claimer acknowledges
    p.ioapic.release(19);
    m.irqs.raise(19);
    expect(lapic).toEqual([0x51]);
    expect(got).toEqual([19]);
    expectMachineError(() => p.ioapic.claim(19, 5 as never), "APIC_BAD_CONFIG");
  });

  it("a LAPIC intercept takes messages before they are latched", () => {
    const { m, p } = plat();
    const injected: number[] = [];
    const l0 = p.apics.lapics[0];
    l0.intercept = (v, level) => {
      injected.push(v, level ? 1 : 0);
      return true;
    };
    route(p, 10, 0x70, false);
    m.irqs.pulse(10);
    expect(injected).toEqual([0x70, 0]);
    expect(l0.highestIrr()).toBe(-1);
    expect(l0.intercepted).toBe(1);
  });

  it("a handler that EOIs a level line its device keeps asserting is an IRQ_STORM, not a hang", () => {
    const { m, p } = plat();
    p.apics.lapics[0].onDeliver = (_v, a) => a.eoi();
    route(p, 16, 0x40, true);
    expectMachineError(() => m.irqs.raise(16), "IRQ_STORM");
  });

  it("random IO-APIC and LAPIC register traffic never throws", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            kind: fc.constantFrom("io", "lapic", "line"),
            off: fc.integer({ min: 0, max: 0x400 }),
            value: fc.integer({ min: 0, max: 0xffffffff }),
          }),
          { maxLength: 80 },
        ),
        (ops) => {
          const { m, p } = plat();
          for (const a of p.apics.lapics) {
            a.onDeliver = (_v, x) => {
              if (x.delivered % 3 === 0) x.eoi();
            };
          }
          for (const o of ops) {
            if (o.kind === "io") {
              m.mmio.write(IO_APIC_DEFAULT_BASE + (o.off & 0x7c), 4, o.value);
              m.mmio.read(IO_APIC_DEFAULT_BASE + (o.off & 0x7c), 4);
            } else if (o.kind === "lapic") {
              p.apics.lapics[o.value & 1].write(o.off & 0x3f0, o.value);
              p.apics.lapics[o.value & 1].read(o.off & 0x3f0);
            } else if ((o.value & 1) === 0) {
              m.irqs.pulse(o.off % 24);
            } else {
              m.irqs.lower(o.off % 24);
            }
          }
          for (const a of p.apics.lapics) {
            for (let w = 0; w < 8; w++) expect(a.irr[w] & a.isr[w]).toBe(0);
          }
        },
      ),
      fcParams(),
    );
  });
});
