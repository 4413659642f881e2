/*
 * The driver's side of a split virtqueue (OASIS virtio v1.2 §2.7; Linux's
 * drivers/virtio/virtio_ring.c, the split half, as reading guide): a descriptor table with a
 * free list threaded through `next`, an available ring the driver produces into, a used ring
 * the device produces into, and notification suppression both ways with VIRTIO_F_EVENT_IDX.
 *
 * The rings live in the guest's own memory (coherent DMA pages); the driver reads and writes
 * them through the kernel's RAM at their physical addresses, which a KVM guest's device sees
 * as guest-physical addresses.
 *
 * Invariants:
 * - A descriptor is either on the free list or in exactly one outstanding chain, whose head
 *   holds the caller's token; numFree counts the free list. With VIRTIO_F_INDIRECT_DESC a chain
 *   of 2 to VIRTQ_INDIRECT_MAX buffers takes one ring descriptor pointing at the indirect table
 *   that belongs to that head (one table per head, so tables need no allocator).
 * - The driver publishes a chain's head in avail.ring before it moves avail.idx (the spec's
 *   write order), and reads a used element only after reading used.idx.
 * - The device is not trusted: a used id that is not an outstanding head, or a used index more
 *   than `num` ahead, marks the queue broken (Linux's BAD_RING) and nothing more is taken
 *   from it; a used length larger than the chain's writable bytes is clamped to them.
 */
import type { GuestKernel } from "@hyperlab/guest";
import {
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_AVAIL_FLAGS,
  VIRTQ_AVAIL_IDX,
  VIRTQ_AVAIL_RING,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_ELEM_SIZE,
  VIRTQ_USED_F_NO_NOTIFY,
  VIRTQ_USED_FLAGS,
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
  virtqAvailBytes,
  virtqAvailEventOffset,
  virtqDescBytes,
  virtqUsedEventOffset,
  vringNeedEvent,
} from "@hyperlab/machine";
import { virtioError } from "./errors";

const PAGE = 4096;
/** Buffers an indirect table holds (512 bytes of descriptors per head). */
export const VIRTQ_INDIRECT_MAX = 32;
const INDIRECT_BYTES = VIRTQ_INDIRECT_MAX * VIRTQ_DESC_SIZE;

/** One buffer of a chain: guest-physical address and length. */
export interface VirtqBuf {
  addr: number;
  len: number;
}

/** Counters of one driver-side queue. */
export interface VirtqueueCounts {
  /** Chains made available, and given back by the device. */
  added: number;
  completed: number;
  /** Kicks sent (QueueNotify writes), and kicks the device's avail_event let us skip. */
  kicks: number;
  kicksSuppressed: number;
  /** Callbacks run from the interrupt. */
  callbacks: number;
  /** Chains made through an indirect table. */
  indirect: number;
}

export class Virtqueue<T = unknown> {
  readonly num: number;
  /** Guest-physical addresses of the three parts. */
  readonly descPa: number;
  readonly availPa: number;
  readonly usedPa: number;
  readonly eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC negotiated: multi-buffer chains use an indirect table. */
  readonly indirect: boolean;
  numFree: number;
  broken: string | null = null;
  readonly counts: VirtqueueCounts = {
    added: 0,
    completed: 0,
    kicks: 0,
    kicksSuppressed: 0,
    callbacks: 0,
    indirect: 0,
  };
  private freeHead = 0;
  private availIdx = 0;
  private lastUsedIdx = 0;
  /** Chains added since the last kick (vq->num_added). */
  private numAdded = 0;
  private readonly tokens: (T | undefined)[];
  /** Writable bytes of each outstanding chain, by head. */
  private readonly inLen: Uint32Array;
  private readonly ram: GuestKernel["ram"];
  private readonly pages: number[] = [];
  /** Pages of the per-head indirect tables (8 heads a page), when indirect. */
  private readonly indirectPages: number[] = [];

