/*
 * DMA by machine address: how a device model reads and writes RAM, bypassing every MMU.
 *
 * Invariants: a transfer either moves all its bytes or none. A range not wholly inside RAM
 * (the device was programmed with a bad address, possibly by a guest) never throws: the
 * call returns DMA_EFAULT and counts a fault. Only a device-model bug (a buffer that is not
 * a Uint8Array) throws.
 *
 * A device's DmaPort sees bus addresses only. Invariants of a port: a transfer is checked
 * whole before any byte moves (bus mastering on, inside the device's DMA mask, every page
 * translated to RAM), so a refused transfer touches nothing; a refusal is a status
 * (DMA_EACCES, DMA_ERANGE, DMA_EFAULT), never a throw. A write of 4 bytes into the MSI
 * window (0xFEE00000 .. 0xFEEFFFFF) is an interrupt message, not memory.
 */

import { MachineError } from "./errors";
import type { Ram } from "./ram";

/** Transfer done. */
export const DMA_OK = 0;
/** The range is not wholly inside RAM: Xen's -EFAULT ("bad address"). */
export const DMA_EFAULT = -14;

/** Counters of a DMA engine. */
export interface DmaStats {
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  faults: number;
}

export class DmaEngine {
  readonly ram: Ram;
  /** Transfers from RAM to a device (device reads memory). */
  reads = 0;
  /** Transfers from a device into RAM. */
  writes = 0;
  bytesRead = 0;
  bytesWritten = 0;
  /** Transfers refused with DMA_EFAULT. */
  faults = 0;

  constructor(ram: Ram) {
    this.ram = ram;
  }

  private checkBuffer(buf: Uint8Array): void {
    if (!(buf instanceof Uint8Array)) {
      throw new MachineError(
        "DMA_BAD_BUFFER",
        "a DMA buffer must be a Uint8Array (use subarray for part of one); this is a device-model bug",
      );
    }
  }

  /** Device reads `dst.length` bytes of RAM at maddr into dst. DMA_OK or DMA_EFAULT. */
  read(maddr: number, dst: Uint8Array): number {
    this.checkBuffer(dst);
    if (!this.ram.validRange(maddr, dst.length)) {
      this.faults++;
      return DMA_EFAULT;
    }
    this.ram.readInto(maddr, dst);
    this.reads++;
    this.bytesRead += dst.length;
    return DMA_OK;
  }

  /** Device writes src into RAM at maddr. DMA_OK or DMA_EFAULT. */
  write(maddr: number, src: Uint8Array): number {
    this.checkBuffer(src);
    if (!this.ram.validRange(maddr, src.length)) {
      this.faults++;
      return DMA_EFAULT;
    }
    this.ram.writeBytes(maddr, src);
    this.writes++;
    this.bytesWritten += src.length;
    return DMA_OK;
  }

  /** A snapshot of the counters. */
  stats(): DmaStats {
    return {
      reads: this.reads,
      writes: this.writes,
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      faults: this.faults,
    };
  }
}

/** Bus mastering is off in the function's PCI command register: Xen's -EACCES. */
export const DMA_EACCES = -13;
/** The bus range does not fit the device's DMA mask: -ERANGE. */
export const DMA_ERANGE = -34;

/** Base of the x86 MSI address window (Intel SDM vol. 3 §11.11.1). */
export const MSI_WINDOW_BASE = 0xfee0_0000;
/** Size of the MSI address window: 1 MiB. */
export const MSI_WINDOW_SIZE = 0x10_0000;

/**
 * Maps bus addresses to machine addresses (an IOMMU). Called once per 4 KiB bus page of a
 * transfer with the page's bus address; returns the machine address of that page, or -1 to
 * refuse (the transfer gets DMA_EFAULT). Without one, bus address = machine address.
 */
export interface BusTranslator {
  translate(busPage: number, write: boolean): number;
}

/** Receives interrupt messages (MSI writes) from devices: address (low 32 bits) and data. */
export type MsiSink = (address: number, data: number) => void;

/** Options of a device's DMA port. */
export interface DmaPortOptions {
  /** Bits of bus address the device drives: 32 for an old controller, 64 for a modern one. */
  maskBits: number;
  /** Where MSI writes go; without one they are counted and dropped. */
  msi?: MsiSink | null;
}

const BUS_PAGE = 4096;

