/*
 * netback's receive side (Linux drivers/net/xen-netback/rx.c: xenvif_rx_queue_tail,
 * xenvif_rx_ring_slots_available, xenvif_rx_skb, xenvif_rx_next_chunk, xenvif_rx_extra_slot,
 * xenvif_rx_copy_flush): frames from the bridge wait in the vif's staging pages in dom0 and
 * are copied by grant copy into buffers the frontend posted on its rx ring, one page per
 * slot, NETRXF_more_data chaining the slots of a frame, a GSO extra slot after the first.
 *
 * Invariant: a frame leaves the queue only when the frontend has posted enough buffers for
 * all its slots (counted with the clamped RING_HAS_UNCONSUMED_REQUESTS); each consumed
 * request gets one response in the same slot; a copy the hypervisor refused puts its
 * GNTST_* status in that response; the staging pages never hold more than they have room for
 * (a frame that does not fit is dropped and counted).
 */
import {
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_extra_info,
  NETRXF_more_data,
  XEN_NETIF_EXTRA_TYPE_GSO,
} from "@hyperlab/abi";
import type { NetbackVif } from "./back-vif";
import {
  EXTRA_BYTES,
  EXTRA_GSO_SIZE,
  EXTRA_GSO_TYPE,
  EXTRA_TYPE,
  NETIF_MAX_FRAME,
  type NetMeta,
  netifSlotsFor,
  RX_REQ_GREF,
  RX_REQ_ID,
  RX_RSP_BYTES,
  RX_RSP_FLAGS,
  RX_RSP_ID,
  RX_RSP_OFFSET,
  RX_RSP_STATUS,
  XEN_PAGE_SIZE,
} from "./netif";

/** Frames one rx pass moves before it lets others run (RX_BATCH_SIZE). */
export const NETBACK_RX_BATCH = 64;

const RXF_CSUM_BLANK = 1;
const RXF_DATA_VALIDATED = 2;

/**
 * xenvif_start_xmit + xenvif_rx_queue_tail: a frame from the bridge goes into the staging
 * pages (one CPU copy, as the skb sits in dom0's memory), then the rx action runs. A frame
 * that does not fit, or arrives while the vif is down, is dropped.
 */
export function netbackRxQueue(vif: NetbackVif, frame: Uint8Array, meta: NetMeta): void {
  const c = vif.back.counters;
  if (vif.rxRing === null || vif.disabled) {
    c.rxDropped.value++;
    return;
  }
  const len = frame.length;
  if (len > NETIF_MAX_FRAME) {
    // No netif slot chain carries more (the tx side's size field is 16 bits).
    c.rxDropped.value++;
    return;
  }
  const pages = netifSlotsFor(len);
  const P = vif.rxStagePages;
  let start = vif.stageProd % P;
  let pad = 0;
  if (start + pages > P) {
    pad = P - start;
    start = 0;
  }
  const q = vif.queued;
  if (pages > P || vif.stageProd - vif.stageCons + pad + pages > P || q >= vif.qLen.length) {
    c.rxDropped.value++;
    return;
  }
  vif.rxStage.set(frame, start * XEN_PAGE_SIZE);
  c.localCopyBytes.value += len;
  const slot = (vif.qHead + q) % vif.qLen.length;
  vif.qLen[slot] = len;
  vif.qStart[slot] = start;
  vif.stageProd += pad + pages;
  vif.qEnd[slot] = vif.stageProd;
  vif.qGsoSize[slot] = meta.gsoSize;
  vif.qGsoType[slot] = meta.gsoType;
  vif.qFlags[slot] =
    (meta.csumBlank ? RXF_CSUM_BLANK : 0) | (meta.dataValidated ? RXF_DATA_VALIDATED : 0);
  vif.queued = q + 1;
  netbackRxAction(vif);
}

