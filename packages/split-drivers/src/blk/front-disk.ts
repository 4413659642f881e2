/*
 * blkfront: a domU's virtual block device over a blkif ring, as Linux's
 * drivers/block/xen-blkfront.c does it: talk_to_blkback (ring pages granted, ring-ref or
 * ring-ref%u with ring-page-order, event-channel, protocol, feature-persistent),
 * blkfront_connect (sectors, info, sector-size, features), blkif_queue_request (direct or
 * indirect segments, grants per request or persistent granted pages), blkif_interrupt
 * (responses, with the hardening checks) and blkif_recover (every unanswered request issued
 * again on a new ring after the backend came back).
 *
 * Invariants:
 * - The frontend reads and writes only its own frames: the ring pages, its pool of data
 *   pages and indirect pages (each reported to `onTouch`). A response is trusted for nothing
 *   but its id, operation and status: an id that names no request in flight, an operation
 *   that is not that request's, or an rsp_prod more than a ring ahead puts the device in the
 *   error state (Linux's BLKIF_STATE_ERROR); no data page is read because of such a response.
 * - Every request in flight has one shadow entry (id = slot in `shadow`) holding its pages
 *   and grants until its response is consumed or the ring goes away; on disconnect the
 *   unanswered ones go back, in the order they were issued, to the head of the queue.
 * - A grant is ended before its page is reused; a page whose grant the backend still has
 *   mapped is never reused (it leaves the pool, counted in `leakedPages`).
 */
import {
  BLKIF_DISCARD_SECURE,
  BLKIF_MAX_SEGMENTS_PER_REQUEST,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  EINVAL,
  ENOMEM,
  VDISK_READONLY,
} from "@hyperlab/abi";
import type { XsOps } from "@hyperlab/xenstore";
import { FrontRing, RING_MAX_ORDER, SharedRing } from "../ring";
import type { XenbusDevice, XenbusKernel } from "../xenbus/device";
import type { GnttabGuest } from "../xenbus/gnttab";
import { parseXenbusUint } from "../xenbus/state";
import {
  BLKIF_ENTRY_BYTES,
  BLKIF_RESPONSE_BYTES,
  BLKIF_SECTORS_PER_PAGE,
  BLKIF_SEGS_PER_INDIRECT_FRAME,
  type BlkCounters,
  BlkError,
  type BlkifResponse,
  decodeResponse,
  segmentOffset,
  writeDiscardRequest,
  writeIndirectRequest,
  writeRwRequest,
  writeSegment,
} from "./blkif";

const SECTOR = 512;
const PAGE = 4096;

/** What the backend published at connect (blkfront_connect / blkfront_gather_backend_features). */
export interface BlkfrontFeatures {
  sectors: number;
  sectorSize: number;
  physicalSectorSize: number;
  info: number;
  readonly: boolean;
  flush: boolean;
  barrier: boolean;
  discard: boolean;
  discardSecure: boolean;
  persistent: boolean;
  /** Segments per request: 11 direct, or the negotiated indirect maximum. */
  maxSegments: number;
  ringPageOrder: number;
}

/** The result of a read: a BLKIF_RSP_* status and, when OKAY, the bytes. */
export interface BlkReadResult {
  status: number;
  data: Uint8Array;
}
/** What a disk needs of its driver (BlkFront): its counters, kernel, grant table and limits. */
export interface BlkfrontHost {
  readonly counters: BlkCounters;
  readonly kernel: XenbusKernel;
  readonly gnttab: GnttabGuest;
  readonly maxRingPageOrder: number;
  readonly maxIndirectSegments: number;
  readonly persistent: boolean;
  readonly poolPages: number;
  allocFrames(order: number): number;
  readonly touch: ((mfn: number, write: boolean) => void) | undefined;
}

/** One I/O the block layer asked for (a bio); split into ring requests as limits allow. */
interface Bio {
  op: number;
  sector: number;
  nsec: number;
  data: Uint8Array;
  flag: number;
  parts: number;
  status: number;
  done: (status: number) => void;
}

/** A queued piece of a bio: sectors [off, off + nsec) of it. */
interface Part {
  bio: Bio;
  off: number;
  nsec: number;
}

