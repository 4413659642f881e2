/*
 * Local APICs (Intel SDM vol. 3 ch. 10/11, xAPIC mode) and the APIC bus that carries
 * interrupt messages from IO-APICs and MSI writes to them.
 *
 * Invariants of a LocalApic:
 * - IRR, ISR and TMR are 256-bit sets in Uint32Array(8). A vector is in at most one of IRR and
 *   ISR at a time after dispatch; vectors 0-15 are illegal and never enter either (counted).
 * - A vector is dispatched (IRR -> ISR, delivery callback) only when its priority class
 *   (vector >> 4) is above the processor priority: max(TPR class, highest ISR class).
 * - EOI retires the highest vector in service; if its TMR bit is set (level-triggered), the
 *   EOI is broadcast to the IO-APICs unless EOI broadcast is suppressed (directed EOI).
 * - The delivery callback runs synchronously; a dispatch it causes (its own EOI, a TPR drop)
 *   runs after it returns, never nested, as IrqLines does.
 * - Register accesses (read/write by offset) come from software and never throw.
 */

import { MachineError } from "./errors";

/** xAPIC register offsets (SDM vol. 3 table 11-1). */
export const APIC_ID = 0x20;
export const APIC_LVR = 0x30;
export const APIC_TASKPRI = 0x80;
export const APIC_PROCPRI = 0xa0;
export const APIC_EOI = 0xb0;
export const APIC_LDR = 0xd0;
export const APIC_SPIV = 0xf0;
export const APIC_ISR = 0x100;
export const APIC_TMR = 0x180;
export const APIC_IRR = 0x200;
/** SPIV bit 12: suppress EOI broadcast (the LAPIC half of directed EOI). */
export const APIC_SPIV_DIRECTED_EOI = 1 << 12;
/** Version register: version 0x14 (integrated xAPIC), 6 LVT entries, directed EOI supported. */
export const APIC_VERSION = 0x14 | (5 << 16) | (1 << 24);

/**
 * Called when the CPU takes a vector (it moved from IRR to ISR). The handler acknowledges
 * with `apic.eoi()`, now or later.
 */
export type ApicDeliver = (vector: number, apic: LocalApic) => void;
/**
 * Called when an interrupt message reaches this LAPIC, before it is latched in IRR. Return
 * true to take it (a hypervisor injecting it into a guest instead); the LAPIC then forgets it.
 */
export type ApicIntercept = (vector: number, level: boolean, apic: LocalApic) => boolean;

const STORM_LIMIT = 100_000;

function highest(set: Uint32Array): number {
  for (let w = 7; w >= 0; w--) {
    const x = set[w];
    if (x !== 0) return w * 32 + 31 - Math.clz32(x);
  }
  return -1;
}

export class LocalApic {
  /** The APIC ID (0-254; 255 is broadcast). */
  readonly id: number;
  /** Logical destination (LDR bits 24-31, flat model). Reset: 1 << id for ids below 8. */
  ldr: number;
  private tprValue = 0;
  private spiv = 0xff;
  readonly irr = new Uint32Array(8);
  readonly isr = new Uint32Array(8);
  readonly tmr = new Uint32Array(8);
  onDeliver: ApicDeliver | null = null;
  intercept: ApicIntercept | null = null;
  /** Messages accepted (latched or intercepted), dispatched, intercepted, illegal, EOIs. */
  accepted = 0;
  delivered = 0;
  intercepted = 0;
  illegal = 0;
  eois = 0;
  private running = false;
  private readonly bus: ApicBus | null;

  constructor(id: number, bus: ApicBus | null = null) {
    if (!(Number.isInteger(id) && id >= 0 && id <= 254)) {
      throw new MachineError(
        "APIC_BAD_CONFIG",
        `an APIC ID is a whole number from 0 to 254 (255 is broadcast), got ${id}`,
      );
    }
    this.id = id;
    this.ldr = id < 8 ? 1 << id : 0;
    this.bus = bus;
  }

