/*
 * Xen 4.17 public/xen.h (with arch-x86/xen.h, arch-x86/xen-x86_64.h and arch-x86/xen-mca.h
 * for the x86 parts): hypercall numbers, VIRQs, MMU operations, domain ids, and the layouts
 * of the pages Xen shares with every PV guest (shared_info, vcpu_info, start_info).
 *
 * Invariant: every value equals the header's at the latest interface version
 * (__XEN_INTERFACE_VERSION__ = __XEN_LATEST_INTERFACE_VERSION__, which is what Xen itself
 * builds with). Layouts without a suffix are x86_64's; the _x86_32 / _x86_64 ones follow
 * public/foreign/x86_32.h and x86_64.h. 64-bit addresses are split into _HI and _LO halves.
 */
import type { StructLayout } from "./layout";

// Hypercall numbers: the index a guest puts in the hypercall page (__HYPERVISOR_*).
export const __HYPERVISOR_set_trap_table = 0;
export const __HYPERVISOR_mmu_update = 1;
export const __HYPERVISOR_set_gdt = 2;
export const __HYPERVISOR_stack_switch = 3;
export const __HYPERVISOR_set_callbacks = 4;
export const __HYPERVISOR_fpu_taskswitch = 5;
export const __HYPERVISOR_sched_op_compat = 6;
export const __HYPERVISOR_platform_op = 7;
export const __HYPERVISOR_set_debugreg = 8;
export const __HYPERVISOR_get_debugreg = 9;
export const __HYPERVISOR_update_descriptor = 10;
export const __HYPERVISOR_memory_op = 12;
export const __HYPERVISOR_multicall = 13;
export const __HYPERVISOR_update_va_mapping = 14;
export const __HYPERVISOR_set_timer_op = 15;
export const __HYPERVISOR_event_channel_op_compat = 16;
export const __HYPERVISOR_xen_version = 17;
export const __HYPERVISOR_console_io = 18;
export const __HYPERVISOR_physdev_op_compat = 19;
export const __HYPERVISOR_grant_table_op = 20;
export const __HYPERVISOR_vm_assist = 21;
export const __HYPERVISOR_update_va_mapping_otherdomain = 22;
export const __HYPERVISOR_iret = 23;
export const __HYPERVISOR_vcpu_op = 24;
export const __HYPERVISOR_set_segment_base = 25;
export const __HYPERVISOR_mmuext_op = 26;
export const __HYPERVISOR_xsm_op = 27;
export const __HYPERVISOR_nmi_op = 28;
export const __HYPERVISOR_sched_op = 29;
export const __HYPERVISOR_callback_op = 30;
export const __HYPERVISOR_xenoprof_op = 31;
export const __HYPERVISOR_event_channel_op = 32;
export const __HYPERVISOR_physdev_op = 33;
export const __HYPERVISOR_hvm_op = 34;
export const __HYPERVISOR_sysctl = 35;
export const __HYPERVISOR_domctl = 36;
export const __HYPERVISOR_kexec_op = 37;
export const __HYPERVISOR_tmem_op = 38;
export const __HYPERVISOR_argo_op = 39;
export const __HYPERVISOR_xenpmu_op = 40;
export const __HYPERVISOR_dm_op = 41;
export const __HYPERVISOR_hypfs_op = 42;
export const __HYPERVISOR_arch_0 = 48;
export const __HYPERVISOR_arch_1 = 49;
export const __HYPERVISOR_arch_2 = 50;
export const __HYPERVISOR_arch_3 = 51;
export const __HYPERVISOR_arch_4 = 52;
export const __HYPERVISOR_arch_5 = 53;
export const __HYPERVISOR_arch_6 = 54;
export const __HYPERVISOR_arch_7 = 55;
/** x86: machine-check operations use the first architecture-specific slot. */
export const __HYPERVISOR_mca = 48;

