/*
 * Xen 4.17 public/io/netif.h: the network device rings (transmit and receive requests and
 * responses, extra-info slots) and their flag bits.
 *
 * Invariant: every value equals the header's; layouts are x86_64's.
 */
import type { StructLayout } from "./layout";

export const XEN_NETIF_NR_SLOTS_MIN = 18;
export const XEN_NETIF_MAX_TX_SIZE = 65535;

// netif_tx_request.flags (NETTXF_*).
export const _NETTXF_csum_blank = 0;
export const NETTXF_csum_blank = 0x1;
export const _NETTXF_data_validated = 1;
export const NETTXF_data_validated = 0x2;
export const _NETTXF_more_data = 2;
export const NETTXF_more_data = 0x4;
export const _NETTXF_extra_info = 3;
export const NETTXF_extra_info = 0x8;

// netif_rx_response.flags (NETRXF_*).
export const _NETRXF_data_validated = 0;
export const NETRXF_data_validated = 0x1;
export const _NETRXF_csum_blank = 1;
export const NETRXF_csum_blank = 0x2;
export const _NETRXF_more_data = 2;
export const NETRXF_more_data = 0x4;
export const _NETRXF_extra_info = 3;
export const NETRXF_extra_info = 0x8;
export const _NETRXF_gso_prefix = 4;
export const NETRXF_gso_prefix = 0x10;

// netif_extra_info.type, .flags and GSO types.
export const XEN_NETIF_EXTRA_TYPE_NONE = 0;
export const XEN_NETIF_EXTRA_TYPE_GSO = 1;
export const XEN_NETIF_EXTRA_TYPE_MCAST_ADD = 2;
export const XEN_NETIF_EXTRA_TYPE_MCAST_DEL = 3;
export const XEN_NETIF_EXTRA_TYPE_HASH = 4;
export const XEN_NETIF_EXTRA_TYPE_MAX = 5;
export const _XEN_NETIF_EXTRA_FLAG_MORE = 0;
export const XEN_NETIF_EXTRA_FLAG_MORE = 0x1;
export const XEN_NETIF_GSO_TYPE_NONE = 0;
export const XEN_NETIF_GSO_TYPE_TCPV4 = 1;
export const XEN_NETIF_GSO_TYPE_TCPV6 = 2;

// Control ring (XEN_NETIF_CTRL_*).
export const XEN_NETIF_CTRL_TYPE_INVALID = 0;
export const XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS = 1;
export const XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS = 2;
export const XEN_NETIF_CTRL_TYPE_SET_HASH_KEY = 3;
export const XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE = 4;
export const XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE = 5;
export const XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING = 6;
export const XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM = 7;
export const XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE = 8;
export const XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING = 9;
export const XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING = 10;
export const XEN_NETIF_CTRL_STATUS_SUCCESS = 0;
export const XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED = 1;
export const XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER = 2;
export const XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW = 3;
export const _XEN_NETIF_CTRL_HASH_TYPE_IPV4 = 0;
export const XEN_NETIF_CTRL_HASH_TYPE_IPV4 = 0x1;
export const _XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP = 1;
export const XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP = 0x2;
export const _XEN_NETIF_CTRL_HASH_TYPE_IPV6 = 2;
export const XEN_NETIF_CTRL_HASH_TYPE_IPV6 = 0x4;
export const _XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP = 3;
export const XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP = 0x8;
export const XEN_NETIF_CTRL_HASH_ALGORITHM_NONE = 0;
export const XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ = 1;
export const _XEN_NETIF_CTRLF_GREF_readonly = 0;
export const XEN_NETIF_CTRLF_GREF_readonly = 0x1;

// Response status (NETIF_RSP_*).
export const NETIF_RSP_DROPPED = -2;
export const NETIF_RSP_ERROR = -1;
export const NETIF_RSP_OKAY = 0;
export const NETIF_RSP_NULL = 1;

/** A transmit request: a granted buffer, its offset, flags (NETTXF_*), id and size. */
export const netif_tx_request: StructLayout = {
  cName: "struct netif_tx_request",
  sizeof: 12,
  fields: {
    gref: { offset: 0, size: 4 },
    offset: { offset: 4, size: 2 },
    flags: { offset: 6, size: 2 },
    id: { offset: 8, size: 2 },
    size: { offset: 10, size: 2 },
  },
};

/** An extra-info slot that follows a request or response with the extra_info flag. */
export const netif_extra_info: StructLayout = {
  cName: "struct netif_extra_info",
  sizeof: 8,
  fields: {
    type: { offset: 0, size: 1 },
    flags: { offset: 1, size: 1 },
    u: { offset: 2, size: 6 },
    "u.gso": { offset: 2, size: 6 },
    "u.gso.size": { offset: 2, size: 2 },
    "u.gso.type": { offset: 4, size: 1 },
    "u.gso.pad": { offset: 5, size: 1 },
    "u.gso.features": { offset: 6, size: 2 },
    "u.mcast": { offset: 2, size: 6 },
    "u.mcast.addr": { offset: 2, size: 1, count: 6 },
    "u.hash": { offset: 2, size: 6 },
    "u.hash.type": { offset: 2, size: 1 },
    "u.hash.algorithm": { offset: 3, size: 1 },
    "u.hash.value": { offset: 4, size: 1, count: 4 },
    "u.pad": { offset: 2, size: 2, count: 3 },
  },
};

/** A transmit response: the request's id and a NETIF_RSP_* status. */
export const netif_tx_response: StructLayout = {
  cName: "struct netif_tx_response",
  sizeof: 4,
  fields: {
    id: { offset: 0, size: 2 },
    status: { offset: 2, size: 2 },
  },
};

/** A receive request: an id and a granted buffer for the backend to fill. */
export const netif_rx_request: StructLayout = {
  cName: "struct netif_rx_request",
  sizeof: 8,
  fields: {
    id: { offset: 0, size: 2 },
    pad: { offset: 2, size: 2 },
    gref: { offset: 4, size: 4 },
  },
};

/** A receive response: id, offset, flags (NETRXF_*) and a status (bytes, or NETIF_RSP_*). */
export const netif_rx_response: StructLayout = {
  cName: "struct netif_rx_response",
  sizeof: 8,
  fields: {
    id: { offset: 0, size: 2 },
    offset: { offset: 2, size: 2 },
    flags: { offset: 4, size: 2 },
    status: { offset: 6, size: 2 },
  },
};

/** A request on the network control ring (XEN_NETIF_CTRL_TYPE_*). */
export const xen_netif_ctrl_request: StructLayout = {
  cName: "struct xen_netif_ctrl_request",
  sizeof: 16,
  fields: {
    id: { offset: 0, size: 2 },
    type: { offset: 2, size: 2 },
    data: { offset: 4, size: 4, count: 3 },
  },
};

/** A response on the network control ring (XEN_NETIF_CTRL_STATUS_*). */
export const xen_netif_ctrl_response: StructLayout = {
  cName: "struct xen_netif_ctrl_response",
  sizeof: 12,
  fields: {
    id: { offset: 0, size: 2 },
    type: { offset: 2, size: 2 },
    status: { offset: 4, size: 4 },
    data: { offset: 8, size: 4 },
  },
};

/** One grant reference entry of a control-ring grant mapping. */
export const xen_netif_gref: StructLayout = {
  cName: "struct xen_netif_gref",
  sizeof: 8,
  fields: {
    ref: { offset: 0, size: 4 },
    flags: { offset: 4, size: 2 },
    status: { offset: 6, size: 2 },
  },
};
