export { type ApicNativeCounts, MSI_ADDR_BASE, nativeApicOps } from "./apic";
export {
  conformanceBuildOf,
  type NativeBootOptions,
  type NativeStartOptions,
  readXenStartInfo,
  spawnProcess,
  startNativeKernel,
  startXenPvKernel,
  type XenPvBootOptions,
} from "./boot";
export {
  contextSwitch,
  cpuInit,
  fpuTrap,
  KERNEL_IDT,
  KERNEL_STACKS,
  printk,
  setFsBase,
  type TaskCpu,
  THREAD_SIZE,
  taskCpu,
  X86_CR0_TS,
  XEN_CALLBACKS,
} from "./cpu";
export {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_MIN_MASK_BITS,
  DMA_NONE,
  DMA_TO_DEVICE,
  type DmaDevice,
  type DmaDirection,
  type DmaSgEntry,
  dmaCapable,
} from "./dma-api";
export {
  type DmaDirectCounts,
  dmaDirectOps,
  dmaSetCoherentMask,
  dmaSetMask,
} from "./dma-direct";
export {
  type Hldisk,
  type HldiskCounts,
  type HldiskOptions,
  type HldiskRequest,
  hldiskMatch,
  hldiskProbe,
} from "./drivers/hldisk";
export {
  HLNIC_RX_BUF,
  type Hlnic,
  type HlnicCounts,
  type HlnicOptions,
  hlnicMatch,
  hlnicProbe,
} from "./drivers/hlnic";
export { freeIrq, type PciIrq, type PciIrqMode, requestIrq } from "./drivers/irq";
export {
  type PciDev,
  type PciHost,
  pciEnableDevice,
  pciFindCapability,
  pciIomap,
  pciReadConfig,
  pciResourceStart,
  pciScanBus,
  pciWriteConfig,
} from "./drivers/pci";
export { type GuestError, type GuestErrorCode, guestError } from "./errors";
export {
  type EvtchnGuestHost,
  type GuestEvtchnOptions,
  type IrqHandler,
  XenEvtchnGuest,
} from "./events";
export {
  bootNativeKernel,
  bootXenPvKernel,
  createGuestPort,
  type GuestPortOptions,
  type HostGuestPort,
} from "./host";
export { readb, readl, readw, writeb, writel, writew } from "./io";
export {
  FIXADDR_TOP,
  fixToVirt,
  IOREMAP_END,
  IOREMAP_START,
  type IoremapStrategy,
  ioremap,
  ioremapOps,
  iounmap,
  mmapBar,
  type PvIoremapOps,
  remapPfnRange,
  setFixmapIo,
} from "./ioremap";
export {
  CALL_FUNCTION_SINGLE_VECTOR,
  CALL_FUNCTION_VECTOR,
  type IpiCounts,
  MSR_X2APIC_EOI,
  MSR_X2APIC_ICR,
  RESCHEDULE_VECTOR,
  type SmpCallFunction,
  SmpCalls,
  threadTouch,
  XEN_CALL_FUNCTION_SINGLE_VECTOR,
  XEN_CALL_FUNCTION_VECTOR,
  XEN_IRQ_WORK_VECTOR,
  XEN_NMI_VECTOR,
  XEN_RESCHEDULE_VECTOR,
  XEN_SPIN_UNLOCK_VECTOR,
} from "./ipi";
export {
  GuestKernel,
  type KernelCounts,
  type Platform,
  type XenBootInfo,
} from "./kernel";
export * from "./layout";
export {
  destroyLdt,
  LDT_ENTRIES_MODELLED,
  LDT_ENTRY_SIZE,
  type LdtFreeKernel,
  type LdtKernel,
  ldtEntries,
  writeLdt,
} from "./ldt";
export { Mm, type Vma } from "./mm";
export {
  NativeCpu,
  nativeCpuOps,
  nativeIrqOps,
  nativeMmuOps,
  nativePvOps,
  nativeTimeOps,
} from "./native-ops";
export { type XenApicCounts, type XenApicOptions, xenApic, xenApicOps } from "./pirq";
export {
  composePvOps,
  defineGuestPlugin,
  type GuestPlugin,
  type GuestSetupContext,
  type PvOpsDefaults,
} from "./plugins";
export type { GuestPort, UpcallHandler } from "./port";
export {
  Process,
  type ProcessSnapshot,
  type ProcessState,
  REPLAY_READ,
  REPLAY_WRITE,
  REPLAY_XOR,
  type ReplayObserver,
} from "./process";
export {
  E_ACCESSED,
  E_DIRTY,
  E_IOMAP,
  E_PRESENT,
  E_PSE,
  E_RW,
  E_USER,
  KERNPG_TABLE,
  PAGE_KERNEL,
  PAGE_KERNEL_IO,
  PAGE_KERNEL_RO,
  PAGE_TABLE,
} from "./pte";
export {
  type BuiltinPvOps,
  type MsiDevice,
  PV_OPS_GROUPS,
  type PvApicOps,
  type PvCpuOps,
  type PvDmaOps,
  type PvIrqOps,
  type PvMmuOps,
  type PvOps,
  type PvOpsGroup,
  type PvTimeOps,
} from "./pv-ops";
export { xenCpuUp } from "./smp";
export {
  checkKernelRecord,
  GUEST_KERNEL_RECORD_VERSION,
  type GuestKernelRecord,
  kernelSuspendRecord,
  type MmRecord,
  type ProcessRecord,
  resumeXenPvKernel,
  type XenPvResumeOptions,
} from "./suspend";
export type { Task } from "./task";
export { type CpuBatch, XenCpuOps, xenTimeOps } from "./xen-cpu";
export {
  MC_ARGS,
  MC_BATCH,
  XenMmuOps,
  type XenOpsCounts,
  type XenPvOpsOptions,
  xenPvOps,
  xenPvOpsFor,
} from "./xen-ops";
