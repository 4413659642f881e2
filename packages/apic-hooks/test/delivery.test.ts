import {
  MAP_PIRQ_TYPE_GSI,
  PHYSDEVOP_apic_write,
  PHYSDEVOP_eoi,
  PHYSDEVOP_map_pirq,
} from "@hyperlab/abi";
import type { Domain, Hypervisor } from "@hyperlab/core";
import { IO_APIC_DEFAULT_BASE } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { FORCED_EOI_NS } from "../src/index";
import { bindPirq, boot, checkIrqRouting, dom0RegisterGsi, physdev } from "./helpers";

/** dom0 owns GSI `gsi`, maps it for domU `u` too, and both bind it with WILL_SHARE. */
function shared(level: boolean, gsi = 19) {
  const b = boot(1);
  const { hv, dom0, us } = b;
  dom0RegisterGsi(hv, dom0, gsi, level);
  const m = physdev(hv, dom0, PHYSDEVOP_map_pirq, {
    domid: 1,
    type: MAP_PIRQ_TYPE_GSI,
    index: gsi,
    pirq: -1,
  });
  expect(m.rc).toBe(0);
  const uPirq = m.a.pirq as number;
  const p0 = bindPirq(hv, dom0, gsi, true);
  const p1 = bindPirq(hv, us[0], uPirq, true);
  expect(p0.rc).toBe(0);
  expect(p1.rc).toBe(0);
  return { ...b, gsi, uPirq, port0: p0.port, port1: p1.port, u: us[0] };
}

function clear(hv: Hypervisor, d: Domain, port: number) {
  // The guest clears the pending bit as its upcall would (EVTCHNOP_unmask does not; a send
  // on a PIRQ port is refused), through the 2-level bitmap in shared_info.
  const ev = hv.slot("evtchn");
  if (!ev.isPending(d, port)) return;
  const words = hv.machine.ram.frameWords(d.sharedInfoMfn, true);
  const base = hv.machine.ram.frameWordBase(d.sharedInfoMfn);
  // shared_info.evtchn_pending starts at byte 2048 on x86_64 (64 vcpu_info of 64 bytes... as
  // Xen lays it out); find the word by the port number.
  const PENDING_WORD0 = 2048 / 4;
  words[base + PENDING_WORD0 + (port >>> 5)] &= ~(1 << (port & 31));
  expect(ev.isPending(d, port)).toBe(false);
}

const eoi = (hv: Hypervisor, d: Domain, pirq: number) =>
  physdev(hv, d, PHYSDEVOP_eoi, { irq: pirq }).rc;

describe("level-triggered delivery with sharing", () => {
  it("both sharers get the event; the line is held until every sharer EOIs", () => {
    const { hv, machine, irq, dom0, u, gsi, uPirq, port0, port1, evtchn } = shared(true);
    machine.irqs.raise(gsi);
    expect(evtchn.isPending(dom0, port0)).toBe(true);
    expect(evtchn.isPending(u, port1)).toBe(true);
    expect(irq.inFlightOf(gsi)).toBe(2);
    expect(irq.pirqStatus(dom0, gsi).inFlight).toBe(true);
    expect(machine.irqs.inService(gsi)).toBe(true);
    expect(checkIrqRouting(irq, [dom0, u])).toEqual([]);
    // The device drops the line; dom0 EOIs: still held for the domU.
    machine.irqs.lower(gsi);
    expect(eoi(hv, dom0, gsi)).toBe(0);
    expect(eoi(hv, dom0, gsi)).toBe(0); // a second EOI changes nothing
    expect(irq.inFlightOf(gsi)).toBe(1);
    expect(machine.irqs.inService(gsi)).toBe(true);
    expect(eoi(hv, u, uPirq)).toBe(0);
    expect(irq.inFlightOf(gsi)).toBe(0);
    expect(machine.irqs.inService(gsi)).toBe(false);
    expect(irq.counters.delivered).toBe(1);
    expect(irq.counters.forcedEois).toBe(0);
  });

  it("a line still asserted after the last EOI fires again", () => {
    const { hv, machine, irq, dom0, u, gsi, uPirq, port0, port1, evtchn } = shared(true);
    machine.irqs.raise(gsi);
    clear(hv, dom0, port0);
    clear(hv, u, port1);
    expect(eoi(hv, dom0, gsi)).toBe(0);
    expect(irq.counters.delivered).toBe(1);
    expect(eoi(hv, u, uPirq)).toBe(0);
    expect(irq.counters.delivered).toBe(2);
    expect(evtchn.isPending(dom0, port0)).toBe(true);
    expect(evtchn.isPending(u, port1)).toBe(true);
    expect(irq.inFlightOf(gsi)).toBe(2);
  });

  it("Xen forces the EOI after 1 ms of model time when a sharer never EOIs", () => {
    const { hv, machine, irq, dom0, u, gsi } = shared(true);
    machine.irqs.raise(gsi);
    machine.irqs.lower(gsi);
    expect(eoi(hv, dom0, gsi)).toBe(0);
    const t0 = machine.clock.now;
    machine.clock.runUntil(t0 + FORCED_EOI_NS - 1);
    expect(irq.inFlightOf(gsi)).toBe(1);
    expect(machine.irqs.inService(gsi)).toBe(true);
    machine.clock.runUntil(t0 + FORCED_EOI_NS);
    expect(irq.counters.forcedEois).toBe(1);
    expect(irq.inFlightOf(gsi)).toBe(0);
    expect(irq.pirqStatus(u, irq.irqToPirq(u, gsi)).inFlight).toBe(false);
    expect(machine.irqs.inService(gsi)).toBe(false);
    expect(irq.counters.delivered).toBe(1);
  });

  it("an EOI by every sharer cancels the timer; a late EOI after a forced one is harmless", () => {
    const { hv, machine, irq, dom0, u, gsi, uPirq } = shared(true);
    machine.irqs.raise(gsi);
    machine.irqs.lower(gsi);
    expect(eoi(hv, dom0, gsi)).toBe(0);
    expect(eoi(hv, u, uPirq)).toBe(0);
    machine.clock.runUntil(machine.clock.now + 2 * FORCED_EOI_NS);
    expect(irq.counters.forcedEois).toBe(0);
    machine.irqs.raise(gsi);
    machine.irqs.lower(gsi);
    machine.clock.runUntil(machine.clock.now + 2 * FORCED_EOI_NS);
    expect(irq.counters.forcedEois).toBe(1);
    expect(eoi(hv, u, uPirq)).toBe(0);
    expect(irq.inFlightOf(gsi)).toBe(0);
  });

  it("closing a sharer's port while in flight ends its share", () => {
    const { hv, machine, irq, dom0, u, gsi, port1 } = shared(true);
    machine.irqs.raise(gsi);
    machine.irqs.lower(gsi);
    expect(eoi(hv, dom0, gsi)).toBe(0);
    expect(hv.hypercall(u.vcpus[0], 32, { cmd: 3, port: port1 })).toBe(0);
    expect(irq.sharersOf(gsi)).toEqual([0]);
    expect(irq.inFlightOf(gsi)).toBe(0);
    expect(machine.irqs.inService(gsi)).toBe(false);
    expect(checkIrqRouting(irq, [dom0, u])).toEqual([]);
  });
});

