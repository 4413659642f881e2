/*
 * An IO-APIC after the Intel 82093AA datasheet: IOREGSEL at 0x00 and IOWIN at 0x10 of its
 * MMIO page, registers ID (0x00), VER (0x01), ARB (0x02) and 24 redirection entries
 * (0x10 + 2n low dword, 0x11 + 2n high dword), plus the EOI register at 0x40 of the later
 * IOxAPIC (version 0x20), which directed EOI uses.
 *
 * Invariants:
 * - Pin n drives GSI gsiBase + n of the machine's IrqLines. The line's trigger and mask are
 *   always those of the entry (the IO-APIC programs the line on every entry write); Remote
 *   IRR is the line's in-service bit, so it is set by delivery of a level entry and cleared
 *   by an EOI for the entry's vector (LAPIC broadcast or the EOI register).
 * - Software register accesses (MMIO, readRte/writeRte) never throw; bad indices read 0 and
 *   writes to them are dropped. Read-only bits (delivery status, Remote IRR) ignore writes.
 * - Polarity is stored and read back but inverts nothing: a line's input is modelled as its
 *   logical state (asserted or not), whatever the wire level that means.
 * - A claimed pin (claim(gsi, handler)) is delivered to the claimer instead of the APIC bus:
 *   a hypervisor that owns the IO-APIC, as Xen does, takes the line there.
 */

import { MachineError } from "./errors";
import type { IrqHandler, IrqLines } from "./irq";
import type { ApicBus } from "./lapic";
import type { MmioMap, MmioRegion } from "./mmio";

/** The IO-APIC's default MMIO base (x86 convention; ACPI MADT reports it). */
export const IO_APIC_DEFAULT_BASE = 0xfec0_0000;
export const IO_APIC_REGSEL = 0x00;
export const IO_APIC_WINDOW = 0x10;
export const IO_APIC_EOI = 0x40;
export const IO_APIC_ID = 0x00;
export const IO_APIC_VER = 0x01;
export const IO_APIC_ARB = 0x02;
export const IO_APIC_REDTBL = 0x10;
/** Version 0x20: the IOxAPIC with an EOI register. */
export const IO_APIC_VERSION = 0x20;

/** Redirection entry, low dword. */
export const IO_APIC_RTE_VECTOR = 0xff;
export const IO_APIC_RTE_DELMODE_SHIFT = 8;
export const IO_APIC_RTE_DESTMODE_LOGICAL = 1 << 11;
export const IO_APIC_RTE_DELIVERY_STATUS = 1 << 12;
export const IO_APIC_RTE_POLARITY_LOW = 1 << 13;
export const IO_APIC_RTE_REMOTE_IRR = 1 << 14;
export const IO_APIC_RTE_LEVEL = 1 << 15;
export const IO_APIC_RTE_MASKED = 1 << 16;
/** High dword: destination in bits 24-31. */
export const IO_APIC_RTE_DEST_SHIFT = 24;

const LO_WRITABLE = ~(IO_APIC_RTE_DELIVERY_STATUS | IO_APIC_RTE_REMOTE_IRR) & 0x1ffff;

export interface IoApicOptions {
  /** APIC ID of the IO-APIC (0-15); default the number of CPUs, as firmware often does. */
  id?: number;
  /** MMIO base; default 0xFEC00000. */
  base?: number;
  /** First GSI of pin 0; default 0. */
  gsiBase?: number;
  /** Pins (redirection entries); default 24, or fewer if the machine has fewer lines. */
  pins?: number;
}

export class IoApic {
  readonly base: number;
  readonly gsiBase: number;
  readonly pins: number;
  id: number;
  private regsel = 0;
  private readonly lo: Uint32Array;
  private readonly hi: Uint32Array;
  private readonly claimed: (IrqHandler | null)[];
  private readonly region: MmioRegion;
  /** Messages sent to the APIC bus, and EOIs that cleared a Remote IRR. */
  delivered = 0;
  eoisApplied = 0;
  private readonly ownHandler: IrqHandler;

