/*
 * Typed errors for mistakes made by the code that drives paging (a backend, a test, a tool):
 * a bad configuration or a bad argument. Guest-controlled data (the entries of a page table)
 * never reaches these: a bad entry is a page fault in the walk result.
 */

/** Every code a PagingError can carry. */
export type PagingErrorCode =
  | "PAGING_BAD_LEVELS"
  | "PAGING_BAD_MAXPHYADDR"
  | "PAGING_BAD_LEVEL"
  | "PAGING_BAD_MFN"
  | "PAGING_BAD_VA"
  | "PAGING_BAD_PAGE_SIZE"
  | "TLB_BAD_CONFIG"
  | "TLB_BAD_CPU";

/** An API misuse of @hyperlab/paging: `code` says which, the message says what to do. */
export class PagingError extends Error {
  readonly code: PagingErrorCode;

  constructor(code: PagingErrorCode, message: string) {
    super(message);
    this.name = "PagingError";
    this.code = code;
  }
}
