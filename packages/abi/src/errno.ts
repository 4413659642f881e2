/*
 * Xen 4.17 public/errno.h: the errno values Xen returns, negated, from hypercalls. The
 * header spells them XEN_EINVAL and so on (an enum built from XEN_ERRNO(EINVAL, 22)); here
 * they take the macro argument's name, so hypervisor code reads `return -EINVAL` as Xen's
 * own source does. The values are x86 Linux's.
 *
 * Invariant: every value equals the header's, and XEN_ERRNO_NAMES lists the header's
 * entries in its order, mapping each number to the first name the header gives it (EAGAIN
 * rather than its alias EWOULDBLOCK, EDEADLK rather than EDEADLOCK).
 */

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
/**
 * Xen-internal (the header shows it only when __XEN__ is defined): Xen does not return it
 * to guests.
 */
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const ENOEXEC = 8;
export const EBADF = 9;
export const ECHILD = 10;
export const EAGAIN = 11;
/** Alias of EAGAIN. */
export const EWOULDBLOCK = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const EXDEV = 18;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOSPC = 28;
export const EROFS = 30;
export const EMLINK = 31;
export const EDOM = 33;
export const ERANGE = 34;
export const EDEADLK = 35;
/** Alias of EDEADLK. */
export const EDEADLOCK = 35;
export const ENAMETOOLONG = 36;
export const ENOLCK = 37;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ENODATA = 61;
export const ETIME = 62;
export const EBADMSG = 74;
export const EOVERFLOW = 75;
export const EILSEQ = 84;
/**
 * Xen-internal (the header shows it only when __XEN__ is defined): a hypercall that
 * returns it is continued, and a guest never sees it.
 */
export const ERESTART = 85;
export const ENOTSOCK = 88;
export const EMSGSIZE = 90;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENOBUFS = 105;
export const EISCONN = 106;
export const ENOTCONN = 107;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;

/** Number to name, for messages and traces: Xen's errno (positive) to its name. */
export const XEN_ERRNO_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  8: "ENOEXEC",
  9: "EBADF",
  10: "ECHILD",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  28: "ENOSPC",
  30: "EROFS",
  31: "EMLINK",
  33: "EDOM",
  34: "ERANGE",
  35: "EDEADLK",
  36: "ENAMETOOLONG",
  37: "ENOLCK",
  38: "ENOSYS",
  39: "ENOTEMPTY",
  61: "ENODATA",
  62: "ETIME",
  74: "EBADMSG",
  75: "EOVERFLOW",
  84: "EILSEQ",
  85: "ERESTART",
  88: "ENOTSOCK",
  90: "EMSGSIZE",
  95: "EOPNOTSUPP",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  105: "ENOBUFS",
  106: "EISCONN",
  107: "ENOTCONN",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
});
