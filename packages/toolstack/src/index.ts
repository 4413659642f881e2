export { ControlClient, xlHostOverSocket } from "./daemon/client";
export { type DaemonOptions, type RunningDaemon, runDaemon } from "./daemon/daemon";
export type { ControlError, ControlRequest, ControlResponse } from "./daemon/protocol";
export {
  checkSocketPath,
  defaultRunDir,
  type RunPaths,
  runPaths,
  SUN_PATH_MAX,
} from "./daemon/rundir";
export {
  type Dashboard,
  type DashboardOptions,
  type DashboardSnapshot,
  type DashboardSource,
  type DashDomain,
  type DashVcpu,
  type EvtchnTraffic,
  type GrantMapping,
  type PageTableNode,
  type PageTableWalkOptions,
  type PteHalves,
  pageTableTree,
  type RingKind,
  type RingOccupancy,
  readRing,
  snapshot as dashboardSnapshot,
  startDashboard,
  studyResultsFile,
  type VcpuEvents,
} from "./dashboard/index";
export {
  consoleDevice,
  type DevicePaths,
  type DeviceSpec,
  devicePaths,
  libxlDeviceDestroy,
  libxlDeviceGenericAdd,
  libxlDeviceRemove,
} from "./devices";
export { TOOLSTACK_ERROR_CODES, type ToolstackErrorCode } from "./errors";
export {
  type ConfigResult,
  configFromJson,
  configFromXlCfg,
  type DiskConfig,
  type DomainAction,
  type DomainConfig,
  type NicConfig,
} from "./libxl/config";
export {
  CREATE_STEPS,
  type CreateOptions,
  type CreateStep,
  domainCreate,
  loadKernel,
  MIN_GUEST_MEMKB,
} from "./libxl/create";
export {
  attachDevice,
  type DeviceRequest,
  detachDevice,
  deviceState,
  diskDevice,
  nicDevice,
  vdevNumber,
} from "./libxl/devices";
export {
  createHost,
  type DeviceDriverPair,
  type DeviceRecord,
  type DomainRecord,
  findDomain,
  freePages,
  type Host,
  type HostKind,
  type HostOptions,
  settle,
  startHostServices,
} from "./libxl/host";
export { libxlHost, toJsonValue } from "./libxl/info";
export {
  actionFor,
  destroyDomainRecord,
  memSet,
  pauseDomain,
  type ReapEvent,
  reapShutdowns,
  renameDomain,
  requestShutdown,
  type ShutdownRequest,
  schedCreditSet,
  unpauseDomain,
  vcpuPin,
  waitShutdown,
} from "./libxl/lifecycle";
export { domainRestore, domainSave, type SaveResult } from "./libxl/save";
export {
  CONSOLE_ESCAPE,
  type ConsoleStreams,
  LIFECYCLE_COMMANDS,
  parseCpuMap,
  parseMemSizeKb,
  setConsoleStreams,
} from "./lifecycle-commands";
export { type CliIo, COMMANDS, runCli, type Verb } from "./main";
export { setTopClock, type TopClock } from "./top/command";
export {
  type TopDomain,
  type TopOptions,
  type TopSample,
  topSummary,
  topTable,
} from "./top/format";
export { sampleHost } from "./top/sample";
export { UpcallLoop, type UpcallLoopOptions, type UpcallMode } from "./upcall-loop";
export {
  Dom0Xenstored,
  type Dom0XenstoredOptions,
  destroyIntroducedDomain,
  type IntroduceDomainOptions,
  introduceDomainToXenstore,
  type XenstoreDomainSetup,
  type XenstoreInterfaceInfo,
} from "./xenstore-domain";
export { setXlHostConnector } from "./xl/cmd/common";
export { BLOCK_HEADER, blockRow, NETWORK_HEADER, networkRow } from "./xl/format/devices";
export { formatInfo } from "./xl/format/info";
export { formatList, formatListLong, type ListOptions } from "./xl/format/list";
export { cpuRanges, VCPU_HEADER, vcpuRow } from "./xl/format/vcpu";
export { defaultPhysInfo, domInfo, type MemoryDomain, MemoryXlHost } from "./xl/memory-host";
export * from "./xl/types";
export {
  type CfgSetting,
  type CfgValue,
  type DryRunResult,
  dryRunCreate,
  type JsonObject,
  type JsonValue,
  type ParsedCfg,
  type PciSpecError,
  parseDiskSpec,
  parsePciSpec,
  parseVifSpec,
  parseXlCfg,
  printJson,
  XlCfgError,
  type XlCfgErrorCode,
} from "./xlcfg/index";
