/*
 * The codes of the HyperlabErrors the iomap plugin throws (a user's or toolstack's mistake;
 * guest input gets Xen's errno instead). test/errors.test.ts checks src against this list.
 */
export const IOMAP_ERROR_CODES = [
  /** A plugin option that is not a list of frame ranges inside the machine's address space. */
  "IOMAP_BAD_OPTION",
  /** A frame range passed to iomemPermitAccess / iomemDenyAccess that is not [s, e] of frames. */
  "IOMAP_BAD_RANGE",
  /** A permission asked for a domain that is dead or not of this hypervisor. */
  "IOMAP_BAD_DOMAIN",
] as const;

export type IomapErrorCode = (typeof IOMAP_ERROR_CODES)[number];
