import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import {
  computeThenBlock,
  createHypervisor,
  isHyperlabError,
  SCHED_ERROR_CODES,
  type SchedErrorCode,
  schedCredit,
  schedulerByName,
} from "../src/index";

/** The code of what `fn` throws; fails the test if it does not throw a scheduler error. */
function codeOf(fn: () => unknown): SchedErrorCode {
  try {
    fn();
  } catch (e) {
    if (isHyperlabError(e, SCHED_ERROR_CODES)) return e.code;
    throw e;
  }
  throw new Error("expected a throw");
}

describe("scheduler error codes", () => {
  const machine = createMachine({ ramBytes: 16 << 20, cpus: 1, seed: 3 });
  const hv = createHypervisor({ machine, plugins: [schedCredit()] }).boot();
  const sched = hv.slot("sched");
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 4 });
  const other = createHypervisor({
    machine: createMachine({ ramBytes: 16 << 20, cpus: 1, seed: 3 }),
    plugins: [schedCredit()],
  }).boot();
  const foreign = other.createDomain({ maxVcpus: 1, maxPages: 4 });

  it("gives every user mistake a code from SchedErrorCode", () => {
    const seen = new Set<SchedErrorCode>([
      codeOf(() => sched.setParams(d, { cap: 101 })),
      codeOf(() => sched.schedule(1)),
      codeOf(() => schedCredit({ tsliceMs: -1 })),
      codeOf(() => sched.setParams(d, { weight: 0 })),
      codeOf(() => computeThenBlock(hv, d.vcpus[0], Number.NaN)),
      codeOf(() => schedulerByName("sedf")),
      codeOf(() => sched.getParams(foreign)),
      codeOf(() => sched.runstate(foreign.vcpus[0])),
    ]);
    expect([...seen].sort()).toEqual([...SCHED_ERROR_CODES].sort());
  });

  it("tells codes apart by equality, not by prefix", () => {
    const code = codeOf(() => sched.setParams(d, { weight: 0 }));
    expect(code).toBe("SCHED_BAD_WEIGHT");
    expect(code).not.toBe("SCHED_BAD_CAP");
  });
});
