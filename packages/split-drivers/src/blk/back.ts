/*
 * blkback: the block backend in the driver domain's kernel, serving a file-backed raw image
 * to a domU's blkfront, as Linux's drivers/block/xen-blkback/{xenbus.c,blkback.c} do
 * (probe publishes features; connect_ring maps the ring and binds the event channel;
 * do_block_io_op / dispatch_rw_block_io / dispatch_discard_io answer requests). Three data
 * modes: "map" (GNTTABOP_map_grant_ref per request, unmapped after the I/O, as blkback
 * without persistent grants), "copy" (GNTTABOP_copy between the frontend's grants and the
 * backend's own buffer frames, as QEMU's xen-block does) and "persistent" (grants mapped once
 * and kept, at most `maxPersistentGrants`, the least recently used purged, as blkback's
 * feature-persistent). Hypervisor services are reached only by hypercall from dom0's vCPU.
 *
 * Invariants:
 * - Nothing a frontend writes (ring indices, request bytes, xenstore keys) makes this code
 *   throw. A malformed request gets BLKIF_RSP_ERROR, an unknown operation
 *   BLKIF_RSP_EOPNOTSUPP; a req_prod more than a ring ahead halts the ring (blkback's
 *   "Frontend provided bogus ring requests", -EACCES, no more processing until reconnect).
 * - The backend touches guest memory only through frames the hypervisor handed it for this
 *   frontend (a map that succeeded, or a grant copy it checked) and only until it unmaps
 *   them; every such frame, and its own buffer frames, is reported to `onTouch`.
 * - Each request is copied out of the ring before it is checked (RING_COPY_REQUEST). I/O is
 *   synchronous, so when a request is taken every earlier one is complete: a barrier's drain
 *   is satisfied by construction; the barrier's write is followed by an fsync.
 * - Every mapping is undone on disconnect, persistent grants included.
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from "node:fs";
import {
  BLKIF_DISCARD_SECURE,
  BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
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
  ENOENT,
  ENOSYS,
  VDISK_READONLY,
} from "@hyperlab/abi";
import type { Stats } from "@hyperlab/core";
import { BackRing, RING_MAX_ORDER, SharedRing } from "../ring";
import type { XenbusDevice, XenbusDriver, XenbusKernel } from "../xenbus/device";
import { parseXenbusUint } from "../xenbus/state";
import { BlkbackGrants, type Mapping } from "./back-grants";
import {
  BLKBACK_MAX_INDIRECT_SEGMENTS,
  BLKBACK_MAX_PERSISTENT_GRANTS,
  BLKIF_ENTRY_BYTES,
  BLKIF_RESPONSE_BYTES,
  BLKIF_SECTORS_PER_PAGE,
  BLKIF_SEGS_PER_INDIRECT_FRAME,
  type BlkCounters,
  BlkError,
  BlkifRequest,
  blkCounters,
  decodeRequest,
  readSegment,
  writeResponse,
} from "./blkif";

/** How the backend reaches the frontend's data pages. */
export type BlkbackMode = "map" | "copy" | "persistent";

export interface BlkbackOptions {
  /** The raw image: a path, or one per device (`domid`, `devid`) as libxl's `params`. */
  image: string | ((domid: number, devid: number) => string);
  /** Data mode (default "map"). "persistent" falls back to "map" if the frontend declines. */
  mode?: BlkbackMode;
  /**
   * Serve every image read-only (`info` gets VDISK_READONLY; writes, flushes, barriers and
   * discards answer ERROR). Without it each vbd is read-only when its backend node's `mode`
   * (written by the toolstack: `r` or `w`) has no `w`, as xen-blkback's backend_changed reads it.
   */
  readonly?: boolean;
  /** max-ring-page-order advertised (0..4, default 4: blkback's xen_blkif_max_ring_order). */
  maxRingPageOrder?: number;
  /** feature-max-indirect-segments advertised (0 = no indirect; default 256). */
  maxIndirectSegments?: number;
  /** Persistent grants kept per device before the LRU purge (default 1056). */
  maxPersistentGrants?: number;
  /** feature-flush-cache / feature-barrier / feature-discard (default all true). */
  flush?: boolean;
  barrier?: boolean;
  discard?: boolean;
  /** discard-secure (default true): BLKIF_DISCARD_SECURE overwrites with zeros and syncs. */
  discardSecure?: boolean;
  /** Requests answered per scheduling round before yielding (default 64). */
  batch?: number;
  /** Called for every machine frame whose bytes the backend reads or writes (an audit hook). */
  onTouch?: (mfn: number, write: boolean) => void;
}

