/*
 * Xen's physical interrupt layer (xen/arch/x86/irq.c, physdev.c, io_apic.c's guest hooks)
 * as the `irq` slot: GSIs and MSIs become Xen irqs, domains name them by pirq, and a firing
 * line reaches every bound domain through the `evtchn` slot's sendPirq.
 *
 * Invariants:
 * - Per domain, pirqToIrq and irqToPirq are inverse one-to-one maps (-1 = none), and a pirq
 *   is mapped only to an irq the domain's irq_caps hold; the evtchn slot's pirq permission is
 *   set exactly for mapped pirqs.
 * - An irq's sharers are distinct domains that mapped it and bound their pirq; more than one
 *   only if the first binder and every later one asked for BIND_PIRQ__WILL_SHARE.
 * - inFlight[irq] equals the number of sharers whose `masked` flag is set; a level line stays
 *   un-EOId at the IO-APIC while it is above zero, and a 1 ms timer (model time) is armed
 *   then, which forces the EOI for everyone.
 * - Every GSI pin is claimed from the IO-APIC at setup (Xen owns it); guest writes to the
 *   IO-APIC go through apic_write, which keeps Xen's vector and destination.
 * - An MSI irq exists exactly while some domain maps it; while it exists its function's MSI
 *   capability holds Xen's message (its vector, on CPU 0) and is enabled, and vectorIrq names
 *   it, so the device's write reaches do_IRQ through the LAPIC Xen owns.
 * - Nothing a guest passes throws: bad values get Xen 4.17's negative errno.
 */
import {
  EBUSY,
  EEXIST,
  EINVAL,
  ENODEV,
  ENOSPC,
  EPERM,
  XENIRQSTAT_needs_eoi,
  XENIRQSTAT_shared,
} from "@hyperlab/abi";
import {
  type Domain,
  type EvtchnService,
  type IrqService,
  PGT_writable_page,
  type PirqSource,
  type PirqStatus,
  type SetupContext,
} from "@hyperlab/core";
import {
  IO_APIC_REDTBL,
  IO_APIC_RTE_LEVEL,
  IO_APIC_RTE_MASKED,
  IO_APIC_RTE_POLARITY_LOW,
  type PciFunction,
  type Platform,
} from "@hyperlab/machine";
import { apicHooksError } from "./errors";
import { interceptMsiVectors, msiCapabilityInit, msiDisable } from "./msi";

/** Xen's ack types (irq_acktype): none for edge and maskable MSI, EOI for IO-APIC level. */
export const ACKTYPE_NONE = 0;
export const ACKTYPE_UNMASK = 1;
export const ACKTYPE_EOI = 2;

const KIND_FREE = 0;
const KIND_GSI = 1;
const KIND_MSI = 2;

/** Xen's forced-EOI timeout for a guest that does not EOI: 1 ms. */
export const FORCED_EOI_NS = 1_000_000;

/** The first vector Xen hands out to IO-APIC pins in this model. */
const XEN_VECTOR_BASE = 0x30;
/** The last vector Xen gives a device (below its own system vectors). */
const XEN_LAST_DYNAMIC_VECTOR = 0xdf;

export interface ApicHooksOptions {
  /** The chipset whose IO-APIC Xen takes over; default createPlatform(machine) at setup. */
  platform?: Platform;
  /** Xen's d->nr_pirqs; must not exceed the evtchn plugin's nrPirqs. Default 256. */
  nrPirqs?: number;
  /** Dynamic irqs for MSI above nr_irqs_gsi. Default 64. */
  nrMsiIrqs?: number;
  /** Xen's irq-max-guests: sharers of one irq. Default 32. */
  irqMaxGuests?: number;
}

/** Per-domain pirq state (Xen's d->arch.pirq_irq / irq_pirq, pirq->masked, irq_caps). */
class PirqDomain {
  readonly pirqToIrq: Int32Array;
  readonly irqToPirq: Int32Array;
  readonly caps: Uint8Array;
  readonly masked: Uint8Array;
  readonly bound: Uint8Array;
  eoiMfn = -1;
  autoUnmask = false;
  constructor(
    readonly d: Domain,
    nrPirqs: number,
    nrIrqs: number,
  ) {
    this.pirqToIrq = new Int32Array(nrPirqs).fill(-1);
    this.irqToPirq = new Int32Array(nrIrqs).fill(-1);
    this.caps = new Uint8Array(nrIrqs);
    this.masked = new Uint8Array(nrPirqs);
    this.bound = new Uint8Array(nrPirqs);
  }
}

