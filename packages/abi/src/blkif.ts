/*
 * Xen 4.17 public/io/blkif.h: the block device ring protocol (requests, responses,
 * operations, status codes, disk info flags).
 *
 * Invariant: every value equals the header's; layouts are x86_64's (blkif_request differs
 * on x86_32, where uint64_t is 4-byte aligned).
 */
import type { StructLayout } from "./layout";

// blkif_request.operation (BLKIF_OP_*).
export const BLKIF_OP_READ = 0;
export const BLKIF_OP_WRITE = 1;
export const BLKIF_OP_WRITE_BARRIER = 2;
export const BLKIF_OP_FLUSH_DISKCACHE = 3;
export const BLKIF_OP_RESERVED_1 = 4;
export const BLKIF_OP_DISCARD = 5;
export const BLKIF_OP_INDIRECT = 6;
export const BLKIF_MAX_SEGMENTS_PER_REQUEST = 11;
export const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST = 8;
export const BLKIF_DISCARD_SECURE = 0x1;

// blkif_response.status (BLKIF_RSP_*).
export const BLKIF_RSP_EOPNOTSUPP = -2;
export const BLKIF_RSP_ERROR = -1;
export const BLKIF_RSP_OKAY = 0;

// Disk info flags in xenstore's "info" node (VDISK_*).
export const VDISK_CDROM = 0x1;
export const VDISK_REMOVABLE = 0x2;
export const VDISK_READONLY = 0x4;

/** One data segment of a block request: a granted frame and the sectors within it. */
export const blkif_request_segment: StructLayout = {
  cName: "struct blkif_request_segment",
  sizeof: 8,
  fields: {
    gref: { offset: 0, size: 4 },
    first_sect: { offset: 4, size: 1 },
    last_sect: { offset: 5, size: 1 },
  },
};

/** A read or write request on the block ring (up to BLKIF_MAX_SEGMENTS_PER_REQUEST segments). */
export const blkif_request: StructLayout = {
  cName: "struct blkif_request",
  sizeof: 112,
  fields: {
    operation: { offset: 0, size: 1 },
    nr_segments: { offset: 1, size: 1 },
    handle: { offset: 2, size: 2 },
    id: { offset: 8, size: 8 },
    sector_number: { offset: 16, size: 8 },
    seg: { offset: 24, size: 8, count: 11 },
  },
};

/** A BLKIF_OP_DISCARD request: a range of sectors the backend may drop. */
export const blkif_request_discard: StructLayout = {
  cName: "struct blkif_request_discard",
  sizeof: 32,
  fields: {
    operation: { offset: 0, size: 1 },
    flag: { offset: 1, size: 1 },
    handle: { offset: 2, size: 2 },
    id: { offset: 8, size: 8 },
    sector_number: { offset: 16, size: 8 },
    nr_sectors: { offset: 24, size: 8 },
  },
};

/** A BLKIF_OP_INDIRECT request: segments live in granted indirect pages. */
export const blkif_request_indirect: StructLayout = {
  cName: "struct blkif_request_indirect",
  sizeof: 64,
  fields: {
    operation: { offset: 0, size: 1 },
    indirect_op: { offset: 1, size: 1 },
    nr_segments: { offset: 2, size: 2 },
    id: { offset: 8, size: 8 },
    sector_number: { offset: 16, size: 8 },
    handle: { offset: 24, size: 2 },
    indirect_grefs: { offset: 28, size: 4, count: 8 },
  },
};

/** A response on the block ring: the request's id, operation and a BLKIF_RSP_* status. */
export const blkif_response: StructLayout = {
  cName: "struct blkif_response",
  sizeof: 16,
  fields: {
    id: { offset: 0, size: 8 },
    operation: { offset: 8, size: 1 },
    status: { offset: 10, size: 2 },
  },
};
