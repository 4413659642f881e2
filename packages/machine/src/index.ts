export { Clock, type ClockCallback, type TimerHandle } from "./clock";
export { createPcpus, MAX_PCPUS, onlinePcpus, PCPU_SCRATCH_SLOTS, type Pcpu } from "./cpu";
export * from "./devices/disk";
export * from "./devices/net-port";
export * from "./devices/nic";
export {
  type BusTranslator,
  DMA_EACCES,
  DMA_EFAULT,
  DMA_ERANGE,
  DMA_OK,
  DmaEngine,
  DmaPort,
  type DmaPortOptions,
  type DmaStats,
  MSI_WINDOW_BASE,
  MSI_WINDOW_SIZE,
  type MsiSink,
} from "./dma";
export { MachineError, type MachineErrorCode } from "./errors";
export { type AllocPagesOptions, FrameAllocator, MAX_ORDER } from "./frame-allocator";
export * from "./ioapic";
export {
  type IrqHandler,
  type IrqLineState,
  type IrqLineStats,
  IrqLines,
  type IrqTrigger,
  MAX_IRQ_LINES,
} from "./irq";
export * from "./lapic";
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
export * from "./pcap";
export * from "./pci";
export { createPlatform, type Platform, type PlatformOptions } from "./platform";
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
export * from "./virtio";
