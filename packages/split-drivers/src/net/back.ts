/*
 * netback's xenbus side (Linux drivers/net/xen-netback/xenbus.c: netback_probe, connect,
 * connect_data_rings, read_xenbus_vif_flags, xen_net_read_mac) in dom0's kernel: it
 * advertises its features, and when a frontend is Initialised it reads the frontend's keys,
 * maps the tx and rx rings, binds the event channel(s) and plugs the vif into dom0's bridge.
 *
 * Invariant: every key the frontend wrote is parsed, never trusted: a missing or malformed
 * one is xenbus_dev_fatal (the device goes Closing) and nothing is left mapped or bound.
 * dom0's own pages (tx staging, each vif's rx staging) are the only local memory the copies
 * touch; a vif's rx staging lives from its first connect until release().
 */
import {
  __HYPERVISOR_memory_op,
  DOMID_SELF,
  EINVAL,
  ENOENT,
  EOPNOTSUPP,
  XENMEM_decrease_reservation,
} from "@hyperlab/abi";
import { Stats } from "@hyperlab/core";
import { BackRing, RING_ENTRY_BYTES, SharedRing } from "../ring";
import type { XenbusDevice, XenbusDriver, XenbusKernel } from "../xenbus/device";
import { xenbusMapRing, xenbusUnmapRing } from "../xenbus/gnttab";
import { parseXenbusUint } from "../xenbus/state";
import { netbackRxAction, netbackRxQueue } from "./back-rx";
import { netbackTxPoll } from "./back-tx";
import {
  NETBACK_TX_STAGE_PAGES,
  type NetbackCounters,
  type NetbackShared,
  NetbackVif,
} from "./back-vif";
import type { VifBridge } from "./bridge";
import { GnttabCopyBatch } from "./copy";
import { NetError, parseMac, XEN_PAGE_SIZE } from "./netif";

export interface NetbackOptions {
  /** dom0's bridge every vif joins. */
  bridge: VifBridge;
  /** Staging pages per vif for frames waiting for rx buffers: a power of two, 16..256 (32). */
  rxStagePages?: number;
  /** Advertise feature-split-event-channels (default true), as netback's module parameter. */
  splitEventChannels?: boolean;
}

/** Linux's xen-netback in dom0's kernel: a xenbus backend driver of type `vif`. */
export class NetbackDriver implements XenbusDriver, NetbackShared {
  readonly type = "vif";
  readonly kernel: XenbusKernel;
  readonly bridge: VifBridge;
  /** `netback` group: packets, bytes, hypercalls, grant copies, notifications, copies. */
  readonly stats = new Stats();
  /** @internal */ readonly counters: NetbackCounters;
  /** @internal */ readonly copy: GnttabCopyBatch;
  /** @internal */ readonly rxCopy: GnttabCopyBatch;
  /** @internal */ readonly txStageMfn: number;
  /** @internal */ readonly txStage: Uint8Array;
  private readonly rxStagePages: number;
  private readonly split: boolean;
  private readonly vifs = new Map<string, NetbackVif>();
  /** Staging runs of released vifs that Xen would not take back (reused by the next vif). */
  private readonly freeStage: number[] = [];

