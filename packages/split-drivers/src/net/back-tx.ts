/*
 * netback's transmit side (Linux drivers/net/xen-netback/netback.c: xenvif_tx_build_gops,
 * xenvif_get_extras, xenvif_count_requests, xenvif_tx_err, xenvif_fatal_tx_err,
 * make_tx_response): requests the frontend put on its tx ring become frames on the bridge.
 *
 * Invariant: every request is copied out of the ring before it is looked at
 * (RING_COPY_REQUEST); nothing the frontend wrote makes this throw; the frontend's buffers
 * are reached only by GNTTABOP_copy through its grant references; every consumed request
 * gets exactly one response (NULL for extra-info slots) unless the vif is disabled by a
 * fatal error, after which it consumes nothing more.
 */
import {
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETTXF_csum_blank,
  NETTXF_data_validated,
  NETTXF_extra_info,
  NETTXF_more_data,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_MAX,
  XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
  XEN_NETIF_EXTRA_TYPE_MCAST_DEL,
  XEN_NETIF_GSO_TYPE_TCPV4,
  XEN_NETIF_GSO_TYPE_TCPV6,
} from "@hyperlab/abi";
import type { NetbackVif } from "./back-vif";
import {
  ETH_HLEN,
  EXTRA_FLAGS,
  EXTRA_GSO_SIZE,
  EXTRA_GSO_TYPE,
  EXTRA_TYPE,
  FATAL_SKB_SLOTS_DEFAULT,
  NET_TX_RING_SIZE,
  TX_REQ_FLAGS,
  TX_REQ_GREF,
  TX_REQ_ID,
  TX_REQ_OFFSET,
  TX_REQ_SIZE,
  TX_RSP_BYTES,
  TX_RSP_ID,
  TX_RSP_STATUS,
  XEN_NETBK_LEGACY_SLOTS_MAX,
  XEN_PAGE_SIZE,
} from "./netif";

/** Packets one poll handles before looking for other work (NAPI's budget). */
export const NETBACK_TX_BUDGET = 64;

/** make_tx_response: the response for `id`, then a NULL response per extra slot. */
function makeTxResponse(vif: NetbackVif, id: number, extraCount: number, status: number): void {
  const ring = vif.txRing!;
  const dv = ring.sring.view;
  let off = ring.nextResponseOffset(TX_RSP_BYTES);
  dv.setUint16(off + TX_RSP_ID, id, true);
  dv.setInt16(off + TX_RSP_STATUS, status, true);
  ring.produceResponse();
  for (let i = 0; i < extraCount; i++) {
    off = ring.nextResponseOffset(TX_RSP_BYTES);
    dv.setInt16(off + TX_RSP_STATUS, NETIF_RSP_NULL, true);
    ring.produceResponse();
  }
}

/** xenvif_tx_err: ERROR for the first request (and its extras) and every slot up to `end`. */
function txErr(vif: NetbackVif, firstId: number, extraCount: number, end: number): void {
  const ring = vif.txRing!;
  const t = vif.txScratch;
  makeTxResponse(vif, firstId, extraCount, NETIF_RSP_ERROR);
  while (ring.reqCons !== end) {
    ring.consumeRequest(vif.txBytes);
    makeTxResponse(vif, t.getUint16(TX_REQ_ID, true), 0, NETIF_RSP_ERROR);
  }
  vif.back.counters.txErrors.value++;
}

/**
 * xenvif_get_extras: the extra-info slots after a request with NETTXF_extra_info. Returns
 * the work left, or -1 after a fatal error.
 */
function getExtras(vif: NetbackVif, workToDo: number): number {
  const ring = vif.txRing!;
  const t = vif.txScratch;
  let flags = 0;
  do {
    if (workToDo-- <= 0) {
      vif.fatalTxErr("Missing extra info");
      return -1;
    }
    ring.consumeRequest(vif.txBytes);
    vif.extraCount++;
    const type = t.getUint8(EXTRA_TYPE);
    flags = t.getUint8(EXTRA_FLAGS);
    if (type === 0 || type >= XEN_NETIF_EXTRA_TYPE_MAX) {
      vif.fatalTxErr(`Invalid extra type: ${type}`);
      return -1;
    }
    vif.extraSeen[type] = 1;
    if (type === XEN_NETIF_EXTRA_TYPE_GSO) {
      vif.gsoSize = t.getUint16(EXTRA_GSO_SIZE, true);
      vif.gsoType = t.getUint8(EXTRA_GSO_TYPE);
    }
  } while ((flags & XEN_NETIF_EXTRA_FLAG_MORE) !== 0);
  return workToDo;
}

/**
 * xenvif_count_requests: follows the NETTXF_more_data chain after the first request, storing
 * each slot in the vif's slot arrays (from index 1) and taking each slot's size off the first
 * one's total. Returns the number of further slots, -1 after a fatal error, -2 after an
 * error answered with xenvif_tx_err.
 */
