/* A KVM-style build for tests: nested paging, kvm-io, one VM with a native guest kernel. */
import { createHypervisor, type Domain, type Hypervisor } from "@hyperlab/core";
import {
  bootNativeKernel,
  type GuestKernel,
  ioremap,
  readl,
  writel,
  writew,
} from "@hyperlab/guest";
import {
  createMachine,
  DISK_CONTROL_ENABLE,
  DISK_INT_COMPLETE,
  DISK_INT_ERROR,
  DISK_REG_CONTROL,
  DISK_REG_DOORBELL,
  DISK_REG_INT_ACK,
  DISK_REG_INT_MASK,
  DISK_REG_INT_STATUS,
  DISK_REG_RING_BASE_HI,
  DISK_REG_RING_BASE_LO,
  DISK_REG_RING_SIZE,
  DISK_REG_TAIL,
  PCI_BASE_ADDRESS_0,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_INTERRUPT_LINE,
  type PciFunction,
} from "@hyperlab/machine";
import { nptMmu } from "@hyperlab/npt-mmu";
import { type KvmIo, kvmIo, type VmIo } from "../src/index";

export const MiB = 2 ** 20;

export interface Kvm {
  hv: Hypervisor;
  kvm: KvmIo;
  d: Domain;
  vm: VmIo;
}

/** A machine with nested paging and kvm-io, and one VM whose I/O state exists. */
export function kvmBuild(seed = 1, ramMiB = 64): Kvm {
  const machine = createMachine({ ramBytes: ramMiB * MiB, cpus: 1, seed });
  const hv = createHypervisor({ machine, plugins: [nptMmu(), kvmIo()] }).boot();
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 4096 });
  hv.unpauseDomain(d);
  const kvm = hv.slot("kvm-io");
  return { hv, kvm, d, vm: kvm.vm(d) };
}

export function bootGuest(b: Kvm, nrPages = 1024): GuestKernel {
  return bootNativeKernel(b.hv, b.d, { nrPages });
}

/**
 * A minimal guest driver for the machine's disk controller, as a Linux PCI driver probes it:
 * ECAM reads, BAR0 ioremap'd, bus mastering on, a descriptor ring in coherent memory, a level
 * GSI with a handler that acks the device and EOIs. Every register access is a readl/writel.
 */
export class TestDiskDriver {
  readonly regs: number;
  readonly ringPfn: number;
  readonly irq: number;
  tail = 0;
  interrupts = 0;
  constructor(
    readonly k: GuestKernel,
    readonly ecamVa: number,
    readonly fn: PciFunction,
    readonly ringSize = 8,
  ) {
    const cfg = ecamVa + (fn.bdf << 12);
    const bar =
      ((readl(k, cfg + PCI_BASE_ADDRESS_0) & ~0xf) >>> 0) +
      readl(k, cfg + PCI_BASE_ADDRESS_0 + 4) * 2 ** 32;
    this.regs = ioremap(k, bar, 4096);
    writew(k, cfg + PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    this.irq = readl(k, cfg + PCI_INTERRUPT_LINE) & 0xff;
    const dev = { name: "disk", dmaMaskBits: 32, coherentDmaMaskBits: 32 };
    const ring = k.ops.dma.allocCoherent(dev, 4096);
    if (ring === null) throw new Error("no coherent memory");
    this.ringPfn = ring.pfn;
    writel(k, this.regs + DISK_REG_RING_BASE_LO, ring.busAddr);
    writel(k, this.regs + DISK_REG_RING_BASE_HI, 0);
    writel(k, this.regs + DISK_REG_RING_SIZE, ringSize);
    writel(k, this.regs + DISK_REG_INT_MASK, DISK_INT_COMPLETE | DISK_INT_ERROR);
    writel(k, this.regs + DISK_REG_CONTROL, DISK_CONTROL_ENABLE);
    const irq = k.ops.apic.setupGsi(this.irq, "level", "low");
    if (irq !== this.irq) throw new Error(`setupGsi ${irq}`);
    k.ops.apic.bindIrq(irq, () => {
      this.interrupts++;
      const st = readl(k, this.regs + DISK_REG_INT_STATUS);
      writel(k, this.regs + DISK_REG_INT_ACK, st);
      k.ops.apic.eoi(irq);
    });
    k.ops.apic.unmask(irq);
  }

  /** Queues one descriptor (op, count, sector, bus address) and rings the doorbell; its status byte. */
  submit(op: number, count: number, sector: number, bus: number): number {
    const at = this.ringPfn * 4096 + this.tail * 32;
    const ram = this.k.ram;
    for (let i = 0; i < 32; i += 4) ram.write32(at + i, 0);
    ram.write8(at, op);
    ram.write32(at + 4, count);
    ram.write32(at + 8, sector);
    ram.write32(at + 16, bus % 2 ** 32);
    ram.write32(at + 20, Math.floor(bus / 2 ** 32));
    this.tail = (this.tail + 1) % this.ringSize;
    writel(this.k, this.regs + DISK_REG_TAIL, this.tail);
    writel(this.k, this.regs + DISK_REG_DOORBELL, 1);
    return ram.read8(at + 1);
  }
}
