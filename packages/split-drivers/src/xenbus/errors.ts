/*
 * Typed error codes of the xenbus driver: mistakes of the code that sets a domain's kernel up
 * (missing options, frames that are not the domain's). Nothing here is reachable from bytes
 * another domain writes; those get Xen's errno or a XENSTORE_ERROR_* in the page. A class of
 * its own, since split-drivers takes only types from core.
 */

/** Every code a XenbusError carries. */
export type XenbusErrorCode =
  | "XENBUS_BAD_OPTION"
  | "XENBUS_NOT_OWNER"
  | "XENBUS_NO_STORE"
  | "XENBUS_STORE_IRQ"
  | "XENBUS_EVTCHN_INIT"
  | "XENBUS_GNTTAB_INIT"
  | "XENBUS_BAD_DEVICE";

/** A xenbus setup mistake: `code` says which, the message what to do. */
export class XenbusError extends Error {
  override readonly name = "XenbusError";
  readonly code: XenbusErrorCode;

  constructor(code: XenbusErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export function xenbusError(code: XenbusErrorCode, message: string): XenbusError {
  return new XenbusError(code, message);
}
