import {
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_sched_op,
  __HYPERVISOR_vcpu_op,
  EFAULT,
  EINVAL,
  ENOENT,
  ETIME,
  EVTCHNOP_send,
  EVTCHNOP_set_priority,
  SCHEDOP_block,
  VCPU_SSHOTTMR_future,
  VCPUOP_set_periodic_timer,
  VCPUOP_set_singleshot_timer,
  VCPUOP_stop_periodic_timer,
  VCPUOP_stop_singleshot_timer,
  VIRQ_DEBUG,
  VIRQ_TIMER,
} from "@hyperlab/abi";
import { HyperlabError, schedCredit } from "@hyperlab/core";
import { XenEvtchnGuest } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { type Abi, boot, guestDomain } from "./helpers";

const MS = 1_000_000;

for (const abi of ["2-level", "fifo"] as Abi[]) {
  describe(`guest side (${abi})`, () => {
    it("delivers an interdomain event as an ordinary interrupt at the bound handler", () => {
      const { hv } = boot(abi);
      const back = guestDomain(hv, abi, { domid: 0 });
      const front = guestDomain(hv, abi);
      const seen: string[] = [];
      const irqB = back.g.bindListeningPortToIrqHandler(front.d.domid, (irq, cpu) =>
        seen.push(`back ${irq} ${cpu}`),
      );
      const portB = back.g.evtchnFromIrq(irqB);
      expect(back.g.irqFromEvtchn(portB)).toBe(irqB);
      const irqF = front.g.bindInterdomainEvtchnToIrqHandler(
        0,
        portB,
        (irq, cpu) => seen.push(`front ${irq} ${cpu}`),
        1,
      );
      expect(front.g.xenEvtchnDoUpcall(1)).toBe(1);
      expect(front.g.notifyRemoteViaIrq(irqF, 1)).toBe(0);
      expect(back.g.upcallPending(0)).toBe(true);
      expect(back.g.xenEvtchnDoUpcall(0)).toBe(1);
      expect(back.g.xenEvtchnDoUpcall(0)).toBe(0);
      expect(back.g.notifyRemoteViaIrq(irqB)).toBe(0);
      expect(front.g.upcallPending(0)).toBe(false);
      expect(front.g.xenEvtchnDoUpcall(1)).toBe(1);
      expect(seen).toEqual([`front ${irqF} 1`, `back ${irqB} 0`, `front ${irqF} 1`]);
      // Errors from Xen come back as -errno; user mistakes throw.
      expect(front.g.bindInterdomainEvtchnToIrqHandler(0, 999, () => {})).toBe(-EINVAL);
      expect(() => front.g.notifyRemoteViaIrq(999)).toThrow(HyperlabError);
      expect(() => front.g.bindEvtchnToIrqHandler(5, "no" as never)).toThrow(/handler/);
      expect(() => front.g.bindVirqToIrqHandler(VIRQ_TIMER, 7, () => {})).toThrow(/cpu 7/);
    });

    it("masks, unmasks (re-raising what waited) and unbinds", () => {
      const { hv } = boot(abi);
      const a = guestDomain(hv, abi, { domid: 0 });
      const b = guestDomain(hv, abi);
      let hits = 0;
      const irqB = b.g.bindListeningPortToIrqHandler(0, () => hits++);
      const portB = b.g.evtchnFromIrq(irqB);
      const irqA = a.g.bindInterdomainEvtchnToIrqHandler(b.d.domid, portB, () => {});
      b.g.maskEvtchn(portB);
      a.g.notifyRemoteViaIrq(irqA);
      expect(b.g.xenEvtchnDoUpcall(0)).toBe(0);
      expect(b.g.isPending(portB)).toBe(true);
      b.g.unmaskEvtchn(portB);
      expect(b.g.upcallPending(0)).toBe(true);
      expect(b.g.xenEvtchnDoUpcall(0)).toBe(1);
      expect(hits).toBe(1);
      expect(b.g.unbindFromIrqHandler(irqB)).toBe(0);
      expect(b.g.evtchnFromIrq(irqB)).toBe(-1);
      expect(() => b.g.unbindFromIrqHandler(irqB)).toThrow(HyperlabError);
      // The other end is unbound now: sends drop, nothing reaches b.
      expect(a.g.notifyRemoteViaIrq(irqA)).toBe(0);
      expect(b.g.xenEvtchnDoUpcall(0)).toBe(0);
    });

    it("sends IPIs between the guest's vCPUs", () => {
      const { hv } = boot(abi);
      const { g } = guestDomain(hv, abi, { vcpus: 3 });
      const got: string[] = [];
      for (let cpu = 0; cpu < 3; cpu++) {
        expect(
          g.bindIpiToIrqHandler(1, cpu, (_irq, c) => got.push(`resched@${c}`)),
        ).toBeGreaterThan(0);
        g.bindIpiToIrqHandler(2, cpu, (_irq, c) => got.push(`call@${c}`));
      }
      expect(g.sendIpi(2, 1, 0)).toBe(0);
      expect(g.sendIpi(1, 2, 2)).toBe(0);
      expect(g.upcallPending(0)).toBe(false);
      expect(g.xenEvtchnDoUpcall(2)).toBe(1);
      expect(g.xenEvtchnDoUpcall(1)).toBe(1);
      expect(got).toEqual(["resched@2", "call@1"]);
      expect(() => g.sendIpi(0, 9)).toThrow(/not bound/);
    });

    it("handles an event raised by a handler on the next pass of the same upcall", () => {
      const { hv } = boot(abi);
      const { g } = guestDomain(hv, abi);
      let n = 0;
      const irq = g.bindIpiToIrqHandler(0, 0, () => {
        n++;
        if (n < 5) g.sendIpi(0, 0);
      });
      expect(irq).toBeGreaterThan(0);
      g.sendIpi(0, 0);
      expect(g.xenEvtchnDoUpcall(0)).toBe(5);
      expect(g.upcallPending(0)).toBe(false);
    });

    it("runs the timer VIRQ from one-shot and periodic vCPU timers, and a blocked vCPU wakes for it", () => {
      const { hv, machine, sched } = boot(abi);
      const { d, g } = guestDomain(hv, abi);
      const ticks: number[] = [];
      g.bindVirqToIrqHandler(VIRQ_TIMER, 0, () => ticks.push(machine.clock.now));
      const v = d.vcpus[0];
      const vop = (cmd: number, a: object) =>
        hv.hypercall(v, __HYPERVISOR_vcpu_op, { cmd, vcpuid: 0, ...a });
      machine.clock.runUntil(MS);
      expect(vop(VCPUOP_set_singleshot_timer, { timeout_abs_ns: 5 * MS, flags: 0 })).toBe(0);
      expect(hv.hypercall(v, __HYPERVISOR_sched_op, { cmd: SCHEDOP_block })).toBe(0);
      machine.clock.runUntil(4 * MS);
      expect(v.state).toBe("blocked");
      machine.clock.runUntil(6 * MS);
      expect(v.state).toBe("running");
      expect(g.xenEvtchnDoUpcall(0)).toBe(1);
      // The handler runs when the guest takes the upcall, after the 5 ms expiry woke it.
      expect(ticks).toEqual([6 * MS]);
      expect(
        vop(VCPUOP_set_singleshot_timer, { timeout_abs_ns: MS, flags: VCPU_SSHOTTMR_future }),
      ).toBe(-ETIME);
      expect(vop(VCPUOP_set_singleshot_timer, { timeout_abs_ns: "soon", flags: 0 })).toBe(-EFAULT);
      expect(vop(VCPUOP_set_singleshot_timer, { timeout_abs_ns: 9 * MS, flags: 0.5 })).toBe(
        -EFAULT,
      );
      expect(vop(VCPUOP_set_singleshot_timer, { timeout_abs_ns: 9 * MS, flags: 0 })).toBe(0);
      expect(vop(VCPUOP_stop_singleshot_timer, {})).toBe(0);
      // Only the vCPU itself may arm its one-shot timer.
      expect(
        hv.hypercall(v, __HYPERVISOR_vcpu_op, {
          cmd: VCPUOP_set_singleshot_timer,
          vcpuid: 1,
          timeout_abs_ns: 0,
          flags: 0,
        }),
      ).toBe(-EINVAL);
      expect(
        hv.hypercall(v, __HYPERVISOR_vcpu_op, { cmd: VCPUOP_stop_singleshot_timer, vcpuid: 1 }),
      ).toBe(-EINVAL);
      expect(
        hv.hypercall(v, __HYPERVISOR_vcpu_op, { cmd: VCPUOP_stop_singleshot_timer, vcpuid: 8 }),
      ).toBe(-ENOENT);
      expect(
        hv.hypercall(v, __HYPERVISOR_vcpu_op, { cmd: VCPUOP_stop_singleshot_timer, vcpuid: "0" }),
      ).toBe(-EFAULT);
      expect(vop(VCPUOP_set_periodic_timer, { period_ns: 1000 })).toBe(-EINVAL);
      expect(vop(VCPUOP_set_periodic_timer, { period_ns: "x" })).toBe(-EFAULT);
      expect(vop(VCPUOP_set_periodic_timer, { period_ns: 2 * MS })).toBe(0);
      machine.clock.runUntil(11 * MS);
      expect(g.xenEvtchnDoUpcall(0)).toBe(1);
      expect(ticks.length).toBe(2);
      expect(vop(VCPUOP_stop_periodic_timer, {})).toBe(0);
      machine.clock.runUntil(30 * MS);
      expect(g.xenEvtchnDoUpcall(0)).toBe(0);
      expect(hv.stats.read("vcpu-timers", "timer_virqs")).toBeGreaterThanOrEqual(3);
      expect(sched.name).toBe("credit");
    });

    it("rebinds an irq to another vCPU", () => {
      const { hv } = boot(abi);
      const a = guestDomain(hv, abi, { domid: 0 });
      const b = guestDomain(hv, abi);
      const where: number[] = [];
      const irqB = b.g.bindListeningPortToIrqHandler(0, (_i, cpu) => where.push(cpu));
      const irqA = a.g.bindInterdomainEvtchnToIrqHandler(
        b.d.domid,
        b.g.evtchnFromIrq(irqB),
        () => {},
      );
      expect(b.g.rebindIrqToCpu(irqB, 1)).toBe(0);
      a.g.notifyRemoteViaIrq(irqA);
      expect(b.g.xenEvtchnDoUpcall(0)).toBe(0);
      expect(b.g.xenEvtchnDoUpcall(1)).toBe(1);
      expect(where).toEqual([1]);
    });
  });
}

