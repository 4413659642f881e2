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
  CacheHierarchy,
  type CacheLevelConfig,
  DEFAULT_CACHE_LEVELS,
  LINE_BYTES,
} from "./cache";
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
export {
  bootIoHost,
  DEFAULT_IO_COSTS,
  estimateIoCycles,
  IO_COST_INFO,
  IO_COST_NAMES,
  IO_COUNT_INFO,
  IO_COUNT_NAMES,
  IO_DEFAULT_DISK,
  IO_DEFAULT_NIC,
  IO_PENDING_PLATFORMS,
  IO_PLATFORM_NAMES,
  IO_PLATFORMS,
  type IoConfig,
  type IoConfigInput,
  type IoCostInfo,
  type IoCostName,
  type IoCostTable,
  type IoCountName,
  type IoCounts,
  type IoDiskPattern,
  type IoHost,
  type IoHostOptions,
  type IoNicPattern,
  type IoPlatform,
  type IoPlatformName,
  type IoPlatformRun,
  type IoResults,
  type IoRow,
  ioConfigSchema,
  ioCountsDelta,
  ioDiskImage,
  ioPlatformByName,
  ioReportHtml,
  ioSummaryTable,
  kvmGuestIoPlatform,
  nativeIoPlatform,
  resolveIoConfig,
  resolveIoCosts,
  runIoOnHost,
  runIoPlatform,
  runIoStudy,
  xenDom0IoPlatform,
  zeroIoCounts,
} from "./io/index";
// split-driver I/O cases (blkfront/blkback, netfront/netback on a Xen-style host)
export {
  resolveSplitIoConfig,
  SPLIT_IO_DEFAULT_DISK,
  SPLIT_IO_DEFAULT_NIC,
  SPLIT_IO_MODES,
  type SplitIoConfig,
  type SplitIoConfigInput,
  type SplitIoDiskPattern,
  type SplitIoMode,
  type SplitIoNicPattern,
  splitIoCaseSeed,
  splitIoConfigSchema,
} from "./io/split-config";
export { SPLIT_IO_COSTS, type SplitIoCostTable, splitIoCycles } from "./io/split-costs";
export { runSplitIo } from "./io/split-drivers";
export {
  type SplitHost,
  type SplitHostDomU,
  type SplitHostOptions,
  splitHostUntil,
  xenSplitHost,
} from "./io/split-host";
export { splitIoTable } from "./io/split-report";
export {
  runSplitIoStudy,
  SPLIT_IO_COST_DOC,
  SPLIT_IO_COST_INFO,
  SPLIT_IO_RESULTS_FORMAT,
  type SplitIoResults,
  splitIoReportHtml,
  splitIoSummaryText,
} from "./io/split-results";
export {
  SPLIT_IO_COUNT_INFO,
  type SplitIoCountName,
  type SplitIoCounts,
  type SplitIoPerRequest,
  type SplitIoPlatform,
  type SplitIoResult,
} from "./io/split-rows";
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
  DEFAULT_SHOOTDOWN_COSTS,
  runShootdownStudy,
  type ShootdownBackend,
  type ShootdownCosts,
  type ShootdownCounts,
  type ShootdownOptions,
  type ShootdownResult,
  shootdownCycles,
} from "./shootdown";
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