function countRequests(vif: NetbackVif, firstFlags: number, workToDo: number): number {
  if ((firstFlags & NETTXF_more_data) === 0) return 0;
  const ring = vif.txRing!;
  const dv = ring.sring.view;
  const cons = ring.reqCons;
  let slots = 0;
  let dropErr = false;
  let more = 0;
  do {
    if (slots >= workToDo) {
      vif.fatalTxErr(`Asked for ${slots} slots but exceeds this limit`);
      return -1;
    }
    if (slots >= FATAL_SKB_SLOTS_DEFAULT) {
      vif.fatalTxErr(
        `Malicious frontend using ${slots} slots, threshold ${FATAL_SKB_SLOTS_DEFAULT}`,
      );
      return -1;
    }
    if (!dropErr && slots >= XEN_NETBK_LEGACY_SLOTS_MAX) dropErr = true; // "Too many slots"
    // RING_COPY_REQUEST of the slot into our own arrays: read each field once.
    const off = ring.sring.slotOffset((cons + slots) >>> 0);
    const gref = dv.getUint32(off + TX_REQ_GREF, true);
    const offset = dv.getUint16(off + TX_REQ_OFFSET, true);
    const flags = dv.getUint16(off + TX_REQ_FLAGS, true);
    const id = dv.getUint16(off + TX_REQ_ID, true);
    const size = dv.getUint16(off + TX_REQ_SIZE, true);
    const i = slots + 1;
    vif.slotGref[i] = gref;
    vif.slotOffset[i] = offset;
    vif.slotId[i] = id;
    vif.slotSize[i] = size;
    if (!dropErr && size > vif.slotSize[0]!) dropErr = true; // "Packet is bigger than frame"
    vif.slotSize[0] = (vif.slotSize[0]! - size) & 0xffff;
    slots++;
    if (offset + size > XEN_PAGE_SIZE) {
      vif.fatalTxErr(`Cross page boundary, txp->offset: ${offset}, size: ${size}`);
      return -1;
    }
    more = flags & NETTXF_more_data;
  } while (more !== 0);
  if (dropErr) {
    // xenvif_tx_err from the first request to the end of its chain.
    txErr(vif, vif.slotId[0]!, vif.extraCount, (cons + slots) >>> 0);
    return -2;
  }
  return slots;
}

/**
 * One poll of the tx ring (xenvif_tx_action over xenvif_tx_build_gops): up to `budget`
 * packets are read, copied into dom0's staging pages by grant copy and sent to the bridge.
 * Returns the packets handled.
 */
export function netbackTxPoll(vif: NetbackVif, budget = NETBACK_TX_BUDGET): number {
  const ring = vif.txRing;
  if (ring === null || vif.disabled) return 0;
  const t = vif.txScratch;
  let done = 0;
  while (done < budget && !vif.disabled) {
    if ((ring.sring.reqProd - ring.reqCons) >>> 0 > NET_TX_RING_SIZE) {
      vif.fatalTxErr(
        `Impossible number of requests. req_prod ${ring.sring.reqProd}, req_cons ${ring.reqCons}, size ${NET_TX_RING_SIZE}`,
      );
      break;
    }
    let workToDo = ring.unconsumedRequests();
    if (workToDo === 0) break;
    ring.consumeRequest(vif.txBytes);
    workToDo--;
    done++;
    const flags = t.getUint16(TX_REQ_FLAGS, true);
    vif.slotGref[0] = t.getUint32(TX_REQ_GREF, true);
    vif.slotOffset[0] = t.getUint16(TX_REQ_OFFSET, true);
    vif.slotId[0] = t.getUint16(TX_REQ_ID, true);
    vif.slotSize[0] = t.getUint16(TX_REQ_SIZE, true);
    const total = vif.slotSize[0]!;
    vif.extraCount = 0;
    vif.extraSeen.fill(0);
    vif.gsoSize = 0;
    vif.gsoType = 0;
    if ((flags & NETTXF_extra_info) !== 0) {
      workToDo = getExtras(vif, workToDo);
      if (workToDo < 0) break;
    }
    if (
      vif.extraSeen[XEN_NETIF_EXTRA_TYPE_MCAST_ADD] === 1 ||
      vif.extraSeen[XEN_NETIF_EXTRA_TYPE_MCAST_DEL] === 1
    ) {
      // A multicast filter update carries no data: acknowledged, nothing sent.
      makeTxResponse(vif, vif.slotId[0]!, vif.extraCount, NETIF_RSP_OKAY);
      continue;
    }
    const n = countRequests(vif, flags, workToDo);
    if (n === -1) break;
    if (n === -2) continue;
    if (vif.slotSize[0]! < ETH_HLEN) {
      // "Bad packet size".
      txErr(vif, vif.slotId[0]!, vif.extraCount, (ring.reqCons + n) >>> 0);
      continue;
    }
    if (vif.slotOffset[0]! + vif.slotSize[0]! > XEN_PAGE_SIZE) {
      vif.fatalTxErr(
        `Cross page boundary, txreq.offset: ${vif.slotOffset[0]}, size: ${vif.slotSize[0]}`,
      );
      break;
    }
    if (vif.gsoSize !== 0 || vif.extraSeen[XEN_NETIF_EXTRA_TYPE_GSO] === 1) {
      // xenvif_set_skb_gso: both failures are fatal.
      if (vif.gsoSize === 0) {
        vif.fatalTxErr("GSO size must not be zero");
        break;
      }
      if (vif.gsoType !== XEN_NETIF_GSO_TYPE_TCPV4 && vif.gsoType !== XEN_NETIF_GSO_TYPE_TCPV6) {
        vif.fatalTxErr(`Bad GSO type ${vif.gsoType}`);
        break;
      }
    }
    ring.reqCons = (ring.reqCons + n) >>> 0;
    queuePacket(vif, n + 1, total, flags);
  }
  flushTx(vif);
  if (pushTxResponses(vif)) vif.notifyTx();
  return done;
}

