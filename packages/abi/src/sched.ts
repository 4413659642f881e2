/*
 * Xen 4.17 public/sched.h: scheduler operations (yield, block, shutdown, poll, ...) and
 * shutdown reasons.
 *
 * Invariant: every value equals the header's; layouts are x86_64's.
 */
import type { StructLayout } from "./layout";

// Operations of HYPERVISOR_sched_op (SCHEDOP_*).
export const SCHEDOP_yield = 0;
export const SCHEDOP_block = 1;
export const SCHEDOP_shutdown = 2;
export const SCHEDOP_poll = 3;
export const SCHEDOP_remote_shutdown = 4;
export const SCHEDOP_shutdown_code = 5;
export const SCHEDOP_watchdog = 6;
export const SCHEDOP_pin_override = 7;

// Shutdown reasons (SHUTDOWN_*).
export const SHUTDOWN_poweroff = 0;
export const SHUTDOWN_reboot = 1;
export const SHUTDOWN_suspend = 2;
export const SHUTDOWN_crash = 3;
export const SHUTDOWN_watchdog = 4;
export const SHUTDOWN_soft_reset = 5;
export const SHUTDOWN_MAX = 5;

/** SCHEDOP_shutdown / shutdown_code: a SHUTDOWN_* reason. */
export const sched_shutdown: StructLayout = {
  cName: "struct sched_shutdown",
  sizeof: 4,
  fields: {
    reason: { offset: 0, size: 4 },
  },
};

/** SCHEDOP_poll: block until one of a list of ports is pending, or a timeout. */
export const sched_poll: StructLayout = {
  cName: "struct sched_poll",
  sizeof: 24,
  fields: {
    ports: { offset: 0, size: 8 },
    "ports.p": { offset: 0, size: 8 },
    nr_ports: { offset: 8, size: 4 },
    timeout: { offset: 16, size: 8 },
  },
};

/** SCHEDOP_remote_shutdown: shut down another domain with a reason. */
export const sched_remote_shutdown: StructLayout = {
  cName: "struct sched_remote_shutdown",
  sizeof: 8,
  fields: {
    domain_id: { offset: 0, size: 2 },
    reason: { offset: 4, size: 4 },
  },
};

/** SCHEDOP_watchdog: arm, rearm or destroy a domain watchdog. */
export const sched_watchdog: StructLayout = {
  cName: "struct sched_watchdog",
  sizeof: 8,
  fields: {
    id: { offset: 0, size: 4 },
    timeout: { offset: 4, size: 4 },
  },
};

/** SCHEDOP_pin_override: temporarily pin the vCPU to a physical CPU. */
export const sched_pin_override: StructLayout = {
  cName: "struct sched_pin_override",
  sizeof: 4,
  fields: {
    pcpu: { offset: 0, size: 4 },
  },
};
