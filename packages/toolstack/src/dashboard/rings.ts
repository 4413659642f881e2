/*
 * A shared ring's occupancy, read from the ring's own page as Xen's tools see it: the indexes
 * public/io/ring.h (blkif, netif tx and rx), public/io/console.h and public/io/xs_wire.h put
 * in the page, through a callback that reads a 32-bit word of the ring's first frame, so the
 * dashboard needs no driver's private state.
 *
 * Invariant: only the index words of the page are read; every index is a guest-written u32,
 * so `used` is (producer - consumer) mod 2^32 and is never assumed to be at most `size` (a
 * hostile or corrupt page shows as `used > size`, which the page draws as "beyond the ring").
 */
import {
  blkif_sring,
  blkif_sring_entry,
  netif_rx_sring_entry,
  netif_tx_sring_entry,
  XENSTORE_RING_SIZE,
  xencons_interface,
  xenstore_domain_interface,
} from "@hyperlab/abi";
import { ringSizeFor } from "@hyperlab/split-drivers";
import type { RingOccupancy } from "./source";

/** The rings the dashboard reads: ring.h rings by name, console and xenstore by direction. */
export type RingKind =
  | "blkif"
  | "netif_tx"
  | "netif_rx"
  | "console_in"
  | "console_out"
  | "xenstore_req"
  | "xenstore_rsp";

export const RING_KINDS: readonly RingKind[] = [
  "blkif",
  "netif_tx",
  "netif_rx",
  "console_in",
  "console_out",
  "xenstore_req",
  "xenstore_rsp",
];

/** Largest ring-page-order a ring.h ring may have (Linux blkback's xen_blkif_max_ring_order). */
export const MAX_RING_PAGE_ORDER = 4;

const ENTRY_BYTES = {
  blkif: blkif_sring_entry.sizeof,
  netif_tx: netif_tx_sring_entry.sizeof,
  netif_rx: netif_rx_sring_entry.sizeof,
} as const;

const off = (s: { fields: Record<string, { offset: number }> }, f: string) => s.fields[f].offset;

/** Byte offsets of [producer, consumer, ...the rest] for the byte rings, with their sizes. */
const BYTE_RINGS = {
  console_in: {
    size: xencons_interface.fields.in.count ?? 0,
    names: ["in_prod", "in_cons"],
    layout: xencons_interface,
  },
  console_out: {
    size: xencons_interface.fields.out.count ?? 0,
    names: ["out_prod", "out_cons"],
    layout: xencons_interface,
  },
  xenstore_req: {
    size: XENSTORE_RING_SIZE,
    names: ["req_prod", "req_cons"],
    layout: xenstore_domain_interface,
  },
  xenstore_rsp: {
    size: XENSTORE_RING_SIZE,
    names: ["rsp_prod", "rsp_cons"],
    layout: xenstore_domain_interface,
  },
} as const;

/** Slots of a ring.h ring of `4096 << order` bytes (__RING_SIZE); 0 for an order out of range. */
export function ioRingSize(kind: "blkif" | "netif_tx" | "netif_rx", order = 0): number {
  if (!(Number.isInteger(order) && order >= 0 && order <= MAX_RING_PAGE_ORDER)) return 0;
  return ringSizeFor(ENTRY_BYTES[kind], 4096 << order);
}

/**
 * Reads one ring's indexes. `read32(offset)` answers the u32 at byte `offset` of the ring's
 * first page (a ring.h ring's header, or the console/xenstore page). For ring.h rings `used`
 * is req_prod - rsp_prod (requests produced and not yet answered: the slots the frontend
 * cannot reuse); for the byte rings it is prod - cons (bytes written and not yet read).
 */
export function readRing(
  kind: RingKind,
  where: { name: string; domid: number; frame: number; order?: number },
  read32: (offset: number) => number,
): RingOccupancy {
  const base = { name: where.name, domid: where.domid, kind, frame: where.frame };
  if (kind === "blkif" || kind === "netif_tx" || kind === "netif_rx") {
    const indexes: Record<string, number> = {};
    for (const f of ["req_prod", "req_event", "rsp_prod", "rsp_event"])
      indexes[f] = read32(off(blkif_sring, f)) >>> 0;
    return {
      ...base,
      size: ioRingSize(kind, where.order ?? 0),
      used: (indexes.req_prod - indexes.rsp_prod) >>> 0,
      indexes,
    };
  }
  const r = BYTE_RINGS[kind];
  const [prodName, consName] = r.names;
  const prod = read32(off(r.layout, prodName)) >>> 0;
  const cons = read32(off(r.layout, consName)) >>> 0;
  return {
    ...base,
    size: r.size,
    used: (prod - cons) >>> 0,
    indexes: { [prodName]: prod, [consName]: cons },
  };
}
