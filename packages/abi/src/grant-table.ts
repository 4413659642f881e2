/*
 * Xen 4.17 public/grant_table.h: grant table operations, grant entry formats (v1 and v2),
 * their flag bits, mapping flags and per-operation status codes.
 *
 * Invariant: every value equals the header's at the latest interface version; layouts are
 * x86_64's.
 */
import type { StructLayout } from "./layout";

// Operations of HYPERVISOR_grant_table_op (GNTTABOP_*).
export const GNTTABOP_map_grant_ref = 0;
export const GNTTABOP_unmap_grant_ref = 1;
export const GNTTABOP_setup_table = 2;
export const GNTTABOP_dump_table = 3;
export const GNTTABOP_transfer = 4;
export const GNTTABOP_copy = 5;
export const GNTTABOP_query_size = 6;
export const GNTTABOP_unmap_and_replace = 7;
export const GNTTABOP_set_version = 8;
export const GNTTABOP_get_status_frames = 9;
export const GNTTABOP_get_version = 10;
export const GNTTABOP_swap_grant_ref = 11;
export const GNTTABOP_cache_flush = 12;

// Grant references the toolstack reserves.
export const GNTTAB_NR_RESERVED_ENTRIES = 8;
export const GNTTAB_RESERVED_CONSOLE = 0;
export const GNTTAB_RESERVED_XENSTORE = 1;

// Grant entry flags: type in bits 0-1 (GTF_type_mask), then access bits.
export const GTF_invalid = 0x0;
export const GTF_permit_access = 0x1;
export const GTF_accept_transfer = 0x2;
export const GTF_transitive = 0x3;
export const GTF_type_mask = 0x3;
export const _GTF_readonly = 2;
export const GTF_readonly = 0x4;
export const _GTF_reading = 3;
export const GTF_reading = 0x8;
export const _GTF_writing = 4;
export const GTF_writing = 0x10;
export const _GTF_PWT = 5;
export const GTF_PWT = 0x20;
export const _GTF_PCD = 6;
export const GTF_PCD = 0x40;
export const _GTF_PAT = 7;
export const GTF_PAT = 0x80;
export const _GTF_sub_page = 8;
export const GTF_sub_page = 0x100;

// Transfer-entry flags.
export const _GTF_transfer_committed = 2;
export const GTF_transfer_committed = 0x4;
export const _GTF_transfer_completed = 3;
export const GTF_transfer_completed = 0x8;

// gnttab_copy.flags.
export const _GNTCOPY_source_gref = 0;
export const GNTCOPY_source_gref = 0x1;
export const _GNTCOPY_dest_gref = 1;
export const GNTCOPY_dest_gref = 0x2;

// gnttab_cache_flush.op.
export const GNTTAB_CACHE_CLEAN = 0x1;
export const GNTTAB_CACHE_INVAL = 0x2;
export const GNTTAB_CACHE_SOURCE_GREF = 0x80000000;

// Mapping flags (GNTMAP_*), with their bit numbers (_GNTMAP_*).
export const _GNTMAP_device_map = 0;
export const GNTMAP_device_map = 0x1;
export const _GNTMAP_host_map = 1;
export const GNTMAP_host_map = 0x2;
export const _GNTMAP_readonly = 2;
export const GNTMAP_readonly = 0x4;
export const _GNTMAP_application_map = 3;
export const GNTMAP_application_map = 0x8;
export const _GNTMAP_contains_pte = 4;
export const GNTMAP_contains_pte = 0x10;
export const _GNTMAP_guest_avail0 = 16;
export const GNTMAP_guest_avail_mask = 0xffff0000;

// Per-operation status codes (GNTST_*).
export const GNTST_okay = 0;
export const GNTST_general_error = -1;
export const GNTST_bad_domain = -2;
export const GNTST_bad_gntref = -3;
export const GNTST_bad_handle = -4;
export const GNTST_bad_virt_addr = -5;
export const GNTST_bad_dev_addr = -6;
export const GNTST_no_device_space = -7;
export const GNTST_permission_denied = -8;
export const GNTST_bad_page = -9;
export const GNTST_bad_copy_arg = -10;
export const GNTST_address_too_big = -11;
export const GNTST_eagain = -12;
export const GNTST_no_space = -13;

