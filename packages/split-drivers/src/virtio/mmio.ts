/*
 * The guest's virtio-mmio transport driver (Linux's drivers/virtio/virtio_mmio.c, version 2
 * devices only): probes a register window the kernel was told about (virtio_mmio.device=
 * <size>@<base>:<irq>, as the command line or device tree says), negotiates features, sets up
 * queues and takes the device's level interrupt through the kernel's native irq flow: read
 * InterruptStatus, acknowledge it, run the queues' callbacks, EOI.
 *
 * Every register access is a readl/writel: under nested paging each one is an MMIO exit to the
 * host's device model.
 *
 * Invariants: the driver accepts only features it knows and the device offers, and treats
 * FEATURES_OK read back clear as the device's refusal (-ENODEV); a device that sets
 * VIRTIO_CONFIG_S_NEEDS_RESET is marked broken and its queues are not used again until
 * `reset`; nothing the device answers throws.
 */
import { EINVAL, ENODEV } from "@hyperlab/abi";
import { type GuestKernel, ioremap, readb, readl, readw, writel } from "@hyperlab/guest";
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VIRTIO_MMIO_CONFIG,
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
  VIRTIO_MMIO_SIZE,
  VIRTIO_MMIO_STATUS,
  VIRTIO_MMIO_VERSION,
} from "@hyperlab/machine";
import { virtioError } from "./errors";
import { Virtqueue } from "./virtqueue";

/** Counters of one virtio-mmio device as its driver sees it. */
export interface VirtioMmioDriverCounts {
  /** Interrupts taken (handler entries). */
  interrupts: number;
  /** Configuration-change interrupts (NEEDS_RESET among them). */
  configInterrupts: number;
}

export class VirtioMmioDriver {
  readonly regs: number;
  readonly deviceId: number;
  /** Device features as two 32-bit words, and what the driver accepted. */
  readonly deviceFeatures: [number, number];
  readonly features: [number, number] = [0, 0];
  readonly queues: Virtqueue[] = [];
  readonly counts: VirtioMmioDriverCounts = { interrupts: 0, configInterrupts: 0 };
  /** Set when the device asked for a reset (NEEDS_RESET). */
  broken = false;
  irq = -1;
  private readonly callbacks: ((vq: Virtqueue) => void)[] = [];

