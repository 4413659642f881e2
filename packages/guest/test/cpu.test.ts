import {
  __HYPERVISOR_callback_op,
  __HYPERVISOR_console_io,
  __HYPERVISOR_fpu_taskswitch,
  __HYPERVISOR_multicall,
  __HYPERVISOR_set_segment_base,
  __HYPERVISOR_set_trap_table,
  __HYPERVISOR_stack_switch,
  __HYPERVISOR_vcpu_op,
  __HYPERVISOR_xen_version,
  CALLBACKTYPE_event,
  CALLBACKTYPE_nmi,
  CALLBACKTYPE_syscall,
  FLAT_KERNEL_SS,
  XENFEAT_mmu_pt_update_preserve_ad,
} from "@hyperlab/abi";
import { createHypervisor, type Hypervisor, schedCredit } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { pvCpu, readConsoleLog } from "@hyperlab/pv-cpu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { describe, expect, it } from "vitest";
import {
  bootXenPvKernel,
  KERNEL_IDT,
  NativeCpu,
  spawnProcess,
  taskCpu,
  X86_CR0_TS,
  XEN_CALLBACKS,
  type XenCpuOps,
} from "../src/index";
import { nativeBuild, xenBuild } from "./helpers";

/** The PV CPU hypercalls a boot or a switch makes. */
const CPU_OPS = [
  __HYPERVISOR_set_trap_table,
  __HYPERVISOR_callback_op,
  __HYPERVISOR_console_io,
  __HYPERVISOR_xen_version,
  __HYPERVISOR_stack_switch,
  __HYPERVISOR_fpu_taskswitch,
  __HYPERVISOR_set_segment_base,
  __HYPERVISOR_vcpu_op,
  __HYPERVISOR_multicall,
] as const;

/** Runs a process for a moment (a system call: the kernel switches to it). */
function run(p: { mmap(length: number, prot: number): number }): void {
  expect(p.mmap(4096, 3)).toBeGreaterThan(0);
}

function counts(hv: Hypervisor): Record<number, number> {
  return Object.fromEntries(CPU_OPS.map((op) => [op, hv.hypercallCount(op)]));
}

function delta(a: Record<number, number>, b: Record<number, number>): Record<number, number> {
  return Object.fromEntries(CPU_OPS.map((op) => [op, b[op] - a[op]]));
}

/** A Xen with pv-cpu (and a scheduler, so the PV clock and runstate are written) and one PV domU. */
function xenPvCpuBuild(nrPages = 4096) {
  const machine = createMachine({ ramBytes: 128 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({
    machine,
    plugins: [schedCredit(), pvMmu(), pvCpu()],
  }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: nrPages + 16 });
  const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages });
  const before = counts(hv);
  const kernel = bootXenPvKernel(hv, d, { startInfoVa: b.rsi });
  hv.unpauseDomain(d);
  return { hv, machine, d, kernel, boot: delta(before, counts(hv)) };
}