// Virtual interrupts a guest binds to an event channel (VIRQ_*).
export const VIRQ_TIMER = 0;
export const VIRQ_DEBUG = 1;
export const VIRQ_CONSOLE = 2;
export const VIRQ_DOM_EXC = 3;
export const VIRQ_TBUF = 4;
export const VIRQ_DEBUGGER = 6;
export const VIRQ_XENOPROF = 7;
export const VIRQ_CON_RING = 8;
export const VIRQ_PCPU_STATE = 9;
export const VIRQ_MEM_EVENT = 10;
export const VIRQ_ARGO = 11;
export const VIRQ_ENOMEM = 12;
export const VIRQ_XENPMU = 13;
export const VIRQ_ARCH_0 = 16;
export const VIRQ_ARCH_1 = 17;
export const VIRQ_ARCH_2 = 18;
export const VIRQ_ARCH_3 = 19;
export const VIRQ_ARCH_4 = 20;
export const VIRQ_ARCH_5 = 21;
export const VIRQ_ARCH_6 = 22;
export const VIRQ_ARCH_7 = 23;
/** x86: machine-check notification to dom0 (the first architecture-specific VIRQ). */
export const VIRQ_MCA = 16;
export const NR_VIRQS = 24;

// mmu_update: the low 2 bits of mmu_update.ptr select the command (MMU_*).
/** ptr is the machine address of a PTE; write val after validating it. */
export const MMU_NORMAL_PT_UPDATE = 0;
/** ptr is a machine frame's address; set its M2P entry to val. */
export const MMU_MACHPHYS_UPDATE = 1;
/** As MMU_NORMAL_PT_UPDATE, keeping the entry's Accessed and Dirty bits. */
export const MMU_PT_UPDATE_PRESERVE_AD = 2;
/** As MMU_NORMAL_PT_UPDATE, with val's frame taken as machine, not guest. */
export const MMU_PT_UPDATE_NO_TRANSLATE = 3;

// mmuext_op commands (MMUEXT_*).
export const MMUEXT_PIN_L1_TABLE = 0;
export const MMUEXT_PIN_L2_TABLE = 1;
export const MMUEXT_PIN_L3_TABLE = 2;
export const MMUEXT_PIN_L4_TABLE = 3;
export const MMUEXT_UNPIN_TABLE = 4;
export const MMUEXT_NEW_BASEPTR = 5;
export const MMUEXT_TLB_FLUSH_LOCAL = 6;
export const MMUEXT_INVLPG_LOCAL = 7;
export const MMUEXT_TLB_FLUSH_MULTI = 8;
export const MMUEXT_INVLPG_MULTI = 9;
export const MMUEXT_TLB_FLUSH_ALL = 10;
export const MMUEXT_INVLPG_ALL = 11;
export const MMUEXT_FLUSH_CACHE = 12;
export const MMUEXT_SET_LDT = 13;
export const MMUEXT_NEW_USER_BASEPTR = 15;
export const MMUEXT_CLEAR_PAGE = 16;
export const MMUEXT_COPY_PAGE = 17;
export const MMUEXT_FLUSH_CACHE_GLOBAL = 18;
export const MMUEXT_MARK_SUPER = 19;
export const MMUEXT_UNMARK_SUPER = 20;

// update_va_mapping flags (UVMF_*): a flush type in bits 0-1, a flush scope in bit 2.
/** No TLB flush. */
export const UVMF_NONE = 0x0;
/** Flush whole TLBs. */
export const UVMF_TLB_FLUSH = 0x1;
/** Flush the one mapping. */
export const UVMF_INVLPG = 0x2;
export const UVMF_FLUSHTYPE_MASK = 0x3;
/** Flush the TLBs of the vCPUs in the bitmap whose address is in the upper bits. */
export const UVMF_MULTI = 0x0;
/** Flush this vCPU's TLB only. */
export const UVMF_LOCAL = 0x0;
/** Flush every vCPU's TLB. */
export const UVMF_ALL = 0x4;

// console_io commands.
export const CONSOLEIO_write = 0;
export const CONSOLEIO_read = 1;

