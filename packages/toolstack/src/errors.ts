/*
 * The toolstack's error codes. Every HyperlabError thrown by @hyperlab/toolstack carries one
 * of these; callers compare codes (core's isHyperlabError), never prefixes.
 */

export const TOOLSTACK_ERROR_CODES = [
  "TOOLSTACK_BAD_OPTION",
  "TOOLSTACK_UPCALL_TWICE",
  "TOOLSTACK_NOT_OWNER",
  "TOOLSTACK_NO_STORE",
  "TOOLSTACK_STORE_IRQ",
  "TOOLSTACK_NOT_PRIVILEGED",
  "TOOLSTACK_DOM_EXC",
  "TOOLSTACK_NO_MEMORY",
  "TOOLSTACK_EVTCHN_INIT",
  "TOOLSTACK_NO_DOMAIN",
  "TOOLSTACK_INTRODUCE_DOM0",
  "TOOLSTACK_STORE_EVTCHN",
  "TOOLSTACK_INTRODUCE",
  "TOOLSTACK_DASHBOARD",
  "TOOLSTACK_NAME_IN_USE",
  "TOOLSTACK_BAD_KERNEL",
  "TOOLSTACK_CREATE_FAILED",
  "TOOLSTACK_NOT_XEN",
  "TOOLSTACK_BAD_ARGUMENT",
  "TOOLSTACK_SAVE_FILE",
  "TOOLSTACK_RUN_DIR",
  "TOOLSTACK_HOST_RUNNING",
  "TOOLSTACK_NO_HOST",
  "TOOLSTACK_PROTOCOL",
] as const;

/** Every code of a HyperlabError thrown by @hyperlab/toolstack. */
export type ToolstackErrorCode = (typeof TOOLSTACK_ERROR_CODES)[number];
