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
] as const;

/** Every code of a HyperlabError thrown by @hyperlab/toolstack. */
export type ToolstackErrorCode = (typeof TOOLSTACK_ERROR_CODES)[number];
