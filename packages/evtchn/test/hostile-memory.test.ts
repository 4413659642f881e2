/*
 * Issue 15, event channels: a hostile domU must not change a byte outside its own
 * shared_info, FIFO control block and event array frames, whatever sequence of event channel
 * hypercalls it makes (ABI switches, resets, closes, re-binds, unmasks of any port). Every
 * other frame of the machine, dom0's pinned page tables included, is snapshotted before and
 * compared after. The sequences also run under testkit's write audit: each store the
 * hypervisor makes while serving domU's hypercalls (and each frame view it takes for writing)
 * must land in a frame domU owns or shared with it.
 */
import {
  __HYPERVISOR_event_channel_op,
  DOMID_SELF,
  EINVAL,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_ipi,
  EVTCHNOP_bind_vcpu,
  EVTCHNOP_bind_virq,
  EVTCHNOP_close,
  EVTCHNOP_expand_array,
  EVTCHNOP_init_control,
  EVTCHNOP_reset,
  EVTCHNOP_send,
  EVTCHNOP_set_priority,
  EVTCHNOP_status,
  EVTCHNOP_unmask,
} from "@hyperlab/abi";
import { createHypervisor, type Domain, type Hypervisor, schedCredit } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { createWriteAudit } from "@hyperlab/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evtchn2l, evtchnFifo, vcpuTimers } from "../src/index";

const LONG = process.env.HYPERLAB_LONG !== undefined;
const ARMED = new Uint8Array(4096).fill(0xff);

/** A copy of every resident frame except `exempt`. */
function snapshot(hv: Hypervisor, exempt: ReadonlySet<number>): Map<number, Uint8Array> {
  const ram = hv.machine.ram;
  const out = new Map<number, Uint8Array>();
  for (let mfn = 0; mfn < hv.frames.nrFrames; mfn++) {
    if (exempt.has(mfn) || !ram.frameResident(mfn)) continue;
    out.set(mfn, ram.frameBytes(mfn).slice());
  }
  return out;
}

/** Frames outside `exempt` whose bytes differ from `snap` (or became resident and nonzero). */
function changed(hv: Hypervisor, snap: Map<number, Uint8Array>, exempt: ReadonlySet<number>) {
  const ram = hv.machine.ram;
  const out: number[] = [];
  for (let mfn = 0; mfn < hv.frames.nrFrames; mfn++) {
    if (exempt.has(mfn) || !ram.frameResident(mfn)) continue;
    const now = ram.frameBytes(mfn);
    const was = snap.get(mfn);
    const buf = Buffer.from(now.buffer, now.byteOffset, now.byteLength);
    if (was === undefined ? buf.some((b) => b !== 0) : !buf.equals(was)) out.push(mfn);
  }
  return out;
}

/**
 * dom0 with real PV page tables (pinned L1s), and a domU whose event channel frames are the
 * only ones it may change. The machine hands out frames from the top down, so the frames just
 * above domU's shared_info are dom0's, allocated before domU: 40 of them are armed with set
 * bits (as a page table's present bits would be), so a bit cleared there shows.
 */
function world(abi: "2-level" | "fifo", addressSize: 32 | 64 = 64) {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({
    machine,
    plugins: [pvMmu(), schedCredit(), abi === "fifo" ? evtchnFifo() : evtchn2l(), vcpuTimers()],
  }).boot();
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 1100 });
  buildPvDomain(hv, hv.slot("pv-mmu"), { domain: dom0, nrPages: 1024 });
  const armed: number[] = [];
  for (let i = 0; i < 40; i++) {
    const mfn = hv.allocDomainPages(dom0);
    machine.ram.writeBytes(mfn * 4096, ARMED);
    armed.push(mfn);
  }
  const domU = hv.createDomain({ domid: 1, maxVcpus: 2, maxPages: 64, addressSize });
  expect(armed).toContain(domU.sharedInfoMfn + 1);
  for (const d of [dom0, domU]) {
    hv.unpauseDomain(d);
    for (const v of d.vcpus) hv.slot("sched").vcpuUp(v);
  }
  const own = new Set<number>([domU.sharedInfoMfn]);
  const audit = createWriteAudit(hv, { throwOnStray: false });
  return { hv, machine, dom0, domU, own, audit };
}

function op(hv: Hypervisor, d: Domain, args: Record<string, unknown>, vcpu = 0): number {
  return hv.hypercall(d.vcpus[vcpu], __HYPERVISOR_event_channel_op, args);
}

/** Gives domU a fresh frame of its own for the FIFO ABI; it joins the exempt set. */
function eventFrame(w: ReturnType<typeof world>): number {
  const mfn = w.hv.allocDomainPages(w.domU);
  w.machine.ram.clearFrame(mfn);
  w.own.add(mfn);
  return mfn;
}

