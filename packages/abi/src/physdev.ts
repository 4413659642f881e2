/*
 * Xen 4.17 public/physdev.h: physical device operations (PIRQs, I/O privilege, PCI) and
 * the argument structs a PV kernel's interrupt path uses.
 *
 * Invariant: every value equals the header's at the latest interface version (so the old
 * upper-case PHYSDEVOP_* aliases are absent, as they are to a current guest); layouts are
 * x86_64's.
 */
import type { StructLayout } from "./layout";

// Operations of HYPERVISOR_physdev_op (PHYSDEVOP_*).
export const PHYSDEVOP_eoi = 12;
export const PHYSDEVOP_pirq_eoi_gmfn_v1 = 17;
export const PHYSDEVOP_pirq_eoi_gmfn_v2 = 28;
export const PHYSDEVOP_irq_status_query = 5;
export const PHYSDEVOP_set_iopl = 6;
export const PHYSDEVOP_set_iobitmap = 7;
export const PHYSDEVOP_apic_read = 8;
export const PHYSDEVOP_apic_write = 9;
export const PHYSDEVOP_alloc_irq_vector = 10;
export const PHYSDEVOP_free_irq_vector = 11;
export const PHYSDEVOP_map_pirq = 13;
export const PHYSDEVOP_unmap_pirq = 14;
export const PHYSDEVOP_manage_pci_add = 15;
export const PHYSDEVOP_manage_pci_remove = 16;
export const PHYSDEVOP_restore_msi = 19;
export const PHYSDEVOP_manage_pci_add_ext = 20;
export const PHYSDEVOP_setup_gsi = 21;
export const PHYSDEVOP_get_free_pirq = 23;
export const PHYSDEVOP_pci_mmcfg_reserved = 24;
export const PHYSDEVOP_pci_device_add = 25;
export const PHYSDEVOP_pci_device_remove = 26;
export const PHYSDEVOP_restore_msi_ext = 27;
export const PHYSDEVOP_prepare_msix = 30;
export const PHYSDEVOP_release_msix = 31;
export const PHYSDEVOP_dbgp_op = 29;
/** The header's alias: PHYSDEVOP_pirq_eoi_gmfn_v2 at the latest interface version. */
export const PHYSDEVOP_pirq_eoi_gmfn = 28;

// physdev_irq_status_query.flags (XENIRQSTAT_*).
export const _XENIRQSTAT_needs_eoi = 0;
export const XENIRQSTAT_needs_eoi = 0x1;
export const _XENIRQSTAT_shared = 1;
export const XENIRQSTAT_shared = 0x2;

// physdev_map_pirq.type (MAP_PIRQ_TYPE_*).
export const MAP_PIRQ_TYPE_MSI = 0;
export const MAP_PIRQ_TYPE_GSI = 1;
export const MAP_PIRQ_TYPE_UNKNOWN = 2;
export const MAP_PIRQ_TYPE_MSI_SEG = 3;
export const MAP_PIRQ_TYPE_MULTI_MSI = 4;
export const XEN_PCI_MMCFG_RESERVED = 0x1;
export const XEN_PCI_DEV_EXTFN = 0x1;
export const XEN_PCI_DEV_VIRTFN = 0x2;
export const XEN_PCI_DEV_PXM = 0x4;
/** Old spelling still visible: the guest asks Xen to unmask its PIRQs. */
export const PHYSDEVOP_IRQ_UNMASK_NOTIFY = 4;
export const PHYSDEVOP_DBGP_RESET_PREPARE = 1;
export const PHYSDEVOP_DBGP_RESET_DONE = 2;
export const PHYSDEVOP_DBGP_BUS_UNKNOWN = 0;
export const PHYSDEVOP_DBGP_BUS_PCI = 1;

/** PHYSDEVOP_eoi: end of interrupt for a PIRQ. */
export const physdev_eoi: StructLayout = {
  cName: "struct physdev_eoi",
  sizeof: 4,
  fields: {
    irq: { offset: 0, size: 4 },
  },
};

