/*
 * Typed errors for mistakes made by code that drives xenstored or its client (the host, a
 * test, a CLI user). A guest or a socket client never reaches these: whatever it sends gets
 * Xen's error string on the wire, or its connection dropped as C xenstored drops it.
 */

/** Every code a XenstoreError can carry. */
export type XenstoreErrorCode =
  | "XS_BAD_OPTION"
  | "XS_BAD_ARGUMENT"
  | "XS_CLOSED"
  | "XS_ERROR_REPLY"
  | "XS_PROTOCOL"
  | "XS_SOCKET"
  | "XS_SOCKET_PATH"
  | "XS_DOMAIN";

/** An API misuse or a failed request: `code` says which, the message says what to do. */
export class XenstoreError extends Error {
  readonly code: XenstoreErrorCode;
  /**
   * For XS_ERROR_REPLY: the errno name xenstored answered with ("ENOENT", "EACCES", ...),
   * and its number in `errno`.
   */
  readonly xsError: string | undefined;
  readonly errno: number | undefined;

  constructor(code: XenstoreErrorCode, message: string, xsError?: string, errno?: number) {
    super(message);
    this.name = "XenstoreError";
    this.code = code;
    this.xsError = xsError;
    this.errno = errno;
  }
}
