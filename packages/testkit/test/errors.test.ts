/*
 * testkit's checkers throw InvariantError with a typed code (TestkitErrorCode) and the
 * violations, so a caller tells a broken frame table from broken grants by code.
 */
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import {
  assertFrameInvariants,
  checkFrameInvariants,
  InvariantError,
  TESTKIT_ERROR_CODES,
} from "../src/index";

describe("InvariantError", () => {
  it("carries FRAME_INVARIANTS_BROKEN and the violations", () => {
    const machine = createMachine({ ramBytes: 4 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [] }).boot();
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 64 });
    hv.allocDomainPages(d);
    d.totPages += 1; // tot_pages no longer matches the frames the domain owns
    const violations = checkFrameInvariants(hv);
    expect(violations.length).toBeGreaterThan(0);
    let err: unknown;
    try {
      assertFrameInvariants(hv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvariantError);
    const ie = err as InvariantError;
    expect(ie.code).toBe("FRAME_INVARIANTS_BROKEN");
    expect(TESTKIT_ERROR_CODES).toContain(ie.code);
    expect(ie.violations).toEqual(violations);
    expect(ie.message).toMatch(/^frame invariants broken:/);
  });
});
