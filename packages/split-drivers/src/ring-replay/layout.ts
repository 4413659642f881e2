/*
 * `hyperlab ring layout`: sizes, offsets and constants of the ring protocols as `NAME VALUE`
 * lines, NAME spelled as the C expression without spaces.
 *
 * Invariant: every value comes from @hyperlab/abi's layouts and constants or from ring.ts's
 * RING_SIZE, never typed here, so the test that compares this with C built on
 * /usr/include/xen checks those sources; the line list matches test/c/ring-ref.c's.
 */
import {
  BLKIF_DISCARD_SECURE,
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_RESERVED_1,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  blkif_request,
  blkif_request_discard,
  blkif_request_indirect,
  blkif_request_segment,
  blkif_response,
  blkif_sring,
  blkif_sring_entry,
  NETIF_RSP_DROPPED,
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_extra_info,
  NETRXF_gso_prefix,
  NETRXF_more_data,
  NETTXF_csum_blank,
  NETTXF_data_validated,
  NETTXF_extra_info,
  NETTXF_more_data,
  netif_extra_info,
  netif_rx_request,
  netif_rx_response,
  netif_rx_sring,
  netif_rx_sring_entry,
  netif_tx_request,
  netif_tx_response,
  netif_tx_sring,
  netif_tx_sring_entry,
  type RingName,
  type StructLayout,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_HASH,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
  XEN_NETIF_EXTRA_TYPE_MCAST_DEL,
  XEN_NETIF_EXTRA_TYPE_NONE,
  XEN_NETIF_GSO_TYPE_NONE,
  XEN_NETIF_GSO_TYPE_TCPV4,
  XEN_NETIF_GSO_TYPE_TCPV6,
  XEN_NETIF_MAX_TX_SIZE,
  XEN_NETIF_NR_SLOTS_MIN,
  XEN_PAGE_SHIFT,
  xencons_interface,
} from "@hyperlab/abi";
import { RING_MAX_ORDER, ringSize } from "../ring";

const SRINGS: [RingName, StructLayout, StructLayout][] = [
  ["blkif", blkif_sring, blkif_sring_entry],
  ["netif_tx", netif_tx_sring, netif_tx_sring_entry],
  ["netif_rx", netif_rx_sring, netif_rx_sring_entry],
];

const STRUCTS: [StructLayout, string[]][] = [
  [blkif_request_segment, ["gref", "first_sect", "last_sect"]],
  [blkif_request, ["operation", "nr_segments", "handle", "id", "sector_number", "seg"]],
  [blkif_request_discard, ["operation", "flag", "handle", "id", "sector_number", "nr_sectors"]],
  [
    blkif_request_indirect,
    ["operation", "indirect_op", "nr_segments", "id", "sector_number", "handle", "indirect_grefs"],
  ],
  [blkif_response, ["id", "operation", "status"]],
  [netif_tx_request, ["gref", "offset", "flags", "id", "size"]],
  [netif_tx_response, ["id", "status"]],
  [
    netif_extra_info,
    [
      "type",
      "flags",
      "u",
      "u.gso.size",
      "u.gso.type",
      "u.gso.pad",
      "u.gso.features",
      "u.mcast.addr",
      "u.hash.type",
      "u.hash.algorithm",
      "u.hash.value",
    ],
  ],
  [netif_rx_request, ["id", "pad", "gref"]],
  [netif_rx_response, ["id", "offset", "flags", "status"]],
  [xencons_interface, ["in", "out", "in_cons", "in_prod", "out_cons", "out_prod"]],
];

