/*
 * Typed arguments of HYPERVISOR_grant_table_op: `{ cmd, uops, count }`, each element with
 * the field names of Xen's struct (public/grant_table.h). Outputs (status, handle,
 * dev_bus_addr, nr_frames, ...) are written back into the element as Xen writes them.
 * 64-bit fields take a number (or a BigInt); everything is guest-controlled.
 */

/** struct gnttab_map_grant_ref. */
export interface GnttabMapGrantRef {
  host_addr: number | bigint;
  flags: number;
  ref: number;
  dom: number;
  status?: number;
  handle?: number;
  dev_bus_addr?: number;
}

/** struct gnttab_unmap_grant_ref. */
export interface GnttabUnmapGrantRef {
  host_addr: number | bigint;
  dev_bus_addr: number | bigint;
  handle: number;
  status?: number;
}

/** struct gnttab_unmap_and_replace. */
export interface GnttabUnmapAndReplace {
  host_addr: number | bigint;
  new_addr: number | bigint;
  handle: number;
  status?: number;
}

/** struct gnttab_setup_table: `frame_list` receives nr_frames frame numbers. */
export interface GnttabSetupTable {
  dom: number;
  nr_frames: number;
  status?: number;
  frame_list: number[];
}

/** struct gnttab_query_size. */
export interface GnttabQuerySize {
  dom: number;
  nr_frames?: number;
  max_nr_frames?: number;
  status?: number;
}

/** One side of a copy (struct gnttab_copy_ptr): `u.ref` with a GNTCOPY_*_gref flag, else `u.gmfn`. */
export interface GnttabCopyPtr {
  u: { ref?: number; gmfn?: number };
  domid: number;
  offset: number;
}

/** struct gnttab_copy. */
export interface GnttabCopy {
  source: GnttabCopyPtr;
  dest: GnttabCopyPtr;
  len: number;
  flags: number;
  status?: number;
}

/** struct gnttab_set_version: `version` is written back with the version in force. */
export interface GnttabSetVersion {
  version: number;
}

/** struct gnttab_get_version. */
export interface GnttabGetVersion {
  dom: number;
  pad?: number;
  version?: number;
}

/** struct gnttab_get_status_frames: `frame_list` receives nr_frames frame numbers. */
export interface GnttabGetStatusFrames {
  nr_frames: number;
  dom: number;
  status?: number;
  frame_list: number[];
}

/** Arguments of HYPERVISOR_grant_table_op. */
export interface GrantTableOpArgs {
  cmd: number;
  uops: readonly (
    | GnttabMapGrantRef
    | GnttabUnmapGrantRef
    | GnttabUnmapAndReplace
    | GnttabSetupTable
    | GnttabQuerySize
    | GnttabCopy
    | GnttabSetVersion
    | GnttabGetVersion
    | GnttabGetStatusFrames
  )[];
  count: number;
}
