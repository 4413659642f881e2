/*
 * The guest kernel: a Linux-like kernel on pv_ops, in layers along Linux's seams, each in its
 * own file with the invariant it keeps:
 *   pages.ts     physical pages and page-table entries (mm/page_alloc.c, pgtable accessors)
 *   memory.ts    address spaces, tables, zap/copy/protect/split (mm/memory.c, mm/mprotect.c)
 *   fault.ts     the page-fault handler (arch/x86/mm/fault.c, handle_mm_fault)
 *   fork.ts      tasks: fork, exec, exit (kernel/fork.c, fs/exec.c, kernel/exit.c)
 *   syscalls.ts  mmap, munmap, mprotect (mm/mmap.c, mm/mprotect.c)
 * This file closes the stack: the boot-time knobs, event channels, and what the kernel says
 * about itself.
 *
 * Invariants: the kernel holds only its GuestPort (port.ts), never the hypervisor: it reaches
 * Xen through hypercalls and shared memory alone. Nothing a user program does throws: bad
 * addresses are SIGSEGV, bad arguments -errno, hypercall failures the Xen errno of the
 * failing call. A user's mistake throws a HyperlabError<GuestErrorCode>.
 */
import type { Stats } from "@hyperlab/core";
import { guestError } from "./errors";
import type { XenEvtchnGuest } from "./events";
import { SmpCalls } from "./ipi";
import { type TransparentHugepage, X86_FEATURE_PSE } from "./layout";
import type { Platform } from "./pages";
import { KernelSyscalls } from "./syscalls";

export type { KernelCounts, Platform, XenBootInfo } from "./pages";

export class GuestKernel extends KernelSyscalls {
  /**
   * Event channels on Xen PV (Linux's drivers/xen/events): the evtchn-to-irq table, binding,
   * IPIs and the upcall handler; null on bare metal, nested and shadow paging.
   */
  events: XenEvtchnGuest | null = null;

  /**
   * Xen PV: per cpu, the machine address of the vcpu_info the kernel registered for it with
   * VCPUOP_register_vcpu_info (Linux's per_cpu(xen_vcpu)), or -1 while it uses its slot in
   * shared_info. Read it through xenVcpuInfo.
   */
  readonly registeredVcpuInfo: number[] = [];

  private smpCalls: SmpCalls | null = null;

  /** Cross-CPU calls and IPIs (kernel/smp.c): event channels on Xen PV, the x2APIC natively. */
  get smp(): SmpCalls {
    if (this.smpCalls === null) this.smpCalls = new SmpCalls(this);
    return this.smpCalls;
  }

  /** Machine address of cpu `vi`'s vcpu_info as Linux's per_cpu(xen_vcpu) points: registered, else shared_info's slot (-1: none). */
  xenVcpuInfo(vi: number): number {
    const r = this.registeredVcpuInfo[vi];
    return r !== undefined && r >= 0 ? r : this.port.vcpuInfoMaddr(vi);
  }

  /** Which plugin fills each pv_ops group ("native" for a default), in setup order. */
  composition: { plugins: string[]; pvOps: Record<string, string> } = { plugins: [], pvOps: {} };

  /**
   * Sets the transparent_hugepage mode (boot option, or later as the sysfs knob): "always"
   * gives 2 MiB pages where the CPU has PSE (CPUID leaf 1 through pv_ops.cpu; a Xen PV
   * guest has none, so it keeps 4 KiB pages). Throws HyperlabError on an unknown mode.
   */
  setTransparentHugepage(mode: TransparentHugepage): void {
    if (mode !== "always" && mode !== "never") {
      throw guestError(
        "GUEST_BAD_THP",
        `transparentHugepage must be "always" or "never", got ${JSON.stringify(mode)}.`,
      );
    }
    this.transparentHugepage = mode;
    this.hugePages = false;
    if (mode === "never") return;
    const out = new Uint32Array(4);
    this.ops.cpu.cpuid(1, out);
    this.hugePages = (out[3] & (1 << X86_FEATURE_PSE)) !== 0;
  }

  /** What this kernel is made of: platform, pv_ops providers, plugins and stats. */
  describe(): {
    platform: Platform["kind"];
    pvOps: Record<string, string>;
    plugins: string[];
    stats: ReturnType<Stats["snapshot"]>;
  } {
    return {
      platform: this.platform.kind,
      pvOps: { ...this.composition.pvOps },
      plugins: [...this.composition.plugins],
      stats: this.stats.snapshot(),
    };
  }

  /** Checks that the kernel has booted with a pv_ops table (a bug otherwise). */
  requireOps(): void {
    if (this.ops === undefined) {
      throw guestError(
        "GUEST_NOT_BOOTED",
        "This guest kernel has not booted. Create kernels with bootNativeKernel or bootXenPvKernel.",
      );
    }
  }
}
