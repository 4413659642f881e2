/*
 * netfront in a domU (Linux drivers/net/xen-netfront.c): talk_to_netback grants a tx and an
 * rx ring page, allocates one event channel (or one per direction when the backend offers
 * feature-split-event-channels) and writes libxl/netback's keys; xennet_start_xmit puts a
 * frame on the tx ring (one page per slot, the total size in the first slot,
 * NETTXF_more_data between slots, a GSO extra slot after the first); xennet_tx_buf_gc takes
 * the responses back; xennet_alloc_rx_buffers posts granted pages for the backend to fill;
 * xennet_poll / xennet_get_responses reassembles NETRXF_more_data chains.
 *
 * Invariant: the frontend reads only its own pages, and of an rx page only
 * [offset, offset + status) after checking that it lies inside the page; a response the
 * backend could not have produced (rsp_prod beyond the ring, an unknown or idle tx id, a
 * grant the backend still holds) marks the device broken (netfront's `broken`) instead of
 * being followed. Nothing the backend writes makes it throw.
 */
import {
  ENOSPC,
  ENOTCONN,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETRXF_csum_blank,
  NETRXF_data_validated,
  NETRXF_extra_info,
  NETRXF_more_data,
  NETTXF_csum_blank,
  NETTXF_data_validated,
  NETTXF_extra_info,
  NETTXF_more_data,
  XEN_NETIF_EXTRA_FLAG_MORE,
  XEN_NETIF_EXTRA_TYPE_GSO,
  XEN_NETIF_EXTRA_TYPE_MAX,
  XEN_NETIF_GSO_TYPE_TCPV4,
  XEN_NETIF_GSO_TYPE_TCPV6,
} from "@hyperlab/abi";
import type { Counter } from "@hyperlab/core";
import { FrontRing, RING_ENTRY_BYTES, SharedRing } from "../ring";
import type { XenbusKernel } from "../xenbus/device";
import type { GnttabGuest } from "../xenbus/gnttab";
import {
  ETH_HLEN,
  EXTRA_FLAGS,
  EXTRA_GSO_FEATURES,
  EXTRA_GSO_SIZE,
  EXTRA_GSO_TYPE,
  EXTRA_TYPE,
  NET_RX_RING_SIZE,
  NET_TX_RING_SIZE,
  NETIF_MAX_FRAME,
  NetError,
  type NetMeta,
  netifSlotsFor,
  netMeta,
  RX_REQ_GREF,
  RX_REQ_ID,
  RX_RSP_FLAGS,
  RX_RSP_OFFSET,
  RX_RSP_STATUS,
  TX_REQ_BYTES,
  TX_REQ_FLAGS,
  TX_REQ_GREF,
  TX_REQ_ID,
  TX_REQ_OFFSET,
  TX_REQ_SIZE,
  TX_RSP_ID,
  TX_RSP_STATUS,
  XEN_NETBK_LEGACY_SLOTS_MAX,
  XEN_PAGE_SIZE,
} from "./netif";

export interface NetfrontOptions {
  /** Pages for frames in flight on the tx ring (the skbs' pages): 1..256 (32). */
  txPages?: number;
  /** rx buffers kept posted (rx_target): 1..256 (64). */
  rxBuffers?: number;
  /** Use split event channels when the backend offers them (default true). */
  splitEventChannels?: boolean;
  /** Offer feature-gso-tcpv4 (default true): without it netback sends no GSO extra slots. */
  gso?: boolean;
  /** How the frontend gets a page (default: hv.allocDomainPages of its domain). */
  allocFrame?: () => number;
}

/** Offloads of a frame to send. */
export interface NetfrontSendOptions {
  /** GSO segment size; with it a GSO extra slot is sent (XEN_NETIF_GSO_TYPE_TCPV4 unless gsoType). */
  gsoSize?: number;
  gsoType?: number;
  csumBlank?: boolean;
  dataValidated?: boolean;
}

/** The counters netfront keeps, per driver. */
export interface NetfrontCounters {
  txPackets: Counter;
  txBytes: Counter;
  txErrors: Counter;
  rxPackets: Counter;
  rxBytes: Counter;
  rxErrors: Counter;
  notifications: Counter;
  events: Counter;
  grants: Counter;
  copyBytes: Counter;
}