/** One connected device (blkback's struct xen_blkif with its one ring). */
interface Vbd {
  dev: XenbusDevice;
  fd: number;
  sectors: number;
  readonly: boolean;
  sring: SharedRing;
  back: BackRing;
  ringMaps: Mapping[];
  irq: number;
  persistent: boolean;
  /** Persistent grants by gref, least recently used first (Map keeps insertion order). */
  pgnts: Map<number, Mapping>;
  halted: boolean;
  scheduled: boolean;
  alive: boolean;
}

const SECTOR = 512;
/** Buffer frames of the copy mode: requests larger than this go in several passes. */
const COPY_CHUNK = 32;

/** blkback in a driver domain's kernel: a xenbus backend driver of type `vbd`. */
export class BlkBack implements XenbusDriver {
  readonly type = "vbd";
  readonly mode: BlkbackMode;
  /** Counters with units (group `blkback`): hypercalls, grant ops, notifications, copies... */
  readonly stats: Stats;
  /** Times a frontend's req_prod ran more than a ring ahead and its ring was halted. */
  haltedRings = 0;
  private readonly c: BlkCounters;
  private readonly kernel: XenbusKernel;
  private readonly opts: Required<Omit<BlkbackOptions, "onTouch" | "image">>;
  private readonly image: (domid: number, devid: number) => string;
  private readonly touch: ((mfn: number, write: boolean) => void) | undefined;
  private readonly vbds = new Map<string, Vbd>();
  private readonly maxSegs: number;
  private readonly slot = new Uint8Array(BLKIF_ENTRY_BYTES);
  private readonly slotView = new DataView(this.slot.buffer);
  private readonly req: BlkifRequest;
  /** Per segment of the request in hand: the frame and whether it came from a temporary map. */
  private readonly segMfn: Float64Array;
  private readonly g: BlkbackGrants;
  private readonly zeros = new Uint8Array(64 * 1024);

  constructor(kernel: XenbusKernel, options: BlkbackOptions) {
    const o = options ?? ({} as BlkbackOptions);
    const mode = o.mode ?? "map";
    if (mode !== "map" && mode !== "copy" && mode !== "persistent") {
      throw new BlkError(
        "BLK_BAD_OPTION",
        `blkback mode must be "map", "copy" or "persistent", got ${JSON.stringify(mode)}.`,
      );
    }
    if (typeof o.image !== "string" && typeof o.image !== "function") {
      throw new BlkError(
        "BLK_BAD_OPTION",
        "blkback needs `image`: the path of a raw disk image, or a function (domid, devid) => path.",
      );
    }
    const intIn = (name: string, v: number | undefined, d: number, lo: number, hi: number) => {
      const x = v ?? d;
      if (!Number.isInteger(x) || x < lo || x > hi) {
        throw new BlkError(
          "BLK_BAD_OPTION",
          `blkback option ${name} must be a whole number from ${lo} to ${hi}, got ${v}.`,
        );
      }
      return x;
    };
    this.kernel = kernel;
    this.mode = mode;
    this.opts = {
      mode,
      readonly: o.readonly ?? false,
      maxRingPageOrder: intIn("maxRingPageOrder", o.maxRingPageOrder, RING_MAX_ORDER, 0, 4),
      maxIndirectSegments: intIn(
        "maxIndirectSegments",
        o.maxIndirectSegments,
        BLKBACK_MAX_INDIRECT_SEGMENTS,
        0,
        BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BLKIF_SEGS_PER_INDIRECT_FRAME,
      ),
      maxPersistentGrants: intIn(
        "maxPersistentGrants",
        o.maxPersistentGrants,
        BLKBACK_MAX_PERSISTENT_GRANTS,
        1,
        1 << 20,
      ),
      flush: o.flush ?? true,
      barrier: o.barrier ?? true,
      discard: o.discard ?? true,
      discardSecure: o.discardSecure ?? true,
      batch: intIn("batch", o.batch, 64, 1, 1 << 20),
    };
    const img = o.image;
    this.image = typeof img === "string" ? () => img : img;
    this.touch = o.onTouch;
    this.maxSegs = Math.max(BLKIF_MAX_SEGMENTS_PER_REQUEST, this.opts.maxIndirectSegments);
    this.req = new BlkifRequest(this.maxSegs);
    this.segMfn = new Float64Array(this.maxSegs);
    const { stats, counters } = blkCounters("blkback");
    this.stats = stats;
    this.c = counters;
    this.g = new BlkbackGrants(
      kernel,
      counters,
      this.maxSegs + BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
    );
  }

