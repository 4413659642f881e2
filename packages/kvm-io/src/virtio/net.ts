/*
 * The virtio-net device (OASIS virtio v1.2 §5.1; QEMU's hw/net/virtio-net.c as reading guide)
 * on a NetPort: the same NetBridge, loopback or pcap tap the machine's NIC and Xen's netback
 * use. Queue 0 receives (the driver posts writable buffers), queue 1 transmits (each chain is
 * a 12-byte virtio_net_hdr followed by the frame). No offloads are offered, so the header is
 * all zeroes but num_buffers (1) on receive.
 *
 * Invariants: a transmit chain with a writable segment or shorter than its header breaks the
 * queue (QEMU: "virtio-net header not in first element"); a frame longer than 65535 bytes or
 * one with no room in the posted buffer is dropped and counted, touching no guest memory
 * beyond the buffer's own; a frame arriving while the device is not live is dropped.
 */
import {
  type NetEndpoint,
  type NetPort,
  VIRTIO_ID_NET,
  VIRTIO_NET_CFG_MAC,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_NET_RX_QUEUE,
  VIRTIO_NET_TX_QUEUE,
} from "@hyperlab/machine";
import type { VirtioBackend, VirtioMmio } from "./mmio";
import { VQ_BROKEN, VQ_EMPTY } from "./queue";

/** Largest frame the device carries (no GSO): 65535 bytes. */
export const VIRTIO_NET_MAX_FRAME = 65535;

export interface VirtioNetOptions {
  mac: Uint8Array | readonly number[];
  /** Where transmitted frames go; attachPort changes it. */
  port?: NetPort | null;
  /** Queue size offered; default 256. */
  queueSize?: number;
}

/** Counters of a virtio-net device. */
export interface VirtioNetCounts {
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  /** Frames dropped: no buffer posted, buffer too small, device not live, too long. */
  rxDropped: number;
  txDropped: number;
}

export class VirtioNet implements VirtioBackend, NetEndpoint {
  readonly name = "virtio-net";
  readonly deviceId = VIRTIO_ID_NET;
  readonly numQueues = 2;
  readonly queueNumMax: number;
  readonly featureBits = [VIRTIO_NET_F_MAC];
  readonly mac = new Uint8Array(6);
  readonly counts: VirtioNetCounts = {
    txPackets: 0,
    txBytes: 0,
    rxPackets: 0,
    rxBytes: 0,
    rxDropped: 0,
    txDropped: 0,
  };
  port: NetPort | null;
  private transport: VirtioMmio | null = null;
  private readonly buf = new Uint8Array(VIRTIO_NET_HDR_SIZE + VIRTIO_NET_MAX_FRAME);
  private readonly rxHdr = new Uint8Array(VIRTIO_NET_HDR_SIZE);

  constructor(options: VirtioNetOptions) {
    this.mac.set(options.mac);
    this.port = options.port ?? null;
    this.queueNumMax = options.queueSize ?? 256;
    this.rxHdr[10] = 1; // num_buffers = 1
  }

  /** Connects the device to a port (e.g. `bridge.connect(dev)`). */
  attachPort(port: NetPort | null): void {
    this.port = port;
  }

  attach(t: VirtioMmio): void {
    this.transport = t;
  }

  reset(): void {}

  readConfig(offset: number, width: number): number {
    let v = 0;
    for (let i = width - 1; i >= 0; i--) {
      const o = offset + i - VIRTIO_NET_CFG_MAC;
      v = v * 256 + (o >= 0 && o < 6 ? this.mac[o] : 0);
    }
    return v;
  }

  notify(q: number): void {
    // Received buffers are taken when frames arrive; a kick on the receive queue only says
    // buffers were posted.
    if (q === VIRTIO_NET_TX_QUEUE) this.flushTx();
  }

  private flushTx(): void {
    const t = this.transport;
    if (t === null) return;
    const vq = t.queues[VIRTIO_NET_TX_QUEUE];
    for (;;) {
      const head = vq.pop();
      if (head === VQ_EMPTY || head === VQ_BROKEN) break;
      if (vq.inBytes !== 0 || vq.outBytes < VIRTIO_NET_HDR_SIZE) {
        vq.error = "virtio-net transmit chain without its header, or with a writable segment";
        break;
      }
      const len = vq.outBytes - VIRTIO_NET_HDR_SIZE;
      if (len > VIRTIO_NET_MAX_FRAME) this.counts.txDropped++;
      else {
        const frame = this.buf.subarray(0, len);
        if (vq.readOut(VIRTIO_NET_HDR_SIZE, frame)) {
          this.counts.txPackets++;
          this.counts.txBytes += len;
          this.port?.transmit(frame);
        } else this.counts.txDropped++;
      }
      if (!vq.push(head, 0)) break;
    }
    t.notifyQueue(VIRTIO_NET_TX_QUEUE);
  }

  /** A frame from the port: into the next posted receive buffer, or dropped. */
  receive(frame: Uint8Array): void {
    const t = this.transport;
    if (t === null || !t.live || frame.length > VIRTIO_NET_MAX_FRAME) {
      this.counts.rxDropped++;
      return;
    }
    const vq = t.queues[VIRTIO_NET_RX_QUEUE];
    const head = vq.pop();
    if (head === VQ_EMPTY || head === VQ_BROKEN) {
      this.counts.rxDropped++;
      t.checkBroken(VIRTIO_NET_RX_QUEUE);
      return;
    }
    let written = 0;
    if (vq.outBytes !== 0) {
      vq.error = "virtio-net receive buffer with a device-readable segment";
    } else if (vq.inBytes < VIRTIO_NET_HDR_SIZE + frame.length) {
      this.counts.rxDropped++; // too small: given back empty
    } else if (vq.writeIn(0, this.rxHdr) && vq.writeIn(VIRTIO_NET_HDR_SIZE, frame)) {
      written = VIRTIO_NET_HDR_SIZE + frame.length;
      this.counts.rxPackets++;
      this.counts.rxBytes += frame.length;
    } else this.counts.rxDropped++;
    if (vq.error === null) vq.push(head, written);
    if (!t.checkBroken(VIRTIO_NET_RX_QUEUE)) t.notifyQueue(VIRTIO_NET_RX_QUEUE);
  }
}