function int(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x);
}

/** Counters the bench and tests read. */
export interface ApicHooksCounters {
  /** Line deliveries taken by Xen (do_IRQ). */
  delivered: number;
  /** Events sent to sharers (send_guest_pirq). */
  sent: number;
  /** EOIs Xen forced after the 1 ms timeout. */
  forcedEois: number;
  /** Deliveries of a line nobody had bound. */
  unbound: number;
}

export class ApicHooks implements IrqService {
  readonly nrIrqsGsi: number;
  readonly nrIrqs: number;
  private readonly nrPirqsOpt: number;
  private readonly maxGuests: number;
  private readonly evtchn: EvtchnService;
  private readonly platform: Platform;
  private readonly doms: (PirqDomain | undefined)[] = [];
  private readonly kind: Uint8Array;
  private readonly ackType: Uint8Array;
  private readonly shareable: Uint8Array;
  private readonly inFlight: Int32Array;
  private readonly timer: Float64Array;
  private readonly gsiSetup: Uint8Array;
  private readonly msiBdf: Int32Array;
  /** Which MSI irq each LAPIC vector belongs to (-1: none), as Xen's per-CPU vector_irq. */
  private readonly vectorIrq = new Int32Array(256).fill(-1);
  private readonly sharers: number[][];
  private readonly timerCbs: ((now: number) => void)[];
  readonly counters: ApicHooksCounters = { delivered: 0, sent: 0, forcedEois: 0, unbound: 0 };

  constructor(
    private readonly ctx: SetupContext,
    platform: Platform,
    options: ApicHooksOptions,
  ) {
    this.evtchn = ctx.slot("evtchn");
    this.platform = platform;
    const nrPirqs = options.nrPirqs ?? 256;
    const nrMsi = options.nrMsiIrqs ?? 64;
    const maxGuests = options.irqMaxGuests ?? 32;
    const io = platform.ioapic;
    this.nrIrqsGsi = Math.max(16, io.gsiBase + io.pins);
    if (!(int(nrPirqs) && nrPirqs >= this.nrIrqsGsi && nrPirqs <= 32768)) {
      throw apicHooksError(
        "APIC_HOOKS_BAD_OPTIONS",
        `nrPirqs must be a whole number from ${this.nrIrqsGsi} (nr_irqs_gsi) to 32768, got ${options.nrPirqs}.`,
      );
    }
    if (!(int(nrMsi) && nrMsi >= 0 && nrMsi <= 4096)) {
      throw apicHooksError(
        "APIC_HOOKS_BAD_OPTIONS",
        `nrMsiIrqs must be a whole number from 0 to 4096, got ${options.nrMsiIrqs}.`,
      );
    }
    if (!(int(maxGuests) && maxGuests >= 1 && maxGuests <= 256)) {
      throw apicHooksError(
        "APIC_HOOKS_BAD_OPTIONS",
        `irqMaxGuests must be a whole number from 1 to 256, got ${options.irqMaxGuests}.`,
      );
    }
    this.nrPirqsOpt = nrPirqs;
    this.maxGuests = maxGuests;
    this.nrIrqs = this.nrIrqsGsi + nrMsi;
    this.kind = new Uint8Array(this.nrIrqs);
    this.kind.fill(KIND_GSI, 0, this.nrIrqsGsi);
    this.ackType = new Uint8Array(this.nrIrqs);
    this.shareable = new Uint8Array(this.nrIrqs);
    this.inFlight = new Int32Array(this.nrIrqs);
    this.timer = new Float64Array(this.nrIrqs).fill(-1);
    this.gsiSetup = new Uint8Array(this.nrIrqs);
    this.msiBdf = new Int32Array(this.nrIrqs).fill(-1);
    this.sharers = [];
    this.timerCbs = [];
    for (let irq = 0; irq < this.nrIrqs; irq++) {
      this.sharers.push([]);
      this.timerCbs.push(() => this.forceEoi(irq));
    }
    // Xen owns the IO-APIC: every pin's line comes to do_IRQ here.
    const onGsi = (gsi: number) => this.doIrq(gsi);
    for (let p = 0; p < io.pins; p++) io.claim(io.gsiBase + p, onGsi);
    // Xen owns the local APICs too: an MSI's vector reaches do_IRQ (msi.ts).
    interceptMsiVectors(platform.apics, this.vectorIrq, (irq) => this.doIrq(irq));
    this.evtchn.setPirqHooks({
      bind: (d, pirq, willShare) => this.guestBind(d, pirq, willShare),
      unbind: (d, pirq) => this.guestUnbind(d, pirq),
    });
    ctx.onDomainCreate((d) => this.domainCreated(d));
    ctx.onDomainDestroy((d) => this.domainDestroyed(d));
  }