/** A ring request in flight (struct blk_shadow). */
interface Shadow {
  part: Part;
  seq: number;
  operation: number;
  pages: number[];
  grefs: number[];
  indirectPages: number[];
  indirectGrefs: number[];
}

/** The part a free shadow entry points at. */
const NO_BIO: Bio = {
  op: 0,
  sector: 0,
  nsec: 0,
  data: new Uint8Array(0),
  flag: 0,
  parts: 0,
  status: 0,
  done: () => {},
};

type DiskState = "disconnected" | "connected" | "error";

/** One virtual disk of the domU (struct blkfront_info with its one ring). */
export class BlkfrontDisk {
  readonly devid: number;
  /** Features once connected, else null. */
  features: BlkfrontFeatures | null = null;
  /** disconnected (no ring), connected, or error (a bogus response was seen). */
  state: DiskState = "disconnected";
  /** Requests issued again after a reconnect (blkif_recover). */
  recovered = 0;
  /** Responses refused by the hardening checks. */
  badResponses = 0;
  /** Pages dropped from the pool because the backend kept their grant mapped. */
  leakedPages = 0;
  /** Reconnections seen (a new ring after the first). */
  reconnects = 0;
  private readonly drv: BlkfrontHost;
  private readonly queue: Part[] = [];
  private shadow: (Shadow | null)[] = [];
  private shadowPool: Shadow[] = [];
  private freeIds: number[] = [];
  private seq = 0;
  private sring: SharedRing | null = null;
  private front: FrontRing | null = null;
  private ringMfn = -1;
  private ringOrder = -1;
  private ringRefs: number[] = [];
  private irq = -1;
  /** Pool pages not in use; with persistent grants, each page's gref. */
  private readonly freePages: number[] = [];
  private poolTaken = 0;
  private poolCap: number;
  private readonly pgrant = new Map<number, number>();
  private readonly rsp = new Uint8Array(BLKIF_RESPONSE_BYTES);
  private readonly rspView = new DataView(this.rsp.buffer);
  private readonly rspOut: BlkifResponse = { idLo: 0, idHi: 0, operation: 0, status: 0 };
  private readonly waiters: (() => void)[] = [];

  /** @internal */
  constructor(drv: BlkfrontHost, devid: number) {
    this.drv = drv;
    this.devid = devid;
    this.poolCap = drv.poolPages;
  }

