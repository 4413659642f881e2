/*
 * The host's side of a guest: builds the GuestPort a kernel holds from a hypervisor and one
 * of its domains, and boots kernels on it. Here, and only here, the guest package touches
 * the Hypervisor: to make the port (hypercalls on the domain's own vCPUs, the `mmu` slot as
 * the CPU's MMU, the machine's memory and clock, the domain's shared_info) and, for a native
 * boot, to do the builder's part (allocating the domain's frames). The kernel modules see
 * only the port.
 *
 * Invariants: a port's hypercall runs on a vCPU of its own domain or answers -EINVAL; a
 * port has at most one upcall entry; a native boot allocates exactly the frames it hands the
 * kernel, or throws before the kernel exists.
 */
import { EINVAL, shared_info_x86_64, vcpu_info_x86_64 } from "@hyperlab/abi";
import { type Domain, type Hypervisor, type MmuFault, PFEC_write_access } from "@hyperlab/core";
import type { ApicBus } from "@hyperlab/machine";
import {
  type NativeBootOptions,
  startNativeKernel,
  startXenPvKernel,
  type XenPvBootOptions,
} from "./boot";
import { guestError } from "./errors";
import type { GuestKernel } from "./kernel";
import { HPAGE_PMD_NR } from "./layout";
import type { GuestPort, UpcallHandler } from "./port";

/** A port as its host holds it: the guest's port, plus the entry the host enters upcalls by. */
export interface HostGuestPort extends GuestPort {
  /**
   * Enters the guest's registered upcall on `cpu` (Xen delivering an event upcall): the
   * events it handled, or -1 when the guest registered none (Xen then delivers nothing).
   */
  deliverUpcall(cpu: number): number;
}

/** What a host adds to a port beyond the hypervisor and the domain. */
export interface GuestPortOptions {
  /**
   * The machine's APIC bus (createPlatform's `apics`): on bare metal the kernel then owns
   * cpu 0's local APIC and takes MSI vectors there. Ignored under Xen, which owns the LAPICs.
   */
  apics?: ApicBus;
}

/** Builds the GuestPort of domain `d` on `hv` (whose `mmu` slot is the CPU's MMU). */
export function createGuestPort(
  hv: Hypervisor,
  d: Domain,
  options: GuestPortOptions = {},
): HostGuestPort {
  if (hv.domain(d?.domid) !== d) {
    throw guestError(
      "GUEST_BAD_PORT",
      "createGuestPort needs a domain of this hypervisor: create it with hv.createDomain first.",
    );
  }
  const vcpus = d.vcpus;
  const machine = hv.machine;
  const cpu = hv.slot("mmu");
  const vcpuInfo0 = shared_info_x86_64.fields.vcpu_info.offset;
  const nrVcpuInfo = shared_info_x86_64.fields.vcpu_info.count ?? 32;
  let upcall: UpcallHandler | null = null;
  // A KVM-style host's device models and virtual irqchip (nested paging only).
  const ioBus = cpu.kind === "nested" && hv.hasSlot("io-bus") ? hv.slot("io-bus") : null;
  const exitFault = cpu.fault as MmuFault & { gpa?: number; exitReason?: number };
  const validCpu = (c: number) => Number.isInteger(c) && c >= 0 && c < vcpus.length;
  const validWidth = (w: number) => w === 1 || w === 2 || w === 4;
  /** The access faulted: a VM exit on a gpa without RAM goes to the host's device model. */
  const exitToHost = (c: number, va: number, w: 1 | 2 | 4, write: boolean, value: number) => {
    const reason = exitFault.exitReason ?? -1;
    const gpa = exitFault.gpa ?? -1;
    if (ioBus === null || reason < 0 || gpa < 0) return -1;
    return ioBus.mmioExit(vcpus[c], reason, gpa + (va % 4096), w, write, value);
  };
  /** Loads and stores inside one page only: a device access never straddles pages. */
  const onePage = (va: number, w: number) =>
    Number.isSafeInteger(va) &&
    va >= 0 &&
    Math.floor(va / 4096) === Math.floor((va + w - 1) / 4096);
  const ram = machine.ram;
  return {
    vcpus,
    ram: machine.ram,
    cpu,
    // Only on bare metal does the kernel own the IO-APIC; under Xen, Xen does.
    // under nested paging with a device-model host, its VM's virtual IO-APIC.
    ioApic: cpu.kind === "native" ? machine.irqs : ioBus !== null ? ioBus.ioApic(d) : null,
    // Bare metal: cpu 0's local APIC when the host models the chipset; a KVM-style VM: the
    // virtual local APIC of its vCPU 0, where its emulated devices' MSIs land.
    lapic:
      cpu.kind === "native"
        ? (options.apics?.lapics[0] ?? null)
        : ioBus !== null
          ? ioBus.lapic(d)
          : null,
    mmioRead(c, va, w) {
      if (!validCpu(c) || !validWidth(w) || !onePage(va, w)) return -1;
      const ma = cpu.translate(vcpus[c], va, 0);
      if (ma < 0) return exitToHost(c, va, w, false, 0);
      if (ma >= ram.bytes) return machine.mmio.read(ma, w);
      return w === 4 ? ram.read32(ma) : w === 2 ? ram.read16(ma) : ram.read8(ma);
    },
    mmioWrite(c, va, w, value) {
      if (!validCpu(c) || !validWidth(w) || !onePage(va, w)) return false;
      const ma = cpu.translate(vcpus[c], va, PFEC_write_access);
      if (ma < 0) return exitToHost(c, va, w, true, value >>> 0) >= 0;
      if (ma >= ram.bytes) machine.mmio.write(ma, w, value >>> 0);
      else if (w === 4) ram.write32(ma, value >>> 0);
      else if (w === 2) ram.write16(ma, value & 0xffff);
      else ram.write8(ma, value & 0xff);
      return true;
    },
    clock: machine.clock,
    get sharedInfoMfn() {
      return d.sharedInfoMfn;
    },
    hypercall(c, op, args) {
      if (!Number.isInteger(c) || c < 0 || c >= vcpus.length) return -EINVAL;
      return hv.hypercall(vcpus[c], op, args);
    },
    vcpuInfoMaddr(c) {
      if (d.sharedInfoMfn < 0 || !Number.isInteger(c) || c < 0 || c >= nrVcpuInfo) return -1;
      return d.sharedInfoMfn * 4096 + vcpuInfo0 + c * vcpu_info_x86_64.sizeof;
    },
    registerUpcall(handler) {
      if (upcall !== null) {
        throw guestError(
          "GUEST_UPCALL_TWICE",
          `Domain ${d.domid}'s kernel already registered its upcall entry. Boot one kernel per domain.`,
        );
      }
      upcall = handler;
    },
    deliverUpcall(c) {
      if (upcall === null || !Number.isInteger(c) || c < 0 || c >= vcpus.length) return -1;
      return upcall(c);
    },
  };
}

