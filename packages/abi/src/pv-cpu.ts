/*
 * Xen 4.17 public/callback.h, public/version.h, public/features.h and the x86_64 parts of
 * arch-x86/xen.h / xen-x86_64.h a PV guest's CPU state needs: callback types and ops,
 * XENVER_* commands and their result layouts, XENFEAT_* bits, trap_info, iret_context and
 * SEGBASE_*.
 *
 * Invariant: every value equals the header's (test/abi-vs-headers.test.ts checks them).
 */
import type { StructLayout } from "./layout";

// public/callback.h: callback types (CALLBACKTYPE_*), flags and ops.
export const CALLBACKTYPE_event = 0;
export const CALLBACKTYPE_failsafe = 1;
export const CALLBACKTYPE_syscall = 2;
export const CALLBACKTYPE_sysenter_deprecated = 3;
export const CALLBACKTYPE_nmi = 4;
export const CALLBACKTYPE_sysenter = 5;
export const CALLBACKTYPE_syscall32 = 7;
export const _CALLBACKF_mask_events = 0;
export const CALLBACKF_mask_events = 0x1;
export const CALLBACKOP_register = 0;
export const CALLBACKOP_unregister = 1;

/** CALLBACKOP_register's argument (x86_64: xen_callback_t is an unsigned long). */
export const callback_register: StructLayout = {
  cName: "struct callback_register",
  sizeof: 16,
  fields: {
    type: { offset: 0, size: 2 },
    flags: { offset: 2, size: 2 },
    address: { offset: 8, size: 8 },
  },
};

/** CALLBACKOP_unregister's argument. */
export const callback_unregister: StructLayout = {
  cName: "struct callback_unregister",
  sizeof: 4,
  fields: {
    type: { offset: 0, size: 2 },
    _unused: { offset: 2, size: 2 },
  },
};

// public/version.h: xen_version commands (XENVER_*).
export const XENVER_version = 0;
export const XENVER_extraversion = 1;
export const XENVER_compile_info = 2;
export const XENVER_capabilities = 3;
export const XENVER_changeset = 4;
export const XENVER_platform_parameters = 5;
export const XENVER_get_features = 6;
export const XENVER_pagesize = 7;
export const XENVER_guest_handle = 8;
export const XENVER_commandline = 9;
export const XENVER_build_id = 10;
/** Bytes of xen_extraversion_t, xen_capabilities_info_t, xen_changeset_info_t. */
export const XEN_EXTRAVERSION_LEN = 16;
export const XEN_CAPABILITIES_INFO_LEN = 1024;
export const XEN_CHANGESET_INFO_LEN = 64;

export const xen_compile_info: StructLayout = {
  cName: "struct xen_compile_info",
  sizeof: 144,
  fields: {
    compiler: { offset: 0, size: 1, count: 64 },
    compile_by: { offset: 64, size: 1, count: 16 },
    compile_domain: { offset: 80, size: 1, count: 32 },
    compile_date: { offset: 112, size: 1, count: 32 },
  },
};

export const xen_platform_parameters: StructLayout = {
  cName: "struct xen_platform_parameters",
  sizeof: 8,
  fields: { virt_start: { offset: 0, size: 8 } },
};

export const xen_feature_info: StructLayout = {
  cName: "struct xen_feature_info",
  sizeof: 8,
  fields: {
    submap_idx: { offset: 0, size: 4 },
    submap: { offset: 4, size: 4 },
  },
};

// public/features.h: XENVER_get_features bits (XENFEAT_*).
export const XENFEAT_writable_page_tables = 0;
export const XENFEAT_writable_descriptor_tables = 1;
export const XENFEAT_auto_translated_physmap = 2;
export const XENFEAT_supervisor_mode_kernel = 3;
export const XENFEAT_pae_pgdir_above_4gb = 4;
export const XENFEAT_mmu_pt_update_preserve_ad = 5;
export const XENFEAT_highmem_assist = 6;
export const XENFEAT_gnttab_map_avail_bits = 7;
export const XENFEAT_hvm_callback_vector = 8;
export const XENFEAT_hvm_safe_pvclock = 9;
export const XENFEAT_hvm_pirqs = 10;
export const XENFEAT_dom0 = 11;
export const XENFEAT_memory_op_vnode_supported = 13;
export const XENFEAT_ARM_SMCCC_supported = 14;
export const XENFEAT_linux_rsdp_unrestricted = 15;
export const XENFEAT_not_direct_mapped = 16;
export const XENFEAT_direct_mapped = 17;
export const XENFEAT_NR_SUBMAPS = 1;

/** One entry of the virtual IDT set_trap_table reads (flags: DPL in 0-1, bit 2 keeps events enabled). */
export const trap_info: StructLayout = {
  cName: "struct trap_info",
  sizeof: 16,
  fields: {
    vector: { offset: 0, size: 1 },
    flags: { offset: 1, size: 1 },
    cs: { offset: 2, size: 2 },
    address: { offset: 8, size: 8 },
  },
};

/** The frame HYPERVISOR_iret pops from the guest stack (x86_64). */
export const iret_context: StructLayout = {
  cName: "struct iret_context",
  sizeof: 72,
  fields: {
    rax: { offset: 0, size: 8 },
    r11: { offset: 8, size: 8 },
    rcx: { offset: 16, size: 8 },
    flags: { offset: 24, size: 8 },
    rip: { offset: 32, size: 8 },
    cs: { offset: 40, size: 8 },
    rflags: { offset: 48, size: 8 },
    rsp: { offset: 56, size: 8 },
    ss: { offset: 64, size: 8 },
  },
};

// arch-x86/xen-x86_64.h: set_segment_base's `which`, and iret_context.flags.
export const SEGBASE_FS = 0;
export const SEGBASE_GS_USER = 1;
export const SEGBASE_GS_KERNEL = 2;
export const SEGBASE_GS_USER_SEL = 3;
export const _VGCF_in_syscall = 8;
export const VGCF_in_syscall = 0x100;
