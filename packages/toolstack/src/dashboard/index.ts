export { type PageTableWalkOptions, type PteHalves, pageTableTree } from "./pagetable";
export { ioRingSize, RING_KINDS, type RingKind, readRing } from "./rings";
export { type Dashboard, type DashboardOptions, startDashboard } from "./server";
export {
  type DashboardSnapshot,
  type DashboardSource,
  type DashDomain,
  type DashVcpu,
  type EvtchnTraffic,
  type GrantMapping,
  type PageTableNode,
  type RingOccupancy,
  snapshot,
  studyResultsFile,
  type VcpuEvents,
} from "./source";
