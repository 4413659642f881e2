/*
 * The device's side of a split virtqueue (OASIS virtio v1.2 §2.7; QEMU's hw/virtio/virtio.c
 * virtqueue_pop / virtqueue_push / virtio_should_notify as reading guide): take the next
 * available descriptor chain, hand its segments to the device, give the chain back through
 * the used ring, and decide whether the driver wants an interrupt.
 *
 * Everything in the rings is written by the guest and may be hostile. Invariants:
 * - Every ring and buffer access goes through the VM's GuestMemory: nothing outside frames the
 *   VM owns is read or written.
 * - A chain is accepted only if every rule of §2.7.5 holds: head and every `next` below the
 *   table size, no more segments than the table has (no loop), an indirect table of whole
 *   descriptors that itself holds no indirect descriptor, device-readable segments before
 *   device-writable ones, every buffer inside the VM's memory, and the available index at most
 *   `num` ahead of what the device has consumed. Anything else marks the queue broken (the
 *   transport then sets VIRTIO_CONFIG_S_NEEDS_RESET, as QEMU's virtio_error does) and the
 *   device takes nothing more from it until the driver resets the device.
 * - Popping allocates nothing: segments land in arrays preallocated per queue.
 */
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
  VIRTQ_USED_IDX,
  VIRTQ_USED_RING,
  virtqAvailEventOffset,
  virtqUsedEventOffset,
  vringNeedEvent,
} from "@hyperlab/machine";
import type { GuestMemory } from "../guest-memory";

/** Most segments one chain may have (QEMU's VIRTQUEUE_MAX_SIZE). */
export const VIRTQUEUE_MAX_SEGS = 1024;

/** pop's answers besides a head index. */
export const VQ_EMPTY = -1;
export const VQ_BROKEN = -2;

export class VirtQueue {
  num = 0;
  ready = false;
  descAddr = 0;
  availAddr = 0;
  usedAddr = 0;
  /** The next available-ring index the device will consume (QEMU's last_avail_idx). */
  lastAvailIdx = 0;
  /** The device's used index (the next used-ring slot). */
  usedIdx = 0;
  /** VIRTIO_F_EVENT_IDX negotiated. */
  eventIdx = false;
  /** VIRTIO_F_INDIRECT_DESC negotiated. */
  indirect = false;
  private signalledUsed = 0;
  private signalledUsedValid = false;
  /** Why the queue broke, or null. */
  error: string | null = null;

  /** The chain pop returned: guest-physical address, length, and whether device-writable. */
  readonly segAddr = new Float64Array(VIRTQUEUE_MAX_SEGS);
  readonly segLen = new Uint32Array(VIRTQUEUE_MAX_SEGS);
  readonly segWrite = new Uint8Array(VIRTQUEUE_MAX_SEGS);
  segs = 0;
  /** Device-readable and device-writable bytes of the chain. */
  outBytes = 0;
  inBytes = 0;

  /** Chains taken, chains given back, interrupts wanted and suppressed. */
  popped = 0;
  pushed = 0;
  notifies = 0;
  suppressed = 0;

  constructor(private readonly mem: GuestMemory) {}

  /** Back to the state after a device reset. */
  reset(): void {
    this.num = 0;
    this.ready = false;
    this.descAddr = 0;
    this.availAddr = 0;
    this.usedAddr = 0;
    this.lastAvailIdx = 0;
    this.usedIdx = 0;
    this.signalledUsed = 0;
    this.signalledUsedValid = false;
    this.error = null;
    this.segs = 0;
  }

  private fail(why: string): number {
    if (this.error === null) this.error = why;
    return VQ_BROKEN;
  }

