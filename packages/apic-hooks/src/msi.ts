/*
 * Xen's MSI plumbing (xen/arch/x86/msi.c and the vector half of irq.c) for the `irq` slot:
 * Xen, not the guest, writes a function's MSI message and enables it, and Xen's LAPICs take
 * the vectors. A message is Xen's: address 0xFEE00000 (CPU 0, physical destination), data the
 * vector with fixed delivery, edge.
 *
 * Invariant: an intercept answers only for vectors `vectorIrq` names; every other vector goes
 * on to whatever intercept was there before, or is latched by the LAPIC as usual.
 */
import {
  type ApicBus,
  DELIVERY_FIXED,
  MSI_ADDR_DEST_SHIFT,
  MSI_DATA_DELIVERY_SHIFT,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  type PciFunction,
} from "@hyperlab/machine";

/** The LAPICs' MSI window (x86's MSI_ADDR_BASE_LO). */
const MSI_ADDR_BASE = 0xfee0_0000;

/** msi_capability_init + write_msi_msg + msi_set_enable: Xen's message for `vector`, MSI on. */
export function msiCapabilityInit(fn: PciFunction, vector: number): void {
  const cap = fn.msiCap;
  const flags = fn.readConfig(cap + PCI_MSI_FLAGS, 2);
  const is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
  fn.writeConfig(cap + PCI_MSI_ADDRESS_LO, 4, MSI_ADDR_BASE | (0 << MSI_ADDR_DEST_SHIFT));
  if (is64) fn.writeConfig(cap + PCI_MSI_ADDRESS_HI, 4, 0);
  const data = vector | (DELIVERY_FIXED << MSI_DATA_DELIVERY_SHIFT);
  fn.writeConfig(cap + (is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2, data);
  fn.writeConfig(cap + PCI_MSI_FLAGS, 2, flags | PCI_MSI_FLAGS_ENABLE);
}

/** pci_disable_msi: the function goes back to INTx. */
export function msiDisable(fn: PciFunction): void {
  if (fn.msiCap === 0) return;
  const flags = fn.readConfig(fn.msiCap + PCI_MSI_FLAGS, 2);
  fn.writeConfig(fn.msiCap + PCI_MSI_FLAGS, 2, flags & ~PCI_MSI_FLAGS_ENABLE);
}

/**
 * Xen's vector_irq on every LAPIC: a vector naming an MSI irq (vectorIrq[v] >= 0) goes to
 * `doIrq` and is acknowledged at once (a maskable MSI needs no EOI from the guest).
 */
export function interceptMsiVectors(
  apics: ApicBus,
  vectorIrq: Int32Array,
  doIrq: (irq: number) => void,
): void {
  for (const lapic of apics.lapics) {
    const prev = lapic.intercept;
    lapic.intercept = (vector, level, apic) => {
      const irq = vectorIrq[vector];
      if (irq >= 0) {
        doIrq(irq);
        return true;
      }
      return prev?.(vector, level, apic) ?? false;
    };
  }
}
