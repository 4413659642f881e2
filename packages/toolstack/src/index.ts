export { type CliIo, runCli } from "./main";
export { UpcallLoop, type UpcallLoopOptions, type UpcallMode } from "./upcall-loop";
export { XenbusComms, type XenbusCommsOptions } from "./xenbus";
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