/** A version 1 grant entry (8 bytes). */
export const grant_entry_v1: StructLayout = {
  cName: "struct grant_entry_v1",
  sizeof: 8,
  fields: {
    flags: { offset: 0, size: 2 },
    domid: { offset: 2, size: 2 },
    frame: { offset: 4, size: 4 },
  },
};

/** The common head of a version 2 grant entry. */
export const grant_entry_header: StructLayout = {
  cName: "struct grant_entry_header",
  sizeof: 4,
  fields: {
    flags: { offset: 0, size: 2 },
    domid: { offset: 2, size: 2 },
  },
};

/** A version 2 grant entry (16 bytes): one of full_page, sub_page, transitive. */
export const grant_entry_v2: StructLayout = {
  cName: "union grant_entry_v2",
  sizeof: 16,
  fields: {
    hdr: { offset: 0, size: 4 },
    "hdr.flags": { offset: 0, size: 2 },
    "hdr.domid": { offset: 2, size: 2 },
    full_page: { offset: 0, size: 16 },
    "full_page.hdr": { offset: 0, size: 4 },
    "full_page.hdr.flags": { offset: 0, size: 2 },
    "full_page.hdr.domid": { offset: 2, size: 2 },
    "full_page.pad0": { offset: 4, size: 4 },
    "full_page.frame": { offset: 8, size: 8 },
    sub_page: { offset: 0, size: 16 },
    "sub_page.hdr": { offset: 0, size: 4 },
    "sub_page.hdr.flags": { offset: 0, size: 2 },
    "sub_page.hdr.domid": { offset: 2, size: 2 },
    "sub_page.page_off": { offset: 4, size: 2 },
    "sub_page.length": { offset: 6, size: 2 },
    "sub_page.frame": { offset: 8, size: 8 },
    transitive: { offset: 0, size: 12 },
    "transitive.hdr": { offset: 0, size: 4 },
    "transitive.hdr.flags": { offset: 0, size: 2 },
    "transitive.hdr.domid": { offset: 2, size: 2 },
    "transitive.trans_domid": { offset: 4, size: 2 },
    "transitive.pad0": { offset: 6, size: 2 },
    "transitive.gref": { offset: 8, size: 4 },
    __spacer: { offset: 0, size: 4, count: 4 },
  },
};

/** GNTTABOP_map_grant_ref: map a foreign domain's grant; returns a handle and status. */
export const gnttab_map_grant_ref: StructLayout = {
  cName: "struct gnttab_map_grant_ref",
  sizeof: 32,
  fields: {
    host_addr: { offset: 0, size: 8 },
    flags: { offset: 8, size: 4 },
    ref: { offset: 12, size: 4 },
    dom: { offset: 16, size: 2 },
    status: { offset: 18, size: 2 },
    handle: { offset: 20, size: 4 },
    dev_bus_addr: { offset: 24, size: 8 },
  },
};

/** GNTTABOP_unmap_grant_ref: undo a mapping by its handle. */
export const gnttab_unmap_grant_ref: StructLayout = {
  cName: "struct gnttab_unmap_grant_ref",
  sizeof: 24,
  fields: {
    host_addr: { offset: 0, size: 8 },
    dev_bus_addr: { offset: 8, size: 8 },
    handle: { offset: 16, size: 4 },
    status: { offset: 20, size: 2 },
  },
};

/** GNTTABOP_setup_table: the frames of a domain's grant table. */
export const gnttab_setup_table: StructLayout = {
  cName: "struct gnttab_setup_table",
  sizeof: 24,
  fields: {
    dom: { offset: 0, size: 2 },
    nr_frames: { offset: 4, size: 4 },
    status: { offset: 8, size: 2 },
    frame_list: { offset: 16, size: 8 },
    "frame_list.p": { offset: 16, size: 8 },
  },
};

/** GNTTABOP_dump_table: dump a domain's grant table to Xen's console. */
export const gnttab_dump_table: StructLayout = {
  cName: "struct gnttab_dump_table",
  sizeof: 4,
  fields: {
    dom: { offset: 0, size: 2 },
    status: { offset: 2, size: 2 },
  },
};

