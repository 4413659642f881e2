/*
 * The apic pv_ops group under Xen, for the initial domain (Linux's arch/x86/pci/xen.c
 * xen_register_gsi and drivers/xen/events/events_base.c's pirq half): the kernel does not
 * touch the IO-APIC; it asks Xen. A GSI is mapped with PHYSDEVOP_map_pirq (pirq = gsi) and
 * programmed with PHYSDEVOP_setup_gsi; its Linux irq is the GSI, as natively. An MSI gets a
 * pirq Xen picks and a dynamic irq above the GSIs. bindIrq binds the pirq to an event channel
 * (BIND_PIRQ__WILL_SHARE for level lines); eoi is the fasteoi end: PHYSDEVOP_eoi only when Xen
 * says the pirq needs one (the EOI map page's bit when registered, else irq_status_query).
 *
 * Invariants: a GSI's irq equals the GSI; every irq this group handed out names one pirq;
 * an irq has an event channel only between bindIrq(handler) and bindIrq(null); nothing here
 * throws on an irq number or on Xen's answer (-errno comes back instead).
 */
import {
  __HYPERVISOR_physdev_op,
  DOMID_SELF,
  EEXIST,
  EINVAL,
  ENODEV,
  MAP_PIRQ_TYPE_GSI,
  MAP_PIRQ_TYPE_MSI,
  MAP_PIRQ_TYPE_MSI_SEG,
  PHYSDEVOP_alloc_irq_vector,
  PHYSDEVOP_apic_read,
  PHYSDEVOP_apic_write,
  PHYSDEVOP_eoi,
  PHYSDEVOP_irq_status_query,
  PHYSDEVOP_map_pirq,
  PHYSDEVOP_pirq_eoi_gmfn_v2,
  PHYSDEVOP_setup_gsi,
  XENIRQSTAT_needs_eoi,
} from "@hyperlab/abi";
import type { Ram } from "@hyperlab/machine";
import type { XenEvtchnGuest } from "./events";
import { defineGuestPlugin, type GuestPlugin } from "./plugins";
import type { MsiDevice, PvApicOps } from "./pv-ops";

export interface XenApicOptions {
  /** The domain's event channels (initialised), or a getter for a kernel that sets them up later. */
  evtchn: XenEvtchnGuest | (() => XenEvtchnGuest | null);
  /** HYPERVISOR_physdev_op and friends on the boot vCPU. */
  hypercall(op: number, args: object): number;
  /** GSIs the platform has (ACPI's count); default 24. */
  nrGsi?: number;
  /** The IO-APIC's physical base, for PHYSDEVOP_apic_read/write; default 0xFEC00000. */
  ioApicBase?: number;
  /** A zeroed page of the domain (mfn) to register as the EOI map, with the RAM that holds it. */
  eoiMap?: { mfn: number; ram: Ram };
}

/** Counts the Xen apic ops keep (for the study and the bench). */
export interface XenApicCounts {
  /** PHYSDEVOP_eoi hypercalls issued. */
  eoiHypercalls: number;
  /** EOIs that needed no hypercall (the EOI map said so). */
  eoisSkipped: number;
  msiIrqs: number;
}

