/*
 * The chipset around a machine's CPUs and RAM: one local APIC per pCPU on an APIC bus, an
 * IO-APIC that drives the machine's interrupt lines (GSIs 0-23), and a PCI bus whose MSI
 * writes reach the APIC bus. Devices are then added to `pci` and placed by
 * `pci.assignResources()`, as firmware does.
 */

import { IoApic, type IoApicOptions } from "./ioapic";
import { ApicBus } from "./lapic";
import type { Machine } from "./machine";
import { PciBus, type PciBusOptions } from "./pci";

export interface PlatformOptions {
  ioapic?: IoApicOptions;
  pci?: PciBusOptions;
}

export interface Platform {
  readonly machine: Machine;
  readonly apics: ApicBus;
  readonly ioapic: IoApic;
  readonly pci: PciBus;
}

/** Builds the APIC bus (one LAPIC per pCPU, APIC ID = pCPU id), the IO-APIC and the PCI bus. */
export function createPlatform(machine: Machine, options: PlatformOptions = {}): Platform {
  const apics = new ApicBus(machine.cpus.length);
  const ioapic = new IoApic(machine.irqs, apics, machine.mmio, options.ioapic);
  const pci = new PciBus(machine, apics, options.pci);
  return { machine, apics, ioapic, pci };
}
