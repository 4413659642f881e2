/*
 * IPIs over event channels on an SMP Xen PV guest (Linux's arch/x86/xen/smp.c): bringing a
 * vCPU up binds its RESCHEDULE, CALL_FUNCTION, CALL_FUNCTION_SINGLE and IRQ_WORK IPIs with
 * EVTCHNOP_bind_ipi; smp_call_function sends with EVTCHNOP_send and the target takes it as
 * an upcall, which Xen flags in the vcpu_info the vCPU registered (VCPUOP_register_vcpu_info),
 * not in shared_info's legacy slot. A TLB shootdown needs no IPI: xen_flush_tlb_multi asks
 * Xen with MMUEXT_TLB_FLUSH_MULTI / INVLPG_MULTI and a vCPU mask.
 */
import {
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_mmuext_op,
  EVTCHNOP_bind_ipi,
  EVTCHNOP_send,
  MMUEXT_INVLPG_MULTI,
  MMUEXT_TLB_FLUSH_MULTI,
  vcpu_info_x86_64,
} from "@hyperlab/abi";
import { createHypervisor, PFEC_user_mode, schedCredit } from "@hyperlab/core";
import {
  bootXenPvKernel,
  PROT_READ,
  PROT_WRITE,
  spawnProcess,
  threadTouch,
  XEN_CALL_FUNCTION_SINGLE_VECTOR,
  xenCpuUp,
} from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { pvCpu } from "@hyperlab/pv-cpu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { describe, expect, it } from "vitest";
import { evtchn2l, evtchnFifo, vcpuTimers } from "../src/index";

const UPCALL_PENDING = vcpu_info_x86_64.fields.evtchn_upcall_pending.offset;

for (const abi of ["2-level", "fifo"] as const) {
  describe(`IPIs and shootdown on a 2-vCPU Xen PV guest (${abi})`, () => {
    function build() {
      const machine = createMachine({ ramBytes: 128 << 20, cpus: 2, seed: 1 });
      const hv = createHypervisor({
        machine,
        plugins: [
          pvMmu(),
          pvCpu(),
          schedCredit(),
          abi === "fifo" ? evtchnFifo() : evtchn2l(),
          vcpuTimers(),
        ],
      }).boot();
      const d = hv.createDomain({ domid: 1, maxVcpus: 2, maxPages: 4096 + 64 });
      const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 4096 });
      hv.unpauseDomain(d);
      const kernel = bootXenPvKernel(hv, d, { startInfoVa: b.rsi, evtchnAbi: abi });
      const seen: { op: number; cmd: number }[] = [];
      const orig = hv.hypercall.bind(hv);
      (hv as { hypercall: typeof hv.hypercall }).hypercall = ((v, op, args) => {
        const a = args as { cmd?: number; uops?: { cmd: number }[] };
        if (op === __HYPERVISOR_mmuext_op)
          for (const u of a.uops ?? []) seen.push({ op, cmd: u.cmd });
        else seen.push({ op, cmd: a.cmd ?? -1 });
        return orig(v, op, args);
      }) as typeof hv.hypercall;
      expect(xenCpuUp(kernel, 1)).toBe(0);
      return { hv, d, kernel, seen };
    }

    it("binds four IPIs per vCPU with EVTCHNOP_bind_ipi when vCPU 1 comes up", () => {
      const { seen, hv, d } = build();
      const binds = seen.filter(
        (s) => s.op === __HYPERVISOR_event_channel_op && s.cmd === EVTCHNOP_bind_ipi,
      );
      expect(binds).toHaveLength(8);
      expect(hv.slot("evtchn").activePorts(d)).toBeGreaterThanOrEqual(9);
    });

    it("smp_call_function_single reaches vCPU 1 by EVTCHNOP_send and its upcall, which Xen flags in the registered vcpu_info", () => {
      const { hv, d, kernel, seen } = build();
      const v1 = d.vcpus[1];
      const registered = hv.vcpuAreas.vcpuInfoMaddr(v1);
      const legacy = d.sharedInfoMfn * 4096 + vcpu_info_x86_64.sizeof;
      expect(Math.floor(registered / 4096)).not.toBe(d.sharedInfoMfn);
      expect(kernel.xenVcpuInfo(1)).toBe(registered);
      const ram = hv.machine.ram;
      // vCPU 1 takes the upcall registration left pending (Xen marks every selector bit so
      // nothing is lost), and is quiet.
      kernel.ops.irq.irqEnable(1);
      kernel.events!.xenEvtchnDoUpcall(1);
      expect(ram.read8(registered + UPCALL_PENDING)).toBe(0);
      // The IPI alone: Xen marks the upcall in the registered area only.
      expect(kernel.events!.sendIpi(1, XEN_CALL_FUNCTION_SINGLE_VECTOR, 0)).toBe(0);
      expect(ram.read8(registered + UPCALL_PENDING)).toBe(1);
      expect(ram.read8(legacy + UPCALL_PENDING)).toBe(0);
      expect(kernel.events!.upcallPending(1)).toBe(true);
      expect(kernel.events!.xenEvtchnDoUpcall(1)).toBe(1);
      expect(ram.read8(registered + UPCALL_PENDING)).toBe(0);
      // Now a real call.
      seen.length = 0;
      const ran: number[] = [];
      expect(kernel.smp.callFunctionSingle(0, 1, (cpu) => ran.push(cpu))).toBe(0);
      expect(ran).toEqual([1]);
      expect(seen).toEqual([{ op: __HYPERVISOR_event_channel_op, cmd: EVTCHNOP_send }]);
      expect(kernel.smp.counts).toMatchObject({
        evtchnSends: 1,
        upcalls: 1,
        calls: 1,
        icrWrites: 0,
      });
    });

    it("munmap and mprotect shoot vCPU 1's TLB down with MMUEXT_*_MULTI, no IPI", () => {
      const { hv, d, kernel, seen } = build();
      const p = spawnProcess(kernel);
      const buf = p.mmap(8 * 4096, PROT_READ | PROT_WRITE);
      for (let i = 0; i < 8; i++) p.store(buf + i * 4096, i + 1);
      const mm = p.mm!;
      for (let i = 0; i < 8; i++)
        expect(threadTouch(kernel, 1, mm, buf + i * 4096, true)).toBeGreaterThan(0);
      const v1 = d.vcpus[1];
      const mmu = hv.slot("mmu");
      seen.length = 0;
      const sent = kernel.smp.counts.sent;
      expect(p.munmap(buf, 4096)).toBe(0);
      expect(seen.filter((s) => s.op === __HYPERVISOR_mmuext_op).map((s) => s.cmd)).toContain(
        MMUEXT_INVLPG_MULTI,
      );
      v1.inKernel = false;
      expect(mmu.translate(v1, buf, PFEC_user_mode)).toBeLessThan(0);
      expect(mmu.translate(v1, buf + 4096, PFEC_user_mode)).toBeGreaterThanOrEqual(0);
      seen.length = 0;
      expect(p.mprotect(buf + 4096, 7 * 4096, PROT_READ)).toBe(0);
      expect(seen.filter((s) => s.op === __HYPERVISOR_mmuext_op).map((s) => s.cmd)).toContain(
        MMUEXT_TLB_FLUSH_MULTI,
      );
      v1.inKernel = false;
      expect(mmu.translate(v1, buf + 4096, PFEC_user_mode | 2)).toBeLessThan(0);
      expect(kernel.smp.counts.sent).toBe(sent);
    });
  });
}
