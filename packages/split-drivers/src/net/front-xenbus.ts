/*
 * netfront's xenbus side (Linux drivers/net/xen-netfront.c: netfront_probe, talk_to_netback,
 * setup_netfront, xennet_connect, xennet_disconnect_backend): the rings, the rx and tx pages,
 * the event channel(s) and the keys netback reads.
 *
 * Invariant: every key is written inside the caller's transaction, after the transport it
 * names exists; the pages of a devid are allocated once and reused by each reconnect; a
 * backend key is parsed, never trusted (missing or garbage is "not offered").
 */
import { ENODEV, ENOENT, ENOMEM, ENOSPC, ENOTCONN } from "@hyperlab/abi";
import { Stats } from "@hyperlab/core";
import type { XsOps } from "@hyperlab/xenstore";
import type { XenbusDevice, XenbusDriver, XenbusKernel } from "../xenbus/device";
import type { GnttabGuest } from "../xenbus/gnttab";
import { parseXenbusUint } from "../xenbus/state";
import {
  type NetfrontCounters,
  NetfrontDevice,
  type NetfrontHost,
  type NetfrontOptions,
} from "./front";
import { NetError, parseMac } from "./netif";

/** netfront: a xenbus frontend driver of type `vif` in a domU's kernel. */
export class NetfrontDriver implements XenbusDriver, NetfrontHost {
  readonly type = "vif";
  readonly kernel: XenbusKernel;
  /** @internal */ readonly gnttab: GnttabGuest;
  /** `netfront` group: packets, bytes, notifications, grants, copies. */
  readonly stats = new Stats();
  /** @internal */ readonly counters: NetfrontCounters;
  /** The vifs by devid. */
  readonly devices = new Map<number, NetfrontDevice>();
  private readonly txPages: number;
  private readonly rxBuffers: number;
  private readonly split: boolean;
  private readonly gso: boolean;
  private readonly allocFrame: () => number;
  private readonly frames = new Map<
    number,
    { tx: number; rx: number; txPages: number[]; rxPages: number[] }
  >();
  private readonly ringRefs = new Map<number, number[]>();
  private readonly listeners: ((dev: NetfrontDevice) => void)[] = [];

  /** Throws NetError when an option is out of range. */
  constructor(kernel: XenbusKernel, gnttab: GnttabGuest, options: NetfrontOptions = {}) {
    this.kernel = kernel;
    this.gnttab = gnttab;
    const check = (name: string, v: number) => {
      if (!Number.isInteger(v) || v < 1 || v > 256) {
        throw new NetError(
          "NET_BAD_OPTION",
          `${name} must be a whole number from 1 to 256, got ${v}`,
        );
      }
      return v;
    };
    this.txPages = check("txPages", options.txPages ?? 32);
    this.rxBuffers = check("rxBuffers", options.rxBuffers ?? 64);
    this.split = options.splitEventChannels ?? true;
    this.gso = options.gso ?? true;
    this.allocFrame = options.allocFrame ?? (() => kernel.hv.allocDomainPages(kernel.domain));
    const g = this.stats.group("netfront");
    this.counters = {
      txPackets: g.counter("tx_packets", "packets", "frames put on the tx ring"),
      txBytes: g.counter("tx_bytes", "bytes", "bytes of those frames"),
      txErrors: g.counter("tx_errors", "packets", "tx responses other than NETIF_RSP_OKAY"),
      rxPackets: g.counter("rx_packets", "packets", "frames received whole"),
      rxBytes: g.counter("rx_bytes", "bytes", "bytes of those frames"),
      rxErrors: g.counter(
        "rx_errors",
        "packets",
        "rx chains dropped (bad offset/size, error status, broken chain)",
      ),
      notifications: g.counter(
        "notifications",
        "notifications",
        "EVTCHNOP_send to the backend (one hypercall each)",
      ),
      events: g.counter("events", "events", "event channel upcalls handled"),
      grants: g.counter("grants", "grant entries", "grant entries written for tx and rx buffers"),
      copyBytes: g.counter(
        "copy_bytes",
        "bytes",
        "bytes copied by the guest CPU (frame into tx pages, rx pages into the frame)",
      ),
    };
  }

  /** Called each time a vif connects (its device object is new after each reconnect). */
  onConnect(fn: (dev: NetfrontDevice) => void): void {
    this.listeners.push(fn);
  }

  probe(): number {
    return 0;
  }

