/*
 * The virtio-mmio transport, version 2 (OASIS virtio v1.2 §4.2; QEMU's hw/virtio/virtio-mmio.c
 * and Linux's drivers/virtio/virtio_mmio.c as reading guides): a page of 32-bit registers in the
 * VM's device space. Every access to it is an MMIO exit; a write of a queue index to
 * QueueNotify is the driver's kick, and the device's interrupt is a level on one GSI of the
 * VM's IO-APIC, held while InterruptStatus is non-zero.
 *
 * Why virtio-mmio and not virtio-pci (docs/decisions.md): it is the transport whose notify is a
 * plain MMIO write with no capability walk, as Firecracker and QEMU's microvm use it; the PCI
 * path is already exercised by the machine's disk controller and NIC on the VM's PCI bus.
 *
 * Invariants: registers and config space never throw on any guest access; a width other than
 * 4 on a register reads 0 and is dropped on write (config space takes 1, 2 and 4); queue
 * settings change only while the queue is not ready; FEATURES_OK stays set only for a subset
 * of the device's features that includes VIRTIO_F_VERSION_1; a broken queue sets
 * VIRTIO_CONFIG_S_NEEDS_RESET and raises a configuration interrupt, after which the device
 * ignores kicks until the driver writes 0 to Status.
 */
import {
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VIRTIO_MMIO_CONFIG,
  VIRTIO_MMIO_CONFIG_GENERATION,
  VIRTIO_MMIO_DEVICE_FEATURES,
  VIRTIO_MMIO_DEVICE_FEATURES_SEL,
  VIRTIO_MMIO_DEVICE_ID,
  VIRTIO_MMIO_DRIVER_FEATURES,
  VIRTIO_MMIO_DRIVER_FEATURES_SEL,
  VIRTIO_MMIO_INT_CONFIG,
  VIRTIO_MMIO_INT_VRING,
  VIRTIO_MMIO_INTERRUPT_ACK,
  VIRTIO_MMIO_INTERRUPT_STATUS,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_MAGIC_VALUE,
  VIRTIO_MMIO_QUEUE_AVAIL_HIGH,
  VIRTIO_MMIO_QUEUE_AVAIL_LOW,
  VIRTIO_MMIO_QUEUE_DESC_HIGH,
  VIRTIO_MMIO_QUEUE_DESC_LOW,
  VIRTIO_MMIO_QUEUE_NOTIFY,
  VIRTIO_MMIO_QUEUE_NUM,
  VIRTIO_MMIO_QUEUE_NUM_MAX,
  VIRTIO_MMIO_QUEUE_READY,
  VIRTIO_MMIO_QUEUE_SEL,
  VIRTIO_MMIO_QUEUE_USED_HIGH,
  VIRTIO_MMIO_QUEUE_USED_LOW,
  VIRTIO_MMIO_STATUS,
  VIRTIO_MMIO_VENDOR_ID,
  VIRTIO_MMIO_VERSION,
} from "@hyperlab/machine";
import type { GuestMemory } from "../guest-memory";
import { VirtQueue } from "./queue";

/** The vendor ID this transport reports ("HYPL"): a model's choice, as QEMU reports "QEMU". */
export const VIRTIO_MMIO_VENDOR_HYPERLAB = 0x4c505948;

/** What a virtio device type (block, network) gives the transport. */
export interface VirtioBackend {
  readonly name: string;
  /** §5 device ID (VIRTIO_ID_*). */
  readonly deviceId: number;
  readonly numQueues: number;
  /** Largest size of each queue (QueueNumMax). */
  readonly queueNumMax: number;
  /** Device feature bits (bit numbers) beyond VERSION_1, EVENT_IDX and INDIRECT_DESC. */
  readonly featureBits: readonly number[];
  /** Reads `width` bytes of device config space at `offset` (unsigned; 0 past its end). */
  readConfig(offset: number, width: number): number;
  /** Binds to the transport (once, when added). */
  attach(transport: VirtioMmio): void;
  /** The driver kicked queue `q` (or the device became ready): consume what is available. */
  notify(q: number): void;
  /** The driver reset the device. */
  reset(): void;
}

/** Where a virtio-mmio device sits in its VM. */
export interface VirtioMmioDevice {
  base: number;
  size: number;
  gsi: number;
  transport: VirtioMmio;
}

/** Counters of one virtio-mmio device. */
export interface VirtioMmioCounts {
  /** Register reads and writes (each one an MMIO exit). */
  regReads: number;
  regWrites: number;
  /** QueueNotify writes (kicks). */
  notifications: number;
  /** Kicks ignored: queue out of range or not ready, device not DRIVER_OK, or broken. */
  ignoredNotifications: number;
  /** Interrupts raised (InterruptStatus going from 0 to non-zero). */
  interrupts: number;
  /** Times a queue broke (NEEDS_RESET set). */
  broken: number;
  resets: number;
}