  constructor(
    readonly irqs: IrqLines,
    readonly apics: ApicBus,
    mmio: MmioMap,
    options: IoApicOptions = {},
  ) {
    this.base = options.base ?? IO_APIC_DEFAULT_BASE;
    this.gsiBase = options.gsiBase ?? 0;
    const room = irqs.nrLines - this.gsiBase;
    this.pins = options.pins ?? Math.min(24, room);
    if (!(Number.isInteger(this.pins) && this.pins >= 1 && this.pins <= 240 && this.pins <= room)) {
      throw new MachineError(
        "APIC_BAD_CONFIG",
        `an IO-APIC with gsiBase ${this.gsiBase} needs 1 to ${Math.min(240, room)} pins here ` +
          `(the machine has ${irqs.nrLines} lines), got ${this.pins}`,
      );
    }
    this.id = options.id ?? Math.min(apics.lapics.length, 15);
    this.lo = new Uint32Array(this.pins).fill(IO_APIC_RTE_MASKED);
    this.hi = new Uint32Array(this.pins);
    this.claimed = new Array(this.pins).fill(null);
    this.ownHandler = (gsi) => this.fire(gsi - this.gsiBase);
    for (let p = 0; p < this.pins; p++) {
      irqs.configure(this.gsiBase + p, "edge");
      irqs.mask(this.gsiBase + p);
      irqs.setHandler(this.gsiBase + p, this.ownHandler);
    }
    apics.addEoiListener(this);
    this.region = mmio.register({
      name: `ioapic ${this.id}`,
      base: this.base,
      len: 0x1000,
      read: (off, width) => this.mmioRead(off, width),
      write: (off, width, value) => this.mmioWrite(off, width, value),
    });
  }

  /** The MMIO region this IO-APIC answers. */
  get mmioRegion(): MmioRegion {
    return this.region;
  }

  private mmioRead(off: number, width: number): number {
    if (width !== 4) return off === IO_APIC_REGSEL && width === 1 ? this.regsel : 0;
    if (off === IO_APIC_REGSEL) return this.regsel;
    if (off === IO_APIC_WINDOW) return this.readRegister(this.regsel);
    return 0;
  }

  private mmioWrite(off: number, width: number, value: number): void {
    if (off === IO_APIC_REGSEL && (width === 1 || width === 4)) this.regsel = value & 0xff;
    else if (off === IO_APIC_WINDOW && width === 4) this.writeRegister(this.regsel, value);
    else if (off === IO_APIC_EOI && width === 4) this.eoi(value & 0xff);
  }

  /** Reads an indirect register (what IOWIN returns after IOREGSEL = index). */
  readRegister(index: number): number {
    if (index === IO_APIC_ID || index === IO_APIC_ARB) return ((this.id & 0xf) << 24) >>> 0;
    if (index === IO_APIC_VER) return (IO_APIC_VERSION | ((this.pins - 1) << 16)) >>> 0;
    const pin = (index - IO_APIC_REDTBL) >> 1;
    if (index < IO_APIC_REDTBL || pin >= this.pins) return 0;
    return (index & 1) === 0 ? this.readRte(pin).lo : this.hi[pin];
  }

  /** Writes an indirect register. */
  writeRegister(index: number, value: number): void {
    if (index === IO_APIC_ID) {
      this.id = (value >>> 24) & 0xf;
      return;
    }
    const pin = (index - IO_APIC_REDTBL) >> 1;
    if (index < IO_APIC_REDTBL || pin >= this.pins) return;
    if ((index & 1) === 0) this.writeRte(pin, value, this.hi[pin]);
    else this.hi[pin] = value & 0xff00_0000;
  }

