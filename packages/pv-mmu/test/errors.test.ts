import { createHypervisor, isHyperlabError } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { type PvMmuErrorCode, pvMmu } from "../src/index";

describe("typed error codes", () => {
  it("a bad tlb option throws a HyperlabError with this package's code", () => {
    const machine = createMachine({ ramBytes: 16 << 20, cpus: 1, seed: 1 });
    let caught: unknown;
    try {
      createHypervisor({ machine, plugins: [pvMmu({ tlb: 7 as never })] }).boot();
    } catch (e) {
      caught = e;
    }
    const codes: PvMmuErrorCode[] = ["PV_MMU_BAD_OPTION"];
    expect(isHyperlabError(caught, codes)).toBe(true);
    expect((caught as Error).message).toMatch(/tlb must be a TlbConfig/);
  });
});