// vm_assist commands and types (VMASST_*).
export const VMASST_CMD_enable = 0;
export const VMASST_CMD_disable = 1;
export const VMASST_TYPE_4gb_segments = 0;
export const VMASST_TYPE_4gb_segments_notify = 1;
export const VMASST_TYPE_writable_pagetables = 2;
export const VMASST_TYPE_pae_extended_cr3 = 3;
export const VMASST_TYPE_architectural_iopl = 4;
export const VMASST_TYPE_runstate_update_flag = 5;
export const VMASST_TYPE_m2p_strict = 32;

// Reserved domain ids (DOMID_*): ids at or above DOMID_FIRST_RESERVED name no real domain.
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;
export const DOMID_IO = 0x7ff1;
export const DOMID_XEN = 0x7ff2;
export const DOMID_COW = 0x7ff3;
export const DOMID_INVALID = 0x7ff4;
export const DOMID_IDLE = 0x7fff;
export const DOMID_MASK = 0x7fff;

// vcpu_time_info.flags bits.
export const XEN_PVCLOCK_TSC_STABLE_BIT = 0x1;
export const XEN_PVCLOCK_GUEST_STOPPED = 0x2;

// start_info.flags bits (SIF_*).
export const SIF_PRIVILEGED = 0x1;
export const SIF_INITDOMAIN = 0x2;
export const SIF_MULTIBOOT_MOD = 0x4;
export const SIF_MOD_START_PFN = 0x8;
export const SIF_VIRT_P2M_4TOOLS = 0x10;
export const SIF_PM_MASK = 0xff00;
/** Bytes in start_info.cmd_line. */
export const MAX_GUEST_CMDLINE = 1024;
/** vcpu_info slots in shared_info (x86). */
export const XEN_LEGACY_MAX_VCPUS = 32;

// x86_64 PV virtual layout: the hole Xen reserves at the bottom of the upper canonical half,
// and the read-only M2P table inside it (arch-x86/xen-x86_64.h). 64-bit, so in halves.
export const HYPERVISOR_VIRT_START_HI = 0xffff8000;
export const HYPERVISOR_VIRT_START_LO = 0;
export const HYPERVISOR_VIRT_END_HI = 0xffff8800;
export const HYPERVISOR_VIRT_END_LO = 0;
export const MACH2PHYS_VIRT_START_HI = 0xffff8000;
export const MACH2PHYS_VIRT_START_LO = 0;
export const MACH2PHYS_VIRT_END_HI = 0xffff8040;
export const MACH2PHYS_VIRT_END_LO = 0;
/** Entries (8 bytes each) in the M2P table: 2^35, exact as a number. */
export const MACH2PHYS_NR_ENTRIES = 34359738368;

// x86_64 flat segment selectors a PV guest runs with.
export const FLAT_RING3_CS32 = 0xe023;
export const FLAT_RING3_CS64 = 0xe033;
export const FLAT_RING3_DS32 = 0xe02b;
export const FLAT_RING3_DS64 = 0x0;
export const FLAT_RING3_SS32 = 0xe02b;
export const FLAT_RING3_SS64 = 0xe02b;
export const FLAT_KERNEL_DS64 = 0x0;
export const FLAT_KERNEL_DS32 = 0xe02b;
export const FLAT_KERNEL_DS = 0x0;
export const FLAT_KERNEL_CS64 = 0xe033;
export const FLAT_KERNEL_CS32 = 0xe023;
export const FLAT_KERNEL_CS = 0xe033;
export const FLAT_KERNEL_SS64 = 0xe02b;
export const FLAT_KERNEL_SS32 = 0xe02b;
export const FLAT_KERNEL_SS = 0xe02b;
export const FLAT_USER_DS64 = 0x0;
export const FLAT_USER_DS32 = 0xe02b;
export const FLAT_USER_DS = 0x0;
export const FLAT_USER_CS64 = 0xe033;
export const FLAT_USER_CS32 = 0xe023;
export const FLAT_USER_CS = 0xe033;
export const FLAT_USER_SS64 = 0xe02b;
export const FLAT_USER_SS32 = 0xe02b;
export const FLAT_USER_SS = 0xe02b;