function bit(features: number[], n: number): void {
  features[n >>> 5] |= 1 << (n & 31);
}

export class VirtioMmio {
  readonly queues: VirtQueue[];
  readonly counts: VirtioMmioCounts = {
    regReads: 0,
    regWrites: 0,
    notifications: 0,
    ignoredNotifications: 0,
    interrupts: 0,
    broken: 0,
    resets: 0,
  };
  /** Device features as two 32-bit words. */
  readonly deviceFeatures: number[] = [0, 0];
  /** What the driver accepted, as two 32-bit words. */
  readonly driverFeatures: number[] = [0, 0];
  status = 0;
  interruptStatus = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private queueSel = 0;
  private configGeneration = 0;

  constructor(
    readonly memory: GuestMemory,
    readonly backend: VirtioBackend,
    private readonly setLine: (level: boolean) => void,
  ) {
    this.queues = [];
    for (let i = 0; i < backend.numQueues; i++) this.queues.push(new VirtQueue(memory));
    for (const b of [
      VIRTIO_F_VERSION_1,
      VIRTIO_F_EVENT_IDX,
      VIRTIO_F_INDIRECT_DESC,
      ...backend.featureBits,
    ]) {
      bit(this.deviceFeatures, b);
    }
    backend.attach(this);
  }

  /** Whether the driver negotiated feature bit `n`. */
  hasFeature(n: number): boolean {
    return ((this.driverFeatures[n >>> 5] >>> (n & 31)) & 1) === 1;
  }

