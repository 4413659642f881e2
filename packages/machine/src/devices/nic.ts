/*
 * A NIC: one PCI function whose BAR0 holds registers, with a transmit and a receive ring of
 * DMA descriptors in memory (bus addresses). The layouts are this project's own small design
 * (an e1000 or virtio-net adds offloads and feature negotiation that teach nothing more about
 * the dom0 DMA path); the behaviour follows real descriptor-ring NICs: the driver advances a
 * ring's TAIL, the device consumes from HEAD, writes length and status back into each
 * descriptor and raises an interrupt.
 *
 * Invariants:
 * - Register and descriptor contents come from a driver (possibly a guest) and never throw.
 *   A bad tx descriptor (length outside 14..1514, a buffer beyond the DMA mask or RAM) is
 *   completed with DD|ERR and an error interrupt, and nothing is sent; a received frame that
 *   does not fit its buffer, or whose buffer cannot be written, completes the descriptor with
 *   DD|ERR and is dropped.
 * - The device touches only the rings and the buffers their descriptors name, through its DMA
 *   port. A ring it cannot read stops that direction with STATUS.RING_ERROR until reset.
 * - Frames received with rx off or no free descriptor are dropped and counted.
 * - The interrupt condition is INT_STATUS & INT_MASK (INTx level or MSI by the PCI function).
 */

import { DMA_OK } from "../dma";
import { MachineError } from "../errors";
import type { PciBus, PciFunction } from "../pci";
import { HYPERLAB_VENDOR_ID } from "./disk";
import type { NetEndpoint, NetPort } from "./net-port";

export const NIC_DEVICE_ID = 0x0e71;
/** "HLNI". */
export const NIC_MAGIC = 0x494e4c48;
export const NIC_DESC_SIZE = 16;
export const NIC_MAX_RING = 4096;
/** Ethernet header, and the largest frame without FCS. */
export const ETH_HLEN = 14;
export const ETH_FRAME_LEN = 1514;

export const NIC_REG_MAGIC = 0x00;
export const NIC_REG_MAC_LO = 0x04;
export const NIC_REG_MAC_HI = 0x08;
export const NIC_REG_DMA_BITS = 0x0c;
export const NIC_REG_TX_BASE_LO = 0x10;
export const NIC_REG_TX_BASE_HI = 0x14;
export const NIC_REG_TX_SIZE = 0x18;
export const NIC_REG_TX_HEAD = 0x1c;
/** Writing TX_TAIL is the transmit doorbell. */
export const NIC_REG_TX_TAIL = 0x20;
export const NIC_REG_RX_BASE_LO = 0x30;
export const NIC_REG_RX_BASE_HI = 0x34;
export const NIC_REG_RX_SIZE = 0x38;
export const NIC_REG_RX_HEAD = 0x3c;
export const NIC_REG_RX_TAIL = 0x40;
export const NIC_REG_STATUS = 0x50;
export const NIC_REG_INT_STATUS = 0x54;
export const NIC_REG_INT_ACK = 0x58;
export const NIC_REG_INT_MASK = 0x5c;
export const NIC_REG_CONTROL = 0x60;
export const NIC_REG_RX_DROPPED = 0x64;

export const NIC_CTRL_TX_EN = 1;
export const NIC_CTRL_RX_EN = 2;
export const NIC_CTRL_PROMISC = 4;
export const NIC_CTRL_RESET = 8;
export const NIC_STATUS_TX_RING_ERROR = 1;
export const NIC_STATUS_RX_RING_ERROR = 2;
export const NIC_INT_TX = 1;
export const NIC_INT_RX = 2;
export const NIC_INT_ERROR = 4;
export const NIC_INT_RX_NOBUF = 8;
/** Descriptor: 0 u64 buffer, 8 u16 length, 10 u8 status. */
export const NIC_DESC_DD = 1;
export const NIC_DESC_ERR = 2;