  /** talk_to_netback: rings, buffers, event channel(s), keys in `tx`. 0 or -errno. */
  async initialise(dev: XenbusDevice, tx: XsOps): Promise<number> {
    const mac = parseMac(await dev.read("mac"));
    if (mac === null) {
      await dev.error(-ENOENT, `parsing ${dev.nodename}/mac`);
      return -ENOENT;
    }
    if (parseXenbusUint(await dev.readOtherend("feature-rx-copy")) <= 0) {
      await dev.error(-ENODEV, "backend does not support copying receive path");
      return -ENODEV;
    }
    const split =
      this.split && parseXenbusUint(await dev.readOtherend("feature-split-event-channels")) > 0;
    const f = this.framesFor(dev.devid);
    if (f === null) return -ENOMEM;
    const ram = this.kernel.hv.machine.ram;
    ram.clearFrame(f.tx);
    ram.clearFrame(f.rx);
    const d = new NetfrontDevice(
      this,
      dev.devid,
      dev.otherendId,
      mac,
      f.tx,
      f.rx,
      f.txPages,
      f.rxPages,
    );
    // From here a failure undoes what was set up (xennet_disconnect_backend).
    this.devices.set(dev.devid, d);
    const fail = (err: number) => {
      this.disconnect(dev);
      return err;
    };
    const refs: number[] = [];
    const txRef = this.gnttab.grantForeignAccess(dev.otherendId, f.tx);
    if (txRef >= 0) refs.push(txRef);
    const rxRef = this.gnttab.grantForeignAccess(dev.otherendId, f.rx);
    if (rxRef >= 0) refs.push(rxRef);
    this.ringRefs.set(dev.devid, refs);
    if (txRef < 0 || rxRef < 0) return fail(-ENOSPC);
    const ev = this.kernel.evtchn;
    if (split) {
      const txIrq = ev.bindListeningPortToIrqHandler(dev.otherendId, () => d.handleTx());
      if (txIrq < 0) return fail(txIrq);
      d.txIrq = txIrq;
      const rxIrq = ev.bindListeningPortToIrqHandler(dev.otherendId, () => d.handleRx());
      if (rxIrq < 0) return fail(rxIrq);
      d.rxIrq = rxIrq;
    } else {
      const irq = ev.bindListeningPortToIrqHandler(dev.otherendId, () => {
        d.handleTx();
        d.poll();
      });
      if (irq < 0) return fail(irq);
      d.txIrq = d.rxIrq = irq;
    }
    const n = dev.nodename;
    await tx.write(`${n}/tx-ring-ref`, String(txRef));
    await tx.write(`${n}/rx-ring-ref`, String(rxRef));
    if (split) {
      await tx.write(`${n}/event-channel-tx`, String(ev.evtchnFromIrq(d.txIrq)));
      await tx.write(`${n}/event-channel-rx`, String(ev.evtchnFromIrq(d.rxIrq)));
    } else {
      await tx.write(`${n}/event-channel`, String(ev.evtchnFromIrq(d.txIrq)));
    }
    await tx.write(`${n}/request-rx-copy`, "1");
    await tx.write(`${n}/feature-rx-notify`, "1");
    await tx.write(`${n}/feature-sg`, "1");
    await tx.write(`${n}/feature-gso-tcpv4`, this.gso ? "1" : "0");
    // xennet_connect posts the rx buffers before the backend looks.
    d.allocRxBuffers();
    return 0;
  }

  /** The backend is Connected: kick it (xennet_connect) and start. */
  connect(dev: XenbusDevice): number {
    const d = this.devices.get(dev.devid);
    if (d === undefined) return -ENOTCONN;
    d.connected = true;
    this.notify(d.txIrq);
    if (d.rxIrq !== d.txIrq) this.notify(d.rxIrq);
    for (const l of this.listeners) l(d);
    return 0;
  }

  /** xennet_disconnect_backend: unbind, revoke the ring grants; buffers stay ours. */
  disconnect(dev: XenbusDevice): void {
    const d = this.devices.get(dev.devid);
    if (d !== undefined) {
      d.connected = false;
      const ev = this.kernel.evtchn;
      if (d.rxIrq >= 0 && d.rxIrq !== d.txIrq) ev.unbindFromIrqHandler(d.rxIrq);
      if (d.txIrq >= 0) ev.unbindFromIrqHandler(d.txIrq);
      d.txIrq = d.rxIrq = -1;
      d.releaseBuffers();
      this.devices.delete(dev.devid);
    }
    const refs = this.ringRefs.get(dev.devid) ?? [];
    this.ringRefs.set(
      dev.devid,
      refs.filter((r) => !this.gnttab.endForeignAccess(r)),
    );
  }

  /** @internal notify_remote_via_irq, counted. */
  notify(irq: number): void {
    if (irq < 0) return;
    this.counters.notifications.value++;
    this.kernel.evtchn.notifyRemoteViaIrq(irq);
    this.kernel.kick();
  }

  private framesFor(devid: number) {
    let f = this.frames.get(devid);
    if (f !== undefined) return f;
    const take = () => {
      const mfn = this.allocFrame();
      return Number.isSafeInteger(mfn) && mfn > 0 ? mfn : -1;
    };
    const all: number[] = [];
    for (let i = 0; i < 2 + this.txPages + this.rxBuffers; i++) {
      const m = take();
      if (m < 0) return null;
      all.push(m);
    }
    f = {
      tx: all[0]!,
      rx: all[1]!,
      txPages: all.slice(2, 2 + this.txPages),
      rxPages: all.slice(2 + this.txPages),
    };
    this.frames.set(devid, f);
    return f;
  }
}
