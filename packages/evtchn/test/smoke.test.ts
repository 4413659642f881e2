import { __HYPERVISOR_event_channel_op, EVTCHNOP_send } from "@hyperlab/abi";
import { expect, test } from "vitest";
import { type Abi, boot, guestDomain } from "./helpers";

for (const abi of ["2-level", "fifo"] as Abi[]) {
  test(`interdomain ping ${abi}`, () => {
    const { hv } = boot(abi);
    const a = guestDomain(hv, abi, { domid: 0 });
    const b = guestDomain(hv, abi);
    const got: number[] = [];
    const irqB = b.g.bindListeningPortToIrqHandler(0, (irq) => got.push(irq));
    expect(irqB).toBeGreaterThan(0);
    const portB = b.g.evtchnFromIrq(irqB);
    const seenA: number[] = [];
    const irqA = a.g.bindInterdomainEvtchnToIrqHandler(b.d.domid, portB, (irq) => seenA.push(irq));
    expect(irqA).toBeGreaterThan(0);
    // bind_interdomain raises one event locally
    expect(a.g.xenEvtchnDoUpcall(0)).toBe(1);
    for (let i = 0; i < 3; i++) {
      expect(
        hv.hypercall(a.d.vcpus[0], __HYPERVISOR_event_channel_op, {
          cmd: EVTCHNOP_send,
          port: a.g.evtchnFromIrq(irqA),
        }),
      ).toBe(0);
      expect(b.g.upcallPending(0)).toBe(true);
      expect(b.g.xenEvtchnDoUpcall(0)).toBe(1);
    }
    expect(got).toEqual([irqB, irqB, irqB]);
  });
}