/** What a vif's datapath needs of its driver (NetfrontDriver is one). */
export interface NetfrontHost {
  readonly kernel: XenbusKernel;
  readonly gnttab: GnttabGuest;
  readonly counters: NetfrontCounters;
  notify(irq: number): void;
}

/** What a received frame is handed to: the bytes are valid only during the call. */
export type NetfrontReceiver = (frame: Uint8Array, meta: NetMeta) => void;

/** One vif as netfront sees it (struct netfront_info with one netfront_queue). */
export class NetfrontDevice {
  readonly devid: number;
  readonly backendId: number;
  /** The MAC from `device/vif/<devid>/mac`. */
  readonly mac: Uint8Array;
  /** netfront's `broken`: the backend produced impossible responses; the device is dead. */
  broken = false;
  brokenReason = "";
  /** True once the backend is Connected. */
  connected = false;
  /** @internal */ readonly txRing: FrontRing;
  /** @internal */ readonly rxRing: FrontRing;
  /** @internal */ txIrq = -1;
  /** @internal */ rxIrq = -1;
  private readonly drv: NetfrontHost;
  private readonly txPageMfn: number[];
  private readonly rxPageMfn: number[];
  private readonly txFreePages: Int32Array;
  private txFreeTop = 0;
  private readonly txFreeIds = new Int32Array(NET_TX_RING_SIZE);
  private txFreeIdTop = 0;
  private readonly txIdGref = new Int32Array(NET_TX_RING_SIZE).fill(-1);
  private readonly txIdPage = new Int32Array(NET_TX_RING_SIZE).fill(-1);
  /** rx buffer (page index) posted at ring index & (size - 1), -1 if none; and its grant. */
  private readonly rxIdxPage = new Int32Array(NET_RX_RING_SIZE).fill(-1);
  private readonly rxIdxGref = new Int32Array(NET_RX_RING_SIZE).fill(-1);
  private readonly rxFreePages: Int32Array;
  private rxFreeTop = 0;
  private readonly rxFrame = new Uint8Array((XEN_NETBK_LEGACY_SLOTS_MAX + 1) * XEN_PAGE_SIZE);
  private readonly rxMeta = netMeta();
  private readonly receivers: NetfrontReceiver[] = [];

  /** @internal */
  constructor(
    drv: NetfrontHost,
    devid: number,
    backendId: number,
    mac: Uint8Array,
    txRingMfn: number,
    rxRingMfn: number,
    txPageMfn: number[],
    rxPageMfn: number[],
  ) {
    this.drv = drv;
    this.devid = devid;
    this.backendId = backendId;
    this.mac = mac;
    const ram = drv.kernel.hv.machine.ram;
    const txS = new SharedRing(ram.frameBytes(txRingMfn), RING_ENTRY_BYTES.netif_tx);
    const rxS = new SharedRing(ram.frameBytes(rxRingMfn), RING_ENTRY_BYTES.netif_rx);
    txS.init();
    rxS.init();
    this.txRing = new FrontRing(txS);
    this.rxRing = new FrontRing(rxS);
    this.txPageMfn = txPageMfn;
    this.rxPageMfn = rxPageMfn;
    this.txFreePages = new Int32Array(txPageMfn.length);
    for (let i = txPageMfn.length - 1; i >= 0; i--) this.txFreePages[this.txFreeTop++] = i;
    for (let i = NET_TX_RING_SIZE - 1; i >= 0; i--) this.txFreeIds[this.txFreeIdTop++] = i;
    this.rxFreePages = new Int32Array(rxPageMfn.length);
    for (let i = rxPageMfn.length - 1; i >= 0; i--) this.rxFreePages[this.rxFreeTop++] = i;
  }

  /** Every received frame goes to `fn` (the bytes are only valid during the call). */
  onReceive(fn: NetfrontReceiver): void {
    this.receivers.push(fn);
  }

  /** tx slots free on the ring. */
  get txFree(): number {
    return this.txRing.freeRequests();
  }

  /** Frames sent whose responses have not come back. */
  get txInFlight(): number {
    return NET_TX_RING_SIZE - this.txFreeIdTop;
  }

  /** rx buffers posted and not yet answered. */
  get rxPosted(): number {
    return this.rxPageMfn.length - this.rxFreeTop;
  }

