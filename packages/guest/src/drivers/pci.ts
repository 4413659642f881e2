/*
 * The PCI core a driver needs (Linux's drivers/pci/: pci_scan_bus over ECAM, pci_read_config_*,
 * pci_enable_device, pci_set_master, pci_resource_start, pci_iomap, pci_find_capability): the
 * kernel maps the ECAM window (ACPI's MCFG names it; here the caller does) with ioremap and
 * reads each function's configuration space through that mapping, as Linux's MMCONFIG
 * accessors do on bare metal and in a Xen PV dom0.
 *
 * Invariants: configuration space is reached only through the kernel's own ECAM mapping
 * (loads and stores through the MMU, never a side door into the device model); every access
 * is 32 bits wide and aligned, a narrower field is read or written inside its dword; a
 * function that does not answer reads all ones and is not listed; nothing here throws on what
 * the hardware answers: a refusal (ioremap's -EPERM, a missing BAR) comes back as -errno.
 */
import { EINVAL, ENODEV } from "@hyperlab/abi";
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_CAPABILITY_LIST,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_ECAM_BUS_SIZE,
  PCI_INTERRUPT_LINE,
  PCI_STATUS_CAP_LIST,
  PCI_VENDOR_ID,
} from "@hyperlab/machine";
import { readl, writel } from "../io";
import { ioremap } from "../ioremap";
import type { GuestKernel } from "../kernel";

/** The ECAM window of a host bridge (what ACPI's MCFG table tells Linux). */
export interface PciHost {
  /** Machine address of bus 0's configuration space. */
  ecamBase: number;
  /** Buses the window covers; default 1. */
  buses?: number;
}

/** A function found on the bus (Linux's struct pci_dev, the fields drivers read). */
export interface PciDev {
  readonly bus: number;
  readonly devfn: number;
  readonly vendorId: number;
  readonly deviceId: number;
  /** Class, subclass and programming interface (24 bits). */
  readonly classCode: number;
  /** PCI_INTERRUPT_LINE as firmware wrote it: the GSI of INTA#, 0xff when unrouted. */
  readonly irqLine: number;
  /** The kernel virtual address of the function's 4 KiB of configuration space. */
  readonly cfgVa: number;
}

/** The kernel's ECAM mapping per host bridge base. */
const ecamMaps = new WeakMap<GuestKernel, Map<number, number>>();

function ecamVa(k: GuestKernel, host: PciHost): number {
  let m = ecamMaps.get(k);
  if (m === undefined) {
    m = new Map();
    ecamMaps.set(k, m);
  }
  const have = m.get(host.ecamBase);
  if (have !== undefined) return have;
  const buses = host.buses ?? 1;
  const va = ioremap(k, host.ecamBase, buses * PCI_ECAM_BUS_SIZE);
  if (va >= 0) m.set(host.ecamBase, va);
  return va;
}

/**
 * pci_scan_bus over every bus of the window: the functions that answer, in bus/devfn order,
 * or -errno when the window cannot be mapped (-EPERM for a domain without I/O memory
 * permission for it, -EINVAL for a bad window).
 */
export function pciScanBus(k: GuestKernel, host: PciHost): PciDev[] | number {
  const buses = host?.buses ?? 1;
  if (!(Number.isSafeInteger(host?.ecamBase) && Number.isInteger(buses) && buses >= 1)) {
    return -EINVAL;
  }
  const base = ecamVa(k, host);
  if (base < 0) return base;
  const found: PciDev[] = [];
  for (let bus = 0; bus < buses; bus++) {
    for (let devfn = 0; devfn < 256; devfn++) {
      const cfgVa = base + bus * PCI_ECAM_BUS_SIZE + devfn * 4096;
      const id = readl(k, cfgVa + PCI_VENDOR_ID);
      if ((id & 0xffff) === 0xffff) continue;
      found.push({
        bus,
        devfn,
        vendorId: id & 0xffff,
        deviceId: id >>> 16,
        classCode: readl(k, cfgVa + 0x08) >>> 8,
        irqLine: readl(k, cfgVa + PCI_INTERRUPT_LINE) & 0xff,
        cfgVa,
      });
    }
  }
  return found;
}

/** pci_read_config_{byte,word,dword}: `width` bytes at `offset` (inside one dword). */
export function pciReadConfig(k: GuestKernel, dev: PciDev, offset: number, width: 1 | 2 | 4) {
  const shift = (offset & 3) * 8;
  // A fault reads -1: all ones, as a master abort does.
  const v = readl(k, dev.cfgVa + (offset & 0xffc));
  return width === 4 ? v >>> 0 : (v >>> shift) & (width === 2 ? 0xffff : 0xff);
}

/** pci_write_config_{byte,word,dword}: a narrower field is merged into its dword. */
export function pciWriteConfig(
  k: GuestKernel,
  dev: PciDev,
  offset: number,
  width: 1 | 2 | 4,
  value: number,
): void {
  const at = dev.cfgVa + (offset & 0xffc);
  if (width === 4) {
    writel(k, at, value);
    return;
  }
  const shift = (offset & 3) * 8;
  const mask = (width === 2 ? 0xffff : 0xff) << shift;
  writel(k, at, ((readl(k, at) & ~mask) | ((value << shift) & mask)) >>> 0);
}

/** pci_enable_device + pci_set_master: memory decoding and bus mastering on. */
export function pciEnableDevice(k: GuestKernel, dev: PciDev): void {
  const cmd = pciReadConfig(k, dev, PCI_COMMAND, 2);
  pciWriteConfig(k, dev, PCI_COMMAND, 2, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/** pci_resource_start of memory BAR `bar` (a 64-bit BAR spans two), or -ENODEV when unset. */
export function pciResourceStart(k: GuestKernel, dev: PciDev, bar: number): number {
  if (!(Number.isInteger(bar) && bar >= 0 && bar < 6)) return -EINVAL;
  const off = PCI_BASE_ADDRESS_0 + 4 * bar;
  const lo = pciReadConfig(k, dev, off, 4);
  let addr = (lo & ~0xf) >>> 0;
  if ((lo & 0x6) === PCI_BASE_ADDRESS_MEM_TYPE_64 && bar < 5) {
    addr += pciReadConfig(k, dev, off + 4, 4) * 2 ** 32;
  }
  return addr === 0 || lo === 0xffff_ffff ? -ENODEV : addr;
}

/** pci_iomap: ioremap of `size` bytes of BAR `bar`; the virtual address or -errno. */
export function pciIomap(k: GuestKernel, dev: PciDev, bar: number, size: number): number {
  const start = pciResourceStart(k, dev, bar);
  return start < 0 ? start : ioremap(k, start, size);
}

/** pci_find_capability: the offset of capability `id` in the list, or 0. */
export function pciFindCapability(k: GuestKernel, dev: PciDev, id: number): number {
  if ((pciReadConfig(k, dev, 0x06, 2) & PCI_STATUS_CAP_LIST) === 0) return 0;
  let at = pciReadConfig(k, dev, PCI_CAPABILITY_LIST, 1) & 0xfc;
  for (let ttl = 48; at >= 0x40 && ttl > 0; ttl--) {
    const hdr = pciReadConfig(k, dev, at, 2);
    if ((hdr & 0xff) === id) return at;
    at = (hdr >>> 8) & 0xfc;
  }
  return 0;
}
