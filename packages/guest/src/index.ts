export {
  bootNativeKernel,
  bootXenPvKernel,
  conformanceBuildOf,
  type NativeBootOptions,
  spawnProcess,
  type XenPvBootOptions,
} from "./boot";
export { type GuestEvtchnOptions, type IrqHandler, XenEvtchnGuest } from "./events";
export {
  E_ACCESSED,
  E_DIRTY,
  E_PRESENT,
  E_PSE,
  E_RW,
  E_USER,
  GuestKernel,
  KERNPG_TABLE,
  type KernelCounts,
  PAGE_KERNEL,
  PAGE_KERNEL_RO,
  PAGE_TABLE,
  type Platform,
  type XenBootInfo,
} from "./kernel";
export * from "./layout";
export { Mm, type Vma } from "./mm";
export { nativeCpuOps, nativeIrqOps, nativeMmuOps, nativePvOps, nativeTimeOps } from "./native-ops";
export { Process, type ProcessSnapshot, type ProcessState } from "./process";
export {
  composePvOps,
  defineGuestPlugin,
  type GuestPlugin,
  type GuestSetupContext,
  PV_OPS_GROUPS,
  type PvCpuOps,
  type PvIrqOps,
  type PvMmuOps,
  type PvOps,
  type PvOpsGroup,
  type PvTimeOps,
} from "./pv-ops";
export {
  MC_ARGS,
  MC_BATCH,
  XenMmuOps,
  type XenOpsCounts,
  type XenPvOpsOptions,
  xenPvOps,
  xenPvOpsFor,
} from "./xen-ops";