// vcpu_guest_context.flags bits (VGCF_*).
export const _VGCF_i387_valid = 0;
export const VGCF_i387_valid = 0x1;
export const _VGCF_in_kernel = 2;
export const VGCF_in_kernel = 0x4;
export const _VGCF_failsafe_disables_events = 3;
export const VGCF_failsafe_disables_events = 0x8;
export const _VGCF_syscall_disables_events = 4;
export const VGCF_syscall_disables_events = 0x10;
export const _VGCF_online = 5;
export const VGCF_online = 0x20;
/** First GDT page Xen keeps for itself. */
export const FIRST_RESERVED_GDT_PAGE = 14;
export const FIRST_RESERVED_GDT_BYTE = 0xe000;
export const FIRST_RESERVED_GDT_ENTRY = 0x1c00;

/** One element of an mmu_update batch: ptr (command in its low 2 bits) and val. */
export const mmu_update: StructLayout = {
  cName: "struct mmu_update",
  sizeof: 16,
  fields: {
    ptr: { offset: 0, size: 8 },
    val: { offset: 8, size: 8 },
  },
};

/** One element of an mmuext_op batch (x86_64). */
export const mmuext_op: StructLayout = {
  cName: "struct mmuext_op",
  sizeof: 24,
  fields: {
    cmd: { offset: 0, size: 4 },
    arg1: { offset: 8, size: 8 },
    "arg1.mfn": { offset: 8, size: 8 },
    "arg1.linear_addr": { offset: 8, size: 8 },
    arg2: { offset: 16, size: 8 },
    "arg2.nr_ents": { offset: 16, size: 4 },
    "arg2.vcpumask": { offset: 16, size: 8 },
    "arg2.vcpumask.p": { offset: 16, size: 8 },
    "arg2.src_mfn": { offset: 16, size: 8 },
  },
};

/** One element of a multicall batch (x86_64: xen_ulong_t is 8 bytes). */
export const multicall_entry: StructLayout = {
  cName: "struct multicall_entry",
  sizeof: 64,
  fields: {
    op: { offset: 0, size: 8 },
    result: { offset: 8, size: 8 },
    args: { offset: 16, size: 8, count: 6 },
  },
};

/** Per-vCPU system time parameters (same on x86_32 and x86_64). */
export const vcpu_time_info: StructLayout = {
  cName: "struct vcpu_time_info",
  sizeof: 32,
  fields: {
    version: { offset: 0, size: 4 },
    pad0: { offset: 4, size: 4 },
    tsc_timestamp: { offset: 8, size: 8 },
    system_time: { offset: 16, size: 8 },
    tsc_to_system_mul: { offset: 24, size: 4 },
    tsc_shift: { offset: 28, size: 1 },
    flags: { offset: 29, size: 1 },
    pad1: { offset: 30, size: 1, count: 2 },
  },
};

/** x86 part of vcpu_info, x86_64 guest: cr2 of the last page fault. */
export const arch_vcpu_info_x86_64: StructLayout = {
  cName: "struct arch_vcpu_info_x86_64",
  sizeof: 16,
  fields: {
    cr2: { offset: 0, size: 8 },
    pad: { offset: 8, size: 8 },
  },
};

/** x86 part of vcpu_info, x86_32 guest. */
export const arch_vcpu_info_x86_32: StructLayout = {
  cName: "struct arch_vcpu_info_x86_32",
  sizeof: 24,
  fields: {
    cr2: { offset: 0, size: 4 },
    pad: { offset: 4, size: 4, count: 5 },
  },
};

/** A vCPU's slot in shared_info (or wherever VCPUOP_register_vcpu_info put it), x86_64 guest. */
export const vcpu_info_x86_64: StructLayout = {
  cName: "struct vcpu_info_x86_64",
  sizeof: 64,
  fields: {
    evtchn_upcall_pending: { offset: 0, size: 1 },
    evtchn_upcall_mask: { offset: 1, size: 1 },
    evtchn_pending_sel: { offset: 8, size: 8 },
    arch: { offset: 16, size: 16 },
    "arch.cr2": { offset: 16, size: 8 },
    "arch.pad": { offset: 24, size: 8 },
    time: { offset: 32, size: 32 },
    "time.version": { offset: 32, size: 4 },
    "time.pad0": { offset: 36, size: 4 },
    "time.tsc_timestamp": { offset: 40, size: 8 },
    "time.system_time": { offset: 48, size: 8 },
    "time.tsc_to_system_mul": { offset: 56, size: 4 },
    "time.tsc_shift": { offset: 60, size: 1 },
    "time.flags": { offset: 61, size: 1 },
    "time.pad1": { offset: 62, size: 1, count: 2 },
  },
};

