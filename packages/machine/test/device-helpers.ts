import {
  createMachine,
  createPlatform,
  DISK_DESC_SIZE,
  DISK_REG_CONTROL,
  DISK_REG_DOORBELL,
  DISK_REG_INT_ACK,
  DISK_REG_INT_MASK,
  DISK_REG_INT_STATUS,
  DISK_REG_RING_BASE_HI,
  DISK_REG_RING_BASE_LO,
  DISK_REG_RING_SIZE,
  DISK_REG_TAIL,
  DiskController,
  type DiskImage,
  IO_APIC_RTE_LEVEL,
  IO_APIC_RTE_MASKED,
  type Machine,
  MemoryDiskImage,
  NIC_DESC_SIZE,
  NIC_REG_CONTROL,
  NIC_REG_INT_MASK,
  NIC_REG_RX_BASE_HI,
  NIC_REG_RX_BASE_LO,
  NIC_REG_RX_SIZE,
  NIC_REG_RX_TAIL,
  NIC_REG_TX_BASE_HI,
  NIC_REG_TX_BASE_LO,
  NIC_REG_TX_SIZE,
  NIC_REG_TX_TAIL,
  Nic,
  type NicOptions,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  type PciFunction,
  type Platform,
} from "../src/index";

export const MiB = 2 ** 20;

export interface Rig {
  m: Machine;
  p: Platform;
  disk: DiskController;
  nic: Nic;
  image: DiskImage;
}

export function rig(
  opts: { ramBytes?: number; image?: DiskImage; diskMaskBits?: number; nic?: NicOptions } = {},
): Rig {
  const m = createMachine({ ramBytes: opts.ramBytes ?? 16 * MiB, cpus: 2, seed: 1 });
  const p = createPlatform(m);
  const image = opts.image ?? new MemoryDiskImage(4096);
  const disk = new DiskController(p.pci, { image, dmaMaskBits: opts.diskMaskBits });
  const nic = new Nic(p.pci, opts.nic);
  p.pci.assignResources();
  return { m, p, disk, nic, image };
}

export function enableMaster(fn: PciFunction): void {
  fn.writeConfig(PCI_COMMAND, 2, fn.readConfig(PCI_COMMAND, 2) | PCI_COMMAND_MASTER);
}

/** Points GSI `gsi` at `vector` on LAPIC `dest`, level or edge, unmasked. */
export function route(p: Platform, gsi: number, vector: number, level: boolean, dest = 0): void {
  p.ioapic.writeRte(gsi, vector | (level ? IO_APIC_RTE_LEVEL : 0), dest << 24);
}

export function maskGsi(p: Platform, gsi: number): void {
  p.ioapic.writeRte(gsi, IO_APIC_RTE_MASKED, 0);
}

export interface DiskDesc {
  op: number;
  sector: number;
  count: number;
  buf: number;
  id?: number;
}

/** A minimal driver: a ring at `ring` of `size` descriptors. */
export class DiskDriver {
  readonly bar: number;
  tail = 0;

  constructor(
    readonly m: Machine,
    readonly disk: DiskController,
    readonly ring: number,
    readonly size: number,
    opts: { master?: boolean; intMask?: number } = {},
  ) {
    this.bar = disk.pci.barAddress(0);
    if (opts.master !== false) enableMaster(disk.pci);
    this.reg(DISK_REG_RING_BASE_LO, ring % 2 ** 32);
    this.reg(DISK_REG_RING_BASE_HI, Math.floor(ring / 2 ** 32));
    this.reg(DISK_REG_RING_SIZE, size);
    this.reg(DISK_REG_INT_MASK, opts.intMask ?? 3);
    this.reg(DISK_REG_CONTROL, 1);
  }

  reg(off: number, v: number): void {
    this.m.mmio.write(this.bar + off, 4, v);
  }

  rd(off: number): number {
    return this.m.mmio.read(this.bar + off, 4);
  }

