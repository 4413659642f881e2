/** The `evtchn` slot's contract lives in @hyperlab/core; re-exported for older imports. */
export type {
  EvtchnService,
  PirqHooks,
  PortInfo,
  PortTraffic,
  VcpuEventCounts,
} from "@hyperlab/core";
export { EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES } from "./abi-fifo";
export { type EvtchnOptions, virqIsGlobal } from "./channels";
export { EVTCHN_ERROR_CODES, type EvtchnErrorCode } from "./errors";
export { evtchn2l, evtchnFifo } from "./plugin";
export { PERIODIC_TIMER_MIN_NS, vcpuTimers } from "./timers";
