// The guest conformance suite from @hyperlab/testkit on this backend: the same native guest
// kernel, unchanged, must read the same data and end with the same process states as on
// the bare-metal MMU.
import { createHypervisor, type Plugin } from "@hyperlab/core";
import { bootNativeKernel, conformanceBuildOf } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { nativeMmuPlugin } from "@hyperlab/native-mmu";
import { type GuestBuildFactory, guestConformanceCases } from "@hyperlab/testkit";
import { describe, expect, it } from "vitest";
import { nptMmu } from "../src/index";

function factory(mmu: () => Plugin): GuestBuildFactory {
  return () => {
    const machine = createMachine({ ramBytes: 128 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [mmu()] }).boot();
    const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 2048 + 16 });
    return conformanceBuildOf(bootNativeKernel(hv, d, { nrPages: 2048 }));
  };
}

const builds: [string, () => Plugin][] = [
  ["native (reference)", nativeMmuPlugin],
  ["nested paging, 4 KiB host pages", () => nptMmu({ hostPageSize: "4K" })],
  ["nested paging, 2 MiB host pages", () => nptMmu({ hostPageSize: "2M" })],
];
const transcripts = new Map<string, Map<string, unknown[]>>();

for (const [name, mmu] of builds) {
  describe(`guest conformance: ${name}`, () => {
    for (const c of guestConformanceCases) {
      it(c.name, () => {
        const m = transcripts.get(c.name) ?? new Map<string, unknown[]>();
        transcripts.set(c.name, m);
        m.set(name, c.run(factory(mmu)));
      });
    }
  });
}

describe("guest conformance: the same transcript as native", () => {
  it("every case agrees with the native reference", () => {
    expect(transcripts.size).toBe(guestConformanceCases.length);
    for (const [, m] of transcripts) {
      const reference = m.get("native (reference)");
      expect(reference).toBeDefined();
      for (const t of m.values()) expect(t).toEqual(reference);
    }
  });
});