  /** Whether the device of frontend `domid`, `devid` is connected (ring mapped, port bound). */
  connected(domid: number, devid: number): boolean {
    return this.vbds.get(`${domid}/${devid}`)?.alive === true;
  }

  /** Persistent grants currently mapped for a device. */
  persistentGrants(domid: number, devid: number): number {
    return this.vbds.get(`${domid}/${devid}`)?.pgnts.size ?? 0;
  }

  // ---- xenbus.c ----

  /** xen_blkbk_probe + the feature writes: what this backend offers, before InitWait. */
  async probe(dev: XenbusDevice): Promise<number> {
    const o = this.opts;
    const keys: [string, string][] = [
      ["feature-flush-cache", o.flush ? "1" : "0"],
      ["feature-barrier", o.barrier ? "1" : "0"],
      ["feature-persistent", this.mode === "persistent" ? "1" : "0"],
      ["feature-max-indirect-segments", String(o.maxIndirectSegments)],
      ["max-ring-page-order", String(o.maxRingPageOrder)],
    ];
    if (o.discard) {
      keys.push(
        ["feature-discard", "1"],
        ["discard-granularity", String(SECTOR)],
        ["discard-alignment", "0"],
        ["discard-secure", o.discardSecure ? "1" : "0"],
      );
    }
    for (const [k, v] of keys) {
      const rc = await dev.write(k, v);
      if (rc < 0) return rc;
    }
    return 0;
  }

