export { Clock, type ClockCallback, type TimerHandle } from "./clock";
export { createPcpus, MAX_PCPUS, onlinePcpus, PCPU_SCRATCH_SLOTS, type Pcpu } from "./cpu";
export { DMA_EFAULT, DMA_OK, DmaEngine, type DmaStats } from "./dma";
export { MachineError, type MachineErrorCode } from "./errors";
export { type AllocPagesOptions, FrameAllocator, MAX_ORDER } from "./frame-allocator";
export {
  type IrqHandler,
  type IrqLineState,
  type IrqLineStats,
  IrqLines,
  type IrqTrigger,
  MAX_IRQ_LINES,
} from "./irq";
export {
  createMachine,
  DEFAULT_IRQ_LINES,
  type FrameRange,
  type Machine,
  type MachineConfig,
} from "./machine";
export {
  MMIO_ADDRESS_LIMIT,
  type MmioHi,
  MmioMap,
  type MmioOps,
  type MmioRegion,
  type MmioRegionSpec,
  type MmioWidth,
} from "./mmio";
export { createPrng, Prng } from "./prng";
export {
  CHUNK_FRAMES,
  MAX_RAM_BYTES,
  PAGE_MASK,
  PAGE_SHIFT,
  PAGE_SIZE,
  Ram,
  type RamOptions,
} from "./ram";
