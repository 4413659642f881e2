/*
 * Xen 4.17 public/memory.h: memory reservation operations, their argument structs and the
 * XENMEMF_* flag bits that are plain constants (the rest of XENMEMF_* are macros of an
 * argument: address bits in bits 0-7, XENMEMF_node(n) = (n + 1) << 8).
 *
 * Invariant: every value equals the header's with __XEN_TOOLS__ defined (which makes the
 * tools-only operations visible); layouts are x86_64's.
 */
import type { StructLayout } from "./layout";

// Operations of HYPERVISOR_memory_op (XENMEM_*).
export const XENMEM_increase_reservation = 0;
export const XENMEM_decrease_reservation = 1;
export const XENMEM_maximum_ram_page = 2;
export const XENMEM_current_reservation = 3;
export const XENMEM_maximum_reservation = 4;
export const XENMEM_machphys_mfn_list = 5;
export const XENMEM_populate_physmap = 6;
export const XENMEM_add_to_physmap = 7;
export const XENMEM_memory_map = 9;
export const XENMEM_machine_memory_map = 10;
export const XENMEM_exchange = 11;
export const XENMEM_machphys_mapping = 12;
export const XENMEM_set_memory_map = 13;
export const XENMEM_maximum_gpfn = 14;
export const XENMEM_remove_from_physmap = 15;
export const XENMEM_set_pod_target = 16;
export const XENMEM_get_pod_target = 17;
export const XENMEM_get_sharing_freed_pages = 18;
export const XENMEM_get_sharing_shared_pages = 19;
export const XENMEM_paging_op = 20;
export const XENMEM_access_op = 21;
export const XENMEM_sharing_op = 22;
export const XENMEM_add_to_physmap_batch = 23;
export const XENMEM_claim_pages = 24;
export const XENMEM_machphys_compat_mfn_list = 25;
export const XENMEM_get_vnumainfo = 26;
export const XENMEM_reserved_device_memory_map = 27;
export const XENMEM_acquire_resource = 28;

// Sub-operations and flags of the tools-only operations.
export const XENMEM_paging_op_nominate = 0;
export const XENMEM_paging_op_evict = 1;
export const XENMEM_paging_op_prep = 2;
export const XENMEM_access_op_set_access = 0;
export const XENMEM_access_op_get_access = 1;
export const XENMEM_access_op_set_access_multi = 4;
export const XENMEM_sharing_op_nominate_gfn = 0;
export const XENMEM_sharing_op_nominate_gref = 1;
export const XENMEM_sharing_op_share = 2;
export const XENMEM_sharing_op_debug_gfn = 3;
export const XENMEM_sharing_op_debug_mfn = 4;
export const XENMEM_sharing_op_debug_gref = 5;
export const XENMEM_sharing_op_add_physmap = 6;
export const XENMEM_sharing_op_audit = 7;
export const XENMEM_sharing_op_range_share = 8;
export const XENMEM_sharing_op_fork = 9;
export const XENMEM_sharing_op_fork_reset = 10;
export const XENMEM_SHARING_OP_S_HANDLE_INVALID = -10;
export const XENMEM_SHARING_OP_C_HANDLE_INVALID = -9;
/** Bit 62 of a sharing-op field: the field holds a grant reference. */
export const XENMEM_SHARING_OP_FIELD_IS_GREF_FLAG_HI = 0x40000000;
export const XENMEM_SHARING_OP_FIELD_IS_GREF_FLAG_LO = 0;
export const XENMEM_FORK_WITH_IOMMU_ALLOWED = 0x1;
export const XENMEM_FORK_BLOCK_INTERRUPTS = 0x2;
export const XENMEM_FORK_RESET_STATE = 0x4;
export const XENMEM_FORK_RESET_MEMORY = 0x8;
export const XENMEM_RDM_ALL = 1;
export const XENMEM_resource_ioreq_server = 0;
export const XENMEM_resource_grant_table = 1;
export const XENMEM_resource_vmtrace_buf = 2;
export const XENMEM_resource_grant_table_id_shared = 0;
export const XENMEM_resource_grant_table_id_status = 1;
export const XENMEM_resource_ioreq_server_frame_bufioreq = 0;

// XENMEMF_* flags that are plain constants.
export const XENMEMF_populate_on_demand = 0x10000;
export const XENMEMF_exact_node_request = 0x20000;
export const XENMEMF_vnode = 0x40000;

// xen_add_to_physmap.space (XENMAPSPACE_*).
export const XENMAPSPACE_shared_info = 0;
export const XENMAPSPACE_grant_table = 1;
export const XENMAPSPACE_gmfn = 2;
export const XENMAPSPACE_gmfn_range = 3;
export const XENMAPSPACE_gmfn_foreign = 4;
export const XENMAPSPACE_dev_mmio = 5;
export const XENMAPIDX_grant_table_status = 0x80000000;