describe("guest side, 2-level specifics", () => {
  it("uses the 32-bit layout for 32-bit guests (1024 channels, 32-bit selector)", () => {
    const { hv } = boot("2-level");
    const a = guestDomain(hv, "2-level", { domid: 0 });
    const b = guestDomain(hv, "2-level", { addressSize: 32 });
    const hits: number[] = [];
    // Bind many ports so that one lands in a high selector word.
    let irq = -1;
    for (let i = 0; i < 700; i++) irq = b.g.bindListeningPortToIrqHandler(0, (n) => hits.push(n));
    const port = b.g.evtchnFromIrq(irq);
    expect(port).toBe(700);
    const irqA = a.g.bindInterdomainEvtchnToIrqHandler(b.d.domid, port, () => {});
    a.g.xenEvtchnDoUpcall(0);
    a.g.notifyRemoteViaIrq(irqA);
    // selector bit port/32 = 21 in the 32-bit evtchn_pending_sel at offset 4 of vcpu_info
    expect(hv.machine.ram.read32(b.d.sharedInfoMfn * 4096 + 4)).toBe(1 << 21);
    // pending bit in evtchn_pending at 2048, mask at 2176
    expect(hv.machine.ram.read32(b.d.sharedInfoMfn * 4096 + 2048 + (port >>> 5) * 4)).toBe(
      1 << (port & 31),
    );
    expect(b.g.xenEvtchnDoUpcall(0)).toBe(1);
    expect(hits).toEqual([irq]);
  });

  it("handles the timer VIRQ first, then scans round robin", () => {
    const { hv, evtchn } = boot("2-level");
    const { d, g } = guestDomain(hv, "2-level");
    const order: string[] = [];
    const ipi = g.bindIpiToIrqHandler(0, 0, () => order.push("ipi"));
    g.bindVirqToIrqHandler(VIRQ_DEBUG, 0, () => order.push("debug"));
    g.bindVirqToIrqHandler(VIRQ_TIMER, 0, () => order.push("timer"));
    g.sendIpi(0, 0);
    evtchn.sendVirq(d.vcpus[0], VIRQ_DEBUG);
    evtchn.sendVirq(d.vcpus[0], VIRQ_TIMER);
    expect(g.xenEvtchnDoUpcall(0)).toBe(3);
    expect(order).toEqual(["timer", "ipi", "debug"]);
    expect(ipi).toBeGreaterThan(0);
  });

  it("refuses bad guest options", () => {
    const { hv } = boot("2-level");
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 8 });
    expect(() => new XenEvtchnGuest({ hv, vcpus: [], sharedInfoMfn: d.sharedInfoMfn })).toThrow(
      HyperlabError,
    );
    expect(
      () => new XenEvtchnGuest({ hv, vcpus: d.vcpus, sharedInfoMfn: d.sharedInfoMfn, abi: "fifo" }),
    ).toThrow(/allocFrame/);
    const g = new XenEvtchnGuest({ hv, vcpus: d.vcpus, sharedInfoMfn: d.sharedInfoMfn });
    expect(() => g.bindIpiToIrqHandler(0, 0, () => {})).toThrow(/init/);
    expect(g.init()).toBe(0);
    expect(g.init()).toBe(0);
  });
});

