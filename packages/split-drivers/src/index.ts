// @hyperlab/split-drivers: Xen's split drivers on the guest kernel.

// xenbus (the guest's xenstore connection and the device state machine)
export {
  XenbusComms,
  type XenbusCommsOptions,
  XenbusError,
  type XenbusErrorCode,
  type XenbusUpcalls,
} from "./xenbus/index";

// shared rings (io/ring.h)
