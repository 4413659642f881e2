/*
 * modify_ldt as Linux's write_ldt: a new LDT page, paravirt_alloc_ldt (Xen PV: read-only),
 * loaded on the CPUs running the mm (natively by IPI on the others), the old one freed; Xen
 * PV loads it with MMUEXT_SET_LDT (xen_set_ldt), which pv-mmu checks and records.
 */
import {
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_multicall,
  __HYPERVISOR_update_va_mapping,
  MMUEXT_SET_LDT,
} from "@hyperlab/abi";
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import type { PvMmu } from "@hyperlab/pv-mmu";
import { describe, expect, it } from "vitest";
import {
  bootNativeKernel,
  ldtEntries,
  type NativeCpu,
  PAGE_KERNEL,
  PAGE_KERNEL_RO,
  spawnProcess,
  threadTouch,
} from "../src/index";
import { xenBuild } from "./helpers";

describe("modify_ldt on Xen PV", () => {
  it("makes the LDT page read-only, loads it with MMUEXT_SET_LDT, and frees the old one on a change", () => {
    const { hv, kernel } = xenBuild(2048);
    const seen: { op: number; cmd?: number; val?: number }[] = [];
    const orig = hv.hypercall.bind(hv);
    (hv as { hypercall: typeof hv.hypercall }).hypercall = ((v, op, args) => {
      const record = (o: number, a: Record<string, unknown>) => {
        if (o === __HYPERVISOR_mmuext_op)
          for (const u of (a.uops as { cmd: number }[]) ?? []) seen.push({ op: o, cmd: u.cmd });
        else if (o === __HYPERVISOR_update_va_mapping) seen.push({ op: o, val: a.val as number });
      };
      if (op === __HYPERVISOR_multicall)
        for (const e of (args as { entries: { op: number; args: Record<string, unknown> }[] })
          .entries)
          record(e.op, e.args);
      else record(op, args as Record<string, unknown>);
      return orig(v, op, args);
    }) as typeof hv.hypercall;
    const pv = hv.slot("pv-mmu") as PvMmu;
    const v0 = hv.domain(1)!.vcpus[0];
    const p = spawnProcess(kernel);
    seen.length = 0;
    expect(p.modifyLdt(0, 0x0000ffff, 0x00cff200)).toBe(0);
    const uvm = seen.filter((s) => s.op === __HYPERVISOR_update_va_mapping);
    expect(uvm.map((s) => s.val! % 4096)).toEqual([PAGE_KERNEL_RO]);
    expect(seen).toContainEqual({ op: __HYPERVISOR_mmuext_op, cmd: MMUEXT_SET_LDT });
    const first = pv.ldtOf(v0);
    expect(first.ents).toBe(1);
    expect(first.base % 4096).toBe(0);
    expect(ldtEntries(p.mm!)).toBe(1);
    // A change builds a new LDT; the old page is made writable again.
    seen.length = 0;
    expect(p.modifyLdt(5, 0x0000ffff, 0x00cff200)).toBe(0);
    expect(pv.ldtOf(v0).ents).toBe(6);
    expect(pv.ldtOf(v0).base).not.toBe(first.base);
    const vals = seen
      .filter((s) => s.op === __HYPERVISOR_update_va_mapping)
      .map((s) => s.val! % 4096);
    expect(vals).toEqual([PAGE_KERNEL_RO, PAGE_KERNEL]);
    // Another process has no LDT: switching to it loads none, and back loads ours.
    const q = spawnProcess(kernel);
    q.store(q.mmap(4096, 3), 1);
    expect(pv.ldtOf(v0).ents).toBe(0);
    p.modifyLdt(5, 0x0000ffff, 0x00cff200);
    expect(pv.ldtOf(v0).ents).toBe(6);
    // Bad arguments.
    for (const [i, lo] of [
      [512, 0],
      [-1, 0],
      [1.5, 0],
      [0, -1],
      [0, 2 ** 32],
    ])
      expect(p.modifyLdt(i, lo, 0)).toBeLessThan(0);
    p.exit(0);
    expect(pv.ldtOf(v0).ents).toBe(0);
  });
});

describe("modify_ldt on a native 2-vCPU kernel", () => {
  it("loads the new LDT on the other vCPU running the mm by an IPI", () => {
    const machine = createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
    const d = hv.createDomain({ domid: 1, maxVcpus: 2, maxPages: 4096 + 16 });
    const kernel = bootNativeKernel(hv, d, { nrPages: 4096 });
    const cpu = kernel.ops.cpu as NativeCpu;
    const p = spawnProcess(kernel);
    const buf = p.mmap(4096, 3);
    p.store(buf, 1);
    expect(threadTouch(kernel, 1, p.mm!, buf, false)).toBeGreaterThan(0);
    const calls = kernel.smp.counts.calls;
    expect(p.modifyLdt(3, 0x0000ffff, 0x00cff200)).toBe(0);
    expect(kernel.smp.counts.calls).toBe(calls + 1);
    expect(cpu.ldtEntries[0]).toBe(4);
    expect(cpu.ldtEntries[1]).toBe(4);
    expect(cpu.ldtBase[1]).toBe(cpu.ldtBase[0]);
    expect(cpu.ldtBase[0]).toBeGreaterThan(0);
  });
});
