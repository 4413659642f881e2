/*
 * The guest's virtio-net driver (Linux's drivers/net/virtio_net.c as reading guide, without
 * offloads or mergeable buffers): queue 0 receives into page-sized buffers the driver keeps
 * posted, queue 1 transmits a 12-byte virtio_net_hdr and the frame from a per-slot transmit
 * buffer. Transmit completions are reclaimed lazily on the next send and on the interrupt
 * (free_old_xmit_skbs); each received buffer is handed up and posted again at once.
 *
 * Invariants: every receive buffer is either posted on queue 0 or being handed up; a transmit
 * slot is in flight from `send` until its chain comes back; the length the device reports for
 * a received buffer is clamped to the buffer (a hostile device cannot make the driver read
 * past it) and a buffer shorter than the header is dropped and counted.
 */
import { EINVAL, EIO, ENOSPC } from "@hyperlab/abi";
import type { GuestKernel } from "@hyperlab/guest";
import {
  ETH_FRAME_LEN,
  VIRTIO_ID_NET,
  VIRTIO_NET_CFG_MAC,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_NET_RX_QUEUE,
  VIRTIO_NET_TX_QUEUE,
} from "@hyperlab/machine";
import { virtioError } from "./errors";
import { VirtioMmioDriver } from "./mmio";
import type { Virtqueue } from "./virtqueue";

const PAGE = 4096;
/** Largest frame this driver sends or takes (no GSO, no jumbo): an Ethernet frame. */
export const VIRTIO_NET_FRONT_MTU_FRAME = ETH_FRAME_LEN;

/** Counters of the driver. */
export interface VirtioNetFrontCounts {
  txPackets: number;
  rxPackets: number;
  rxErrors: number;
  /** Bytes the driver copied between its buffers and the caller (the skb copies). */
  copiedBytes: number;
}

export interface VirtioNetFrontOptions {
  /** Queue size to ask for (capped by the device); default 64. */
  queueSize?: number;
  /** Negotiate VIRTIO_F_EVENT_IDX; default true. */
  eventIdx?: boolean;
  /** Negotiate VIRTIO_F_INDIRECT_DESC (multi-buffer requests take one ring slot); default true. */
  indirect?: boolean;
  /** Receives each frame (valid during the call). */
  onReceive?: (frame: Uint8Array) => void;
}

function allocPages(k: GuestKernel, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const pfn = k.allocPage();
    if (pfn < 0) {
      for (const p of out) k.freePage(p);
      throw virtioError(
        "VIRTIO_NO_MEMORY",
        `No ${n} pages for virtio-net's buffers; boot the guest with more memory or use a smaller queue.`,
      );
    }
    out.push(pfn);
  }
  return out;
}

export class VirtioNetFront {
  readonly dev: VirtioMmioDriver;
  readonly rx: Virtqueue<number>;
  readonly tx: Virtqueue<number>;
  readonly mac = new Uint8Array(6);
  readonly counts: VirtioNetFrontCounts = {
    txPackets: 0,
    rxPackets: 0,
    rxErrors: 0,
    copiedBytes: 0,
  };
  onReceive: ((frame: Uint8Array) => void) | null;
  private readonly rxPfns: number[];
  private readonly txPfns: number[];
  private readonly freeTx: number[] = [];
  private readonly frame = new Uint8Array(PAGE);

  private constructor(
    readonly kernel: GuestKernel,
    dev: VirtioMmioDriver,
    options: VirtioNetFrontOptions,
  ) {
    this.dev = dev;
    this.onReceive = options.onReceive ?? null;
    const size = options.queueSize ?? 64;
    const rx = dev.setupVq(VIRTIO_NET_RX_QUEUE, size, () => this.receive());
    const tx = dev.setupVq(VIRTIO_NET_TX_QUEUE, size, () => this.reclaimTx());
    if (typeof rx === "number" || typeof tx === "number") {
      throw virtioError("VIRTIO_BAD_OPTION", "virtio-net has no receive and transmit queues");
    }
    this.rx = rx as Virtqueue<number>;
    this.tx = tx as Virtqueue<number>;
    this.rxPfns = allocPages(kernel, this.rx.num);
    this.txPfns = allocPages(kernel, this.tx.num);
    for (let i = this.tx.num - 1; i >= 0; i--) this.freeTx.push(i);
    for (let i = 0; i < 6; i++) this.mac[i] = dev.readConfig(VIRTIO_NET_CFG_MAC + i, 1);
  }