describe("issue 15: unmask after a FIFO -> 2-level reset", () => {
  it("reaches no byte outside domU's own event channel frames, and answers -EINVAL", () => {
    const w = world("fifo");
    const { hv, domU } = w;
    expect(
      op(hv, domU, { cmd: EVTCHNOP_init_control, control_gfn: eventFrame(w), offset: 0, vcpu: 0 }),
    ).toBe(0);
    for (let i = 0; i < 14; i++)
      expect(op(hv, domU, { cmd: EVTCHNOP_expand_array, array_gfn: eventFrame(w) })).toBe(0);
    for (let i = 1; i < 14_000; i++) {
      const a = { cmd: EVTCHNOP_alloc_unbound, dom: DOMID_SELF, remote_dom: 0 };
      expect(op(hv, domU, a)).toBe(0);
    }
    expect(hv.slot("evtchn").activePorts(domU)).toBe(14_000);
    const snap = snapshot(hv, w.own);
    expect(op(hv, domU, { cmd: EVTCHNOP_reset, dom: DOMID_SELF })).toBe(0);
    expect(hv.slot("evtchn").domainAbi(domU)).toBe("2-level");
    // The valid-port limit is back to the 2-level ABI's.
    expect(hv.slot("evtchn").maxPorts(domU)).toBe(4096);
    const rcs = new Set<number>();
    for (let port = 4096; port < 16_384; port++)
      rcs.add(op(hv, domU, { cmd: EVTCHNOP_unmask, port }));
    expect(changed(hv, snap, w.own)).toEqual([]);
    expect([...rcs]).toEqual([-EINVAL]);
    const status = { cmd: EVTCHNOP_status, dom: DOMID_SELF, port: 5000 };
    expect(op(hv, domU, status)).toBe(-EINVAL);
  });

  it("unmask of a free port in an allocated bucket is 0 as in Xen, past the buckets -EINVAL; only the domain's own event memory changes (both ABIs)", () => {
    for (const abi of ["2-level", "fifo"] as const) {
      const w = world(abi);
      const { hv, domU } = w;
      const a = { cmd: EVTCHNOP_alloc_unbound, dom: DOMID_SELF, remote_dom: 0, port: 0 };
      expect(op(hv, domU, a)).toBe(0);
      expect(op(hv, domU, { cmd: EVTCHNOP_close, port: a.port })).toBe(0);
      const snap = snapshot(hv, new Set());
      for (const port of [a.port, a.port + 1, 63])
        expect(op(hv, domU, { cmd: EVTCHNOP_unmask, port })).toBe(0);
      expect(changed(hv, snap, w.own)).toEqual([]);
      const after = snapshot(hv, new Set());
      for (const port of [64, 4095, 4096, 2 ** 31])
        expect(op(hv, domU, { cmd: EVTCHNOP_unmask, port })).toBe(-EINVAL);
      expect(changed(hv, after, new Set())).toEqual([]);
    }
  });
});

/** Not a hypercall: unmask every port from `port` on, 16384 of them, one hypercall each. */
const UNMASK_SWEEP = -100;

/** One operation on ports between the ABI switches. */
const stepArb = fc.record({
  cmd: fc.constantFrom(
    EVTCHNOP_close,
    EVTCHNOP_close,
    EVTCHNOP_alloc_unbound,
    EVTCHNOP_bind_ipi,
    EVTCHNOP_bind_virq,
    EVTCHNOP_bind_interdomain,
    EVTCHNOP_bind_vcpu,
    EVTCHNOP_send,
    EVTCHNOP_unmask,
    EVTCHNOP_unmask,
    EVTCHNOP_set_priority,
    EVTCHNOP_status,
    UNMASK_SWEEP,
  ),
  /** A port: low, near the 2-level limits, in the FIFO range, or garbage. */
  port: fc.oneof(
    fc.integer({ min: 0, max: 70 }),
    fc.integer({ min: 1000, max: 1100 }),
    fc.integer({ min: 4000, max: 4200 }),
    fc.integer({ min: 12_000, max: 20_000 }),
    fc.integer({ min: 100_000, max: 140_000 }),
    fc.constantFrom(-1, 2 ** 31, 2 ** 53, 1.5, Number.NaN),
  ),
  vcpu: fc.integer({ min: -1, max: 2 }),
});

/**
 * A round: maybe switch to FIFO (init_control, expand_array), allocate many ports, operate on
 * them (closes and re-binds among them), maybe reset.
 */
