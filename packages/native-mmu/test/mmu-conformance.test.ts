// The MMU conformance suite from @hyperlab/testkit on bare metal: the hardware walks the
// kernel's own tables (pfn == mfn), written straight to RAM.
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { defineMmuConformance, GuestMem, GuestTables, tablesMmuBuild } from "@hyperlab/testkit";
import { describe, it } from "vitest";
import { nativeMmu } from "../src/index";

function build() {
  const machine = createMachine({ ramBytes: 8 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
  const mem = new GuestMem({ hv, ram: machine.ram }, { pages: 32, vcpus: 1 });
  return tablesMmuBuild(hv.slot("mmu"), mem.d.vcpus[0], new GuestTables(mem), 0x7f00_0000_0000);
}

defineMmuConformance({ describe, it }, [["native", build]]);
