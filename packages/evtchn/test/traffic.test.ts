/*
 * Per-port and per-vCPU traffic counts (forEachPort, vcpuEventCounts), on both ABIs: a send
 * counts on the sender's port and as an event raised on the receiver's; VIRQs, PIRQs, IPIs
 * and bind_interdomain's catch-up event count where they land; a re-bound port starts at
 * zero; the view lists exactly the ports in use with EVTCHNOP_status's answer and the bits.
 * A hostile guest's random hypercalls keep the counts equal to a model's.
 */
import {
  __HYPERVISOR_event_channel_op,
  DOMID_SELF,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_ipi,
  EVTCHNOP_bind_pirq,
  EVTCHNOP_bind_vcpu,
  EVTCHNOP_bind_virq,
  EVTCHNOP_close,
  EVTCHNOP_reset,
  EVTCHNOP_send,
  EVTCHNOP_status,
  EVTCHNOP_unmask,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_ipi,
  EVTCHNSTAT_pirq,
  EVTCHNSTAT_unbound,
  EVTCHNSTAT_virq,
  VIRQ_DOM_EXC,
  VIRQ_TIMER,
} from "@hyperlab/abi";
import {
  type Domain,
  type EvtchnService,
  type Hypervisor,
  isHyperlabError,
  type PortTraffic,
  type Vcpu,
} from "@hyperlab/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Abi, boot, guestDomain } from "./helpers";

const LONG = process.env.HYPERLAB_LONG !== undefined;

function op(hv: Hypervisor, v: Vcpu, cmd: number, args: Record<string, unknown>): number {
  // The handler writes its results (port, local_port, status, ...) back into `args`.
  args.cmd = cmd;
  return hv.hypercall(v, __HYPERVISOR_event_channel_op, args);
}

/** The view as a list of copies (the callback's object is reused). */
function ports(ev: EvtchnService, d: Domain): PortTraffic[] {
  const out: PortTraffic[] = [];
  ev.forEachPort(d, (p) => out.push({ ...p }));
  return out;
}

function port(ev: EvtchnService, d: Domain, n: number): PortTraffic | undefined {
  return ports(ev, d).find((p) => p.port === n);
}

/**
 * dom0 and a domU, each with its guest side initialised, and an interdomain channel a -> b
 * bound through the guest side (so both ends are unmasked and have a handler).
 */
function pairWithChannel(abi: Abi) {
  const { hv, evtchn } = boot(abi);
  const a = guestDomain(hv, abi, { domid: 0 });
  const b = guestDomain(hv, abi);
  const bIrq = b.g.bindListeningPortToIrqHandler(0, () => {});
  const bPort = b.g.evtchnFromIrq(bIrq);
  const aPort = a.g.evtchnFromIrq(
    a.g.bindInterdomainEvtchnToIrqHandler(b.d.domid, bPort, () => {}),
  );
  return { hv, evtchn, a, b, va: a.d.vcpus[0], vb: b.d.vcpus[0], aPort, bPort };
}

