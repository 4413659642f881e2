/*
 * pv_ops: one table of hooks (mmu, cpu, irq, time) that native code fills with direct
 * operations and Xen code fills with hypercalls, composed with core's registry.
 *
 * Invariants: every group has a native default, so a kernel composed with no plugin runs on
 * bare metal; a plugin that provides a group replaces the default (two plugins for one group
 * need an explicit `overrides`); composition is checked whole before any setup runs; after
 * boot the table is frozen and the kernel calls through it, never around it, for anything
 * that writes a page table, loads CR3, flushes a TLB or masks interrupts.
 */
import { HyperlabError, resolvePlugins, SlotTable, type StatGroup } from "@hyperlab/core";
import type { GuestKernel } from "./kernel";
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

/** pv_ops.cpu: what the kernel asks of the processor that a hypervisor may answer instead. */
export interface PvCpuOps {
  /** CPUID: eax, ebx, ecx, edx of `leaf` into `out`. */
  cpuid(leaf: number, out: Uint32Array): void;
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

export interface PvOps {
  mmu: PvMmuOps;
  cpu: PvCpuOps;
  irq: PvIrqOps;
  time: PvTimeOps;
}
export type PvOpsGroup = keyof PvOps & string;
export const PV_OPS_GROUPS: readonly PvOpsGroup[] = ["mmu", "cpu", "irq", "time"];

export interface GuestSetupContext {
  /** The kernel being booted (its memory, its hypervisor, its boot information). */
  readonly kernel: GuestKernel;
  /** Fills a group this plugin names in `provides`. */
  provide<K extends PvOpsGroup>(group: K, impl: PvOps[K]): void;
  /** A group's implementation so far (a default, or a plugin's that set up earlier). */
  group<K extends PvOpsGroup>(group: K): PvOps[K];
  /** This plugin's stat group, in the kernel's stats. */
  readonly stats: StatGroup;
}

/** A pv_ops backend, as data: `{ name, provides, setup(ctx) }`. */
export interface GuestPlugin {
  readonly name: string;
  readonly description?: string;
  readonly provides?: readonly PvOpsGroup[];
  readonly requires?: readonly PvOpsGroup[];
  readonly overrides?: readonly PvOpsGroup[];
  setup(ctx: GuestSetupContext): void;
}

/** Identity helper that types a guest plugin literal. */
export function defineGuestPlugin(plugin: GuestPlugin): GuestPlugin {
  return plugin;
}

/**
 * Composes the pv_ops table: native defaults, then each plugin's setup in dependency order.
 * Throws HyperlabError on a bad composition (see core's resolvePlugins).
 */
export function composePvOps(
  kernel: GuestKernel,
  defaults: PvOps,
  plugins: readonly GuestPlugin[],
): PvOps {
  const { order, providers } = resolvePlugins<PvOpsGroup, GuestPlugin>(plugins, {
    defaults: PV_OPS_GROUPS,
    what: "guest kernel",
  });
  const table = new SlotTable<PvOps>("guest kernel's pv_ops", defaults);
  for (const p of order) {
    if (typeof p.setup !== "function") {
      throw new HyperlabError(
        "PLUGIN_INVALID",
        `Guest plugin "${p.name}" has no setup function. A guest plugin is { name, provides, setup(ctx) }.`,
      );
    }
    const declared = p.provides ?? [];
    p.setup({
      kernel,
      provide: (group, impl) => {
        if (!declared.includes(group)) {
          throw new HyperlabError(
            "SLOT_UNDECLARED_PROVIDE",
            `Guest plugin "${p.name}" fills pv_ops.${group} without naming it in provides. Add "${group}" to its provides.`,
          );
        }
        table.set(group, impl);
      },
      group: (group) => table.get(group),
      stats: kernel.stats.group(p.name),
    });
  }
  table.freeze();
  kernel.composition = {
    plugins: order.map((p) => p.name),
    pvOps: Object.fromEntries(
      PV_OPS_GROUPS.map((g) => [g, providers.get(g)?.name ?? "native"]),
    ) as Record<PvOpsGroup, string>,
  };
  return table.view();
}
