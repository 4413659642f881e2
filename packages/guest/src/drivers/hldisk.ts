/*
 * The driver of the machine's disk controller (@hyperlab/machine's DiskController: vendor
 * "HY" 0x4859, device 0x0d15), written as a Linux block driver is: probe enables the PCI
 * function, maps BAR0 with pci_iomap, checks the magic register, sets the DMA mask the device
 * reports, allocates its descriptor ring with dma_alloc_coherent and requests its interrupt
 * (INTx on its GSI, or MSI). A request maps its buffer with dma_map_page (so under Xen the
 * swiotlb-xen provider hands the device a machine address, bouncing when it must), fills a
 * descriptor with that bus address and rings the doorbell; the interrupt handler acknowledges
 * the device, reaps every descriptor the device has passed, unmaps each buffer (copying a
 * bounced read back) and completes the request with the descriptor's status byte.
 *
 * Invariants: slots [head, tail) of the ring are exactly the submitted, uncompleted requests,
 * each with its buffer mapped; a request is completed once, after its buffer is unmapped;
 * the ring holds at most ringSize - 1 requests (a full ring answers -EBUSY); nothing the
 * device answers throws: a bad status is the request's status, a refused mapping -EIO.
 */
import { EBUSY, EINVAL, EIO, ENODEV, ENOMEM } from "@hyperlab/abi";
import {
  DISK_CONTROL_ENABLE,
  DISK_CONTROL_RESET,
  DISK_DESC_SIZE,
  DISK_DEVICE_ID,
  DISK_INT_COMPLETE,
  DISK_INT_ERROR,
  DISK_MAGIC,
  DISK_MAX_SECTORS,
  DISK_OP_FLUSH,
  DISK_OP_READ,
  DISK_OP_WRITE,
  DISK_REG_CAPACITY_HI,
  DISK_REG_CAPACITY_LO,
  DISK_REG_CONTROL,
  DISK_REG_DMA_BITS,
  DISK_REG_DOORBELL,
  DISK_REG_HEAD,
  DISK_REG_INT_ACK,
  DISK_REG_INT_MASK,
  DISK_REG_INT_STATUS,
  DISK_REG_RING_BASE_HI,
  DISK_REG_RING_BASE_LO,
  DISK_REG_RING_SIZE,
  DISK_REG_TAIL,
  DISK_SECTOR_SIZE,
  HYPERLAB_VENDOR_ID,
} from "@hyperlab/machine";
import {
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_TO_DEVICE,
  type DmaDevice,
  type DmaDirection,
} from "../dma-api";
import { readl, writel } from "../io";
import type { GuestKernel } from "../kernel";
import { type PciIrq, type PciIrqMode, requestIrq } from "./irq";
import { type PciDev, pciEnableDevice, pciIomap } from "./pci";

/** A block request (a bio of one segment): `count` sectors at `sector`, into or from a page. */
export interface HldiskRequest {
  op: "read" | "write" | "flush";
  sector: number;
  count: number;
  /** The kernel page holding the data, and the offset in it (the segment may run on). */
  pfn: number;
  offset?: number;
  /** Called once with the descriptor's status byte (DISK_ST_OK is 1). */
  done(status: number): void;
}

export interface HldiskCounts {
  submitted: number;
  completed: number;
  /** Requests completed with a status other than DISK_ST_OK. */
  errors: number;
  interrupts: number;
  /** Interrupts with nothing pending on this device (a shared line). */
  spurious: number;
}

/** A probed disk. */
export interface Hldisk {
  readonly dev: PciDev;
  readonly irq: PciIrq;
  /** Sectors of the image. */
  readonly capacity: number;
  /** Kernel virtual address of BAR0. */
  readonly regs: number;
  readonly dmaDev: DmaDevice;
  readonly counts: HldiskCounts;
  /** Queues a request and rings the doorbell: 0, or -EINVAL / -EBUSY / -EIO. */
  submit(req: HldiskRequest): number;
  /** Requests submitted and not yet completed. */
  inFlight(): number;
}

export interface HldiskOptions {
  /** The interrupt to use; default "intx". */
  irq?: PciIrqMode;
  /** Descriptors in the ring (2 to 128, one coherent page); default 64. */
  ringSize?: number;
}

/** Whether the driver claims `dev` (its pci_device_id table). */
export function hldiskMatch(dev: PciDev): boolean {
  return dev.vendorId === HYPERLAB_VENDOR_ID && dev.deviceId === DISK_DEVICE_ID;
}