  private constructor(
    readonly kernel: GuestKernel,
    readonly base: number,
    readonly gsi: number,
    regs: number,
  ) {
    this.regs = regs;
    const k = kernel;
    this.deviceId = readl(k, regs + VIRTIO_MMIO_DEVICE_ID);
    this.status(0); // reset
    this.status(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    this.status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    writel(k, regs + VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    const lo = readl(k, regs + VIRTIO_MMIO_DEVICE_FEATURES) >>> 0;
    writel(k, regs + VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    const hi = readl(k, regs + VIRTIO_MMIO_DEVICE_FEATURES) >>> 0;
    this.deviceFeatures = [lo, hi];
  }

  /**
   * virtio_mmio_probe for the window `base` (one page) on `gsi`: the driver, or -ENODEV when no
   * version-2 virtio device answers there, -EINVAL for a bad base.
   */
  static probe(k: GuestKernel, base: number, gsi: number): VirtioMmioDriver | number {
    if (k.platform.kind !== "native") {
      throw virtioError(
        "VIRTIO_BAD_KERNEL",
        "virtio drivers run on a native-pv_ops kernel (bare metal or a KVM-style guest); a Xen PV guest uses the split drivers.",
      );
    }
    if (!(Number.isSafeInteger(base) && base % 4096 === 0)) return -EINVAL;
    const regs = ioremap(k, base, VIRTIO_MMIO_SIZE);
    if (regs < 0) return regs;
    if (readl(k, regs + VIRTIO_MMIO_MAGIC_VALUE) !== VIRTIO_MMIO_MAGIC) return -ENODEV;
    if (readl(k, regs + VIRTIO_MMIO_VERSION) !== 2) return -ENODEV;
    if (readl(k, regs + VIRTIO_MMIO_DEVICE_ID) === 0) return -ENODEV; // a placeholder
    return new VirtioMmioDriver(k, base, gsi, regs);
  }

  private status(v: number): void {
    writel(this.kernel, this.regs + VIRTIO_MMIO_STATUS, v);
  }

  /** The device status register. */
  getStatus(): number {
    return readl(this.kernel, this.regs + VIRTIO_MMIO_STATUS) >>> 0;
  }

  /** Whether feature bit `n` was negotiated. */
  hasFeature(n: number): boolean {
    return ((this.features[n >>> 5] >>> (n & 31)) & 1) === 1;
  }

  /**
   * virtio_finalize_features: accepts `wanted` (bit numbers) that the device offers, plus
   * VERSION_1 (required), EVENT_IDX and INDIRECT_DESC when offered and asked for; 0, or -ENODEV when
   * the device refuses them or is not a VERSION_1 device.
   */
  finalizeFeatures(wanted: readonly number[], eventIdx = true, indirect = true): number {
    const offered = (n: number) => ((this.deviceFeatures[n >>> 5] >>> (n & 31)) & 1) === 1;
    if (!offered(VIRTIO_F_VERSION_1)) return this.fail();
    // vring_transport_features: the ring features the driver takes when offered.
    const ring = [
      ...(eventIdx ? [VIRTIO_F_EVENT_IDX] : []),
      ...(indirect ? [VIRTIO_F_INDIRECT_DESC] : []),
    ];
    for (const n of [VIRTIO_F_VERSION_1, ...ring, ...wanted]) {
      if (offered(n)) this.features[n >>> 5] |= 1 << (n & 31);
    }
    const k = this.kernel;
    for (let w = 0; w < 2; w++) {
      writel(k, this.regs + VIRTIO_MMIO_DRIVER_FEATURES_SEL, w);
      writel(k, this.regs + VIRTIO_MMIO_DRIVER_FEATURES, this.features[w] >>> 0);
    }
    const s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
    this.status(s);
    if ((this.getStatus() & VIRTIO_CONFIG_S_FEATURES_OK) === 0) return this.fail();
    return 0;
  }

  private fail(): number {
    this.status(this.getStatus() | VIRTIO_CONFIG_S_FAILED);
    return -ENODEV;
  }

  /**
   * vm_setup_vq: queue `index` with up to `num` entries (capped by QueueNumMax), its
   * callback run from the interrupt. The queue, or -ENOENT (-2) when the device has no such
   * queue.
   */
  setupVq(index: number, num: number, callback: (vq: Virtqueue) => void): Virtqueue | number {
    const k = this.kernel;
    const r = this.regs;
    writel(k, r + VIRTIO_MMIO_QUEUE_SEL, index);
    if (readl(k, r + VIRTIO_MMIO_QUEUE_READY) !== 0) return -16; // -EBUSY
    const max = readl(k, r + VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (max <= 0) return -2;
    let n = Math.min(num, max);
    while ((n & (n - 1)) !== 0) n &= n - 1;
    const vq = new Virtqueue(k, index, n, {
      eventIdx: this.hasFeature(VIRTIO_F_EVENT_IDX),
      indirect: this.hasFeature(VIRTIO_F_INDIRECT_DESC),
      notify: (q) => writel(k, r + VIRTIO_MMIO_QUEUE_NOTIFY, q),
    });
    writel(k, r + VIRTIO_MMIO_QUEUE_NUM, n);
    const w64 = (lo: number, hi: number, v: number) => {
      writel(k, r + lo, v % 2 ** 32);
      writel(k, r + hi, Math.floor(v / 2 ** 32));
    };
    w64(VIRTIO_MMIO_QUEUE_DESC_LOW, VIRTIO_MMIO_QUEUE_DESC_HIGH, vq.descPa);
    w64(VIRTIO_MMIO_QUEUE_AVAIL_LOW, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, vq.availPa);
    w64(VIRTIO_MMIO_QUEUE_USED_LOW, VIRTIO_MMIO_QUEUE_USED_HIGH, vq.usedPa);
    writel(k, r + VIRTIO_MMIO_QUEUE_READY, 1);
    this.queues[index] = vq;
    this.callbacks[index] = callback;
    return vq;
  }

  /**
   * Routes the device's GSI (level, active high) to the interrupt handler and sets DRIVER_OK
   * (virtio_device_ready). 0, or the kernel's -errno for the irq.
   */
  ready(): number {
    const k = this.kernel;
    const apic = k.ops.apic;
    const irq = apic.setupGsi(this.gsi, "level", "high");
    if (irq < 0) return irq;
    const rc = apic.bindIrq(irq, () => this.interrupt());
    if (rc < 0) return rc;
    this.irq = irq;
    apic.unmask(irq);
    this.status(
      VIRTIO_CONFIG_S_ACKNOWLEDGE |
        VIRTIO_CONFIG_S_DRIVER |
        VIRTIO_CONFIG_S_FEATURES_OK |
        VIRTIO_CONFIG_S_DRIVER_OK,
    );
    return 0;
  }

  /** vm_interrupt: acknowledge, run the queues' callbacks (vring_interrupt), EOI. */
  private interrupt(): void {
    const k = this.kernel;
    this.counts.interrupts++;
    const st = readl(k, this.regs + VIRTIO_MMIO_INTERRUPT_STATUS);
    if (st > 0) writel(k, this.regs + VIRTIO_MMIO_INTERRUPT_ACK, st);
    if (st > 0 && (st & VIRTIO_MMIO_INT_CONFIG) !== 0) {
      this.counts.configInterrupts++;
      if ((this.getStatus() & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0) this.broken = true;
    }
    if (st > 0 && (st & VIRTIO_MMIO_INT_VRING) !== 0 && !this.broken) {
      for (let q = 0; q < this.queues.length; q++) {
        const vq = this.queues[q];
        if (vq === undefined || !vq.moreUsed()) continue;
        vq.counts.callbacks++;
        this.callbacks[q](vq);
      }
    }
    k.ops.apic.eoi(this.irq);
  }

  /** A byte, 16 or 32 bits of device config space (unsigned, -1 after a fault). */
  readConfig(offset: number, width: 1 | 2 | 4): number {
    const a = this.regs + VIRTIO_MMIO_CONFIG + offset;
    return width === 4
      ? readl(this.kernel, a)
      : width === 2
        ? readw(this.kernel, a)
        : readb(this.kernel, a);
  }
}