  /** Task priority (0-255). Lowering it may dispatch a waiting vector. */
  get tpr(): number {
    return this.tprValue;
  }

  set tpr(v: number) {
    this.tprValue = v & 0xff;
    this.dispatch();
  }

  /** Processor priority: the higher of TPR and the highest in-service class. */
  get ppr(): number {
    const s = highest(this.isr);
    const isrClass = s < 0 ? 0 : s & 0xf0;
    return (this.tprValue & 0xf0) >= isrClass ? this.tprValue : isrClass;
  }

  /** Whether directed EOI is on (EOI broadcast suppressed). */
  get suppressEoiBroadcast(): boolean {
    return (this.spiv & APIC_SPIV_DIRECTED_EOI) !== 0;
  }

  /** The highest vector in IRR or ISR, or -1. */
  highestIrr(): number {
    return highest(this.irr);
  }

  highestIsr(): number {
    return highest(this.isr);
  }

  private test(set: Uint32Array, v: number): boolean {
    return (set[v >>> 5] & (1 << (v & 31))) !== 0;
  }

  inIrr(v: number): boolean {
    return this.test(this.irr, v & 0xff);
  }

  inIsr(v: number): boolean {
    return this.test(this.isr, v & 0xff);
  }

  /** An interrupt message for this LAPIC (fixed delivery). Never throws on the vector. */
  accept(vector: number, level: boolean): void {
    const v = vector & 0xff;
    if (v < 16 || vector !== v) {
      this.illegal++;
      return;
    }
    this.accepted++;
    if (this.intercept?.(v, level, this) === true) {
      this.intercepted++;
      return;
    }
    const w = v >>> 5;
    const bit = 1 << (v & 31);
    this.irr[w] |= bit;
    if (level) this.tmr[w] |= bit;
    else this.tmr[w] &= ~bit;
    this.dispatch();
  }

  /** Moves deliverable vectors from IRR to ISR and calls the delivery callback for each. */
  dispatch(): void {
    if (this.running) return; // the running loop re-reads IRR after the callback
    this.running = true;
    let rounds = 0;
    try {
      for (;;) {
        const v = highest(this.irr);
        if (v < 0 || (v & 0xf0) <= (this.ppr & 0xf0)) break;
        if (++rounds > STORM_LIMIT) {
          throw new MachineError(
            "IRQ_STORM",
            `LAPIC ${this.id} dispatched ${STORM_LIMIT} vectors inside one call: a handler ` +
              "acknowledges a level interrupt while its device keeps asserting it",
          );
        }
        const w = v >>> 5;
        const bit = 1 << (v & 31);
        this.irr[w] &= ~bit;
        this.isr[w] |= bit;
        this.delivered++;
        this.onDeliver?.(v, this);
      }
    } finally {
      this.running = false;
    }
  }

  /** End of interrupt: retires the highest vector in service. */
  eoi(): void {
    const v = highest(this.isr);
    if (v < 0) return;
    this.eois++;
    const w = v >>> 5;
    const bit = 1 << (v & 31);
    this.isr[w] &= ~bit;
    if ((this.tmr[w] & bit) !== 0 && !this.suppressEoiBroadcast) this.bus?.eoiBroadcast(v);
    this.dispatch();
  }

  /** Reads a 32-bit register at an xAPIC offset; unknown offsets read 0. */
  read(offset: number): number {
    switch (offset) {
      case APIC_ID:
        return (this.id << 24) >>> 0;
      case APIC_LVR:
        return APIC_VERSION;
      case APIC_TASKPRI:
        return this.tprValue;
      case APIC_PROCPRI:
        return this.ppr;
      case APIC_LDR:
        return (this.ldr << 24) >>> 0;
      case APIC_SPIV:
        return this.spiv;
    }
    if (offset >= APIC_ISR && offset < APIC_IRR + 0x80 && (offset & 0xf) === 0) {
      const i = (offset - APIC_ISR) >>> 4;
      const set = i < 8 ? this.isr : i < 16 ? this.tmr : this.irr;
      return set[i & 7] >>> 0;
    }
    return 0;
  }