  // ---- domains ----

  private domainCreated(d: Domain): void {
    const pd = new PirqDomain(d, this.nrPirqsOpt, this.nrIrqs);
    this.doms[d.domid] = pd;
    // A configuration error (nrPirqs above evtchn's) surfaces here as evtchn's typed error.
    this.evtchn.permitPirq(d, this.nrPirqsOpt - 1, false);
    // The hardware domain starts with every GSI (Xen's dom0 irq_caps at construction).
    if (d.isPrivileged) pd.caps.fill(1, 0, this.nrIrqsGsi);
  }

  private domainDestroyed(d: Domain): void {
    const pd = this.doms[d.domid];
    if (pd === undefined) return;
    for (let pirq = 0; pirq < pd.pirqToIrq.length; pirq++)
      if (pd.pirqToIrq[pirq] >= 0) this.unmapDomainPirq(pd, pirq);
    if (pd.eoiMfn >= 0) this.ctx.hv.frames.putPageAndType(pd.eoiMfn);
    pd.eoiMfn = -1;
    pd.caps.fill(0);
    this.doms[d.domid] = undefined;
  }

  private pdOf(d: Domain): PirqDomain | undefined {
    const pd = this.doms[d?.domid];
    return pd !== undefined && pd.d === d ? pd : undefined;
  }

  private pdOrThrow(d: Domain): PirqDomain {
    const pd = this.pdOf(d);
    if (pd === undefined) {
      throw apicHooksError(
        "APIC_HOOKS_UNKNOWN_DOMAIN",
        `Domain ${d?.domid} is not known to apic-hooks (destroyed, or created by another hypervisor).`,
      );
    }
    return pd;
  }

  /** Xen's dummy XSM_TARGET: yourself, a privileged domain, or the device model of `t`. */
  static mayTarget(src: Domain, t: Domain): boolean {
    return src === t || src.isPrivileged || src.target === t.domid;
  }

  // ---- the slot: mapping ----

  nrPirqs(d: Domain): number {
    return this.pdOf(d) === undefined ? 0 : this.nrPirqsOpt;
  }

  mapPirq(caller: Domain, target: Domain, source: PirqSource, pirq: number): number {
    const cpd = this.pdOf(caller);
    const pd = this.pdOf(target);
    if (cpd === undefined || pd === undefined) return -EINVAL;
    if (!ApicHooks.mayTarget(caller, target)) return -EPERM;
    if (!int(pirq) || pirq >= this.nrPirqsOpt) return -EINVAL;
    if (source === null || typeof source !== "object") return -EINVAL;
    if (source.type === "gsi") return this.mapGsi(cpd, pd, source.gsi, pirq);
    if (source.type === "msi") return this.mapMsi(cpd, pd, source, pirq);
    return -EINVAL;
  }

  /** allocate_and_map_gsi_pirq. */
  private mapGsi(cpd: PirqDomain, pd: PirqDomain, gsi: unknown, pirq: number): number {
    if (!int(gsi) || gsi < 0 || gsi >= this.nrIrqsGsi) return -EINVAL;
    let irq = gsi;
    if (!pd.d.isPrivileged) {
      // A domU names the GSI by the pirq its caller already holds for it, unless the caller
      // is the hardware domain, which names GSIs directly.
      const held = cpd.pirqToIrq[gsi];
      if (held > 0) irq = held;
      else if (!cpd.d.isPrivileged) return -EPERM;
    }
    const existing = pd.irqToPirq[irq];
    if (pirq < 0) {
      // Xen 4.17 prints "already mapped" and answers -1 (-EPERM) here.
      if (existing >= 0) return -EPERM;
      pirq = this.getFreePirq(pd, KIND_GSI);
      if (pirq < 0) return pirq;
    } else if (existing >= 0 && existing !== pirq) {
      return -EEXIST;
    }
    const rc = this.mapDomainPirq(cpd, pd, pirq, irq);
    return rc < 0 ? rc : pirq;
  }

