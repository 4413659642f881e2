/*
 * Interrupt routing's native default (Linux's arch/x86/kernel/apic/io_apic.c, msi.c and the
 * local APIC's EOI): the kernel programs the IO-APIC itself. A GSI's irq is the GSI; an MSI
 * gets a dynamic irq above the last GSI, with the message (address 0xfee00000 | dest << 12,
 * data = vector, fixed delivery, edge) its driver writes into the device; the device's write
 * lands in cpu 0's local APIC (GuestPort.lapic) and the vector's irq handler runs there,
 * acknowledged by eoi (the LAPIC's EOI register). Masking an MSI irq is the device's mask bit,
 * which its driver owns; mask/unmask here act on GSI lines only.
 *
 * Invariants: a redirection entry read back is what was written, except the bits the
 * hardware owns (delivery status, remote IRR), which mirror the line; every irq this group
 * handed out has one vector and at most one handler; a kernel without an IO-APIC it may
 * touch (the port's ioApic is null: a Xen PV guest, nested or shadow paging) answers
 * -ENODEV for anything that would program one, and never throws on an irq number.
 */
import { EINVAL, ENODEV, ENOSPC } from "@hyperlab/abi";
import type { GuestPort } from "./port";
import type { PvApicOps } from "./pv-ops";

/** IO-APIC register numbers (IOREGSEL values). */
export const IO_APIC_ID = 0x00;
export const IO_APIC_VERSION = 0x01;
export const IO_APIC_REDTBL = 0x10;
/** Redirection entry bits (low dword). */
export const IO_APIC_RTE_POLARITY_LOW = 1 << 13;
export const IO_APIC_RTE_REMOTE_IRR = 1 << 14;
export const IO_APIC_RTE_LEVEL = 1 << 15;
export const IO_APIC_RTE_MASKED = 1 << 16;
/** The 82093AA's version number. */
const IO_APIC_VERSION_82093AA = 0x20;
/** Linux's FIRST_EXTERNAL_VECTOR and FIRST_SYSTEM_VECTOR: the vectors devices get. */
const FIRST_EXTERNAL_VECTOR = 0x20;
const FIRST_SYSTEM_VECTOR = 0xec;
/** The MSI address window of the local APICs (x86's MSI_ADDR_BASE_LO). */
export const MSI_ADDR_BASE = 0xfee0_0000;

/** Counts the native apic ops keep. */
export interface ApicNativeCounts {
  eois: number;
  msiIrqs: number;
}

