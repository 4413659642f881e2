/*
 * Xen's DMA ops for a PV kernel, after Linux's drivers/xen/swiotlb-xen.c: a device is handed
 * machine addresses (mfn << 12 | offset, through the P2M), and a buffer a device could not
 * reach as it is (its frames are not machine-contiguous, or part of it fails the device's
 * mask) is bounced through the swiotlb pool, which XENMEM_exchange made machine-contiguous
 * and low.
 *
 * Invariants:
 * - Every bus address handed out is a machine address inside the buffer's own frames (a
 *   direct mapping) or inside a pool slot run allocated for it (a bounce), and it passes the
 *   device's mask whole; otherwise the answer is DMA_MAPPING_ERROR.
 * - Bytes move only between a buffer and its own bounce slots: in on map and sync-for-device
 *   when the direction is DMA_TO_DEVICE or DMA_BIDIRECTIONAL, out on unmap and sync-for-cpu
 *   when it is DMA_FROM_DEVICE or DMA_BIDIRECTIONAL, never more than the mapping's size.
 * - Nothing a driver passes as an address or size throws (a bad one is a mapping error or
 *   ignored); only a direction that is none of the three throws (a driver bug).
 * - Copies go through one preallocated page buffer and views of it cached per length: a map,
 *   sync or unmap allocates nothing once warmed.
 */
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_MIN_MASK_BITS,
  DMA_TO_DEVICE,
  type DmaDevice,
  type DmaDirection,
  type DmaSgEntry,
  dmaCapable,
  type GuestKernel,
  type PvDmaOps,
} from "@hyperlab/guest";
import { type ContigCounts, xenCreateContiguousRegion, xenDestroyContiguousRegion } from "./contig";
import { swiotlbError } from "./errors";
import { IO_TLB_SEGMENT_ORDER, IO_TLB_SEGMENT_PAGES, IO_TLB_SIZE, SwiotlbPool } from "./pool";

const PAGE = 4096;
/** Linux's MAX_DMA_BITS in xen_swiotlb_fixup: the widest address a pool segment may use. */
export const MAX_DMA_BITS = 32;

/** What the Xen DMA ops count. */
export interface SwiotlbCounts extends ContigCounts {
  maps: number;
  unmaps: number;
  /** Maps that went through the pool. */
  bounces: number;
  mappingErrors: number;
  /** Bytes copied into bounce slots (for the device) and out of them (for the CPU). */
  bytesIn: number;
  bytesOut: number;
  /** Pages currently handed out by allocCoherent. */
  coherentPages: number;
  /** Unmaps and syncs of a bus address no live bounce has (ignored, as a driver bug). */
  strayUnmaps: number;
}

export interface SwiotlbOptions {
  /** Pool size in bytes, a multiple of 256 KiB (Linux's swiotlb= option; default 1 MiB). */
  poolBytes?: number;
  /** Bounce every mapping (Linux's swiotlb=force). */
  force?: boolean;
}

function checkDirection(dir: number): void {
  if (dir !== DMA_BIDIRECTIONAL && dir !== DMA_TO_DEVICE && dir !== DMA_FROM_DEVICE) {
    throw swiotlbError(
      "SWIOTLB_BAD_DIRECTION",
      `DMA direction ${dir} is not DMA_BIDIRECTIONAL, DMA_TO_DEVICE or DMA_FROM_DEVICE. Map with the direction the transfer goes.`,
    );
  }
}

/** XENMEMF_address_bits for a mask width (Linux's fls64(mask)); 0 means no limit. */
function addressBitsOf(maskBits: number): number {
  return maskBits >= 53 ? 0 : maskBits;
}

/** pv_ops.dma for a Xen PV kernel (swiotlb-xen). Build it with swiotlbDma(). */
export class SwiotlbXen implements PvDmaOps {
  readonly kernel: GuestKernel;
  readonly pool: SwiotlbPool;
  readonly force: boolean;
  readonly counts: SwiotlbCounts = {
    maps: 0,
    unmaps: 0,
    bounces: 0,
    mappingErrors: 0,
    bytesIn: 0,
    bytesOut: 0,
    coherentPages: 0,
    strayUnmaps: 0,
    exchanges: 0,
    exchangeFailures: 0,
  };
  /** The pool's state: not yet built, built, or failed (then every bounce is a mapping error). */
  poolState: "unset" | "ready" | "failed" = "unset";
  /** The errno that failed the pool, or 0. */
  poolError = 0;
  /** The address width the last pool segment was exchanged below (xen_swiotlb_fixup's dma_bits). */
  poolDmaBits = 0;
  private readonly p2m: Float64Array;
  private readonly nrPfns: number;
  private readonly scratch = new Uint8Array(PAGE);
  private readonly views: (Uint8Array | undefined)[] = new Array(PAGE + 1);
  /** Per pfn: 1 + order of a coherent allocation starting here, 0 otherwise. */
  private readonly coherentHead: Uint8Array;
  /** Per pfn: 1 when that coherent allocation was exchanged (Linux's PageXenRemapped). */
  private readonly remapped: Uint8Array;

