/*
 * Device register access (Linux's readb/readw/readl and writeb/writew/writel from
 * arch/x86/include/asm/io.h): a load or store of 1, 2 or 4 bytes through an ioremap'd
 * (uncached) mapping. The kernel makes it through its GuestPort, which is the CPU: on bare
 * metal and Xen PV it reaches the machine's MMIO decoder; under nested paging it exits to the
 * host's device model and resumes, as a KVM guest's `mov` to an emulated BAR does. The driver
 * cannot tell which.
 *
 * Invariant: an access that faults (no mapping, or a gpa no device claims) never throws: a
 * read answers -1 and a write false, and both count a kernel error (an oops in Linux).
 */
import type { GuestKernel } from "./kernel";

function read(k: GuestKernel, va: number, w: 1 | 2 | 4, cpu: number): number {
  const v = k.port.mmioRead(cpu, va, w);
  if (v < 0) k.counts.kernelErrors++;
  return v;
}

function write(k: GuestKernel, va: number, w: 1 | 2 | 4, value: number, cpu: number): boolean {
  const ok = k.port.mmioWrite(cpu, va, w, value);
  if (!ok) k.counts.kernelErrors++;
  return ok;
}

/** readb: the byte at `va`, or -1 after a fault. */
export const readb = (k: GuestKernel, va: number, cpu = 0): number => read(k, va, 1, cpu);
/** readw: the 16-bit register at `va`, or -1 after a fault. */
export const readw = (k: GuestKernel, va: number, cpu = 0): number => read(k, va, 2, cpu);
/** readl: the 32-bit register at `va` (unsigned), or -1 after a fault. */
export const readl = (k: GuestKernel, va: number, cpu = 0): number => read(k, va, 4, cpu);
/** writeb: false after a fault. */
export const writeb = (k: GuestKernel, va: number, value: number, cpu = 0): boolean =>
  write(k, va, 1, value, cpu);
/** writew: false after a fault. */
export const writew = (k: GuestKernel, va: number, value: number, cpu = 0): boolean =>
  write(k, va, 2, value, cpu);
/** writel: false after a fault. */
export const writel = (k: GuestKernel, va: number, value: number, cpu = 0): boolean =>
  write(k, va, 4, value, cpu);
