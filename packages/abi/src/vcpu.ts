/*
 * Xen 4.17 public/vcpu.h: vCPU operations (up/down, runstate, timers, vcpu_info placement).
 *
 * Invariant: every value equals the header's; layouts are x86_64's. XEN_RUNSTATE_UPDATE is
 * bit 63 of state_entry_time, so it is given as 32-bit halves.
 */
import type { StructLayout } from "./layout";

// Operations of HYPERVISOR_vcpu_op (VCPUOP_*).
export const VCPUOP_initialise = 0;
export const VCPUOP_up = 1;
export const VCPUOP_down = 2;
export const VCPUOP_is_up = 3;
export const VCPUOP_get_runstate_info = 4;
export const VCPUOP_register_runstate_memory_area = 5;
export const VCPUOP_set_periodic_timer = 6;
export const VCPUOP_stop_periodic_timer = 7;
export const VCPUOP_set_singleshot_timer = 8;
export const VCPUOP_stop_singleshot_timer = 9;
export const VCPUOP_register_vcpu_info = 10;
export const VCPUOP_send_nmi = 11;
export const VCPUOP_get_physid = 12;
export const VCPUOP_register_vcpu_time_memory_area = 13;

// vcpu_runstate_info.state (RUNSTATE_*).
export const RUNSTATE_running = 0;
export const RUNSTATE_runnable = 1;
export const RUNSTATE_blocked = 2;
export const RUNSTATE_offline = 3;
/** Set in state_entry_time while Xen updates the runstate area. */
export const XEN_RUNSTATE_UPDATE_HI = 0x80000000;
export const XEN_RUNSTATE_UPDATE_LO = 0;

// vcpu_set_singleshot_timer.flags.
export const _VCPU_SSHOTTMR_future = 0;
/** Fail with -ETIME if the deadline has already passed. */
export const VCPU_SSHOTTMR_future = 0x1;

/** VCPUOP_get_runstate_info (and the registered runstate area): state and time in each state. */
export const vcpu_runstate_info: StructLayout = {
  cName: "struct vcpu_runstate_info",
  sizeof: 48,
  fields: {
    state: { offset: 0, size: 4 },
    state_entry_time: { offset: 8, size: 8 },
    time: { offset: 16, size: 8, count: 4 },
  },
};

/** VCPUOP_register_runstate_memory_area: where Xen keeps a copy of vcpu_runstate_info. */
export const vcpu_register_runstate_memory_area: StructLayout = {
  cName: "struct vcpu_register_runstate_memory_area",
  sizeof: 8,
  fields: {
    addr: { offset: 0, size: 8 },
    "addr.h": { offset: 0, size: 8 },
    "addr.h.p": { offset: 0, size: 8 },
    "addr.v": { offset: 0, size: 8 },
    "addr.p": { offset: 0, size: 8 },
  },
};

/** VCPUOP_set_periodic_timer: period in nanoseconds. */
export const vcpu_set_periodic_timer: StructLayout = {
  cName: "struct vcpu_set_periodic_timer",
  sizeof: 8,
  fields: {
    period_ns: { offset: 0, size: 8 },
  },
};

/** VCPUOP_set_singleshot_timer: absolute system-time deadline and flags. */
export const vcpu_set_singleshot_timer: StructLayout = {
  cName: "struct vcpu_set_singleshot_timer",
  sizeof: 16,
  fields: {
    timeout_abs_ns: { offset: 0, size: 8 },
    flags: { offset: 8, size: 4 },
  },
};

/** VCPUOP_register_vcpu_info: move the vCPU's vcpu_info to a guest frame and offset. */
export const vcpu_register_vcpu_info: StructLayout = {
  cName: "struct vcpu_register_vcpu_info",
  sizeof: 16,
  fields: {
    mfn: { offset: 0, size: 8 },
    offset: { offset: 8, size: 4 },
    rsvd: { offset: 12, size: 4 },
  },
};

/** VCPUOP_get_physid: the physical CPU's APIC and ACPI ids (dom0). */
export const vcpu_get_physid: StructLayout = {
  cName: "struct vcpu_get_physid",
  sizeof: 8,
  fields: {
    phys_id: { offset: 0, size: 8 },
  },
};

/** VCPUOP_register_vcpu_time_memory_area: a second copy of vcpu_time_info. */
export const vcpu_register_time_memory_area: StructLayout = {
  cName: "struct vcpu_register_time_memory_area",
  sizeof: 8,
  fields: {
    addr: { offset: 0, size: 8 },
    "addr.h": { offset: 0, size: 8 },
    "addr.h.p": { offset: 0, size: 8 },
    "addr.v": { offset: 0, size: 8 },
    "addr.p": { offset: 0, size: 8 },
  },
};
