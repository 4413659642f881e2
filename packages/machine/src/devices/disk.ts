/*
 * A disk controller: one PCI function whose BAR0 holds registers, and a ring of DMA
 * descriptors in memory that name sectors of a raw image and buffers by bus address. The
 * register and descriptor layouts are this project's own small design (no real controller's:
 * AHCI or NVMe would add command tables, queues and a state machine that teach nothing more
 * about the dom0 DMA path); the behaviour follows real bus-master controllers: the driver
 * fills descriptors and advances TAIL, the device consumes them from HEAD, writes a status
 * byte back into each and raises an interrupt.
 *
 * Invariants:
 * - Register and descriptor contents come from a driver (possibly a guest) and never throw.
 *   A bad descriptor (unknown opcode, a count that runs off the image or exceeds the maximum,
 *   a buffer beyond the DMA mask or RAM) gets an error status byte and an error interrupt,
 *   and touches no memory but its own status byte.
 * - The device touches only the ring (descriptors and their status bytes) and the buffers the
 *   descriptors name, all through its DMA port (bus addresses).
 * - A ring that cannot be read (bad base, size, tail, mastering off) stops the device with
 *   STATUS.RING_ERROR and an error interrupt until the driver resets it.
 * - The interrupt condition is INT_STATUS & INT_MASK; the PCI function turns it into INTx
 *   (level) or MSI.
 */

import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { DMA_OK } from "../dma";
import { MachineError } from "../errors";
import type { MmioHi } from "../mmio";
import type { PciBus, PciFunction } from "../pci";

/** Bytes per sector. */
export const DISK_SECTOR_SIZE = 512;
/** Largest count of one descriptor: 2048 sectors, 1 MiB. */
export const DISK_MAX_SECTORS = 2048;
/** Bytes per descriptor. */
export const DISK_DESC_SIZE = 32;
/** Largest ring: 1024 descriptors. */
export const DISK_MAX_RING = 1024;

/** Register offsets in BAR0 (each 32 bits). */
export const DISK_REG_MAGIC = 0x00;
export const DISK_REG_CAPACITY_LO = 0x04;
export const DISK_REG_CAPACITY_HI = 0x08;
export const DISK_REG_DMA_BITS = 0x0c;
export const DISK_REG_RING_BASE_LO = 0x10;
export const DISK_REG_RING_BASE_HI = 0x14;
export const DISK_REG_RING_SIZE = 0x18;
export const DISK_REG_HEAD = 0x1c;
export const DISK_REG_TAIL = 0x20;
export const DISK_REG_DOORBELL = 0x24;
export const DISK_REG_STATUS = 0x28;
export const DISK_REG_INT_STATUS = 0x2c;
export const DISK_REG_INT_ACK = 0x30;
export const DISK_REG_INT_MASK = 0x34;
export const DISK_REG_CONTROL = 0x38;
/** "HLDK". */
export const DISK_MAGIC = 0x4b444c48;

export const DISK_STATUS_ENABLED = 1;
export const DISK_STATUS_RING_ERROR = 2;
export const DISK_INT_COMPLETE = 1;
export const DISK_INT_ERROR = 2;
export const DISK_CONTROL_ENABLE = 1;
export const DISK_CONTROL_RESET = 2;

/** Descriptor: offset 0 u8 opcode, 1 u8 status, 4 u32 count, 8 u64 sector, 16 u64 buffer, 24 u32 id. */
export const DISK_OP_READ = 0;
export const DISK_OP_WRITE = 1;
export const DISK_OP_FLUSH = 2;
/** Status byte: 0 until the device completes the descriptor. */
export const DISK_ST_PENDING = 0;
export const DISK_ST_OK = 1;
/** The range runs off the image, exceeds DISK_MAX_SECTORS, or the image failed. */
export const DISK_ST_IOERR = 2;
export const DISK_ST_UNSUPPORTED = 3;
/** The buffer is beyond the DMA mask, not RAM, or mastering is off. */
export const DISK_ST_DMA_ERROR = 4;

