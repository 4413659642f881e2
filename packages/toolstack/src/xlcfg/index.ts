export { type CfgSetting, type CfgValue, type ParsedCfg, parseXlCfg } from "./cfg";
export { type DryRunResult, dryRunCreate } from "./create";
export { type PciSpecError, parseDiskSpec, parsePciSpec, parseVifSpec } from "./devices";
export { XlCfgError, type XlCfgErrorCode } from "./errors";
export { type JsonObject, type JsonValue, printJson } from "./json";
