/*
 * pv_ops: one table of hooks, grouped as Linux's paravirt_types.h groups them (mmu, cpu,
 * irq, time) plus the groups the dom0 hardware path fills (dma, after dma_map_ops; apic, the
 * interrupt-routing hooks), that native code fills with direct operations and Xen code with
 * hypercalls. The groups are open: a package adds one by declaration merging, as a hypervisor
 * plugin adds a slot to core's Slots, and ships its native default with it:
 *
 *   declare module "@hyperlab/guest" { interface PvOps { iommu: PvIommuOps } }
 *   defineGuestPlugin({ name: "iommu", defines: { iommu: (k) => nativeIommu(k) }, ... })
 *
 * Invariants: every group has a native default, so a kernel composed with no plugin runs on
 * bare metal (a group a package adds has the default its plugin `defines`); a plugin that
 * provides a group replaces the default (two plugins for one group need an explicit
 * `overrides`); composition is checked whole before any setup runs (plugins.ts); after boot
 * the table is frozen and the kernel calls through it, never around it, for anything that
 * writes a page table, loads CR3, flushes a TLB, masks interrupts, routes an interrupt or
 * hands a device a bus address.
 */
import type { DmaDevice, DmaDirection, DmaSgEntry } from "./dma-api";
import type { Mm } from "./mm";

/**
 * pv_ops.mmu, after Linux's struct pv_mmu_ops. Entries are plain numbers (frame * 4096 |
 * flags; the model never sets bits above 51), tables are named by pfn and slot index.
 */
export interface PvMmuOps {
  /** pfn -> the frame an entry names (Linux's pte_pfn_to_mfn inside make_pte): native identity, Xen the P2M. */
  pfnToFrame(pfn: number): number;
  /** The frame in an entry -> pfn (pte_val's mfn_to_pfn), or -1 if the frame is not this kernel's. */
  frameToPfn(frame: number): number;
  /**
   * make_pte for RAM: the entry naming `pfn` with `flags` (its frame through pfnToFrame). With
   * _PAGE_IOMAP in `flags` it is makeIoPte(pfn, flags), as Linux's xen_make_pte decides by the bit.
   */
  makePte(pfn: number, flags: number): number;
  /**
   * make_pte for device memory (ioremap, remap_pfn_range of a BAR): the entry keeps `frame`
   * untranslated. Native drops the software bit (no Xen: __supported_pte_mask lacks it); Xen
   * keeps _PAGE_IOMAP so pte_val does not translate the frame back either.
   */
  makeIoPte(frame: number, flags: number): number;

  setPte(mm: Mm, table: number, index: number, entry: number): void;
  setPmd(mm: Mm, table: number, index: number, entry: number): void;
  setPud(mm: Mm, table: number, index: number, entry: number): void;
  /** An L4 entry of `mm`'s pgd (4-level: the p4d is the pgd). */
  setP4d(mm: Mm, index: number, entry: number): void;
  /**
   * set_pte_at for the PTE that maps `va` in `mm` (Linux's historical set_pte_at hook, with
   * ptep_establish's flush when `flush`): on Xen PV, one update_va_mapping when `mm` is loaded.
   */
  setPteAt(mm: Mm, va: number, table: number, index: number, entry: number, flush: boolean): void;
  pteClear(mm: Mm, table: number, index: number): void;
  /** Starts a protection change of a present PTE: returns the entry as it is now. */
  ptepModifyProtStart(mm: Mm, table: number, index: number): number;
  /** Commits it, keeping whatever A/D bits the hardware set meanwhile. */
  ptepModifyProtCommit(mm: Mm, table: number, index: number, oldEntry: number, entry: number): void;

  /** The pfn of the pgd the vCPU runs on. */
  readCr3(vcpuIndex: number): number;
  /** Loads `mm`'s page tables on the vCPU (a full non-global TLB flush). */
  writeCr3(vcpuIndex: number, mm: Mm): void;

  flushTlbUser(vcpuIndex: number): void;
  flushTlbKernel(vcpuIndex: number): void;
  flushTlbOneUser(vcpuIndex: number, va: number): void;
  /** Flushes `mm`'s range [start, end) (or everything when end - start is too large) on other vCPUs. */
  flushTlbMulti(vcpus: readonly number[], mm: Mm, start: number, end: number): void;

  allocPte(mm: Mm, pfn: number): void;
  allocPmd(mm: Mm, pfn: number): void;
  allocPud(mm: Mm, pfn: number): void;
  releasePte(pfn: number): void;
  releasePmd(pfn: number): void;
  releasePud(pfn: number): void;
  /** Extra per-pgd setup (Xen: the user pgd). 0 or -errno. */
  pgdAlloc(mm: Mm): number;
  pgdFree(mm: Mm): void;