  /** Throws NetError when an option is wrong or dom0 has no room for the staging pages. */
  constructor(kernel: XenbusKernel, options: NetbackOptions) {
    this.kernel = kernel;
    this.bridge = options?.bridge;
    if (this.bridge === undefined || typeof this.bridge?.connect !== "function") {
      throw new NetError("NET_BAD_OPTION", "NetbackDriver needs { bridge: new VifBridge() }");
    }
    const pages = options.rxStagePages ?? 32;
    if (!Number.isInteger(pages) || pages < 16 || pages > 256 || (pages & (pages - 1)) !== 0) {
      throw new NetError(
        "NET_BAD_OPTION",
        `rxStagePages must be a power of two from 16 to 256, got ${pages}; e.g. 32 (128 KiB per vif)`,
      );
    }
    this.rxStagePages = pages;
    this.split = options.splitEventChannels ?? true;
    // Two ops per slot at most (a slot may cross a staging page), a ring's worth of slots.
    this.copy = new GnttabCopyBatch(kernel.hv, kernel.domain, 2 * 256);
    this.rxCopy = new GnttabCopyBatch(kernel.hv, kernel.domain, 64);
    this.txStageMfn = this.allocStage(NETBACK_TX_STAGE_PAGES);
    this.txStage = this.contiguous(this.txStageMfn, NETBACK_TX_STAGE_PAGES);
    const g = this.stats.group("netback");
    const copy = this.copy;
    const rxCopy = this.rxCopy;
    this.counters = {
      txPackets: g.counter(
        "tx_packets",
        "packets",
        "frames taken from frontends' tx rings to the bridge",
      ),
      txBytes: g.counter("tx_bytes", "bytes", "bytes of those frames"),
      txErrors: g.counter(
        "tx_errors",
        "packets",
        "tx packets answered NETIF_RSP_ERROR (bad size, failed copy, too many slots)",
      ),
      rxPackets: g.counter("rx_packets", "packets", "frames copied into frontends' rx buffers"),
      rxBytes: g.counter("rx_bytes", "bytes", "bytes of those frames"),
      rxDropped: g.counter(
        "rx_dropped",
        "packets",
        "frames from the bridge dropped (vif down, no staging room, no feature-sg)",
      ),
      rxErrors: g.counter("rx_errors", "slots", "rx slots whose grant copy the hypervisor refused"),
      fatalErrors: g.counter("fatal_errors", "vifs", "vifs disabled by xenvif_fatal_tx_err"),
      notifications: g.counter("notifications", "notifications", "EVTCHNOP_send to frontends"),
      events: g.counter("events", "events", "event channel upcalls from frontends handled"),
      localCopyBytes: g.counter(
        "local_copy_bytes",
        "bytes",
        "bytes copied by dom0's CPU (bridge frame into rx staging)",
      ),
    };
    g.gauge(
      "hypercalls",
      "hypercalls",
      "GNTTABOP_copy and EVTCHNOP_send hypercalls made",
      () => copy.hypercalls + rxCopy.hypercalls + this.counters.notifications.value,
    );
    g.gauge(
      "grant_copies",
      "copies",
      "GNTTABOP_copy operations issued",
      () => copy.ops + rxCopy.ops,
    );
    g.gauge(
      "grant_copy_bytes",
      "bytes",
      "bytes named by GNTTABOP_copy operations",
      () => copy.bytes + rxCopy.bytes,
    );
  }

  /** The vif of frontend `domid`'s device `devid`, once it was connected. */
  vif(domid: number, devid = 0): NetbackVif | undefined {
    return this.vifs.get(`${domid}/${devid}`);
  }

  /** netback_probe: the features this backend offers. 0 or -errno. */
  async probe(dev: XenbusDevice): Promise<number> {
    const keys: [string, string][] = [
      ["feature-sg", "1"],
      ["feature-gso-tcpv4", "1"],
      ["feature-rx-copy", "1"],
      ["feature-rx-flip", "0"],
      ["feature-split-event-channels", this.split ? "1" : "0"],
      // What the vif-bridge hotplug script writes once the vif is on the bridge; libxl waits
      // for it. Here the vif takes its bridge port when the frontend connects.
      ["hotplug-status", "connected"],
    ];
    for (const [k, v] of keys) {
      const rc = await dev.write(k, v);
      if (rc < 0) return rc;
    }
    return 0;
  }

