/*
 * One vif as netback keeps it (Linux drivers/net/xen-netback/common.h struct xenvif and
 * struct xenvif_queue, one queue): the mapped tx and rx rings, the bound event channel(s),
 * the port on dom0's bridge, the rx staging pages and queue, and the per-packet scratch.
 *
 * Invariant: a vif reaches the frontend's memory only through its two mapped ring pages and
 * grant copies; once `disabled` (xenvif_fatal_tx_err) it consumes no request and sends no
 * frame until it is connected afresh. A vif keeps its bridge port for (domid, devid) for the
 * driver's life, so a reconnect keeps its place in the bridge's forwarding table.
 */

import { XEN_NETIF_EXTRA_TYPE_MAX } from "@hyperlab/abi";
import type { Counter } from "@hyperlab/core";
import type { BackRing } from "../ring";
import type { MappedRing } from "../xenbus/gnttab";
import type { VifBridgePort } from "./bridge";
import type { GnttabCopyBatch } from "./copy";
import {
  FATAL_SKB_SLOTS_DEFAULT,
  NET_RX_RING_SIZE,
  NET_TX_RING_SIZE,
  netMeta,
  XEN_PAGE_SIZE,
} from "./netif";

/** The counters netback keeps (units in the stats), per driver. */
export interface NetbackCounters {
  txPackets: Counter;
  txBytes: Counter;
  txErrors: Counter;
  rxPackets: Counter;
  rxBytes: Counter;
  rxDropped: Counter;
  rxErrors: Counter;
  fatalErrors: Counter;
  notifications: Counter;
  events: Counter;
  localCopyBytes: Counter;
}

/** What the vifs of one netback share: its counters, copy batch, tx staging and kicks. */
export interface NetbackShared {
  readonly counters: NetbackCounters;
  /** The tx copies of a poll (flushed at its end, or when staging or the batch is full). */
  readonly copy: GnttabCopyBatch;
  /** The rx copies of one rx action (flushed at its end, or when full). */
  readonly rxCopy: GnttabCopyBatch;
  readonly txStageMfn: number;
  readonly txStage: Uint8Array;
  notify(irq: number): void;
  contiguous(mfn: number, pages: number): Uint8Array;
}