export interface NicOptions {
  /** MAC address, 6 bytes; default 02:00:00:00:00:<device>. */
  mac?: Uint8Array | readonly number[];
  /** PCI device number on bus 0; default 3 (INTA# then routes to GSI 19). */
  device?: number;
  /** DMA address bits; default 64. */
  dmaMaskBits?: number;
  /** Where frames go; attach() changes it. Default none: frames are dropped and counted. */
  port?: NetPort | null;
}

export interface NicStats {
  txFrames: number;
  txErrors: number;
  txNoPort: number;
  rxFrames: number;
  rxDropped: number;
  rxErrors: number;
  ringErrors: number;
}

interface Ring {
  lo: number;
  hi: number;
  size: number;
  head: number;
  tail: number;
}

export class Nic implements NetEndpoint {
  readonly pci: PciFunction;
  readonly mac = new Uint8Array(6);
  port: NetPort | null;
  private readonly tx: Ring = { lo: 0, hi: 0, size: 0, head: 0, tail: 0 };
  private readonly rx: Ring = { lo: 0, hi: 0, size: 0, head: 0, tail: 0 };
  private control = 0;
  private status = 0;
  private intStatus = 0;
  private intMask = 0;
  private readonly desc = new Uint8Array(NIC_DESC_SIZE);
  private readonly dv = new DataView(this.desc.buffer);
  private readonly wb = new Uint8Array(4);
  private readonly frame = new Uint8Array(ETH_FRAME_LEN);
  private txBusy = false;
  private txAgain = false;
  readonly stats: NicStats = {
    txFrames: 0,
    txErrors: 0,
    txNoPort: 0,
    rxFrames: 0,
    rxDropped: 0,
    rxErrors: 0,
    ringErrors: 0,
  };

  constructor(bus: PciBus, options: NicOptions = {}) {
    const device = options.device ?? 3;
    const mac = options.mac ?? [0x02, 0, 0, 0, 0, device & 0xff];
    if (mac.length !== 6 || [...mac].some((b) => !(Number.isInteger(b) && b >= 0 && b <= 255))) {
      throw new MachineError(
        "NET_BAD_CONFIG",
        "a MAC address is 6 bytes, e.g. [0x02, 0, 0, 0, 0, 1]",
      );
    }
    this.mac.set(mac);
    this.port = options.port ?? null;
    this.pci = bus.addFunction({
      name: "nic",
      device,
      vendorId: HYPERLAB_VENDOR_ID,
      deviceId: NIC_DEVICE_ID,
      classCode: 0x020000, // network, Ethernet
      interruptPin: 1,
      msi: { is64: true, perVectorMask: true },
      dmaMaskBits: options.dmaMaskBits ?? 64,
      bars: [
        {
          size: 0x1000,
          is64: true,
          ops: {
            read: (off, width) => this.read(off, width),
            write: (off, width, value) => this.write(off, width, value),
          },
        },
      ],
    });
  }

  /** Connects the NIC's cable to a port (or null to unplug it). */
  attach(port: NetPort | null): void {
    this.port = port;
  }

  private ringReg(r: Ring, reg: number): number {
    switch (reg) {
      case 0:
        return r.lo;
      case 4:
        return r.hi;
      case 8:
        return r.size;
      case 12:
        return r.head;
      default:
        return r.tail;
    }
  }

  private read(off: number, width: number): number {
    if (width !== 4) return 0;
    if (off >= NIC_REG_TX_BASE_LO && off <= NIC_REG_TX_TAIL) {
      return this.ringReg(this.tx, off - NIC_REG_TX_BASE_LO);
    }
    if (off >= NIC_REG_RX_BASE_LO && off <= NIC_REG_RX_TAIL) {
      return this.ringReg(this.rx, off - NIC_REG_RX_BASE_LO);
    }
    const m = this.mac;
    switch (off) {
      case NIC_REG_MAGIC:
        return NIC_MAGIC;
      case NIC_REG_MAC_LO:
        return (m[0] | (m[1] << 8) | (m[2] << 16) | (m[3] << 24)) >>> 0;
      case NIC_REG_MAC_HI:
        return m[4] | (m[5] << 8);
      case NIC_REG_DMA_BITS:
        return this.pci.dma.maskBits;
      case NIC_REG_STATUS:
        return this.status;
      case NIC_REG_INT_STATUS:
        return this.intStatus;
      case NIC_REG_INT_MASK:
        return this.intMask;
      case NIC_REG_CONTROL:
        return this.control;
      case NIC_REG_RX_DROPPED:
        return this.stats.rxDropped >>> 0;
    }
    return 0;
  }