  /** connect: read the frontend's keys, map, bind, join the bridge. 0 or -errno. */
  async connect(dev: XenbusDevice): Promise<number> {
    const fail = async (err: number, msg: string) => {
      await dev.fatal(err, msg);
      return err;
    };
    const handle = parseXenbusUint(await dev.read("handle"));
    if (handle < 0) return fail(-ENOENT, `reading ${dev.nodename}/handle`);
    const mac = await dev.read("mac");
    if (parseMac(mac) === null) return fail(-ENOENT, `parsing ${dev.nodename}/mac`);
    const q = await dev.readOtherend("multi-queue-num-queues");
    if (q !== null && parseXenbusUint(q) !== 1) {
      return fail(-EINVAL, `guest requested ${q} queues, exceeding the maximum of 1.`);
    }
    const rxCopy = await dev.readOtherend("request-rx-copy");
    if (rxCopy !== null && parseXenbusUint(rxCopy) < 0) {
      return fail(-EINVAL, `reading ${dev.otherend}/request-rx-copy`);
    }
    if (parseXenbusUint(rxCopy) <= 0) return fail(-EOPNOTSUPP, "read_xenbus_vif_flags");
    if (parseXenbusUint(await dev.readOtherend("feature-rx-notify")) <= 0) {
      return fail(-EINVAL, "feature-rx-notify is mandatory");
    }
    const flag = async (k: string) => parseXenbusUint(await dev.readOtherend(k)) > 0;
    const txRef = parseXenbusUint(await dev.readOtherend("tx-ring-ref"));
    const rxRef = parseXenbusUint(await dev.readOtherend("rx-ring-ref"));
    if (txRef < 0 || rxRef < 0) {
      return fail(-EINVAL, `reading ${dev.otherend}/ring-ref`);
    }
    let txPort = parseXenbusUint(await dev.readOtherend("event-channel-tx"));
    let rxPort = -1;
    if (txPort < 0) {
      txPort = parseXenbusUint(await dev.readOtherend("event-channel"));
      if (txPort < 0) return fail(-EINVAL, `reading ${dev.otherend}/event-channel(-tx/rx)`);
    } else {
      rxPort = parseXenbusUint(await dev.readOtherend("event-channel-rx"));
      if (rxPort < 0 || !this.split) {
        return fail(-EINVAL, `reading ${dev.otherend}/event-channel(-tx/rx)`);
      }
    }
    const vif = this.vifFor(dev.otherendId, dev.devid);
    if (typeof vif === "number") return fail(vif, "allocating the vif's staging pages");
    const { hv, domain } = this.kernel;
    vif.reset();
    vif.mac = mac!;
    vif.frontSg = await flag("feature-sg");
    vif.frontGso = await flag("feature-gso-tcpv4");
    const txMap = xenbusMapRing(hv, domain, dev.otherendId, txRef);
    if (typeof txMap === "number") return fail(txMap, `mapping tx-ring-ref ${txRef}`);
    const rxMap = xenbusMapRing(hv, domain, dev.otherendId, rxRef);
    if (typeof rxMap === "number") {
      xenbusUnmapRing(hv, domain, txMap);
      return fail(rxMap, `mapping rx-ring-ref ${rxRef}`);
    }
    const ram = hv.machine.ram;
    const ev = this.kernel.evtchn;
    const onTx = () => this.txInterrupt(vif);
    const onRx = () => this.rxInterrupt(vif);
    const txIrq = ev.bindInterdomainEvtchnToIrqHandler(
      dev.otherendId,
      txPort,
      rxPort < 0
        ? () => {
            onTx();
            netbackRxAction(vif);
          }
        : onTx,
    );
    const rxIrq =
      rxPort < 0 ? txIrq : ev.bindInterdomainEvtchnToIrqHandler(dev.otherendId, rxPort, onRx);
    if (txIrq < 0 || rxIrq < 0) {
      if (txIrq >= 0) ev.unbindFromIrqHandler(txIrq);
      xenbusUnmapRing(hv, domain, txMap);
      xenbusUnmapRing(hv, domain, rxMap);
      return fail(
        txIrq < 0 ? txIrq : rxIrq,
        `binding event channel ${txIrq < 0 ? txPort : rxPort}`,
      );
    }
    vif.txMap = txMap;
    vif.rxMap = rxMap;
    vif.txIrq = txIrq;
    vif.rxIrq = rxIrq;
    vif.txRing = new BackRing(new SharedRing(ram.frameBytes(txMap.mfn), RING_ENTRY_BYTES.netif_tx));
    vif.rxRing = new BackRing(new SharedRing(ram.frameBytes(rxMap.mfn), RING_ENTRY_BYTES.netif_rx));
    // Requests queued before we connected are looked at now.
    this.kernel.kick();
    this.txInterrupt(vif);
    netbackRxAction(vif);
    return 0;
  }

  /** xenvif_disconnect: unbind, unmap; the vif keeps its bridge port and drops frames. */
  disconnect(dev: XenbusDevice): void {
    const vif = this.vifs.get(`${dev.otherendId}/${dev.devid}`);
    if (vif !== undefined) this.unbind(vif);
  }

