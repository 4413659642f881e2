// @hyperlab/split-drivers: Xen's split drivers on the guest kernel.

// the guest's control drivers (drivers/xen/manage.c, balloon.c)
export { INVALID_P2M_ENTRY, type XenBalloon, type XenBalloonOptions, xenBalloon } from "./balloon";
// consoles (hvc_xen and xenconsoled)
export { XenconsBack, XenconsStream } from "./console/back";
export { XenconsFrontConsole, XenconsFrontDriver, xenconsConsole0 } from "./console/front";
export type { XenconsErrorCode } from "./console/xencons";
export {
  MASK_XENCONS_IDX,
  XENCONS_IN_BYTES,
  XENCONS_INTERFACE_BYTES,
  XENCONS_OUT_BYTES,
  XenconsError,
  XenconsInterface,
} from "./console/xencons";
export { type XenManage, type XenManageOptions, xenManage } from "./manage";
export type { RingErrorCode } from "./ring";
export {
  BackRing,
  FrontRing,
  RING_ENTRY_BYTES,
  RING_HEADER_BYTES,
  RING_MAX_ORDER,
  RING_PAGE_BYTES,
  RingError,
  ringSize,
  ringSizeFor,
  roundDownPow2,
  SharedRing,
} from "./ring";
// shared rings (io/ring.h)
export type { ReplayField, ReplayView, RingViews } from "./ring-replay/fields";
export { RING_VIEWS } from "./ring-replay/fields";
export { ringLayout } from "./ring-replay/layout";
export type { ReplayResult } from "./ring-replay/replay";
export {
  escapeData,
  parseCNumber,
  REPLAY_MAX_LINE,
  REPLAY_MAX_TOKENS,
  ringReplay,
  unescapeData,
} from "./ring-replay/replay";
// xenbus device state machine (xenbus_probe*.c, xenbus_client.c)
export {
  XenbusBus,
  XenbusDevice,
  type XenbusDriver,
  type XenbusKernel,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
} from "./xenbus/device";
export {
  GnttabGuest,
  type MappedRing,
  xenbusMapRing,
  xenbusUnmapRing,
} from "./xenbus/gnttab";
// xenbus (the guest's xenstore connection and the device state machine)
export {
  XenbusComms,
  type XenbusCommsOptions,
  XenbusError,
  type XenbusErrorCode,
  type XenbusUpcalls,
} from "./xenbus/index";
export {
  isXenbusState,
  parseXenbusState,
  parseXenbusUint,
  xenbusStrstate,
} from "./xenbus/state";