/** The driver's probe: the disk, or -errno (-ENODEV not ours, -EIO, -ENOMEM, the irq's). */
export function hldiskProbe(
  k: GuestKernel,
  dev: PciDev,
  options: HldiskOptions = {},
): Hldisk | number {
  if (!hldiskMatch(dev)) return -ENODEV;
  const size = options.ringSize ?? 64;
  if (!(Number.isInteger(size) && size >= 2 && size <= 4096 / DISK_DESC_SIZE)) return -EINVAL;
  pciEnableDevice(k, dev);
  const regs = pciIomap(k, dev, 0, 4096);
  if (regs < 0) return regs;
  if (readl(k, regs) !== DISK_MAGIC) return -ENODEV;
  const bits = readl(k, regs + DISK_REG_DMA_BITS);
  const dmaDev: DmaDevice = { name: "hldisk", dmaMaskBits: bits, coherentDmaMaskBits: bits };
  if (!(bits >= 24 && bits <= 64) || !k.ops.dma.dmaSupported(dmaDev, bits)) return -EIO;
  const ring = k.ops.dma.allocCoherent(dmaDev, 4096);
  if (ring === null) return -ENOMEM;
  const bytes = k.ram.frameBytes(k.frameOf(ring.pfn));
  const desc = new DataView(bytes.buffer, bytes.byteOffset, 4096);
  const reqs: (HldiskRequest | null)[] = new Array(size).fill(null);
  const bus = new Float64Array(size);
  const len = new Int32Array(size);
  const dir = new Uint8Array(size);
  let head = 0;
  let tail = 0;
  const counts: HldiskCounts = {
    submitted: 0,
    completed: 0,
    errors: 0,
    interrupts: 0,
    spurious: 0,
  };
  const capacity =
    readl(k, regs + DISK_REG_CAPACITY_HI) * 2 ** 32 + readl(k, regs + DISK_REG_CAPACITY_LO);

  writel(k, regs + DISK_REG_CONTROL, DISK_CONTROL_RESET);
  writel(k, regs + DISK_REG_RING_BASE_LO, ring.busAddr % 2 ** 32);
  writel(k, regs + DISK_REG_RING_BASE_HI, Math.floor(ring.busAddr / 2 ** 32));
  writel(k, regs + DISK_REG_RING_SIZE, size);

  const reap = (): void => {
    const hw = readl(k, regs + DISK_REG_HEAD);
    while (head !== tail && head !== hw) {
      const slot = head;
      const req = reqs[slot] as HldiskRequest;
      reqs[slot] = null;
      head = (head + 1) % size;
      if (len[slot] > 0)
        k.ops.dma.unmapPage(dmaDev, bus[slot], len[slot], dir[slot] as DmaDirection);
      const status = desc.getUint8(slot * DISK_DESC_SIZE + 1);
      counts.completed++;
      if (status !== 1) counts.errors++;
      req.done(status);
    }
  };
  const handler = (): void => {
    const st = readl(k, regs + DISK_REG_INT_STATUS);
    if (st <= 0 || st === 0xffff_ffff) {
      counts.spurious++;
      return;
    }
    counts.interrupts++;
    writel(k, regs + DISK_REG_INT_ACK, st);
    reap();
  };
  const irq = requestIrq(k, dev, handler, options.irq ?? "intx");
  if (typeof irq === "number") {
    k.ops.dma.freeCoherent(dmaDev, 4096, ring.pfn, ring.busAddr);
    return irq;
  }
  writel(k, regs + DISK_REG_INT_MASK, DISK_INT_COMPLETE | DISK_INT_ERROR);
  writel(k, regs + DISK_REG_CONTROL, DISK_CONTROL_ENABLE);

  const submit = (req: HldiskRequest): number => {
    if (req === null || typeof req !== "object" || typeof req.done !== "function") return -EINVAL;
    const op =
      req.op === "read"
        ? DISK_OP_READ
        : req.op === "write"
          ? DISK_OP_WRITE
          : req.op === "flush"
            ? DISK_OP_FLUSH
            : -1;
    if (op < 0) return -EINVAL;
    const count = op === DISK_OP_FLUSH ? 0 : req.count;
    const offset = req.offset ?? 0;
    if (
      op !== DISK_OP_FLUSH &&
      !(
        Number.isInteger(count) &&
        count >= 1 &&
        count <= DISK_MAX_SECTORS &&
        Number.isSafeInteger(req.sector) &&
        req.sector >= 0 &&
        req.sector + count <= capacity &&
        Number.isInteger(req.pfn) &&
        Number.isInteger(offset) &&
        offset >= 0
      )
    ) {
      return -EINVAL;
    }
    if ((tail + 1) % size === head) return -EBUSY;
    const slot = tail;
    const n = count * DISK_SECTOR_SIZE;
    const d: DmaDirection = op === DISK_OP_READ ? DMA_FROM_DEVICE : DMA_TO_DEVICE;
    let b = 0;
    if (n > 0) {
      b = k.ops.dma.mapPage(dmaDev, req.pfn, offset, n, d);
      if (b === DMA_MAPPING_ERROR) return -EIO;
    }
    reqs[slot] = req;
    bus[slot] = b;
    len[slot] = n;
    dir[slot] = d;
    const at = slot * DISK_DESC_SIZE;
    desc.setUint32(at, op, true); // opcode, status byte 0 (pending)
    desc.setUint32(at + 4, count, true);
    desc.setUint32(at + 8, req.sector % 2 ** 32, true);
    desc.setUint32(at + 12, Math.floor(req.sector / 2 ** 32), true);
    desc.setUint32(at + 16, b % 2 ** 32, true);
    desc.setUint32(at + 20, Math.floor(b / 2 ** 32), true);
    desc.setUint32(at + 24, counts.submitted, true);
    counts.submitted++;
    tail = (tail + 1) % size;
    writel(k, regs + DISK_REG_TAIL, tail);
    writel(k, regs + DISK_REG_DOORBELL, 1);
    return 0;
  };

  return {
    dev,
    irq,
    capacity,
    regs,
    dmaDev,
    counts,
    submit,
    inFlight: () => (tail - head + size) % size,
  };
}