  /** Resolves once the device is connected (immediately if it is). */
  ready(): Promise<void> {
    if (this.state === "connected") return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /**
   * Whether the disk is read-only: blkfront_connect's set_disk_ro(gd, info & VDISK_READONLY),
   * what bdev_read_only answers (an open for writing gets EROFS). As in Linux 6.1 the block
   * layer only warns on a write bio to such a disk, so `write` still reaches the ring and the
   * backend refuses it (BLKIF_RSP_ERROR).
   */
  get readOnly(): boolean {
    return this.features?.readonly === true;
  }

  /** Requests waiting for ring room or pages. */
  get queued(): number {
    return this.queue.length;
  }

  /** Requests on the ring without a response. */
  get inFlight(): number {
    return this.shadow.length - this.freeIds.length;
  }

  /** Read `nsec` sectors from `sector`. */
  read(sector: number, nsec: number): Promise<BlkReadResult> {
    const data = new Uint8Array(nsec * SECTOR);
    return this.submit(BLKIF_OP_READ, sector, nsec, data, 0).then((status) => ({
      status,
      data,
    }));
  }

  /** Write `data` (a whole number of sectors) at `sector`. Resolves with a BLKIF_RSP_* status. */
  write(sector: number, data: Uint8Array): Promise<number> {
    return this.submit(BLKIF_OP_WRITE, sector, data.length / SECTOR, data, 0);
  }

  /** BLKIF_OP_FLUSH_DISKCACHE: everything acknowledged so far reaches stable storage. */
  flush(): Promise<number> {
    if (this.features !== null && !this.features.flush)
      return Promise.resolve(BLKIF_RSP_EOPNOTSUPP);
    return this.submit(BLKIF_OP_FLUSH_DISKCACHE, 0, 0, new Uint8Array(0), 0);
  }

  /** BLKIF_OP_WRITE_BARRIER: a write ordered after every earlier one, then made stable. */
  barrier(sector: number, data: Uint8Array): Promise<number> {
    if (this.features !== null && !this.features.barrier)
      return Promise.resolve(BLKIF_RSP_EOPNOTSUPP);
    return this.submit(BLKIF_OP_WRITE_BARRIER, sector, data.length / SECTOR, data, 0);
  }

  /** BLKIF_OP_DISCARD of `nsec` sectors; `secure` asks for BLKIF_DISCARD_SECURE if offered. */
  discard(sector: number, nsec: number, secure = false): Promise<number> {
    const f = this.features;
    if (f !== null && !f.discard) return Promise.resolve(BLKIF_RSP_EOPNOTSUPP);
    const flag = secure && (f === null || f.discardSecure) ? BLKIF_DISCARD_SECURE : 0;
    return this.submit(BLKIF_OP_DISCARD, sector, nsec, new Uint8Array(0), flag);
  }

  private submit(op: number, sector: number, nsec: number, data: Uint8Array, flag: number) {
    if (!Number.isSafeInteger(sector) || sector < 0 || !Number.isSafeInteger(nsec) || nsec < 0) {
      throw new BlkError(
        "BLK_BAD_OPTION",
        `a block request needs whole sector numbers >= 0 (512-byte sectors), got sector ${sector}, count ${nsec}.`,
      );
    }
    if ((op === BLKIF_OP_READ || op === BLKIF_OP_WRITE) && nsec === 0) {
      throw new BlkError("BLK_BAD_OPTION", "a read or write needs at least one 512-byte sector.");
    }
    if (op === BLKIF_OP_WRITE_BARRIER && nsec > BLKIF_MAX_SEGMENTS_PER_REQUEST * 8) {
      throw new BlkError(
        "BLK_BAD_OPTION",
        `a barrier write carries at most ${BLKIF_MAX_SEGMENTS_PER_REQUEST * 8} sectors (direct segments only); split it.`,
      );
    }
    return new Promise<number>((done) => {
      const bio: Bio = { op, sector, nsec, data, flag, parts: 1, status: BLKIF_RSP_OKAY, done };
      this.queue.push({ bio, off: 0, nsec });
      this.pump();
    });
  }

  // ---- the request path (blkif_queue_request, kick_pending_request_queues) ----

  /** Puts queued parts on the ring while there is room and pages, then pushes and kicks. */
  private pump(): void {
    if (this.state !== "connected" || this.front === null) return;
    const f = this.features!;
    const front = this.front;
    let queued = false;
    while (this.queue.length > 0 && !front.full() && this.freeIds.length > 0) {
      const part = this.queue[0]!;
      const bio = part.bio;
      const data = bio.op === BLKIF_OP_READ || bio.op === BLKIF_OP_WRITE;
      const maxSegs =
        bio.op === BLKIF_OP_WRITE_BARRIER ? BLKIF_MAX_SEGMENTS_PER_REQUEST : f.maxSegments;
      let nsec = part.nsec;
      if (data || bio.op === BLKIF_OP_WRITE_BARRIER) {
        nsec = Math.min(nsec, maxSegs * BLKIF_SECTORS_PER_PAGE);
      }
      const nseg = Math.ceil(nsec / BLKIF_SECTORS_PER_PAGE);
      const indirect = nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST;
      const nind = indirect ? Math.ceil(nseg / BLKIF_SEGS_PER_INDIRECT_FRAME) : 0;
      if (nseg + nind > this.poolCap) {
        // The domain cannot give this device enough pages for even one such request.
        this.queue.shift();
        this.finishPart(bio, BLKIF_RSP_ERROR);
        continue;
      }
      if (!this.havePages(nseg + nind)) break;
      this.queue.shift();
      if (nsec < part.nsec) {
        // Split: the rest stays at the head of the queue as its own part.
        bio.parts++;
        this.queue.unshift({ bio, off: part.off + nsec, nsec: part.nsec - nsec });
      }
      this.queueRequest({ bio, off: part.off, nsec }, nseg, nind);
      queued = true;
    }
    if (queued && front.pushRequestsAndCheckNotify()) this.notify();
    if (this.queue.length === 0 && this.inFlight === 0) for (const w of this.idle.splice(0)) w();
  }

  private notify(): void {
    const c = this.drv.counters;
    c.notifications.value++;
    c.hypercalls.value++;
    this.drv.kernel.evtchn.notifyRemoteViaIrq(this.irq);
    this.drv.kernel.kick();
  }

  /** blkif_queue_rw_req / blkif_queue_discard_req: one request into the slot at req_prod_pvt. */
  private queueRequest(part: Part, nseg: number, nind: number): void {
    const f = this.features!;
    const bio = part.bio;
    const id = this.freeIds.pop()!;
    // The id's shadow entry is reused: its arrays keep their room between requests.
    const sh = this.shadowPool[id]!;
    sh.part = part;
    sh.seq = this.seq++;
    sh.operation = bio.op;
    sh.pages.length = 0;
    sh.grefs.length = 0;
    sh.indirectPages.length = 0;
    sh.indirectGrefs.length = 0;
    this.shadow[id] = sh;
    const front = this.front!;
    const v = this.sring!.view;
    const off = front.nextRequestOffset();
    const sector = bio.sector + part.off;
    const handle = this.devid & 0xffff;
    if (bio.op === BLKIF_OP_DISCARD) {
      writeDiscardRequest(v, off, bio.flag, handle, id, sector, part.nsec);
      front.produceRequest();
      return;
    }
    if (bio.op === BLKIF_OP_FLUSH_DISKCACHE) {
      writeRwRequest(v, off, bio.op, 0, handle, id, sector);
      front.produceRequest();
      return;
    }
    const ram = this.drv.kernel.hv.machine.ram;
    const toBackend = bio.op !== BLKIF_OP_READ; // the backend only reads these pages
    const c = this.drv.counters;
    const grefs = sh.grefs;
    for (let s = 0; s < nseg; s++) {
      const page = this.takePage();
      const gref = this.grantPage(page, toBackend);
      sh.pages.push(page);
      grefs.push(gref);
      if (toBackend) {
        const n = Math.min(BLKIF_SECTORS_PER_PAGE, part.nsec - s * BLKIF_SECTORS_PER_PAGE) * SECTOR;
        const from = (part.off + s * BLKIF_SECTORS_PER_PAGE) * SECTOR;
        this.drv.touch?.(page, true);
        ram.frameBytes(page).set(bio.data.subarray(from, from + n), 0);
        if (f.persistent) {
          // blkfront copies the bio's data into the persistent granted page.
          c.copies.value++;
          c.copiedBytes.value += n;
        }
      }
    }
    const lastOf = (s: number) =>
      Math.min(BLKIF_SECTORS_PER_PAGE, part.nsec - s * BLKIF_SECTORS_PER_PAGE) - 1;
    if (nind === 0) {
      writeRwRequest(v, off, bio.op, nseg, handle, id, sector);
      for (let s = 0; s < nseg; s++)
        writeSegment(v, off + segmentOffset(s), grefs[s]!, 0, lastOf(s));
    } else {
      sh.operation = BLKIF_OP_INDIRECT;
      for (let p = 0; p < nind; p++) {
        const page = this.takePage();
        const bytes = ram.frameBytes(page);
        this.drv.touch?.(page, true);
        const dv = new DataView(bytes.buffer, bytes.byteOffset, PAGE);
        const lo = p * BLKIF_SEGS_PER_INDIRECT_FRAME;
        const hi = Math.min(nseg, lo + BLKIF_SEGS_PER_INDIRECT_FRAME);
        for (let s = lo; s < hi; s++) writeSegment(dv, (s - lo) * 8, grefs[s]!, 0, lastOf(s));
        sh.indirectPages.push(page);
        sh.indirectGrefs.push(this.grantPage(page, true));
      }
      writeIndirectRequest(v, off, bio.op, nseg, handle, id, sector, sh.indirectGrefs, nind);
    }
    front.produceRequest();
  }

  /** Whether `n` pages are free, taking frames from the kernel up to the pool's size. */
  private havePages(n: number): boolean {
    while (this.freePages.length < n && this.poolTaken < this.poolCap) {
      const mfn = this.drv.allocFrames(0);
      if (!(Number.isSafeInteger(mfn) && mfn > 0)) {
        this.poolCap = this.poolTaken; // the domain is out of memory: the pool stays this size
        break;
      }
      this.poolTaken++;
      this.freePages.push(mfn);
    }
    return this.freePages.length >= n;
  }

  /** A free pool page (havePages said there is one). */
  private takePage(): number {
    return this.freePages.pop()!;
  }

  /** A grant on `page` for the backend: the page's persistent one, or a fresh one. */
  private grantPage(page: number, readonly: boolean): number {
    const c = this.drv.counters;
    if (this.features!.persistent) {
      const g = this.pgrant.get(page);
      if (g !== undefined) return g;
      const ref = this.drv.gnttab.grantForeignAccess(this.backendId, page, false);
      c.grantOps.value++;
      this.pgrant.set(page, ref);
      return ref;
    }
    c.grantOps.value++;
    return this.drv.gnttab.grantForeignAccess(this.backendId, page, readonly);
  }

  private backendId = 0;

  /** Ends a request's grants (not persistent ones) and returns its pages to the pool. */
  private release(sh: Shadow): void {
    const persistent = this.features?.persistent === true;
    const give = (pages: number[], grefs: number[]) => {
      for (let i = 0; i < pages.length; i++) {
        const page = pages[i]!;
        if (persistent || grefs[i]! < 0) {
          this.freePages.push(page);
          continue;
        }
        this.drv.counters.grantOps.value++;
        if (this.drv.gnttab.endForeignAccess(grefs[i]!)) this.freePages.push(page);
        else this.leakedPages++;
      }
    };
    give(sh.pages, sh.grefs);
    give(sh.indirectPages, sh.indirectGrefs);
  }

  // ---- the response path (blkif_interrupt, blkif_completion) ----

  /** Resolves when nothing is queued or in flight. */
  drained(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private readonly idle: (() => void)[] = [];
  private draining = false;

  /** @internal The event channel's handler. */
  interrupt(): void {
    if (this.state !== "connected" || this.front === null) return;
    const front = this.front;
    for (;;) {
      const rp = this.sring!.rspProd;
      if (front.responseProdOverflow(rp)) {
        this.fail("illegal number of responses");
        return;
      }
      while (front.rspCons !== rp) {
        front.consumeResponse(this.rsp);
        decodeResponse(this.rspView, this.rspOut);
        const r = this.rspOut;
        const id = r.idLo;
        const sh = r.idHi === 0 && id < this.shadow.length ? this.shadow[id] : null;
        if (sh === null || sh === undefined) {
          this.fail(`response has incorrect id (${r.idHi}:${r.idLo})`);
          return;
        }
        if (r.operation !== sh.operation) {
          this.fail(`response for id ${id} has operation ${r.operation}, not ${sh.operation}`);
          return;
        }
        this.shadow[id] = null;
        this.freeIds.push(id);
        this.complete(sh, r.status);
      }
      if (front.finalCheckForResponses() === 0) break;
    }
    if (!this.draining) this.pump();
  }

  /** blkif_completion: copy a read's data out, end grants, finish the part. */
  private complete(sh: Shadow, status: number): void {
    const c = this.drv.counters;
    const bio = sh.part.bio;
    const f = this.features;
    c.requests.value++;
    let st = status;
    if (st !== BLKIF_RSP_OKAY && st !== BLKIF_RSP_ERROR && st !== BLKIF_RSP_EOPNOTSUPP) {
      st = BLKIF_RSP_ERROR;
    }
    if (st === BLKIF_RSP_EOPNOTSUPP && f !== null) {
      // "%s op failed: not supported": the feature is turned off.
      if (bio.op === BLKIF_OP_FLUSH_DISKCACHE) f.flush = false;
      if (bio.op === BLKIF_OP_WRITE_BARRIER) f.barrier = false;
      if (bio.op === BLKIF_OP_DISCARD) f.discard = f.discardSecure = false;
    }
    if (st === BLKIF_RSP_OKAY && bio.op === BLKIF_OP_READ) {
      const ram = this.drv.kernel.hv.machine.ram;
      for (let s = 0; s < sh.pages.length; s++) {
        const n =
          Math.min(BLKIF_SECTORS_PER_PAGE, sh.part.nsec - s * BLKIF_SECTORS_PER_PAGE) * SECTOR;
        const at = (sh.part.off + s * BLKIF_SECTORS_PER_PAGE) * SECTOR;
        const page = sh.pages[s]!;
        this.drv.touch?.(page, false);
        bio.data.set(ram.frameBytes(page).subarray(0, n), at);
        if (f?.persistent) {
          c.copies.value++;
          c.copiedBytes.value += n;
        }
      }
    }
    if (st !== BLKIF_RSP_OKAY) c.errors.value++;
    this.release(sh);
    this.finishPart(bio, st);
  }

  private finishPart(bio: Bio, st: number): void {
    if (st !== BLKIF_RSP_OKAY && bio.status === BLKIF_RSP_OKAY) bio.status = st;
    if (--bio.parts === 0) bio.done(bio.status);
  }

  /** BLKIF_STATE_ERROR: stop using the ring; every request still held fails with ERROR. */
  private fail(why: string): void {
    this.badResponses++;
    this.state = "error";
    this.lastError = why;
    this.failAll();
  }

  /** Why the device went to the error state ("" if it did not). */
  lastError = "";

  private failAll(): void {
    for (let id = 0; id < this.shadow.length; id++) {
      const sh = this.shadow[id];
      if (sh === null || sh === undefined) continue;
      this.shadow[id] = null;
      this.freeIds.push(id);
      this.release(sh);
      this.finishPart(sh.part.bio, BLKIF_RSP_ERROR);
    }
    for (const p of this.queue.splice(0)) this.finishPart(p.bio, BLKIF_RSP_ERROR);
    for (const w of this.idle.splice(0)) w();
  }

  // ---- xenbus (talk_to_blkback, blkfront_connect, blkif_free / blkif_recover) ----

  /** @internal talk_to_blkback: ring, grants, port, keys. 0 or -errno. */
  async setup(dev: XenbusDevice, tx: XsOps): Promise<number> {
    const { kernel } = this.drv;
    const ram = kernel.hv.machine.ram;
    this.backendId = dev.otherendId;
    const beMax = parseXenbusUint(
      await dev.readOtherend("max-ring-page-order"),
      RING_MAX_ORDER + 1,
    );
    const order = Math.min(this.drv.maxRingPageOrder, Math.max(beMax, 0));
    if (this.ringOrder !== order) {
      const mfn = this.drv.allocFrames(order);
      if (!(Number.isSafeInteger(mfn) && mfn > 0)) return -ENOMEM;
      this.ringMfn = mfn;
      this.ringOrder = order;
    }
    const pages = 1 << order;
    for (let i = 0; i < pages; i++) ram.clearFrame(this.ringMfn + i);
    const first = ram.frameBytes(this.ringMfn);
    const sring = new SharedRing(
      new Uint8Array(first.buffer, first.byteOffset, PAGE << order),
      BLKIF_ENTRY_BYTES,
      order,
    );
    sring.init();
    this.ringRefs = [];
    for (let i = 0; i < pages; i++) {
      const ref = this.drv.gnttab.grantForeignAccess(dev.otherendId, this.ringMfn + i);
      if (ref < 0) return ref;
      this.ringRefs.push(ref);
      this.drv.touch?.(this.ringMfn + i, true);
    }
    const irq = kernel.evtchn.bindListeningPortToIrqHandler(dev.otherendId, () => this.interrupt());
    if (irq < 0) return irq;
    this.irq = irq;
    const port = kernel.evtchn.evtchnFromIrq(irq);
    const n = dev.nodename;
    if (order === 0) await tx.write(`${n}/ring-ref`, String(this.ringRefs[0]));
    else {
      await tx.write(`${n}/ring-page-order`, String(order));
      for (let i = 0; i < pages; i++) await tx.write(`${n}/ring-ref${i}`, String(this.ringRefs[i]));
    }
    await tx.write(`${n}/event-channel`, String(port));
    await tx.write(`${n}/protocol`, "x86_64-abi");
    await tx.write(`${n}/feature-persistent`, this.drv.persistent ? "1" : "0");
    this.sring = sring;
    this.front = new FrontRing(sring);
    // blkif_recover: the old shadow's requests wait at the head of the queue, in issue order.
    const size = sring.size;
    this.shadow = new Array<Shadow | null>(size).fill(null);
    this.shadowPool = Array.from({ length: size }, () => ({
      part: { bio: NO_BIO, off: 0, nsec: 0 },
      seq: 0,
      operation: 0,
      pages: [],
      grefs: [],
      indirectPages: [],
      indirectGrefs: [],
    }));
    this.freeIds = [];
    for (let id = size - 1; id >= 0; id--) this.freeIds.push(id);
    return 0;
  }

  /** @internal blkfront_connect: read the disk's properties and features, go. */
  async connect(dev: XenbusDevice): Promise<number> {
    const rd = async (k: string) => dev.readOtherend(k);
    const num = async (k: string, d = -1) => {
      const s = await rd(k);
      return s === null ? d : parseXenbusUint(s, Number.MAX_SAFE_INTEGER);
    };
    const sectors = await num("sectors");
    const sectorSize = await num("sector-size");
    const info = await num("info", 0);
    if (sectors < 0 || sectorSize !== SECTOR || info < 0) {
      await dev.fatal(-EINVAL, `reading backend fields at ${dev.otherend}`);
      return -EINVAL;
    }
    const beIndirect = await num("feature-max-indirect-segments", 0);
    const ind = Math.min(this.drv.maxIndirectSegments, Math.max(0, beIndirect));
    const f: BlkfrontFeatures = {
      sectors,
      sectorSize,
      physicalSectorSize: await num("physical-sector-size", SECTOR),
      info,
      readonly: (info & VDISK_READONLY) !== 0,
      flush: (await num("feature-flush-cache", 0)) === 1,
      barrier: (await num("feature-barrier", 0)) === 1,
      discard: (await num("feature-discard", 0)) === 1,
      discardSecure: (await num("discard-secure", 0)) === 1,
      persistent: this.drv.persistent && (await num("feature-persistent", 0)) === 1,
      maxSegments: Math.max(ind, BLKIF_MAX_SEGMENTS_PER_REQUEST),
      ringPageOrder: this.ringOrder,
    };
    if (this.features !== null) this.reconnects++;
    this.features = f;
    this.state = "connected";
    for (const w of this.waiters.splice(0)) w();
    this.pump();
    return 0;
  }

  /**
   * @internal blkif_free with blkif_recover's first half: answers already on the ring are
   * taken, the unanswered requests go back to the queue's head in issue order, every grant
   * (persistent ones too) is ended, the port is closed.
   */
  disconnect(): void {
    this.draining = true;
    if (this.state === "connected") this.interrupt();
    this.draining = false;
    const held: Shadow[] = [];
    for (let id = 0; id < this.shadow.length; id++) {
      const sh = this.shadow[id];
      if (sh !== null && sh !== undefined) held.push(sh);
    }
    held.sort((a, b) => a.seq - b.seq);
    for (const sh of held) this.release(sh);
    this.queue.unshift(...held.map((sh) => sh.part));
    this.recovered += held.length;
    this.shadow = [];
    this.freeIds = [];
    if (this.irq >= 0) this.drv.kernel.evtchn.unbindFromIrqHandler(this.irq);
    this.irq = -1;
    for (const ref of this.ringRefs) this.drv.gnttab.endForeignAccess(ref);
    this.ringRefs = [];
    for (const [page, ref] of this.pgrant) {
      if (!this.drv.gnttab.endForeignAccess(ref)) {
        const i = this.freePages.indexOf(page);
        if (i >= 0) this.freePages.splice(i, 1);
        this.leakedPages++;
      }
    }
    this.pgrant.clear();
    this.sring = null;
    this.front = null;
    if (this.state === "connected") this.state = "disconnected";
  }
}
