/*
 * The codes of the HyperlabErrors the event channel plugins throw (a user's or a toolstack's
 * mistake; guest input gets Xen's errno instead). test/errors.test.ts checks src against it.
 */
export const EVTCHN_ERROR_CODES = [
  /** A plugin option out of range (nrPirqs, maxEvtchnPort). */
  "EVTCHN_BAD_OPTION",
  /** A pirq beyond the domain's nr_pirqs given to permitPirq. */
  "EVTCHN_BAD_PIRQ",
  /** A VIRQ number out of range, or of the wrong kind for the call. */
  "EVTCHN_BAD_VIRQ",
  /** A domain the event channels do not know (never created, or destroyed). */
  "EVTCHN_UNKNOWN_DOMAIN",
] as const;

export type EvtchnErrorCode = (typeof EVTCHN_ERROR_CODES)[number];
