/*
 * DMA by machine address: how a device model reads and writes RAM, bypassing every MMU.
 *
 * Invariants: a transfer either moves all its bytes or none. A range not wholly inside RAM
 * (the device was programmed with a bad address, possibly by a guest) never throws: the
 * call returns DMA_EFAULT and counts a fault. Only a device-model bug (a buffer that is not
 * a Uint8Array) throws.
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
