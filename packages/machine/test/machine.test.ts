import { describe, expect, it } from "vitest";
import {
  Clock,
  createMachine,
  DEFAULT_IRQ_LINES,
  DmaEngine,
  FrameAllocator,
  IrqLines,
  MachineError,
  MmioMap,
  PAGE_SIZE,
  Prng,
  Ram,
} from "../src/index";
import { expectMachineError } from "./helpers";

describe("createMachine", () => {
  it("builds every part from one configuration", () => {
    const m = createMachine({ ramBytes: 64 * 2 ** 20 + 1, cpus: 4, seed: 7 });
    expect(m.ram).toBeInstanceOf(Ram);
    expect(m.frames).toBeInstanceOf(FrameAllocator);
    expect(m.irqs).toBeInstanceOf(IrqLines);
    expect(m.mmio).toBeInstanceOf(MmioMap);
    expect(m.dma).toBeInstanceOf(DmaEngine);
    expect(m.clock).toBeInstanceOf(Clock);
    expect(m.prng).toBeInstanceOf(Prng);
    expect(m.ram.nrFrames).toBe(16 * 1024 + 1);
    expect(m.frames.nrFrames).toBe(m.ram.nrFrames);
    expect(m.cpus.length).toBe(4);
    expect(m.irqs.nrLines).toBe(DEFAULT_IRQ_LINES);
    expect(m.dma.ram).toBe(m.ram);
    expect(m.clock.now).toBe(0);
    expect(m.config).toEqual({
      ramBytes: (16 * 1024 + 1) * PAGE_SIZE,
      cpus: 4,
      seed: 7,
      irqLines: 24,
      reserved: [{ mfn: 0, count: 1 }],
    });
    expect(m.ram.residentBytes).toBe(0);
  });

  it("reserves frame 0 by default, or what it is told", () => {
    const a = createMachine({ ramBytes: 2 ** 20, cpus: 1, seed: 1 });
    expect(a.frames.isReserved(0)).toBe(true);
    expect(a.frames.nrFreeFrames).toBe(255);
    const b = createMachine({
      ramBytes: 2 ** 20,
      cpus: 1,
      seed: 1,
      irqLines: 48,
      reserved: [
        { mfn: 0, count: 16 },
        { mfn: 0xa0, count: 0x60 },
      ],
    });
    expect(b.frames.nrFreeFrames).toBe(256 - 16 - 0x60);
    expect(b.irqs.nrLines).toBe(48);
    const c = createMachine({ ramBytes: 2 ** 20, cpus: 1, seed: 1, reserved: [] });
    expect(c.frames.nrFreeFrames).toBe(256);
  });

  it("same seed, same machine behaviour", () => {
    const run = (seed: number) => {
      const m = createMachine({ ramBytes: 2 ** 24, cpus: 2, seed });
      const out: number[] = [];
      for (let i = 0; i < 20; i++) {
        const f = m.frames.allocPages(m.prng.nextInt(3));
        m.clock.schedule(m.prng.nextInt(1000), (t) => out.push(t, f));
      }
      m.clock.runUntil(1000);
      return out;
    };
    expect(run(11)).toEqual(run(11));
    expect(run(11)).not.toEqual(run(12));
  });

  it("names the bad field", () => {
    expectMachineError(() => createMachine(null as never), "MACHINE_BAD_CONFIG");
    const err = expectMachineError(
      () => createMachine({ ramBytes: 2 ** 20, cpus: "2" as never, seed: 1 }),
      "MACHINE_BAD_CONFIG",
    );
    expect(err.message).toMatch(/cpus/);
    expectMachineError(
      () => createMachine({ ramBytes: 2 ** 20, cpus: 1 } as never),
      "MACHINE_BAD_CONFIG",
    );
    expectMachineError(
      () => createMachine({ ramBytes: 2 ** 20, cpus: 1, seed: 1, reserved: {} as never }),
      "MACHINE_BAD_CONFIG",
    );
    expectMachineError(() => createMachine({ ramBytes: 0, cpus: 1, seed: 1 }), "RAM_BAD_SIZE");
    expectMachineError(
      () => createMachine({ ramBytes: 2 ** 20, cpus: 0, seed: 1 }),
      "CPU_BAD_COUNT",
    );
    expectMachineError(
      () => createMachine({ ramBytes: 2 ** 20, cpus: 1, seed: 0.5 }),
      "PRNG_BAD_SEED",
    );
    expectMachineError(
      () => createMachine({ ramBytes: 2 ** 20, cpus: 1, seed: 1, irqLines: 0 }),
      "IRQ_BAD_COUNT",
    );
    expectMachineError(
      () =>
        createMachine({ ramBytes: 2 ** 20, cpus: 1, seed: 1, reserved: [{ mfn: 255, count: 2 }] }),
      "FRAME_BAD_RANGE",
    );
  });

  it("MachineError is an Error with a code", () => {
    const e = new MachineError("RAM_BAD_SIZE", "x");
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe("RAM_BAD_SIZE");
  });
});
