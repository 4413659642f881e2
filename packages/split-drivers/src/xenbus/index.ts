export { XenbusComms, type XenbusCommsOptions, type XenbusUpcalls } from "./comms";
export { XenbusError, type XenbusErrorCode } from "./errors";