  /** allocate_and_map_msi_pirq: a dynamic irq for a PCI function with an MSI capability. */
  private mapMsi(
    cpd: PirqDomain,
    pd: PirqDomain,
    s: Extract<PirqSource, { type: "msi" }>,
    pirq: number,
  ): number {
    if (!int(s.seg) || !int(s.bus) || !int(s.devfn) || !int(s.entryNr)) return -EINVAL;
    if (s.seg !== 0 || s.bus < 0 || s.bus > 0xff || s.devfn < 0 || s.devfn > 0xff) return -ENODEV;
    const bdf = (s.bus << 8) | s.devfn;
    const fn = this.platform.pci.get(bdf);
    if (fn === undefined || fn.msiCap === 0) return -ENODEV;
    // One vector per function (no MULTI_MSI without interrupt remapping): reuse its irq.
    let irq = -1;
    for (let i = this.nrIrqsGsi; i < this.nrIrqs; i++)
      if (this.kind[i] === KIND_MSI && this.msiBdf[i] === bdf) irq = i;
    let created = false;
    if (irq < 0) {
      for (let i = this.nrIrqsGsi; i < this.nrIrqs && irq < 0; i++)
        if (this.kind[i] === KIND_FREE) irq = i;
      if (irq < 0 || this.vectorOf(irq) > XEN_LAST_DYNAMIC_VECTOR) return -ENOSPC;
      this.kind[irq] = KIND_MSI;
      this.msiBdf[irq] = bdf;
      created = true;
      this.msiEnable(fn, irq);
      // create_irq grants the hardware domain access to a new dynamic irq.
      for (const other of this.doms) if (other?.d.isPrivileged) other.caps[irq] = 1;
    }
    const existing = pd.irqToPirq[irq];
    if (existing >= 0) return existing;
    if (pirq < 0) {
      pirq = this.getFreePirq(pd, KIND_MSI);
      if (pirq < 0) {
        if (created) this.freeMsiIrq(irq);
        return pirq;
      }
    }
    const rc = this.mapDomainPirq(cpd, pd, pirq, irq);
    if (rc < 0) {
      if (created) this.freeMsiIrq(irq);
      return rc;
    }
    return pirq;
  }

  /** msi_capability_init for a new MSI irq: Xen's message in the function, MSI on. */
  private msiEnable(fn: PciFunction, irq: number): void {
    const vector = this.vectorOf(irq);
    msiCapabilityInit(fn, vector);
    this.vectorIrq[vector] = irq;
  }

  private freeMsiIrq(irq: number): void {
    // pci_disable_msi: the function goes back to INTx and the vector is Xen's no more.
    const fn = this.platform.pci.get(this.msiBdf[irq]);
    if (fn !== undefined) msiDisable(fn);
    this.vectorIrq[this.vectorOf(irq)] = -1;
    for (const pd of this.doms) if (pd !== undefined) pd.caps[irq] = 0;
    this.kind[irq] = KIND_FREE;
    this.msiBdf[irq] = -1;
  }

  /** get_free_pirq: GSIs lowest first from 16, MSIs highest first down to nr_irqs_gsi. */
  private getFreePirq(pd: PirqDomain, kind: number): number {
    const n = this.nrPirqsOpt;
    if (kind === KIND_GSI) {
      for (let p = 16; p < this.nrIrqsGsi; p++) if (pd.pirqToIrq[p] < 0) return p;
    }
    for (let p = n - 1; p >= this.nrIrqsGsi; p--) if (pd.pirqToIrq[p] < 0) return p;
    return -ENOSPC;
  }

  /** map_domain_pirq: 0 or -errno; keeps Xen's "already mapped elsewhere: 0, no change". */
  private mapDomainPirq(cpd: PirqDomain, pd: PirqDomain, pirq: number, irq: number): number {
    if (!cpd.caps[irq]) return -EPERM;
    if (pirq < 0 || pirq >= this.nrPirqsOpt || irq < 0 || irq >= this.nrIrqs) return -EINVAL;
    const oldIrq = pd.pirqToIrq[pirq];
    const oldPirq = pd.irqToPirq[irq];
    if (oldIrq === irq && oldPirq === pirq) return 0;
    if (oldIrq >= 0 || oldPirq >= 0) return 0;
    pd.caps[irq] = 1;
    pd.pirqToIrq[pirq] = irq;
    pd.irqToPirq[irq] = pirq;
    this.evtchn.permitPirq(pd.d, pirq, true);
    return 0;
  }

