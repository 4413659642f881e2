/*
 * The codes of the HyperlabErrors the grant-table plugin throws (a user's mistake; guest input
 * gets Xen's errno or GNTST_* instead). test/errors.test.ts checks src against it.
 */
export const GRANT_ERROR_CODES = [
  /** A plugin option out of range (maxGrantFrames, maxMaptrackFrames, maxVersion). */
  "GRANT_BAD_OPTION",
  /** No free frame for a new domain's first grant-table frame. */
  "GRANT_NO_MEMORY",
] as const;

export type GrantErrorCode = (typeof GRANT_ERROR_CODES)[number];