describe("guest side, FIFO specifics", () => {
  it("delivers higher-priority queues first and grows the event array on demand", () => {
    const { hv, evtchn } = boot("fifo");
    const { d, g } = guestDomain(hv, "fifo");
    expect(evtchn.domainAbi(d)).toBe("fifo");
    const order: string[] = [];
    const lo = g.bindIpiToIrqHandler(0, 0, () => order.push("low"));
    const hi = g.bindIpiToIrqHandler(1, 0, () => order.push("high"));
    const set = (irq: number, priority: number) =>
      hv.hypercall(d.vcpus[0], __HYPERVISOR_event_channel_op, {
        cmd: EVTCHNOP_set_priority,
        port: g.evtchnFromIrq(irq),
        priority,
      });
    expect(set(lo, 12)).toBe(0);
    expect(set(hi, 1)).toBe(0);
    g.sendIpi(0, 0);
    g.sendIpi(0, 1);
    expect(g.xenEvtchnDoUpcall(0)).toBe(2);
    expect(order).toEqual(["high", "low"]);
    // Ports past the first event array page: the guest expands, Xen re-raises what waited.
    let last = -1;
    let hits = 0;
    for (let i = 0; i < 1100; i++) last = g.bindIpiToIrqHandler(100 + i, 0, () => hits++);
    expect(g.evtchnFromIrq(last)).toBeGreaterThan(1024);
    g.sendIpi(0, 1199);
    expect(g.xenEvtchnDoUpcall(0)).toBe(1);
    expect(hits).toBe(1);
  });

  it("keeps FIFO order within a queue and loses nothing across consume and relink", () => {
    const { hv } = boot("fifo");
    const { d, g } = guestDomain(hv, "fifo");
    const seen: number[] = [];
    const irqs: number[] = [];
    for (let i = 0; i < 5; i++)
      irqs.push(g.bindIpiToIrqHandler(i, 0, (irq) => seen.push(irqs.indexOf(irq))));
    for (const i of [3, 1, 4, 0, 2]) g.sendIpi(0, i);
    // Re-sending a pending, linked port does not link it twice.
    g.sendIpi(0, 1);
    expect(g.xenEvtchnDoUpcall(0)).toBe(5);
    expect(seen).toEqual([3, 1, 4, 0, 2]);
    for (const i of [2, 0]) g.sendIpi(0, i);
    expect(g.xenEvtchnDoUpcall(0)).toBe(2);
    expect(seen.slice(5)).toEqual([2, 0]);
    expect(
      hv.hypercall(d.vcpus[0], __HYPERVISOR_event_channel_op, { cmd: EVTCHNOP_send, port: 0 }),
    ).toBe(-EINVAL);
  });
});