const CONSTANTS: [string, number][] = [
  ["XEN_PAGE_SHIFT", XEN_PAGE_SHIFT],
  ["BLKIF_OP_READ", BLKIF_OP_READ],
  ["BLKIF_OP_WRITE", BLKIF_OP_WRITE],
  ["BLKIF_OP_WRITE_BARRIER", BLKIF_OP_WRITE_BARRIER],
  ["BLKIF_OP_FLUSH_DISKCACHE", BLKIF_OP_FLUSH_DISKCACHE],
  ["BLKIF_OP_RESERVED_1", BLKIF_OP_RESERVED_1],
  ["BLKIF_OP_DISCARD", BLKIF_OP_DISCARD],
  ["BLKIF_OP_INDIRECT", BLKIF_OP_INDIRECT],
  ["BLKIF_MAX_SEGMENTS_PER_REQUEST", BLKIF_MAX_SEGMENTS_PER_REQUEST],
  ["BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST", BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
  ["BLKIF_DISCARD_SECURE", BLKIF_DISCARD_SECURE],
  ["BLKIF_RSP_EOPNOTSUPP", BLKIF_RSP_EOPNOTSUPP],
  ["BLKIF_RSP_ERROR", BLKIF_RSP_ERROR],
  ["BLKIF_RSP_OKAY", BLKIF_RSP_OKAY],
  ["NETTXF_csum_blank", NETTXF_csum_blank],
  ["NETTXF_data_validated", NETTXF_data_validated],
  ["NETTXF_more_data", NETTXF_more_data],
  ["NETTXF_extra_info", NETTXF_extra_info],
  ["NETRXF_data_validated", NETRXF_data_validated],
  ["NETRXF_csum_blank", NETRXF_csum_blank],
  ["NETRXF_more_data", NETRXF_more_data],
  ["NETRXF_extra_info", NETRXF_extra_info],
  ["NETRXF_gso_prefix", NETRXF_gso_prefix],
  ["XEN_NETIF_EXTRA_TYPE_NONE", XEN_NETIF_EXTRA_TYPE_NONE],
  ["XEN_NETIF_EXTRA_TYPE_GSO", XEN_NETIF_EXTRA_TYPE_GSO],
  ["XEN_NETIF_EXTRA_TYPE_MCAST_ADD", XEN_NETIF_EXTRA_TYPE_MCAST_ADD],
  ["XEN_NETIF_EXTRA_TYPE_MCAST_DEL", XEN_NETIF_EXTRA_TYPE_MCAST_DEL],
  ["XEN_NETIF_EXTRA_TYPE_HASH", XEN_NETIF_EXTRA_TYPE_HASH],
  ["XEN_NETIF_EXTRA_FLAG_MORE", XEN_NETIF_EXTRA_FLAG_MORE],
  ["XEN_NETIF_GSO_TYPE_NONE", XEN_NETIF_GSO_TYPE_NONE],
  ["XEN_NETIF_GSO_TYPE_TCPV4", XEN_NETIF_GSO_TYPE_TCPV4],
  ["XEN_NETIF_GSO_TYPE_TCPV6", XEN_NETIF_GSO_TYPE_TCPV6],
  ["NETIF_RSP_DROPPED", NETIF_RSP_DROPPED],
  ["NETIF_RSP_ERROR", NETIF_RSP_ERROR],
  ["NETIF_RSP_OKAY", NETIF_RSP_OKAY],
  ["NETIF_RSP_NULL", NETIF_RSP_NULL],
  ["XEN_NETIF_NR_SLOTS_MIN", XEN_NETIF_NR_SLOTS_MIN],
  ["XEN_NETIF_MAX_TX_SIZE", XEN_NETIF_MAX_TX_SIZE],
];

function fieldOffset(s: StructLayout, name: string): number {
  const fl = s.fields[name];
  if (fl === undefined) throw new Error(`${s.cName} has no field ${name}`);
  return fl.offset;
}

/** The text `hyperlab ring layout` prints: one `NAME VALUE` line each, in a fixed order. */
export function ringLayout(): string {
  const lines: string[] = [];
  for (const [name, sring, entry] of SRINGS) {
    lines.push(`sizeof(${sring.cName}) ${sring.sizeof}`);
    for (const fl of ["req_prod", "req_event", "rsp_prod", "rsp_event", "pvt", "__pad", "ring"]) {
      lines.push(`offsetof(${sring.cName},${fl}) ${fieldOffset(sring, fl)}`);
    }
    lines.push(`sizeof(${entry.cName}) ${entry.sizeof}`);
    for (let order = 0; order <= RING_MAX_ORDER; order++) {
      lines.push(`RING_SIZE(${name},order=${order}) ${ringSize(name, order)}`);
    }
  }
  for (const [s, fields] of STRUCTS) {
    lines.push(`sizeof(${s.cName}) ${s.sizeof}`);
    for (const fl of fields) lines.push(`offsetof(${s.cName},${fl}) ${fieldOffset(s, fl)}`);
  }
  for (const [name, v] of CONSTANTS) lines.push(`${name} ${v}`);
  return `${lines.join("\n")}\n`;
}