/** XENMEM_increase_reservation / decrease_reservation / populate_physmap / claim_pages. */
export const xen_memory_reservation: StructLayout = {
  cName: "struct xen_memory_reservation",
  sizeof: 32,
  fields: {
    extent_start: { offset: 0, size: 8 },
    "extent_start.p": { offset: 0, size: 8 },
    nr_extents: { offset: 8, size: 8 },
    extent_order: { offset: 16, size: 4 },
    mem_flags: { offset: 20, size: 4 },
    domid: { offset: 24, size: 2 },
  },
};

/** XENMEM_exchange: trade a set of frames for another (e.g. machine-contiguous) set. */
export const xen_memory_exchange: StructLayout = {
  cName: "struct xen_memory_exchange",
  sizeof: 72,
  fields: {
    in: { offset: 0, size: 32 },
    "in.extent_start": { offset: 0, size: 8 },
    "in.extent_start.p": { offset: 0, size: 8 },
    "in.nr_extents": { offset: 8, size: 8 },
    "in.extent_order": { offset: 16, size: 4 },
    "in.mem_flags": { offset: 20, size: 4 },
    "in.domid": { offset: 24, size: 2 },
    out: { offset: 32, size: 32 },
    "out.extent_start": { offset: 32, size: 8 },
    "out.extent_start.p": { offset: 32, size: 8 },
    "out.nr_extents": { offset: 40, size: 8 },
    "out.extent_order": { offset: 48, size: 4 },
    "out.mem_flags": { offset: 52, size: 4 },
    "out.domid": { offset: 56, size: 2 },
    nr_exchanged: { offset: 64, size: 8 },
  },
};

/** XENMEM_machphys_mfn_list: the frames that hold the M2P table. */
export const xen_machphys_mfn_list: StructLayout = {
  cName: "struct xen_machphys_mfn_list",
  sizeof: 24,
  fields: {
    max_extents: { offset: 0, size: 4 },
    extent_start: { offset: 8, size: 8 },
    "extent_start.p": { offset: 8, size: 8 },
    nr_extents: { offset: 16, size: 4 },
  },
};

/** XENMEM_machphys_mapping: where the read-only M2P table is mapped. */
export const xen_machphys_mapping: StructLayout = {
  cName: "struct xen_machphys_mapping",
  sizeof: 24,
  fields: {
    v_start: { offset: 0, size: 8 },
    v_end: { offset: 8, size: 8 },
    max_mfn: { offset: 16, size: 8 },
  },
};

/** XENMEM_add_to_physmap: map a Xen page (shared_info, grant table, ...) at a guest pfn. */
export const xen_add_to_physmap: StructLayout = {
  cName: "struct xen_add_to_physmap",
  sizeof: 24,
  fields: {
    domid: { offset: 0, size: 2 },
    size: { offset: 2, size: 2 },
    space: { offset: 4, size: 4 },
    idx: { offset: 8, size: 8 },
    gpfn: { offset: 16, size: 8 },
  },
};

/** XENMEM_remove_from_physmap: unmap a guest pfn. */
export const xen_remove_from_physmap: StructLayout = {
  cName: "struct xen_remove_from_physmap",
  sizeof: 16,
  fields: {
    domid: { offset: 0, size: 2 },
    gpfn: { offset: 8, size: 8 },
  },
};

/** XENMEM_memory_map / machine_memory_map: an e820-style map. */
export const xen_memory_map: StructLayout = {
  cName: "struct xen_memory_map",
  sizeof: 16,
  fields: {
    nr_entries: { offset: 0, size: 4 },
    buffer: { offset: 8, size: 8 },
    "buffer.p": { offset: 8, size: 8 },
  },
};

/** XENMEM_set_memory_map: set a domain's e820-style map. */
export const xen_foreign_memory_map: StructLayout = {
  cName: "struct xen_foreign_memory_map",
  sizeof: 24,
  fields: {
    domid: { offset: 0, size: 2 },
    map: { offset: 8, size: 16 },
    "map.nr_entries": { offset: 8, size: 4 },
    "map.buffer": { offset: 16, size: 8 },
    "map.buffer.p": { offset: 16, size: 8 },
  },
};

/** XENMEM_set_pod_target / get_pod_target: populate-on-demand accounting. */
export const xen_pod_target: StructLayout = {
  cName: "struct xen_pod_target",
  sizeof: 40,
  fields: {
    target_pages: { offset: 0, size: 8 },
    tot_pages: { offset: 8, size: 8 },
    pod_cache_pages: { offset: 16, size: 8 },
    pod_entries: { offset: 24, size: 8 },
    domid: { offset: 32, size: 2 },
  },
};