describe("the guest's PV CPU setup under Xen", () => {
  it("boots through set_trap_table, callback_op and console_io, as xen_start_kernel does", () => {
    const { hv, d, kernel, boot } = xenPvCpuBuild();
    expect(boot).toEqual({
      [__HYPERVISOR_set_trap_table]: 1,
      [__HYPERVISOR_callback_op]: 4, // event, failsafe, syscall, nmi
      [__HYPERVISOR_console_io]: 1, // the banner
      [__HYPERVISOR_xen_version]: 2, // XENVER_version, XENVER_get_features
      [__HYPERVISOR_stack_switch]: 0,
      [__HYPERVISOR_fpu_taskswitch]: 1, // CR0.TS for lazy FPU
      [__HYPERVISOR_set_segment_base]: 0,
      [__HYPERVISOR_vcpu_op]: 1, // the runstate area
      [__HYPERVISOR_multicall]: boot[__HYPERVISOR_multicall],
    });
    const s = hv.slot("pv-cpu").state(d.vcpus[0]);
    // Every gate, except that the NMI callback took vector 2 (register_guest_nmi_callback).
    for (const g of KERNEL_IDT) {
      expect(s.trapAddress[g.vector]).toBe(g.vector === 2 ? XEN_CALLBACKS.nmi : g.address);
    }
    expect(s.trapFlags[3] & 3).toBe(3); // int3 open to user space
    expect(s.callbackAddress[CALLBACKTYPE_event]).toBe(XEN_CALLBACKS.event);
    expect(s.callbackAddress[CALLBACKTYPE_syscall]).toBe(XEN_CALLBACKS.syscall);
    expect(s.callbackMasksEvents[CALLBACKTYPE_syscall]).toBe(1);
    expect(s.callbackAddress[CALLBACKTYPE_nmi]).toBe(XEN_CALLBACKS.nmi);
    expect(s.cr0Ts).toBe(true);
    expect(readConsoleLog(hv)).toBe("(d1) Linux version 6.1.0-hyperlab (xen-pv)\n");
    const cpu = kernel.ops.cpu as XenCpuOps;
    expect(cpu.xenVersion).toBe(0x40011);
    expect(cpu.features & (1 << XENFEAT_mmu_pt_update_preserve_ad)).not.toBe(0);
  });

  it("switches tasks with one multicall (CR3, stack_switch, fpu_taskswitch) and set_segment_base only for a new FS base", () => {
    const { hv, d, kernel } = xenPvCpuBuild();
    const a = spawnProcess(kernel);
    const b = spawnProcess(kernel);
    a.setFsBase(0x7f00_0000_1000);
    b.setFsBase(0x7f00_0000_2000);
    a.useFpu();
    const s = hv.slot("pv-cpu").state(d.vcpus[0]);
    expect(s.cr0Ts).toBe(false);
    const before = counts(hv);
    b.useFpu(); // a -> b
    const one = delta(before, counts(hv));
    expect(one[__HYPERVISOR_multicall]).toBe(1);
    expect(one[__HYPERVISOR_stack_switch]).toBe(1);
    expect(one[__HYPERVISOR_set_segment_base]).toBe(1);
    // TS set inside the switch, cleared by b's FPU use (a hypercall of its own, outside).
    expect(one[__HYPERVISOR_fpu_taskswitch]).toBe(2);
    expect(s.kernelSs).toBe(FLAT_KERNEL_SS);
    expect(s.fsBase).toBe(0x7f00_0000_2000);
    expect(s.kernelSp).toBe(taskCpu(kernel.loadedMm[0]!).sp0);
    // Ten more switches: per switch one multicall, one stack_switch, one segment base, one TS set.
    const mid = counts(hv);
    for (let i = 0; i < 10; i++) run(i % 2 === 0 ? a : b);
    const ten = delta(mid, counts(hv));
    expect(ten[__HYPERVISOR_multicall]).toBe(10);
    expect(ten[__HYPERVISOR_stack_switch]).toBe(10);
    expect(ten[__HYPERVISOR_set_segment_base]).toBe(10);
    // TS set once, on the first switch after b used the FPU; no task used it since.
    expect(ten[__HYPERVISOR_fpu_taskswitch]).toBe(1);
    expect(kernel.lastXenError).toBe(null);
    expect(kernel.takeError()).toBe(0);
  });

  it("reads time from the PV clock Xen writes and steal time from the runstate area", () => {
    const { hv, machine, kernel } = xenPvCpuBuild();
    machine.clock.runUntil(machine.clock.now + 50_000_000);
    const t1 = kernel.ops.time.schedClock(0);
    expect(t1).toBeGreaterThan(0);
    machine.clock.runUntil(machine.clock.now + 10_000_000);
    const t2 = kernel.ops.time.schedClock(0);
    expect(t2).toBeGreaterThan(t1);
    // A second domain competing for the one pCPU makes dom1 wait runnable: steal time.
    const other = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
    hv.unpauseDomain(other);
    const steal0 = kernel.ops.time.stealClock(0);
    machine.clock.runUntil(machine.clock.now + 200_000_000);
    expect(kernel.ops.time.stealClock(0)).toBeGreaterThan(steal0);
    expect(hv.vcpuAreas.runstateAreaMaddr(kernel.port.vcpus[0])).toBe(
      (kernel.ops.cpu as XenCpuOps).runstateMa[0],
    );
  });

  it("makes no CPU hypercall on a Xen without pvCpu(), and boots as before", () => {
    const { hv, kernel } = xenBuild();
    const a = spawnProcess(kernel);
    const b = spawnProcess(kernel);
    run(a);
    run(b);
    expect((kernel.ops.cpu as XenCpuOps).available).toBe(false);
    // The probe got -ENOSYS (no handler), so nothing was dispatched.
    expect(hv.hypercallCount(__HYPERVISOR_xen_version)).toBe(0);
    for (const op of CPU_OPS) {
      if (op !== __HYPERVISOR_xen_version && op !== __HYPERVISOR_multicall) {
        expect(hv.hypercallCount(op)).toBe(0);
      }
    }
  });
});

