/*
 * One VM's I/O as a KVM-style host keeps it: the guest-physical device space (Linux's
 * kvm_io_bus for KVM_MMIO_BUS, then QEMU's memory-region dispatch after KVM_EXIT_MMIO), the
 * emulated PCI bus with its ECAM window, virtio-mmio windows, the virtual IO-APIC, and the
 * memory map device models DMA through.
 *
 * The emulated PCI devices are @hyperlab/machine's own DiskController and Nic, unchanged: they
 * sit on a PciBus whose "machine" is this VM's view (its device space, its IO-APIC lines, and
 * a DMA translator that is the VM's memory map), so a driver written for the real devices
 * runs against them in the guest, and the DMA they do lands only in frames the VM owns.
 *
 * Invariants: an MMIO exit reaches only this VM's device space; every exit completes (an
 * access no device claims reads all ones and a write to it is dropped, as QEMU's unassigned
 * memory answers) and is counted once under its exit reason; nothing a guest writes throws.
 */
import type { Domain, Hypervisor, Vcpu } from "@hyperlab/core";
import {
  ApicBus,
  DiskController,
  type DiskControllerOptions,
  type LocalApic,
  type Machine,
  MmioMap,
  Nic,
  type NicOptions,
  PciBus,
  VIRTIO_MMIO_SIZE,
} from "@hyperlab/machine";
import { VMX_EXIT_REASON_NAMES, VMX_EXIT_REASONS_MAX } from "@hyperlab/paging";
import { kvmIoError } from "./errors";
import { GuestMemory } from "./guest-memory";
import { KVM_IOAPIC_NUM_PINS, VirtualIoApic } from "./irqchip";
import type { VirtioBackend, VirtioMmioDevice } from "./virtio/mmio";
import { VirtioMmio } from "./virtio/mmio";

/** First GSI handed to virtio-mmio devices (Firecracker starts its legacy IRQs at 5). */
export const VIRTIO_MMIO_FIRST_GSI = 5;
/** Last GSI below the PCI INTx swizzle (16-19). */
const VIRTIO_MMIO_LAST_GSI = 15;

/** Counters of one VM's I/O path. */
export interface VmIoCounts {
  /** Accesses that exited to the device model (any reason). */
  mmioExits: number;
  mmioReads: number;
  mmioWrites: number;
  /** Exits no device claimed (reads answered all ones, writes dropped). */
  unclaimed: number;
}

/** One VM's I/O counters at a moment, for studies (each with its unit in the name). */
export interface VmIoSnapshot {
  /** Exits to the device model, and those by VM-exit reason name. */
  mmioExits: number;
  exitsByReason: Record<string, number>;
  /** Accesses no device claimed. */
  unclaimed: number;
  /** Interrupts injected, and EOIs that exited. */
  injections: number;
  eoiExits: number;
  /** virtio kicks (QueueNotify writes) over every virtio device. */
  notifications: number;
  /** Interrupts the virtio devices raised, and those EVENT_IDX / NO_INTERRUPT suppressed. */
  virtioInterrupts: number;
  suppressedInterrupts: number;
  /** Bytes device models copied from and into guest memory, and accesses refused. */
  copiedBytes: number;
  refusedAccesses: number;
}

export class VmIo {
  readonly domain: Domain;
  /** The VM's guest-physical device space. */
  readonly mmio = new MmioMap();
  readonly ioApic: VirtualIoApic;
  /**
   * The VM's APIC bus: one virtual local APIC (vCPU 0) where MSI writes of the emulated PCI
   * devices land. With APICv its EOI does not exit; each vector it dispatches is an injection.
   */
  readonly apics = new ApicBus(1);
  readonly memory: GuestMemory;
  /** The emulated PCI bus (ECAM in `mmio`), for the machine's device models. */
  readonly pci: PciBus;
  /** Exits handled here, by VM-exit basic reason. */
  readonly exits = new Float64Array(VMX_EXIT_REASONS_MAX);
  readonly counts: VmIoCounts = { mmioExits: 0, mmioReads: 0, mmioWrites: 0, unclaimed: 0 };
  /** Where the next virtio-mmio window goes. */
  readonly virtioBase: number;
  private readonly virtio: VirtioMmio[] = [];

  constructor(hv: Hypervisor, d: Domain) {
    this.domain = d;
    this.ioApic = new VirtualIoApic(this.exits);
    this.memory = new GuestMemory(hv, d);
    const m = hv.machine;
    // The VM as its emulated PCI devices see it: its device space, its IO-APIC lines, host RAM
    // (BARs go above it, where no gfn is RAM) and the machine's DMA engine behind the VM's
    // memory map (set as the bus's translator below).
    const view = { ...m, mmio: this.mmio, irqs: this.ioApic } as Machine;
    this.pci = new PciBus(view, this.apics);
    this.pci.translator = this.memory;
    this.virtioBase = this.pci.ecamBase + 0x1000_0000;
  }

