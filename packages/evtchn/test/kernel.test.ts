// Event channels inside the guest kernel: a Xen PV domU booted by @hyperlab/guest gets its
// events through kernel.events (Linux's drivers/xen/events), bound to irqs, with the upcall
// mask as its interrupt flag (pv_ops.irq).
import {
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_vcpu_op,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_send,
  VCPUOP_set_singleshot_timer,
  VIRQ_TIMER,
} from "@hyperlab/abi";
import { createHypervisor, schedCredit } from "@hyperlab/core";
import { bootXenPvKernel } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { describe, expect, it } from "vitest";
import { evtchn2l, evtchnFifo, vcpuTimers } from "../src/index";

const MS = 1_000_000;

for (const abi of ["2-level", "fifo"] as const) {
  describe(`the guest kernel's event channels (${abi} build)`, () => {
    function build() {
      const machine = createMachine({ ramBytes: 128 << 20, cpus: 1, seed: 1 });
      const ev = abi === "fifo" ? evtchnFifo() : evtchn2l();
      const hv = createHypervisor({
        machine,
        plugins: [pvMmu(), schedCredit(), ev, vcpuTimers()],
      }).boot();
      const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 64 });
      hv.unpauseDomain(dom0);
      const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 2048 + 16 });
      const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 2048 });
      hv.unpauseDomain(d);
      const kernel = bootXenPvKernel(hv, d, { startInfoVa: b.rsi, evtchnAbi: abi });
      return { hv, machine, dom0, d, kernel };
    }

    it("boots with the ABI it asked for, events masked until the kernel enables interrupts", () => {
      const { hv, d, kernel } = build();
      expect(kernel.events?.abi).toBe(abi);
      expect(hv.slot("evtchn").domainAbi(d)).toBe(abi);
      expect(kernel.ops.irq.saveFl(0)).toBe(0);
    });

    it("delivers the timer VIRQ and an interdomain event to their irq handlers", () => {
      const { hv, machine, dom0, d, kernel } = build();
      const events = kernel.events!;
      const seen: string[] = [];
      expect(events.bindVirqToIrqHandler(VIRQ_TIMER, 0, () => seen.push("timer"))).toBeGreaterThan(
        0,
      );
      const port = events.bindListeningPortToIrqHandler(dom0.domid, () => seen.push("dom0"));
      expect(port).toBeGreaterThan(0);
      kernel.ops.irq.irqEnable(0);
      const v = d.vcpus[0];
      expect(
        hv.hypercall(v, __HYPERVISOR_vcpu_op, {
          cmd: VCPUOP_set_singleshot_timer,
          vcpuid: 0,
          timeout_abs_ns: 2 * MS,
          flags: 0,
        }),
      ).toBe(0);
      machine.clock.runUntil(3 * MS);
      // dom0 binds its end to the domU's listening port and sends on it.
      const local = events.evtchnFromIrq(port);
      const bind = {
        cmd: EVTCHNOP_bind_interdomain,
        remote_dom: d.domid,
        remote_port: local,
        local_port: 0,
      };
      expect(hv.hypercall(dom0.vcpus[0], __HYPERVISOR_event_channel_op, bind)).toBe(0);
      const send = { cmd: EVTCHNOP_send, port: bind.local_port };
      expect(hv.hypercall(dom0.vcpus[0], __HYPERVISOR_event_channel_op, send)).toBe(0);
      expect(events.upcallPending(0)).toBe(true);
      expect(events.xenEvtchnDoUpcall(0)).toBe(2);
      expect(seen.sort()).toEqual(["dom0", "timer"]);
    });
  });
}
