/*
 * Hostile guests: random sequences of event channel hypercalls with random and malformed
 * arguments from several domains. After every step the invariants hold, no event is lost,
 * and none reaches a domain that does not own the port.
 */
import {
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_sched_op,
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
  EVTCHNSTAT_closed,
  EVTCHNSTAT_interdomain,
  EVTCHNSTAT_ipi,
  EVTCHNSTAT_unbound,
  SCHEDOP_poll,
} from "@hyperlab/abi";
import type { Domain } from "@hyperlab/core";
import type { XenEvtchnGuest } from "@hyperlab/guest";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Abi, boot, guestDomain } from "./helpers";

const LONG = process.env.HYPERLAB_LONG !== undefined;
const PORTS = 40;

const junk = fc.oneof(
  fc.integer({ min: -3, max: PORTS }),
  fc.constantFrom(DOMID_SELF, 0x7fff, 2 ** 31, 1.5, Number.NaN, "1", null, undefined, {}),
);
const stepArb = fc.record({
  who: fc.oneof(
    { arbitrary: fc.constant(1), weight: 2 },
    { arbitrary: fc.integer({ min: 0, max: 2 }), weight: 1 },
  ),
  cmd: fc.oneof(
    {
      arbitrary: fc.constantFrom(
        EVTCHNOP_alloc_unbound,
        EVTCHNOP_bind_interdomain,
        EVTCHNOP_bind_virq,
        EVTCHNOP_bind_ipi,
        EVTCHNOP_bind_ipi,
        EVTCHNOP_bind_pirq,
        EVTCHNOP_close,
        EVTCHNOP_send,
        EVTCHNOP_send,
        EVTCHNOP_send,
        EVTCHNOP_status,
        EVTCHNOP_bind_vcpu,
        EVTCHNOP_unmask,
        99,
        -1,
      ),
      weight: 30,
    },
    { arbitrary: fc.constant(EVTCHNOP_reset), weight: 1 },
  ),
  // Mostly plausible values (domids 0..2, low ports), sometimes garbage.
  x: fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 2 }), weight: 4 },
    { arbitrary: junk, weight: 1 },
  ),
  y: fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 2 }), weight: 4 },
    { arbitrary: junk, weight: 1 },
  ),
  z: fc.oneof(
    { arbitrary: fc.integer({ min: 0, max: 8 }), weight: 4 },
    { arbitrary: fc.integer({ min: -1, max: PORTS }), weight: 1 },
  ),
  poll: fc.boolean(),
});

/** Every port's pending state, per domain. */
function pendingMap(evtchn: ReturnType<typeof boot>["evtchn"], ds: Domain[]): boolean[][] {
  return ds.map((d) => {
    const out: boolean[] = [];
    for (let p = 0; p < PORTS + 24; p++) out.push(evtchn.isPending(d, p));
    return out;
  });
}

function checkInvariants(evtchn: ReturnType<typeof boot>["evtchn"], ds: Domain[]): void {
  const byId = new Map(ds.map((d) => [d.domid, d]));
  for (const d of ds) {
    for (let p = 0; p < PORTS + 24; p++) {
      const info = evtchn.portInfo(d, p);
      if (info.status === EVTCHNSTAT_closed) {
        // A free port holds no event for whoever binds it next.
        expect(evtchn.isPending(d, p)).toBe(false);
      }
      if (info.status === EVTCHNSTAT_interdomain) {
        const peer = byId.get(info.remoteDom)!;
        const back = evtchn.portInfo(peer, info.remotePort);
        expect(back).toMatchObject({
          status: EVTCHNSTAT_interdomain,
          remoteDom: d.domid,
          remotePort: p,
        });
      }
    }
  }
}

