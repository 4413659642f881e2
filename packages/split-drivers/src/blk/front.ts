/*
 * blkfront's driver (Linux drivers/block/xen-blkfront.c: blkfront_probe, the xenbus_driver
 * callbacks and the module parameters max_ring_page_order, max_indirect_segments and
 * feature_persistent). Each device it probes is a BlkfrontDisk (front-disk.ts), which keeps
 * the ring, the request path and recovery.
 *
 * Invariant: the driver holds no I/O state of its own; every device's state lives in its
 * BlkfrontDisk, created once at probe and kept across reconnections.
 */
import type { Stats } from "@hyperlab/core";
import type { XsOps } from "@hyperlab/xenstore";
import { RING_MAX_ORDER } from "../ring";
import type { XenbusDevice, XenbusDriver, XenbusKernel } from "../xenbus/device";
import type { GnttabGuest } from "../xenbus/gnttab";
import {
  BLKFRONT_MAX_INDIRECT_SEGMENTS,
  BLKIF_SEGS_PER_INDIRECT_FRAME,
  type BlkCounters,
  BlkError,
  blkCounters,
} from "./blkif";
import { BlkfrontDisk } from "./front-disk";

export interface BlkfrontOptions {
  /** The domU's grant table (gnttab_grant_foreign_access). */
  gnttab: GnttabGuest;
  /** Largest ring page order to ask for (0..4, default 0 as Linux's max_ring_page_order). */
  maxRingPageOrder?: number;
  /** Segments per indirect request wanted (default 32, Linux's max_indirect_segments). */
  maxIndirectSegments?: number;
  /** Offer feature-persistent (default true, as Linux). */
  persistent?: boolean;
  /** Data and indirect pages the device may hold at once (default 128). */
  poolPages?: number;
  /** Where the domU's kernel takes 2^order contiguous frames (default: hv.allocDomainPages). */
  allocFrames?: (order: number) => number;
  /** Called for every frame whose bytes the frontend reads or writes (an audit hook). */
  onTouch?: (mfn: number, write: boolean) => void;
}

/** blkfront: the xenbus frontend driver of type `vbd` in a domU's kernel. */
export class BlkFront implements XenbusDriver {
  readonly type = "vbd";
  /** Counters with units (group `blkfront`). */
  readonly stats: Stats;
  /** @internal */
  readonly counters: BlkCounters;
  /** @internal */
  readonly kernel: XenbusKernel;
  /** @internal */
  readonly gnttab: GnttabGuest;
  /** @internal */
  readonly maxRingPageOrder: number;
  /** @internal */
  readonly maxIndirectSegments: number;
  /** @internal */
  readonly persistent: boolean;
  /** @internal */
  readonly poolPages: number;
  /** @internal */
  readonly allocFrames: (order: number) => number;
  /** @internal */
  readonly touch: ((mfn: number, write: boolean) => void) | undefined;
  private readonly disks = new Map<number, BlkfrontDisk>();

  constructor(kernel: XenbusKernel, options: BlkfrontOptions) {
    const o = options ?? ({} as BlkfrontOptions);
    if (o.gnttab === undefined) {
      throw new BlkError("BLK_BAD_OPTION", "blkfront needs `gnttab`: the domU's GnttabGuest.");
    }
    const int = (name: string, v: number | undefined, d: number, lo: number, hi: number) => {
      const x = v ?? d;
      if (!Number.isInteger(x) || x < lo || x > hi) {
        throw new BlkError(
          "BLK_BAD_OPTION",
          `blkfront option ${name} must be a whole number from ${lo} to ${hi}, got ${v}.`,
        );
      }
      return x;
    };
    this.kernel = kernel;
    this.gnttab = o.gnttab;
    this.maxRingPageOrder = int("maxRingPageOrder", o.maxRingPageOrder, 0, 0, RING_MAX_ORDER);
    this.maxIndirectSegments = int(
      "maxIndirectSegments",
      o.maxIndirectSegments,
      BLKFRONT_MAX_INDIRECT_SEGMENTS,
      0,
      8 * BLKIF_SEGS_PER_INDIRECT_FRAME,
    );
    this.poolPages = int("poolPages", o.poolPages, 128, 12, 1 << 20);
    if (this.maxIndirectSegments + 1 > this.poolPages) {
      throw new BlkError(
        "BLK_BAD_OPTION",
        `blkfront needs poolPages (${this.poolPages}) above maxIndirectSegments (${this.maxIndirectSegments}) for one request.`,
      );
    }
    this.persistent = o.persistent ?? true;
    this.allocFrames =
      o.allocFrames ?? ((order) => kernel.hv.allocDomainPages(kernel.domain, order));
    this.touch = o.onTouch;
    const { stats, counters } = blkCounters("blkfront");
    this.stats = stats;
    this.counters = counters;
  }

  /** The disk of `devid` (created when the device is probed). */
  disk(devid: number): BlkfrontDisk | undefined {
    return this.disks.get(devid);
  }

  probe(dev: XenbusDevice): number {
    if (!this.disks.has(dev.devid)) this.disks.set(dev.devid, new BlkfrontDisk(this, dev.devid));
    return 0;
  }

  initialise(dev: XenbusDevice, tx: XsOps): Promise<number> {
    return this.disks.get(dev.devid)!.setup(dev, tx);
  }

  connect(dev: XenbusDevice): Promise<number> {
    return this.disks.get(dev.devid)!.connect(dev);
  }

  disconnect(dev: XenbusDevice): void {
    this.disks.get(dev.devid)?.disconnect();
  }
}
