/*
 * A hostile guest against every hypercall the scheduler and the vCPU areas handle: each
 * field of each call is a non-finite, negative, huge, fractional or BigInt number, a value of
 * the wrong type, or (sometimes) a valid one. Every call must return 0 or a negative errno
 * (VCPUOP_is_up: also 1, for up) and never throw, and after each the vCPUs stay consistent: a vCPU
 * is "running" exactly when a pCPU runs it, a polling vCPU is blocked, each vcpu_info is in a
 * frame the domain owns, and the PV clock reads back. At the end the domain is destroyed and
 * must die: no reference the hypervisor took is leaked.
 */
import {
  __HYPERVISOR_sched_op,
  __HYPERVISOR_vcpu_op,
  SCHEDOP_block,
  SCHEDOP_poll,
  SCHEDOP_remote_shutdown,
  SCHEDOP_shutdown,
  SCHEDOP_yield,
  VCPUOP_down,
  VCPUOP_get_runstate_info,
  VCPUOP_initialise,
  VCPUOP_is_up,
  VCPUOP_register_runstate_memory_area,
  VCPUOP_register_vcpu_info,
  VCPUOP_up,
  VGCF_online,
  vcpu_guest_context_x86_64,
} from "@hyperlab/abi";
import { createMachine } from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createHypervisor, creditScheduler, readPvClock } from "../src/index";
import { directMmu } from "./helpers";

const LONG = process.env.HYPERLAB_LONG !== undefined;
const PAGE = 4096;

const CALLS: readonly [number, number][] = [
  [__HYPERVISOR_sched_op, SCHEDOP_yield],
  [__HYPERVISOR_sched_op, SCHEDOP_block],
  [__HYPERVISOR_sched_op, SCHEDOP_shutdown],
  [__HYPERVISOR_sched_op, SCHEDOP_poll],
  [__HYPERVISOR_sched_op, SCHEDOP_remote_shutdown],
  [__HYPERVISOR_vcpu_op, VCPUOP_up],
  [__HYPERVISOR_vcpu_op, VCPUOP_down],
  [__HYPERVISOR_vcpu_op, VCPUOP_is_up],
  [__HYPERVISOR_vcpu_op, VCPUOP_get_runstate_info],
  [__HYPERVISOR_vcpu_op, VCPUOP_initialise],
  [__HYPERVISOR_vcpu_op, VCPUOP_register_vcpu_info],
  [__HYPERVISOR_vcpu_op, VCPUOP_register_runstate_memory_area],
];

/** Tokens replaced at run time by a frame (or an address in one) of the guest's domain. */
const FRAME = "@frame";
const ADDR = "@addr";

const hostile = fc.oneof(
  fc.constantFrom(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -1,
    -0,
    0.5,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    2 ** 63,
    2 ** 64,
    1e300,
    -1e300,
  ),
  fc.integer({ min: -4, max: 8 }),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.constantFrom(undefined, null, "1", true, {}, [], [1]),
  fc.constantFrom(FRAME, ADDR),
);

const zeroCtx = new Uint8Array(vcpu_guest_context_x86_64.sizeof);
const onlineCtx = zeroCtx.slice();
onlineCtx[vcpu_guest_context_x86_64.fields.flags.offset] = VGCF_online;
const badCtx = zeroCtx.slice();
badCtx[vcpu_guest_context_x86_64.fields["user_regs.rip"].offset + 6] = 0x80; // not canonical

/** A field that is hostile half the time and plausible the other half. */
const field = (valid: fc.Arbitrary<unknown>) => fc.oneof(hostile, valid);