  /** connect_ring + connect: read the frontend's keys, map, bind, publish the disk. */
  async connect(dev: XenbusDevice): Promise<number> {
    const key = `${dev.otherendId}/${dev.devid}`;
    const rd = (k: string) => dev.readOtherend(k);
    const protocol = await rd("protocol");
    if (protocol !== null && protocol !== "x86_64-abi") {
      await dev.fatal(-ENOSYS, `unknown fe protocol ${protocol}`);
      return -ENOSYS;
    }
    const orderStr = await rd("ring-page-order");
    const order = orderStr === null ? 0 : parseXenbusUint(orderStr, this.opts.maxRingPageOrder + 1);
    if (order < 0) {
      await dev.fatal(-EINVAL, `${dev.otherend}/ring-page-order ${orderStr} too big`);
      return -EINVAL;
    }
    const refs: number[] = [];
    for (let i = 0; i < 1 << order; i++) {
      const r = parseXenbusUint(await rd(orderStr === null ? "ring-ref" : `ring-ref${i}`));
      if (r < 0) {
        await dev.fatal(-EINVAL, `reading ${dev.otherend}/ring-ref`);
        return -EINVAL;
      }
      refs.push(r);
    }
    const port = parseXenbusUint(await rd("event-channel"));
    if (port < 0) {
      await dev.fatal(-EINVAL, `reading ${dev.otherend}/event-channel`);
      return -EINVAL;
    }
    const persistent = this.mode === "persistent" && (await rd("feature-persistent")) === "1";
    // backend_changed: xen_vbd_create(..., readonly = !strchr(mode, 'w')).
    const mode = await dev.read("mode");
    const readonly = this.opts.readonly || (mode !== null && !mode.includes("w"));

    let fd = -1;
    let sectors = 0;
    try {
      fd = openSync(this.image(dev.otherendId, dev.devid), readonly ? "r" : "r+");
      sectors = imageSectors(fd);
    } catch (e) {
      if (fd >= 0) closeSync(fd);
      await dev.fatal(-ENOENT, `opening the image: ${(e as Error).message}`);
      return -ENOENT;
    }
    // xenbus_map_ring_valloc of all the ring's pages in one batch.
    const maps = this.g.mapRing(refs, dev.otherendId);
    // The ring is one virtually contiguous area; this model needs the frames contiguous.
    let bad = maps.length !== refs.length;
    for (let i = 1; i < maps.length && !bad; i++) {
      if (maps[i]!.mfn !== maps[0]!.mfn + i || maps[0]!.mfn % (1 << order) !== 0) bad = true;
    }
    if (bad) {
      this.g.unmapAll(maps, false);
      closeSync(fd);
      await dev.fatal(-EINVAL, `mapping ring-ref ${refs.join(",")} of domain ${dev.otherendId}`);
      return -EINVAL;
    }
    const ram = this.kernel.hv.machine.ram;
    const first = ram.frameBytes(maps[0]!.mfn);
    const bytes = new Uint8Array(first.buffer, first.byteOffset, 4096 << order);
    for (const m of maps) this.touch?.(m.mfn, true);
    const sring = new SharedRing(bytes, BLKIF_ENTRY_BYTES, order);
    const vbd: Vbd = {
      dev,
      fd,
      sectors,
      readonly,
      sring,
      back: new BackRing(sring),
      ringMaps: maps,
      irq: -1,
      persistent,
      pgnts: new Map(),
      halted: false,
      scheduled: false,
      alive: true,
    };
    const irq = this.kernel.evtchn.bindInterdomainEvtchnToIrqHandler(dev.otherendId, port, () =>
      this.schedule(vbd),
    );
    if (irq < 0) {
      this.g.unmapAll(maps, false);
      closeSync(fd);
      await dev.fatal(irq, `binding event-channel ${port} of domain ${dev.otherendId}`);
      return irq;
    }
    vbd.irq = irq;
    this.vbds.set(key, vbd);
    // connect(): the disk's properties, then the caller switches to Connected.
    const info = readonly ? VDISK_READONLY : 0;
    for (const [k, v] of [
      ["sectors", String(sectors)],
      ["info", String(info)],
      ["sector-size", String(SECTOR)],
      ["physical-sector-size", String(SECTOR)],
    ] as const) {
      const w = await dev.write(k, v);
      if (w < 0) return w;
    }
    // Requests the frontend pushed before we bound are looked at now.
    this.schedule(vbd);
    return 0;
  }

  /** xen_blkif_disconnect: stop the ring, drop every mapping, unbind, close the image. */
  disconnect(dev: XenbusDevice): void {
    const key = `${dev.otherendId}/${dev.devid}`;
    const v = this.vbds.get(key);
    if (v === undefined) return;
    this.vbds.delete(key);
    v.alive = false;
    this.kernel.evtchn.unbindFromIrqHandler(v.irq);
    this.g.unmapAll([...v.pgnts.values()]);
    v.pgnts.clear();
    this.g.unmapAll(v.ringMaps, false);
    closeSync(v.fd);
  }

  // ---- blkback.c ----

  /** The irq handler wakes the ring's thread (xen_blkif_be_int): one round, later. */
  private schedule(v: Vbd): void {
    if (v.scheduled || !v.alive) return;
    v.scheduled = true;
    setImmediate(() => this.doBlockIoOp(v));
  }