  /**
   * xennet_start_xmit: copy `frame` into tx pages, grant them to the backend, put the slots on
   * the ring and kick the backend if it asked. Returns 0, -ENOSPC when the ring or the tx pages
   * are full (netif_stop_queue: retry after responses came back), -ENOTCONN when the device is
   * not connected or broken. Throws NetError for a frame outside 14..65535 bytes.
   */
  send(frame: Uint8Array, opts?: NetfrontSendOptions): number {
    const len = frame.length;
    if (len < ETH_HLEN || len > NETIF_MAX_FRAME) {
      throw new NetError(
        "NET_BAD_FRAME",
        `a frame is ${ETH_HLEN} to ${NETIF_MAX_FRAME} bytes (an Ethernet header and at most 64 KiB - 1), got ${len}`,
      );
    }
    if (!this.connected || this.broken) return -ENOTCONN;
    const gsoSize = opts?.gsoSize ?? 0;
    const gsoType = opts?.gsoType ?? XEN_NETIF_GSO_TYPE_TCPV4;
    if (
      gsoSize !== 0 &&
      (!Number.isInteger(gsoSize) ||
        gsoSize < 0 ||
        gsoSize > 0xffff ||
        (gsoType !== XEN_NETIF_GSO_TYPE_TCPV4 && gsoType !== XEN_NETIF_GSO_TYPE_TCPV6))
    ) {
      throw new NetError(
        "NET_BAD_FRAME",
        `gsoSize must be 1..65535 with gsoType TCPV4 or TCPV6, got ${gsoSize}/${gsoType}`,
      );
    }
    const pages = netifSlotsFor(len);
    const slots = pages + (gsoSize !== 0 ? 1 : 0);
    if (
      this.txRing.freeRequests() < slots ||
      this.txFreeTop < pages ||
      this.txFreeIdTop < pages ||
      this.drv.gnttab.freeCount < pages
    ) {
      return -ENOSPC;
    }
    const c = this.drv.counters;
    const ram = this.drv.kernel.hv.machine.ram;
    const gnttab = this.drv.gnttab;
    const ring = this.txRing;
    const dv = ring.sring.view;
    let flags = 0;
    if (opts?.csumBlank === true) flags |= NETTXF_csum_blank | NETTXF_data_validated;
    else if (opts?.dataValidated === true) flags |= NETTXF_data_validated;
    let at = 0;
    for (let s = 0; s < pages; s++) {
      const page = this.txFreePages[--this.txFreeTop]!;
      const id = this.txFreeIds[--this.txFreeIdTop]!;
      const mfn = this.txPageMfn[page]!;
      const n = Math.min(XEN_PAGE_SIZE, len - at);
      ram.frameBytes(mfn).set(frame.subarray(at, at + n));
      c.copyBytes.value += n;
      const ref = gnttab.grantForeignAccess(this.backendId, mfn, true); // free refs checked above
      c.grants.value++;
      this.txIdGref[id] = ref;
      this.txIdPage[id] = page;
      const off = ring.nextRequestOffset();
      at += n;
      const more = at < len ? NETTXF_more_data : 0;
      dv.setUint32(off + TX_REQ_GREF, ref, true);
      dv.setUint16(off + TX_REQ_OFFSET, 0, true);
      dv.setUint16(off + TX_REQ_ID, id, true);
      if (s === 0) {
        dv.setUint16(
          off + TX_REQ_FLAGS,
          flags | more | (gsoSize !== 0 ? NETTXF_extra_info : 0),
          true,
        );
        dv.setUint16(off + TX_REQ_SIZE, len, true);
        ring.produceRequest();
        if (gsoSize !== 0) {
          const eo = ring.nextRequestOffset();
          ring.sring.bytes.fill(0, eo, eo + TX_REQ_BYTES);
          dv.setUint8(eo + EXTRA_TYPE, XEN_NETIF_EXTRA_TYPE_GSO);
          dv.setUint8(eo + EXTRA_FLAGS, 0);
          dv.setUint16(eo + EXTRA_GSO_SIZE, gsoSize, true);
          dv.setUint8(eo + EXTRA_GSO_TYPE, gsoType);
          dv.setUint16(eo + EXTRA_GSO_FEATURES, 0, true);
          ring.produceRequest();
        }
      } else {
        dv.setUint16(off + TX_REQ_FLAGS, more, true);
        dv.setUint16(off + TX_REQ_SIZE, n, true);
        ring.produceRequest();
      }
    }
    c.txPackets.value++;
    c.txBytes.value += len;
    if (ring.pushRequestsAndCheckNotify()) this.drv.notify(this.txIrq);
    return 0;
  }

