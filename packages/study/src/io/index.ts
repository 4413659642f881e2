export {
  IO_DEFAULT_DISK,
  IO_DEFAULT_NIC,
  IO_PLATFORM_NAMES,
  type IoConfig,
  type IoConfigInput,
  type IoDiskPattern,
  type IoNicPattern,
  type IoPlatformName,
  ioConfigSchema,
  resolveIoConfig,
} from "./config";
export {
  DEFAULT_IO_COSTS,
  estimateIoCycles,
  IO_COST_INFO,
  IO_COST_NAMES,
  type IoCostInfo,
  type IoCostName,
  type IoCostTable,
  resolveIoCosts,
} from "./cost";
export {
  IO_COUNT_INFO,
  IO_COUNT_NAMES,
  type IoCountName,
  type IoCounts,
  ioCountsDelta,
  zeroIoCounts,
} from "./counts";
export {
  IO_PLATFORMS,
  type IoHost,
  type IoHostOptions,
  type IoPlatform,
  ioPlatformByName,
  kvmGuestIoPlatform,
  nativeIoPlatform,
  xenDom0IoPlatform,
} from "./hosts";
export {
  IO_PENDING_PLATFORMS,
  type IoResults,
  ioReportHtml,
  ioSummaryTable,
  runIoStudy,
} from "./results";
export {
  bootIoHost,
  type IoPlatformRun,
  type IoRow,
  ioDiskImage,
  runIoOnHost,
  runIoPlatform,
} from "./workload";
