export type { CreateDomainOptions, Domain, DomainState, Vcpu, VcpuState } from "./domain";
export { CORE_ERROR_CODES, type CoreErrorCode, HyperlabError, isHyperlabError } from "./errors";
export {
  FRAME_FREE,
  type FrameFreedHook,
  type FrameSource,
  FrameTable,
  ownerKey,
  PGC_allocated,
  PGC_count_mask,
  PGC_xen_heap,
  PGT_count_mask,
  PGT_l1_page_table,
  PGT_l2_page_table,
  PGT_l3_page_table,
  PGT_l4_page_table,
  PGT_none,
  PGT_pinned,
  PGT_seg_desc_page,
  PGT_shared_page,
  PGT_TYPE_SHIFT,
  PGT_type_mask,
  PGT_validated,
  PGT_writable_page,
  POD_BLOCK_FRAMES,
  POD_BLOCK_ORDER,
  type PodPopulateHook,
  pgtLevel,
  pgtName,
  type TypeHooks,
} from "./frame-table";
export { hypercallName } from "./hypercall-names";
export {
  createHypervisor,
  type Description,
  definePlugin,
  type HypercallArgs,
  type HypercallHandler,
  type HypercallKey,
  Hypervisor,
  type HypervisorOptions,
  type Plugin,
  type SetupContext,
  type SlotName,
  type Slots,
  type TraceEvent,
} from "./hypervisor";
export { type CountStat, countGauges, defineMmuPlugin, type MmuPluginSpec } from "./mmu-plugin";
export {
  type PluginShape,
  type Resolution,
  type ResolveOptions,
  resolvePlugins,
  SlotTable,
} from "./registry";
export {
  type CreditOptions,
  CSCHED_CREDITS_PER_MSEC,
  CSCHED_DEFAULT_TSLICE_MS,
  CSCHED_PRI_TS_BOOST,
  CSCHED_PRI_TS_OVER,
  CSCHED_PRI_TS_UNDER,
  CSCHED_TICKS_PER_TSLICE,
  SCHED_DEFAULT_RATELIMIT_US,
} from "./sched/credit";
export {
  type Credit2Options,
  CSCHED2_CREDIT_INIT,
  CSCHED2_MAX_TIMER,
  CSCHED2_MIN_TIMER,
} from "./sched/credit2";
export { SCHED_ERROR_CODES, type SchedErrorCode } from "./sched/errors";
export {
  SCHEDULER_NAMES,
  type SchedulerName,
  schedCredit,
  schedCredit2,
  schedRr,
  schedulerByName,
} from "./sched/plugin";
export type { RoundRobinOptions } from "./sched/rr";
export {
  SCHED_DEFAULT_WEIGHT,
  SCHED_POLL_MAX_PORTS,
  type SchedCoreOptions,
} from "./sched/scheduler";
export { burnCpu, computeThenBlock } from "./sched/workload";
export type {
  EvtchnAbi,
  EvtchnService,
  PirqHooks,
  PortInfo,
  PortTraffic,
  VcpuEventCounts,
} from "./slots/evtchn";
export type { GrantHostMapping } from "./slots/grant-host-mapping";
export type { IoBusService } from "./slots/io-bus";
export {
  type FrameRange,
  IOMEM_ACCESS_RO,
  IOMEM_ACCESS_RW,
  type IomemService,
} from "./slots/iomem";
export type { IrqService, PirqSource, PirqStatus } from "./slots/irq";
export {
  type MmuBackend,
  type MmuFault,
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_reserved_bit,
  PFEC_user_mode,
  PFEC_write_access,
} from "./slots/mmu";
export {
  type PciPassthroughGrant,
  pciPassthroughPermission,
  pciPassthroughResources,
} from "./slots/passthrough";
export type { PvMmuService } from "./slots/pv-mmu";
export type {
  EventSource,
  RunstateInfo,
  SchedParams,
  SchedService,
  WakeLatency,
} from "./slots/sched";
export { type Counter, type StatGroup, type StatInfo, Stats, type StatValue } from "./stats";
export {
  type MemoryReader,
  type MemoryWriter,
  PVCLOCK_CALIBRATION_NS,
  PVCLOCK_MAX_RETRIES,
  PVCLOCK_TSC_HZ,
  PVCLOCK_TSC_SHIFT,
  PVCLOCK_TSC_TO_SYSTEM_MUL,
  type PvClockSnapshot,
  pvClockNs,
  type RunstateSnapshot,
  readPvClock,
  readRunstateArea,
  stealNs,
  tscAt,
  writeRunstateArea,
  writeVcpuTime,
} from "./time";
export { CORE_VCPUOPS, VcpuAreas } from "./vcpu-op";