  unmapPirq(caller: Domain, target: Domain, pirq: number): number {
    const pd = this.pdOf(target);
    if (pd === undefined || this.pdOf(caller) === undefined) return -EINVAL;
    if (!ApicHooks.mayTarget(caller, target)) return -EPERM;
    if (!int(pirq) || pirq < 0 || pirq >= this.nrPirqsOpt) return -EINVAL;
    if (pd.pirqToIrq[pirq] < 0) return -EINVAL;
    const irq = this.unmapDomainPirq(pd, pirq);
    // unmap_domain_pirq revokes the domain's access to the irq.
    pd.caps[irq] = 0;
    return 0;
  }

  /** unmap_domain_pirq without the access check: force-unbinds, forgets the mapping. */
  private unmapDomainPirq(pd: PirqDomain, pirq: number): number {
    const irq = pd.pirqToIrq[pirq];
    if (pd.bound[pirq]) this.guestUnbind(pd.d, pirq);
    pd.pirqToIrq[pirq] = -1;
    pd.irqToPirq[irq] = -1;
    this.evtchn.permitPirq(pd.d, pirq, false);
    if (this.kind[irq] === KIND_MSI) {
      let used = false;
      for (const o of this.doms) if (o !== undefined && o.irqToPirq[irq] >= 0) used = true;
      if (!used) this.freeMsiIrq(irq);
    }
    return irq;
  }

  // ---- the slot: the IO-APIC ----

  private vectorOf(irq: number): number {
    return (XEN_VECTOR_BASE + irq) & 0xff;
  }

  private pinOf(gsi: number): number {
    const io = this.platform.ioapic;
    const pin = gsi - io.gsiBase;
    return pin >= 0 && pin < io.pins ? pin : -1;
  }

  private rteLow(pin: number): number {
    return this.platform.ioapic.readRegister(IO_APIC_REDTBL + 2 * pin);
  }

  private setMask(gsi: number, masked: boolean): void {
    const pin = this.pinOf(gsi);
    if (pin < 0) return;
    const lo = this.rteLow(pin) & ~(1 << 12) & ~(1 << 14);
    const now = masked ? lo | IO_APIC_RTE_MASKED : lo & ~IO_APIC_RTE_MASKED;
    if (now !== lo) this.platform.ioapic.writeRte(pin, now, 0);
  }

  setupGsi(caller: Domain, gsi: number, trigger: number, polarity: number): number {
    if (!caller?.isPrivileged) return -EPERM;
    if (!int(gsi) || gsi < 0 || gsi >= this.nrIrqsGsi) return -EINVAL;
    if (!int(trigger) || !int(polarity)) return -EINVAL;
    const pin = this.pinOf(gsi);
    if (pin < 0) return -EINVAL;
    if (this.gsiSetup[gsi] || this.sharers[gsi].length > 0) return -EEXIST;
    this.programPin(pin, gsi, (trigger & 0xff) !== 0, (polarity & 0xff) !== 0, true);
    return 0;
  }

  private programPin(pin: number, irq: number, level: boolean, low: boolean, masked: boolean) {
    let lo = this.vectorOf(irq);
    if (level) lo |= IO_APIC_RTE_LEVEL;
    if (low) lo |= IO_APIC_RTE_POLARITY_LOW;
    if (masked) lo |= IO_APIC_RTE_MASKED;
    this.platform.ioapic.writeRte(pin, lo, 0);
    this.gsiSetup[irq] = 1;
  }

  /** PHYSDEVOP_apic_read: the real register, for the hardware domain. */
  apicRead(caller: Domain, physbase: number, reg: number): number {
    if (!caller?.isPrivileged) return -EPERM;
    if (physbase !== this.platform.ioapic.base) return -EINVAL;
    if (reg < 0 || reg > 0xff) return -EINVAL;
    return this.platform.ioapic.readRegister(reg) >>> 0;
  }

