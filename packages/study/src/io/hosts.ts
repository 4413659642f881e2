/*
 * The hosts the I/O workload runs on: one machine with the disk controller and the NIC
 * (@hyperlab/machine), and a kernel that owns both through the guest drivers (hldisk, hlnic).
 * Natively the kernel programs the IO-APIC and DMAs by physical address; in a Xen dom0 it
 * reaches the IO-APIC through PHYSDEVOP_* (apic-hooks), maps BARs with _PAGE_IOMAP (iomap),
 * DMAs through swiotlb-xen and takes interrupts as event-channel upcalls.
 *
 * Each host keeps the study's probes: every hypercall dispatched for the kernel's domain
 * (core's trace), every load and store the kernel makes to device memory (its port's MMIO
 * entry points), the upcalls Xen enters, and the drivers' and swiotlb's own counters.
 *
 * Invariants: a host's counters only grow; `deliver` returns only when no event is left
 * pending for the kernel (what Xen would do before resuming it), and natively does nothing
 * (a device's interrupt already ran inside the MMIO store that caused it).
 */
import {
  __HYPERVISOR_memory_op,
  __HYPERVISOR_physdev_op,
  PHYSDEVOP_eoi,
  XENMEM_exchange,
} from "@hyperlab/abi";
import { apicHooks } from "@hyperlab/apic-hooks";
import { createHypervisor, type Hypervisor, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import {
  bootNativeKernel,
  bootXenPvKernel,
  type GuestKernel,
  type Hldisk,
  type Hlnic,
  hldiskMatch,
  hldiskProbe,
  hlnicMatch,
  hlnicProbe,
  ioremapOps,
  type PciIrqMode,
  pciScanBus,
  xenApic,
} from "@hyperlab/guest";
import { iomap } from "@hyperlab/iomap";
import { kvmIo } from "@hyperlab/kvm-io";
import {
  createMachine,
  createPlatform,
  DiskController,
  LoopbackPort,
  type MemoryDiskImage,
  Nic,
} from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { nptMmu } from "@hyperlab/npt-mmu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { swiotlbDma, swiotlbOf } from "@hyperlab/swiotlb-dma";
import { studyError } from "../errors";
import type { IoPlatformName } from "./config";
import { type IoCounts, zeroIoCounts } from "./counts";

const MiB = 2 ** 20;
/** Pages the kernel gets: enough for the buffers (a 2 MiB block), rings and the bounce pool. */
const KERNEL_PAGES = 8192;

/** What a host is built with. */
export interface IoHostOptions {
  seed: number;
  /** The disk's image, shared by nothing else (each host gets its own copy). */
  image: MemoryDiskImage;
  diskIrq: PciIrqMode;
  nicIrq: PciIrqMode;
  /** Called with each frame the NIC driver receives. */
  onReceive(frame: Uint8Array): void;
}

/** A booted host whose kernel has probed both devices. */
export interface IoHost {
  readonly platform: IoPlatformName;
  readonly k: GuestKernel;
  readonly disk: Hldisk;
  readonly nic: Hlnic;
  readonly image: MemoryDiskImage;
  /** Lets the hypervisor run what is pending before the kernel goes on (Xen: upcalls). */
  deliver(): void;
  /** The counters so far (a fresh object). */
  counts(): IoCounts;
}

/** A platform of the I/O workload. */
export interface IoPlatform {
  name: IoPlatformName;
  description: string;
  boot(options: IoHostOptions): IoHost;
}

/** The kernel's MMIO accesses, counted at its port (the CPU's loads and stores to device memory). */
function countMmio(k: GuestKernel): { accesses: number } {
  const c = { accesses: 0 };
  const port = k.port as { mmioRead: typeof k.port.mmioRead; mmioWrite: typeof k.port.mmioWrite };
  const read = port.mmioRead;
  const write = port.mmioWrite;
  port.mmioRead = (cpu, va, w) => {
    c.accesses++;
    return read.call(port, cpu, va, w);
  };
  port.mmioWrite = (cpu, va, w, value) => {
    c.accesses++;
    return write.call(port, cpu, va, w, value);
  };
  return c;
}

/** Hypercalls the domain made, split as the report shows them. */
function countHypercalls(hv: Hypervisor, domid: number) {
  const c = { eoi: 0, exchange: 0, total: 0 };
  hv.setTrace((e) => {
    if (e.kind !== "hypercall" || e.domid !== domid) return;
    c.total++;
    if (e.op === __HYPERVISOR_physdev_op && e.cmd === PHYSDEVOP_eoi) c.eoi++;
    if (e.op === __HYPERVISOR_memory_op && e.cmd === XENMEM_exchange) c.exchange++;
  });
  return c;
}

function machineWithDevices(o: IoHostOptions) {
  const machine = createMachine({ ramBytes: 128 * MiB, cpus: 1, seed: o.seed });
  const platform = createPlatform(machine);
  new DiskController(platform.pci, { image: o.image });
  const nic = new Nic(platform.pci);
  nic.attach(new LoopbackPort(nic));
  platform.pci.assignResources();
  return { machine, platform };
}

/** Scans the bus and probes both drivers; a failure here is the host's, not the guest's. */
function probe(k: GuestKernel, ecamBase: number, o: IoHostOptions, platform: string) {
  const devs = pciScanBus(k, { ecamBase });
  const fail = (what: string, rc: number): never => {
    throw studyError(
      "STUDY_IO_FAILED",
      `The ${platform} host could not ${what} (errno ${-rc}). This is a bug in the host's build: report it with the study config.`,
    );
  };
  if (typeof devs === "number") return fail("scan its PCI bus", devs);
  const diskDev = devs.find(hldiskMatch);
  const nicDev = devs.find(hlnicMatch);
  if (diskDev === undefined || nicDev === undefined) return fail("find its devices", 19);
  const disk = hldiskProbe(k, diskDev, { irq: o.diskIrq });
  if (typeof disk === "number") return fail("probe the disk", disk);
  const nic = hlnicProbe(k, nicDev, { irq: o.nicIrq, onReceive: o.onReceive });
  if (typeof nic === "number") return fail("probe the NIC", nic);
  return { disk, nic };
}

function driverInterrupts(disk: Hldisk, nic: Hlnic): number {
  return (
    disk.counts.interrupts + disk.counts.spurious + nic.counts.interrupts + nic.counts.spurious
  );
}

/** Bare metal: the kernel owns the IO-APIC, its LAPIC and the devices. */
export const nativeIoPlatform: IoPlatform = {
  name: "native",
  description: "bare-metal kernel: IO-APIC and LAPIC programmed directly, DMA by physical address",
  boot(o) {
    const m = machineWithDevices(o);
    const hv = createHypervisor({ machine: m.machine, plugins: [nativeMmu()] }).boot();
    const d = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: KERNEL_PAGES + 16 });
    const k = bootNativeKernel(hv, d, { nrPages: KERNEL_PAGES, apics: m.platform.apics });
    const hc = countHypercalls(hv, d.domid);
    const { disk, nic } = probe(k, m.platform.pci.ecamBase, o, "native");
    const mmio = countMmio(k);
    return {
      platform: "native",
      k,
      disk,
      nic,
      image: o.image,
      deliver() {},
      counts() {
        const c = zeroIoCounts();
        c.interrupts = driverInterrupts(disk, nic);
        c.otherHypercalls = hc.total;
        c.mmioAccesses = mmio.accesses;
        return c;
      },
    };
  },
};