  private unbind(vif: NetbackVif): void {
    if (vif.txMap === null) return;
    const { hv, domain, evtchn } = this.kernel;
    if (vif.rxIrq !== vif.txIrq && vif.rxIrq >= 0) evtchn.unbindFromIrqHandler(vif.rxIrq);
    if (vif.txIrq >= 0) evtchn.unbindFromIrqHandler(vif.txIrq);
    xenbusUnmapRing(hv, domain, vif.txMap);
    if (vif.rxMap !== null) xenbusUnmapRing(hv, domain, vif.rxMap);
    vif.reset();
  }

  /**
   * xenvif_free: the device is gone (its backend directory removed). Disconnects it if it is
   * still connected, takes its port off the bridge and gives its staging pages back to Xen
   * (XENMEM_decrease_reservation from dom0's vCPU; this model's dom0 takes its driver pages
   * from Xen directly, where Linux would keep them in its own allocator). If Xen refuses, the
   * run is kept for the next vif.
   */
  release(domid: number, devid: number): void {
    const key = `${domid}/${devid}`;
    const vif = this.vifs.get(key);
    if (vif === undefined) return;
    this.unbind(vif);
    vif.port?.close();
    this.vifs.delete(key);
    const { hv, domain } = this.kernel;
    const done = hv.hypercall(domain.vcpus[0]!, __HYPERVISOR_memory_op, {
      cmd: XENMEM_decrease_reservation,
      extent_start: [vif.rxStageMfn],
      nr_extents: 1,
      extent_order: Math.log2(this.rxStagePages),
      domid: DOMID_SELF,
    });
    if (done !== 1) this.freeStage.push(vif.rxStageMfn);
  }

  /** The tx interrupt (xenvif_tx_interrupt + NAPI poll): poll until the final check is empty. */
  private txInterrupt(vif: NetbackVif): void {
    this.counters.events.value++;
    for (;;) {
      netbackTxPoll(vif);
      const ring = vif.txRing;
      if (ring === null || vif.disabled || ring.finalCheckForRequests() === 0) return;
    }
  }

  /** The rx interrupt: the frontend posted buffers. */
  private rxInterrupt(vif: NetbackVif): void {
    this.counters.events.value++;
    netbackRxAction(vif);
  }

  /** @internal notify_remote_via_irq, counted. */
  notify(irq: number): void {
    if (irq < 0) return;
    this.counters.notifications.value++;
    this.kernel.evtchn.notifyRemoteViaIrq(irq);
    this.kernel.kick();
  }

  private vifFor(domid: number, devid: number): NetbackVif | number {
    const key = `${domid}/${devid}`;
    let vif = this.vifs.get(key);
    if (vif === undefined) {
      const mfn =
        this.freeStage.pop() ??
        this.kernel.hv.allocDomainPages(this.kernel.domain, Math.log2(this.rxStagePages));
      if (mfn < 0) return -12; // -ENOMEM
      vif = new NetbackVif(this, domid, devid, mfn, this.rxStagePages);
      const v = vif;
      v.port = this.bridge.connect({ receive: (f) => netbackRxQueue(v, f, this.bridge.meta) });
      this.vifs.set(key, vif);
    }
    return vif;
  }

  private allocStage(pages: number): number {
    const mfn = this.kernel.hv.allocDomainPages(this.kernel.domain, Math.log2(pages));
    if (mfn < 0) {
      throw new NetError(
        "NET_BAD_OPTION",
        `domain ${this.kernel.domain.domid} has no room for ${pages} staging pages; raise its maxPages`,
      );
    }
    return mfn;
  }

  /** @internal One view over `pages` frames from `mfn` (an aligned block from allocDomainPages). */
  contiguous(mfn: number, pages: number): Uint8Array {
    const ram = this.kernel.hv.machine.ram;
    const first = ram.frameBytes(mfn);
    const last = ram.frameBytes(mfn + pages - 1);
    if (
      first.buffer !== last.buffer ||
      last.byteOffset !== first.byteOffset + (pages - 1) * XEN_PAGE_SIZE
    ) {
      throw new NetError(
        "NET_BAD_OPTION",
        `frames ${mfn}..${mfn + pages - 1} are not one run of RAM`,
      );
    }
    return new Uint8Array(first.buffer, first.byteOffset, pages * XEN_PAGE_SIZE);
  }
}