  constructor(kernel: GuestKernel, options: SwiotlbOptions = {}) {
    if (kernel.xen === null) {
      throw swiotlbError(
        "SWIOTLB_NOT_XEN_PV",
        "swiotlbDma() serves a Xen PV kernel (bus address = machine frame); a native kernel keeps dma-direct. Boot with bootXenPvKernel, or leave the plugin out.",
      );
    }
    const bytes = options.poolBytes ?? 1 << 20;
    if (!Number.isInteger(bytes) || bytes <= 0 || bytes % (IO_TLB_SIZE * 128) !== 0) {
      throw swiotlbError(
        "SWIOTLB_BAD_OPTIONS",
        `poolBytes must be a positive multiple of 256 KiB (one swiotlb segment), got ${bytes}.`,
      );
    }
    this.kernel = kernel;
    this.p2m = kernel.xen.p2m;
    this.nrPfns = kernel.xen.nrPages;
    this.pool = new SwiotlbPool(bytes / (IO_TLB_SIZE * 128));
    this.force = options.force ?? false;
    this.coherentHead = new Uint8Array(this.nrPfns);
    this.remapped = new Uint8Array(this.nrPfns);
  }

  /**
   * Builds the pool (xen_swiotlb_init + xen_swiotlb_fixup) if it is not built yet: pfn runs
   * from the page allocator, each segment exchanged into one machine-contiguous extent below
   * 2^bits, bits starting at the segment's own size (18) and widened up to 32. True when ready.
   */
  initPool(): boolean {
    if (this.poolState !== "unset") return this.poolState === "ready";
    const k = this.kernel;
    const pool = this.pool;
    let bits = IO_TLB_SEGMENT_ORDER + 12;
    let s = 0;
    while (s < pool.nsegs) {
      const block = k.allocHugePage();
      if (block < 0) return this.failPool(-12);
      const per = 512 / IO_TLB_SEGMENT_PAGES;
      let used = 0;
      for (; used < per && s < pool.nsegs; used++, s++) {
        const pfn = block + used * IO_TLB_SEGMENT_PAGES;
        let rc: number;
        for (;;) {
          rc = xenCreateContiguousRegion(k, pfn, IO_TLB_SEGMENT_ORDER, bits, this.counts);
          if (rc >= 0 || bits >= MAX_DMA_BITS) break;
          bits++;
        }
        if (rc < 0) {
          for (let p = block + used * IO_TLB_SEGMENT_PAGES; p < block + 512; p++) k.freePage(p);
          return this.failPool(rc);
        }
        pool.segPfn[s] = pfn;
        pool.segMaddr[s] = rc;
      }
      for (let p = block + used * IO_TLB_SEGMENT_PAGES; p < block + 512; p++) k.freePage(p);
    }
    this.poolDmaBits = bits;
    this.poolState = "ready";
    return true;
  }

  private failPool(rc: number): boolean {
    this.poolState = "failed";
    this.poolError = rc;
    return false;
  }

  /** xen_phys_to_dma for a pfn and byte offset in it. */
  busOf(pfn: number, offset: number): number {
    return this.p2m[pfn] * PAGE + offset;
  }

  /** range_straddles_page_boundary: whether the buffer's frames are not machine-contiguous. */
  straddles(pfn: number, offset: number, size: number): boolean {
    const nr = Math.ceil((offset + size) / PAGE);
    let prev = this.p2m[pfn];
    for (let i = 1; i < nr; i++) {
      const next = this.p2m[pfn + i];
      if (next !== prev + 1) return true;
      prev = next;
    }
    return false;
  }

  private view(n: number): Uint8Array {
    let v = this.views[n];
    if (v === undefined) {
      v = this.scratch.subarray(0, n);
      this.views[n] = v;
    }
    return v;
  }

  /** Copies between the buffer at pseudo-physical `phys` and machine address `maddr`. */
  private copy(phys: number, maddr: number, size: number, toPool: boolean): void {
    const ram = this.kernel.ram;
    let done = 0;
    while (done < size) {
      const p = phys + done;
      const pfn = Math.floor(p / PAGE);
      const off = p - pfn * PAGE;
      const n = Math.min(size - done, PAGE - off);
      const v = this.view(n);
      const bufMaddr = this.p2m[pfn] * PAGE + off;
      if (toPool) {
        ram.readInto(bufMaddr, v);
        ram.writeBytes(maddr + done, v);
      } else {
        ram.readInto(maddr + done, v);
        ram.writeBytes(bufMaddr, v);
      }
      done += n;
    }
    if (toPool) this.counts.bytesIn += size;
    else this.counts.bytesOut += size;
  }

