// The MMU conformance suite from @hyperlab/testkit on nested paging: the guest writes its
// own tables in guest-physical memory, the host backs them through the nested tables.
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import {
  defineMmuConformance,
  GuestMem,
  GuestTables,
  type MmuBuildFactory,
  mmuBuildOf,
  PTE_NX_HI,
  PTE_P,
  PTE_RW,
  PTE_US,
} from "@hyperlab/testkit";
import { describe, it } from "vitest";
import { type NptMmuOptions, nptMmu } from "../src/index";

const BASE = 0x40_0000;

function factory(options: NptMmuOptions): MmuBuildFactory {
  return () => {
    const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [nptMmu(options)] }).boot();
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
  };
}

defineMmuConformance({ describe, it }, [
  ["nested paging, 4 KiB host pages", factory({ hostPageSize: "4K" })],
  ["nested paging, 2 MiB host pages", factory({ hostPageSize: "2M" })],
  ["nested paging without a combined TLB", factory({ tlb: false })],
]);