/** A Xen-style host whose PV dom0 owns the devices. */
export const xenDom0IoPlatform: IoPlatform = {
  name: "xen-dom0",
  description:
    "Xen PV dom0: PHYSDEVOP_* for the IO-APIC, _PAGE_IOMAP BAR mappings, swiotlb-xen DMA, interrupts as event-channel upcalls",
  boot(o) {
    const m = machineWithDevices(o);
    const hv = createHypervisor({
      machine: m.machine,
      plugins: [pvMmu(), evtchn2l(), schedCredit(), apicHooks({ platform: m.platform }), iomap()],
    }).boot();
    const d = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: KERNEL_PAGES + 16 });
    const built = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: KERNEL_PAGES });
    const hc = countHypercalls(hv, d.domid);
    const k = bootXenPvKernel(hv, d, {
      startInfoVa: built.rsi,
      plugins: [swiotlbDma(), xenApic(), ioremapOps({ strategy: "iomap-bit" })],
    });
    // Linux builds the bounce pool at boot (xen_swiotlb_init), not at the first bounce.
    const swiotlb = swiotlbOf(k);
    swiotlb.initPool();
    const { disk, nic } = probe(k, m.platform.pci.ecamBase, o, "xen-dom0");
    const mmio = countMmio(k);
    const events = k.events;
    const pendingAt = k.port.vcpuInfoMaddr(0);
    if (events === null || pendingAt < 0) {
      throw studyError(
        "STUDY_IO_FAILED",
        "The xen-dom0 host's kernel has no event channels. This is a bug in the host's build.",
      );
    }
    let upcalls = 0;
    return {
      platform: "xen-dom0",
      k,
      disk,
      nic,
      image: o.image,
      deliver() {
        // Xen enters the upcall while vcpu_info.evtchn_upcall_pending is set, once the
        // kernel has interrupts enabled (evtchn_upcall_mask clear). The model's kernel does
        // not model its interrupt flag, so this is the moment it is taken to enable them.
        for (let i = 0; i < 64; i++) {
          if (k.ram.read8(pendingAt) === 0) return;
          upcalls++;
          events.xenEvtchnDoUpcall(0);
        }
      },
      counts() {
        const c = zeroIoCounts();
        c.interrupts = driverInterrupts(disk, nic);
        c.upcalls = upcalls;
        c.eoiHypercalls = hc.eoi;
        c.exchanges = hc.exchange;
        c.otherHypercalls = hc.total - hc.eoi - hc.exchange;
        c.bounces = swiotlb.counts.bounces;
        c.bytesBounced = swiotlb.counts.bytesIn + swiotlb.counts.bytesOut;
        c.mmioAccesses = mmio.accesses;
        return c;
      },
    };
  },
};

