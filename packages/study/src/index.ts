export {
  BACKENDS,
  type BackendCounters,
  type BackendParams,
  nativeBackend,
  nestedBackend,
  type PageSize,
  pvBackend,
  type StudyBackend,
  shadowBackend,
} from "./backends";
export {
  backendByName,
  expandMatrix,
  PAGE_SIZES,
  resolveConfig,
  type StudyCell,
  type StudyConfig,
  type StudyConfigInput,
} from "./config";
export {
  COST_INFO,
  COST_NAMES,
  type CostInfo,
  type CostName,
  type CostTable,
  DEFAULT_COSTS,
  estimateCycles,
  resolveCosts,
} from "./cost-model";
export { COUNT_INFO, COUNT_NAMES, type CountName, type StudyCounts, zeroCounts } from "./counts";
export { GuestTarget, type GuestTargetConfig } from "./guest-target";
export {
  buildResults,
  RESULTS_FORMAT,
  type RunReport,
  reportHtml,
  resultsCsv,
  resultsJson,
  type StudyResults,
  summaryTable,
  writeResults,
} from "./report";
export {
  type ProgressFn,
  type RunOptions,
  type RunResult,
  runCell,
  runCells,
  runMatrix,
} from "./run";
export {
  DEFAULT_STUDY,
  listBackends,
  listWorkloads,
  loadStudyConfig,
  type ProgressStream,
  progressReporter,
  runDefaultStudy,
  runStudy,
  type StudyOptions,
  type StudyOutcome,
} from "./study";
export { ACCESS_READ, ACCESS_UPDATE, ACCESS_WRITE, type StudyTarget } from "./target";
export { WORKLOADS, type Workload, type WorkloadParams, workloadByName } from "./workloads";
