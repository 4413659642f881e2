/*
 * The codes of the HyperlabErrors the scheduler throws (user mistakes only: bad options,
 * parameters out of range, a vCPU or domain from another hypervisor). Guest input never
 * throws here: SCHEDOP_* and VCPUOP_* answer with Xen's negative errno.
 */

/** Every code a scheduler HyperlabError carries. */
export const SCHED_ERROR_CODES = [
  "SCHED_BAD_CAP",
  "SCHED_BAD_CPU",
  "SCHED_BAD_OPTION",
  "SCHED_BAD_WEIGHT",
  "SCHED_BAD_WORK",
  "SCHED_UNKNOWN",
  "SCHED_UNKNOWN_DOMAIN",
  "SCHED_UNKNOWN_VCPU",
] as const;

export type SchedErrorCode = (typeof SCHED_ERROR_CODES)[number];
