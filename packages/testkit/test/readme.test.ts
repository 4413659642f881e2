import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { expect, it } from "vitest";
import { checkFrameInvariants } from "../src/index";

it("runs the README example", () => {
  const hv = createHypervisor({
    machine: createMachine({ ramBytes: 16 * 2 ** 20, cpus: 1, seed: 1 }),
    plugins: [],
  }).boot();
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
  const mfn = hv.allocDomainPages(d);
  expect(checkFrameInvariants(hv)).toEqual([]);
  hv.frames.countInfo[mfn] += 1; // a reference nobody holds
  expect(checkFrameInvariants(hv).length).toBeGreaterThan(0);
});