  /** Writes descriptors at the tail, advances TAIL and rings the doorbell. */
  submit(descs: DiskDesc[]): number[] {
    const slots: number[] = [];
    const ram = this.m.ram;
    for (const d of descs) {
      const a = this.ring + this.tail * DISK_DESC_SIZE;
      ram.writeBytes(a, new Uint8Array(DISK_DESC_SIZE));
      ram.write8(a, d.op);
      ram.write32(a + 4, d.count);
      ram.write64n(a + 8, d.sector);
      ram.write64n(a + 16, d.buf);
      ram.write32(a + 24, d.id ?? 0);
      slots.push(this.tail);
      this.tail = (this.tail + 1) % this.size;
    }
    this.reg(DISK_REG_TAIL, this.tail);
    this.reg(DISK_REG_DOORBELL, 1);
    return slots;
  }

  status(slot: number): number {
    return this.m.ram.read8(this.ring + slot * DISK_DESC_SIZE + 1);
  }

  intStatus(): number {
    return this.rd(DISK_REG_INT_STATUS);
  }

  ack(bits = 3): void {
    this.reg(DISK_REG_INT_ACK, bits);
  }
}

/** A minimal NIC driver: tx ring at txRing, rx ring at rxRing with buffers from bufBase. */
export class NicDriver {
  readonly bar: number;
  txTail = 0;
  rxTail = 0;

  constructor(
    readonly m: Machine,
    readonly nic: Nic,
    readonly txRing: number,
    readonly rxRing: number,
    readonly size: number,
    opts: { control?: number; intMask?: number } = {},
  ) {
    this.bar = nic.pci.barAddress(0);
    enableMaster(nic.pci);
    this.reg(NIC_REG_TX_BASE_LO, txRing % 2 ** 32);
    this.reg(NIC_REG_TX_BASE_HI, Math.floor(txRing / 2 ** 32));
    this.reg(NIC_REG_TX_SIZE, size);
    this.reg(NIC_REG_RX_BASE_LO, rxRing % 2 ** 32);
    this.reg(NIC_REG_RX_BASE_HI, Math.floor(rxRing / 2 ** 32));
    this.reg(NIC_REG_RX_SIZE, size);
    this.reg(NIC_REG_INT_MASK, opts.intMask ?? 0xf);
    this.reg(NIC_REG_CONTROL, opts.control ?? 3);
  }

  reg(off: number, v: number): void {
    this.m.mmio.write(this.bar + off, 4, v);
  }

  rd(off: number): number {
    return this.m.mmio.read(this.bar + off, 4);
  }

  /** Gives the device an rx buffer of `room` bytes at `buf`; returns its slot. */
  addRx(buf: number, room: number): number {
    const a = this.rxRing + this.rxTail * NIC_DESC_SIZE;
    this.m.ram.writeBytes(a, new Uint8Array(NIC_DESC_SIZE));
    this.m.ram.write64n(a, buf);
    this.m.ram.write16(a + 8, room);
    const slot = this.rxTail;
    this.rxTail = (this.rxTail + 1) % this.size;
    this.reg(NIC_REG_RX_TAIL, this.rxTail);
    return slot;
  }

  /** Queues frames already in memory at (buf, len) and rings the doorbell. */
  send(frames: { buf: number; len: number }[]): number[] {
    const slots: number[] = [];
    for (const f of frames) {
      const a = this.txRing + this.txTail * NIC_DESC_SIZE;
      this.m.ram.writeBytes(a, new Uint8Array(NIC_DESC_SIZE));
      this.m.ram.write64n(a, f.buf);
      this.m.ram.write16(a + 8, f.len);
      slots.push(this.txTail);
      this.txTail = (this.txTail + 1) % this.size;
    }
    this.reg(NIC_REG_TX_TAIL, this.txTail);
    return slots;
  }

  txDesc(slot: number): { len: number; status: number } {
    const a = this.txRing + slot * NIC_DESC_SIZE;
    return { len: this.m.ram.read16(a + 8), status: this.m.ram.read8(a + 10) };
  }

  rxDesc(slot: number): { len: number; status: number } {
    const a = this.rxRing + slot * NIC_DESC_SIZE;
    return { len: this.m.ram.read16(a + 8), status: this.m.ram.read8(a + 10) };
  }
}

/** An Ethernet frame: dst, src, ethertype 0x88b5 (local experimental), payload. */
export function ethFrame(
  dst: readonly number[],
  src: readonly number[],
  payload: Uint8Array,
): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  f.set(payload, 14);
  return f;
}
