/*
 * request_irq for a PCI function (Linux's pci_alloc_irq_vectors + request_irq, with the
 * fasteoi flow of kernel/irq/chip.c around the driver's handler): INTx is the GSI firmware
 * wrote into PCI_INTERRUPT_LINE, registered level-triggered and active low through
 * pv_ops.apic (the IO-APIC natively, PHYSDEVOP_map_pirq + setup_gsi in a Xen dom0), so its irq
 * is the GSI on both; MSI is pv_ops.apic.setupMsi: natively the kernel writes the message it
 * is given into the function's MSI capability and enables it; under Xen the answer carries no
 * message, because Xen wrote it (PHYSDEVOP_map_pirq's msi_capability_init).
 *
 * Invariants: the driver's handler runs inside the flow, which ends every interrupt with
 * pv_ops.apic.eoi (so a level line is released once the handler has quietened its device);
 * nothing throws on a refusal: pv_ops.apic's -errno comes back.
 */
import { EINVAL, ENODEV } from "@hyperlab/abi";
import {
  PCI_CAP_ID_MSI,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
} from "@hyperlab/machine";
import type { GuestKernel } from "../kernel";
import { type PciDev, pciFindCapability, pciReadConfig, pciWriteConfig } from "./pci";

/** What request_irq gave a driver. */
export interface PciIrq {
  /** The Linux irq: the GSI for INTx, a dynamic irq above the GSIs for MSI. */
  irq: number;
  /** Whether the function signals by MSI. */
  msi: boolean;
}

/** The interrupt source a driver asks for. */
export type PciIrqMode = "intx" | "msi";

/**
 * Sets up the function's interrupt (`mode`, default "intx") and binds `handler` to its irq;
 * the flow EOIs after the handler returns. The irq, or -errno: -ENODEV for a function with
 * no routed pin (INTx) or no MSI capability (MSI), or pv_ops.apic's refusal.
 */
export function requestIrq(
  k: GuestKernel,
  dev: PciDev,
  handler: (irq: number) => void,
  mode: PciIrqMode = "intx",
): PciIrq | number {
  if (typeof handler !== "function") return -EINVAL;
  const apic = k.ops.apic;
  let irq: number;
  if (mode === "msi") {
    const cap = pciFindCapability(k, dev, PCI_CAP_ID_MSI);
    if (cap === 0) return -ENODEV;
    const m = apic.setupMsi({ bus: dev.bus, devfn: dev.devfn });
    if (typeof m === "number") return m;
    irq = m.irq;
    if (m.address !== 0) {
      // pci_write_msi_msg + msi_set_enable: the kernel owns the capability natively.
      const flags = pciReadConfig(k, dev, cap + PCI_MSI_FLAGS, 2);
      const is64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
      pciWriteConfig(k, dev, cap + PCI_MSI_ADDRESS_LO, 4, m.address % 2 ** 32);
      if (is64)
        pciWriteConfig(k, dev, cap + PCI_MSI_ADDRESS_HI, 4, Math.floor(m.address / 2 ** 32));
      pciWriteConfig(k, dev, cap + (is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2, m.data);
      pciWriteConfig(k, dev, cap + PCI_MSI_FLAGS, 2, flags | PCI_MSI_FLAGS_ENABLE);
    }
  } else if (mode === "intx") {
    if (dev.irqLine === 0xff) return -ENODEV;
    irq = apic.setupGsi(dev.irqLine, "level", "low");
    if (irq < 0) return irq;
  } else {
    return -EINVAL;
  }
  const rc = apic.bindIrq(irq, (n) => {
    handler(n);
    apic.eoi(n);
  });
  if (rc < 0) return rc;
  const u = apic.unmask(irq);
  if (u < 0) return u;
  return { irq, msi: mode === "msi" };
}

/** free_irq: unbinds the handler and masks the irq. 0 or -errno. */
export function freeIrq(k: GuestKernel, irq: number): number {
  const rc = k.ops.apic.bindIrq(irq, null);
  if (rc < 0) return rc;
  return k.ops.apic.mask(irq);
}