  /** do_block_io_op: take requests until the ring is idle (final check) or a batch is done. */
  private doBlockIoOp(v: Vbd): void {
    v.scheduled = false;
    if (!v.alive || v.halted) return;
    const back = v.back;
    let done = 0;
    for (;;) {
      const rp = v.sring.reqProd;
      if (back.requestProdOverflow(rp)) {
        // "Frontend provided bogus ring requests": the ring is halted until reconnect.
        v.halted = true;
        this.haltedRings++;
        return;
      }
      while (back.reqCons !== rp) {
        if (back.requestConsOverflow(back.reqCons)) break;
        if (done === this.opts.batch) {
          this.schedule(v);
          return;
        }
        back.consumeRequest(this.slot);
        decodeRequest(this.slotView, this.req);
        const status = this.dispatch(v);
        this.makeResponse(v, status);
        done++;
      }
      if (back.finalCheckForRequests() === 0) return;
    }
  }

  /** make_response: the response in the next slot, push, notify if the frontend asked. */
  private makeResponse(v: Vbd, status: number): void {
    const r = this.req;
    const off = v.back.nextResponseOffset(BLKIF_RESPONSE_BYTES);
    writeResponse(v.sring.view, off, r.idLo, r.idHi, r.operation, status);
    v.back.produceResponse();
    this.c.requests.value++;
    if (status !== BLKIF_RSP_OKAY) this.c.errors.value++;
    if (v.back.pushResponsesAndCheckNotify()) {
      this.c.notifications.value++;
      this.c.hypercalls.value++;
      this.kernel.evtchn.notifyRemoteViaIrq(v.irq);
      this.kernel.kick();
    }
  }

  private dispatch(v: Vbd): number {
    const r = this.req;
    switch (r.operation) {
      case BLKIF_OP_READ:
      case BLKIF_OP_WRITE:
        return this.rw(v, r.operation, false);
      case BLKIF_OP_WRITE_BARRIER: {
        if (!this.opts.barrier) return BLKIF_RSP_EOPNOTSUPP;
        if (v.readonly) return BLKIF_RSP_ERROR; // xen_vbd_translate: access denied
        // Drain: with synchronous I/O nothing earlier is still in flight. Then write, then sync.
        const st = this.rw(v, BLKIF_OP_WRITE, false, true);
        if (st === BLKIF_RSP_OKAY) fsyncSync(v.fd);
        return st;
      }
      case BLKIF_OP_FLUSH_DISKCACHE: {
        if (!this.opts.flush) return BLKIF_RSP_EOPNOTSUPP;
        if (v.readonly) return BLKIF_RSP_ERROR;
        fsyncSync(v.fd); // REQ_PREFLUSH: the cache is flushed before any data
        return r.nrSegments === 0 ? BLKIF_RSP_OKAY : this.rw(v, BLKIF_OP_WRITE, false, true);
      }
      case BLKIF_OP_DISCARD:
        return this.discard(v);
      case BLKIF_OP_INDIRECT:
        if (r.indirectOp !== BLKIF_OP_READ && r.indirectOp !== BLKIF_OP_WRITE) {
          return BLKIF_RSP_ERROR;
        }
        return this.rw(v, r.indirectOp, true);
      default:
        return BLKIF_RSP_EOPNOTSUPP;
    }
  }

  /** dispatch_discard_io: zero the range (no hole punch in node:fs); secure also syncs. */
  private discard(v: Vbd): number {
    const r = this.req;
    if (!this.opts.discard) return BLKIF_RSP_EOPNOTSUPP;
    if (v.readonly) return BLKIF_RSP_ERROR;
    const end = r.sectorNumber + r.nrSectors;
    if (r.sectorHi !== 0 || r.nrSectorsHi !== 0 || end > v.sectors) return BLKIF_RSP_ERROR;
    let pos = r.sectorNumber * SECTOR;
    let left = r.nrSectors * SECTOR;
    while (left > 0) {
      const n = Math.min(left, this.zeros.length);
      writeSync(v.fd, this.zeros, 0, n, pos);
      pos += n;
      left -= n;
    }
    if ((r.flag & BLKIF_DISCARD_SECURE) !== 0 && this.opts.discardSecure) fsyncSync(v.fd);
    return BLKIF_RSP_OKAY;
  }