  /** arch_dup_mmap: the child of a fork is about to get its entries. */
  dupMmap(oldMm: Mm, mm: Mm): void;
  /** activate_mm: exec (or the first process) is about to run on `mm`. */
  activateMm(prev: Mm, next: Mm): void;
  /** arch_exit_mmap: `mm` is being torn down (it is not loaded on any vCPU). */
  exitMmap(mm: Mm): void;

  lazyMmuEnter(): void;
  lazyMmuLeave(): void;
  lazyMmuFlush(): void;
}

/** One gate of the kernel's IDT as load_idt hands it over: vector, DPL, handler address. */
export interface IdtGate {
  readonly vector: number;
  /** The ring allowed to raise it with INT n (3 for int3/into/int 0x80, else 0). */
  readonly dpl: number;
  readonly address: number;
}

/**
 * pv_ops.cpu: what the kernel asks of the processor that a hypervisor may answer instead
 * (Linux's pv_cpu_ops, plus the early console). Addresses are the model's 48-bit spelling.
 */
export interface PvCpuOps {
  /** CPUID: eax, ebx, ecx, edx of `leaf` into `out`. */
  cpuid(leaf: number, out: Uint32Array): void;
  /** load_idt at boot (native: LIDT of the table; Xen: set_trap_table). */
  loadIdt(vcpuIndex: number, gates: readonly IdtGate[]): void;
  /** load_sp0: the stack the CPU switches to on entry from user mode (native: TSS.sp0; Xen: stack_switch). */
  loadSp0(vcpuIndex: number, sp0: number): void;
  /** write_msr(MSR_FS_BASE) (Xen: set_segment_base SEGBASE_FS). */
  writeFsBase(vcpuIndex: number, base: number): void;
  /** write_msr(MSR_KERNEL_GS_BASE): the user GS base (Xen: set_segment_base SEGBASE_GS_USER). */
  writeGsBaseUser(vcpuIndex: number, base: number): void;
  /** read_cr0 / write_cr0; only CR0.TS changes after boot (Xen: fpu_taskswitch). */
  readCr0(vcpuIndex: number): number;
  writeCr0(vcpuIndex: number, cr0: number): void;
  /** arch_start_context_switch / arch_end_context_switch: lazy CPU mode (Xen batches into one multicall). */
  startContextSwitch(vcpuIndex: number): void;
  endContextSwitch(vcpuIndex: number): void;
  /** The early console printk writes to (native: the serial port; Xen: console_io). */
  consoleWrite(text: string): void;
  /** paravirt_alloc_ldt: the pages of a new LDT, filled (Xen: each made read-only). */
  allocLdt(pfns: readonly number[]): void;
  /** paravirt_free_ldt: an LDT's pages leave it (Xen: writable again). */
  freeLdt(pfns: readonly number[]): void;
  /** load_LDT on vCPU `vcpuIndex`: `entries` descriptors at `va`, 0 for none (native: LLDT; Xen: MMUEXT_SET_LDT). */
  setLdt(vcpuIndex: number, va: number, entries: number): void;
}

/** pv_ops.irq: the interrupt flag (native: EFLAGS.IF; Xen: vcpu_info.evtchn_upcall_mask). */
export interface PvIrqOps {
  /** 0x200 when interrupts are enabled, 0 when masked (X86_EFLAGS_IF). */
  saveFl(vcpuIndex: number): number;
  restoreFl(vcpuIndex: number, flags: number): void;
  irqDisable(vcpuIndex: number): void;
  irqEnable(vcpuIndex: number): void;
}

/** pv_ops.time: the clock the scheduler reads. */
export interface PvTimeOps {
  /** Nanoseconds since boot (native: the machine clock; Xen: vcpu_time_info.system_time). */
  schedClock(vcpuIndex: number): number;
  /** Nanoseconds this vCPU was runnable but not running (Xen: runstate; native: 0). */
  stealClock(vcpuIndex: number): number;
}

/**
 * pv_ops.dma, after Linux's struct dma_map_ops: how a driver turns kernel memory into bus
 * addresses a device may use. Bus addresses are plain numbers; DMA_MAPPING_ERROR is a failed
 * mapping (dma_mapping_error), never a throw. A bad direction is a driver bug and throws.
 */
