/*
 * MMIO accessors (Linux's readl/writel, include/asm-generic/io.h): a load or store at a kernel
 * virtual address that ioremap mapped, made as the CPU makes it: the address goes through the
 * MMU (GuestPort.cpu: native paging, Xen PV direct paging, nested or shadow paging), and the
 * machine address it gives reaches RAM or, beyond RAM, the device registers on the port's MMIO
 * bus. The same driver code therefore runs on every build.
 *
 * Invariants: an access never throws: a translation fault reads all ones (as a master abort
 * does) and drops a store, and is counted; every access is one 32-bit load or store, in the
 * order the driver makes them (MMIO is uncached and strongly ordered).
 */
import type { GuestKernel } from "../kernel";

const PFEC_write_access = 0x02;

/** Per-kernel MMIO counters. */
export interface MmioCounts {
  reads: number;
  writes: number;
  /** Accesses whose address the MMU refused (a driver bug or an unmapped BAR). */
  faults: number;
}

const counters = new WeakMap<GuestKernel, MmioCounts>();

/** The MMIO counters of a kernel (created on first use). */
export function mmioCounts(k: GuestKernel): MmioCounts {
  let c = counters.get(k);
  if (c === undefined) {
    c = { reads: 0, writes: 0, faults: 0 };
    counters.set(k, c);
  }
  return c;
}

function maddrOf(k: GuestKernel, va: number, access: number, c: MmioCounts): number {
  const ma = k.port.cpu.translate(k.port.vcpus[0], va, access);
  if (ma < 0) c.faults++;
  return ma;
}

/** readl: a 32-bit load at `va`; all ones when the MMU refuses it or nothing answers. */
export function readl(k: GuestKernel, va: number): number {
  const c = mmioCounts(k);
  c.reads++;
  const ma = maddrOf(k, va, 0, c);
  if (ma < 0) return 0xffff_ffff;
  if (ma < k.port.ram.bytes) return k.port.ram.read32(ma);
  const bus = k.port.mmio;
  return bus === undefined || bus === null ? 0xffff_ffff : bus.read(ma, 4) >>> 0;
}

/** writel: a 32-bit store at `va`; false when the MMU refused it. */
export function writel(k: GuestKernel, va: number, value: number): boolean {
  const c = mmioCounts(k);
  c.writes++;
  const ma = maddrOf(k, va, PFEC_write_access, c);
  if (ma < 0) return false;
  if (ma < k.port.ram.bytes) k.port.ram.write32(ma, value >>> 0);
  else k.port.mmio?.write(ma, 4, value >>> 0);
  return true;
}