/** One device's view of memory: bus addresses, a DMA mask, bus mastering, an optional IOMMU. */
export class DmaPort {
  readonly engine: DmaEngine;
  /** 32 .. 64. */
  readonly maskBits: number;
  /** First bus address the device cannot drive: 2^maskBits (Infinity-free: capped at 2^53). */
  readonly limit: number;
  /** Bus mastering (PCI command bit 2). The PCI function keeps it in step. */
  busMaster = true;
  /** The IOMMU, or null for identity mapping. */
  translator: BusTranslator | null = null;
  msi: MsiSink | null;
  /** Transfers refused: mastering off, above the mask, not RAM (or refused by the IOMMU). */
  accessFaults = 0;
  maskFaults = 0;
  faults = 0;
  /** MSI writes delivered, and MSI-sized writes dropped (no sink, or mastering off). */
  msiWrites = 0;

  constructor(engine: DmaEngine, options: DmaPortOptions) {
    const bits = options?.maskBits;
    if (!(Number.isInteger(bits) && bits >= 24 && bits <= 64)) {
      throw new MachineError(
        "DMA_BAD_MASK",
        `a DMA mask is a number of address bits from 24 to 64, got ${String(bits)}; ` +
          "use 32 for a controller with 32-bit DMA, 64 otherwise",
      );
    }
    this.engine = engine;
    this.maskBits = bits;
    this.limit = bits >= 53 ? 2 ** 53 : 2 ** bits;
    this.msi = options.msi ?? null;
  }

  /** 0, or the status that refuses [bus, bus + len). */
  private check(bus: number, len: number, write: boolean): number {
    if (!this.busMaster) {
      this.accessFaults++;
      return DMA_EACCES;
    }
    if (!(Number.isSafeInteger(bus) && bus >= 0 && len >= 0 && bus + len <= this.limit)) {
      this.maskFaults++;
      return DMA_ERANGE;
    }
    const t = this.translator;
    if (t === null) {
      if (!this.engine.ram.validRange(bus, len)) {
        this.faults++;
        return DMA_EFAULT;
      }
      return DMA_OK;
    }
    const ram = this.engine.ram;
    for (let page = bus - (bus % BUS_PAGE); page < bus + len; page += BUS_PAGE) {
      const m = t.translate(page, write);
      if (
        !(Number.isSafeInteger(m) && m >= 0 && m % BUS_PAGE === 0 && ram.validRange(m, BUS_PAGE))
      ) {
        this.faults++;
        return DMA_EFAULT;
      }
    }
    return DMA_OK;
  }

  /** Device reads dst.length bytes at bus address `bus`. DMA_OK or a refusal; all or nothing. */
  read(bus: number, dst: Uint8Array): number {
    const st = this.check(bus, dst.length, false);
    if (st !== DMA_OK) return st;
    if (this.translator === null) return this.engine.read(bus, dst);
    return this.pages(bus, dst, false);
  }

  /** Device writes src at bus address `bus`. DMA_OK or a refusal; all or nothing. */
  write(bus: number, src: Uint8Array): number {
    if (src.length === 4 && bus >= MSI_WINDOW_BASE && bus < MSI_WINDOW_BASE + MSI_WINDOW_SIZE) {
      return this.sendMsi(bus, src[0] | (src[1] << 8) | (src[2] << 16) | (src[3] << 24));
    }
    const st = this.check(bus, src.length, true);
    if (st !== DMA_OK) return st;
    if (this.translator === null) return this.engine.write(bus, src);
    return this.pages(bus, src, true);
  }

  /** An interrupt message: a 32-bit write of `data` to `address` in the MSI window. */
  sendMsi(address: number, data: number): number {
    if (!this.busMaster) {
      this.accessFaults++;
      return DMA_EACCES;
    }
    if (!(address >= MSI_WINDOW_BASE && address < MSI_WINDOW_BASE + MSI_WINDOW_SIZE)) {
      this.faults++;
      return DMA_EFAULT;
    }
    this.msiWrites++;
    this.msi?.(address >>> 0, data >>> 0);
    return DMA_OK;
  }

  /** Moves a checked transfer page by page through the translator. */
  private pages(bus: number, buf: Uint8Array, write: boolean): number {
    const t = this.translator as BusTranslator;
    let done = 0;
    while (done < buf.length) {
      const a = bus + done;
      const off = a % BUS_PAGE;
      const n = Math.min(BUS_PAGE - off, buf.length - done);
      const m = t.translate(a - off, write) + off;
      const part = buf.subarray(done, done + n);
      if (write) this.engine.write(m, part);
      else this.engine.read(m, part);
      done += n;
    }
    return DMA_OK;
  }
}