export interface PvDmaOps {
  /** map_page: bus address of `size` bytes at `offset` in `pfn` for `dev`, or DMA_MAPPING_ERROR. */
  mapPage(dev: DmaDevice, pfn: number, offset: number, size: number, dir: DmaDirection): number;
  /** unmap_page: the device is done with a mapping mapPage made (copy back a bounce for FROM_DEVICE). */
  unmapPage(dev: DmaDevice, busAddr: number, size: number, dir: DmaDirection): void;
  /** map_sg: fills each entry's busAddr/busLength; the entries mapped (nents), or 0 when one failed (none stay mapped). */
  mapSg(dev: DmaDevice, sg: DmaSgEntry[], dir: DmaDirection): number;
  /** unmap_sg: undoes mapSg for the same entries. */
  unmapSg(dev: DmaDevice, sg: DmaSgEntry[], dir: DmaDirection): void;
  /** sync_single_for_cpu: the CPU is about to read what the device wrote. */
  syncSingleForCpu(dev: DmaDevice, busAddr: number, size: number, dir: DmaDirection): void;
  /** sync_single_for_device: the device is about to read what the CPU wrote. */
  syncSingleForDevice(dev: DmaDevice, busAddr: number, size: number, dir: DmaDirection): void;
  /** sync_sg_for_cpu, per entry. */
  syncSgForCpu(dev: DmaDevice, sg: DmaSgEntry[], dir: DmaDirection): void;
  /** sync_sg_for_device, per entry. */
  syncSgForDevice(dev: DmaDevice, sg: DmaSgEntry[], dir: DmaDirection): void;
  /** alloc (dma_alloc_coherent): zeroed, contiguous memory under the coherent mask, or null. */
  allocCoherent(dev: DmaDevice, size: number): { pfn: number; va: number; busAddr: number } | null;
  /** free (dma_free_coherent): gives back what allocCoherent returned. */
  freeCoherent(dev: DmaDevice, size: number, pfn: number, busAddr: number): void;
  /** dma_supported: whether a device that drives `maskBits` address bits can reach this kernel's memory. */
  dmaSupported(dev: DmaDevice, maskBits: number): boolean;
}

/** The PCI function an MSI belongs to (what Xen's PHYSDEVOP_map_pirq for MSI needs to name it). */
export interface MsiDevice {
  readonly seg?: number;
  readonly bus: number;
  readonly devfn: number;
  /** MSI-X table entry, or -1 for plain MSI (default). */
  readonly entryNr?: number;
}

/**
 * pv_ops.apic: interrupt routing, after Linux's struct apic, x86_io_apic_ops and the MSI and
 * EOI hooks. Irq numbers are Linux's: a GSI's irq is the GSI (natively and in Xen dom0), an
 * MSI gets a dynamic irq above them. Guest-side failures answer -errno.
 */
export interface PvApicOps {
  /** io_apic_read: a 32-bit register of IO-APIC `apic` (0 ID, 1 version, 0x10 + 2n / 0x11 + 2n redirection entry n). */
  ioApicRead(apic: number, reg: number): number;
  /** io_apic_write: writes one; a redirection entry takes effect at once (trigger, mask, vector). */
  ioApicWrite(apic: number, reg: number, value: number): void;
  /** acpi_register_gsi: routes `gsi` with its trigger and polarity, masked; its irq (== gsi), or -errno. */
  setupGsi(gsi: number, trigger: "edge" | "level", polarity: "high" | "low"): number;
  /**
   * setup_msi_irqs for one vector of the PCI function `dev`: a dynamic irq and the message the
   * driver writes into the device's MSI capability, or -errno.
   */
  setupMsi(dev: MsiDevice): { irq: number; address: number; data: number } | number;
  /** Routes `irq`'s deliveries to `handler` (native: its IDT vector), or with null stops them. 0 or -errno. */
  bindIrq(irq: number, handler: ((irq: number) => void) | null): number;
  /** irq_chip mask / unmask of `irq`'s line. 0 or -errno. */
  mask(irq: number): number;
  unmask(irq: number): number;
  /** The end of `irq`'s handling (apic->eoi_write, and the IO-APIC EOI of a level line). 0 or -errno. */
  eoi(irq: number): number;
}

/**
 * The pv_ops table. Open: a package adds a group by merging an entry into this interface
 * (with its plugin's `defines` giving the native default); see the file comment.
 */
export interface PvOps {
  mmu: PvMmuOps;
  cpu: PvCpuOps;
  irq: PvIrqOps;
  time: PvTimeOps;
  dma: PvDmaOps;
  apic: PvApicOps;
}
export type PvOpsGroup = keyof PvOps & string;
/** The groups this package defines (the table without groups other packages merge in). */
export type BuiltinPvOps = Pick<PvOps, "mmu" | "cpu" | "irq" | "time" | "dma" | "apic">;
/** The groups this package defines, each with a native default in native-ops.ts. */
export const PV_OPS_GROUPS: readonly (keyof BuiltinPvOps)[] = [
  "mmu",
  "cpu",
  "irq",
  "time",
  "dma",
  "apic",
];
