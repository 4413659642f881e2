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
export { type CliIo, COMMANDS, runCli, type Verb } from "./main";
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
