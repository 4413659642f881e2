/*
 * Xen 4.17 public/io/xenbus.h: the states a split driver's front and back ends advertise in
 * xenstore (enum xenbus_state).
 *
 * Invariant: every value equals the header's.
 */

export const XenbusStateUnknown = 0;
export const XenbusStateInitialising = 1;
export const XenbusStateInitWait = 2;
export const XenbusStateInitialised = 3;
export const XenbusStateConnected = 4;
export const XenbusStateClosing = 5;
export const XenbusStateClosed = 6;
export const XenbusStateReconfiguring = 7;
export const XenbusStateReconfigured = 8;