/**
 * A KVM-style host (nested paging, @hyperlab/kvm-io): the guest runs the same native kernel
 * and drivers, but the disk controller and NIC are emulated by the host's device model: each
 * MMIO access is an EPT exit to it, each interrupt a line of the VM's virtual IO-APIC or an
 * MSI to its virtual LAPIC, injected; a level line's EOI exits.
 */
export const kvmGuestIoPlatform: IoPlatform = {
  name: "kvm-guest",
  description:
    "KVM-style guest: nested paging, devices emulated in the host (MMIO exits), interrupts injected by a virtual IO-APIC / LAPIC",
  boot(o) {
    const machine = createMachine({ ramBytes: 128 * MiB, cpus: 1, seed: o.seed });
    const hv = createHypervisor({ machine, plugins: [nptMmu(), kvmIo()] }).boot();
    const d = hv.createDomain({ maxVcpus: 1, maxPages: KERNEL_PAGES + 16 });
    hv.unpauseDomain(d);
    const vm = hv.slot("kvm-io").vm(d);
    vm.addDisk({ image: o.image });
    const nicDev = vm.addNic();
    nicDev.attach(new LoopbackPort(nicDev));
    vm.assignPciResources();
    const hc = countHypercalls(hv, d.domid);
    const k = bootNativeKernel(hv, d, { nrPages: KERNEL_PAGES });
    const { disk, nic } = probe(k, vm.pci.ecamBase, o, "kvm-guest");
    const mmio = countMmio(k);
    return {
      platform: "kvm-guest",
      k,
      disk,
      nic,
      image: o.image,
      // Interrupts raised during an exit are injected at the VM entry that ends it.
      deliver() {},
      counts() {
        const c = zeroIoCounts();
        const s = vm.snapshot();
        c.interrupts = driverInterrupts(disk, nic);
        c.otherHypercalls = hc.total;
        c.mmioAccesses = mmio.accesses;
        c.mmioExits = s.mmioExits;
        c.injections = s.injections;
        c.eoiExits = s.eoiExits;
        return c;
      },
    };
  },
};

/** The platforms, in report order. */
export const IO_PLATFORMS: readonly IoPlatform[] = [
  nativeIoPlatform,
  xenDom0IoPlatform,
  kvmGuestIoPlatform,
];

export function ioPlatformByName(name: string): IoPlatform {
  const p = IO_PLATFORMS.find((x) => x.name === name);
  if (p === undefined) {
    throw studyError(
      "STUDY_BAD_CONFIG",
      `There is no I/O platform "${name}". Choose from: ${IO_PLATFORMS.map((x) => x.name).join(", ")}.`,
    );
  }
  return p;
}