for (const abi of ["2-level", "fifo"] as Abi[]) {
  describe(`hostile guests (${abi})`, () => {
    // A generous timeout: the property makes many hypercalls and is slow on a loaded machine.
    it("never break the invariants, lose an event, or deliver one to a domain that does not own the port", {
      timeout: 600_000,
    }, () => {
      fc.assert(
        fc.property(
          fc.array(stepArb, { minLength: 40, maxLength: LONG ? 400 : 120, size: "max" }),
          (steps) => {
            const { hv, evtchn } = boot(abi);
            const gs = [
              guestDomain(hv, abi, { domid: 0 }),
              guestDomain(hv, abi),
              guestDomain(hv, abi),
            ];
            const ds = gs.map((g) => g.d);
            evtchn.permitPirq(ds[1], 3, true);
            for (const s of steps) {
              const d = ds[s.who];
              const v = d.vcpus[0];
              const args: Record<string, unknown> = { cmd: s.cmd };
              switch (s.cmd) {
                case EVTCHNOP_alloc_unbound:
                  Object.assign(args, { dom: s.x, remote_dom: s.y });
                  break;
                case EVTCHNOP_bind_interdomain:
                  Object.assign(args, { remote_dom: s.x, remote_port: s.z });
                  break;
                case EVTCHNOP_bind_virq:
                  Object.assign(args, { virq: s.z, vcpu: s.x });
                  break;
                case EVTCHNOP_bind_ipi:
                  Object.assign(args, { vcpu: s.x });
                  break;
                case EVTCHNOP_bind_pirq:
                  Object.assign(args, { pirq: s.z, flags: s.x });
                  break;
                case EVTCHNOP_status:
                case EVTCHNOP_reset:
                  Object.assign(args, { dom: s.x, port: s.z });
                  break;
                case EVTCHNOP_bind_vcpu:
                  Object.assign(args, { port: s.z, vcpu: s.x });
                  break;
                default:
                  Object.assign(args, { port: s.z });
              }
              if (s.cmd === EVTCHNOP_reset && s.x !== DOMID_SELF && s.x !== d.domid)
                hv.pauseDomain(ds[1]);
              const before = s.cmd === EVTCHNOP_send ? pendingMap(evtchn, ds) : null;
              const info = typeof s.z === "number" ? evtchn.portInfo(d, s.z) : null;
              const rc = hv.hypercall(v, __HYPERVISOR_event_channel_op, args);
              if (ds[1].pauseCount > 0) hv.unpauseDomain(ds[1]);
              expect(Number.isInteger(rc)).toBe(true);
              if (before !== null && info !== null && rc === 0) {
                const after = pendingMap(evtchn, ds);
                // Where the event may land: the peer's port, or our own IPI port; nowhere else.
                let target: [number, number] | null = null;
                if (info.status === EVTCHNSTAT_interdomain)
                  target = [ds.findIndex((x) => x.domid === info.remoteDom), info.remotePort];
                else if (info.status === EVTCHNSTAT_ipi) target = [s.who, s.z];
                else expect(info.status).toBe(EVTCHNSTAT_unbound);
                for (let i = 0; i < ds.length; i++) {
                  for (let p = 0; p < after[i].length; p++) {
                    const hit = target !== null && target[0] === i && target[1] === p;
                    if (hit) expect(after[i][p]).toBe(true);
                    else if (!before[i][p]) expect(after[i][p]).toBe(false);
                  }
                }
              }
              if (s.poll) {
                const prc = hv.hypercall(v, __HYPERVISOR_sched_op, {
                  cmd: SCHEDOP_poll,
                  ports: [s.z],
                  nr_ports: 1,
                  timeout: 1,
                });
                expect(Number.isInteger(prc)).toBe(true);
                hv.slot("sched").vcpuWake(v);
              }
              checkInvariants(evtchn, ds);
            }
          },
        ),
        { seed: 7, numRuns: LONG ? 300 : 40 },
      );
    });

    it("guests that mask, unmask, rebind and take upcalls in any order get every event, at the right handler", () => {
      const opArb = fc.record({
        kind: fc.constantFrom(
          "send",
          "send",
          "send",
          "ipi",
          "mask",
          "unmask",
          "upcall",
          "upcall",
          "rebind",
        ),
        ch: fc.integer({ min: 0, max: 3 }),
        dir: fc.boolean(),
        cpu: fc.integer({ min: 0, max: 1 }),
      });
      fc.assert(
        fc.property(
          fc.array(opArb, { minLength: 20, maxLength: LONG ? 300 : 100, size: "max" }),
          (ops) => {
            const { hv } = boot(abi);
            const gs = [guestDomain(hv, abi, { domid: 0 }), guestDomain(hv, abi)];
            // owed[g][irq]: an event was sent that this irq's handler has not seen yet.
            const owed = gs.map(() => new Map<number, boolean>());
            const masked = gs.map(() => new Set<number>());
            const irqCpu = gs.map(() => new Map<number, number>());
            const handler = (gi: number) => (irq: number, cpu: number) => {
              // The irq is this guest's, and it arrives on the vCPU it is bound to.
              expect(owed[gi].has(irq)).toBe(true);
              expect(irqCpu[gi].get(irq)).toBe(cpu);
              owed[gi].set(irq, false);
            };
            const chans: { irq: [number, number] }[] = [];
            for (let c = 0; c < 4; c++) {
              const back = gs[1].g.bindListeningPortToIrqHandler(0, handler(1));
              const front = gs[0].g.bindInterdomainEvtchnToIrqHandler(
                gs[1].d.domid,
                gs[1].g.evtchnFromIrq(back),
                handler(0),
              );
              chans.push({ irq: [front, back] });
              owed[0].set(front, true); // bind_interdomain raises one event at the binder
              owed[1].set(back, false);
              irqCpu[0].set(front, 0);
              irqCpu[1].set(back, 0);
            }
            const ipis = gs.map((x, gi) =>
              [0, 1].map((cpu) => {
                const irq = x.g.bindIpiToIrqHandler(0, cpu, handler(gi));
                owed[gi].set(irq, false);
                irqCpu[gi].set(irq, cpu);
                return irq;
              }),
            );
            const portOf = (gi: number, irq: number) => gs[gi].g.evtchnFromIrq(irq);
            const drain = () => {
              for (let gi = 0; gi < 2; gi++)
                for (const cpu of [0, 1]) gs[gi].g.xenEvtchnDoUpcall(cpu);
            };
            for (const o of ops) {
              const from = o.dir ? 0 : 1;
              const to = 1 - from;
              const g: XenEvtchnGuest = gs[from].g;
              const ch = chans[o.ch];
              if (o.kind === "send") {
                expect(g.notifyRemoteViaIrq(ch.irq[from], o.cpu)).toBe(0);
                owed[to].set(ch.irq[to], true);
              } else if (o.kind === "ipi") {
                expect(g.sendIpi(o.cpu, 0, 1 - o.cpu)).toBe(0);
                owed[from].set(ipis[from][o.cpu], true);
              } else if (o.kind === "mask") {
                g.maskEvtchn(portOf(from, ch.irq[from]));
                masked[from].add(ch.irq[from]);
              } else if (o.kind === "unmask") {
                g.unmaskEvtchn(portOf(from, ch.irq[from]), irqCpu[from].get(ch.irq[from]));
                masked[from].delete(ch.irq[from]);
              } else if (o.kind === "rebind") {
                // Drain first, as Linux does when it moves an irq (no event in flight).
                drain();
                expect(g.rebindIrqToCpu(ch.irq[from], o.cpu)).toBe(0);
                irqCpu[from].set(ch.irq[from], o.cpu);
              } else {
                gs[from].g.xenEvtchnDoUpcall(o.cpu);
              }
            }
            // Unmask everything and take every upcall: nothing is still owed.
            for (let gi = 0; gi < 2; gi++) {
              for (const irq of masked[gi])
                gs[gi].g.unmaskEvtchn(portOf(gi, irq), irqCpu[gi].get(irq));
            }
            drain();
            for (let gi = 0; gi < 2; gi++) {
              for (const [irq, isOwed] of owed[gi])
                expect({ gi, irq, isOwed }).toEqual({ gi, irq, isOwed: false });
            }
          },
        ),
        { seed: 11, numRuns: LONG ? 300 : 60 },
      );
    });
  });
}