/**
 * Boots a kernel on bare metal: as its builder, allocates `nrPages` machine frames to `d`
 * (whole 2 MiB blocks first, so the kernel has blocks to give huge pages from), then starts
 * the kernel on them through the domain's GuestPort.
 */
export function bootNativeKernel(
  hv: Hypervisor,
  d: Domain,
  options: NativeBootOptions,
): GuestKernel {
  const nrPages = options?.nrPages;
  const allowance = d.maxPages - d.totPages - d.podPages;
  if (!Number.isInteger(nrPages) || nrPages < 16 || nrPages > allowance) {
    throw guestError(
      "GUEST_BAD_SIZE",
      `nrPages must be a whole number from 16 to the domain's free allowance (${allowance}), got ${nrPages}. Raise maxPages or ask for fewer pages.`,
    );
  }
  if (d.vcpus[0].cr3Mfn >= 0) {
    throw guestError(
      "GUEST_BOOT_TWICE",
      `Domain ${d.domid} already runs a kernel (vCPU 0 has page tables). Boot one kernel per domain.`,
    );
  }
  const port = createGuestPort(hv, d, { apics: options.apics });
  // A typed array, not a growing number[]: V8 keeps the heap a large array grew, after it is gone.
  const frames = new Float64Array(nrPages);
  let n = 0;
  // Whole 2 MiB blocks first (aligned, as a buddy allocator hands them out); the rest page by
  // page. On demand, the blocks are the same frames, reserved and populated at first use.
  const pod = options.populateOnDemand === true;
  while (nrPages - n >= HPAGE_PMD_NR) {
    const mfn = pod ? hv.reserveDomainPages(d, 9) : hv.allocDomainPages(d, 9);
    if (mfn < 0) break;
    for (let i = 0; i < HPAGE_PMD_NR; i++) frames[n++] = mfn + i;
  }
  for (let i = n; i < nrPages; i++) {
    const mfn = hv.allocDomainPages(d, 0);
    if (mfn < 0) {
      throw guestError(
        "GUEST_BOOT_NO_MEMORY",
        `The machine ran out of frames after ${i} of ${nrPages} pages. Give the machine more RAM.`,
      );
    }
    frames[i] = mfn;
  }
  return startNativeKernel(port, frames, options);
}

/**
 * Boots a kernel as a Xen PV guest on a domain Xen's builder has just set up (see
 * startXenPvKernel), through the domain's GuestPort.
 */
export function bootXenPvKernel(hv: Hypervisor, d: Domain, options: XenPvBootOptions): GuestKernel {
  return startXenPvKernel(createGuestPort(hv, d), options);
}
