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
  type ComparableResults,
  type Comparison,
  compareResults,
  comparisonTable,
  loadResults,
} from "./compare";
export {
  backendByName,
  expandMatrix,
  PAGE_SIZES,
  resolveConfig,
  type StudyCell,
  type StudyConfig,
  type StudyConfigInput,
} from "./config";
export { STUDY_CONFIG_FIELDS, studyConfigJsonSchema, studyConfigSchema } from "./config-schema";
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
export {
  STUDY_CONFIG_ERROR_CODES,
  STUDY_ERROR_CODES,
  STUDY_HOST_ERROR_CODES,
  STUDY_RUN_ERROR_CODES,
  type StudyConfigErrorCode,
  type StudyErrorCode,
  type StudyHostErrorCode,
  type StudyRunErrorCode,
  studyError,
} from "./errors";
export { GuestTarget, type GuestTargetConfig } from "./guest-target";
export { type CellOutcome, cellJob } from "./job";
export {
  type CellJobData,
  cellJobId,
  checkQueue,
  parseQueueUrl,
  type QueueConnection,
  type QueueRunOptions,
  type QueueWorker,
  type QueueWorkerOptions,
  runCellsOnQueue,
  STUDY_QUEUE_NAME,
  startQueueWorker,
  studyHash,
} from "./queue";
export {
  buildResults,
  groupDigits,
  RESULTS_FORMAT,
  RESULTS_SCHEMA_VERSION,
  type RunReport,
  reportHtml,
  resultsCsv,
  resultsJson,
  type StudyResults,
  sig,
  summaryTable,
  writeResults,
} from "./report";
export {
  type CellTick,
  type ProgressFn,
  type RunOptions,
  type RunResult,
  runCell,
  runCells,
  runMatrix,
  type StudyProgress,
  TICK_ACCESSES,
  type TickFn,
} from "./run";
export {
  checkOutDir,
  checkStudyMemory,
  DEFAULT_STUDY,
  estimateStudyMemory,
  type HostMemory,
  listBackends,
  listWorkloads,
  loadStudyConfig,
  type ProgressDisplayOptions,
  type ProgressStream,
  progressDisplay,
  progressReporter,
  runDefaultStudy,
  runStudy,
  type StudyOptions,
  type StudyOutcome,
} from "./study";
export { ACCESS_READ, ACCESS_UPDATE, ACCESS_WRITE, type StudyTarget } from "./target";
export { WORKLOADS, type Workload, type WorkloadParams, workloadByName } from "./workloads";