describe("edge-triggered delivery", () => {
  it("acks at once (no EOI needed), edges merge in the pending bit", () => {
    const { hv, machine, irq, dom0, u, gsi, port0, port1, evtchn } = shared(false, 4);
    machine.irqs.pulse(gsi);
    machine.irqs.pulse(gsi);
    expect(irq.counters.delivered).toBe(2);
    expect(irq.inFlightOf(gsi)).toBe(0);
    expect(evtchn.isPending(dom0, port0)).toBe(true);
    expect(evtchn.isPending(u, port1)).toBe(true);
    clear(hv, dom0, port0);
    expect(evtchn.isPending(dom0, port0)).toBe(false);
    machine.irqs.pulse(gsi);
    expect(evtchn.isPending(dom0, port0)).toBe(true);
    expect(irq.counters.forcedEois).toBe(0);
    machine.clock.runUntil(machine.clock.now + 2 * FORCED_EOI_NS);
    expect(irq.counters.forcedEois).toBe(0);
  });

  it("edges while the pin is masked (unbound) coalesce into one delivery at the first bind, which reaches the new port", () => {
    const { hv, machine, irq, dom0 } = boot(0);
    dom0RegisterGsi(hv, dom0, 5, false);
    machine.irqs.pulse(5);
    machine.irqs.pulse(5);
    expect(irq.counters.delivered).toBe(0);
    const b = bindPirq(hv, dom0, 5);
    expect(b.rc).toBe(0);
    expect(irq.counters.delivered).toBe(1);
    // Xen's order: the pirq names its port before pirq_guest_bind unmasks the pin, so the
    // latched edge reaches the new port instead of being lost (issue 12, item 2).
    expect(irq.counters.sent).toBe(1);
    expect(hv.slot("evtchn").isPending(dom0, b.port)).toBe(true);
    // Unbinding the last sharer masks the pin again.
    expect(hv.hypercall(dom0.vcpus[0], 32, { cmd: 3, port: 1 })).toBe(0);
    machine.irqs.pulse(5);
    expect(irq.counters.delivered).toBe(1);
  });

  it("a line nobody bound is taken by Xen, ended at once and counted", () => {
    const { hv, machine, irq, dom0 } = boot(0);
    // dom0 programs pin 9 edge and unmasked through apic_write (vector field = pirq 9).
    expect(
      physdev(hv, dom0, PHYSDEVOP_apic_write, {
        apic_physbase: IO_APIC_DEFAULT_BASE,
        reg: 0x10 + 18,
        value: 9,
      }).rc,
    ).toBe(0);
    expect(irq.irqToPirq(dom0, 9)).toBe(9);
    machine.irqs.pulse(9);
    expect(irq.counters.delivered).toBe(1);
    expect(irq.counters.unbound).toBe(1);
    expect(irq.counters.sent).toBe(0);
  });
});
