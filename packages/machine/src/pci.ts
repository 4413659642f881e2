/*
 * A PCI-like bus after the PCI Local Bus Specification 3.0: functions addressed by
 * bus/device/function, a 256-byte type-0 configuration space per function, memory BARs,
 * INTx pins routed to GSIs, and the MSI capability (§6.8.1). Configuration space is reached
 * through ECAM (PCI Express enhanced configuration access: one 4 KiB page per function at
 * ecamBase + (bus << 20 | device << 15 | function << 12)), an MMIO region; this machine has
 * no I/O ports, so there is no CF8/CFC.
 *
 * Invariants:
 * - Config space is a byte array and a write mask: a write changes only writable bits, so
 *   BAR sizing works as on hardware (write all ones, read back ~(size - 1) | flags).
 * - A memory BAR decodes (has a region in the MMIO map) exactly when the command register's
 *   memory-space bit is set and [address, address + size) lies above RAM, below 2^52 and
 *   clear of other regions; otherwise it does not decode and the conflict is counted.
 * - A function's DMA port has bus mastering exactly when the command register's bus-master
 *   bit is set.
 * - INTx: the function asserts its GSI while its interrupt condition holds, INTx is not
 *   disabled and MSI is off; functions sharing a GSI are wired-OR. MSI: a message is sent
 *   on each rising edge of the condition; while the vector is masked it sets the pending
 *   bit instead and is sent on unmask.
 * - Config accesses from software (ECAM or readConfig/writeConfig) never throw.
 */

import { type BusTranslator, DmaPort } from "./dma";
import { hex, MachineError } from "./errors";
import type { ApicBus } from "./lapic";
import type { Machine } from "./machine";
import { MMIO_ADDRESS_LIMIT, type MmioOps, type MmioRegion } from "./mmio";

/** Type-0 header offsets (Linux include/uapi/linux/pci_regs.h names). */
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_PROG = 0x09;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
export const PCI_STATUS_INTERRUPT = 0x8;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x4;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x8;
export const PCI_CAP_ID_MSI = 0x05;
/** MSI capability offsets, relative to the capability. */
export const PCI_MSI_FLAGS = 0x02;
export const PCI_MSI_ADDRESS_LO = 0x04;
export const PCI_MSI_ADDRESS_HI = 0x08;
export const PCI_MSI_DATA_32 = 0x08;
export const PCI_MSI_DATA_64 = 0x0c;
export const PCI_MSI_MASK_32 = 0x0c;
export const PCI_MSI_MASK_64 = 0x10;
export const PCI_MSI_PENDING_32 = 0x10;
export const PCI_MSI_PENDING_64 = 0x14;
export const PCI_MSI_FLAGS_ENABLE = 0x1;
export const PCI_MSI_FLAGS_64BIT = 0x80;
export const PCI_MSI_FLAGS_MASKBIT = 0x100;
/** Where this model puts the MSI capability. */
export const PCI_MSI_CAP_OFFSET = 0x50;
/** Bytes of ECAM per bus. */
export const PCI_ECAM_BUS_SIZE = 1 << 20;

/** A memory BAR. */
export interface PciBarSpec {
  /** Bytes: a power of two, at least 4096 (one page, so a BAR can be mapped alone). */
  size: number;
  /** A 64-bit BAR (takes this BAR slot and the next). */
  is64?: boolean;
  prefetchable?: boolean;
  /** The device's registers behind the BAR. */
  ops: MmioOps;
}

/** MSI capability shape. */
export interface PciMsiSpec {
  /** 64-bit message address. */
  is64: boolean;
  /** Per-vector masking (mask and pending bits). */
  perVectorMask: boolean;
}

export interface PciFunctionSpec {
  /** A name for messages and MMIO regions, e.g. "disk". */
  name: string;
  device: number;
  function?: number;
  bus?: number;
  vendorId: number;
  deviceId: number;
  /** 24 bits: class << 16 | subclass << 8 | prog-if. */
  classCode: number;
  revision?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** Up to six BAR slots; a 64-bit BAR leaves its next slot undefined. */
  bars?: (PciBarSpec | undefined)[];
  /** 0 none, 1-4 INTA#-INTD#. */
  interruptPin?: number;
  /** The MSI capability, or omitted for none. */
  msi?: PciMsiSpec;
  /** Bits of DMA address the function drives. */
  dmaMaskBits: number;
}