  private mapOne(dev: DmaDevice, pfn: number, offset: number, size: number, dir: number): number {
    if (
      !Number.isSafeInteger(pfn) ||
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(size) ||
      pfn < 0 ||
      offset < 0 ||
      size <= 0 ||
      pfn * PAGE + offset + size > this.nrPfns * PAGE
    ) {
      this.counts.mappingErrors++;
      return DMA_MAPPING_ERROR;
    }
    pfn += Math.floor(offset / PAGE);
    offset %= PAGE;
    if (this.p2m[pfn] < 0) {
      this.counts.mappingErrors++;
      return DMA_MAPPING_ERROR;
    }
    const bus = this.busOf(pfn, offset);
    if (
      !this.force &&
      dmaCapable(dev.dmaMaskBits, bus, size) &&
      !this.straddles(pfn, offset, size)
    ) {
      this.counts.maps++;
      return bus;
    }
    // swiotlb_tbl_map_single
    if (!this.initPool()) {
      this.counts.mappingErrors++;
      return DMA_MAPPING_ERROR;
    }
    const phys = pfn * PAGE + offset;
    const slot = this.pool.alloc(phys, size);
    if (slot < 0) {
      this.counts.mappingErrors++;
      return DMA_MAPPING_ERROR;
    }
    const tlb = this.pool.slotMaddr(slot);
    if (!dmaCapable(dev.dmaMaskBits, tlb, size)) {
      this.pool.release(slot);
      this.counts.mappingErrors++;
      return DMA_MAPPING_ERROR;
    }
    if (dir === DMA_TO_DEVICE || dir === DMA_BIDIRECTIONAL) this.copy(phys, tlb, size, true);
    this.counts.maps++;
    this.counts.bounces++;
    return tlb;
  }

  /** The pool slot a bus address names, if it is inside a live bounce; else -1. */
  private liveSlot(bus: number): number {
    if (this.poolState !== "ready" || !Number.isFinite(bus)) return -1;
    const slot = this.pool.slotOf(bus);
    if (slot < 0 || this.pool.allocSize[slot] <= 0) return -1;
    return slot;
  }

  /** swiotlb_sync_single / the copy half of unmap: `size` bytes from `bus` on. */
  private bounceCopy(bus: number, size: number, toPool: boolean): void {
    const slot = this.liveSlot(bus);
    if (slot < 0) {
      if (this.poolState === "ready" && this.pool.slotOf(bus) >= 0) this.counts.strayUnmaps++;
      return;
    }
    const within = bus - this.pool.slotMaddr(slot);
    const left = this.pool.allocSize[slot] - within;
    const n = Math.min(Number.isSafeInteger(size) && size > 0 ? size : 0, left);
    if (n > 0) this.copy(this.pool.origPhys[slot] + within, bus, n, toPool);
  }

  private unmapOne(bus: number): void {
    this.counts.unmaps++;
    const slot = this.liveSlot(bus);
    if (slot < 0) {
      if (this.poolState === "ready" && this.pool.slotOf(bus) >= 0) this.counts.strayUnmaps++;
      return;
    }
    if (bus !== this.pool.slotMaddr(slot) || !this.pool.release(slot)) {
      this.counts.strayUnmaps++;
    }
  }

  mapPage(dev: DmaDevice, pfn: number, offset: number, size: number, dir: DmaDirection): number {
    checkDirection(dir);
    return this.mapOne(dev, pfn, offset, size, dir);
  }

  unmapPage(_dev: DmaDevice, busAddr: number, size: number, dir: DmaDirection): void {
    checkDirection(dir);
    if (dir === DMA_FROM_DEVICE || dir === DMA_BIDIRECTIONAL) this.bounceCopy(busAddr, size, false);
    this.unmapOne(busAddr);
  }

  mapSg(dev: DmaDevice, sg: DmaSgEntry[], dir: DmaDirection): number {
    checkDirection(dir);
    for (let i = 0; i < sg.length; i++) {
      const e = sg[i];
      const bus = this.mapOne(dev, e.pfn, e.offset, e.length, dir);
      if (bus === DMA_MAPPING_ERROR) {
        // Undo what was mapped, without copying back (DMA_ATTR_SKIP_CPU_SYNC).
        for (let j = 0; j < i; j++) {
          this.unmapOne(sg[j].busAddr);
          sg[j].busAddr = DMA_MAPPING_ERROR;
          sg[j].busLength = 0;
        }
        return 0;
      }
      e.busAddr = bus;
      e.busLength = e.length;
    }
    return sg.length;
  }