/** GNTTABOP_transfer: give a frame to a domain that accepts transfers. */
export const gnttab_transfer: StructLayout = {
  cName: "struct gnttab_transfer",
  sizeof: 24,
  fields: {
    mfn: { offset: 0, size: 8 },
    domid: { offset: 8, size: 2 },
    ref: { offset: 12, size: 4 },
    status: { offset: 16, size: 2 },
  },
};

/** GNTTABOP_copy: copy bytes between frames named by grant reference or frame number. */
export const gnttab_copy: StructLayout = {
  cName: "struct gnttab_copy",
  sizeof: 40,
  fields: {
    source: { offset: 0, size: 16 },
    "source.u": { offset: 0, size: 8 },
    "source.u.ref": { offset: 0, size: 4 },
    "source.u.gmfn": { offset: 0, size: 8 },
    "source.domid": { offset: 8, size: 2 },
    "source.offset": { offset: 10, size: 2 },
    dest: { offset: 16, size: 16 },
    "dest.u": { offset: 16, size: 8 },
    "dest.u.ref": { offset: 16, size: 4 },
    "dest.u.gmfn": { offset: 16, size: 8 },
    "dest.domid": { offset: 24, size: 2 },
    "dest.offset": { offset: 26, size: 2 },
    len: { offset: 32, size: 2 },
    flags: { offset: 34, size: 2 },
    status: { offset: 36, size: 2 },
  },
};

/** GNTTABOP_query_size: current and maximum grant table frames. */
export const gnttab_query_size: StructLayout = {
  cName: "struct gnttab_query_size",
  sizeof: 16,
  fields: {
    dom: { offset: 0, size: 2 },
    nr_frames: { offset: 4, size: 4 },
    max_nr_frames: { offset: 8, size: 4 },
    status: { offset: 12, size: 2 },
  },
};

/** GNTTABOP_unmap_and_replace: unmap a grant and put another mapping in its place. */
export const gnttab_unmap_and_replace: StructLayout = {
  cName: "struct gnttab_unmap_and_replace",
  sizeof: 24,
  fields: {
    host_addr: { offset: 0, size: 8 },
    new_addr: { offset: 8, size: 8 },
    handle: { offset: 16, size: 4 },
    status: { offset: 20, size: 2 },
  },
};

/** GNTTABOP_set_version: choose grant table version 1 or 2. */
export const gnttab_set_version: StructLayout = {
  cName: "struct gnttab_set_version",
  sizeof: 4,
  fields: {
    version: { offset: 0, size: 4 },
  },
};

/** GNTTABOP_get_status_frames: the v2 status frames. */
export const gnttab_get_status_frames: StructLayout = {
  cName: "struct gnttab_get_status_frames",
  sizeof: 16,
  fields: {
    nr_frames: { offset: 0, size: 4 },
    dom: { offset: 4, size: 2 },
    status: { offset: 6, size: 2 },
    frame_list: { offset: 8, size: 8 },
    "frame_list.p": { offset: 8, size: 8 },
  },
};

/** GNTTABOP_get_version: a domain's grant table version. */
export const gnttab_get_version: StructLayout = {
  cName: "struct gnttab_get_version",
  sizeof: 8,
  fields: {
    dom: { offset: 0, size: 2 },
    pad: { offset: 2, size: 2 },
    version: { offset: 4, size: 4 },
  },
};

/** GNTTABOP_swap_grant_ref: swap two grant entries. */
export const gnttab_swap_grant_ref: StructLayout = {
  cName: "struct gnttab_swap_grant_ref",
  sizeof: 12,
  fields: {
    ref_a: { offset: 0, size: 4 },
    ref_b: { offset: 4, size: 4 },
    status: { offset: 8, size: 2 },
  },
};

/** GNTTABOP_cache_flush: clean or invalidate a granted range in the cache. */
export const gnttab_cache_flush: StructLayout = {
  cName: "struct gnttab_cache_flush",
  sizeof: 16,
  fields: {
    a: { offset: 0, size: 8 },
    "a.dev_bus_addr": { offset: 0, size: 8 },
    "a.ref": { offset: 0, size: 4 },
    offset: { offset: 8, size: 2 },
    length: { offset: 10, size: 2 },
    op: { offset: 12, size: 4 },
  },
};
