// The guest conformance suite from @hyperlab/testkit on this backend: the same native guest
// kernel, unchanged, must read the same data and end with the same process states as on
// the bare-metal MMU.
import { createHypervisor, type Plugin } from "@hyperlab/core";
import { bootNativeKernel, conformanceBuildOf } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { defineGuestConformance, type GuestBuildFactory } from "@hyperlab/testkit";
import { describe, it } from "vitest";
import { nptMmu } from "../src/index";

function factory(mmu: () => Plugin): GuestBuildFactory {
  return () => {
    const machine = createMachine({ ramBytes: 128 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [mmu()] }).boot();
    const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 2048 + 16 });
    return conformanceBuildOf(bootNativeKernel(hv, d, { nrPages: 2048 }));
  };
}

const backends: [string, () => Plugin][] = [
  ["native (reference)", nativeMmu],
  ["nested paging, 4 KiB host pages", () => nptMmu({ hostPageSize: "4K" })],
  ["nested paging, 2 MiB host pages", () => nptMmu({ hostPageSize: "2M" })],
];
const builds = backends.map(([name, mmu]) => [name, factory(mmu)] as const);
defineGuestConformance({ describe, it }, builds);
