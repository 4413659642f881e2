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

/**
 * VCPUOP_initialise's argument, x86_64 PV guest (arch-x86/xen.h, as foreign/x86_64.h spells
 * it): the register state, trap table, GDT frames, control registers and callbacks a vCPU
 * starts with.
 */
export const vcpu_guest_context_x86_64: StructLayout = {
  cName: "struct vcpu_guest_context_x86_64",
  sizeof: 5168,
  fields: {
    fpu_ctxt: { offset: 0, size: 512 },
    "fpu_ctxt.x": { offset: 0, size: 1, count: 512 },
    flags: { offset: 512, size: 8 },
    user_regs: { offset: 520, size: 200 },
    "user_regs.r15": { offset: 520, size: 8 },
    "user_regs.e15": { offset: 520, size: 8 },
    "user_regs.r14": { offset: 528, size: 8 },
    "user_regs.e14": { offset: 528, size: 8 },
    "user_regs.r13": { offset: 536, size: 8 },
    "user_regs.e13": { offset: 536, size: 8 },
    "user_regs.r12": { offset: 544, size: 8 },
    "user_regs.e12": { offset: 544, size: 8 },
    "user_regs.rbp": { offset: 552, size: 8 },
    "user_regs.ebp": { offset: 552, size: 8 },
    "user_regs.rbx": { offset: 560, size: 8 },
    "user_regs.ebx": { offset: 560, size: 8 },
    "user_regs.r11": { offset: 568, size: 8 },
    "user_regs.e11": { offset: 568, size: 8 },
    "user_regs.r10": { offset: 576, size: 8 },
    "user_regs.e10": { offset: 576, size: 8 },
    "user_regs.r9": { offset: 584, size: 8 },
    "user_regs.e9": { offset: 584, size: 8 },
    "user_regs.r8": { offset: 592, size: 8 },
    "user_regs.e8": { offset: 592, size: 8 },
    "user_regs.rax": { offset: 600, size: 8 },
    "user_regs.eax": { offset: 600, size: 8 },
    "user_regs.rcx": { offset: 608, size: 8 },
    "user_regs.ecx": { offset: 608, size: 8 },
    "user_regs.rdx": { offset: 616, size: 8 },
    "user_regs.edx": { offset: 616, size: 8 },
    "user_regs.rsi": { offset: 624, size: 8 },
    "user_regs.esi": { offset: 624, size: 8 },
    "user_regs.rdi": { offset: 632, size: 8 },
    "user_regs.edi": { offset: 632, size: 8 },
    "user_regs.error_code": { offset: 640, size: 4 },
    "user_regs.entry_vector": { offset: 644, size: 4 },
    "user_regs.rip": { offset: 648, size: 8 },
    "user_regs.eip": { offset: 648, size: 8 },
    "user_regs.cs": { offset: 656, size: 2 },
    "user_regs._pad0": { offset: 658, size: 2, count: 1 },
    "user_regs.saved_upcall_mask": { offset: 660, size: 1 },
    "user_regs._pad1": { offset: 661, size: 1, count: 3 },
    "user_regs.rflags": { offset: 664, size: 8 },
    "user_regs.eflags": { offset: 664, size: 8 },
    "user_regs.rsp": { offset: 672, size: 8 },
    "user_regs.esp": { offset: 672, size: 8 },
    "user_regs.ss": { offset: 680, size: 2 },
    "user_regs._pad2": { offset: 682, size: 2, count: 3 },
    "user_regs.es": { offset: 688, size: 2 },
    "user_regs._pad3": { offset: 690, size: 2, count: 3 },
    "user_regs.ds": { offset: 696, size: 2 },
    "user_regs._pad4": { offset: 698, size: 2, count: 3 },
    "user_regs.fs": { offset: 704, size: 2 },
    "user_regs._pad5": { offset: 706, size: 2, count: 3 },
    "user_regs.gs": { offset: 712, size: 2 },
    "user_regs._pad6": { offset: 714, size: 2, count: 3 },
    trap_ctxt: { offset: 720, size: 16, count: 256 },
    ldt_base: { offset: 4816, size: 8 },
    ldt_ents: { offset: 4824, size: 8 },
    gdt_frames: { offset: 4832, size: 8, count: 16 },
    gdt_ents: { offset: 4960, size: 8 },
    kernel_ss: { offset: 4968, size: 8 },
    kernel_sp: { offset: 4976, size: 8 },
    ctrlreg: { offset: 4984, size: 8, count: 8 },
    debugreg: { offset: 5048, size: 8, count: 8 },
    event_callback_eip: { offset: 5112, size: 8 },
    failsafe_callback_eip: { offset: 5120, size: 8 },
    syscall_callback_eip: { offset: 5128, size: 8 },
    vm_assist: { offset: 5136, size: 8 },
    fs_base: { offset: 5144, size: 8 },
    gs_base_kernel: { offset: 5152, size: 8 },
    gs_base_user: { offset: 5160, size: 8 },
  },
};
