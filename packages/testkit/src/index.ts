export {
  InvariantError,
  TESTKIT_ERROR_CODES,
  type TestkitErrorCode,
  type TestkitUsageCode,
} from "./errors";
export {
  assertGrantInvariants,
  checkGrantInvariants,
  type GrantCheckOptions,
  type GrantView,
  type GrantViewActive,
  type GrantViewMapping,
  grantInvariantOptions,
} from "./grants";
export { type DoubleMapping, GrantMappingDouble } from "./grants-double";
export {
  type ConformanceProcess,
  defineGuestConformance,
  type GuestBuildFactory,
  type GuestConformanceBuild,
  type GuestConformanceCase,
  GuestConformanceError,
  guestConformanceCases,
  runGuestConformance,
  type TestRunner,
} from "./guest-conformance";
export { assertFrameInvariants, checkFrameInvariants, type InvariantOptions } from "./invariants";
export {
  assertIomemInvariants,
  assertIrqRoutingInvariants,
  checkIomemInvariants,
  checkIrqRoutingInvariants,
  type IomemCheckOptions,
} from "./io-invariants";
export {
  defineMmuConformance,
  MMU_CONFORMANCE_PAGES,
  type MmuBuildFactory,
  type MmuConformanceBuild,
  type MmuConformanceCase,
  MmuConformanceError,
  type MmuRights,
  mmuBuildOf,
  mmuConformanceCases,
  runMmuConformance,
  tablesMmuBuild,
} from "./mmu-conformance";
export {
  type EntryStore,
  GuestMem,
  type GuestMemOptions,
  GuestTables,
  type GuestTablesOptions,
  type HarnessWorld,
  PTE_NX_HI,
  PTE_P,
  PTE_PRW,
  PTE_PSE,
  PTE_RW,
  PTE_US,
  type RefWalkOptions,
  refWalk,
} from "./mmu-harness";
export {
  createWriteAudit,
  type StrayWrite,
  type WriteAudit,
  type WriteAuditOptions,
} from "./write-audit";
