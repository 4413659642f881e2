/*
 * The io/netif.h slots as the network drivers read and write them (offsets from
 * @hyperlab/abi's layouts, which abi's C test checks against libxen-dev's header), plus the
 * few Linux constants both drivers share (netback's slot limits, ETH_HLEN) and the MAC
 * address text form libxl writes into xenstore.
 *
 * Invariant: every accessor reads or writes exactly the bytes of its field in the slot at
 * `off` of a ring's page; nothing allocates.
 */
import {
  netif_extra_info,
  netif_rx_request,
  netif_rx_response,
  netif_tx_request,
  netif_tx_response,
  XEN_NETIF_NR_SLOTS_MIN,
} from "@hyperlab/abi";
import { HyperlabError } from "@hyperlab/core";
import { ringSize } from "../ring";

/** The codes of NetError (mistakes of the code driving the drivers, never of a guest). */
export type NetErrorCode = "NET_BAD_FRAME" | "NET_BAD_OPTION" | "NET_BAD_MAC";

/** A mistake in how the network drivers were called. */
export class NetError extends HyperlabError<NetErrorCode> {}

/** XEN_PAGE_SIZE: every slot's buffer is one 4 KiB page. */
export const XEN_PAGE_SIZE = 4096;
/** ETH_HLEN: a frame shorter than an Ethernet header is refused (netback's "Bad packet size"). */
export const ETH_HLEN = 14;
/** NET_TX_RING_SIZE / NET_RX_RING_SIZE for one-page rings. */
export const NET_TX_RING_SIZE = ringSize("netif_tx");
export const NET_RX_RING_SIZE = ringSize("netif_rx");
/** Linux netback XEN_NETBK_LEGACY_SLOTS_MAX: more slots than this and the packet is dropped. */
export const XEN_NETBK_LEGACY_SLOTS_MAX = XEN_NETIF_NR_SLOTS_MIN;
/** Linux netback's fatal_skb_slots default (FATAL_SKB_SLOTS_DEFAULT): this many is fatal. */
export const FATAL_SKB_SLOTS_DEFAULT = 20;
/** The largest frame a packet carries: netif_tx_request.size is 16 bits. */
export const NETIF_MAX_FRAME = 0xffff;
/** Slots a frame of `len` bytes fills (one page each), without extra-info slots. */
export function netifSlotsFor(len: number): number {
  return len <= 0 ? 1 : Math.ceil(len / XEN_PAGE_SIZE);
}

const TX = netif_tx_request.fields;
const TXR = netif_tx_response.fields;
const RX = netif_rx_request.fields;
const RXR = netif_rx_response.fields;
const EX = netif_extra_info.fields;

export const TX_REQ_GREF = TX.gref!.offset;
export const TX_REQ_OFFSET = TX.offset!.offset;
export const TX_REQ_FLAGS = TX.flags!.offset;
export const TX_REQ_ID = TX.id!.offset;
export const TX_REQ_SIZE = TX.size!.offset;
export const TX_RSP_ID = TXR.id!.offset;
export const TX_RSP_STATUS = TXR.status!.offset;
export const RX_REQ_ID = RX.id!.offset;
export const RX_REQ_GREF = RX.gref!.offset;
export const RX_RSP_ID = RXR.id!.offset;
export const RX_RSP_OFFSET = RXR.offset!.offset;
export const RX_RSP_FLAGS = RXR.flags!.offset;
export const RX_RSP_STATUS = RXR.status!.offset;
export const EXTRA_TYPE = EX.type!.offset;
export const EXTRA_FLAGS = EX.flags!.offset;
export const EXTRA_GSO_SIZE = EX["u.gso.size"]!.offset;
export const EXTRA_GSO_TYPE = EX["u.gso.type"]!.offset;
export const EXTRA_GSO_FEATURES = EX["u.gso.features"]!.offset;
export const TX_REQ_BYTES = netif_tx_request.sizeof;
export const TX_RSP_BYTES = netif_tx_response.sizeof;
export const RX_REQ_BYTES = netif_rx_request.sizeof;
export const RX_RSP_BYTES = netif_rx_response.sizeof;
export const EXTRA_BYTES = netif_extra_info.sizeof;

/** What travels with a frame besides its bytes: offloads the two ends agreed on. */
export interface NetMeta {
  /** GSO segment size (0: not a GSO packet). */
  gsoSize: number;
  /** XEN_NETIF_GSO_TYPE_*. */
  gsoType: number;
  /** The checksum is not filled in (NETTXF_csum_blank / NETRXF_csum_blank). */
  csumBlank: boolean;
  /** The checksum was checked or needs no check (NETTXF/NETRXF_data_validated). */
  dataValidated: boolean;
}

/** A fresh NetMeta with no offload. */
export function netMeta(): NetMeta {
  return { gsoSize: 0, gsoType: 0, csumBlank: false, dataValidated: false };
}

/** Parses libxl's `aa:bb:cc:dd:ee:ff` into 6 bytes, or null when it is not one. */
export function parseMac(text: string | null): Uint8Array | null {
  if (text === null) return null;
  const m =
    /^([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})$/.exec(
      text,
    );
  if (m === null) return null;
  const mac = new Uint8Array(6);
  for (let i = 0; i < 6; i++) mac[i] = Number.parseInt(m[i + 1]!, 16);
  return mac;
}

/** Formats 6 bytes as `aa:bb:cc:dd:ee:ff` (libxl's spelling). Throws NetError on a wrong length. */
export function formatMac(mac: Uint8Array): string {
  if (mac.length !== 6) {
    throw new NetError(
      "NET_BAD_MAC",
      `a MAC address has 6 bytes, got ${mac.length}; pass e.g. [0x00, 0x16, 0x3e, 0, 0, 1]`,
    );
  }
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join(":");
}
