/*
 * The kvmIo() plugin: fills core's `io-bus` slot (MMIO exits and the virtual irqchip, what the
 * guest's CPU reaches) and `kvm-io` (the host's side: a VM's device models). A VM's I/O state
 * is created on first use and dropped with its domain.
 */
import type { Domain, Hypervisor, IoBusService, Plugin, Vcpu } from "@hyperlab/core";
import { kvmIoError } from "./errors";
import { VmIo } from "./vm";

/** The host's view: each VM's device space, devices and counters. */
export class KvmIo implements IoBusService {
  private readonly vms = new Map<number, VmIo>();

  constructor(private readonly hv: Hypervisor) {}

  /** Domain d's VM I/O (created on first use). Throws for a domain of another hypervisor. */
  vm(d: Domain): VmIo {
    if (this.hv.domain(d?.domid) !== d) {
      throw kvmIoError(
        "KVM_IO_BAD_DOMAIN",
        "kvm-io serves domains of its own hypervisor: create the VM with hv.createDomain first.",
      );
    }
    let v = this.vms.get(d.domid);
    if (v === undefined) {
      v = new VmIo(this.hv, d);
      this.vms.set(d.domid, v);
    }
    return v;
  }

  /** Every VM with I/O state. */
  list(): readonly VmIo[] {
    return [...this.vms.values()];
  }

  mmioExit(
    vcpu: Vcpu,
    reason: number,
    gpa: number,
    width: 1 | 2 | 4,
    write: boolean,
    value: number,
  ): number {
    const v = this.vms.get(vcpu?.domain?.domid);
    if (v === undefined) return -1;
    return v.mmioExit(vcpu, reason, gpa, width, write, value);
  }

  ioApic(d: Domain) {
    return this.vm(d).ioApic;
  }

  lapic(d: Domain) {
    return this.vm(d).lapic;
  }

  /** Drops a dying domain's I/O state. */
  domainDestroyed(d: Domain): void {
    this.vms.delete(d.domid);
  }

  /** Sum of a counter over every VM. */
  sum(f: (v: VmIo) => number): number {
    let s = 0;
    for (const v of this.vms.values()) s += f(v);
    return s;
  }
}

declare module "@hyperlab/core" {
  interface Slots {
    /** The host side of KVM-style I/O: VMs' device spaces and device models. */
    "kvm-io": KvmIo;
  }
}

/** KVM-style device I/O: MMIO exits to device models, a virtual IO-APIC, virtio-mmio. */
export function kvmIo(): Plugin {
  return {
    name: "kvm-io",
    description:
      "KVM-style I/O: MMIO exits to a host device model, injected interrupts, virtio-mmio",
    provides: ["io-bus", "kvm-io"],
    requires: [],
    setup(ctx) {
      const k = new KvmIo(ctx.hv);
      ctx.provide("io-bus", k);
      ctx.provide("kvm-io", k);
      ctx.onDomainDestroy((d) => k.domainDestroyed(d));
      const g = ctx.stats;
      g.gauge("mmio_exits", "exits", "guest accesses that exited to a device model", () =>
        k.sum((v) => v.counts.mmioExits),
      );
      g.gauge("mmio_unclaimed", "exits", "exits no device claimed (read all ones)", () =>
        k.sum((v) => v.counts.unclaimed),
      );
      g.gauge("irq_injections", "interrupts", "interrupts injected into guests", () =>
        k.sum((v) => v.injections),
      );
      g.gauge("eoi_exits", "exits", "level-triggered EOIs that exited (EOI_INDUCED)", () =>
        k.sum((v) => v.ioApic.eoiExits),
      );
      g.gauge("dma_bytes", "bytes", "bytes device models copied to and from guest memory", () =>
        k.sum((v) => v.memory.bytesRead + v.memory.bytesWritten),
      );
      g.gauge("dma_refused", "accesses", "device accesses refused outside the guest's memory", () =>
        k.sum((v) => v.memory.refused),
      );
    },
  };
}
