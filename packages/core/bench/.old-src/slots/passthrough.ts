/*
 * PCI passthrough permissions: what the toolstack does for an xl.cfg `pci=` entry of a PV
 * domain before the guest sees the device (libxl's libxl__device_pci_add -> do_pci_add): grant
 * the domain the function's interrupt (xc_domain_irq_permission, Xen's XEN_DOMCTL_irq_permission
 * into the `irq` slot) and each memory BAR's frames (xc_domain_iomem_permission, into the
 * `iomem` slot). Removing the device (do_pci_remove) takes both back.
 *
 * Invariant: a grant is all or nothing: the domain holds the irq and every BAR's frames after
 * a permit, none of them after a revoke; the slots' own contracts (an irq denied is unmapped
 * first) do the rest.
 */
import type { PciFunction } from "@hyperlab/machine";
import type { Domain } from "../domain";
import { HyperlabError } from "../errors";
import type { Hypervisor } from "../hypervisor";
import type { FrameRange } from "./iomem";

/** What a passthrough grant gave a domain. */
export interface PciPassthroughGrant {
  /** The Xen irq (the function's GSI), or -1 for a function without an interrupt pin. */
  irq: number;
  /** The machine frames of each memory BAR, in BAR order. */
  iomem: FrameRange[];
}

/** The irq and BAR frames of a PCI function, as libxl reads them from sysfs (irq, resource). */
export function pciPassthroughResources(fn: PciFunction): PciPassthroughGrant {
  const iomem: FrameRange[] = [];
  for (let i = 0; i < 6; i++) {
    const spec = fn.bar(i);
    const base = fn.barAddress(i);
    if (spec === null || base <= 0) continue;
    iomem.push({ start: Math.floor(base / 4096), end: Math.floor((base + spec.size - 1) / 4096) });
  }
  return { irq: fn.gsi > 0 ? fn.gsi : -1, iomem };
}

/**
 * libxl's do_pci_add (allow) or do_pci_remove (deny) for PCI function `fn` and domain `d`:
 * XEN_DOMCTL_irq_permission for its GSI and XEN_DOMCTL_iomem_permission for each BAR. Needs
 * the `irq` and `iomem` slots (apicHooks() and iomap()). Throws HyperlabError for a user's
 * mistake: a dead domain, a BAR firmware has not placed.
 */
export function pciPassthroughPermission(
  hv: Hypervisor,
  d: Domain,
  fn: PciFunction,
  allow: boolean,
): PciPassthroughGrant {
  if (hv.domain(d?.domid) !== d || d.state === "dead" || d.state === "dying") {
    throw new HyperlabError(
      "DOMAIN_GONE",
      `Domain ${d?.domid} is not a live domain of this hypervisor; assign devices to a domain before it dies.`,
    );
  }
  const grant = pciPassthroughResources(fn);
  for (let i = 0; i < 6; i++) {
    if (fn.bar(i) !== null && fn.barAddress(i) <= 0) {
      throw new HyperlabError(
        "PASSTHROUGH_BAR_UNASSIGNED",
        `BAR${i} of PCI function ${fn.name} has no address: run platform.pci.assignResources() (firmware) before assigning the device.`,
      );
    }
  }
  const irq = hv.slot("irq");
  const iomem = hv.slot("iomem");
  if (grant.irq >= 0) {
    if (allow) irq.irqPermitAccess(d, grant.irq);
    else irq.irqDenyAccess(d, grant.irq);
  }
  for (const r of grant.iomem) {
    if (allow) iomem.iomemPermitAccess(d, r.start, r.end);
    else iomem.iomemDenyAccess(d, r.start, r.end);
  }
  return grant;
}