  /**
   * dispatch_rw_block_io: check the request, reach its pages (map, copy or persistent), do
   * the I/O, release the pages. `op` is READ or WRITE; `indirect` takes the segments from the
   * indirect pages; `flushLike` allows zero segments (a flush or barrier without data).
   */
  private rw(v: Vbd, op: number, indirect: boolean, flushLike = false): number {
    const r = this.req;
    const nseg = r.nrSegments;
    const max = indirect ? this.opts.maxIndirectSegments : BLKIF_MAX_SEGMENTS_PER_REQUEST;
    if ((nseg === 0 && !flushLike) || nseg > max) return BLKIF_RSP_ERROR;
    // xen_vbd_translate: a write (or flush) on a read-only vbd is denied, data or not.
    if (op !== BLKIF_OP_READ && v.readonly) return BLKIF_RSP_ERROR;
    if (nseg === 0) return BLKIF_RSP_OKAY;
    if (indirect && !this.readIndirect(v, nseg)) return BLKIF_RSP_ERROR;
    let nsec = 0;
    for (let i = 0; i < nseg; i++) {
      const f = r.firstSect[i]!;
      const l = r.lastSect[i]!;
      if (l >= BLKIF_SECTORS_PER_PAGE || l < f) return BLKIF_RSP_ERROR;
      nsec += l - f + 1;
    }
    if (r.sectorHi !== 0 || r.sectorNumber + nsec > v.sectors) return BLKIF_RSP_ERROR;
    if (this.mode === "copy") return this.rwCopy(v, op, nseg);
    const write = op !== BLKIF_OP_READ;
    const got = this.g.getPages(
      v.persistent ? v.pgnts : null,
      v.dev.otherendId,
      0,
      nseg,
      !write,
      r.gref,
      this.segMfn,
    );
    let status = got ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR;
    if (got) {
      const ram = this.kernel.hv.machine.ram;
      let pos = r.sectorNumber * SECTOR;
      for (let i = 0; i < nseg; i++) {
        const mfn = this.segMfn[i]!;
        const off = r.firstSect[i]! * SECTOR;
        const len = (r.lastSect[i]! - r.firstSect[i]! + 1) * SECTOR;
        this.touch?.(mfn, !write);
        const page = ram.frameBytes(mfn);
        if (!this.io(v.fd, write, page, off, len, pos)) status = BLKIF_RSP_ERROR;
        pos += len;
      }
    }
    this.g.putPages(nseg);
    if (v.persistent && v.pgnts.size > this.opts.maxPersistentGrants)
      this.g.purgePersistent(v.pgnts, this.opts.maxPersistentGrants);
    return status;
  }

  /** Read an image range into / write it from `page[off, off + len)`; false on an I/O error. */
  private io(fd: number, write: boolean, page: Uint8Array, off: number, len: number, pos: number) {
    try {
      if (write) writeSync(fd, page, off, len, pos);
      else if (readSync(fd, page, off, len, pos) < len) return false;
      return true;
    } catch {
      return false;
    }
  }

