/*
 * Cross-CPU calls and TLB shootdown on a native 2-vCPU kernel: the IPI is an x2APIC ICR write,
 * the target takes the vector, runs the call and writes EOI (kernel/smp.c, x2apic). A munmap
 * of memory both vCPUs touched flushes the other vCPU's TLB by such a call
 * (native_flush_tlb_multi). The Xen PV side (event channel IPIs, MMUEXT_*_MULTI) is tested
 * in @hyperlab/evtchn, whose event channels a Xen kernel needs.
 */
import { createHypervisor, isHyperlabError, PFEC_user_mode } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { describe, expect, it } from "vitest";
import { bootNativeKernel, PROT_READ, PROT_WRITE, spawnProcess, threadTouch } from "../src/index";

function smp2() {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 2, maxPages: 4096 + 16 });
  const kernel = bootNativeKernel(hv, d, { nrPages: 4096 });
  return { hv, d, kernel };
}

describe("native IPIs and cross-CPU calls", () => {
  it("smp_call_function_single runs the function once on the target: one ICR write, one interrupt, one EOI", () => {
    const { kernel } = smp2();
    const ran: number[] = [];
    expect(kernel.smp.callFunctionSingle(0, 1, (cpu) => ran.push(cpu))).toBe(0);
    expect(ran).toEqual([1]);
    expect(kernel.smp.counts).toMatchObject({
      sent: 1,
      received: 1,
      icrWrites: 1,
      eoiWrites: 1,
      calls: 1,
      evtchnSends: 0,
    });
    // On its own CPU the call runs directly, with no IPI.
    expect(kernel.smp.callFunctionSingle(1, 1, (cpu) => ran.push(cpu))).toBe(0);
    expect(ran).toEqual([1, 1]);
    expect(kernel.smp.counts.sent).toBe(1);
    // The caller is never in the set it calls.
    expect(kernel.smp.callFunctionMany(0, [0, 1], (cpu) => ran.push(cpu))).toBe(0);
    expect(ran).toEqual([1, 1, 1]);
    expect(kernel.smp.sendReschedule(0, 1)).toBe(0);
    expect(kernel.smp.sendReschedule(0, 0)).toBeLessThan(0);
    expect(kernel.smp.counts.reschedules).toBe(1);
  });

  it("a bad cpu number is a typed error", () => {
    const { kernel } = smp2();
    for (const cpu of [2, -1, 0.5, Number.NaN]) {
      let err: unknown;
      try {
        kernel.smp.callFunctionSingle(0, cpu, () => {});
      } catch (e) {
        err = e;
      }
      expect(isHyperlabError(err, ["GUEST_BAD_CPU"])).toBe(true);
    }
  });

  it("munmap of memory both vCPUs touched shoots the other vCPU's TLB down by IPI", () => {
    const { hv, d, kernel } = smp2();
    const p = spawnProcess(kernel);
    const buf = p.mmap(8 * 4096, PROT_READ | PROT_WRITE);
    for (let i = 0; i < 8; i++) p.store(buf + i * 4096, i + 1);
    const mm = p.mm!;
    for (let i = 0; i < 8; i++)
      expect(threadTouch(kernel, 1, mm, buf + i * 4096, false)).toBeGreaterThan(0);
    const v1 = d.vcpus[1];
    const mmu = hv.slot("mmu");
    v1.inKernel = false;
    expect(mmu.translate(v1, buf + 4096, PFEC_user_mode)).toBeGreaterThanOrEqual(0);
    const before = { ...kernel.smp.counts };
    expect(p.munmap(buf, 4096 * 2)).toBe(0);
    // One call on vCPU 1 for the range, by one IPI.
    expect(kernel.smp.counts.icrWrites - before.icrWrites).toBe(1);
    expect(kernel.smp.counts.eoiWrites - before.eoiWrites).toBe(1);
    expect(kernel.smp.counts.calls - before.calls).toBe(1);
    // vCPU 1 no longer reaches the unmapped pages; the rest stay mapped for it.
    expect(mmu.translate(v1, buf + 4096, PFEC_user_mode)).toBeLessThan(0);
    expect(mmu.translate(v1, buf + 4 * 4096, PFEC_user_mode)).toBeGreaterThanOrEqual(0);
    // mprotect to read-only: vCPU 1 loses write access by another shootdown.
    expect(threadTouch(kernel, 1, mm, buf + 5 * 4096, true)).toBeGreaterThan(0);
    expect(p.mprotect(buf + 4 * 4096, 4 * 4096, PROT_READ)).toBe(0);
    expect(kernel.smp.counts.calls - before.calls).toBe(2);
    v1.inKernel = false;
    expect(mmu.translate(v1, buf + 5 * 4096, PFEC_user_mode | 2)).toBeLessThan(0);
    expect(mmu.translate(v1, buf + 5 * 4096, PFEC_user_mode)).toBeGreaterThanOrEqual(0);
  });
});