/** A raw disk image of whole sectors. Methods return false on failure, never throw. */
export interface DiskImage {
  readonly sectors: number;
  read(sector: number, dst: Uint8Array): boolean;
  write(sector: number, src: Uint8Array): boolean;
  flush(): boolean;
}

/** An image in host memory, for tests. */
export class MemoryDiskImage implements DiskImage {
  readonly bytes: Uint8Array;
  readonly sectors: number;
  flushes = 0;

  constructor(sectorsOrBytes: number | Uint8Array) {
    this.bytes =
      typeof sectorsOrBytes === "number"
        ? new Uint8Array(sectorsOrBytes * DISK_SECTOR_SIZE)
        : sectorsOrBytes;
    if (this.bytes.length % DISK_SECTOR_SIZE !== 0 || this.bytes.length === 0) {
      throw new MachineError(
        "DISK_IMAGE",
        `a disk image is a whole number (>= 1) of 512-byte sectors, got ${this.bytes.length} bytes`,
      );
    }
    this.sectors = this.bytes.length / DISK_SECTOR_SIZE;
  }

  read(sector: number, dst: Uint8Array): boolean {
    const o = sector * DISK_SECTOR_SIZE;
    dst.set(this.bytes.subarray(o, o + dst.length));
    return true;
  }

  write(sector: number, src: Uint8Array): boolean {
    this.bytes.set(src, sector * DISK_SECTOR_SIZE);
    return true;
  }

  flush(): boolean {
    this.flushes++;
    return true;
  }
}

/** An image in a file (synchronous node:fs); flush is fsync. */
export class FileDiskImage implements DiskImage {
  readonly path: string;
  readonly sectors: number;
  private fd: number;

  constructor(path: string, options: { readOnly?: boolean } = {}) {
    this.path = path;
    try {
      this.fd = openSync(path, options.readOnly ? "r" : "r+");
      const size = fstatSync(this.fd).size;
      if (size % DISK_SECTOR_SIZE !== 0 || size === 0) {
        closeSync(this.fd);
        throw new Error(`its size ${size} is not a whole number (>= 1) of 512-byte sectors`);
      }
      this.sectors = size / DISK_SECTOR_SIZE;
    } catch (e) {
      throw new MachineError(
        "DISK_IMAGE",
        `cannot use ${path} as a disk image: ${(e as Error).message}; create it first (e.g. truncate -s 64M ${path})`,
      );
    }
  }

  read(sector: number, dst: Uint8Array): boolean {
    try {
      return readSync(this.fd, dst, 0, dst.length, sector * DISK_SECTOR_SIZE) === dst.length;
    } catch {
      return false;
    }
  }

  write(sector: number, src: Uint8Array): boolean {
    try {
      return writeSync(this.fd, src, 0, src.length, sector * DISK_SECTOR_SIZE) === src.length;
    } catch {
      return false;
    }
  }