  private write(off: number, width: number, value: number): void {
    if (width !== 4) return;
    const m = this.mac;
    switch (off) {
      case NIC_REG_MAC_LO:
        m[0] = value;
        m[1] = value >>> 8;
        m[2] = value >>> 16;
        m[3] = value >>> 24;
        return;
      case NIC_REG_MAC_HI:
        m[4] = value;
        m[5] = value >>> 8;
        return;
      case NIC_REG_TX_BASE_LO:
        this.tx.lo = (value & ~(NIC_DESC_SIZE - 1)) >>> 0;
        return;
      case NIC_REG_TX_BASE_HI:
        this.tx.hi = value;
        return;
      case NIC_REG_TX_SIZE:
        this.tx.size = value;
        return;
      case NIC_REG_TX_TAIL:
        this.tx.tail = value;
        this.transmit();
        return;
      case NIC_REG_RX_BASE_LO:
        this.rx.lo = (value & ~(NIC_DESC_SIZE - 1)) >>> 0;
        return;
      case NIC_REG_RX_BASE_HI:
        this.rx.hi = value;
        return;
      case NIC_REG_RX_SIZE:
        this.rx.size = value;
        return;
      case NIC_REG_RX_TAIL:
        this.rx.tail = value;
        return;
      case NIC_REG_INT_ACK:
        this.intStatus &= ~value;
        this.update();
        return;
      case NIC_REG_INT_MASK:
        this.intMask = value & (NIC_INT_TX | NIC_INT_RX | NIC_INT_ERROR | NIC_INT_RX_NOBUF);
        this.update();
        return;
      case NIC_REG_CONTROL:
        if ((value & NIC_CTRL_RESET) !== 0) {
          for (const r of [this.tx, this.rx]) {
            r.head = 0;
            r.tail = 0;
          }
          this.status = 0;
          this.intStatus = 0;
          this.update();
        }
        this.control = value & (NIC_CTRL_TX_EN | NIC_CTRL_RX_EN | NIC_CTRL_PROMISC);
        if ((this.control & NIC_CTRL_TX_EN) !== 0) this.transmit();
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

  private ringError(bit: number): void {
    this.stats.ringErrors++;
    this.status |= bit;
    this.raise(NIC_INT_ERROR);
  }

  /** Writes length and status back into the descriptor at `at`. */
  private writeBack(at: number, length: number, status: number): boolean {
    this.wb[0] = length & 0xff;
    this.wb[1] = (length >>> 8) & 0xff;
    this.wb[2] = status;
    this.wb[3] = 0;
    return this.pci.dma.write(at + 8, this.wb) === DMA_OK;
  }

  private ringOk(r: Ring): boolean {
    return r.size >= 1 && r.size <= NIC_MAX_RING && r.tail < r.size;
  }

  /** Sends every descriptor from TX HEAD to TX TAIL. */
  private transmit(): void {
    if (this.txBusy) {
      this.txAgain = true;
      return;
    }
    this.txBusy = true;
    try {
      do {
        this.txAgain = false;
        this.transmitRound();
      } while (this.txAgain);
    } finally {
      this.txBusy = false;
    }
  }

  private transmitRound(): void {
    const r = this.tx;
    if ((this.control & NIC_CTRL_TX_EN) === 0 || (this.status & NIC_STATUS_TX_RING_ERROR) !== 0) {
      return;
    }
    if (r.head === r.tail) return;
    if (!this.ringOk(r)) {
      this.ringError(NIC_STATUS_TX_RING_ERROR);
      return;
    }
    const base = r.hi * 2 ** 32 + r.lo;
    let sent = 0;
    let errors = 0;
    while (r.head !== r.tail) {
      const at = base + r.head * NIC_DESC_SIZE;
      if (this.pci.dma.read(at, this.desc) !== DMA_OK) {
        this.ringError(NIC_STATUS_TX_RING_ERROR);
        return;
      }
      const buf = this.dv.getUint32(4, true) * 2 ** 32 + this.dv.getUint32(0, true);
      const len = this.dv.getUint16(8, true);
      let status = NIC_DESC_DD;
      const f = this.frame.subarray(0, len);
      if (len < ETH_HLEN || len > ETH_FRAME_LEN || this.pci.dma.read(buf, f) !== DMA_OK) {
        status |= NIC_DESC_ERR;
        errors++;
        this.stats.txErrors++;
      }
      if (!this.writeBack(at, len, status)) {
        this.ringError(NIC_STATUS_TX_RING_ERROR);
        return;
      }
      r.head = (r.head + 1) % r.size;
      sent++;
      if ((status & NIC_DESC_ERR) === 0) {
        this.stats.txFrames++;
        if (this.port === null) this.stats.txNoPort++;
        else this.port.transmit(f);
      }
    }
    if (sent > 0) this.raise(errors > 0 ? NIC_INT_TX | NIC_INT_ERROR : NIC_INT_TX);
  }

  private accepts(frame: Uint8Array): boolean {
    if ((this.control & NIC_CTRL_PROMISC) !== 0 || (frame[0] & 1) !== 0) return true;
    const m = this.mac;
    for (let i = 0; i < 6; i++) if (frame[i] !== m[i]) return false;
    return true;
  }

  /** A frame arrives from the port. Copied into the next rx buffer, or dropped. */
  receive(frame: Uint8Array): void {
    const r = this.rx;
    if (
      (this.control & NIC_CTRL_RX_EN) === 0 ||
      (this.status & NIC_STATUS_RX_RING_ERROR) !== 0 ||
      frame.length < ETH_HLEN ||
      frame.length > ETH_FRAME_LEN ||
      !this.accepts(frame)
    ) {
      this.stats.rxDropped++;
      return;
    }
    if (r.head === r.tail) {
      this.stats.rxDropped++;
      this.raise(NIC_INT_RX_NOBUF);
      return;
    }
    if (!this.ringOk(r)) {
      this.stats.rxDropped++;
      this.ringError(NIC_STATUS_RX_RING_ERROR);
      return;
    }
    const at = r.hi * 2 ** 32 + r.lo + r.head * NIC_DESC_SIZE;
    if (this.pci.dma.read(at, this.desc) !== DMA_OK) {
      this.stats.rxDropped++;
      this.ringError(NIC_STATUS_RX_RING_ERROR);
      return;
    }
    const buf = this.dv.getUint32(4, true) * 2 ** 32 + this.dv.getUint32(0, true);
    const room = this.dv.getUint16(8, true);
    let status = NIC_DESC_DD;
    let len = frame.length;
    if (len > room || this.pci.dma.write(buf, frame) !== DMA_OK) {
      status |= NIC_DESC_ERR;
      len = 0;
    }
    if (!this.writeBack(at, len, status)) {
      this.stats.rxDropped++;
      this.ringError(NIC_STATUS_RX_RING_ERROR);
      return;
    }
    r.head = (r.head + 1) % r.size;
    if ((status & NIC_DESC_ERR) !== 0) {
      this.stats.rxErrors++;
      this.stats.rxDropped++;
      this.raise(NIC_INT_RX | NIC_INT_ERROR);
      return;
    }
    this.stats.rxFrames++;
    this.raise(NIC_INT_RX);
  }
}
