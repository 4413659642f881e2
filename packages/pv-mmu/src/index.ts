export { buildPvDomain, type PvBuildOptions, type PvBuildResult } from "./builder";
export type { PvMmuError, PvMmuErrorCode } from "./errors";
export { PvGrantMapping } from "./grant-mapping";
export { M2p } from "./m2p";
export { pvGrantMapping, pvMmu } from "./plugin";
export * from "./pte";
export { PvPageTables, type TlbMaintenance, xsmTarget } from "./pv-mmu";
export {
  type MemoryOpArgs,
  type MemoryReservation,
  type MmuextOp,
  type MmuextOpArgs,
  type MmuUpdate,
  type MmuUpdateArgs,
  PvMmu,
  type PvMmuCounters,
  type PvMmuOptions,
  type UpdateVaMappingArgs,
} from "./service";
export {
  HYPERVISOR_VIRT_END_48,
  HYPERVISOR_VIRT_START_48,
  MEMOP_EXTENT_SHIFT,
  MMU_UPDATE_PREEMPTED,
  RO_MPT_SLOT,
  RO_MPT_VIRT_START_48,
  ROOT_PAGETABLE_FIRST_XEN_SLOT,
  ROOT_PAGETABLE_LAST_XEN_SLOT,
  VA_LIMIT,
} from "./xen";