  unmapSg(dev: DmaDevice, sg: DmaSgEntry[], dir: DmaDirection): void {
    checkDirection(dir);
    for (const e of sg) {
      if (e.busAddr === DMA_MAPPING_ERROR) continue;
      this.unmapPage(dev, e.busAddr, e.busLength, dir);
      e.busAddr = DMA_MAPPING_ERROR;
      e.busLength = 0;
    }
  }

  syncSingleForCpu(_dev: DmaDevice, busAddr: number, size: number, dir: DmaDirection): void {
    checkDirection(dir);
    if (dir === DMA_FROM_DEVICE || dir === DMA_BIDIRECTIONAL) this.bounceCopy(busAddr, size, false);
  }

  syncSingleForDevice(_dev: DmaDevice, busAddr: number, size: number, dir: DmaDirection): void {
    checkDirection(dir);
    if (dir === DMA_TO_DEVICE || dir === DMA_BIDIRECTIONAL) this.bounceCopy(busAddr, size, true);
  }

  syncSgForCpu(dev: DmaDevice, sg: DmaSgEntry[], dir: DmaDirection): void {
    checkDirection(dir);
    for (const e of sg) {
      if (e.busAddr !== DMA_MAPPING_ERROR) this.syncSingleForCpu(dev, e.busAddr, e.busLength, dir);
    }
  }

  syncSgForDevice(dev: DmaDevice, sg: DmaSgEntry[], dir: DmaDirection): void {
    checkDirection(dir);
    for (const e of sg) {
      if (e.busAddr !== DMA_MAPPING_ERROR)
        this.syncSingleForDevice(dev, e.busAddr, e.busLength, dir);
    }
  }

  /**
   * xen_swiotlb_alloc_coherent: 2^order contiguous pfns, zeroed; exchanged for one machine
   * extent below the coherent mask when their frames fail it or are not contiguous. Null
   * when memory or the exchange fails.
   */
  allocCoherent(dev: DmaDevice, size: number): { pfn: number; va: number; busAddr: number } | null {
    if (!Number.isSafeInteger(size) || size <= 0 || size > 512 * PAGE) return null;
    const k = this.kernel;
    let order = 0;
    while (2 ** order * PAGE < size) order++;
    const n = 2 ** order;
    // One page comes from the free list; a larger run from a free 2 MiB block.
    const block = order === 0 ? k.allocPage() : k.allocHugePage();
    if (block < 0) return null;
    if (order > 0) for (let p = block + n; p < block + 512; p++) k.freePage(p);
    let bus = this.busOf(block, 0);
    let exchanged = false;
    if (!dmaCapable(dev.coherentDmaMaskBits, bus, n * PAGE) || this.straddles(block, 0, n * PAGE)) {
      const rc = xenCreateContiguousRegion(
        k,
        block,
        order,
        addressBitsOf(dev.coherentDmaMaskBits),
        this.counts,
      );
      if (rc < 0) {
        for (let p = block; p < block + n; p++) k.freePage(p);
        return null;
      }
      bus = rc;
      exchanged = true;
    }
    for (let p = block; p < block + n; p++) k.clearPage(p);
    this.coherentHead[block] = order + 1;
    this.remapped[block] = exchanged ? 1 : 0;
    this.counts.coherentPages += n;
    return { pfn: block, va: k.physVa(block), busAddr: bus };
  }

  /** xen_swiotlb_free_coherent: undoes the exchange (if any) and frees the pages. */
  freeCoherent(_dev: DmaDevice, _size: number, pfn: number, _busAddr: number): void {
    if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= this.nrPfns) return;
    const head = this.coherentHead[pfn];
    if (head === 0) {
      this.counts.strayUnmaps++;
      return;
    }
    const order = head - 1;
    const n = 2 ** order;
    if (this.remapped[pfn] !== 0) {
      // If Xen refuses, the pages keep their contiguous frames: still the kernel's, still freeable.
      xenDestroyContiguousRegion(this.kernel, pfn, order, this.counts);
    }
    this.coherentHead[pfn] = 0;
    this.remapped[pfn] = 0;
    for (let p = pfn; p < pfn + n; p++) this.kernel.freePage(p);
    this.counts.coherentPages -= n;
  }

  /** xen_swiotlb_dma_supported: the pool's highest machine address fits the mask. */
  dmaSupported(_dev: DmaDevice, maskBits: number): boolean {
    if (!Number.isInteger(maskBits) || maskBits < DMA_MIN_MASK_BITS || maskBits > 64) return false;
    if (!this.initPool()) return false;
    return dmaCapable(maskBits, 0, this.pool.bounds().end);
  }
}
