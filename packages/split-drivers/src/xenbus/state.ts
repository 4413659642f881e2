/*
 * xenbus device states (public/io/xenbus.h enum xenbus_state) as a driver reads and writes
 * them: a decimal string in `<dir>/state`.
 *
 * Invariant: reading a state never throws. Whatever the other end wrote (nothing, garbage,
 * a number out of range) comes back as a number: Unknown (0) for a missing or unparsable
 * node, as Linux's xenbus_read_driver_state does, and the number itself otherwise, so a
 * driver can refuse a state outside 0..8 (xenbus_dev_fatal) instead of guessing.
 */
import {
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialised,
  XenbusStateInitialising,
  XenbusStateInitWait,
  XenbusStateReconfigured,
  XenbusStateReconfiguring,
  XenbusStateUnknown,
} from "@hyperlab/abi";

export {
  XenbusStateClosed,
  XenbusStateClosing,
  XenbusStateConnected,
  XenbusStateInitialised,
  XenbusStateInitialising,
  XenbusStateInitWait,
  XenbusStateReconfigured,
  XenbusStateReconfiguring,
  XenbusStateUnknown,
};

const NAMES = [
  "Unknown",
  "Initialising",
  "InitWait",
  "Initialised",
  "Connected",
  "Closing",
  "Closed",
  "Reconfiguring",
  "Reconfigured",
] as const;

/** Linux's xenbus_strstate: the state's name, or "INVALID" outside 0..8. */
export function xenbusStrstate(state: number): string {
  return Number.isInteger(state) && state >= 0 && state < NAMES.length ? NAMES[state]! : "INVALID";
}

/** True for the states enum xenbus_state defines (0..8). */
export function isXenbusState(state: number): boolean {
  return Number.isInteger(state) && state >= XenbusStateUnknown && state <= XenbusStateReconfigured;
}

/**
 * A state node's value as xenbus_read_driver_state sees it: `"%d"` parsed, Unknown when the
 * node is missing (null) or does not start with a decimal number.
 */
export function parseXenbusState(value: string | null): number {
  if (value === null) return XenbusStateUnknown;
  const m = /^\s*([+-]?\d+)/.exec(value);
  if (m === null) return XenbusStateUnknown;
  const n = Number.parseInt(m[1]!, 10);
  return Number.isSafeInteger(n) ? n : XenbusStateUnknown;
}

/**
 * A non-negative integer key the other end wrote (`ring-ref`, `event-channel`, `port`,
 * `backend-id`): decimal digits only, below `limit`. Anything else is -1 (the caller reports it).
 */
export function parseXenbusUint(value: string | null, limit = 0x1_0000_0000): number {
  if (value === null || !/^\d{1,10}$/.test(value)) return -1;
  const n = Number.parseInt(value, 10);
  return n < limit ? n : -1;
}