export class NetbackVif {
  readonly back: NetbackShared;
  readonly domid: number;
  readonly devid: number;
  /** The MAC libxl gave the vif (backend `mac`), "" if none. */
  mac = "";
  /** xenvif_fatal_tx_err happened: the vif is off until it reconnects. */
  disabled = false;
  /** Why it was disabled (netback's netdev_err text), "" while healthy. */
  fatalReason = "";
  /** Frontend features read at connect. */
  frontSg = false;
  frontGso = false;
  /** @internal */ txRing: BackRing | null = null;
  /** @internal */ rxRing: BackRing | null = null;
  /** @internal */ txMap: MappedRing | null = null;
  /** @internal */ rxMap: MappedRing | null = null;
  /** @internal */ txIrq = -1;
  /** @internal */ rxIrq = -1;
  /** @internal */ port: VifBridgePort | null = null;
  // tx scratch: the request copied out of the ring, and the slots of the packet in hand.
  /** @internal */ readonly txBytes = new Uint8Array(12);
  /** @internal */ readonly txScratch = new DataView(this.txBytes.buffer);
  /** @internal */ readonly slotGref = new Uint32Array(FATAL_SKB_SLOTS_DEFAULT + 1);
  /** @internal */ readonly slotOffset = new Uint16Array(FATAL_SKB_SLOTS_DEFAULT + 1);
  /** @internal */ readonly slotId = new Uint16Array(FATAL_SKB_SLOTS_DEFAULT + 1);
  /** @internal */ readonly slotSize = new Uint16Array(FATAL_SKB_SLOTS_DEFAULT + 1);
  // tx batch: the packets of one poll whose copies go in one GNTTABOP_copy, and their slots
  // (at most a ring's worth: each consumed request stays unanswered until the flush).
  /** @internal */ readonly pendId = new Uint16Array(NET_TX_RING_SIZE);
  /** @internal */ readonly pendExtra = new Uint8Array(NET_TX_RING_SIZE);
  /** @internal */ readonly pendOpFirst = new Int32Array(NET_TX_RING_SIZE);
  /** @internal */ readonly pendOpEnd = new Int32Array(NET_TX_RING_SIZE);
  /** @internal */ pendSlots = 0;
  /** @internal */ readonly pktFirstSlot = new Int32Array(NET_TX_RING_SIZE);
  /** @internal */ readonly pktSlots = new Int32Array(NET_TX_RING_SIZE);
  /** @internal */ readonly pktPos = new Int32Array(NET_TX_RING_SIZE);
  /** @internal */ readonly pktLen = new Int32Array(NET_TX_RING_SIZE);
  /** @internal */ readonly pktGsoSize = new Uint16Array(NET_TX_RING_SIZE);
  /** @internal */ readonly pktGsoType = new Uint8Array(NET_TX_RING_SIZE);
  /** @internal */ readonly pktFlags = new Uint16Array(NET_TX_RING_SIZE);
  /** @internal */ readonly pktOk = new Uint8Array(NET_TX_RING_SIZE);
  /** @internal */ pendPkts = 0;
  /** @internal */ stagePos = 0;
  /** @internal */ readonly extraSeen = new Uint8Array(XEN_NETIF_EXTRA_TYPE_MAX);
  /** @internal */ extraCount = 0;
  /** @internal */ gsoSize = 0;
  /** @internal */ gsoType = 0;
  /** @internal */ readonly txMeta = netMeta();
  // rx: staging pages in dom0 (a ring of whole pages) and the queue of frames in them.
  /** @internal */ readonly rxStageMfn: number;
  /** @internal */ readonly rxStagePages: number;
  /** @internal */ readonly rxStage: Uint8Array;
  /** @internal */ stageProd = 0;
  /** @internal */ stageCons = 0;
  /** @internal */ readonly qLen: Int32Array;
  /** @internal */ readonly qStart: Int32Array;
  /** @internal */ readonly qEnd: Float64Array;
  /** @internal */ readonly qGsoSize: Uint16Array;
  /** @internal */ readonly qGsoType: Uint8Array;
  /** @internal */ readonly qFlags: Uint8Array;
  /** @internal */ qHead = 0;
  /** @internal */ queued = 0;
  /** @internal */ readonly rxBytes = new Uint8Array(8);
  /** @internal */ readonly rxScratch = new DataView(this.rxBytes.buffer);
  /** @internal */ readonly rxOpRsp = new Uint32Array(NET_RX_RING_SIZE);

  /** @internal */
  constructor(
    back: NetbackShared,
    domid: number,
    devid: number,
    stageMfn: number,
    stagePages: number,
  ) {
    this.back = back;
    this.domid = domid;
    this.devid = devid;
    this.rxStageMfn = stageMfn;
    this.rxStagePages = stagePages;
    this.rxStage = back.contiguous(stageMfn, stagePages);
    this.qLen = new Int32Array(stagePages);
    this.qStart = new Int32Array(stagePages);
    this.qEnd = new Float64Array(stagePages);
    this.qGsoSize = new Uint16Array(stagePages);
    this.qGsoType = new Uint8Array(stagePages);
    this.qFlags = new Uint8Array(stagePages);
  }

  /** True while both rings are mapped and the vif is not disabled. */
  get connected(): boolean {
    return this.txRing !== null && !this.disabled;
  }

  /** Frames waiting in dom0 for rx buffers. */
  get rxQueued(): number {
    return this.queued;
  }

  /** xenvif_fatal_tx_err: report, switch the vif off (carrier off); no responses follow. */
  fatalTxErr(reason: string): void {
    this.disabled = true;
    this.fatalReason = reason;
    this.back.counters.fatalErrors.value++;
    this.queued = 0;
    this.qHead = 0;
    this.stageCons = this.stageProd;
  }

  /** @internal Kick the frontend for tx responses. */
  notifyTx(): void {
    this.back.notify(this.txIrq);
  }

  /** @internal Kick the frontend for rx responses. */
  notifyRx(): void {
    this.back.notify(this.rxIrq);
  }

  /** @internal Forget the rings and the queue (the staging pages stay the vif's). */
  reset(): void {
    this.txRing = this.rxRing = null;
    this.txMap = this.rxMap = null;
    this.txIrq = this.rxIrq = -1;
    this.disabled = false;
    this.fatalReason = "";
    this.queued = 0;
    this.qHead = 0;
    this.stageCons = this.stageProd;
  }
}

/** Pages of a tx staging area: a 64 KiB frame, whole. */
export const NETBACK_TX_STAGE_PAGES = Math.ceil(0x10000 / XEN_PAGE_SIZE);