  constructor(
    readonly kernel: GuestKernel,
    readonly index: number,
    num: number,
    options: { eventIdx: boolean; indirect?: boolean; notify: (q: number) => void },
  ) {
    if (!(Number.isInteger(num) && num >= 1 && num <= 32768 && (num & (num - 1)) === 0)) {
      throw virtioError(
        "VIRTIO_BAD_OPTION",
        `A split virtqueue's size is a power of two from 1 to 32768, got ${num}.`,
      );
    }
    this.num = num;
    this.eventIdx = options.eventIdx;
    this.indirect = options.indirect ?? false;
    this.notify = options.notify;
    this.ram = kernel.ram;
    // vring_create_virtqueue_split: one physically contiguous area, desc then avail then used
    // (used aligned to 4); pages from the kernel, zeroed.
    const usedOff = Math.ceil((virtqDescBytes(num) + virtqAvailBytes(num)) / 4) * 4;
    const bytes = usedOff + 6 + VIRTQ_USED_ELEM_SIZE * num;
    const n = Math.ceil(bytes / PAGE);
    let first = -1;
    for (let i = 0; i < n; i++) {
      const pfn = kernel.allocPage();
      if (pfn < 0 || (i > 0 && pfn !== first + i)) {
        if (pfn >= 0) kernel.freePage(pfn);
        for (const p of this.pages) kernel.freePage(p);
        throw virtioError(
          "VIRTIO_NO_MEMORY",
          `No ${n} contiguous pages for a virtqueue of ${num}; boot the guest with more memory or use a smaller queue.`,
        );
      }
      if (i === 0) first = pfn;
      this.pages.push(pfn);
      kernel.clearPage(pfn);
    }
    this.descPa = first * PAGE;
    this.availPa = this.descPa + virtqDescBytes(num);
    this.usedPa = this.descPa + usedOff;
    this.numFree = num;
    for (let i = 0; i < num - 1; i++)
      this.ram.write16(this.descPa + i * VIRTQ_DESC_SIZE + 14, i + 1);
    this.tokens = new Array(num).fill(undefined);
    this.inLen = new Uint32Array(num);
    if (this.indirect) {
      const per = PAGE / INDIRECT_BYTES;
      for (let i = 0; i < Math.ceil(num / per); i++) {
        const pfn = kernel.allocPage();
        if (pfn < 0) {
          for (const p of [...this.pages, ...this.indirectPages]) kernel.freePage(p);
          throw virtioError(
            "VIRTIO_NO_MEMORY",
            "No pages for the virtqueue's indirect tables; boot the guest with more memory.",
          );
        }
        this.indirectPages.push(pfn);
      }
    }
  }

  /** Guest-physical address of head `h`'s indirect table. */
  private indirectPa(h: number): number {
    const per = PAGE / INDIRECT_BYTES;
    return this.indirectPages[Math.floor(h / per)] * PAGE + (h % per) * INDIRECT_BYTES;
  }

  /** Writes one descriptor at `d`. */
  private writeDesc(d: number, b: VirtqBuf, flags: number, next: number): void {
    const ram = this.ram;
    ram.write32(d, b.addr % 2 ** 32);
    ram.write32(d + 4, Math.floor(b.addr / 2 ** 32));
    ram.write32(d + 8, b.len);
    ram.write16(d + 12, flags);
    ram.write16(d + 14, next);
  }

  private readonly notify: (q: number) => void;

  /** The pages of the rings and indirect tables (freed by the driver on removal). */
  ringPages(): readonly number[] {
    return [...this.pages, ...this.indirectPages];
  }