export function nativeApicOps(port: GuestPort, counts?: ApicNativeCounts): PvApicOps {
  const c = counts ?? { eois: 0, msiIrqs: 0 };
  const lines = port.ioApic;
  const nrGsi = lines === null ? 0 : lines.nrLines;
  /** Per GSI: the RTE bits the hardware model does not keep (vector, polarity, destination). */
  const rteLow = new Uint32Array(nrGsi);
  const rteHigh = new Uint32Array(nrGsi);
  /** Vector of each irq (GSI irqs first, then MSI irqs), 0 when none. */
  const vectors: number[] = [];
  let nextVector = FIRST_EXTERNAL_VECTOR;
  let nextMsiIrq = nrGsi;
  // MSI: the message lands in cpu 0's local APIC (when the kernel owns one); its vector names
  // the irq, whose handler runs as the CPU takes the vector (Linux's common_interrupt).
  const lapic = port.lapic ?? null;
  const vectorIrq = new Int32Array(256).fill(-1);
  const msiHandlers: (((irq: number) => void) | null)[] = [];
  if (lapic !== null) {
    lapic.onDeliver = (vector, apic) => {
      const irq = vectorIrq[vector];
      const h = irq < 0 ? null : (msiHandlers[irq - nrGsi] ?? null);
      if (h === null)
        apic.eoi(); // a vector nobody handles: acknowledged and dropped
      else h(irq);
    };
  }
  const allocVector = (irq: number): number => {
    if (vectors[irq] > 0) return vectors[irq];
    if (nextVector >= FIRST_SYSTEM_VECTOR) return -ENOSPC;
    vectors[irq] = nextVector++;
    return vectors[irq];
  };
  const isGsi = (irq: number) => Number.isInteger(irq) && irq >= 0 && irq < nrGsi;
  const isIrq = (irq: number) =>
    isGsi(irq) || (Number.isInteger(irq) && irq >= nrGsi && irq < nextMsiIrq);
  const rteOf = (reg: number): number => {
    const n = (reg - IO_APIC_REDTBL) >> 1;
    return Number.isInteger(reg) && reg >= IO_APIC_REDTBL && n < nrGsi ? n : -1;
  };
  const ops: PvApicOps = {
    ioApicRead(apic, reg) {
      // One IO-APIC (number 0); reading a missing one reads the bus's floating lines.
      if (lines === null || apic !== 0) return 0xffff_ffff;
      if (reg === IO_APIC_ID) return 0;
      if (reg === IO_APIC_VERSION) return (((nrGsi - 1) << 16) | IO_APIC_VERSION_82093AA) >>> 0;
      const n = rteOf(reg);
      if (n < 0) return 0;
      if ((reg - IO_APIC_REDTBL) % 2 === 1) return rteHigh[n];
      const s = lines.state(n);
      let v = rteLow[n] & ~(IO_APIC_RTE_LEVEL | IO_APIC_RTE_MASKED | IO_APIC_RTE_REMOTE_IRR);
      if (s.trigger === "level") v |= IO_APIC_RTE_LEVEL;
      if (s.masked) v |= IO_APIC_RTE_MASKED;
      if (s.trigger === "level" && s.inService) v |= IO_APIC_RTE_REMOTE_IRR;
      return v >>> 0;
    },
    ioApicWrite(apic, reg, value) {
      if (lines === null || apic !== 0) return;
      const n = rteOf(reg);
      if (n < 0) return; // ID and version are read-only here
      const v = value >>> 0;
      if ((reg - IO_APIC_REDTBL) % 2 === 1) {
        rteHigh[n] = v & 0xff00_0000;
        return;
      }
      rteLow[n] = v & ~IO_APIC_RTE_REMOTE_IRR;
      if ((v & 0xff) !== 0) vectors[n] = v & 0xff;
      const trigger = (v & IO_APIC_RTE_LEVEL) !== 0 ? "level" : "edge";
      if (lines.state(n).trigger !== trigger) lines.configure(n, trigger);
      if ((v & IO_APIC_RTE_MASKED) !== 0) lines.mask(n);
      else lines.unmask(n);
    },
    setupGsi(gsi, trigger, polarity) {
      if (lines === null) return -ENODEV;
      if (!isGsi(gsi)) return -EINVAL;
      if (trigger !== "edge" && trigger !== "level") return -EINVAL;
      if (polarity !== "high" && polarity !== "low") return -EINVAL;
      const vector = allocVector(gsi);
      if (vector < 0) return vector;
      let low = vector | IO_APIC_RTE_MASKED;
      if (trigger === "level") low |= IO_APIC_RTE_LEVEL;
      if (polarity === "low") low |= IO_APIC_RTE_POLARITY_LOW;
      ops.ioApicWrite(0, IO_APIC_REDTBL + 2 * gsi + 1, 0); // destination: the boot CPU's APIC ID 0
      ops.ioApicWrite(0, IO_APIC_REDTBL + 2 * gsi, low);
      return gsi;
    },
    setupMsi(dev) {
      if (lines === null) return -ENODEV;
      if (!Number.isInteger(dev?.bus) || !Number.isInteger(dev?.devfn)) return -EINVAL;
      const irq = nextMsiIrq;
      const vector = allocVector(irq);
      if (vector < 0) return vector;
      nextMsiIrq++;
      vectorIrq[vector] = irq;
      msiHandlers.push(null);
      c.msiIrqs++;
      // Destination APIC ID 0, physical mode; data: the vector, fixed delivery, edge.
      return { irq, address: MSI_ADDR_BASE, data: vector };
    },
    bindIrq(irq, handler) {
      if (lines === null) return -ENODEV;
      if (!isIrq(irq)) return -EINVAL;
      if (isGsi(irq)) lines.setHandler(irq, handler === null ? null : () => handler(irq));
      else msiHandlers[irq - nrGsi] = handler;
      return 0;
    },
    mask(irq) {
      if (lines === null) return -ENODEV;
      if (!isIrq(irq)) return -EINVAL;
      if (isGsi(irq)) lines.mask(irq);
      return 0;
    },
    unmask(irq) {
      if (lines === null) return -ENODEV;
      if (!isIrq(irq)) return -EINVAL;
      if (isGsi(irq)) lines.unmask(irq);
      return 0;
    },
    eoi(irq) {
      if (lines === null) return -ENODEV;
      if (!isIrq(irq)) return -EINVAL;
      c.eois++;
      // The local APIC's EOI; a level line's is broadcast to the IO-APIC (clears remote IRR).
      if (isGsi(irq) && lines.state(irq).trigger === "level") lines.eoi(irq);
      else if (!isGsi(irq)) lapic?.eoi();
      return 0;
    },
  };
  return ops;
}
