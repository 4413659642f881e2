/*
 * The virtio-blk device (OASIS virtio v1.2 §5.2; QEMU's hw/block/virtio-blk.c as reading
 * guide) over a raw disk image, the same DiskImage the machine's disk controller and Xen's
 * blkback read and write. A request is one chain: the 16-byte header (type, reserved, sector)
 * readable by the device, data segments, and a final writable status byte.
 *
 * Invariants: a request that is malformed in its framing (no header, no status byte) breaks
 * the queue, as QEMU's "virtio-blk missing headers" does; one that is well framed but asks the
 * impossible (past the image, not whole sectors, too large, unknown type) is answered
 * VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP and touches neither the image nor memory beyond
 * its status byte. Data moves only through the queue's checked copies.
 */
import {
  DISK_SECTOR_SIZE,
  type DiskImage,
  VIRTIO_BLK_CFG_CAPACITY,
  VIRTIO_BLK_CFG_SEG_MAX,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_OUTHDR_SIZE,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_ID_BLOCK,
} from "@hyperlab/machine";
import type { VirtioBackend, VirtioMmio } from "./mmio";
import { VQ_BROKEN, VQ_EMPTY } from "./queue";

/** Largest data transfer of one request: 1 MiB. */
export const VIRTIO_BLK_MAX_BYTES = 1 << 20;
/** Segments a request may carry (seg_max, data segments only). */
export const VIRTIO_BLK_SEG_MAX = 254;

export interface VirtioBlkOptions {
  image: DiskImage;
  /** The serial GET_ID answers (up to 20 bytes); default "hyperlab-vblk". */
  serial?: string;
  /** Queue size offered; default 256. */
  queueSize?: number;
}

/** Counters of a virtio-blk device. */
export interface VirtioBlkCounts {
  requests: number;
  reads: number;
  writes: number;
  flushes: number;
  bytesRead: number;
  bytesWritten: number;
  errors: number;
  unsupported: number;
}

export class VirtioBlk implements VirtioBackend {
  readonly name = "virtio-blk";
  readonly deviceId = VIRTIO_ID_BLOCK;
  readonly numQueues = 1;
  readonly queueNumMax: number;
  readonly featureBits = [VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_SEG_MAX];
  readonly image: DiskImage;
  readonly counts: VirtioBlkCounts = {
    requests: 0,
    reads: 0,
    writes: 0,
    flushes: 0,
    bytesRead: 0,
    bytesWritten: 0,
    errors: 0,
    unsupported: 0,
  };
  private transport: VirtioMmio | null = null;
  private readonly hdr = new Uint8Array(VIRTIO_BLK_OUTHDR_SIZE);
  private readonly hdv = new DataView(this.hdr.buffer);
  private readonly buf = new Uint8Array(VIRTIO_BLK_MAX_BYTES);
  private readonly status = new Uint8Array(1);
  private readonly id = new Uint8Array(VIRTIO_BLK_ID_BYTES);

  constructor(options: VirtioBlkOptions) {
    this.image = options.image;
    this.queueNumMax = options.queueSize ?? 256;
    const serial = new TextEncoder().encode(options.serial ?? "hyperlab-vblk");
    this.id.set(serial.subarray(0, VIRTIO_BLK_ID_BYTES));
  }

  attach(t: VirtioMmio): void {
    this.transport = t;
  }

  reset(): void {}

  readConfig(offset: number, width: number): number {
    const cap = this.image.sectors;
    let v = 0;
    for (let i = width - 1; i >= 0; i--) {
      const o = offset + i;
      let b = 0;
      if (o >= VIRTIO_BLK_CFG_CAPACITY && o < VIRTIO_BLK_CFG_CAPACITY + 8) {
        b = Math.floor(cap / 2 ** (8 * (o - VIRTIO_BLK_CFG_CAPACITY))) & 0xff;
      } else if (o >= VIRTIO_BLK_CFG_SEG_MAX && o < VIRTIO_BLK_CFG_SEG_MAX + 4) {
        b = (VIRTIO_BLK_SEG_MAX >>> (8 * (o - VIRTIO_BLK_CFG_SEG_MAX))) & 0xff;
      }
      v = v * 256 + b;
    }
    return v;
  }

  notify(q: number): void {
    const t = this.transport;
    if (t === null || q !== 0) return;
    const vq = t.queues[0];
    let any = false;
    for (;;) {
      const head = vq.pop();
      if (head === VQ_EMPTY || head === VQ_BROKEN) break;
      // Framing: a header the device can read, a status byte it can write.
      if (vq.outBytes < VIRTIO_BLK_OUTHDR_SIZE || vq.inBytes < 1) {
        vq.error = "virtio-blk request without its header or status byte";
        break;
      }
      const written = this.handle(vq);
      if (!vq.writeIn(vq.inBytes - 1, this.status)) {
        vq.error = "virtio-blk status byte is not writable";
        break;
      }
      if (!vq.push(head, written + 1)) break;
      any = true;
    }
    if (any || vq.error === null) t.notifyQueue(0);
  }

  /** Executes the popped request; sets the status byte and returns the data bytes written to the guest. */
  private handle(vq: VirtioMmio["queues"][number]): number {
    this.counts.requests++;
    vq.readOut(0, this.hdr);
    const type = this.hdv.getUint32(0, true);
    const sector = this.hdv.getUint32(12, true) * 2 ** 32 + this.hdv.getUint32(8, true);
    const st = this.status;
    st[0] = VIRTIO_BLK_S_OK;
    const img = this.image;
    if (type === VIRTIO_BLK_T_IN || type === VIRTIO_BLK_T_OUT) {
      const n = type === VIRTIO_BLK_T_IN ? vq.inBytes - 1 : vq.outBytes - VIRTIO_BLK_OUTHDR_SIZE;
      const segs = vq.segs - 2;
      if (
        n % DISK_SECTOR_SIZE !== 0 ||
        n > VIRTIO_BLK_MAX_BYTES ||
        segs > VIRTIO_BLK_SEG_MAX ||
        sector + n / DISK_SECTOR_SIZE > img.sectors
      ) {
        return this.fail(VIRTIO_BLK_S_IOERR);
      }
      const data = this.buf.subarray(0, n);
      if (type === VIRTIO_BLK_T_IN) {
        if (!img.read(sector, data)) return this.fail(VIRTIO_BLK_S_IOERR);
        if (!vq.writeIn(0, data)) return this.fail(VIRTIO_BLK_S_IOERR);
        this.counts.reads++;
        this.counts.bytesRead += n;
        return n;
      }
      if (!vq.readOut(VIRTIO_BLK_OUTHDR_SIZE, data)) return this.fail(VIRTIO_BLK_S_IOERR);
      if (!img.write(sector, data)) return this.fail(VIRTIO_BLK_S_IOERR);
      this.counts.writes++;
      this.counts.bytesWritten += n;
      return 0;
    }
    if (type === VIRTIO_BLK_T_FLUSH) {
      this.counts.flushes++;
      if (!img.flush()) return this.fail(VIRTIO_BLK_S_IOERR);
      return 0;
    }
    if (type === VIRTIO_BLK_T_GET_ID) {
      const n = Math.min(VIRTIO_BLK_ID_BYTES, vq.inBytes - 1);
      vq.writeIn(0, this.id.subarray(0, n));
      return n;
    }
    this.counts.unsupported++;
    st[0] = VIRTIO_BLK_S_UNSUPP;
    return 0;
  }

  private fail(status: number): number {
    this.counts.errors++;
    this.status[0] = status;
    return 0;
  }
}
