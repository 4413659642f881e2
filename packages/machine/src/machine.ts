/*
 * A whole machine: RAM, its frame allocator, pCPUs, interrupt lines, the MMIO map, a DMA
 * engine, the clock and the PRNG, built together from one small configuration.
 */

import { Clock } from "./clock";
import { createPcpus, type Pcpu } from "./cpu";
import { DmaEngine } from "./dma";
import { MachineError } from "./errors";
import { FrameAllocator } from "./frame-allocator";
import { IrqLines } from "./irq";
import { MmioMap } from "./mmio";
import { Prng } from "./prng";
import { PAGE_SIZE, Ram } from "./ram";

/** Interrupt lines of one IO-APIC. */
export const DEFAULT_IRQ_LINES = 24;

/** A range of machine frames. */
export interface FrameRange {
  mfn: number;
  count: number;
}

export interface MachineConfig {
  /** RAM size in bytes (rounded up to whole frames). */
  ramBytes: number;
  /** Number of physical CPUs. */
  cpus: number;
  /** Seed of the machine's PRNG. */
  seed: number;
  /** Interrupt lines (GSIs); default 24, one IO-APIC. */
  irqLines?: number;
  /** Frames reserved at boot; default frame 0 only. Pass [] to reserve none. */
  reserved?: readonly FrameRange[];
}

export interface Machine {
  readonly config: Readonly<Required<MachineConfig>>;
  readonly ram: Ram;
  readonly frames: FrameAllocator;
  readonly cpus: readonly Pcpu[];
  readonly irqs: IrqLines;
  readonly mmio: MmioMap;
  readonly dma: DmaEngine;
  readonly clock: Clock;
  readonly prng: Prng;
}

/** Builds a machine. Every bad field throws a MachineError naming it. */
export function createMachine(config: MachineConfig): Machine {
  if (config === null || typeof config !== "object") {
    throw new MachineError(
      "MACHINE_BAD_CONFIG",
      "createMachine needs { ramBytes, cpus, seed }, e.g. { ramBytes: 256 * 2 ** 20, cpus: 2, seed: 1 }",
    );
  }
  for (const field of ["ramBytes", "cpus", "seed"] as const) {
    if (typeof config[field] !== "number") {
      throw new MachineError(
        "MACHINE_BAD_CONFIG",
        `createMachine config.${field} must be a number, got ${String(config[field])}`,
      );
    }
  }
  const reserved = config.reserved ?? [{ mfn: 0, count: 1 }];
  if (!Array.isArray(reserved)) {
    throw new MachineError(
      "MACHINE_BAD_CONFIG",
      "createMachine config.reserved must be an array of { mfn, count }",
    );
  }
  const ram = new Ram({ bytes: config.ramBytes });
  const frames = new FrameAllocator(ram.nrFrames);
  for (const r of reserved) frames.reserve(r.mfn, r.count);
  const irqLines = config.irqLines ?? DEFAULT_IRQ_LINES;
  return {
    config: {
      ramBytes: ram.nrFrames * PAGE_SIZE,
      cpus: config.cpus,
      seed: config.seed,
      irqLines,
      reserved: reserved.map((r) => ({ mfn: r.mfn, count: r.count })),
    },
    ram,
    frames,
    cpus: createPcpus(config.cpus),
    irqs: new IrqLines(irqLines),
    mmio: new MmioMap(),
    dma: new DmaEngine(ram),
    clock: new Clock(),
    prng: Prng.fromSeed(config.seed),
  };
}