  /**
   * xen_blkbk_parse_indirect: reach the indirect pages (read-only), read `nseg` segments out of
   * them into the request, release them. False when a page cannot be reached.
   */
  private readIndirect(v: Vbd, nseg: number): boolean {
    const r = this.req;
    const pages = Math.ceil(nseg / BLKIF_SEGS_PER_INDIRECT_FRAME);
    const ram = this.kernel.hv.machine.ram;
    let ok: boolean;
    if (this.mode === "copy") {
      // Copy the indirect pages into the buffer frames after the data chunk.
      if (!this.g.ensureBuffers(COPY_CHUNK + pages)) return false;
      for (let p = 0; p < pages; p++) {
        this.g.setCopy(
          p,
          true,
          r.indirectGrefs[p]!,
          v.dev.otherendId,
          0,
          this.g.bufFrames[COPY_CHUNK + p]!,
          0,
          4096,
        );
      }
      ok = this.g.copyBatch(pages);
      for (let p = 0; p < pages && ok; p++) this.segMfn[p] = this.g.bufFrames[COPY_CHUNK + p]!;
    } else {
      ok = this.g.getPages(
        v.persistent ? v.pgnts : null,
        v.dev.otherendId,
        0,
        pages,
        false,
        r.indirectGrefs,
        this.segMfn,
      );
    }
    if (ok) {
      for (let p = 0; p < pages; p++) {
        const mfn = this.segMfn[p]!;
        this.touch?.(mfn, false);
        const page = ram.frameBytes(mfn);
        const dv = new DataView(page.buffer, page.byteOffset, 4096);
        const lo = p * BLKIF_SEGS_PER_INDIRECT_FRAME;
        const hi = Math.min(nseg, lo + BLKIF_SEGS_PER_INDIRECT_FRAME);
        for (let i = lo; i < hi; i++) readSegment(dv, (i - lo) * 8, r, i);
      }
    }
    if (this.mode !== "copy") this.g.putPages(pages);
    return ok;
  }

  /** The copy mode: per chunk of buffer frames, grant-copy in (write) or out (read). */
  private rwCopy(v: Vbd, op: number, nseg: number): number {
    const r = this.req;
    if (!this.g.ensureBuffers(COPY_CHUNK)) return BLKIF_RSP_ERROR;
    const ram = this.kernel.hv.machine.ram;
    const write = op !== BLKIF_OP_READ;
    const dom = v.dev.otherendId;
    let pos = r.sectorNumber * SECTOR;
    for (let base = 0; base < nseg; base += COPY_CHUNK) {
      const n = Math.min(COPY_CHUNK, nseg - base);
      for (let i = 0; i < n; i++) {
        const s = base + i;
        const off = r.firstSect[s]! * SECTOR;
        const len = (r.lastSect[s]! - r.firstSect[s]! + 1) * SECTOR;
        this.g.setCopy(i, write, r.gref[s]!, dom, off, this.g.bufFrames[i]!, off, len);
      }
      if (write && !this.g.copyBatch(n)) return BLKIF_RSP_ERROR;
      for (let i = 0; i < n; i++) {
        const s = base + i;
        const off = r.firstSect[s]! * SECTOR;
        const len = (r.lastSect[s]! - r.firstSect[s]! + 1) * SECTOR;
        const mfn = this.g.bufFrames[i]!;
        this.touch?.(mfn, !write);
        if (!this.io(v.fd, write, ram.frameBytes(mfn), off, len, pos)) return BLKIF_RSP_ERROR;
        pos += len;
      }
      if (!write && !this.g.copyBatch(n)) return BLKIF_RSP_ERROR;
    }
    return BLKIF_RSP_OKAY;
  }
}

/**
 * The image's size in 512-byte sectors: a regular file's length, or, for a block device
 * (`phy:` on a device node), what the kernel says in `/sys/dev/block/MAJ:MIN/size` (the
 * sectors BLKGETSIZE64 would give; fstat reports 0 for a device). `sysRoot` is for tests.
 */
export function imageSectors(fd: number, sysRoot = "/sys"): number {
  const st = fstatSync(fd);
  if (!st.isBlockDevice()) return Math.floor(st.size / SECTOR);
  const rdev = st.rdev;
  const major = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xff & 0xfffff);
  const text = readFileSync(`${sysRoot}/dev/block/${major}:${minor}/size`, "latin1").trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new Error(`${sysRoot}/dev/block/${major}:${minor}/size is not a sector count`);
  }
  return n;
}