describe("wake-up latency of an event-driven vCPU", () => {
  it("credit: an interdomain event wakes a blocked vCPU sooner with BOOST than without", () => {
    const measure = (boost: boolean) => {
      const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 3 });
      const { hv } = boot("2-level", [], {}, machine, schedCredit({ boost }));
      const sched = hv.slot("sched");
      const sender = guestDomain(hv, "2-level", { domid: 0, vcpus: 1 });
      const io = guestDomain(hv, "2-level", { vcpus: 1 });
      for (let i = 0; i < 2; i++) {
        const d = hv.createDomain({ maxVcpus: 1, maxPages: 8 });
        hv.unpauseDomain(d);
      }
      const irq = io.g.bindListeningPortToIrqHandler(0, () => {});
      const port = sender.g.bindInterdomainEvtchnToIrqHandler(
        io.d.domid,
        io.g.evtchnFromIrq(irq),
        () => {},
      );
      // The I/O vCPU handles its events, computes 100 µs, then blocks until the next event.
      const step = () => {
        io.g.xenEvtchnDoUpcall(0);
        sched.setWork(io.d.vcpus[0], 100_000, step);
        hv.hypercall(io.d.vcpus[0], __HYPERVISOR_sched_op, { cmd: SCHEDOP_block });
      };
      sched.setWork(io.d.vcpus[0], 100_000, step);
      // The sender (dom0) sends every 5 ms; it computes nothing itself.
      const send = () => {
        sender.g.notifyRemoteViaIrq(port);
        machine.clock.scheduleAfter(5 * MS, send);
      };
      machine.clock.scheduleAfter(5 * MS, send);
      machine.clock.runUntil(10_000 * MS);
      const l = sched.wakeLatency(io.d.vcpus[0]);
      return { meanUs: l.totalNs / l.count / 1000, maxUs: l.maxNs / 1000, wakeups: l.count };
    };
    const on = measure(true);
    const off = measure(false);
    if (process.env.HYPERLAB_REPORT)
      console.info("event wake-up latency, BOOST on:", on, "off:", off);
    expect(on.wakeups).toBeGreaterThan(1000);
    expect(on.meanUs).toBeLessThan(off.meanUs);
  });
});