  /**
   * PHYSDEVOP_apic_write (ioapic_guest_write): only a redirection entry's low word counts;
   * its vector field is the pirq (alloc_irq_vector is a dummy); Xen keeps its own vector and
   * destination and writes the pin masked iff level-triggered. 0 or -errno.
   */
  apicWrite(caller: Domain, physbase: number, reg: number, value: number): number {
    const cpd = this.pdOf(caller);
    if (cpd === undefined || !caller.isPrivileged) return -EPERM;
    if (physbase !== this.platform.ioapic.base) return -EINVAL;
    if (reg < IO_APIC_REDTBL || (reg & 1) !== 0) return 0;
    const pin = (reg - IO_APIC_REDTBL) >> 1;
    if (pin >= this.platform.ioapic.pins) return -EINVAL;
    const irq = this.platform.ioapic.gsiBase + pin;
    if (irq >= this.nrIrqsGsi) return -EINVAL;
    // Xen only warns about a write to a pin whose irq is in use.
    if (this.sharers[irq].length > 0) return 0;
    const level = (value & IO_APIC_RTE_LEVEL) !== 0;
    if ((value & IO_APIC_RTE_MASKED) === 0) {
      const pirq = value & 0xff;
      const rc = this.mapDomainPirq(cpd, cpd, pirq, irq);
      if (rc < 0) return rc;
    }
    this.programPin(pin, irq, level, (value & IO_APIC_RTE_POLARITY_LOW) !== 0, level);
    return 0;
  }

  // ---- binding (evtchn's PirqHooks) ----

  /** pirq_guest_bind: 0 or -errno. */
  private guestBind(d: Domain, pirq: number, willShare: boolean): number {
    const pd = this.pdOf(d);
    if (pd === undefined || !int(pirq) || pirq < 0 || pirq >= this.nrPirqsOpt) return -EINVAL;
    const irq = pd.pirqToIrq[pirq];
    if (irq < 0) return -EINVAL;
    const list = this.sharers[irq];
    if (list.includes(d.domid)) return -EBUSY;
    if (list.length === 0) {
      this.shareable[irq] = willShare ? 1 : 0;
      this.ackType[irq] = this.acktypeOf(irq);
      list.push(d.domid);
      if (this.kind[irq] === KIND_GSI) this.setMask(irq, false);
    } else {
      if (!this.shareable[irq] || !willShare) return -EBUSY;
      if (list.length >= this.maxGuests) return -EBUSY;
      list.push(d.domid);
    }
    pd.bound[pirq] = 1;
    pd.masked[pirq] = 0;
    this.setEoiBit(pd, pirq, this.ackType[irq] !== ACKTYPE_NONE);
    return 0;
  }

  /** irq_acktype: IO-APIC level needs an EOI; edge and MSI (maskable) need nothing. */
  private acktypeOf(irq: number): number {
    if (this.kind[irq] !== KIND_GSI) return ACKTYPE_NONE;
    const pin = this.pinOf(irq);
    if (pin < 0) return ACKTYPE_NONE;
    return (this.rteLow(pin) & IO_APIC_RTE_LEVEL) !== 0 ? ACKTYPE_EOI : ACKTYPE_NONE;
  }

  /** pirq_guest_unbind: idempotent (a force-unbound pirq's port may be closed later). */
  private guestUnbind(d: Domain, pirq: number): void {
    const pd = this.pdOf(d);
    if (pd === undefined || !int(pirq) || pirq < 0 || pirq >= this.nrPirqsOpt) return;
    if (!pd.bound[pirq]) return;
    pd.bound[pirq] = 0;
    const irq = pd.pirqToIrq[pirq];
    if (irq < 0) return;
    const list = this.sharers[irq];
    const at = list.indexOf(d.domid);
    if (at >= 0) list.splice(at, 1);
    if (pd.masked[pirq]) {
      pd.masked[pirq] = 0;
      this.inFlight[irq]--;
    }
    if (list.length === 0) {
      this.cancelTimer(irq);
      if (this.kind[irq] === KIND_GSI) this.setMask(irq, true);
      if (this.inFlight[irq] === 0) this.endLine(irq);
    } else if (this.inFlight[irq] === 0 && this.ackType[irq] === ACKTYPE_EOI) {
      this.cancelTimer(irq);
      this.endLine(irq);
    }
  }

  private setEoiBit(pd: PirqDomain, pirq: number, on: boolean): void {
    if (pd.eoiMfn < 0) return;
    // The view is the EOI frame alone: a pirq past its 32768 bits cannot reach another frame.
    const words = this.ctx.hv.machine.ram.frameWords(pd.eoiMfn, true);
    const i = pirq >>> 5;
    const bit = 1 << (pirq & 31);
    words[i] = on ? words[i] | bit : words[i] & ~bit;
  }