const call = fc.record({
  which: fc.integer({ min: 0, max: CALLS.length - 1 }),
  caller: fc.integer({ min: 0, max: 1 }),
  vcpuid: field(fc.integer({ min: 0, max: 2 })),
  mfn: field(fc.constant(FRAME)),
  offset: field(fc.constantFrom(0, 64, 128, 4032)),
  rsvd: field(fc.constant(0)),
  addr: field(fc.constantFrom(ADDR, 0)),
  ctxt: field(fc.constantFrom(zeroCtx, onlineCtx, badCtx, new Uint8Array(8))),
  ports: field(fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 3 })),
  nr_ports: field(fc.integer({ min: 0, max: 3 })),
  timeout: field(fc.constantFrom(0, 5_000_000, 2 ** 62)),
  reason: field(fc.integer({ min: 0, max: 5 })),
  domain_id: field(fc.integer({ min: 0, max: 2 })),
  runNs: fc.constantFrom(0, 1_000, 1_000_000, 30_000_000),
});

describe("a hostile guest against SCHEDOP_* and VCPUOP_*", () => {
  it("gets 0 or a negative errno, never a throw, and leaves its vCPUs consistent", () => {
    fc.assert(
      fc.property(fc.array(call, { minLength: 1, maxLength: LONG ? 80 : 25 }), (calls) => {
        const machine = createMachine({ ramBytes: 8 << 20, cpus: 2, seed: 9 });
        const hv = createHypervisor({
          machine,
          plugins: [creditScheduler(), directMmu("native")],
        }).boot();
        const sched = hv.slot("sched");
        sched.setEventSource({
          localEventsNeedDelivery: () => false,
          localEventDeliveryEnable: () => {},
          portPoll: (_d, p) => (p >= 1 && p <= 4 ? 0 : -22),
          sendGlobalVirq: () => {},
        });
        const d = hv.createDomain({ maxVcpus: 3, maxPages: 16 });
        hv.unpauseDomain(d);
        const frames = [hv.allocDomainPages(d), hv.allocDomainPages(d)];
        const subst = (x: unknown, i: number): unknown =>
          x === FRAME
            ? frames[i % 2]
            : x === ADDR
              ? frames[i % 2] * PAGE + 64
              : Array.isArray(x)
                ? x.map((y, k) => subst(y, k))
                : x;
        let i = 0;
        for (const c of calls) {
          const [op, cmd] = CALLS[c.which];
          const args: Record<string, unknown> = { cmd };
          for (const k of [
            "vcpuid",
            "mfn",
            "offset",
            "rsvd",
            "addr",
            "ctxt",
            "ports",
            "nr_ports",
            "timeout",
            "reason",
            "domain_id",
          ] as const) {
            args[k] = subst(c[k], i++);
          }
          const rc = hv.hypercall(d.vcpus[c.caller], op, args);
          expect(Number.isInteger(rc)).toBe(true);
          const isUp = op === __HYPERVISOR_vcpu_op && cmd === VCPUOP_is_up;
          expect(rc).toBeLessThanOrEqual(isUp ? 1 : 0);
          machine.clock.runUntil(machine.clock.now + c.runNs);
          // Consistent vCPUs.
          for (const v of d.vcpus) {
            const onCpu = machine.cpus.some((_, cpu) => sched.curr(cpu) === v);
            expect(v.state === "running").toBe(onCpu);
            if (sched.isPolling(v)) expect(v.state).toBe("blocked");
            const at = hv.vcpuAreas.vcpuInfoMaddr(v);
            expect(at).toBeGreaterThanOrEqual(0);
            const mfn = Math.floor(at / PAGE);
            expect(mfn === d.sharedInfoMfn || frames.includes(mfn)).toBe(true);
            const snap = readPvClock(machine.ram, at);
            expect(snap).not.toBeNull();
            expect(snap!.version % 2).toBe(0);
            const rs = hv.vcpuAreas.runstateAreaMaddr(v);
            if (rs >= 0) expect(frames).toContain(Math.floor(rs / PAGE));
          }
        }
        hv.destroyDomain(d);
        machine.clock.runUntil(machine.clock.now + 1_000_000);
        expect(hv.domain(d.domid)).toBeUndefined();
      }),
      { seed: 0x15, numRuns: LONG ? 1000 : 120 },
    );
  });
});
