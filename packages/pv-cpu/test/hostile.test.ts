/*
 * A hostile guest against every hypercall pv-cpu serves: each argument is a non-finite,
 * negative, fractional, huge or BigInt number, a value of the wrong type, or (more often) a
 * plausible one, and guest buffers hold garbage. Every call must return an integer that is 0,
 * a negative errno or the call's documented non-negative result, never throw, and every
 * store to RAM the hypervisor makes while serving it must land in a frame the calling domain
 * owns (or its shared_info). Every hypercall must succeed at least once over the runs. At the
 * end the domain is destroyed and must die: no reference pv-cpu took is leaked.
 */
import {
  __HYPERVISOR_callback_op,
  __HYPERVISOR_console_io,
  __HYPERVISOR_fpu_taskswitch,
  __HYPERVISOR_iret,
  __HYPERVISOR_set_callbacks,
  __HYPERVISOR_set_gdt,
  __HYPERVISOR_set_segment_base,
  __HYPERVISOR_set_trap_table,
  __HYPERVISOR_stack_switch,
  __HYPERVISOR_update_descriptor,
  __HYPERVISOR_xen_version,
} from "@hyperlab/abi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PAGE, rig } from "./helpers";

const LONG = process.env.HYPERLAB_LONG !== undefined;

const OPS = [
  __HYPERVISOR_set_trap_table,
  __HYPERVISOR_set_gdt,
  __HYPERVISOR_stack_switch,
  __HYPERVISOR_set_callbacks,
  __HYPERVISOR_fpu_taskswitch,
  __HYPERVISOR_update_descriptor,
  __HYPERVISOR_xen_version,
  __HYPERVISOR_console_io,
  __HYPERVISOR_iret,
  __HYPERVISOR_set_segment_base,
  __HYPERVISOR_callback_op,
] as const;
const FIELDS = [
  "cmd",
  "arg",
  "traps",
  "frame_list",
  "entries",
  "ss",
  "esp",
  "event_address",
  "failsafe_address",
  "syscall_address",
  "set",
  "ma",
  "a",
  "b",
  "count",
  "buffer",
  "rsp",
  "which",
  "base",
] as const;

/** Tokens replaced at run time by an address in a frame of the guest, or the frame number. */
const ADDR = "@addr";
const FRAME = "@frame";

const hostile = fc.oneof(
  {
    arbitrary: fc.constantFrom(Number.NaN, Infinity, -Infinity, -1, 0.5, 2 ** 64, 1e300, -0),
    weight: 4,
  },
  {
    arbitrary: fc.constantFrom(2 ** 31, 2 ** 32, 2 ** 47, 2 ** 48, 2 ** 53, 2 ** 63, -1e300),
    weight: 1,
  },
  { arbitrary: fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), weight: 1 },
  { arbitrary: fc.constantFrom(undefined, null, "1", true, {}, [], [1]), weight: 1 },
);
const plausible = fc.oneof(
  fc.integer({ min: 0, max: 12 }),
  fc.constantFrom(ADDR, ADDR, FRAME, 0, 0xe02b, 0x1000, 0x00af9a00, 0xffff, 512),
);
const field = fc.oneof({ arbitrary: hostile, weight: 1 }, { arbitrary: plausible, weight: 3 });
/** Sub-op numbers (cmd, which) are mostly the small ones the calls know. */
const subOp = fc.oneof(
  { arbitrary: hostile, weight: 1 },
  { arbitrary: fc.integer({ min: 0, max: 4 }), weight: 4 },
);

/** Guest pointers are mostly an address in one of its frames. */
const POINTERS = new Set(["arg", "traps", "frame_list", "buffer", "rsp", "ma"]);
const pointer = fc.oneof(
  { arbitrary: field, weight: 1 },
  { arbitrary: fc.constant(ADDR), weight: 2 },
);

/** Buffer contents: random bytes, or zeros, or a CALLBACKOP_register of an NMI callback at 0x1000. */
const zeros = new Uint8Array(64);
const nmiCallback = zeros.slice();
nmiCallback[0] = 4;
nmiCallback[9] = 0x10;
const garbage = fc.oneof(
  { arbitrary: fc.uint8Array({ minLength: 64, maxLength: 64 }), weight: 1 },
  { arbitrary: fc.constantFrom(zeros, nmiCallback), weight: 2 },
);

const call = fc.record({
  op: fc.integer({ min: 0, max: OPS.length - 1 }),
  caller: fc.integer({ min: 0, max: 1 }),
  slot: fc.integer({ min: 0, max: 2 }),
  offset: fc.constantFrom(0, 8, 64, 4088, 4000),
  garbage,
  args: fc.tuple(
    ...FIELDS.map((k) =>
      k === "cmd" || k === "which" ? subOp : POINTERS.has(k) ? pointer : field,
    ),
  ),
});

describe("a hostile guest against pv-cpu's hypercalls", () => {
  it("gets 0, a result or a negative errno, never a throw, and Xen writes only its own frames", {
    timeout: LONG ? 900_000 : 60_000,
  }, () => {
    const succeeded = new Array<number>(OPS.length).fill(0);
    fc.assert(
      fc.property(fc.array(call, { minLength: 1, maxLength: LONG ? 80 : 30 }), (calls) => {
        const { hv, machine, domU, fU } = rig(4 << 20);
        hv.unpauseDomain(domU);
        // The write audit: every store the RAM takes during a hypercall, checked as it is made.
        const ram = machine.ram as unknown as Record<string, (...a: unknown[]) => unknown>;
        let auditing = false;
        const stray: number[] = [];
        for (const name of [
          "write8",
          "write16",
          "write32",
          "write64",
          "write64n",
          "writeU64",
          "writeBytes",
        ]) {
          const orig = ram[name].bind(machine.ram);
          ram[name] = (ma: unknown, ...rest: unknown[]) => {
            if (auditing) {
              const mfn = Math.floor((ma as number) / PAGE);
              if (hv.frames.ownerOf(mfn) !== domU.domid && mfn !== domU.sharedInfoMfn)
                stray.push(mfn);
            }
            return orig(ma, ...rest);
          };
        }
        for (const c of calls) {
          // Garbage in the guest's buffers.
          const at = fU[c.slot] * PAGE + c.offset;
          for (let i = 0; i < Math.min(64, PAGE - c.offset); i++) {
            machine.ram.write8(at + i, c.garbage[i]);
          }
          const args: Record<string, unknown> = {};
          FIELDS.forEach((k, i) => {
            const x = c.args[i];
            args[k] = x === ADDR ? fU[c.slot] * PAGE + c.offset : x === FRAME ? fU[c.slot] : x;
          });
          const op = OPS[c.op];
          auditing = true;
          let rc: number;
          try {
            rc = hv.hypercall(domU.vcpus[c.caller], op, args);
          } finally {
            auditing = false;
          }
          expect(Number.isInteger(rc)).toBe(true);
          if (rc >= 0) succeeded[c.op]++;
          if (op !== __HYPERVISOR_xen_version && op !== __HYPERVISOR_console_io) {
            expect(rc).toBeLessThanOrEqual(0);
          }
          expect(stray).toEqual([]);
        }
        hv.destroyDomain(domU);
        machine.clock.runUntil(machine.clock.now + 1_000_000);
        expect(hv.domain(domU.domid)).toBeUndefined();
      }),
      { seed: 0x5eed, numRuns: LONG ? 400 : 80 },
    );
    OPS.forEach((op, i) => {
      expect.soft(succeeded[i], `hypercall ${op} never succeeded`).toBeGreaterThan(0);
    });
  });
});