/** Bus/device/function as one number: bus << 8 | device << 3 | function. */
export function pciBdf(bus: number, device: number, fn: number): number {
  return (bus << 8) | (device << 3) | fn;
}

/** "0000:bb:dd.f", as Linux prints it. */
export function pciName(bdf: number): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, "0");
  return `0000:${h(bdf >>> 8, 2)}:${h((bdf >>> 3) & 0x1f, 2)}.${bdf & 7}`;
}

function isPow2(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

export class PciFunction {
  readonly bdf: number;
  readonly name: string;
  readonly config = new Uint8Array(256);
  private readonly wmask = new Uint8Array(256);
  private readonly barSpecs: (PciBarSpec | null)[] = [null, null, null, null, null, null];
  private readonly decoded: (MmioRegion | null)[] = [null, null, null, null, null, null];
  readonly dma: DmaPort;
  /** The GSI INTx drives (0 when the function has no pin). */
  readonly gsi: number;
  /** Offset of the MSI capability, 0 for none. */
  readonly msiCap: number;
  private readonly msi64: boolean;
  private readonly msiMaskable: boolean;
  private condition = false;
  private intxLevel = false;
  /** MSI messages sent, held pending while masked. */
  msiSent = 0;
  msiPended = 0;
  /** BAR placements that could not decode (overlap RAM or another region, or too high). */
  barConflicts = 0;

  constructor(
    private readonly bus: PciBus,
    spec: PciFunctionSpec,
    bdf: number,
    gsi: number,
  ) {
    this.bdf = bdf;
    this.name = spec.name;
    this.gsi = gsi;
    const c = this.config;
    const dv = new DataView(c.buffer);
    dv.setUint16(PCI_VENDOR_ID, spec.vendorId, true);
    dv.setUint16(PCI_DEVICE_ID, spec.deviceId, true);
    c[PCI_REVISION_ID] = spec.revision ?? 0;
    c[PCI_CLASS_PROG] = spec.classCode & 0xff;
    c[PCI_CLASS_PROG + 1] = (spec.classCode >>> 8) & 0xff;
    c[PCI_CLASS_PROG + 2] = (spec.classCode >>> 16) & 0xff;
    dv.setUint16(PCI_SUBSYSTEM_VENDOR_ID, spec.subsystemVendorId ?? spec.vendorId, true);
    dv.setUint16(PCI_SUBSYSTEM_ID, spec.subsystemId ?? 0, true);
    c[PCI_INTERRUPT_PIN] = spec.interruptPin ?? 0;
    c[PCI_INTERRUPT_LINE] = 0xff; // unknown until firmware routes it
    this.wmask[PCI_INTERRUPT_LINE] = 0xff;
    this.setMask16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
    const bars = spec.bars ?? [];
    for (let i = 0; i < 6; i++) {
      const b = bars[i];
      if (b === undefined) continue;
      const off = PCI_BASE_ADDRESS_0 + 4 * i;
      let flags = 0;
      if (b.is64) flags |= PCI_BASE_ADDRESS_MEM_TYPE_64;
      if (b.prefetchable) flags |= PCI_BASE_ADDRESS_MEM_PREFETCH;
      dv.setUint32(off, flags, true);
      this.setMask32(off, (~(b.size - 1) & 0xffff_fff0) >>> 0);
      if (b.is64) this.setMask32(off + 4, ~Math.floor((b.size - 1) / 2 ** 32) >>> 0);
      this.barSpecs[i] = b;
      if (b.is64) i++;
    }
    if (spec.msi) {
      const cap = PCI_MSI_CAP_OFFSET;
      this.msiCap = cap;
      this.msi64 = spec.msi.is64;
      this.msiMaskable = spec.msi.perVectorMask;
      c[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
      c[PCI_CAPABILITY_LIST] = cap;
      c[cap] = PCI_CAP_ID_MSI;
      c[cap + 1] = 0; // end of list
      let flags = 0;
      if (this.msi64) flags |= PCI_MSI_FLAGS_64BIT;
      if (this.msiMaskable) flags |= PCI_MSI_FLAGS_MASKBIT;
      dv.setUint16(cap + PCI_MSI_FLAGS, flags, true);
      this.setMask16(cap + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE);
      this.setMask32(cap + PCI_MSI_ADDRESS_LO, 0xffff_fffc);
      if (this.msi64) this.setMask32(cap + PCI_MSI_ADDRESS_HI, 0xffff_ffff);
      this.setMask16(cap + (this.msi64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 0xffff);
      if (this.msiMaskable)
        this.setMask32(cap + (this.msi64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32), 1);
    } else {
      this.msiCap = 0;
      this.msi64 = false;
      this.msiMaskable = false;
    }
    this.dma = new DmaPort(bus.machine.dma, {
      maskBits: spec.dmaMaskBits,
      msi: bus.apics === null ? null : (a, d) => bus.apics?.msi(a, d),
    });
    this.dma.busMaster = false;
    this.dma.translator = bus.translator;
  }

  private setMask16(off: number, m: number): void {
    this.wmask[off] = m & 0xff;
    this.wmask[off + 1] = (m >>> 8) & 0xff;
  }

  private setMask32(off: number, m: number): void {
    this.setMask16(off, m & 0xffff);
    this.setMask16(off + 2, m >>> 16);
  }

  private rd(off: number, width: number): number {
    const c = this.config;
    if (width === 1) return c[off];
    if (width === 2) return c[off] | (c[off + 1] << 8);
    return (c[off] | (c[off + 1] << 8) | (c[off + 2] << 16) | (c[off + 3] << 24)) >>> 0;
  }

  /**
   * Reads config space: `width` 1, 2 or 4 bytes, little-endian. Offsets past the 256-byte
   * header and capabilities (PCIe extended space) read 0; a misaligned or bad access reads
   * all ones, as a master abort.
   */
  readConfig(offset: number, width: number): number {
    if (!(width === 1 || width === 2 || width === 4) || !Number.isInteger(offset)) {
      return 0xffff_ffff;
    }
    if (offset < 0 || offset % width !== 0 || offset + width > 4096) return 0xffff_ffff;
    if (offset >= 256) return 0;
    return this.rd(offset, width);
  }

  /** Writes config space; read-only bits keep their value. Bad accesses are dropped. */
  writeConfig(offset: number, width: number, value: number): void {
    if (!(width === 1 || width === 2 || width === 4) || !Number.isInteger(offset)) return;
    if (offset < 0 || offset % width !== 0 || offset + width > 256) return;
    const c = this.config;
    const m = this.wmask;
    const msiMaskOff =
      this.msiCap === 0 ? -1 : this.msiCap + (this.msi64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32);
    const oldMask = msiMaskOff < 0 ? 0 : c[msiMaskOff];
    const oldFlags = this.msiCap === 0 ? 0 : c[this.msiCap + PCI_MSI_FLAGS];
    for (let i = 0; i < width; i++) {
      const o = offset + i;
      const b = (value >>> (8 * i)) & 0xff;
      c[o] = (c[o] & ~m[o]) | (b & m[o]);
    }
    const end = offset + width;
    if (offset < PCI_BASE_ADDRESS_0 + 24 && end > PCI_COMMAND) {
      this.dma.busMaster = (c[PCI_COMMAND] & PCI_COMMAND_MASTER) !== 0;
      this.updateDecoding();
      this.updateIntx();
    }
    if (this.msiCap !== 0 && offset < this.msiCap + 24 && end > this.msiCap) {
      const flags = c[this.msiCap + PCI_MSI_FLAGS];
      if ((flags ^ oldFlags) & PCI_MSI_FLAGS_ENABLE) this.updateIntx();
      if (msiMaskOff >= 0 && (oldMask & 1) !== 0 && (c[msiMaskOff] & 1) === 0) {
        const pend = this.msiCap + (this.msi64 ? PCI_MSI_PENDING_64 : PCI_MSI_PENDING_32);
        if ((c[pend] & 1) !== 0) {
          c[pend] &= ~1;
          this.sendMsi();
        }
      }
    }
  }

  /** Bus address of BAR i, or -1 if there is no BAR there. */
  barAddress(i: number): number {
    const b = this.barSpecs[i];
    if (b === undefined || b === null) return -1;
    const off = PCI_BASE_ADDRESS_0 + 4 * i;
    const lo = this.rd(off, 4) & 0xffff_fff0;
    const hi = b.is64 ? this.rd(off + 4, 4) : 0;
    return hi * 2 ** 32 + (lo >>> 0);
  }

  /** The BAR's spec (size, width), or null. */
  bar(i: number): PciBarSpec | null {
    return this.barSpecs[i] ?? null;
  }

  /** The MMIO region BAR i decodes at now, or null. */
  barRegion(i: number): MmioRegion | null {
    return this.decoded[i] ?? null;
  }

  /** Places BAR i at `address` (what firmware or an OS does with config writes). */
  setBarAddress(i: number, address: number): void {
    const b = this.barSpecs[i];
    if (b === undefined || b === null) return;
    const off = PCI_BASE_ADDRESS_0 + 4 * i;
    if (b.is64) this.writeConfig(off + 4, 4, Math.floor(address / 2 ** 32));
    this.writeConfig(off, 4, address % 2 ** 32);
  }

  private updateDecoding(): void {
    const mem = (this.config[PCI_COMMAND] & PCI_COMMAND_MEMORY) !== 0;
    const mmio = this.bus.machine.mmio;
    const ramBytes = this.bus.machine.ram.bytes;
    for (let i = 0; i < 6; i++) {
      const b = this.barSpecs[i];
      if (b === null) continue;
      const addr = mem ? this.barAddress(i) : -1;
      const cur = this.decoded[i];
      if (cur !== null && cur.base === addr) continue;
      if (cur !== null) {
        mmio.unregister(cur);
        this.decoded[i] = null;
      }
      if (addr < 0) continue;
      if (addr < ramBytes || addr + b.size > MMIO_ADDRESS_LIMIT) {
        this.barConflicts++;
        continue;
      }
      try {
        this.decoded[i] = mmio.register({
          name: `${pciName(this.bdf)} BAR${i}`,
          base: addr,
          len: b.size,
          read: (o, w, out) => b.ops.read(o, w, out),
          write: (o, w, v, h) => b.ops.write(o, w, v, h),
        });
      } catch (e) {
        if (!(e instanceof MachineError && e.code === "MMIO_OVERLAP")) throw e;
        this.barConflicts++;
      }
    }
  }

  /** Whether MSI is enabled in the capability. */
  get msiEnabled(): boolean {
    return (
      this.msiCap !== 0 && (this.config[this.msiCap + PCI_MSI_FLAGS] & PCI_MSI_FLAGS_ENABLE) !== 0
    );
  }

  /** Whether the function asserts its INTx pin now. */
  get intxAsserted(): boolean {
    return this.intxLevel;
  }

  private updateIntx(): void {
    const level =
      this.condition &&
      this.gsi >= 0 &&
      this.config[PCI_INTERRUPT_PIN] !== 0 &&
      (this.rd(PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE) === 0 &&
      !this.msiEnabled;
    if (level === this.intxLevel) return;
    this.intxLevel = level;
    this.bus.setIntx(this.gsi, level);
  }

  private sendMsi(): void {
    const cap = this.msiCap;
    const lo = this.rd(cap + PCI_MSI_ADDRESS_LO, 4);
    const hi = this.msi64 ? this.rd(cap + PCI_MSI_ADDRESS_HI, 4) : 0;
    const data = this.rd(cap + (this.msi64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2);
    this.msiSent++;
    this.dma.sendMsi(hi * 2 ** 32 + lo, data);
  }

  /**
   * The device's interrupt condition (its interrupt status AND its interrupt mask). Drives
   * INTx, or sends an MSI on a rising edge when MSI is enabled.
   */
  setInterrupt(condition: boolean): void {
    const rising = condition && !this.condition;
    this.condition = condition;
    if (condition) this.config[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
    else this.config[PCI_STATUS] &= ~PCI_STATUS_INTERRUPT;
    if (rising && this.msiEnabled) {
      const maskOff = this.msiCap + (this.msi64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32);
      if (this.msiMaskable && (this.config[maskOff] & 1) !== 0) {
        this.msiPended++;
        this.config[this.msiCap + (this.msi64 ? PCI_MSI_PENDING_64 : PCI_MSI_PENDING_32)] |= 1;
      } else {
        this.sendMsi();
      }
    }
    this.updateIntx();
  }
}

export interface PciBusOptions {
  /** ECAM base; default the bottom of the MMIO window. */
  ecamBase?: number;
  /** Buses the ECAM covers (1 MiB each); default 1. */
  buses?: number;
  /** Where firmware starts placing BARs; default just above the ECAM. */
  mmioBase?: number;
}

/** Lowest default base of the MMIO window: 3 GiB, a usual PCI hole. */
const WINDOW_FLOOR = 0xc000_0000;
/** The fixed x86 range firmware keeps BARs out of (IO-APIC, LAPIC/MSI, firmware). */
const FIXED_LO = 0xfec0_0000;
const FIXED_HI = 2 ** 32;

export class PciBus {
  readonly ecamBase: number;
  readonly buses: number;
  private readonly fns = new Map<number, PciFunction>();
  private readonly intxCount: Int32Array;
  private cursor: number;
  /** The IOMMU every function's DMA goes through (null: identity). */
  private iommu: BusTranslator | null = null;

  constructor(
    readonly machine: Machine,
    readonly apics: ApicBus | null,
    options: PciBusOptions = {},
  ) {
    this.buses = options.buses ?? 1;
    if (!(Number.isInteger(this.buses) && this.buses >= 1 && this.buses <= 256)) {
      throw new MachineError("PCI_BAD_CONFIG", `buses must be 1 to 256, got ${this.buses}`);
    }
    const window = Math.ceil(Math.max(machine.ram.bytes, WINDOW_FLOOR) / 0x1000_0000) * 0x1000_0000;
    this.ecamBase = options.ecamBase ?? window;
    this.cursor = options.mmioBase ?? this.ecamBase + this.buses * PCI_ECAM_BUS_SIZE;
    this.intxCount = new Int32Array(machine.irqs.nrLines);
    machine.mmio.register({
      name: "pci ecam",
      base: this.ecamBase,
      len: this.buses * PCI_ECAM_BUS_SIZE,
      read: (off, width, out) => {
        if (width === 8) {
          const lo = this.ecamRead(off, 4);
          out.hi = this.ecamRead(off + 4, 4);
          return lo;
        }
        return this.ecamRead(off, width);
      },
      write: (off, width, value, hi) => {
        if (width === 8) {
          this.ecamWrite(off, 4, value);
          this.ecamWrite(off + 4, 4, hi);
        } else this.ecamWrite(off, width, value);
      },
    });
  }

  /** The IOMMU (bus -> machine address) for every function; null for identity. */
  get translator(): BusTranslator | null {
    return this.iommu;
  }

  set translator(t: BusTranslator | null) {
    this.iommu = t;
    for (const f of this.fns.values()) f.dma.translator = t;
  }

  private ecamRead(off: number, width: number): number {
    const f = this.fns.get(off >>> 12);
    return f === undefined ? 2 ** (8 * width) - 1 : f.readConfig(off & 0xfff, width);
  }

  private ecamWrite(off: number, width: number, value: number): void {
    this.fns.get(off >>> 12)?.writeConfig(off & 0xfff, width, value);
  }

  /** Reads config space of bus:device.function; an absent function reads all ones. */
  configRead(bdf: number, offset: number, width: number): number {
    const f = this.fns.get(bdf);
    return f === undefined ? 2 ** (8 * width) - 1 : f.readConfig(offset, width);
  }

  /** Writes config space; an absent function drops it. */
  configWrite(bdf: number, offset: number, width: number, value: number): void {
    this.fns.get(bdf)?.writeConfig(offset, width, value);
  }

  /** The function at bdf, if any. */
  get(bdf: number): PciFunction | undefined {
    return this.fns.get(bdf);
  }

  /** All functions, by bdf. */
  list(): PciFunction[] {
    return [...this.fns.values()].sort((a, b) => a.bdf - b.bdf);
  }

  /** The GSI a pin of a device slot routes to: the usual swizzle onto GSIs 16-19. */
  gsiFor(device: number, pin: number): number {
    const n = this.machine.irqs.nrLines;
    const swz = (device + pin - 1) & 3;
    return n >= 20 ? 16 + swz : swz % n;
  }

  /** Adds a function. A bad spec or a taken slot throws a MachineError. */
  addFunction(spec: PciFunctionSpec): PciFunction {
    const bus = spec.bus ?? 0;
    const fn = spec.function ?? 0;
    const dev = spec.device;
    if (
      !(
        Number.isInteger(bus) &&
        bus >= 0 &&
        bus < this.buses &&
        Number.isInteger(dev) &&
        dev >= 0 &&
        dev < 32 &&
        Number.isInteger(fn) &&
        fn >= 0 &&
        fn < 8
      )
    ) {
      throw new MachineError(
        "PCI_BAD_CONFIG",
        `PCI address ${bus}:${dev}.${fn} of "${spec.name}" is out of range: bus 0..${this.buses - 1}, device 0..31, function 0..7`,
      );
    }
    const bdf = pciBdf(bus, dev, fn);
    if (this.fns.has(bdf)) {
      throw new MachineError(
        "PCI_SLOT_BUSY",
        `${pciName(bdf)} already holds "${this.fns.get(bdf)?.name}"; pick another device number`,
      );
    }
    const bars = spec.bars ?? [];
    if (bars.length > 6) {
      throw new MachineError("PCI_BAD_CONFIG", `"${spec.name}" has ${bars.length} BARs; at most 6`);
    }
    for (let i = 0; i < bars.length; i++) {
      const b = bars[i];
      if (b === undefined) continue;
      if (!(isPow2(b.size) && b.size >= 4096 && (b.is64 || b.size <= 2 ** 31))) {
        throw new MachineError(
          "PCI_BAD_CONFIG",
          `BAR${i} of "${spec.name}" has size ${b.size}; a BAR is a power of two of at least 4096 bytes (at most 2 GiB unless 64-bit)`,
        );
      }
      if (b.is64 && (i === 5 || bars[i + 1] !== undefined)) {
        throw new MachineError(
          "PCI_BAD_CONFIG",
          `BAR${i} of "${spec.name}" is 64-bit, so it also takes slot ${i + 1}: leave that slot undefined`,
        );
      }
    }
    const pin = spec.interruptPin ?? 0;
    if (!(Number.isInteger(pin) && pin >= 0 && pin <= 4)) {
      throw new MachineError(
        "PCI_BAD_CONFIG",
        `interruptPin is 0 (none) or 1-4 (INTA-INTD), got ${pin}`,
      );
    }
    for (const [k, v] of [
      ["vendorId", spec.vendorId],
      ["deviceId", spec.deviceId],
    ] as const) {
      if (!(Number.isInteger(v) && v >= 0 && v < 0xffff)) {
        throw new MachineError(
          "PCI_BAD_CONFIG",
          `${k} of "${spec.name}" must be 0..0xfffe, got ${v}`,
        );
      }
    }
    const f = new PciFunction(this, spec, bdf, pin === 0 ? -1 : this.gsiFor(dev, pin));
    this.fns.set(bdf, f);
    return f;
  }

  /** Wired-OR of the functions that share a GSI. */
  setIntx(gsi: number, level: boolean): void {
    if (level) {
      if (this.intxCount[gsi]++ === 0) this.machine.irqs.raise(gsi);
    } else if (--this.intxCount[gsi] === 0) this.machine.irqs.lower(gsi);
  }

  /**
   * What firmware does at boot: sizes every BAR the PCI way (write all ones, read the mask
   * back), places it naturally aligned in the MMIO window above RAM, writes the GSI into the
   * interrupt line register and turns on memory decoding. Bus mastering stays off: a driver
   * turns it on. Throws PCI_NO_SPACE when a 32-bit BAR does not fit below the fixed x86 range.
   */
  assignResources(): void {
    for (const f of this.list()) {
      for (let i = 0; i < 6; i++) {
        const b = f.bar(i);
        if (b === null) continue;
        const off = PCI_BASE_ADDRESS_0 + 4 * i;
        f.writeConfig(off, 4, 0xffff_ffff);
        let size = (~(f.readConfig(off, 4) & 0xffff_fff0) >>> 0) + 1;
        if (b.is64) {
          f.writeConfig(off + 4, 4, 0xffff_ffff);
          const hiMask = f.readConfig(off + 4, 4);
          if (hiMask !== 0xffff_ffff) size = (~hiMask >>> 0) * 2 ** 32 + 2 ** 32;
        }
        let addr = Math.ceil(this.cursor / size) * size;
        if (addr < FIXED_HI && addr + size > FIXED_LO) addr = Math.ceil(FIXED_HI / size) * size;
        if (!b.is64 && addr + size > FIXED_LO) {
          throw new MachineError(
            "PCI_NO_SPACE",
            `32-bit BAR${i} of ${pciName(f.bdf)} (${size} bytes) does not fit below ${hex(FIXED_LO)}; ` +
              "give the machine less RAM, pass a lower mmioBase, or make the BAR 64-bit",
          );
        }
        f.setBarAddress(i, addr);
        this.cursor = addr + size;
        if (b.is64) i++;
      }
      if (f.gsi >= 0) f.writeConfig(PCI_INTERRUPT_LINE, 1, f.gsi);
      f.writeConfig(PCI_COMMAND, 2, f.readConfig(PCI_COMMAND, 2) | PCI_COMMAND_MEMORY);
    }
  }
}