/** The Xen provider of pv_ops.apic for dom0, with its counters. */
export function xenApicOps(
  options: XenApicOptions,
): PvApicOps & { readonly counts: XenApicCounts; pirqOf(irq: number): number } {
  const events = (): XenEvtchnGuest | null =>
    typeof options.evtchn === "function" ? options.evtchn() : options.evtchn;
  const call = (cmd: number, a: Record<string, unknown>) => {
    a.cmd = cmd;
    return options.hypercall(__HYPERVISOR_physdev_op, a);
  };
  const nrGsi = options.nrGsi ?? 24;
  const base = options.ioApicBase ?? 0xfec0_0000;
  const counts: XenApicCounts = { eoiHypercalls: 0, eoisSkipped: 0, msiIrqs: 0 };
  // Per Linux irq: pirq (-1 none), shareable, needs-EOI flag, the event channel guest's irq.
  const pirq: number[] = [];
  const shareable: boolean[] = [];
  const needsEoi: boolean[] = [];
  const evIrq: number[] = [];
  let nextMsiIrq = nrGsi;

  let eoiWords: Uint32Array | null = null;
  if (options.eoiMap !== undefined) {
    const { mfn, ram } = options.eoiMap;
    if (call(PHYSDEVOP_pirq_eoi_gmfn_v2, { gmfn: mfn }) === 0) {
      eoiWords = ram.frameWords(mfn, false);
    }
  }
  const pirqNeedsEoi = (irq: number): boolean => {
    const p = pirq[irq];
    if (eoiWords !== null) return ((eoiWords[p >>> 5] >>> (p & 31)) & 1) !== 0;
    return needsEoi[irq];
  };
  const isIrq = (irq: number) => Number.isInteger(irq) && irq >= 0 && pirq[irq] !== undefined;
  const queryNeedsEoi = (irq: number) => {
    const q: Record<string, unknown> = { irq: pirq[irq], flags: 0 };
    needsEoi[irq] =
      call(PHYSDEVOP_irq_status_query, q) === 0 &&
      ((q.flags as number) & XENIRQSTAT_needs_eoi) !== 0;
  };
  const eoiPirq = (irq: number): number => {
    if (!pirqNeedsEoi(irq)) {
      counts.eoisSkipped++;
      return 0;
    }
    counts.eoiHypercalls++;
    return call(PHYSDEVOP_eoi, { irq: pirq[irq] });
  };

  const ops = {
    counts,
    pirqOf(irq: number): number {
      return isIrq(irq) ? pirq[irq] : -1;
    },
    ioApicRead(apic: number, reg: number): number {
      if (apic !== 0) return 0xffff_ffff;
      const a: Record<string, unknown> = { apic_physbase: base, reg, value: 0 };
      return call(PHYSDEVOP_apic_read, a) === 0 ? (a.value as number) >>> 0 : 0xffff_ffff;
    },
    ioApicWrite(apic: number, reg: number, value: number): void {
      if (apic !== 0) return;
      call(PHYSDEVOP_apic_write, { apic_physbase: base, reg, value: value >>> 0 });
    },
    setupGsi(gsi: number, trigger: "edge" | "level", polarity: "high" | "low"): number {
      if (!(Number.isInteger(gsi) && gsi >= 0 && gsi < nrGsi)) return -EINVAL;
      if (trigger !== "edge" && trigger !== "level") return -EINVAL;
      if (polarity !== "high" && polarity !== "low") return -EINVAL;
      // xen_register_pirq: an irq that already exists for the GSI is returned as it is.
      if (pirq[gsi] !== undefined) return gsi;
      const m: Record<string, unknown> = {
        domid: DOMID_SELF,
        type: MAP_PIRQ_TYPE_GSI,
        index: gsi,
        pirq: gsi,
      };
      const rc = call(PHYSDEVOP_map_pirq, m);
      if (rc < 0) return rc;
      const irq = gsi; // xen_allocate_irq_gsi in dom0: the irq is the GSI.
      pirq[irq] = m.pirq as number;
      shareable[irq] = trigger === "level";
      evIrq[irq] = -1;
      call(PHYSDEVOP_alloc_irq_vector, { irq, vector: 0 });
      queryNeedsEoi(irq);
      const s = call(PHYSDEVOP_setup_gsi, {
        gsi,
        triggering: trigger === "edge" ? 0 : 1,
        polarity: polarity === "high" ? 0 : 1,
      });
      // "Already setup the GSI": Linux carries on.
      if (s < 0 && s !== -EEXIST) return s;
      return irq;
    },
    setupMsi(dev: MsiDevice): { irq: number; address: number; data: number } | number {
      if (!Number.isInteger(dev?.bus) || !Number.isInteger(dev?.devfn)) return -EINVAL;
      const seg = dev.seg ?? 0;
      const m: Record<string, unknown> = {
        domid: DOMID_SELF,
        type: MAP_PIRQ_TYPE_MSI_SEG,
        index: -1,
        pirq: -1,
        bus: dev.bus | (seg << 16),
        devfn: dev.devfn,
        entry_nr: dev.entryNr ?? -1,
        table_base: 0,
      };
      let rc = call(PHYSDEVOP_map_pirq, m);
      if (rc === -EINVAL) {
        m.type = MAP_PIRQ_TYPE_MSI;
        m.bus = dev.bus;
        rc = call(PHYSDEVOP_map_pirq, m);
      }
      if (rc < 0) return rc;
      const irq = nextMsiIrq++;
      pirq[irq] = m.pirq as number;
      shareable[irq] = false;
      evIrq[irq] = -1;
      queryNeedsEoi(irq);
      counts.msiIrqs++;
      // Xen writes the message into the device itself; the kernel never sees one.
      return { irq, address: 0, data: 0 };
    },
    bindIrq(irq: number, handler: ((irq: number) => void) | null): number {
      if (!isIrq(irq)) return -EINVAL;
      const evtchn = events();
      if (evtchn === null) return -ENODEV;
      if (handler === null) {
        if (evIrq[irq] < 0) return 0;
        const rc = evtchn.unbindFromIrqHandler(evIrq[irq]);
        evIrq[irq] = -1;
        return rc;
      }
      if (typeof handler !== "function") return -EINVAL;
      if (evIrq[irq] >= 0) return -EINVAL;
      // startup_pirq: bind, then an EOI in case an interrupt was held while unbound.
      const e = evtchn.bindPirqToIrqHandler(pirq[irq], () => handler(irq), shareable[irq]);
      if (e < 0) return e;
      evIrq[irq] = e;
      evtchn.unmaskEvtchn(evtchn.evtchnFromIrq(e));
      eoiPirq(irq);
      return 0;
    },
    mask(irq: number): number {
      if (!isIrq(irq)) return -EINVAL;
      const evtchn = events();
      if (evtchn !== null && evIrq[irq] >= 0) evtchn.maskEvtchn(evtchn.evtchnFromIrq(evIrq[irq]));
      return 0;
    },
    unmask(irq: number): number {
      if (!isIrq(irq)) return -EINVAL;
      const evtchn = events();
      if (evtchn !== null && evIrq[irq] >= 0) evtchn.unmaskEvtchn(evtchn.evtchnFromIrq(evIrq[irq]));
      return 0;
    },
    eoi(irq: number): number {
      if (!isIrq(irq)) return -EINVAL;
      return eoiPirq(irq);
    },
  };
  return ops;
}

/**
 * The Xen apic provider as a guest plugin, for dom0 booted with bootXenPvKernel: pv_ops.apic
 * goes through PHYSDEVOP_* and the kernel's event channels (without the EOI map page; the
 * irq_status_query flag decides EOIs).
 */
export function xenApic(options: { nrGsi?: number; ioApicBase?: number } = {}): GuestPlugin {
  return defineGuestPlugin({
    name: "xen-apic",
    description: "pv_ops.apic through Xen's physdev_op: pirqs bound to event channels",
    provides: ["apic"],
    setup(ctx) {
      const k = ctx.kernel;
      ctx.provide(
        "apic",
        xenApicOps({
          evtchn: () => k.events,
          hypercall: (op, a) => k.port.hypercall(0, op, a),
          nrGsi: options.nrGsi,
          ioApicBase: options.ioApicBase,
        }),
      );
    },
  });
}