  /** The event handler (xennet_interrupt, or the tx / rx one when split). */
  handleTx(): void {
    this.drv.counters.events.value++;
    this.txBufGc();
  }

  handleRx(): void {
    this.drv.counters.events.value++;
    this.poll();
  }

  /** @internal */
  markBroken(reason: string): void {
    if (this.broken) return;
    this.broken = true;
    this.brokenReason = reason;
  }

  /**
   * xennet_release_tx_bufs + xennet_release_rx_bufs: on disconnect every buffer's grant is
   * revoked (a grant the backend still holds stays, and the device is marked broken).
   */
  releaseBuffers(): void {
    const gnttab = this.drv.gnttab;
    for (let id = 0; id < NET_TX_RING_SIZE; id++) {
      const ref = this.txIdGref[id]!;
      if (ref < 0) continue;
      if (!gnttab.endForeignAccess(ref)) this.markBroken("Grant still in use by backend domain");
      this.txIdGref[id] = -1;
      this.txIdPage[id] = -1;
    }
    for (let i = 0; i < NET_RX_RING_SIZE; i++) this.releaseRx(i);
  }

  /** xennet_tx_buf_gc: take tx responses back, revoke the grants, free ids and pages. */
  txBufGc(): void {
    const ring = this.txRing;
    const dv = ring.sring.view;
    const gnttab = this.drv.gnttab;
    const c = this.drv.counters;
    do {
      if (this.broken) return;
      const prod = ring.sring.rspProd;
      if (ring.responseProdOverflow(prod)) {
        this.markBroken(`Illegal number of responses ${(prod - ring.rspCons) >>> 0}`);
        return;
      }
      while (ring.rspCons !== prod) {
        const off = ring.sring.slotOffset(ring.rspCons);
        ring.rspCons = (ring.rspCons + 1) >>> 0;
        const status = dv.getInt16(off + TX_RSP_STATUS, true);
        if (status === NETIF_RSP_NULL) continue;
        const id = dv.getUint16(off + TX_RSP_ID, true);
        const page = id < NET_TX_RING_SIZE ? this.txIdPage[id]! : -1;
        if (page < 0) {
          this.markBroken(`Response has incorrect id (${id})`);
          return;
        }
        if (!gnttab.endForeignAccess(this.txIdGref[id]!)) {
          this.markBroken("Grant still in use by backend domain");
          return;
        }
        if (status !== NETIF_RSP_OKAY) c.txErrors.value++;
        this.txIdGref[id] = -1;
        this.txIdPage[id] = -1;
        this.txFreePages[this.txFreeTop++] = page;
        this.txFreeIds[this.txFreeIdTop++] = id;
      }
    } while (ring.finalCheckForResponses() !== 0);
  }

  /** xennet_alloc_rx_buffers: grant free pages to the backend and post them. */
  allocRxBuffers(): void {
    if (this.broken) return;
    const ring = this.rxRing;
    const dv = ring.sring.view;
    const gnttab = this.drv.gnttab;
    let posted = 0;
    while (this.rxFreeTop > 0 && ring.freeRequests() > 0) {
      const idx = ring.sring.slot(ring.reqProdPvt);
      if (this.rxIdxPage[idx]! >= 0) break; // that slot's buffer is still out
      const page = this.rxFreePages[this.rxFreeTop - 1]!;
      const ref = gnttab.grantForeignAccess(this.backendId, this.rxPageMfn[page]!, false);
      if (ref < 0) break;
      this.rxFreeTop--;
      this.drv.counters.grants.value++;
      this.rxIdxPage[idx] = page;
      this.rxIdxGref[idx] = ref;
      const off = ring.nextRequestOffset();
      dv.setUint16(off + RX_REQ_ID, idx, true);
      dv.setUint16(off + 2, 0, true);
      dv.setUint32(off + RX_REQ_GREF, ref, true);
      ring.produceRequest();
      posted++;
    }
    if (posted > 0 && ring.pushRequestsAndCheckNotify()) this.drv.notify(this.rxIrq);
  }

