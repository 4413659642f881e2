export { EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES } from "./abi-fifo";
export {
  type EvtchnOptions,
  type EvtchnService,
  type PirqHooks,
  type PortInfo,
  virqIsGlobal,
} from "./channels";
export { evtchn2l, evtchnFifo } from "./plugin";
export { PERIODIC_TIMER_MIN_NS, vcpuTimers } from "./timers";
