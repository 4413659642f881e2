/*
 * The pv-cpu plugin: registers the PV CPU hypercalls (set_trap_table, set_callbacks,
 * callback_op, iret, stack_switch, set_segment_base, fpu_taskswitch, update_descriptor,
 * set_gdt) and xen_version / console_io, and fills the "pv-cpu" slot with its service.
 */
import {
  __HYPERVISOR_callback_op,
  __HYPERVISOR_console_io,
  __HYPERVISOR_fpu_taskswitch,
  __HYPERVISOR_iret,
  __HYPERVISOR_set_callbacks,
  __HYPERVISOR_set_gdt,
  __HYPERVISOR_set_segment_base,
  __HYPERVISOR_set_trap_table,
  __HYPERVISOR_stack_switch,
  __HYPERVISOR_update_descriptor,
  __HYPERVISOR_xen_version,
} from "@hyperlab/abi";
import { definePlugin, type Hypervisor, type Plugin } from "@hyperlab/core";
import { pvCpuError } from "./errors";
import { type PvCpuOptions, PvCpuService } from "./service";

declare module "@hyperlab/core" {
  interface Slots {
    /** Xen PV vCPU state and the hypercalls that set it; the host console. */
    "pv-cpu": PvCpuService;
  }
}

const HYPERCALLS = [
  __HYPERVISOR_set_trap_table,
  __HYPERVISOR_set_gdt,
  __HYPERVISOR_stack_switch,
  __HYPERVISOR_set_callbacks,
  __HYPERVISOR_fpu_taskswitch,
  __HYPERVISOR_update_descriptor,
  __HYPERVISOR_xen_version,
  __HYPERVISOR_console_io,
  __HYPERVISOR_iret,
  __HYPERVISOR_set_segment_base,
  __HYPERVISOR_callback_op,
] as const;

/** Xen PV vCPU state (trap table, callbacks, iret, segments, lazy FPU, GDT), xen_version and console_io. */
export function pvCpu(options: PvCpuOptions = {}): Plugin {
  const ring = options.consoleRingSize ?? 16384;
  if (!Number.isInteger(ring) || ring < 1 || ring > 1 << 24) {
    throw pvCpuError(
      "PV_CPU_BAD_OPTION",
      `consoleRingSize must be a whole number of characters from 1 to 16777216, got ${ring}.`,
    );
  }
  if (options.commandLine !== undefined && typeof options.commandLine !== "string") {
    throw pvCpuError(
      "PV_CPU_BAD_OPTION",
      "commandLine must be a string (Xen's boot command line).",
    );
  }
  return definePlugin({
    name: "pv-cpu",
    description:
      "Xen PV vCPU state: traps, callbacks, iret, segments, lazy FPU, GDT; xen_version, console_io",
    provides: ["pv-cpu"],
    requires: ["mmu"],
    hypercalls: HYPERCALLS.map((op) => ({ op })),
    setup(ctx) {
      const svc = new PvCpuService(ctx.hv, options);
      ctx.provide("pv-cpu", svc);
      const c = svc.counts;
      const s = ctx.stats;
      s.gauge("irets", "calls", "iret hypercalls that returned", () => c.irets);
      s.gauge("stack_switches", "calls", "stack_switch hypercalls", () => c.stackSwitches);
      s.gauge(
        "segment_base_loads",
        "calls",
        "set_segment_base hypercalls",
        () => c.segmentBaseLoads,
      );
      s.gauge("fpu_taskswitches", "calls", "fpu_taskswitch hypercalls", () => c.fpuTaskswitches);
      s.gauge("trap_table_loads", "calls", "set_trap_table hypercalls", () => c.trapTableLoads);
      s.gauge("gdt_loads", "calls", "set_gdt hypercalls that installed a GDT", () => c.gdtLoads);
      s.gauge("descriptor_updates", "calls", "descriptors written", () => c.descriptorUpdates);
      s.gauge("console_writes", "calls", "CONSOLEIO_write hypercalls", () => c.consoleWrites);
      ctx.hypercall(__HYPERVISOR_set_trap_table, (v, a) => svc.setTrapTable(v, a));
      ctx.hypercall(__HYPERVISOR_set_gdt, (v, a) => svc.setGdt(v, a));
      ctx.hypercall(__HYPERVISOR_stack_switch, (v, a) => svc.stackSwitch(v, a));
      ctx.hypercall(__HYPERVISOR_set_callbacks, (v, a) => svc.setCallbacks(v, a));
      ctx.hypercall(__HYPERVISOR_fpu_taskswitch, (v, a) => svc.fpuTaskswitch(v, a));
      ctx.hypercall(__HYPERVISOR_update_descriptor, (v, a) => svc.updateDescriptor(v, a));
      ctx.hypercall(__HYPERVISOR_xen_version, (v, a) => svc.xenVersion(v, a));
      ctx.hypercall(__HYPERVISOR_console_io, (v, a) => svc.consoleIo(v, a));
      ctx.hypercall(__HYPERVISOR_iret, (v, a) => svc.iret(v, a));
      ctx.hypercall(__HYPERVISOR_set_segment_base, (v, a) => svc.setSegmentBase(v, a));
      ctx.hypercall(__HYPERVISOR_callback_op, (v, a) => svc.callbackOp(v, a));
      ctx.onDomainDestroy((d) => svc.domainDestroyed(d));
    },
  });
}

/**
 * Xen's console log (what `xl dmesg` prints) of a hypervisor built with pvCpu(): the console
 * ring from its consumer mark on. With `{ clear: true }` (xl dmesg -c, XEN_SYSCTL_readconsole
 * with clear) the mark moves past what was read, so the next read shows only newer text.
 */
export function readConsoleLog(hv: Hypervisor, options: { clear?: boolean } = {}): string {
  const clear = options?.clear ?? false;
  if (typeof clear !== "boolean") {
    throw pvCpuError(
      "PV_CPU_BAD_OPTION",
      `readConsoleLog's clear must be true or false, got ${JSON.stringify(clear)}.`,
    );
  }
  if (!hv.hasSlot("pv-cpu")) {
    throw pvCpuError(
      "PV_CPU_NOT_IN_BUILD",
      "This hypervisor has no pv-cpu plugin, so no console log. Add pvCpu() to its plugins.",
    );
  }
  return hv.slot("pv-cpu").console.read(clear);
}
