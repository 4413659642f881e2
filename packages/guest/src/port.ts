/*
 * GuestPort: everything the guest kernel holds of the machine it runs on, named after what
 * Linux sees: the CPUs it runs on (and their MMU), the hypercall instruction, physical
 * memory, the clock, the pages Xen shares with it, and the upcall entry it registers. There
 * is no hypervisor object behind it that the kernel could reach around: a guest reaches Xen
 * only through `hypercall` and shared memory, as Linux does. `createGuestPort` (host.ts)
 * builds one from a hypervisor and a domain; a test or another host may build its own.
 *
 * Invariants (what every port keeps): `hypercall` runs only on this guest's own vCPUs (a cpu
 * number outside 0..vcpus.length-1 answers -EINVAL, never throws); the only vCPUs the port
 * hands out are the guest's own, so `cpu` translates for them alone; `ram` is the memory
 * bus, and the kernel touches through it only frames it was given (its pfns, shared pages)
 * or that `cpu` translated for it.
 */
import type { MmuBackend, Vcpu } from "@hyperlab/core";
import type { IrqLines, LocalApic, Ram } from "@hyperlab/machine";

/** The upcall entry a kernel registers (Linux's xen_hypervisor_callback): the events handled. */
export type UpcallHandler = (cpu: number) => number;

export interface GuestPort {
  /** The guest's vCPUs as the hardware runs them; Linux's cpu n is vcpus[n]. */
  readonly vcpus: readonly Vcpu[];
  /**
   * The hypercall instruction, executed on cpu `cpu`: Xen's answer (>= 0, or a negative
   * errno). Arguments are Xen's, as @hyperlab/abi names them.
   */
  hypercall(cpu: number, op: number, args: object): number;
  /** Physical memory as the CPU's loads and stores reach it (by machine address or frame). */
  readonly ram: Ram;
  /** The CPU's MMU (core's `mmu` slot): translate, TLB flushes, the page-table store entry points. */
  readonly cpu: MmuBackend;
  /**
   * The interrupt lines of the IO-APIC this kernel may program itself (bare metal), or null
   * where it has none it may touch (a Xen PV guest routes interrupts through Xen; nested and
   * shadow paging guests get their VM's virtual IO-APIC when the host has an `io-bus`).
   */
  readonly ioApic: IrqLines | null;
  /**
   * A load of `width` (1, 2 or 4) bytes at virtual address `va` on cpu `cpu` through an
   * uncached (device) mapping, as readb/readw/readl compile to: the value, or -1 when the access
   * faulted. On bare metal and Xen PV it reaches the machine's MMIO decoder; under nested
   * paging it exits to the host, whose device model (the `io-bus` slot) emulates it.
   */
  mmioRead(cpu: number, va: number, width: 1 | 2 | 4): number;
  /** The store twin of mmioRead (writeb/writew/writel): false when the access faulted. */
  mmioWrite(cpu: number, va: number, width: 1 | 2 | 4, value: number): boolean;
  /**
   * The local APIC of cpu 0 where the kernel owns it (bare metal with a modelled chipset):
   * MSI messages land in it and the kernel takes their vectors. Absent or null elsewhere.
   */
  readonly lapic?: LocalApic | null;
  /** The machine clock, in nanoseconds (the TSC a native kernel reads). */
  readonly clock: { readonly now: number };
  /**
   * The frame Xen shares as shared_info (Xen PV: start_info.shared_info says the same), or
   * -1 where there is none (bare metal, nested and shadow paging).
   */
  readonly sharedInfoMfn: number;
  /** Machine address of cpu's vcpu_info inside shared_info, or -1 (no shared_info, or cpu >= 32). */
  vcpuInfoMaddr(cpu: number): number;
  /**
   * Registers the kernel's upcall entry (Linux's CALLBACKTYPE_event callback): whoever runs
   * this guest's vCPUs enters it when an upcall is pending and unmasked. One per kernel.
   */
  registerUpcall(handler: UpcallHandler): void;
}