  /**
   * The next available chain: its head index (segments in seg*), VQ_EMPTY when the driver has
   * made nothing new available, or VQ_BROKEN when the guest broke a rule (see `error`).
   */
  pop(): number {
    if (this.error !== null) return VQ_BROKEN;
    if (!this.ready || this.num === 0) return VQ_EMPTY;
    const mem = this.mem;
    const availIdx = mem.read16(this.availAddr + VIRTQ_AVAIL_IDX);
    if (availIdx < 0) return this.fail("available ring is not in guest memory");
    const heads = (availIdx - this.lastAvailIdx) & 0xffff;
    if (heads > this.num) {
      return this.fail(`guest moved the available index from ${this.lastAvailIdx} to ${availIdx}`);
    }
    if (heads === 0) return VQ_EMPTY;
    const slot = this.lastAvailIdx % this.num;
    const head = mem.read16(this.availAddr + VIRTQ_AVAIL_RING + 2 * slot);
    if (head < 0) return this.fail("available ring is not in guest memory");
    if (head >= this.num) return this.fail(`guest says index ${head} is available`);
    this.segs = 0;
    this.outBytes = 0;
    this.inBytes = 0;
    let table = this.descAddr;
    let max = this.num;
    let i = head;
    let inIndirect = false;
    let steps = 0;
    for (;;) {
      const d = table + i * VIRTQ_DESC_SIZE;
      const lo = mem.read32(d);
      const hi = mem.read32(d + 4);
      const len = mem.read32(d + 8);
      const fn = mem.read32(d + 12);
      if (lo < 0 || hi < 0 || len < 0 || fn < 0)
        return this.fail("descriptor table is not in guest memory");
      const flags = fn & 0xffff;
      const next = fn >>> 16;
      const addr = hi * 2 ** 32 + lo;
      if (++steps > max) return this.fail("looped descriptor chain");
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (!this.indirect) return this.fail("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
        if (inIndirect) return this.fail("indirect descriptor in an indirect table");
        if (len === 0 || len % VIRTQ_DESC_SIZE !== 0) {
          return this.fail(`invalid size ${len} for an indirect table`);
        }
        if (!mem.owns(addr, len)) return this.fail("indirect table is not in guest memory");
        table = addr;
        max = len / VIRTQ_DESC_SIZE;
        i = 0;
        steps = 0;
        inIndirect = true;
        continue;
      }
      if (this.segs >= VIRTQUEUE_MAX_SEGS) return this.fail("too many segments in a chain");
      if (!mem.owns(addr, len)) return this.fail("buffer is not in guest memory");
      const w = (flags & VIRTQ_DESC_F_WRITE) !== 0;
      if (!w && this.inBytes > 0) return this.fail("device-readable segment after a writable one");
      this.segAddr[this.segs] = addr;
      this.segLen[this.segs] = len;
      this.segWrite[this.segs] = w ? 1 : 0;
      this.segs++;
      if (w) this.inBytes += len;
      else this.outBytes += len;
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) break;
      if (next >= max) return this.fail(`descriptor next is ${next}, past the table of ${max}`);
      i = next;
    }
    this.lastAvailIdx = (this.lastAvailIdx + 1) & 0xffff;
    this.popped++;
    return head;
  }

  /**
   * Copies device-readable bytes [skip, skip + dst.length) of the popped chain into dst
   * (iov_to_buf). False when the chain has fewer readable bytes (nothing then counts as read).
   */
  readOut(skip: number, dst: Uint8Array): boolean {
    if (skip + dst.length > this.outBytes) return false;
    return this.copy(skip, dst, false);
  }

  /** Copies src into device-writable bytes [skip, skip + src.length) of the chain (iov_from_buf). */
  writeIn(skip: number, src: Uint8Array): boolean {
    if (skip + src.length > this.inBytes) return false;
    return this.copy(skip, src, true);
  }

  private copy(skip: number, buf: Uint8Array, toGuest: boolean): boolean {
    let pos = 0;
    let done = 0;
    const want = toGuest ? 1 : 0;
    for (let s = 0; s < this.segs && done < buf.length; s++) {
      if (this.segWrite[s] !== want) continue;
      const len = this.segLen[s];
      if (pos + len <= skip) {
        pos += len;
        continue;
      }
      const from = Math.max(0, skip - pos);
      const n = Math.min(len - from, buf.length - done);
      const part = buf.subarray(done, done + n);
      const ok = toGuest
        ? this.mem.write(this.segAddr[s] + from, part)
        : this.mem.read(this.segAddr[s] + from, part);
      if (!ok) return false;
      done += n;
      pos += len;
    }
    return done === buf.length;
  }

  /** Gives chain `head` back with `len` bytes written into it; false if the used ring is not in guest memory (the queue then breaks). */
  push(head: number, len: number): boolean {
    if (this.error !== null) return false;
    const slot = this.usedIdx % this.num;
    const e = this.usedAddr + VIRTQ_USED_RING + VIRTQ_USED_ELEM_SIZE * slot;
    const mem = this.mem;
    if (!(mem.write32(e, head) && mem.write32(e + 4, len))) {
      this.fail("used ring is not in guest memory");
      return false;
    }
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    if (!mem.write16(this.usedAddr + VIRTQ_USED_IDX, this.usedIdx)) {
      this.fail("used ring is not in guest memory");
      return false;
    }
    this.pushed++;
    return true;
  }

  /**
   * After the device consumed what was available: with EVENT_IDX, publish avail_event (the
   * driver need not kick before it makes index lastAvailIdx available), as QEMU's
   * virtio_queue_set_notification(vq, 1) does.
   */
  enableNotification(): void {
    if (this.error !== null || !this.eventIdx || !this.ready) return;
    if (!this.mem.write16(this.usedAddr + virtqAvailEventOffset(this.num), this.lastAvailIdx)) {
      this.fail("used ring is not in guest memory");
    }
  }

  /**
   * QEMU's virtio_should_notify: whether the driver wants an interrupt for what was pushed
   * since the last one (used_event with EVENT_IDX, else the NO_INTERRUPT flag).
   */
  shouldNotify(): boolean {
    if (this.error !== null || !this.ready) return false;
    const mem = this.mem;
    let want: boolean;
    if (this.eventIdx) {
      const usedEvent = mem.read16(this.availAddr + virtqUsedEventOffset(this.num));
      if (usedEvent < 0) {
        this.fail("available ring is not in guest memory");
        return false;
      }
      const valid = this.signalledUsedValid;
      const old = this.signalledUsed;
      this.signalledUsedValid = true;
      this.signalledUsed = this.usedIdx;
      want = !valid || vringNeedEvent(usedEvent, this.usedIdx, old);
    } else {
      const flags = mem.read16(this.availAddr + VIRTQ_AVAIL_FLAGS);
      if (flags < 0) {
        this.fail("available ring is not in guest memory");
        return false;
      }
      want = (flags & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    }
    if (want) this.notifies++;
    else this.suppressed++;
    return want;
  }
}