  flush(): boolean {
    try {
      fsyncSync(this.fd);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

export interface DiskControllerOptions {
  image: DiskImage;
  /** PCI device number on bus 0; default 2. */
  device?: number;
  /** DMA address bits; default 32: the disk is the old controller of the two. */
  dmaMaskBits?: number;
}

/** Counters of a disk controller. */
export interface DiskStats {
  requests: number;
  sectorsRead: number;
  sectorsWritten: number;
  flushes: number;
  errors: number;
  ringErrors: number;
}

/**
 * Vendor ID of this project's own devices: "HY". A model's choice, not an ID the PCI-SIG
 * assigned to us; drivers in the models match on it together with the magic register.
 */
export const HYPERLAB_VENDOR_ID = 0x4859;
export const DISK_DEVICE_ID = 0x0d15;

export class DiskController {
  readonly pci: PciFunction;
  readonly image: DiskImage;
  private ringLo = 0;
  private ringHi = 0;
  private ringSize = 0;
  private head = 0;
  private tail = 0;
  private status = 0;
  private intStatus = 0;
  private intMask = 0;
  private readonly desc = new Uint8Array(DISK_DESC_SIZE);
  private readonly dv = new DataView(this.desc.buffer);
  private readonly st = new Uint8Array(1);
  private readonly buf = new Uint8Array(DISK_MAX_SECTORS * DISK_SECTOR_SIZE);
  private busy = false;
  readonly stats: DiskStats = {
    requests: 0,
    sectorsRead: 0,
    sectorsWritten: 0,
    flushes: 0,
    errors: 0,
    ringErrors: 0,
  };

  constructor(bus: PciBus, options: DiskControllerOptions) {
    const image = options?.image;
    if (
      image === undefined ||
      typeof image.read !== "function" ||
      !(Number.isSafeInteger(image.sectors) && image.sectors > 0)
    ) {
      throw new MachineError(
        "DEVICE_BAD_CONFIG",
        "a DiskController needs { image }: a MemoryDiskImage or FileDiskImage",
      );
    }
    this.image = image;
    this.pci = bus.addFunction({
      name: "disk",
      device: options.device ?? 2,
      vendorId: HYPERLAB_VENDOR_ID,
      deviceId: DISK_DEVICE_ID,
      classCode: 0x010000, // mass storage, SCSI-like "other"
      interruptPin: 1,
      msi: { is64: false, perVectorMask: true },
      dmaMaskBits: options.dmaMaskBits ?? 32,
      bars: [
        {
          // 64-bit so firmware can place it above RAM on a machine of more than 3 GiB
          size: 0x1000,
          is64: true,
          ops: {
            read: (off, width, out) => this.read(off, width, out),
            write: (off, width, value) => this.write(off, width, value),
          },
        },
      ],
    });
  }

  private read(off: number, width: number, _out: MmioHi): number {
    if (width !== 4) return 0;
    switch (off) {
      case DISK_REG_MAGIC:
        return DISK_MAGIC;
      case DISK_REG_CAPACITY_LO:
        return this.image.sectors % 2 ** 32;
      case DISK_REG_CAPACITY_HI:
        return Math.floor(this.image.sectors / 2 ** 32);
      case DISK_REG_DMA_BITS:
        return this.pci.dma.maskBits;
      case DISK_REG_RING_BASE_LO:
        return this.ringLo;
      case DISK_REG_RING_BASE_HI:
        return this.ringHi;
      case DISK_REG_RING_SIZE:
        return this.ringSize;
      case DISK_REG_HEAD:
        return this.head;
      case DISK_REG_TAIL:
        return this.tail;
      case DISK_REG_STATUS:
        return this.status;
      case DISK_REG_INT_STATUS:
        return this.intStatus;
      case DISK_REG_INT_MASK:
        return this.intMask;
      case DISK_REG_CONTROL:
        return this.status & DISK_STATUS_ENABLED;
    }
    return 0;
  }

  private write(off: number, width: number, value: number): void {
    if (width !== 4) return;
    switch (off) {
      case DISK_REG_RING_BASE_LO:
        this.ringLo = (value & ~(DISK_DESC_SIZE - 1)) >>> 0;
        return;
      case DISK_REG_RING_BASE_HI:
        this.ringHi = value;
        return;
      case DISK_REG_RING_SIZE:
        this.ringSize = value;
        return;
      case DISK_REG_TAIL:
        this.tail = value;
        return;
      case DISK_REG_DOORBELL:
        this.process();
        return;
      case DISK_REG_INT_ACK:
        this.intStatus &= ~value;
        this.update();
        return;
      case DISK_REG_INT_MASK:
        this.intMask = value & (DISK_INT_COMPLETE | DISK_INT_ERROR);
        this.update();
        return;
      case DISK_REG_CONTROL:
        if ((value & DISK_CONTROL_RESET) !== 0) {
          this.head = 0;
          this.tail = 0;
          this.status = 0;
          this.intStatus = 0;
          this.update();
        }
        if ((value & DISK_CONTROL_ENABLE) !== 0) this.status |= DISK_STATUS_ENABLED;
        else this.status &= ~DISK_STATUS_ENABLED;
        return;
    }
  }

  private update(): void {
    this.pci.setInterrupt((this.intStatus & this.intMask) !== 0);
  }

  private raise(bits: number): void {
    this.intStatus |= bits;
    this.update();
  }

  private ringError(): void {
    this.stats.ringErrors++;
    this.status |= DISK_STATUS_RING_ERROR;
    this.raise(DISK_INT_ERROR);
  }

  /** Consumes descriptors from HEAD to TAIL (what a doorbell write starts). */
  private process(): void {
    if (this.busy) return;
    if ((this.status & (DISK_STATUS_ENABLED | DISK_STATUS_RING_ERROR)) !== DISK_STATUS_ENABLED) {
      return;
    }
    const size = this.ringSize;
    if (!(size >= 1 && size <= DISK_MAX_RING && this.tail < size)) {
      this.ringError();
      return;
    }
    this.busy = true;
    let done = 0;
    let errors = 0;
    try {
      const base = this.ringHi * 2 ** 32 + this.ringLo;
      while (this.head !== this.tail) {
        const at = base + this.head * DISK_DESC_SIZE;
        if (this.pci.dma.read(at, this.desc) !== DMA_OK) {
          this.ringError();
          return;
        }
        const status = this.execute();
        this.st[0] = status;
        if (this.pci.dma.write(at + 1, this.st) !== DMA_OK) {
          this.ringError();
          return;
        }
        this.head = (this.head + 1) % size;
        done++;
        if (status !== DISK_ST_OK) errors++;
      }
    } finally {
      this.busy = false;
    }
    if (done > 0) this.raise(errors > 0 ? DISK_INT_COMPLETE | DISK_INT_ERROR : DISK_INT_COMPLETE);
  }

  /** Runs the descriptor in `desc`; returns its status byte. */
  private execute(): number {
    const dv = this.dv;
    const op = dv.getUint8(0);
    const count = dv.getUint32(4, true);
    const sector = dv.getUint32(12, true) * 2 ** 32 + dv.getUint32(8, true);
    const bufAddr = dv.getUint32(20, true) * 2 ** 32 + dv.getUint32(16, true);
    this.stats.requests++;
    if (op === DISK_OP_FLUSH) {
      this.stats.flushes++;
      return this.fail(this.image.flush() ? DISK_ST_OK : DISK_ST_IOERR);
    }
    if (op !== DISK_OP_READ && op !== DISK_OP_WRITE) return this.fail(DISK_ST_UNSUPPORTED);
    if (count > DISK_MAX_SECTORS || sector + count > this.image.sectors) {
      return this.fail(DISK_ST_IOERR);
    }
    if (count === 0) return DISK_ST_OK;
    const data = this.buf.subarray(0, count * DISK_SECTOR_SIZE);
    if (op === DISK_OP_READ) {
      if (!this.image.read(sector, data)) return this.fail(DISK_ST_IOERR);
      if (this.pci.dma.write(bufAddr, data) !== DMA_OK) return this.fail(DISK_ST_DMA_ERROR);
      this.stats.sectorsRead += count;
    } else {
      if (this.pci.dma.read(bufAddr, data) !== DMA_OK) return this.fail(DISK_ST_DMA_ERROR);
      if (!this.image.write(sector, data)) return this.fail(DISK_ST_IOERR);
      this.stats.sectorsWritten += count;
    }
    return DISK_ST_OK;
  }

  private fail(status: number): number {
    if (status !== DISK_ST_OK) this.stats.errors++;
    return status;
  }
}
