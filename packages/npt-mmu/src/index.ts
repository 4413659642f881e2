export type { NptMmuError, NptMmuErrorCode } from "./errors";
export {
  type HostPageSize,
  type NptCounts,
  type NptFault,
  NptMmu,
  type NptMmuOptions,
} from "./npt";
export { nptMmu } from "./plugin";
export * from "./vmx";