  /** virtnet_probe on the virtio-mmio window at `base`, GSI `gsi`: the driver with its receive buffers posted, or -errno. */
  static probe(
    k: GuestKernel,
    base: number,
    gsi: number,
    options: VirtioNetFrontOptions = {},
  ): VirtioNetFront | number {
    const dev = VirtioMmioDriver.probe(k, base, gsi);
    if (typeof dev === "number") return dev;
    if (dev.deviceId !== VIRTIO_ID_NET) return -19;
    const rc = dev.finalizeFeatures(
      [VIRTIO_NET_F_MAC],
      options.eventIdx ?? true,
      options.indirect ?? true,
    );
    if (rc < 0) return rc;
    const front = new VirtioNetFront(k, dev, options);
    for (let i = 0; i < front.rx.num; i++) front.postRx(i);
    const r = dev.ready();
    if (r < 0) return r;
    front.rx.kick();
    return front;
  }

  private postRx(i: number): void {
    this.rx.add([], [{ addr: this.rxPfns[i] * PAGE, len: PAGE }], i);
  }

  /** start_xmit: sends one frame (14 to 1514 bytes). 0, -EINVAL, -ENOSPC (no free slot), -EIO (broken). */
  send(frame: Uint8Array): number {
    if (
      !(frame instanceof Uint8Array) ||
      frame.length < 14 ||
      frame.length > VIRTIO_NET_FRONT_MTU_FRAME
    )
      return -EINVAL;
    if (this.dev.broken || this.tx.broken !== null) return -EIO;
    this.reclaimTx();
    const slot = this.freeTx.pop();
    if (slot === undefined) return -ENOSPC;
    const pa = this.txPfns[slot] * PAGE;
    const ram = this.kernel.ram;
    for (let i = 0; i < VIRTIO_NET_HDR_SIZE; i += 4) ram.write32(pa + i, 0);
    ram.writeBytes(pa + VIRTIO_NET_HDR_SIZE, frame);
    this.counts.copiedBytes += frame.length;
    const head = this.tx.add([{ addr: pa, len: VIRTIO_NET_HDR_SIZE + frame.length }], [], slot);
    if (head < 0) {
      this.freeTx.push(slot);
      return head;
    }
    this.counts.txPackets++;
    this.tx.kick();
    return 0;
  }

  /** free_old_xmit_skbs: takes back the transmit slots the device is done with. */
  private reclaimTx(): void {
    for (let b = this.tx.getBuf(); b !== null; b = this.tx.getBuf()) this.freeTx.push(b.token);
  }

  /** The receive callback (virtnet_poll): hands each frame up and posts its buffer again. */
  private receive(): void {
    const vq = this.rx;
    let posted = 0;
    for (;;) {
      for (let b = vq.getBuf(); b !== null; b = vq.getBuf()) {
        const i = b.token;
        if (b.len < VIRTIO_NET_HDR_SIZE + 14) {
          this.counts.rxErrors++;
        } else {
          const n = Math.min(b.len, PAGE) - VIRTIO_NET_HDR_SIZE;
          const f = this.frame.subarray(0, n);
          this.kernel.ram.readInto(this.rxPfns[i] * PAGE + VIRTIO_NET_HDR_SIZE, f);
          this.counts.copiedBytes += n;
          this.counts.rxPackets++;
          this.onReceive?.(f);
        }
        this.postRx(i);
        posted++;
      }
      if (vq.enableCb()) break;
    }
    if (posted > 0) vq.kick();
  }
}
