/*
 * The request and response views `hyperlab ring replay` reads and writes: for each ring, the
 * fields of each view in the order of the reference's table, with their byte offset in the
 * slot, width and C signedness.
 *
 * Invariant: offsets and widths equal the C structs' in @hyperlab/abi (blkif.ts, netif.ts),
 * which abi's header test checks against /usr/include/xen; a status is the only signed field.
 */
import {
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  blkif_request,
  blkif_request_discard,
  blkif_request_indirect,
  blkif_request_segment,
  blkif_response,
  type FieldLayout,
  netif_extra_info,
  netif_rx_request,
  netif_rx_response,
  netif_tx_request,
  netif_tx_response,
  type RingName,
  type StructLayout,
} from "@hyperlab/abi";

/** One field of a view: where it is in the slot, how wide, and whether C's type is signed. */
export interface ReplayField {
  readonly name: string;
  readonly offset: number;
  readonly size: 1 | 2 | 4 | 8;
  readonly signed: boolean;
}

/** A request or response layout of one ring. */
export interface ReplayView {
  readonly fields: readonly ReplayField[];
  readonly byName: ReadonlyMap<string, ReplayField>;
  /** sizeof the C struct (a response zeroes only these bytes of its slot). */
  readonly bytes: number;
}

function f(
  layout: StructLayout,
  cField: string,
  name = cField,
  signed = false,
  base = 0,
): ReplayField {
  const l: FieldLayout | undefined = layout.fields[cField];
  if (l === undefined) throw new Error(`${layout.cName} has no field ${cField}`);
  return { name, offset: base + l.offset, size: l.size as 1 | 2 | 4 | 8, signed };
}

function view(bytes: number, fields: ReplayField[]): ReplayView {
  return { fields, byName: new Map(fields.map((x) => [x.name, x])), bytes };
}

const segSize = blkif_request.fields.seg!.size;
const segBase = blkif_request.fields.seg!.offset;
const blkifSegFields: ReplayField[] = [];
for (let i = 0; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++) {
  const base = segBase + i * segSize;
  blkifSegFields.push(
    f(blkif_request_segment, "gref", `seg${i}.gref`, false, base),
    f(blkif_request_segment, "first_sect", `seg${i}.first_sect`, false, base),
    f(blkif_request_segment, "last_sect", `seg${i}.last_sect`, false, base),
  );
}

/** The fixed fields of a blkif request before its segments. */
export const BLKIF_REQUEST_HEAD = 5;
/** Fields per blkif segment (gref, first_sect, last_sect). */
export const BLKIF_SEG_FIELDS = 3;

const blkifRequest = view(blkif_request.sizeof, [
  f(blkif_request, "operation"),
  f(blkif_request, "nr_segments"),
  f(blkif_request, "handle"),
  f(blkif_request, "id"),
  f(blkif_request, "sector_number"),
  ...blkifSegFields,
]);

const blkifDiscard = view(blkif_request_discard.sizeof, [
  f(blkif_request_discard, "operation"),
  f(blkif_request_discard, "flag"),
  f(blkif_request_discard, "handle"),
  f(blkif_request_discard, "id"),
  f(blkif_request_discard, "sector_number"),
  f(blkif_request_discard, "nr_sectors"),
]);

const indirectGrefs: ReplayField[] = [];
const ig = blkif_request_indirect.fields.indirect_grefs!;
for (let i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++) {
  indirectGrefs.push({
    name: `indirect_grefs${i}`,
    offset: ig.offset + i * ig.size,
    size: 4,
    signed: false,
  });
}
const blkifIndirect = view(blkif_request_indirect.sizeof, [
  f(blkif_request_indirect, "operation"),
  f(blkif_request_indirect, "indirect_op"),
  f(blkif_request_indirect, "nr_segments"),
  f(blkif_request_indirect, "id"),
  f(blkif_request_indirect, "sector_number"),
  f(blkif_request_indirect, "handle"),
  ...indirectGrefs,
]);

const blkifResponse = view(blkif_response.sizeof, [
  f(blkif_response, "id"),
  f(blkif_response, "operation"),
  f(blkif_response, "status", "status", true),
]);

const extra = view(netif_extra_info.sizeof, [
  f(netif_extra_info, "type"),
  f(netif_extra_info, "flags"),
  f(netif_extra_info, "u.gso.size", "gso.size"),
  f(netif_extra_info, "u.gso.type", "gso.type"),
  f(netif_extra_info, "u.gso.pad", "gso.pad"),
  f(netif_extra_info, "u.gso.features", "gso.features"),
]);

const txRequest = view(netif_tx_request.sizeof, [
  f(netif_tx_request, "gref"),
  f(netif_tx_request, "offset"),
  f(netif_tx_request, "flags"),
  f(netif_tx_request, "id"),
  f(netif_tx_request, "size"),
]);
const txResponse = view(netif_tx_response.sizeof, [
  f(netif_tx_response, "id"),
  f(netif_tx_response, "status", "status", true),
]);
const rxRequest = view(netif_rx_request.sizeof, [
  f(netif_rx_request, "id"),
  f(netif_rx_request, "pad"),
  f(netif_rx_request, "gref"),
]);
const rxResponse = view(netif_rx_response.sizeof, [
  f(netif_rx_response, "id"),
  f(netif_rx_response, "offset"),
  f(netif_rx_response, "flags"),
  f(netif_rx_response, "status", "status", true),
]);

/** The views of one ring: "" is the default; the others are named on the command line. */
export interface RingViews {
  readonly req: Readonly<Record<string, ReplayView>>;
  readonly rsp: Readonly<Record<string, ReplayView>>;
}

export const RING_VIEWS: Readonly<Record<RingName, RingViews>> = {
  blkif: {
    req: { "": blkifRequest, discard: blkifDiscard, indirect: blkifIndirect },
    rsp: { "": blkifResponse },
  },
  netif_tx: { req: { "": txRequest, extra }, rsp: { "": txResponse } },
  netif_rx: { req: { "": rxRequest }, rsp: { "": rxResponse, extra } },
};