/** A vCPU's slot in shared_info, x86_32 guest. */
export const vcpu_info_x86_32: StructLayout = {
  cName: "struct vcpu_info_x86_32",
  sizeof: 64,
  fields: {
    evtchn_upcall_pending: { offset: 0, size: 1 },
    evtchn_upcall_mask: { offset: 1, size: 1 },
    evtchn_pending_sel: { offset: 4, size: 4 },
    arch: { offset: 8, size: 24 },
    "arch.cr2": { offset: 8, size: 4 },
    "arch.pad": { offset: 12, size: 4, count: 5 },
    time: { offset: 32, size: 32 },
    "time.version": { offset: 32, size: 4 },
    "time.pad0": { offset: 36, size: 4 },
    "time.tsc_timestamp": { offset: 40, size: 8 },
    "time.system_time": { offset: 48, size: 8 },
    "time.tsc_to_system_mul": { offset: 56, size: 4 },
    "time.tsc_shift": { offset: 60, size: 1 },
    "time.flags": { offset: 61, size: 1 },
    "time.pad1": { offset: 62, size: 1, count: 2 },
  },
};

/** x86 part of shared_info, x86_64 guest: P2M location for the toolstack, NMI reason. */
export const arch_shared_info_x86_64: StructLayout = {
  cName: "struct arch_shared_info_x86_64",
  sizeof: 48,
  fields: {
    max_pfn: { offset: 0, size: 8 },
    pfn_to_mfn_frame_list_list: { offset: 8, size: 8 },
    nmi_reason: { offset: 16, size: 8 },
    p2m_cr3: { offset: 24, size: 8 },
    p2m_vaddr: { offset: 32, size: 8 },
    p2m_generation: { offset: 40, size: 8 },
  },
};

/** x86 part of shared_info, x86_32 guest. */
export const arch_shared_info_x86_32: StructLayout = {
  cName: "struct arch_shared_info_x86_32",
  sizeof: 28,
  fields: {
    max_pfn: { offset: 0, size: 4 },
    pfn_to_mfn_frame_list_list: { offset: 4, size: 4 },
    nmi_reason: { offset: 8, size: 4 },
    p2m_cr3: { offset: 12, size: 4 },
    p2m_vaddr: { offset: 16, size: 4 },
    p2m_generation: { offset: 20, size: 4 },
    wc_sec_hi: { offset: 24, size: 4 },
  },
};

/** The shared info page, x86_64 guest. vcpu_info elements follow vcpu_info_x86_64. */
export const shared_info_x86_64: StructLayout = {
  cName: "struct shared_info_x86_64",
  sizeof: 3136,
  fields: {
    vcpu_info: { offset: 0, size: 64, count: 32 },
    evtchn_pending: { offset: 2048, size: 8, count: 64 },
    evtchn_mask: { offset: 2560, size: 8, count: 64 },
    wc_version: { offset: 3072, size: 4 },
    wc_sec: { offset: 3076, size: 4 },
    wc_nsec: { offset: 3080, size: 4 },
    wc_sec_hi: { offset: 3084, size: 4 },
    arch: { offset: 3088, size: 48 },
    "arch.max_pfn": { offset: 3088, size: 8 },
    "arch.pfn_to_mfn_frame_list_list": { offset: 3096, size: 8 },
    "arch.nmi_reason": { offset: 3104, size: 8 },
    "arch.p2m_cr3": { offset: 3112, size: 8 },
    "arch.p2m_vaddr": { offset: 3120, size: 8 },
    "arch.p2m_generation": { offset: 3128, size: 8 },
  },
};