  /** A redirection entry with its read-only bits filled in from the line. */
  readRte(pin: number): { lo: number; hi: number } {
    if (!(Number.isInteger(pin) && pin >= 0 && pin < this.pins)) return { lo: 0, hi: 0 };
    const st = this.irqs.state(this.gsiBase + pin);
    let lo = this.lo[pin];
    if (st.inService && (lo & IO_APIC_RTE_LEVEL) !== 0) lo |= IO_APIC_RTE_REMOTE_IRR;
    if (st.pending && st.masked) lo |= IO_APIC_RTE_DELIVERY_STATUS;
    return { lo: lo >>> 0, hi: this.hi[pin] >>> 0 };
  }

  /**
   * Programs a redirection entry and the line behind it. Changing the trigger mode resets
   * the line's latched state (Remote IRR is meaningless for edge); unmasking delivers what
   * the line holds.
   */
  writeRte(pin: number, lo: number, hi: number): void {
    if (!(Number.isInteger(pin) && pin >= 0 && pin < this.pins)) return;
    const gsi = this.gsiBase + pin;
    const old = this.lo[pin];
    const now = lo & LO_WRITABLE;
    this.lo[pin] = now;
    this.hi[pin] = hi & 0xff00_0000;
    const level = (now & IO_APIC_RTE_LEVEL) !== 0;
    if (level !== ((old & IO_APIC_RTE_LEVEL) !== 0)) {
      this.irqs.configure(gsi, level ? "level" : "edge");
    }
    if ((now & IO_APIC_RTE_MASKED) !== 0) this.irqs.mask(gsi);
    else this.irqs.unmask(gsi);
  }

  /** An EOI for `vector`: clears Remote IRR of every level entry with that vector. */
  eoi(vector: number): void {
    for (let p = 0; p < this.pins; p++) {
      const lo = this.lo[p];
      if ((lo & IO_APIC_RTE_VECTOR) !== vector || (lo & IO_APIC_RTE_LEVEL) === 0) continue;
      const gsi = this.gsiBase + p;
      if (this.claimed[p] !== null || !this.irqs.inService(gsi)) continue;
      this.eoisApplied++;
      this.irqs.eoi(gsi);
    }
  }

  /** Sends pin's entry as a message to the APIC bus. */
  private fire(pin: number): void {
    const lo = this.lo[pin];
    this.delivered++;
    this.apics.deliver(
      this.hi[pin] >>> IO_APIC_RTE_DEST_SHIFT,
      (lo & IO_APIC_RTE_DESTMODE_LOGICAL) !== 0,
      (lo >>> IO_APIC_RTE_DELMODE_SHIFT) & 7,
      lo & IO_APIC_RTE_VECTOR,
      (lo & IO_APIC_RTE_LEVEL) !== 0,
    );
  }

  private checkGsi(gsi: number): number {
    const pin = gsi - this.gsiBase;
    if (!(Number.isInteger(pin) && pin >= 0 && pin < this.pins)) {
      throw new MachineError(
        "APIC_BAD_CONFIG",
        `GSI ${gsi} is not a pin of this IO-APIC (GSIs ${this.gsiBase} .. ${this.gsiBase + this.pins - 1})`,
      );
    }
    return pin;
  }

  /**
   * Takes delivery of a GSI away from the APIC bus: `handler` runs instead when the line
   * fires. The claimer acknowledges a level line with `irqs.eoi(gsi)` itself; LAPIC EOI
   * broadcasts no longer reach it. This is the hook a hypervisor that owns the IO-APIC uses.
   */
  claim(gsi: number, handler: IrqHandler): void {
    const pin = this.checkGsi(gsi);
    if (typeof handler !== "function") {
      throw new MachineError("APIC_BAD_CONFIG", "claim(gsi, handler) needs a handler function");
    }
    this.claimed[pin] = handler;
    this.irqs.setHandler(gsi, handler);
  }

  /** Gives a claimed GSI back to the IO-APIC's own delivery. */
  release(gsi: number): void {
    const pin = this.checkGsi(gsi);
    this.claimed[pin] = null;
    this.irqs.setHandler(gsi, this.ownHandler);
  }

  /** Whether a GSI is claimed. */
  isClaimed(gsi: number): boolean {
    return this.claimed[this.checkGsi(gsi)] !== null;
  }
}