  /** Give back the buffer posted at ring index `idx`: revoke its grant, free its page. */
  private releaseRx(idx: number): boolean {
    const slot = idx & (NET_RX_RING_SIZE - 1);
    const page = this.rxIdxPage[slot]!;
    if (page < 0) return true;
    if (!this.drv.gnttab.endForeignAccess(this.rxIdxGref[slot]!)) {
      this.markBroken("Grant still in use by backend domain");
      return false;
    }
    this.rxIdxPage[slot] = -1;
    this.rxIdxGref[slot] = -1;
    this.rxFreePages[this.rxFreeTop++] = page;
    return true;
  }

  /** xennet_poll: every complete rx chain is checked, copied out and handed to receivers. */
  poll(): void {
    const ring = this.rxRing;
    const dv = ring.sring.view;
    const c = this.drv.counters;
    const ram = this.drv.kernel.hv.machine.ram;
    do {
      if (this.broken) return;
      const rp = ring.sring.rspProd;
      if (ring.responseProdOverflow(rp)) {
        this.markBroken(`Illegal number of responses ${(rp - ring.rspCons) >>> 0}`);
        return;
      }
      while (ring.rspCons !== rp && !this.broken) {
        // xennet_get_responses over the chain starting at rsp_cons.
        let cons = ring.rspCons;
        let err = 0;
        let len = 0;
        const m = this.rxMeta;
        m.gsoSize = 0;
        m.gsoType = 0;
        let first = true;
        let slots = 0;
        for (;;) {
          if (cons === rp) {
            err = -1; // "Need more slots": the chain runs past what was produced
            break;
          }
          const off = ring.sring.slotOffset(cons);
          const flags = dv.getUint16(off + RX_RSP_FLAGS, true);
          const status = dv.getInt16(off + RX_RSP_STATUS, true);
          const offset = dv.getUint16(off + RX_RSP_OFFSET, true);
          const page = this.rxIdxPage[cons & (NET_RX_RING_SIZE - 1)]!;
          if (first) {
            m.csumBlank = (flags & NETRXF_csum_blank) !== 0;
            m.dataValidated = (flags & NETRXF_data_validated) !== 0;
          }
          if (page < 0 || status < 0 || offset + status > XEN_PAGE_SIZE) {
            err = -1; // "rx->offset: %u, size: %d" or a slot with no buffer
          } else if (err === 0 && len + status <= this.rxFrame.length) {
            const bytes = ram.frameBytes(this.rxPageMfn[page]!);
            this.rxFrame.set(bytes.subarray(offset, offset + status), len);
            len += status;
            c.copyBytes.value += status;
          } else err = -1;
          if (!this.releaseRx(cons)) return;
          cons = (cons + 1) >>> 0;
          slots++;
          if (first && (flags & NETRXF_extra_info) !== 0) {
            // xennet_get_extras: the slot(s) after the first hold netif_extra_info.
            let more = XEN_NETIF_EXTRA_FLAG_MORE;
            while (more !== 0) {
              if (cons === rp) {
                err = -1; // "Missing extra info"
                break;
              }
              const eo = ring.sring.slotOffset(cons);
              const type = dv.getUint8(eo + EXTRA_TYPE);
              more = dv.getUint8(eo + EXTRA_FLAGS) & XEN_NETIF_EXTRA_FLAG_MORE;
              if (type === 0 || type >= XEN_NETIF_EXTRA_TYPE_MAX)
                err = -1; // "Invalid extra type"
              else if (type === XEN_NETIF_EXTRA_TYPE_GSO) {
                m.gsoSize = dv.getUint16(eo + EXTRA_GSO_SIZE, true);
                m.gsoType = dv.getUint8(eo + EXTRA_GSO_TYPE);
              }
              if (!this.releaseRx(cons)) return;
              cons = (cons + 1) >>> 0;
              slots++;
            }
          }
          first = false;
          if ((flags & NETRXF_more_data) === 0) break;
          if (slots > XEN_NETBK_LEGACY_SLOTS_MAX) {
            err = -1; // "Too many slots": the rest of the chain is dropped with it
          }
        }
        ring.rspCons = cons;
        if (err !== 0 || len < ETH_HLEN) {
          c.rxErrors.value++;
          continue;
        }
        c.rxPackets.value++;
        c.rxBytes.value += len;
        const frame = this.rxFrame.subarray(0, len);
        for (const r of this.receivers) r(frame, m);
      }
      this.allocRxBuffers();
    } while (!this.broken && ring.finalCheckForResponses() !== 0);
  }
}