  /** The emulated disk controller (the machine's model) on this VM's PCI bus. */
  addDisk(options: DiskControllerOptions): DiskController {
    return new DiskController(this.pci, options);
  }

  /** The emulated NIC (the machine's model) on this VM's PCI bus. */
  addNic(options: NicOptions = {}): Nic {
    return new Nic(this.pci, options);
  }

  /** What the VM's firmware does at boot: places every BAR and routes INTx (call once, after adding PCI devices). */
  assignPciResources(): void {
    this.pci.assignResources();
  }

  /**
   * A virtio-mmio device with `backend` behind it, at the next window above the PCI hole, on
   * the next free GSI from 5 (what a kernel command line `virtio_mmio.device=4K@base:gsi`
   * tells the guest).
   */
  addVirtio(backend: VirtioBackend): VirtioMmioDevice {
    const n = this.virtio.length;
    const gsi = VIRTIO_MMIO_FIRST_GSI + n;
    if (gsi > VIRTIO_MMIO_LAST_GSI || gsi >= KVM_IOAPIC_NUM_PINS) {
      throw kvmIoError(
        "KVM_IO_NO_GSI",
        `This VM already has ${n} virtio-mmio devices, all GSIs from ${VIRTIO_MMIO_FIRST_GSI} to ${VIRTIO_MMIO_LAST_GSI}; add fewer devices.`,
      );
    }
    const base = this.virtioBase + n * VIRTIO_MMIO_SIZE;
    const dev = new VirtioMmio(this.memory, backend, (level) =>
      level ? this.ioApic.raise(gsi) : this.ioApic.lower(gsi),
    );
    this.mmio.register({
      name: `virtio-mmio.${n} (${backend.name})`,
      base,
      len: VIRTIO_MMIO_SIZE,
      read: (off, w) => dev.read(off, w),
      write: (off, w, v) => dev.write(off, w, v),
    });
    this.virtio.push(dev);
    return { base, size: VIRTIO_MMIO_SIZE, gsi, transport: dev };
  }

  /** The virtual local APIC of vCPU 0. */
  get lapic(): LocalApic {
    return this.apics.lapics[0];
  }

  /** Interrupts injected: IO-APIC deliveries and MSI vectors the local APIC dispatched. */
  get injections(): number {
    return this.ioApic.injections + this.apics.lapics[0].delivered;
  }

  /** The VM's counters now (subtract two snapshots for a run's per-request counts). */
  snapshot(): VmIoSnapshot {
    const exitsByReason: Record<string, number> = {};
    for (let r = 0; r < this.exits.length; r++) {
      if (this.exits[r] > 0) exitsByReason[VMX_EXIT_REASON_NAMES[r] ?? `EXIT_${r}`] = this.exits[r];
    }
    let notifications = 0;
    let virtioInterrupts = 0;
    let suppressed = 0;
    for (const v of this.virtio) {
      notifications += v.counts.notifications;
      virtioInterrupts += v.counts.interrupts;
      for (const q of v.queues) suppressed += q.suppressed;
    }
    return {
      mmioExits: this.counts.mmioExits,
      exitsByReason,
      unclaimed: this.counts.unclaimed,
      injections: this.injections,
      eoiExits: this.ioApic.eoiExits,
      notifications,
      virtioInterrupts,
      suppressedInterrupts: suppressed,
      copiedBytes: this.memory.bytesRead + this.memory.bytesWritten,
      refusedAccesses: this.memory.refused,
    };
  }

  /** The virtio-mmio devices, in the order they were added. */
  virtioDevices(): readonly VirtioMmio[] {
    return this.virtio;
  }

  /**
   * KVM's handle_ept_misconfig / handle_ept_violation for a gpa without RAM, then
   * KVM_EXIT_MMIO to the device model: emulates one access. The value read (unsigned) or 0
   * after a write; -1 only for an access no instruction can make (bad width or address).
   */
  mmioExit(
    vcpu: Vcpu,
    reason: number,
    gpa: number,
    width: number,
    write: boolean,
    value: number,
  ): number {
    if (vcpu?.domain !== this.domain) return -1;
    if (!(width === 1 || width === 2 || width === 4)) return -1;
    if (!(Number.isSafeInteger(gpa) && gpa >= 0 && gpa + width <= 2 ** 52)) return -1;
    if (Number.isInteger(reason) && reason >= 0 && reason < VMX_EXIT_REASONS_MAX)
      this.exits[reason]++;
    this.counts.mmioExits++;
    const r = this.mmio.lookup(gpa);
    if (r === undefined || gpa + width > r.base + r.len) this.counts.unclaimed++;
    this.ioApic.exitBegin();
    try {
      if (write) {
        this.counts.mmioWrites++;
        this.mmio.write(gpa, width, value >>> 0);
        return 0;
      }
      this.counts.mmioReads++;
      return this.mmio.read(gpa, width);
    } finally {
      // VM entry: interrupts the access made the device raise are injected now.
      this.ioApic.exitDone();
    }
  }
}
