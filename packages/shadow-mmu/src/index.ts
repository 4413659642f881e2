export type { ShadowMmuError, ShadowMmuErrorCode } from "./errors";
export { shadowMmu } from "./plugin";
export {
  FLOOD_WRITES,
  type ShadowCounts,
  type ShadowFault,
  ShadowMmu,
  type ShadowMmuOptions,
} from "./shadow";
export * from "./vmx";