  /**
   * virtqueue_add_sgs: makes a chain of `out` (device-readable) then `inBufs` (device-writable)
   * available with `token`. Its head, or -ENOSPC (-28) when too few descriptors are free, or
   * -EIO (-5) when the queue is broken or the chain is empty.
   */
  add(out: readonly VirtqBuf[], inBufs: readonly VirtqBuf[], token: T): number {
    if (this.broken !== null) return -5;
    const total = out.length + inBufs.length;
    if (total === 0) return -5;
    const useIndirect = this.indirect && total > 1 && total <= VIRTQ_INDIRECT_MAX;
    if ((useIndirect ? 1 : total) > this.numFree) return -28;
    const ram = this.ram;
    const head = this.freeHead;
    let inBytes = 0;
    for (const b of inBufs) inBytes += b.len;
    if (useIndirect) {
      // The chain goes into head's own table; the ring gets one INDIRECT descriptor.
      const t = this.indirectPa(head);
      for (let s = 0; s < total; s++) {
        const w = s >= out.length;
        const b = w ? inBufs[s - out.length] : out[s];
        const flags = (w ? VIRTQ_DESC_F_WRITE : 0) | (s < total - 1 ? VIRTQ_DESC_F_NEXT : 0);
        this.writeDesc(t + s * VIRTQ_DESC_SIZE, b, flags, s + 1);
      }
      const d = this.descPa + head * VIRTQ_DESC_SIZE;
      const next = ram.read16(d + 14);
      this.writeDesc(d, { addr: t, len: total * VIRTQ_DESC_SIZE }, VIRTQ_DESC_F_INDIRECT, next);
      this.freeHead = next;
      this.numFree -= 1;
      this.counts.indirect++;
    } else {
      let i = head;
      for (let s = 0; s < total; s++) {
        const w = s >= out.length;
        const b = w ? inBufs[s - out.length] : out[s];
        const d = this.descPa + i * VIRTQ_DESC_SIZE;
        const next = ram.read16(d + 14);
        // The last descriptor keeps `next`: where the free list continues.
        this.writeDesc(
          d,
          b,
          (w ? VIRTQ_DESC_F_WRITE : 0) | (s < total - 1 ? VIRTQ_DESC_F_NEXT : 0),
          next,
        );
        i = next;
      }
      this.freeHead = i;
      this.numFree -= total;
    }
    this.tokens[head] = token;
    this.inLen[head] = inBytes;
    const slot = this.availIdx & (this.num - 1);
    ram.write16(this.availPa + VIRTQ_AVAIL_RING + 2 * slot, head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    ram.write16(this.availPa + VIRTQ_AVAIL_IDX, this.availIdx); // after the ring entry
    this.numAdded++;
    this.counts.added++;
    return head;
  }

  /**
   * virtqueue_kick_prepare + virtqueue_notify: notifies the device unless it said it need
   * not be (avail_event with EVENT_IDX, else VRING_USED_F_NO_NOTIFY). Whether it kicked.
   */
  kick(): boolean {
    if (this.broken !== null) return false;
    const newIdx = this.availIdx;
    const old = (newIdx - this.numAdded) & 0xffff;
    this.numAdded = 0;
    let need: boolean;
    if (this.eventIdx) {
      const ev = this.ram.read16(this.usedPa + virtqAvailEventOffset(this.num));
      need = vringNeedEvent(ev, newIdx, old);
    } else {
      need = (this.ram.read16(this.usedPa + VIRTQ_USED_FLAGS) & VIRTQ_USED_F_NO_NOTIFY) === 0;
    }
    if (!need) {
      this.counts.kicksSuppressed++;
      return false;
    }
    this.counts.kicks++;
    this.notify(this.index);
    return true;
  }

  /** Whether the device has used buffers we have not taken (more_used_split). */
  moreUsed(): boolean {
    return (
      this.broken === null && this.ram.read16(this.usedPa + VIRTQ_USED_IDX) !== this.lastUsedIdx
    );
  }

  /**
   * virtqueue_get_buf: the next chain the device gave back, with the bytes it wrote, or null.
   * The chain's descriptors go back on the free list.
   */
  getBuf(): { token: T; len: number } | null {
    if (this.broken !== null) return null;
    const ram = this.ram;
    const usedIdx = ram.read16(this.usedPa + VIRTQ_USED_IDX);
    if (usedIdx === this.lastUsedIdx) return null;
    const outstanding = this.num - this.numFree;
    if (((usedIdx - this.lastUsedIdx) & 0xffff) > this.num || outstanding === 0) {
      this.broken = `device moved the used index from ${this.lastUsedIdx} to ${usedIdx}`;
      return null;
    }
    const e =
      this.usedPa + VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * (this.lastUsedIdx & (this.num - 1));
    const id = ram.read32(e);
    const len = ram.read32(e + 4);
    if (id >= this.num || this.tokens[id] === undefined) {
      this.broken = `id ${id} is not a head`;
      return null;
    }
    const token = this.tokens[id] as T;
    this.tokens[id] = undefined;
    this.detach(id);
    this.lastUsedIdx = (this.lastUsedIdx + 1) & 0xffff;
    this.counts.completed++;
    // With EVENT_IDX and callbacks on, ask for an interrupt at the next used entry.
    if (this.eventIdx && !this.cbDisabled)
      ram.write16(this.availPa + virtqUsedEventOffset(this.num), this.lastUsedIdx);
    return { token, len: Math.min(len, this.inLen[id]) };
  }

  /** Puts chain `head` back on the free list (detach_buf_split). */
  private detach(head: number): void {
    const ram = this.ram;
    let i = head;
    let n = 1;
    // Walk our own chain: bounded by num, whatever the device wrote elsewhere.
    while (n <= this.num) {
      const d = this.descPa + i * VIRTQ_DESC_SIZE;
      if ((ram.read16(d + 12) & VIRTQ_DESC_F_NEXT) === 0) break;
      i = ram.read16(d + 14);
      n++;
    }
    ram.write16(this.descPa + i * VIRTQ_DESC_SIZE + 14, this.freeHead);
    this.freeHead = head;
    this.numFree += n;
  }

  private cbDisabled = false;

  /** virtqueue_disable_cb: the device need not interrupt (flag or an old used_event). */
  disableCb(): void {
    this.cbDisabled = true;
    if (!this.eventIdx)
      this.ram.write16(this.availPa + VIRTQ_AVAIL_FLAGS, VIRTQ_AVAIL_F_NO_INTERRUPT);
  }

  /**
   * virtqueue_enable_cb: interrupts wanted again from the next used entry. False when the
   * device has already used more (the caller must poll again: the race the spec describes).
   */
  enableCb(): boolean {
    this.cbDisabled = false;
    if (this.eventIdx)
      this.ram.write16(this.availPa + virtqUsedEventOffset(this.num), this.lastUsedIdx);
    else this.ram.write16(this.availPa + VIRTQ_AVAIL_FLAGS, 0);
    return !this.moreUsed();
  }
}