  /** Whether the device is live: DRIVER_OK and not waiting for a reset. */
  get live(): boolean {
    return (
      (this.status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0 &&
      (this.status & VIRTIO_CONFIG_S_NEEDS_RESET) === 0
    );
  }

  /** Sets InterruptStatus bits and raises the line (virtio_notify / virtio_notify_config). */
  interrupt(bits: number): void {
    const was = this.interruptStatus;
    this.interruptStatus |= bits;
    if (was === 0 && this.interruptStatus !== 0) {
      this.counts.interrupts++;
      this.setLine(true);
    }
  }

  /** After a backend used queue `q`: interrupts the driver if it asked (event index or flags). */
  notifyQueue(q: number): void {
    const vq = this.queues[q];
    if (vq.error !== null) return;
    vq.enableNotification();
    if (vq.shouldNotify()) this.interrupt(VIRTIO_MMIO_INT_VRING);
  }

  /**
   * QEMU's virtio_error: a queue broke. Sets NEEDS_RESET (VERSION_1 negotiated) and raises a
   * configuration-change interrupt; the device stops until reset.
   */
  checkBroken(q: number): boolean {
    if (this.queues[q].error === null) return false;
    if ((this.status & VIRTIO_CONFIG_S_NEEDS_RESET) === 0) {
      this.counts.broken++;
      this.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
      this.interrupt(VIRTIO_MMIO_INT_CONFIG);
    }
    return true;
  }

  private reset(): void {
    this.counts.resets++;
    this.status = 0;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.driverFeatures[0] = 0;
    this.driverFeatures[1] = 0;
    this.queueSel = 0;
    for (const q of this.queues) q.reset();
    if (this.interruptStatus !== 0) {
      this.interruptStatus = 0;
      this.setLine(false);
    }
    this.backend.reset();
  }

  private get sel(): VirtQueue | undefined {
    return this.queues[this.queueSel];
  }

  /** A register or config read by the driver (an MMIO exit). */
  read(off: number, width: number): number {
    this.counts.regReads++;
    if (off >= VIRTIO_MMIO_CONFIG) {
      const o = off - VIRTIO_MMIO_CONFIG;
      if (o % width !== 0) return 0;
      return this.backend.readConfig(o, width) >>> 0;
    }
    if (width !== 4 || off % 4 !== 0) return 0;
    const q = this.sel;
    switch (off) {
      case VIRTIO_MMIO_MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
      case VIRTIO_MMIO_VERSION:
        return 2;
      case VIRTIO_MMIO_DEVICE_ID:
        return this.backend.deviceId;
      case VIRTIO_MMIO_VENDOR_ID:
        return VIRTIO_MMIO_VENDOR_HYPERLAB;
      case VIRTIO_MMIO_DEVICE_FEATURES:
        return this.deviceFeaturesSel < 2 ? this.deviceFeatures[this.deviceFeaturesSel] >>> 0 : 0;
      case VIRTIO_MMIO_QUEUE_NUM_MAX:
        return q === undefined ? 0 : this.backend.queueNumMax;
      case VIRTIO_MMIO_QUEUE_READY:
        return q?.ready ? 1 : 0;
      case VIRTIO_MMIO_INTERRUPT_STATUS:
        return this.interruptStatus;
      case VIRTIO_MMIO_STATUS:
        return this.status;
      case VIRTIO_MMIO_CONFIG_GENERATION:
        return this.configGeneration;
      default:
        return 0;
    }
  }

  /** A register write by the driver (an MMIO exit). */
  write(off: number, width: number, value: number): void {
    this.counts.regWrites++;
    if (width !== 4 || off % 4 !== 0 || off >= VIRTIO_MMIO_CONFIG) return; // config is read-only here
    const v = value >>> 0;
    const q = this.sel;
    const settable = q !== undefined && !q.ready;
    switch (off) {
      case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
        this.deviceFeaturesSel = v;
        return;
      case VIRTIO_MMIO_DRIVER_FEATURES:
        // Only before FEATURES_OK; only what the device offers sticks.
        if (this.driverFeaturesSel < 2 && (this.status & VIRTIO_CONFIG_S_FEATURES_OK) === 0) {
          this.driverFeatures[this.driverFeaturesSel] = v;
        }
        return;
      case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
        this.driverFeaturesSel = v;
        return;
      case VIRTIO_MMIO_QUEUE_SEL:
        this.queueSel = v;
        return;
      case VIRTIO_MMIO_QUEUE_NUM:
        // A split queue's size is a power of two no larger than QueueNumMax.
        if (settable && v > 0 && v <= this.backend.queueNumMax && (v & (v - 1)) === 0) q.num = v;
        return;
      case VIRTIO_MMIO_QUEUE_READY:
        if (q === undefined) return;
        if (v === 1 && !q.ready && q.num > 0) {
          q.ready = true;
          q.eventIdx = this.hasFeature(VIRTIO_F_EVENT_IDX);
          q.indirect = this.hasFeature(VIRTIO_F_INDIRECT_DESC);
        } else if (v === 0) q.ready = false;
        return;
      case VIRTIO_MMIO_QUEUE_NOTIFY:
        this.kick(v);
        return;
      case VIRTIO_MMIO_INTERRUPT_ACK:
        this.interruptStatus &= ~v;
        if (this.interruptStatus === 0) this.setLine(false);
        return;
      case VIRTIO_MMIO_STATUS:
        this.writeStatus(v);
        return;
      case VIRTIO_MMIO_QUEUE_DESC_LOW:
        if (settable) q.descAddr = Math.floor(q.descAddr / 2 ** 32) * 2 ** 32 + v;
        return;
      case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        if (settable) q.descAddr = (v & 0xfffff) * 2 ** 32 + (q.descAddr % 2 ** 32);
        return;
      case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
        if (settable) q.availAddr = Math.floor(q.availAddr / 2 ** 32) * 2 ** 32 + v;
        return;
      case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
        if (settable) q.availAddr = (v & 0xfffff) * 2 ** 32 + (q.availAddr % 2 ** 32);
        return;
      case VIRTIO_MMIO_QUEUE_USED_LOW:
        if (settable) q.usedAddr = Math.floor(q.usedAddr / 2 ** 32) * 2 ** 32 + v;
        return;
      case VIRTIO_MMIO_QUEUE_USED_HIGH:
        if (settable) q.usedAddr = (v & 0xfffff) * 2 ** 32 + (q.usedAddr % 2 ** 32);
        return;
      default:
        return;
    }
  }

  private writeStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    // The device owns NEEDS_RESET; the driver's other bits are taken as written.
    let s = (v & ~VIRTIO_CONFIG_S_NEEDS_RESET) | (this.status & VIRTIO_CONFIG_S_NEEDS_RESET);
    if (
      (s & VIRTIO_CONFIG_S_FEATURES_OK) !== 0 &&
      (this.status & VIRTIO_CONFIG_S_FEATURES_OK) === 0
    ) {
      const subset =
        (this.driverFeatures[0] & ~this.deviceFeatures[0]) === 0 &&
        (this.driverFeatures[1] & ~this.deviceFeatures[1]) === 0;
      if (!subset || !this.hasFeature(VIRTIO_F_VERSION_1)) s &= ~VIRTIO_CONFIG_S_FEATURES_OK;
    }
    // Queues are served on kicks only, as QEMU's devices do; DRIVER_OK just lets kicks through.
    this.status = s;
  }

  private kick(q: number): void {
    this.counts.notifications++;
    const vq = this.queues[q];
    if (vq === undefined || !vq.ready || !this.live) {
      this.counts.ignoredNotifications++;
      return;
    }
    this.run(q);
  }

  private run(q: number): void {
    if (!this.queues[q].ready) return;
    this.backend.notify(q);
    this.checkBroken(q);
  }
}
