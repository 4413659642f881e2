/*
 * The guest's virtio-blk driver (Linux's drivers/block/virtio_blk.c as reading guide): one
 * request queue; each request is a chain of its 16-byte header (device-readable), the data
 * buffers, and a status byte (device-writable). Headers and status bytes live in per-request
 * slots of one coherent page set, so a request allocates nothing.
 *
 * Invariants: a request slot is in flight from `submit` until its chain comes back through the
 * used ring, and is then free again; a completion is reported once, with the device's status
 * byte (VIRTIO_BLK_S_*); a device that breaks the queue or answers with a head it does not
 * hold completes nothing more (the queue is broken) and never makes the driver throw.
 */
import { EINVAL, EIO, ENOSPC } from "@hyperlab/abi";
import type { GuestKernel } from "@hyperlab/guest";
import {
  VIRTIO_BLK_CFG_CAPACITY,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_OUTHDR_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_T_IN,
  VIRTIO_ID_BLOCK,
} from "@hyperlab/machine";
import { virtioError } from "./errors";
import { VirtioMmioDriver } from "./mmio";
import type { VirtqBuf, Virtqueue } from "./virtqueue";

/** Bytes of a request slot: the header, then the status byte. */
const SLOT = 32;
const PAGE = 4096;

/** Counters of the driver. */
export interface VirtioBlkFrontCounts {
  requests: number;
  completions: number;
  errors: number;
}

export interface VirtioBlkFrontOptions {
  /** Queue size to ask for (capped by the device); default 128. */
  queueSize?: number;
  /** Negotiate VIRTIO_F_EVENT_IDX; default true. */
  eventIdx?: boolean;
  /** Negotiate VIRTIO_F_INDIRECT_DESC (multi-buffer requests take one ring slot); default true. */
  indirect?: boolean;
}

export class VirtioBlkFront {
  readonly dev: VirtioMmioDriver;
  readonly vq: Virtqueue<number>;
  /** Capacity in 512-byte sectors. */
  readonly capacity: number;
  readonly counts: VirtioBlkFrontCounts = { requests: 0, completions: 0, errors: 0 };
  private readonly slotsPa: number;
  private readonly freeSlots: number[] = [];
  private readonly done: (((status: number) => void) | null)[];

  private constructor(
    readonly kernel: GuestKernel,
    dev: VirtioMmioDriver,
    options: VirtioBlkFrontOptions,
  ) {
    this.dev = dev;
    const vq = dev.setupVq(0, options.queueSize ?? 128, () => this.complete());
    if (typeof vq === "number")
      throw virtioError("VIRTIO_BAD_OPTION", `virtio-blk has no request queue (${vq})`);
    this.vq = vq as Virtqueue<number>;
    const n = this.vq.num;
    const pages = Math.ceil((n * SLOT) / PAGE);
    let first = -1;
    for (let i = 0; i < pages; i++) {
      const pfn = kernel.allocPage();
      if (pfn < 0 || (i > 0 && pfn !== first + i)) {
        throw virtioError(
          "VIRTIO_NO_MEMORY",
          "No contiguous pages for virtio-blk's request headers; boot the guest with more memory.",
        );
      }
      if (i === 0) first = pfn;
      kernel.clearPage(pfn);
    }
    this.slotsPa = first * PAGE;
    for (let i = n - 1; i >= 0; i--) this.freeSlots.push(i);
    this.done = new Array(n).fill(null);
    const lo = dev.readConfig(VIRTIO_BLK_CFG_CAPACITY, 4) >>> 0;
    const hi = dev.readConfig(VIRTIO_BLK_CFG_CAPACITY + 4, 4) >>> 0;
    this.capacity = hi * 2 ** 32 + lo;
  }

  /**
   * virtblk_probe on the virtio-mmio window at `base`, GSI `gsi`: the driver, ready for
   * requests, or -ENODEV when no virtio-blk device answers there.
   */
  static probe(
    k: GuestKernel,
    base: number,
    gsi: number,
    options: VirtioBlkFrontOptions = {},
  ): VirtioBlkFront | number {
    const dev = VirtioMmioDriver.probe(k, base, gsi);
    if (typeof dev === "number") return dev;
    if (dev.deviceId !== VIRTIO_ID_BLOCK) return -19;
    const rc = dev.finalizeFeatures(
      [VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_SEG_MAX],
      options.eventIdx ?? true,
      options.indirect ?? true,
    );
    if (rc < 0) return rc;
    const front = new VirtioBlkFront(k, dev, options);
    const r = dev.ready();
    if (r < 0) return r;
    return front;
  }

  /**
   * Queues a request of `type` (VIRTIO_BLK_T_*) at `sector` over `data` (guest-physical
   * buffers: written by the device for T_IN and T_GET_ID, read for T_OUT) and kicks unless
   * `kick` is false (a batch: call kick() after its last request). `done`
   * runs with the status byte when the device answers. 0, -ENOSPC when the queue is full,
   * -EINVAL for a bad argument, -EIO when the device is broken.
   */
  submit(
    type: number,
    sector: number,
    data: readonly VirtqBuf[],
    done: (status: number) => void,
    kick = true,
  ): number {
    if (!(Number.isSafeInteger(sector) && sector >= 0)) return -EINVAL;
    if (this.dev.broken || this.vq.broken !== null) return -EIO;
    const slot = this.freeSlots.pop();
    if (slot === undefined) return -ENOSPC;
    const ram = this.kernel.ram;
    const h = this.slotsPa + slot * SLOT;
    ram.write32(h, type);
    ram.write32(h + 4, 0);
    ram.write32(h + 8, sector % 2 ** 32);
    ram.write32(h + 12, Math.floor(sector / 2 ** 32));
    ram.write8(h + VIRTIO_BLK_OUTHDR_SIZE, 0xff);
    const hdr = { addr: h, len: VIRTIO_BLK_OUTHDR_SIZE };
    const status = { addr: h + VIRTIO_BLK_OUTHDR_SIZE, len: 1 };
    const devWrites = type === VIRTIO_BLK_T_IN || type === 8;
    const out = devWrites ? [hdr] : [hdr, ...data];
    const inb = devWrites ? [...data, status] : [status];
    const head = this.vq.add(out, inb, slot);
    if (head < 0) {
      this.freeSlots.push(slot);
      return head;
    }
    this.done[slot] = done;
    this.counts.requests++;
    // blk-mq's bd->last: a batch kicks once, after its last request.
    if (kick) this.vq.kick();
    return 0;
  }

  /** Kicks the device for requests queued with `kick` false (virtio_commit_rqs). */
  kick(): boolean {
    return this.vq.kick();
  }

  /** The used-ring callback: reports each finished request once. */
  private complete(): void {
    const vq = this.vq;
    for (;;) {
      for (let b = vq.getBuf(); b !== null; b = vq.getBuf()) {
        const slot = b.token;
        const done = this.done[slot];
        this.done[slot] = null;
        const st = this.kernel.ram.read8(this.slotsPa + slot * SLOT + VIRTIO_BLK_OUTHDR_SIZE);
        this.freeSlots.push(slot);
        this.counts.completions++;
        if (st !== 0) this.counts.errors++;
        done?.(st > 2 ? VIRTIO_BLK_S_IOERR : st);
      }
      if (vq.enableCb()) break; // nothing raced in
    }
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.vq.num - this.freeSlots.length;
  }
}
