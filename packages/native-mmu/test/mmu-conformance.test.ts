// The MMU conformance suite from @hyperlab/testkit on bare metal: the hardware walks the
// kernel's own tables (pfn == mfn), written straight to RAM.
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import {
  defineMmuConformance,
  GuestMem,
  GuestTables,
  mmuBuildOf,
  PTE_NX_HI,
  PTE_P,
  PTE_RW,
  PTE_US,
} from "@hyperlab/testkit";
import { describe, it } from "vitest";
import { nativeMmuPlugin } from "../src/index";

const BASE = 0x7f00_0000_0000;

function build() {
  const machine = createMachine({ ramBytes: 8 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nativeMmuPlugin()] }).boot();
  const mem = new GuestMem({ hv, ram: machine.ram }, { pages: 32, vcpus: 1 });
  const t = new GuestTables(mem);
  const v = mem.d.vcpus[0];
  v.cr3Mfn = t.cr3;
  return mmuBuildOf(hv.slot("mmu"), v, (k, r) => {
    const va = BASE + k * 4096;
    const flags = PTE_P | (r.write ? PTE_RW : 0) | (r.user ? PTE_US : 0);
    t.map(va, mem.alloc(), flags, 1, r.nx ? PTE_NX_HI : 0);
    return va;
  });
}

defineMmuConformance({ describe, it }, [["native", build]]);