  // ---- delivery ----

  /** do_IRQ for a claimed GSI: Xen's do_IRQ_guest. */
  private doIrq(irq: number): void {
    this.counters.delivered++;
    const list = this.sharers[irq];
    if (list.length === 0) {
      // No guest action: a level line is ended at once so it cannot wedge.
      this.counters.unbound++;
      this.endLine(irq);
      return;
    }
    const needsEoi = this.ackType[irq] !== ACKTYPE_NONE;
    for (let i = 0; i < list.length; i++) {
      const pd = this.doms[list[i]];
      if (pd === undefined) continue;
      const pirq = pd.irqToPirq[irq];
      if (pirq < 0) continue;
      if (needsEoi && !pd.masked[pirq]) {
        pd.masked[pirq] = 1;
        this.inFlight[irq]++;
      }
      if (this.evtchn.sendPirq(pd.d, pirq)) this.counters.sent++;
    }
    if (needsEoi) {
      if (this.inFlight[irq] === 0) this.endLine(irq);
      else if (this.timer[irq] < 0)
        this.timer[irq] = this.ctx.hv.machine.clock.scheduleAfter(
          FORCED_EOI_NS,
          this.timerCbs[irq],
        );
    }
  }

  /** The end of a level interrupt at the IO-APIC (clears Remote IRR; re-fires if asserted). */
  private endLine(irq: number): void {
    if (this.kind[irq] !== KIND_GSI) return;
    if (this.ctx.hv.machine.irqs.inService(irq)) this.ctx.hv.machine.irqs.eoi(irq);
  }

  private cancelTimer(irq: number): void {
    if (this.timer[irq] >= 0) this.ctx.hv.machine.clock.cancel(this.timer[irq]);
    this.timer[irq] = -1;
  }

  /** The 1 ms timeout: every sharer's share is EOId for it. */
  private forceEoi(irq: number): void {
    this.timer[irq] = -1;
    if (this.inFlight[irq] === 0) return;
    this.counters.forcedEois++;
    for (const domid of this.sharers[irq]) {
      const pd = this.doms[domid];
      const pirq = pd === undefined ? -1 : pd.irqToPirq[irq];
      if (pd !== undefined && pirq >= 0) pd.masked[pirq] = 0;
    }
    this.inFlight[irq] = 0;
    this.endLine(irq);
  }

  eoi(d: Domain, pirq: number): number {
    const pd = this.pdOf(d);
    if (pd === undefined || !int(pirq) || pirq < 0 || pirq >= this.nrPirqsOpt) return -EINVAL;
    const irq = pd.pirqToIrq[pirq];
    if (irq < 0 || !pd.bound[pirq]) return -EINVAL;
    if (pd.masked[pirq]) {
      pd.masked[pirq] = 0;
      this.inFlight[irq]--;
      if (this.inFlight[irq] === 0) {
        this.cancelTimer(irq);
        this.endLine(irq);
      }
    }
    return 0;
  }

  irqStatusQuery(d: Domain, pirq: number): number {
    const pd = this.pdOf(d);
    if (pd === undefined || !int(pirq) || pirq < 0 || pirq >= this.nrPirqsOpt) return -EINVAL;
    // Xen 4.17 always says needs_eoi (for guests without the EOI map page).
    let flags = XENIRQSTAT_needs_eoi;
    const irq = pd.pirqToIrq[pirq];
    if (irq >= 0 && this.sharers[irq].length > 1) flags |= XENIRQSTAT_shared;
    return flags;
  }

  /** PHYSDEVOP_pirq_eoi_gmfn_v1/v2: registers the EOI bitmap page (PV: gmfn is the mfn). */
  registerEoiMap(d: Domain, gmfn: number, v1: boolean): number {
    const pd = this.pdOf(d);
    if (pd === undefined || !int(gmfn) || gmfn < 0) return -EINVAL;
    const hv = this.ctx.hv;
    if (!hv.machine.ram.validMfn(gmfn) || !hv.frames.validMfn(gmfn)) return -EINVAL;
    if (hv.frames.getPageAndType(gmfn, d.domid, PGT_writable_page) !== 0) return -EINVAL;
    if (pd.eoiMfn >= 0) {
      hv.frames.putPageAndType(gmfn);
      return -EBUSY;
    }
    pd.eoiMfn = gmfn;
    pd.autoUnmask = v1;
    for (let pirq = 0; pirq < this.nrPirqsOpt; pirq++) {
      if (!pd.bound[pirq]) continue;
      this.setEoiBit(pd, pirq, this.ackType[pd.pirqToIrq[pirq]] !== ACKTYPE_NONE);
    }
    return 0;
  }