  /** Writes a 32-bit register at an xAPIC offset; read-only and unknown offsets ignore it. */
  write(offset: number, value: number): void {
    switch (offset) {
      case APIC_TASKPRI:
        this.tpr = value;
        return;
      case APIC_EOI:
        this.eoi();
        return;
      case APIC_LDR:
        this.ldr = (value >>> 24) & 0xff;
        return;
      case APIC_SPIV:
        this.spiv = value & (0x1ff | APIC_SPIV_DIRECTED_EOI);
        return;
    }
  }
}

/** Something that takes EOI broadcasts: an IO-APIC. */
export interface EoiListener {
  eoi(vector: number): void;
}

/** MSI address fields (Intel SDM vol. 3 §11.11.1). */
export const MSI_ADDR_DEST_SHIFT = 12;
export const MSI_ADDR_DEST_MODE_LOGICAL = 1 << 2;
/** MSI data fields (§11.11.2). */
export const MSI_DATA_TRIGGER_LEVEL = 1 << 15;
export const MSI_DATA_DELIVERY_SHIFT = 8;

/** Delivery modes of an interrupt message. */
export const DELIVERY_FIXED = 0;
export const DELIVERY_LOWEST = 1;

/** The LAPICs of a machine, one per pCPU, and the messages between them and the IO-APICs. */
export class ApicBus {
  readonly lapics: LocalApic[] = [];
  private readonly listeners: EoiListener[] = [];
  /** Messages that found no LAPIC, and messages with a delivery mode this model drops. */
  undeliverable = 0;
  unsupported = 0;
  msis = 0;

  /** One LAPIC per CPU, APIC ID = CPU id. */
  constructor(nrCpus: number) {
    if (!(Number.isInteger(nrCpus) && nrCpus >= 1 && nrCpus <= 255)) {
      throw new MachineError(
        "APIC_BAD_CONFIG",
        `an APIC bus holds 1 to 255 local APICs (xAPIC IDs are 8 bits), got ${nrCpus}`,
      );
    }
    for (let i = 0; i < nrCpus; i++) this.lapics.push(new LocalApic(i, this));
  }

  /** Registers an IO-APIC for EOI broadcasts. */
  addEoiListener(l: EoiListener): void {
    this.listeners.push(l);
  }

  eoiBroadcast(vector: number): void {
    for (const l of this.listeners) l.eoi(vector);
  }

  /**
   * Delivers a message. Physical mode: `dest` is an APIC ID, 0xff broadcast. Logical mode
   * (flat model): `dest` is a bit mask matched against each LDR. Lowest priority goes to the
   * matching LAPIC with the lowest TPR (lowest ID on a tie). Returns whether any LAPIC took it.
   */
  deliver(dest: number, logical: boolean, mode: number, vector: number, level: boolean): boolean {
    if (mode !== DELIVERY_FIXED && mode !== DELIVERY_LOWEST) {
      this.unsupported++;
      return false;
    }
    let best: LocalApic | null = null;
    let any = false;
    for (const a of this.lapics) {
      const match = logical ? (a.ldr & dest) !== 0 : dest === 0xff || a.id === dest;
      if (!match) continue;
      if (mode === DELIVERY_LOWEST) {
        if (best === null || a.tpr < best.tpr) best = a;
      } else {
        any = true;
        a.accept(vector, level);
      }
    }
    if (best !== null) {
      best.accept(vector, level);
      return true;
    }
    if (!any) this.undeliverable++;
    return any;
  }

  /** An MSI write: decodes address and data and delivers. */
  msi(address: number, data: number): void {
    this.msis++;
    const dest = (address >>> MSI_ADDR_DEST_SHIFT) & 0xff;
    const logical = (address & MSI_ADDR_DEST_MODE_LOGICAL) !== 0;
    const mode = (data >>> MSI_DATA_DELIVERY_SHIFT) & 7;
    this.deliver(dest, logical, mode, data & 0xff, (data & MSI_DATA_TRIGGER_LEVEL) !== 0);
  }
}
