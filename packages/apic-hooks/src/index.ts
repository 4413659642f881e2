export type { ApicHooksError, ApicHooksErrorCode } from "./errors";
export {
  ACKTYPE_EOI,
  ACKTYPE_NONE,
  ACKTYPE_UNMASK,
  ApicHooks,
  type ApicHooksCounters,
  type ApicHooksOptions,
  FORCED_EOI_NS,
} from "./pirqs";
export { apicHooks } from "./plugin";
