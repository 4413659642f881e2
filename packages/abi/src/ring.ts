/*
 * Xen 4.17 public/io/ring.h: the shared ring page of DEFINE_RING_TYPES. A page starts with a
 * 64-byte header (req_prod, req_event, rsp_prod, rsp_event, a private area and padding);
 * entry i (a union of request and response) follows at offsetof(ring) + i * entry size. The
 * ring holds as many entries as fit in the page, rounded down to a power of two, so
 * indexes wrap by masking with (size - 1).
 *
 * Invariant: every value equals the header's; layouts are x86_64's.
 */
import type { StructLayout } from "./layout";

/** Ring protocols use 4 KiB pages on every architecture. */
export const XEN_PAGE_SHIFT = 12;

/** Block ring page; ring[0] is the first entry, the C array is [1] by convention. */
export const blkif_sring: StructLayout = {
  cName: "struct blkif_sring",
  sizeof: 176,
  fields: {
    req_prod: { offset: 0, size: 4 },
    req_event: { offset: 4, size: 4 },
    rsp_prod: { offset: 8, size: 4 },
    rsp_event: { offset: 12, size: 4 },
    pvt: { offset: 16, size: 4 },
    "pvt.netif": { offset: 16, size: 1 },
    "pvt.netif.smartpoll_active": { offset: 16, size: 1 },
    "pvt.tapif_user": { offset: 16, size: 1 },
    "pvt.tapif_user.msg": { offset: 16, size: 1 },
    "pvt.pvt_pad": { offset: 16, size: 1, count: 4 },
    __pad: { offset: 20, size: 1, count: 44 },
    ring: { offset: 64, size: 112, count: 1 },
  },
};

/** One block ring slot: a request, or in its place the response. */
export const blkif_sring_entry: StructLayout = {
  cName: "union blkif_sring_entry",
  sizeof: 112,
  fields: {
    req: { offset: 0, size: 112 },
    "req.operation": { offset: 0, size: 1 },
    "req.nr_segments": { offset: 1, size: 1 },
    "req.handle": { offset: 2, size: 2 },
    "req.id": { offset: 8, size: 8 },
    "req.sector_number": { offset: 16, size: 8 },
    "req.seg": { offset: 24, size: 8, count: 11 },
    rsp: { offset: 0, size: 16 },
    "rsp.id": { offset: 0, size: 8 },
    "rsp.operation": { offset: 8, size: 1 },
    "rsp.status": { offset: 10, size: 2 },
  },
};

/** Transmit ring page. */
export const netif_tx_sring: StructLayout = {
  cName: "struct netif_tx_sring",
  sizeof: 76,
  fields: {
    req_prod: { offset: 0, size: 4 },
    req_event: { offset: 4, size: 4 },
    rsp_prod: { offset: 8, size: 4 },
    rsp_event: { offset: 12, size: 4 },
    pvt: { offset: 16, size: 4 },
    "pvt.netif": { offset: 16, size: 1 },
    "pvt.netif.smartpoll_active": { offset: 16, size: 1 },
    "pvt.tapif_user": { offset: 16, size: 1 },
    "pvt.tapif_user.msg": { offset: 16, size: 1 },
    "pvt.pvt_pad": { offset: 16, size: 1, count: 4 },
    __pad: { offset: 20, size: 1, count: 44 },
    ring: { offset: 64, size: 12, count: 1 },
  },
};

/** One transmit ring slot. */
export const netif_tx_sring_entry: StructLayout = {
  cName: "union netif_tx_sring_entry",
  sizeof: 12,
  fields: {
    req: { offset: 0, size: 12 },
    "req.gref": { offset: 0, size: 4 },
    "req.offset": { offset: 4, size: 2 },
    "req.flags": { offset: 6, size: 2 },
    "req.id": { offset: 8, size: 2 },
    "req.size": { offset: 10, size: 2 },
    rsp: { offset: 0, size: 4 },
    "rsp.id": { offset: 0, size: 2 },
    "rsp.status": { offset: 2, size: 2 },
  },
};

/** Receive ring page. */
export const netif_rx_sring: StructLayout = {
  cName: "struct netif_rx_sring",
  sizeof: 72,
  fields: {
    req_prod: { offset: 0, size: 4 },
    req_event: { offset: 4, size: 4 },
    rsp_prod: { offset: 8, size: 4 },
    rsp_event: { offset: 12, size: 4 },
    pvt: { offset: 16, size: 4 },
    "pvt.netif": { offset: 16, size: 1 },
    "pvt.netif.smartpoll_active": { offset: 16, size: 1 },
    "pvt.tapif_user": { offset: 16, size: 1 },
    "pvt.tapif_user.msg": { offset: 16, size: 1 },
    "pvt.pvt_pad": { offset: 16, size: 1, count: 4 },
    __pad: { offset: 20, size: 1, count: 44 },
    ring: { offset: 64, size: 8, count: 1 },
  },
};

/** One receive ring slot. */
export const netif_rx_sring_entry: StructLayout = {
  cName: "union netif_rx_sring_entry",
  sizeof: 8,
  fields: {
    req: { offset: 0, size: 8 },
    "req.id": { offset: 0, size: 2 },
    "req.pad": { offset: 2, size: 2 },
    "req.gref": { offset: 4, size: 4 },
    rsp: { offset: 0, size: 8 },
    "rsp.id": { offset: 0, size: 2 },
    "rsp.offset": { offset: 2, size: 2 },
    "rsp.flags": { offset: 4, size: 2 },
    "rsp.status": { offset: 6, size: 2 },
  },
};

/** The rings of this package: the DEFINE_RING_TYPES names whose sizes RING_SIZE_4K gives. */
export type RingName = "blkif" | "netif_tx" | "netif_rx";

/**
 * Entries per ring when the shared ring is one 4 KiB page: the header's
 * __CONST_RING_SIZE(name, 4096), i.e. (4096 - 64) / entry size rounded down to a power of
 * two. Data, checked against the C macro.
 */
export const RING_SIZE_4K: Readonly<Record<RingName, number>> = Object.freeze({
  blkif: 32,
  netif_tx: 256,
  netif_rx: 256,
});