/** PHYSDEVOP_pirq_eoi_gmfn_v1/v2: a page whose bits say which PIRQs need an EOI. */
export const physdev_pirq_eoi_gmfn: StructLayout = {
  cName: "struct physdev_pirq_eoi_gmfn",
  sizeof: 8,
  fields: {
    gmfn: { offset: 0, size: 8 },
  },
};

/** PHYSDEVOP_irq_status_query: whether a PIRQ needs EOI, is shared (XENIRQSTAT_*). */
export const physdev_irq_status_query: StructLayout = {
  cName: "struct physdev_irq_status_query",
  sizeof: 8,
  fields: {
    irq: { offset: 0, size: 4 },
    flags: { offset: 4, size: 4 },
  },
};

/** PHYSDEVOP_set_iopl: the guest kernel's I/O privilege level. */
export const physdev_set_iopl: StructLayout = {
  cName: "struct physdev_set_iopl",
  sizeof: 4,
  fields: {
    iopl: { offset: 0, size: 4 },
  },
};

/** PHYSDEVOP_set_iobitmap: the guest's I/O permission bitmap. */
export const physdev_set_iobitmap: StructLayout = {
  cName: "struct physdev_set_iobitmap",
  sizeof: 16,
  fields: {
    bitmap: { offset: 0, size: 8 },
    "bitmap.p": { offset: 0, size: 8 },
    nr_ports: { offset: 8, size: 4 },
  },
};

/** PHYSDEVOP_apic_read / apic_write: an IO-APIC register. */
export const physdev_apic: StructLayout = {
  cName: "struct physdev_apic",
  sizeof: 16,
  fields: {
    apic_physbase: { offset: 0, size: 8 },
    reg: { offset: 8, size: 4 },
    value: { offset: 12, size: 4 },
  },
};

/** PHYSDEVOP_alloc_irq_vector / free_irq_vector. */
export const physdev_irq: StructLayout = {
  cName: "struct physdev_irq",
  sizeof: 8,
  fields: {
    irq: { offset: 0, size: 4 },
    vector: { offset: 4, size: 4 },
  },
};

/** PHYSDEVOP_map_pirq: map a GSI or MSI to a PIRQ (MAP_PIRQ_TYPE_*). */
export const physdev_map_pirq: StructLayout = {
  cName: "struct physdev_map_pirq",
  sizeof: 40,
  fields: {
    domid: { offset: 0, size: 2 },
    type: { offset: 4, size: 4 },
    index: { offset: 8, size: 4 },
    pirq: { offset: 12, size: 4 },
    bus: { offset: 16, size: 4 },
    devfn: { offset: 20, size: 4 },
    entry_nr: { offset: 24, size: 4 },
    table_base: { offset: 32, size: 8 },
  },
};

/** PHYSDEVOP_unmap_pirq. */
export const physdev_unmap_pirq: StructLayout = {
  cName: "struct physdev_unmap_pirq",
  sizeof: 8,
  fields: {
    domid: { offset: 0, size: 2 },
    pirq: { offset: 4, size: 4 },
  },
};

/** PHYSDEVOP_setup_gsi: trigger mode and polarity of a GSI. */
export const physdev_setup_gsi: StructLayout = {
  cName: "struct physdev_setup_gsi",
  sizeof: 8,
  fields: {
    gsi: { offset: 0, size: 4 },
    triggering: { offset: 4, size: 1 },
    polarity: { offset: 5, size: 1 },
  },
};

/** PHYSDEVOP_get_free_pirq. */
export const physdev_get_free_pirq: StructLayout = {
  cName: "struct physdev_get_free_pirq",
  sizeof: 8,
  fields: {
    type: { offset: 0, size: 4 },
    pirq: { offset: 4, size: 4 },
  },
};

/**
 * PHYSDEVOP_pci_device_remove / restore_msi_ext / prepare_msix / release_msix: a PCI device
 * by segment, bus and devfn.
 */
export const physdev_pci_device: StructLayout = {
  cName: "struct physdev_pci_device",
  sizeof: 4,
  fields: {
    seg: { offset: 0, size: 2 },
    bus: { offset: 2, size: 1 },
    devfn: { offset: 3, size: 1 },
  },
};