describe("the guest's CPU setup on bare metal", () => {
  it("loads the IDT, stacks, FS bases and CR0 natively, with no hypercall", () => {
    const { hv, kernel } = nativeBuild();
    const cpu = kernel.ops.cpu as NativeCpu;
    expect(cpu).toBeInstanceOf(NativeCpu);
    expect(cpu.idt[0x80]).toBe(KERNEL_IDT.find((g) => g.vector === 0x80)!.address);
    expect(cpu.serial).toBe("Linux version 6.1.0-hyperlab (native)\n");
    const a = spawnProcess(kernel);
    const b = spawnProcess(kernel);
    a.setFsBase(0x1000);
    a.useFpu();
    expect(cpu.cr0[0] & X86_CR0_TS).toBe(0);
    run(b);
    expect(cpu.fsBase[0]).toBe(0);
    expect(cpu.sp0[0]).toBe(taskCpu(kernel.loadedMm[0]!).sp0);
    expect(cpu.cr0[0] & X86_CR0_TS).not.toBe(0);
    run(a);
    expect(cpu.fsBase[0]).toBe(0x1000);
    for (let op = 0; op < 64; op++) expect(hv.hypercallCount(op)).toBe(0);
  });
});

describe("a second vCPU (xen_pv_cpu_up)", () => {
  it("is brought up with register_vcpu_info, VCPUOP_initialise and VCPUOP_up, and TLB shootdowns reach it", async () => {
    const {
      __HYPERVISOR_mmuext_op,
      MMUEXT_INVLPG_MULTI,
      MMUEXT_TLB_FLUSH_MULTI,
      VCPUOP_initialise,
      VCPUOP_register_vcpu_info,
      VCPUOP_up,
      CALLBACKTYPE_failsafe,
    } = await import("@hyperlab/abi");
    const { xenCpuUp } = await import("../src/index");
    const machine = createMachine({ ramBytes: 128 << 20, cpus: 2, seed: 1 });
    const hv = createHypervisor({
      machine,
      plugins: [schedCredit(), pvMmu(), pvCpu()],
    }).boot();
    const d = hv.createDomain({ domid: 1, maxVcpus: 2, maxPages: 4096 + 16 });
    const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 4096 });
    const kernel = bootXenPvKernel(hv, d, { startInfoVa: b.rsi });
    hv.unpauseDomain(d);
    // Record what the kernel asks of Xen.
    const seen: { op: number; cmd: number }[] = [];
    const orig = hv.hypercall.bind(hv);
    (hv as { hypercall: typeof hv.hypercall }).hypercall = ((v, op, args) => {
      const a = args as {
        cmd?: number;
        uops?: { cmd: number }[];
        entries?: { op: number; args: { cmd?: number; uops?: { cmd: number }[] } }[];
      };
      const note = (o: number, x: typeof a) => {
        if (x.uops) for (const u of x.uops) seen.push({ op: o, cmd: u.cmd });
        else seen.push({ op: o, cmd: x.cmd ?? -1 });
      };
      if (a.entries) for (const e of a.entries) note(e.op, e.args);
      else note(op, a);
      return orig(v, op, args);
    }) as typeof hv.hypercall;
    const v1 = d.vcpus[1];
    expect(v1.state).toBe("offline");
    expect(xenCpuUp(kernel, 1)).toBe(0);
    expect(seen.filter((s) => s.op === __HYPERVISOR_vcpu_op).map((s) => s.cmd)).toEqual([
      VCPUOP_register_vcpu_info,
      VCPUOP_initialise,
      VCPUOP_up,
      5, // VCPUOP_register_runstate_memory_area
    ]);
    expect(v1.state).not.toBe("offline");
    expect(hv.vcpuAreas.isInitialised(v1)).toBe(true);
    // Its vcpu_info left shared_info for a page of the kernel.
    expect(Math.floor(hv.vcpuAreas.vcpuInfoMaddr(v1) / 4096)).not.toBe(d.sharedInfoMfn);
    // Xen took the IDT and callbacks from the context.
    const s1 = hv.slot("pv-cpu").state(v1);
    expect(s1.trapAddress[14]).toBe(KERNEL_IDT[14].address);
    expect(s1.callbackAddress[CALLBACKTYPE_failsafe]).toBe(XEN_CALLBACKS.failsafe);
    expect(xenCpuUp(kernel, 1)).toBeLessThan(0); // once
    expect(xenCpuUp(kernel, 2)).toBeLessThan(0);
    // Both vCPUs run the init mm: a kernel range flush reaches vCPU 1 by MMUEXT_*_MULTI.
    seen.length = 0;
    const va = 0x8880_0000_0000;
    kernel.flushRange(kernel.initMm, va, va + 4096);
    expect(seen).toContainEqual({ op: __HYPERVISOR_mmuext_op, cmd: MMUEXT_INVLPG_MULTI });
    seen.length = 0;
    kernel.flushRange(kernel.initMm, va, va + 4096 * 512);
    expect(seen).toContainEqual({ op: __HYPERVISOR_mmuext_op, cmd: MMUEXT_TLB_FLUSH_MULTI });
    expect(kernel.takeError()).toBe(0);
  });
});
