// The MMU conformance suite from @hyperlab/testkit on shadow paging: the guest writes its
// tables through guestStore (the trapping store), the host propagates them into shadows.
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
import { type ShadowMmuOptions, shadowMmu } from "../src/index";

const BASE = 0x40_0000;

function factory(options: ShadowMmuOptions): MmuBuildFactory {
  return () => {
    const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [shadowMmu(options)] }).boot();
    const sh = hv.slot("shadowMmu");
    const mem = new GuestMem({ hv, ram: machine.ram }, { pages: 32, vcpus: 1 });
    const v = mem.d.vcpus[0];
    const t = new GuestTables(mem, {
      store: (gpa, lo, hi) => {
        const rc = sh.guestStore(v, gpa, lo, hi);
        if (rc !== 0) throw new Error(`guestStore failed: ${rc}`);
      },
    });
    v.cr3Mfn = t.cr3;
    return mmuBuildOf(sh, v, (k, r) => {
      const va = BASE + k * 4096;
      const flags = PTE_P | (r.write ? PTE_RW : 0) | (r.user ? PTE_US : 0);
      t.map(va, mem.alloc(), flags, 1, r.nx ? PTE_NX_HI : 0);
      return va;
    });
  };
}

defineMmuConformance({ describe, it }, [
  ["shadow paging", factory({})],
  ["shadow paging without a TLB", factory({ tlb: false })],
]);