for (const abi of ["2-level", "fifo"] as const) {
  describe(`event-channel traffic counts (${abi})`, () => {
    it("a send counts on the sender's port and as an event raised on the receiver's", () => {
      const { hv, evtchn, a, b, va, aPort, bPort } = pairWithChannel(abi);
      // bind_interdomain raised one event at the binder (the sends the unbound end dropped).
      expect(port(evtchn, a.d, aPort)).toMatchObject({ sends: 0, raised: 1, pending: true });
      expect(port(evtchn, b.d, bPort)).toMatchObject({ sends: 0, raised: 0, pending: false });
      const upcalls0 = evtchn.vcpuEventCounts(b.d.vcpus[0]).upcalls;
      for (let i = 0; i < 3; i++) expect(op(hv, va, EVTCHNOP_send, { port: aPort })).toBe(0);
      // Three sends, coalesced into one pending bit and one upcall; all three counted.
      expect(port(evtchn, a.d, aPort)).toMatchObject({ sends: 3, raised: 1 });
      expect(port(evtchn, b.d, bPort)).toMatchObject({
        port: bPort,
        status: EVTCHNSTAT_interdomain,
        remoteDom: 0,
        remotePort: aPort,
        vcpu: 0,
        sends: 0,
        raised: 3,
        pending: true,
        masked: false,
      });
      expect(evtchn.vcpuEventCounts(b.d.vcpus[0])).toEqual({ raised: 3, upcalls: upcalls0 + 1 });
      expect(hv.stats.read(`evtchn-${abi === "fifo" ? "fifo" : "2l"}`, "sends")).toBe(3);
      // The guest takes the upcall: the bit clears, the counts stay.
      b.g.xenEvtchnDoUpcall(0);
      expect(port(evtchn, b.d, bPort)).toMatchObject({ raised: 3, pending: false });
      expect(op(hv, va, EVTCHNOP_send, { port: aPort })).toBe(0);
      expect(evtchn.vcpuEventCounts(b.d.vcpus[0])).toEqual({ raised: 4, upcalls: upcalls0 + 2 });
    });

    it("counts at the vCPU the port notifies, and a masked port's events too", () => {
      const { hv, evtchn, b, va, vb, aPort, bPort } = pairWithChannel(abi);
      expect(op(hv, vb, EVTCHNOP_bind_vcpu, { port: bPort, vcpu: 1 })).toBe(0);
      b.g.maskEvtchn(bPort);
      const before1 = evtchn.vcpuEventCounts(b.d.vcpus[1]);
      expect(op(hv, va, EVTCHNOP_send, { port: aPort })).toBe(0);
      expect(evtchn.vcpuEventCounts(b.d.vcpus[1])).toEqual({
        raised: before1.raised + 1,
        upcalls: before1.upcalls, // masked: pending, but no upcall
      });
      expect(port(evtchn, b.d, bPort)).toMatchObject({
        vcpu: 1,
        masked: true,
        pending: true,
        raised: 1,
      });
      expect(op(hv, vb, EVTCHNOP_unmask, { port: bPort })).toBe(0);
      expect(evtchn.vcpuEventCounts(b.d.vcpus[1]).upcalls).toBe(before1.upcalls + 1);
      expect(evtchn.vcpuEventCounts(b.d.vcpus[1]).raised).toBe(before1.raised + 1);
    });

    it("IPIs, VIRQs and PIRQs count where they land; a send on an unbound port counts nothing", () => {
      const { hv, evtchn } = boot(abi);
      const { d } = guestDomain(hv, abi, { domid: 0 });
      const [v0, v1] = d.vcpus;
      const ipi: Record<string, unknown> = { vcpu: 1 };
      expect(op(hv, v0, EVTCHNOP_bind_ipi, ipi)).toBe(0);
      expect(op(hv, v0, EVTCHNOP_send, { port: ipi.port })).toBe(0);
      expect(port(evtchn, d, ipi.port as number)).toMatchObject({
        status: EVTCHNSTAT_ipi,
        vcpu: 1,
        sends: 1,
        raised: 1,
      });
      const timer: Record<string, unknown> = { virq: VIRQ_TIMER, vcpu: 1 };
      expect(op(hv, v0, EVTCHNOP_bind_virq, timer)).toBe(0);
      evtchn.sendVirq(v1, VIRQ_TIMER);
      evtchn.sendVirq(v0, VIRQ_TIMER); // vCPU 0 has no timer port: nothing
      const exc: Record<string, unknown> = { virq: VIRQ_DOM_EXC, vcpu: 0 };
      expect(op(hv, v0, EVTCHNOP_bind_virq, exc)).toBe(0);
      evtchn.setGlobalVirqHandler(d, VIRQ_DOM_EXC);
      evtchn.sendGlobalVirq(VIRQ_DOM_EXC);
      evtchn.sendGlobalVirq(VIRQ_DOM_EXC);
      evtchn.permitPirq(d, 9, true);
      const pirq: Record<string, unknown> = { pirq: 9, flags: 0 };
      expect(op(hv, v0, EVTCHNOP_bind_pirq, pirq)).toBe(0);
      expect(evtchn.sendPirq(d, 9)).toBe(true);
      const unbound: Record<string, unknown> = { dom: DOMID_SELF, remote_dom: 7 };
      expect(op(hv, v0, EVTCHNOP_alloc_unbound, unbound)).toBe(0);
      expect(op(hv, v0, EVTCHNOP_send, { port: unbound.port })).toBe(0);
      const view = ports(evtchn, d);
      const at = (n: unknown) => view.find((p) => p.port === n);
      expect(at(timer.port)).toMatchObject({ status: EVTCHNSTAT_virq, irq: VIRQ_TIMER, raised: 1 });
      expect(at(exc.port)).toMatchObject({ status: EVTCHNSTAT_virq, irq: VIRQ_DOM_EXC, raised: 2 });
      expect(at(pirq.port)).toMatchObject({ status: EVTCHNSTAT_pirq, irq: 9, raised: 1 });
      expect(at(unbound.port)).toMatchObject({
        status: EVTCHNSTAT_unbound,
        remoteDom: 7,
        sends: 0,
        raised: 0,
      });
      // Exactly the ports in use, lowest first, port 0 (reserved) left out.
      expect(view.map((p) => p.port)).toEqual(
        [ipi.port, timer.port, exc.port, pirq.port, unbound.port].sort(
          (x, y) => (x as number) - (y as number),
        ),
      );
      expect(evtchn.vcpuEventCounts(v1).raised).toBe(2); // the IPI and the timer
      expect(evtchn.vcpuEventCounts(v0).raised).toBe(3); // DOM_EXC twice and the PIRQ
    });

    it("a closed port leaves the view, and a port bound again starts from zero", () => {
      const { hv, evtchn, a, b, va, vb, aPort, bPort } = pairWithChannel(abi);
      expect(op(hv, va, EVTCHNOP_send, { port: aPort })).toBe(0);
      // Take the catch-up event first: a FIFO port still linked on a queue is not reused.
      a.g.xenEvtchnDoUpcall(0);
      expect(op(hv, va, EVTCHNOP_close, { port: aPort })).toBe(0);
      expect(port(evtchn, a.d, aPort)).toBeUndefined();
      // The far end is unbound again, naming the closer; its count is its own history.
      expect(port(evtchn, b.d, bPort)).toMatchObject({ status: EVTCHNSTAT_unbound, raised: 1 });
      b.g.xenEvtchnDoUpcall(0);
      const ipi: Record<string, unknown> = { vcpu: 0 };
      expect(op(hv, va, EVTCHNOP_bind_ipi, ipi)).toBe(0);
      expect(ipi.port).toBe(aPort); // the lowest free port: the one just closed
      expect(port(evtchn, a.d, aPort)).toMatchObject({ sends: 0, raised: 0 });
      // After a reset nothing is listed, and the per-vCPU counts still hold the history.
      const counts = evtchn.vcpuEventCounts(b.d.vcpus[0]);
      expect(op(hv, vb, EVTCHNOP_reset, { dom: DOMID_SELF })).toBe(0);
      expect(ports(evtchn, b.d)).toEqual([]);
      expect(evtchn.vcpuEventCounts(b.d.vcpus[0])).toEqual(counts);
    });

    it("a callback may close ports while the view walks them", () => {
      const { hv, evtchn, a, va } = pairWithChannel(abi);
      for (let i = 0; i < 3; i++) expect(op(hv, va, EVTCHNOP_bind_ipi, { vcpu: 0 })).toBe(0);
      const seen: number[] = [];
      evtchn.forEachPort(a.d, (p) => {
        seen.push(p.port);
        // Close the next port up: the walk must not list it.
        op(hv, va, EVTCHNOP_close, { port: p.port + 1 });
      });
      expect(seen).toEqual(ports(evtchn, a.d).map((p) => p.port));
      expect(seen.length).toBe(2);
    });

    it("asking about a domain the event channels do not know is a typed error", () => {
      const { hv, evtchn, b } = pairWithChannel(abi);
      hv.destroyDomain(b.d);
      const tries = [
        () => evtchn.forEachPort(b.d, () => {}),
        () => evtchn.vcpuEventCounts(b.d.vcpus[0]),
      ];
      for (const t of tries) {
        let err: unknown;
        try {
          t();
        } catch (e) {
          err = e;
        }
        expect(isHyperlabError(err, ["EVTCHN_UNKNOWN_DOMAIN"])).toBe(true);
        expect((err as Error).message).toMatch(/has no event channels here/);
      }
    });

    it("a hostile guest's random event-channel hypercalls keep the counts equal to a model's", () => {
      const opArb = fc.record({
        kind: fc.constantFrom(
          "send",
          "send",
          "send",
          "close",
          "ipi",
          "unbound",
          "bind",
          "vcpu",
          "unmask",
          "reset",
        ),
        who: fc.integer({ min: 0, max: 1 }),
        port: fc.oneof(
          { arbitrary: fc.integer({ min: -2, max: 12 }), weight: 6 },
          { arbitrary: fc.integer(), weight: 1 },
        ),
        vcpu: fc.integer({ min: -1, max: 2 }),
        /** Aim at a port in use (mine, or for bind the other domain's) rather than any number. */
        pick: fc.boolean(),
      });
      fc.assert(
        fc.property(
          fc.array(opArb, { minLength: 20, maxLength: LONG ? 300 : 80, size: "max" }),
          (ops) => {
            const { hv, evtchn } = boot(abi);
            const gs = [guestDomain(hv, abi, { domid: 0 }), guestDomain(hv, abi)];
            // The model: counts per (domain, port) since the port was bound, per vCPU since boot.
            const sends = gs.map(() => new Map<number, number>());
            const raised = gs.map(() => new Map<number, number>());
            const vcpu = gs.map(() => [0, 0]);
            const inc = (m: Map<number, number>, p: number) => m.set(p, (m.get(p) ?? 0) + 1);
            const bump = (gi: number, p: number) => {
              inc(raised[gi], p);
              vcpu[gi][port(evtchn, gs[gi].d, p)!.vcpu]++;
            };
            // Events already raised at boot (the guests' own set-up) are the model's start.
            for (let gi = 0; gi < 2; gi++) {
              for (const p of ports(evtchn, gs[gi].d)) raised[gi].set(p.port, p.raised);
              vcpu[gi] = gs[gi].d.vcpus.map((v) => evtchn.vcpuEventCounts(v).raised);
            }
            let total = hv.stats.read(`evtchn-${abi === "fifo" ? "fifo" : "2l"}`, "sends") ?? -1;
            for (const o of ops) {
              const me = gs[o.who];
              const v = me.d.vcpus[0];
              const aimAt = gs[o.kind === "bind" ? 1 - o.who : o.who].d;
              const inUse = ports(evtchn, aimAt).map((p) => p.port);
              const target =
                o.pick && inUse.length > 0 ? inUse[Math.abs(o.port) % inUse.length] : o.port;
              const status: Record<string, unknown> = { dom: DOMID_SELF, port: target };
              const known = op(hv, v, EVTCHNOP_status, status) === 0 ? status.status : -1;
              if (o.kind === "send") {
                const rc = op(hv, v, EVTCHNOP_send, { port: target });
                if (known === EVTCHNSTAT_interdomain) {
                  expect(rc).toBe(0);
                  const u = status.u as { interdomain: { dom: number; port: number } };
                  const ri = gs.findIndex((x) => x.d.domid === u.interdomain.dom);
                  inc(sends[o.who], target);
                  bump(ri, u.interdomain.port);
                  total++;
                } else if (known === EVTCHNSTAT_ipi) {
                  expect(rc).toBe(0);
                  inc(sends[o.who], target);
                  bump(o.who, target);
                  total++;
                }
              } else if (o.kind === "close") {
                op(hv, v, EVTCHNOP_close, { port: target });
              } else if (o.kind === "ipi") {
                const a: Record<string, unknown> = { vcpu: o.vcpu };
                if (op(hv, v, EVTCHNOP_bind_ipi, a) === 0) {
                  sends[o.who].delete(a.port as number);
                  raised[o.who].delete(a.port as number);
                }
              } else if (o.kind === "unbound") {
                const a: Record<string, unknown> = {
                  dom: DOMID_SELF,
                  remote_dom: gs[1 - o.who].d.domid,
                };
                if (op(hv, v, EVTCHNOP_alloc_unbound, a) === 0) {
                  sends[o.who].delete(a.port as number);
                  raised[o.who].delete(a.port as number);
                }
              } else if (o.kind === "bind") {
                const other = gs[1 - o.who].d.domid;
                const a: Record<string, unknown> = { remote_dom: other, remote_port: target };
                if (op(hv, v, EVTCHNOP_bind_interdomain, a) === 0) {
                  const p = a.local_port as number;
                  sends[o.who].delete(p);
                  raised[o.who].delete(p);
                  bump(o.who, p); // the catch-up event
                }
              } else if (o.kind === "vcpu") {
                op(hv, v, EVTCHNOP_bind_vcpu, { port: target, vcpu: o.vcpu });
              } else if (o.kind === "unmask") {
                op(hv, v, EVTCHNOP_unmask, { port: target });
              } else {
                // A reset closes every port (and returns a FIFO domain to 2-level).
                op(hv, v, EVTCHNOP_reset, { dom: DOMID_SELF });
              }
              for (let gi = 0; gi < 2; gi++) {
                for (const p of ports(evtchn, gs[gi].d)) {
                  expect({ gi, port: p.port, sends: p.sends, raised: p.raised }).toEqual({
                    gi,
                    port: p.port,
                    sends: sends[gi].get(p.port) ?? 0,
                    raised: raised[gi].get(p.port) ?? 0,
                  });
                }
                expect(gs[gi].d.vcpus.map((x) => evtchn.vcpuEventCounts(x).raised)).toEqual(
                  vcpu[gi],
                );
              }
              expect(hv.stats.read(`evtchn-${abi === "fifo" ? "fifo" : "2l"}`, "sends")).toBe(
                total,
              );
            }
          },
        ),
        { seed: 14, numRuns: LONG ? 200 : 40 },
      );
    });
  });
}
