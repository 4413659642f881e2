/*
 * Xen 4.17 public/io/xs_wire.h: the xenstore wire protocol (message header, message types,
 * error strings) and the shared ring page a guest uses to talk to xenstored.
 *
 * Invariant: every value here equals the header's; xsd_errors keeps the header's order,
 * which is part of the wire ABI (new errors are appended, never inserted).
 */
import type { StructLayout } from "./layout";

// enum xsd_sockmsg_type
export const XS_CONTROL = 0;
/** Old name of XS_CONTROL, kept by the header as an alias. */
export const XS_DEBUG = 0;
export const XS_DIRECTORY = 1;
export const XS_READ = 2;
export const XS_GET_PERMS = 3;
export const XS_WATCH = 4;
export const XS_UNWATCH = 5;
export const XS_TRANSACTION_START = 6;
export const XS_TRANSACTION_END = 7;
export const XS_INTRODUCE = 8;
export const XS_RELEASE = 9;
export const XS_GET_DOMAIN_PATH = 10;
export const XS_WRITE = 11;
export const XS_MKDIR = 12;
export const XS_RM = 13;
export const XS_SET_PERMS = 14;
export const XS_WATCH_EVENT = 15;
export const XS_ERROR = 16;
export const XS_IS_DOMAIN_INTRODUCED = 17;
export const XS_RESUME = 18;
export const XS_SET_TARGET = 19;
/** 20 was XS_RESTRICT, since removed; the number stays unused. */
export const XS_RESET_WATCHES = 21;
export const XS_DIRECTORY_PART = 22;
/** Number of valid types (one past the last). */
export const XS_TYPE_COUNT = 23;
/** Guaranteed never to be a valid type. */
export const XS_INVALID = 0xffff;

/** Transaction-end / write mode strings. */
export const XS_WRITE_NONE = "NONE";
export const XS_WRITE_CREATE = "CREATE";
export const XS_WRITE_CREATE_EXCL = "CREATE|EXCL";

// enum xs_watch_type: index of each string in an XS_WATCH_EVENT payload
export const XS_WATCH_PATH = 0;
export const XS_WATCH_TOKEN = 1;

/** One entry of the header's xsd_errors table: an errno and its name as sent on the wire. */
export interface XsdError {
  readonly errnum: number;
  readonly errstring: string;
}

/**
 * The header's xsd_errors table, in header order. xenstored answers an error with
 * XS_ERROR and the errstring; a client maps it back to errnum. The numbers are Xen's
 * (and Linux's) errno values.
 */
export const xsd_errors: readonly XsdError[] = Object.freeze(
  (
    [
      [22, "EINVAL"],
      [13, "EACCES"],
      [17, "EEXIST"],
      [21, "EISDIR"],
      [2, "ENOENT"],
      [12, "ENOMEM"],
      [28, "ENOSPC"],
      [5, "EIO"],
      [39, "ENOTEMPTY"],
      [38, "ENOSYS"],
      [30, "EROFS"],
      [16, "EBUSY"],
      [11, "EAGAIN"],
      [106, "EISCONN"],
      [7, "E2BIG"],
      [1, "EPERM"],
    ] as const
  ).map(([errnum, errstring]) => Object.freeze({ errnum, errstring })),
);

/** struct xsd_sockmsg: the 16-byte header before every message's payload. */
export const xsd_sockmsg: StructLayout = {
  cName: "struct xsd_sockmsg",
  sizeof: 16,
  fields: {
    type: { offset: 0, size: 4 },
    req_id: { offset: 4, size: 4 },
    tx_id: { offset: 8, size: 4 },
    len: { offset: 12, size: 4 },
  },
};

/** Bytes in each of the two rings of the xenstore page. */
export const XENSTORE_RING_SIZE = 1024;
/** MASK_XENSTORE_IDX(idx) is `idx & MASK_XENSTORE_IDX`: the mask the C macro applies. */
export const MASK_XENSTORE_IDX = XENSTORE_RING_SIZE - 1;

/** struct xenstore_domain_interface: the xenstore ring page shared with a guest. */
export const xenstore_domain_interface: StructLayout = {
  cName: "struct xenstore_domain_interface",
  sizeof: 2076,
  fields: {
    req: { offset: 0, size: 1, count: 1024 },
    rsp: { offset: 1024, size: 1, count: 1024 },
    req_cons: { offset: 2048, size: 4 },
    req_prod: { offset: 2052, size: 4 },
    rsp_cons: { offset: 2056, size: 4 },
    rsp_prod: { offset: 2060, size: 4 },
    server_features: { offset: 2064, size: 4 },
    connection: { offset: 2068, size: 4 },
    error: { offset: 2072, size: 4 },
  },
};

/** Largest payload of one message; a longer one is a protocol violation. */
export const XENSTORE_PAYLOAD_MAX = 4096;
/** Longest absolute path; a longer one gets an error back. */
export const XENSTORE_ABS_PATH_MAX = 3072;
/** Longest relative path; a longer one gets an error back. */
export const XENSTORE_REL_PATH_MAX = 2048;

// server_features bits
export const XENSTORE_SERVER_FEATURE_RECONNECTION = 0x1;
export const XENSTORE_SERVER_FEATURE_ERROR = 0x2;

// connection field values
export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;

// error field values
export const XENSTORE_ERROR_NONE = 0;
export const XENSTORE_ERROR_COMM = 1;
export const XENSTORE_ERROR_RINGIDX = 2;
export const XENSTORE_ERROR_PROTO = 3;
