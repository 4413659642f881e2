/*
 * The `io-bus` slot (provided by @hyperlab/kvm-io): what a KVM-style host does with a guest's
 * accesses to guest-physical addresses that are not RAM, and the virtual interrupt controller
 * its devices raise. It is Linux's kvm_io_bus with the KVM_EXIT_MMIO return to a device model
 * (QEMU's MemoryRegion dispatch), and KVM's in-kernel irqchip (virtual IO-APIC, injection).
 *
 * Contract (what every provider keeps):
 * - `mmioExit` is entered only after the vCPU's MMU reported a VM exit for the access
 *   (EPT_VIOLATION or EPT_MISCONFIG on a gpa without RAM). It emulates the access on the device
 *   that claims [gpa, gpa + width) in the vCPU's own VM and returns; an access nobody claims
 *   completes as on unassigned memory (a read answers all ones, a write is dropped). Only an
 *   access no instruction can make (bad width or gpa, a vCPU of no VM) answers -1, and the
 *   instruction then faults. It never throws on any guest-chosen gpa, width or value, and
 *   never reaches another VM's devices.
 * - A device model reaches guest memory only through the VM's memory map: guest-physical
 *   frames the domain owns. Any other address is refused, never read or written.
 * - `ioApic(d)` is d's virtual IO-APIC as interrupt lines (one per GSI) that the guest kernel
 *   programs as it programs a real one; a delivery there is an injection into the guest.
 *   `lapic(d)` is the local APIC of d's vCPU 0, where MSI messages from d's emulated devices
 *   land; a vector it dispatches is an injection too.
 */
import type { IrqLines, LocalApic } from "@hyperlab/machine";
import type { Domain, Vcpu } from "../domain";

/** The `io-bus` slot: MMIO exits to device models and the VM's virtual irqchip. */
export interface IoBusService {
  /**
   * A vCPU's access to `gpa` (`width` 1, 2 or 4 bytes) exited with VM-exit basic reason
   * `reason`. For a read, returns the value (unsigned); for a write of `value`, returns 0.
   * Returns -1 only for an access no instruction can make (the guest then faults).
   */
  mmioExit(
    vcpu: Vcpu,
    reason: number,
    gpa: number,
    width: 1 | 2 | 4,
    write: boolean,
    value: number,
  ): number;
  /** d's virtual IO-APIC lines (created on first use). */
  ioApic(d: Domain): IrqLines;
  /** The virtual local APIC of d's vCPU 0, where its devices' MSIs land (created on first use). */
  lapic(d: Domain): LocalApic;
}