/**
 * Queue the packet in hand (slots 0..nslots-1 of the vif's scratch) into the poll's batch:
 * its copies into the staging pages at `stagePos`, its slots' ids for the responses. The
 * batch is flushed first when the packet would not fit (staging, copy ops or slots).
 */
function queuePacket(vif: NetbackVif, nslots: number, total: number, flags: number): void {
  const back = vif.back;
  const batch = back.copy;
  if (
    vif.stagePos + total > back.txStage.length ||
    !batch.hasRoom(2 * nslots) ||
    vif.pendSlots + nslots > vif.pendId.length
  ) {
    flushTx(vif);
  }
  const p = vif.pendPkts++;
  vif.pktFirstSlot[p] = vif.pendSlots;
  vif.pktSlots[p] = nslots;
  vif.pktPos[p] = vif.stagePos;
  vif.pktLen[p] = total;
  vif.pktGsoSize[p] = vif.gsoSize;
  vif.pktGsoType[p] = vif.gsoType;
  vif.pktFlags[p] = flags;
  let pos = vif.stagePos;
  for (let s = 0; s < nslots; s++) {
    const q = vif.pendSlots++;
    vif.pendId[q] = vif.slotId[s]!;
    vif.pendExtra[q] = s === 0 ? vif.extraCount : 0;
    vif.pendOpFirst[q] = batch.count;
    let srcOff = vif.slotOffset[s]!;
    let left = vif.slotSize[s]!;
    while (left > 0) {
      // A chunk stops at the end of a staging page.
      const inPage = pos & (XEN_PAGE_SIZE - 1);
      const n = Math.min(left, XEN_PAGE_SIZE - inPage);
      batch.fromGrant(
        vif.domid,
        vif.slotGref[s]!,
        srcOff,
        back.txStageMfn + (pos >>> 12),
        inPage,
        n,
      );
      pos += n;
      srcOff += n;
      left -= n;
    }
    vif.pendOpEnd[q] = batch.count;
  }
  // pos - stagePos === total: the first slot holds total minus the sizes of the others.
  vif.stagePos = pos;
}

/**
 * gnttab_batch_copy + xenvif_tx_submit: one hypercall for the batch, then every slot
 * answered (OKAY, or ERROR where its copy failed; the packet is then dropped) and every whole
 * packet handed to the bridge with its metadata.
 */
export function flushTx(vif: NetbackVif): void {
  if (vif.pendPkts === 0) return;
  const back = vif.back;
  const batch = back.copy;
  const c = back.counters;
  batch.flush();
  for (let p = 0; p < vif.pendPkts; p++) {
    let ok = 1;
    const first = vif.pktFirstSlot[p]!;
    for (let q = first; q < first + vif.pktSlots[p]!; q++) {
      let st = NETIF_RSP_OKAY;
      for (let i = vif.pendOpFirst[q]!; i < vif.pendOpEnd[q]!; i++) {
        if (batch.status(i) !== 0) st = NETIF_RSP_ERROR;
      }
      if (st !== NETIF_RSP_OKAY) ok = 0;
      makeTxResponse(vif, vif.pendId[q]!, vif.pendExtra[q]!, st);
    }
    vif.pktOk[p] = ok;
  }
  batch.reset();
  // The frames go out after every response is written: a receiver runs synchronously.
  const m = vif.txMeta;
  const n = vif.pendPkts;
  vif.pendPkts = 0;
  vif.pendSlots = 0;
  vif.stagePos = 0;
  for (let p = 0; p < n; p++) {
    if (vif.pktOk[p] === 0) {
      c.txErrors.value++;
      continue;
    }
    const flags = vif.pktFlags[p]!;
    m.gsoSize = vif.pktGsoSize[p]!;
    m.gsoType = vif.pktGsoType[p]!;
    m.csumBlank = (flags & NETTXF_csum_blank) !== 0;
    m.dataValidated = (flags & NETTXF_data_validated) !== 0;
    const pos = vif.pktPos[p]!;
    const len = vif.pktLen[p]!;
    c.txPackets.value++;
    c.txBytes.value += len;
    vif.port!.transmitWithMeta(back.txStage.subarray(pos, pos + len), m);
  }
}

/** RING_PUSH_RESPONSES_AND_CHECK_NOTIFY on the tx ring. */
function pushTxResponses(vif: NetbackVif): boolean {
  const ring = vif.txRing;
  if (ring === null || ring.rspProdPvt === ring.sring.rspProd) return false;
  return ring.pushResponsesAndCheckNotify();
}
