/*
 * Guest-controlled input never throws: every hypercall of this package, given arbitrary
 * values where its arguments go, answers with a number and leaves the invariants whole.
 */
import {
  __HYPERVISOR_memory_op,
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_update_va_mapping,
  __HYPERVISOR_update_va_mapping_otherdomain,
  XENMEM_current_reservation,
  XENMEM_decrease_reservation,
  XENMEM_exchange,
  XENMEM_increase_reservation,
  XENMEM_machphys_mapping,
  XENMEM_maximum_ram_page,
  XENMEM_maximum_reservation,
  XENMEM_populate_physmap,
} from "@hyperlab/abi";
import { assertFrameInvariants } from "@hyperlab/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { boot, guest } from "./helpers";

const LONG = process.env.HYPERLAB_LONG === "1";
const OPS = [
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_update_va_mapping,
  __HYPERVISOR_update_va_mapping_otherdomain,
  __HYPERVISOR_memory_op,
];
const MEM_CMDS = [
  XENMEM_increase_reservation,
  XENMEM_decrease_reservation,
  XENMEM_populate_physmap,
  XENMEM_exchange,
  XENMEM_maximum_ram_page,
  XENMEM_current_reservation,
  XENMEM_maximum_reservation,
  XENMEM_machphys_mapping,
];

/** Values of every shape, biased towards what the handlers look at. */
const junk = fc.oneof(
  fc.anything(),
  fc.integer(),
  fc.double(),
  fc.bigInt(),
  fc.array(fc.oneof(fc.integer(), fc.anything()), { maxLength: 4 }),
  fc.uint32Array({ maxLength: 8 }),
);

const args = fc.record(
  {
    cmd: fc.oneof(fc.constantFrom(...MEM_CMDS), fc.integer({ min: -1, max: 25 }), junk),
    ureqs: fc.oneof(junk, fc.array(fc.record({ ptr: junk, val: junk }), { maxLength: 3 })),
    uops: fc.oneof(
      junk,
      fc.array(
        fc.record({
          cmd: fc.oneof(fc.integer({ min: -1, max: 21 }), junk),
          arg1: junk,
          arg2: junk,
        }),
        { maxLength: 3 },
      ),
    ),
    count: fc.oneof(fc.integer({ min: -2, max: 4 }), junk),
    foreigndom: fc.oneof(fc.constantFrom(0x7ff0, 0, 1, 2), junk),
    va: junk,
    val: junk,
    flags: junk,
    domid: fc.oneof(fc.constantFrom(0x7ff0, 1, 2), junk),
    extent_start: junk,
    nr_extents: fc.oneof(fc.integer({ min: -1, max: 3 }), junk),
    extent_order: fc.oneof(fc.integer({ min: -1, max: 3 }), junk),
    mem_flags: junk,
    in: junk,
    out: junk,
    nr_exchanged: junk,
    vcpumask: junk,
  },
  { requiredKeys: [] },
);

describe("garbage arguments", () => {
  it("never make a handler throw", () => {
    const w = boot(16 << 20);
    const g = guest(w, { domid: 1, nrPages: 1100 });
    guest(w, { domid: 2, nrPages: 1100 });
    const v = g.d.vcpus[0];
    fc.assert(
      fc.property(fc.constantFrom(...OPS), args, (op, a) => {
        const rc = w.hv.hypercall(v, op, a as object);
        expect(typeof rc).toBe("number");
        expect(Number.isInteger(rc)).toBe(true);
      }),
      { seed: 0x6a7b, numRuns: LONG ? 20_000 : 2_000 },
    );
    assertFrameInvariants(w.hv);
  });
});