/** xenvif_rx_action: move queued frames into posted buffers while there are enough. */
export function netbackRxAction(vif: NetbackVif): void {
  const ring = vif.rxRing;
  if (ring === null || vif.disabled) return;
  let moved = 0;
  while (vif.queued > 0 && moved < NETBACK_RX_BATCH) {
    const h = vif.qHead;
    const len = vif.qLen[h]!;
    const gso = vif.qGsoSize[h]! !== 0 && vif.frontGso;
    const dataSlots = netifSlotsFor(len);
    const needed = dataSlots + (gso ? 1 : 0);
    if (dataSlots > 1 && !vif.frontSg) {
      // A frontend without feature-sg takes one slot per frame: the frame cannot go.
      vif.back.counters.rxDropped.value++;
      dequeue(vif);
      continue;
    }
    // xenvif_rx_ring_slots_available: not enough buffers, ask to be kicked when there are.
    if (ring.unconsumedRequests() < needed) {
      ring.sring.reqEvent = (ring.reqCons + needed) >>> 0;
      if (ring.unconsumedRequests() < needed) break;
    }
    if (!vif.back.rxCopy.hasRoom(dataSlots)) rxCopyFlush(vif);
    rxSkb(vif, h, len, gso);
    dequeue(vif);
    moved++;
  }
  // The staging pages of the frames dequeued above are reused only by the next frame from
  // the bridge, which comes after this flush (nothing here hands frames to the bridge).
  rxCopyFlush(vif);
  if (ring.rspProdPvt !== ring.sring.rspProd && ring.pushResponsesAndCheckNotify()) vif.notifyRx();
}

function dequeue(vif: NetbackVif): void {
  vif.stageCons = vif.qEnd[vif.qHead]!;
  vif.qHead = (vif.qHead + 1) % vif.qLen.length;
  vif.queued--;
}

/**
 * xenvif_rx_copy_flush: one GNTTABOP_copy for the queued frames; a failed copy overwrites its
 * response's status with the GNTST_* code.
 */
function rxCopyFlush(vif: NetbackVif): void {
  const batch = vif.back.rxCopy;
  const n = batch.count;
  if (n === 0) return;
  batch.flush();
  const ring = vif.rxRing!;
  const c = vif.back.counters;
  for (let i = 0; i < n; i++) {
    const st = batch.status(i);
    if (st !== 0) {
      ring.sring.view.setInt16(ring.sring.slotOffset(vif.rxOpRsp[i]!) + RX_RSP_STATUS, st, true);
      c.rxErrors.value++;
    }
  }
  batch.reset();
}

/** xenvif_rx_skb: one frame into `needed` slots, one grant copy per data slot (queued). */
function rxSkb(vif: NetbackVif, h: number, len: number, gso: boolean): void {
  const ring = vif.rxRing!;
  const dv = ring.sring.view;
  const batch = vif.back.rxCopy;
  const c = vif.back.counters;
  const base = vif.rxStageMfn + vif.qStart[h]!;
  const dataSlots = netifSlotsFor(len);
  let left = len;
  for (let s = 0; s < dataSlots; s++) {
    // RING_COPY_REQUEST: id and gref read once, from our own copy.
    ring.consumeRequest(vif.rxBytes);
    const id = vif.rxScratch.getUint16(RX_REQ_ID, true);
    const gref = vif.rxScratch.getUint32(RX_REQ_GREF, true);
    const n = Math.min(left, XEN_PAGE_SIZE);
    vif.rxOpRsp[batch.toGrant(base + s, 0, vif.domid, gref, 0, n)] = ring.rspProdPvt;
    left -= n;
    let flags = left > 0 ? NETRXF_more_data : 0;
    if (s === 0) {
      const f = vif.qFlags[h]!;
      if ((f & RXF_CSUM_BLANK) !== 0) flags |= NETRXF_csum_blank | NETRXF_data_validated;
      else if ((f & RXF_DATA_VALIDATED) !== 0) flags |= NETRXF_data_validated;
      if (gso) flags |= NETRXF_extra_info;
    }
    const off = ring.nextResponseOffset(RX_RSP_BYTES);
    dv.setUint16(off + RX_RSP_ID, id, true);
    dv.setUint16(off + RX_RSP_OFFSET, 0, true);
    dv.setUint16(off + RX_RSP_FLAGS, flags, true);
    dv.setInt16(off + RX_RSP_STATUS, n, true);
    ring.produceResponse();
    if (s === 0 && gso) {
      // xenvif_rx_extra_slot: the GSO extra takes the next request's slot.
      ring.consumeRequest(vif.rxBytes);
      const eo = ring.nextResponseOffset(EXTRA_BYTES);
      dv.setUint8(eo + EXTRA_TYPE, XEN_NETIF_EXTRA_TYPE_GSO);
      dv.setUint16(eo + EXTRA_GSO_SIZE, vif.qGsoSize[h]!, true);
      dv.setUint8(eo + EXTRA_GSO_TYPE, vif.qGsoType[h]!);
      ring.produceResponse();
    }
  }
  c.rxPackets.value++;
  c.rxBytes.value += len;
}