  pirqStatus(d: Domain, pirq: number): PirqStatus {
    const pd = this.pdOf(d);
    if (pd === undefined || !int(pirq) || pirq < 0 || pirq >= this.nrPirqsOpt)
      return { irq: -1, flags: 0, sharers: 0, inFlight: false };
    const irq = pd.pirqToIrq[pirq];
    const flags = this.irqStatusQuery(d, pirq);
    return {
      irq,
      flags,
      sharers: irq < 0 ? 0 : this.sharers[irq].length,
      inFlight: pd.masked[pirq] !== 0,
    };
  }

  irqToPirq(d: Domain, irq: number): number {
    const pd = this.pdOf(d);
    if (pd === undefined || !int(irq) || irq < 0 || irq >= this.nrIrqs) return -1;
    return pd.irqToPirq[irq];
  }

  // ---- irq_caps (the toolstack's XEN_DOMCTL_irq_permission) ----

  private checkIrq(irq: number): void {
    if (!(int(irq) && irq >= 0 && irq < this.nrIrqs)) {
      throw apicHooksError(
        "APIC_HOOKS_BAD_IRQ",
        `irq ${irq} does not exist: Xen irqs here are 0..${this.nrIrqs - 1} (GSIs below ${this.nrIrqsGsi}).`,
      );
    }
  }

  irqPermitAccess(d: Domain, irq: number): void {
    const pd = this.pdOrThrow(d);
    this.checkIrq(irq);
    pd.caps[irq] = 1;
  }

  irqDenyAccess(d: Domain, irq: number): void {
    const pd = this.pdOrThrow(d);
    this.checkIrq(irq);
    const pirq = pd.irqToPirq[irq];
    if (pirq >= 0) this.unmapDomainPirq(pd, pirq);
    pd.caps[irq] = 0;
  }

  irqAccessPermitted(d: Domain, irq: number): boolean {
    const pd = this.pdOf(d);
    return pd !== undefined && int(irq) && irq >= 0 && irq < this.nrIrqs && pd.caps[irq] !== 0;
  }

  // ---- views for tools, tests and checkers ----

  /** Domains bound to `irq` (a copy). */
  sharersOf(irq: number): number[] {
    return int(irq) && irq >= 0 && irq < this.nrIrqs ? [...this.sharers[irq]] : [];
  }

  /** Sharers of `irq` whose share is in flight. */
  inFlightOf(irq: number): number {
    return int(irq) && irq >= 0 && irq < this.nrIrqs ? this.inFlight[irq] : 0;
  }

  /** Whether `irq`'s action was created shareable (BIND_PIRQ__WILL_SHARE by the first binder). */
  isShareable(irq: number): boolean {
    return int(irq) && irq >= 0 && irq < this.nrIrqs && this.shareable[irq] !== 0;
  }

  /** Whether a domain's pirq is bound through EVTCHNOP_bind_pirq. */
  isBound(d: Domain, pirq: number): boolean {
    const pd = this.pdOf(d);
    return pd !== undefined && int(pirq) && pirq >= 0 && pirq < this.nrPirqsOpt && !!pd.bound[pirq];
  }

  /** Every mapping of a domain: [pirq, irq] pairs. */
  mappings(d: Domain): [number, number][] {
    const pd = this.pdOf(d);
    const out: [number, number][] = [];
    if (pd === undefined) return out;
    for (let p = 0; p < pd.pirqToIrq.length; p++)
      if (pd.pirqToIrq[p] >= 0) out.push([p, pd.pirqToIrq[p]]);
    return out;
  }

  /** The EOI map page's mfn, or -1. */
  eoiMapMfn(d: Domain): number {
    return this.pdOf(d)?.eoiMfn ?? -1;
  }

  /** Whether the domain registered its EOI map with v1 (auto-unmask on PHYSDEVOP_eoi). */
  autoUnmask(d: Domain): boolean {
    return this.pdOf(d)?.autoUnmask ?? false;
  }

  /** The domain of `domid` if apic-hooks knows it (for the physdev handlers). */
  known(d: Domain): boolean {
    return this.pdOf(d) !== undefined;
  }
}