const roundArb = fc.record({
  fifo: fc.integer({ min: 0, max: 3 }).map((x) => x > 0),
  /** init_control's arguments: mostly valid, sometimes not. */
  offset: fc.oneof(fc.constant(0), fc.constant(4024), fc.integer({ min: -8, max: 4096 })),
  vcpu: fc.oneof(fc.constant(0), fc.integer({ min: -1, max: 2 })),
  /** Whether the FIFO frames are dom0's (which must be refused) instead of the domain's own. */
  foreign: fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
  pages: fc.integer({ min: 0, max: 16 }),
  ports: fc.oneof(
    fc.integer({ min: 0, max: 80 }),
    fc.integer({ min: 4000, max: 12_000 }),
    fc.integer({ min: 12_000, max: 16_000 }),
  ),
  steps: fc.array(stepArb, { maxLength: 10 }),
  reset: fc.boolean(),
});

describe("hostile-guest property: event channel sequences with ABI switches", () => {
  for (const abi of ["2-level", "fifo"] as const) {
    // A generous timeout: the sweeps make ~10^5 hypercalls, slow on a loaded machine.
    it(`no byte outside the domain's own event channel frames changes (${abi} build)`, {
      timeout: LONG ? 3_600_000 : 600_000,
    }, () => {
      fc.assert(
        fc.property(
          fc.array(roundArb, { minLength: 1, maxLength: LONG ? 6 : 3 }),
          fc.boolean(),
          (rounds, addr32) => {
            const w = world(abi, addr32 ? 32 : 64);
            const { hv, dom0, domU } = w;
            const dom0Page = hv.allocDomainPages(dom0);
            const snap = snapshot(hv, w.own);
            const call = (args: Record<string, unknown>, vcpu = 0) => {
              const rc = w.audit.as(domU.domid, () => op(hv, domU, args, vcpu));
              expect(Number.isInteger(rc) && rc <= 0).toBe(true);
              return rc;
            };
            const frame = (r: { foreign: boolean }) => (r.foreign ? dom0Page : eventFrame(w));
            for (const r of rounds) {
              if (r.fifo) {
                const init = { control_gfn: frame(r), offset: r.offset, vcpu: r.vcpu };
                call({ cmd: EVTCHNOP_init_control, ...init });
                for (let i = 0; i < r.pages; i++)
                  call({ cmd: EVTCHNOP_expand_array, array_gfn: frame(r) });
              }
              for (let i = 0; i < r.ports; i++) {
                const a = { cmd: EVTCHNOP_alloc_unbound, dom: DOMID_SELF, remote_dom: i & 1 };
                if (call(a) < 0) break;
              }
              for (const s of r.steps) {
                const v = Math.max(0, s.vcpu) % 2;
                switch (s.cmd) {
                  case UNMASK_SWEEP: {
                    const from = Math.max(0, s.port | 0);
                    for (let port = from; port < from + 16_384; port++)
                      call({ cmd: EVTCHNOP_unmask, port });
                    break;
                  }
                  case EVTCHNOP_alloc_unbound:
                    call({ cmd: s.cmd, dom: DOMID_SELF, remote_dom: DOMID_SELF }, v);
                    break;
                  case EVTCHNOP_bind_ipi:
                    call({ cmd: s.cmd, vcpu: s.vcpu }, v);
                    break;
                  case EVTCHNOP_bind_virq:
                    call({ cmd: s.cmd, virq: s.port % 24, vcpu: s.vcpu }, v);
                    break;
                  case EVTCHNOP_bind_interdomain:
                    call({ cmd: s.cmd, remote_dom: DOMID_SELF, remote_port: s.port }, v);
                    break;
                  case EVTCHNOP_bind_vcpu:
                    call({ cmd: s.cmd, port: s.port, vcpu: s.vcpu }, v);
                    break;
                  case EVTCHNOP_set_priority:
                    call({ cmd: s.cmd, port: s.port, priority: s.vcpu + 7 }, v);
                    break;
                  case EVTCHNOP_status:
                    call({ cmd: s.cmd, dom: DOMID_SELF, port: s.port }, v);
                    break;
                  case EVTCHNOP_close:
                    // Close, then re-bind: the port comes back as the lowest free one.
                    if (call({ cmd: s.cmd, port: s.port }, v) === 0)
                      call({ cmd: EVTCHNOP_bind_ipi, vcpu: 0 }, v);
                    break;
                  default:
                    call({ cmd: s.cmd, port: s.port }, v);
                }
                expect(changed(hv, snap, w.own)).toEqual([]);
              }
              if (r.reset) call({ cmd: EVTCHNOP_reset, dom: DOMID_SELF });
              // After every round, sweep the ports a 2-level domain cannot name.
              for (let port = 4096; port < 20_000; port += 7) call({ cmd: EVTCHNOP_unmask, port });
              expect(changed(hv, snap, w.own)).toEqual([]);
              expect(w.audit.strays).toEqual([]);
              const ev = hv.slot("evtchn");
              expect(ev.activePorts(domU)).toBeLessThanOrEqual(ev.maxPorts(domU));
            }
            w.audit.assertClean();
            w.audit.dispose();
          },
        ),
        { seed: 15, numRuns: LONG ? 40 : 6 },
      );
    });
  }
});
