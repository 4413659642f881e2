/*
 * The UpcallLoop reads each vCPU's upcall flags where the guest kernel points its vcpu_info:
 * after VCPUOP_register_vcpu_info (xen_vcpu_setup) that is the registered area, not the slot
 * in shared_info. Before, it read the mask from the shared_info slot, so a vCPU that had
 * masked upcalls in its registered vcpu_info still took them.
 */
import { vcpu_info_x86_64 } from "@hyperlab/abi";
import { createHypervisor, schedCredit } from "@hyperlab/core";
import { evtchn2l, vcpuTimers } from "@hyperlab/evtchn";
import { bootXenPvKernel, XEN_CALL_FUNCTION_VECTOR, xenCpuUp } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { describe, expect, it } from "vitest";
import { UpcallLoop } from "../src/index";

describe("UpcallLoop on a vCPU with a registered vcpu_info", () => {
  it("honours the mask and pending flag in the registered area", () => {
    const machine = createMachine({ ramBytes: 128 << 20, cpus: 2, seed: 1 });
    const hv = createHypervisor({
      machine,
      plugins: [pvMmu(), schedCredit(), evtchn2l(), vcpuTimers()],
    }).boot();
    const d = hv.createDomain({ domid: 1, maxVcpus: 2, maxPages: 4096 + 64 });
    const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 4096 });
    hv.unpauseDomain(d);
    const kernel = bootXenPvKernel(hv, d, { startInfoVa: b.rsi });
    expect(xenCpuUp(kernel, 1)).toBe(0);
    const ev = kernel.events!;
    const loop = new UpcallLoop(hv, { mode: "manual" });
    loop.register(d, ev);
    const registered = hv.vcpuAreas.vcpuInfoMaddr(d.vcpus[1]);
    const legacyMask =
      d.sharedInfoMfn * 4096 +
      vcpu_info_x86_64.sizeof +
      vcpu_info_x86_64.fields.evtchn_upcall_mask.offset;
    expect(Math.floor(registered / 4096)).not.toBe(d.sharedInfoMfn);
    // vCPU 1 runs with upcalls on; the registration's spurious upcall is taken.
    ev.enableUpcalls(0);
    ev.enableUpcalls(1);
    loop.runPendingUpcalls();
    expect(loop.pending).toBe(false);
    // Masked in its registered vcpu_info (the shared_info slot says unmasked): no delivery.
    ev.disableUpcalls(1);
    machine.ram.write8(legacyMask, 0);
    const upcalls = loop.upcalls;
    expect(ev.sendIpi(1, XEN_CALL_FUNCTION_VECTOR, 0)).toBe(0);
    expect(ev.upcallPending(1)).toBe(true);
    expect(loop.pending).toBe(false);
    expect(loop.runPendingUpcalls()).toBe(0);
    expect(loop.upcalls).toBe(upcalls);
    // Unmasked there: the loop enters vCPU 1's upcall and the IPI is handled.
    ev.enableUpcalls(1);
    expect(loop.pending).toBe(true);
    expect(loop.runPendingUpcalls()).toBe(1);
    expect(loop.upcalls).toBe(upcalls + 1);
  });
});