/** The shared info page, x86_32 guest. vcpu_info elements follow vcpu_info_x86_32. */
export const shared_info_x86_32: StructLayout = {
  cName: "struct shared_info_x86_32",
  sizeof: 2344,
  fields: {
    vcpu_info: { offset: 0, size: 64, count: 32 },
    evtchn_pending: { offset: 2048, size: 4, count: 32 },
    evtchn_mask: { offset: 2176, size: 4, count: 32 },
    wc_version: { offset: 2304, size: 4 },
    wc_sec: { offset: 2308, size: 4 },
    wc_nsec: { offset: 2312, size: 4 },
    arch: { offset: 2316, size: 28 },
    "arch.max_pfn": { offset: 2316, size: 4 },
    "arch.pfn_to_mfn_frame_list_list": { offset: 2320, size: 4 },
    "arch.nmi_reason": { offset: 2324, size: 4 },
    "arch.p2m_cr3": { offset: 2328, size: 4 },
    "arch.p2m_vaddr": { offset: 2332, size: 4 },
    "arch.p2m_generation": { offset: 2336, size: 4 },
    "arch.wc_sec_hi": { offset: 2340, size: 4 },
  },
};

/** The start info page a PV guest finds at boot, x86_64 guest. */
export const start_info_x86_64: StructLayout = {
  cName: "struct start_info_x86_64",
  sizeof: 1168,
  fields: {
    magic: { offset: 0, size: 1, count: 32 },
    nr_pages: { offset: 32, size: 8 },
    shared_info: { offset: 40, size: 8 },
    flags: { offset: 48, size: 4 },
    store_mfn: { offset: 56, size: 8 },
    store_evtchn: { offset: 64, size: 4 },
    console: { offset: 72, size: 16 },
    "console.domU": { offset: 72, size: 16 },
    "console.domU.mfn": { offset: 72, size: 8 },
    "console.domU.evtchn": { offset: 80, size: 4 },
    "console.dom0": { offset: 72, size: 8 },
    "console.dom0.info_off": { offset: 72, size: 4 },
    "console.dom0.info_size": { offset: 76, size: 4 },
    pt_base: { offset: 88, size: 8 },
    nr_pt_frames: { offset: 96, size: 8 },
    mfn_list: { offset: 104, size: 8 },
    mod_start: { offset: 112, size: 8 },
    mod_len: { offset: 120, size: 8 },
    cmd_line: { offset: 128, size: 1, count: 1024 },
    first_p2m_pfn: { offset: 1152, size: 8 },
    nr_p2m_frames: { offset: 1160, size: 8 },
  },
};

/** The start info page a PV guest finds at boot, x86_32 guest. */
export const start_info_x86_32: StructLayout = {
  cName: "struct start_info_x86_32",
  sizeof: 1112,
  fields: {
    magic: { offset: 0, size: 1, count: 32 },
    nr_pages: { offset: 32, size: 4 },
    shared_info: { offset: 36, size: 4 },
    flags: { offset: 40, size: 4 },
    store_mfn: { offset: 44, size: 4 },
    store_evtchn: { offset: 48, size: 4 },
    console: { offset: 52, size: 8 },
    "console.domU": { offset: 52, size: 8 },
    "console.domU.mfn": { offset: 52, size: 4 },
    "console.domU.evtchn": { offset: 56, size: 4 },
    "console.dom0": { offset: 52, size: 8 },
    "console.dom0.info_off": { offset: 52, size: 4 },
    "console.dom0.info_size": { offset: 56, size: 4 },
    pt_base: { offset: 60, size: 4 },
    nr_pt_frames: { offset: 64, size: 4 },
    mfn_list: { offset: 68, size: 4 },
    mod_start: { offset: 72, size: 4 },
    mod_len: { offset: 76, size: 4 },
    cmd_line: { offset: 80, size: 1, count: 1024 },
    first_p2m_pfn: { offset: 1104, size: 4 },
    nr_p2m_frames: { offset: 1108, size: 4 },
  },
};
