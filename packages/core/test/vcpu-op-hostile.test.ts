/*
 * A hostile guest against every hypercall the scheduler and the vCPU areas handle: each
 * field of each call is a non-finite, negative, huge, fractional or BigInt number, a value of
 * the wrong type, or (more often) a plausible one. Every call must return 0 or a negative
 * errno (VCPUOP_is_up: also 1, for up) and never throw, and after each the vCPUs stay
 * consistent: a vCPU is "running" exactly when a pCPU runs it, a polling vCPU is blocked (or
 * offline), each vcpu_info is in a frame the domain owns, and the PV clock reads back. At the
 * end the domain is destroyed and must die: no reference the hypervisor took is leaked. Every
 * call must succeed at least once over the runs, so the checks are reached.
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
import { createHypervisor, PGT_l4_page_table, readPvClock, schedCredit } from "../src/index";
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
/** A context whose CR3 names a frame of the guest's domain. */
const CTX_CR3 = "@ctxt-cr3";

/** The numbers a uint64 or int field must refuse, most often. */
const badNumbers = fc.constantFrom(
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  -1,
  0.5,
  2 ** 64,
  1e300,
);
/** Numbers at the edges of 32, 53 and 64 bits. */
const wideNumbers = fc.constantFrom(-0, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 63, -1e300);

const hostile = fc.oneof(
  { arbitrary: badNumbers, weight: 4 },
  { arbitrary: wideNumbers, weight: 1 },
  { arbitrary: fc.integer({ min: -4, max: 8 }), weight: 1 },
  { arbitrary: fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), weight: 1 },
  { arbitrary: fc.constantFrom(undefined, null, "1", true, {}, [], [1]), weight: 1 },
  { arbitrary: fc.constantFrom(FRAME, ADDR), weight: 1 },
);

const zeroCtx = new Uint8Array(vcpu_guest_context_x86_64.sizeof);
const onlineCtx = zeroCtx.slice();
onlineCtx[vcpu_guest_context_x86_64.fields.flags.offset] = VGCF_online;
const badCtx = zeroCtx.slice();
badCtx[vcpu_guest_context_x86_64.fields["user_regs.rip"].offset + 6] = 0x80; // not canonical

/** A field that is hostile a third of the time and plausible otherwise. */
const field = (valid: fc.Arbitrary<unknown>) =>
  fc.oneof({ arbitrary: hostile, weight: 1 }, { arbitrary: valid, weight: 2 });

const call = fc.record({
  which: fc.integer({ min: 0, max: CALLS.length - 1 }),
  caller: fc.integer({ min: 0, max: 1 }),
  vcpuid: field(fc.integer({ min: 0, max: 2 })),
  mfn: field(fc.constant(FRAME)),
  offset: field(fc.constantFrom(0, 64, 128, 4032)),
  rsvd: field(fc.constant(0)),
  addr: field(fc.constantFrom(ADDR, 0)),
  ctxt: field(fc.constantFrom(zeroCtx, onlineCtx, badCtx, new Uint8Array(8), CTX_CR3, CTX_CR3)),
  ports: field(fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 3 })),
  nr_ports: field(fc.integer({ min: 0, max: 3 })),
  timeout: field(fc.constantFrom(0, 5_000_000, 2 ** 62)),
  reason: field(fc.integer({ min: 0, max: 5 })),
  domain_id: field(fc.integer({ min: 0, max: 2 })),
  runNs: fc.constantFrom(0, 1_000, 1_000_000, 30_000_000),
});

function withCr3(mfn: number): Uint8Array {
  const c = zeroCtx.slice();
  new DataView(c.buffer).setUint32(
    vcpu_guest_context_x86_64.fields.ctrlreg.offset + 3 * 8,
    mfn * PAGE,
    true,
  );
  return c;
}

describe.each(["native", "pv"])(
  "a hostile guest against SCHEDOP_* and VCPUOP_* (%s MMU)",
  (kind) => {
    it("gets 0 or a negative errno, never a throw, and leaves its vCPUs consistent", {
      timeout: LONG ? 900_000 : 60_000,
    }, () => {
      // How often each call succeeded over all runs: each must, or the test proves little.
      const succeeded = new Array<number>(CALLS.length).fill(0);
      fc.assert(
        fc.property(fc.array(call, { minLength: 1, maxLength: LONG ? 80 : 25 }), (calls) => {
          const machine = createMachine({ ramBytes: 8 << 20, cpus: 2, seed: 9 });
          const hv = createHypervisor({
            machine,
            plugins: [schedCredit(), directMmu(kind)],
          }).boot();
          if (kind === "pv") {
            hv.frames.setTypeHooks(PGT_l4_page_table, { validate: () => 0, devalidate: () => {} });
          }
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
            x === CTX_CR3
              ? withCr3(frames[i % 2])
              : x === FRAME
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
            if (rc >= 0) succeeded[c.which]++;
            expect(Number.isInteger(rc)).toBe(true);
            const isUp = op === __HYPERVISOR_vcpu_op && cmd === VCPUOP_is_up;
            expect(rc).toBeLessThanOrEqual(isUp ? 1 : 0);
            machine.clock.runUntil(machine.clock.now + c.runNs);
            // Consistent vCPUs.
            for (const v of d.vcpus) {
              const onCpu = machine.cpus.some((_, cpu) => sched.curr(cpu) === v);
              expect(v.state === "running").toBe(onCpu);
              // Polling means blocked; VCPUOP_down may take a polling vCPU offline, as in Xen.
              if (sched.isPolling(v)) expect(["blocked", "offline"]).toContain(v.state);
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
        { seed: 0x15, numRuns: LONG ? 2000 : 200 },
      );
      // An unprivileged domain can never shut another down (-EPERM); every other call can succeed.
      const never = CALLS.filter(
        ([, cmd], i) => succeeded[i] === 0 && cmd !== SCHEDOP_remote_shutdown,
      );
      expect(never).toEqual([]);
    });
  },
);
