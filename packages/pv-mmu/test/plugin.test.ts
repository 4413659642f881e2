import {
  __HYPERVISOR_memory_op,
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_update_va_mapping,
  __HYPERVISOR_update_va_mapping_otherdomain,
  XENMEM_exchange,
} from "@hyperlab/abi";
import { createHypervisor, HyperlabError } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { pvMmu } from "../src/index";
import { boot, guest } from "./helpers";

describe("the pv-mmu plugin", () => {
  it("fills mmu and pv-mmu, and owns Xen's PV memory hypercalls", () => {
    const w = boot();
    expect(w.hv.slot("mmu")).toBe(w.pv);
    expect(w.pv.kind).toBe("pv");
    const desc = w.hv.describe();
    expect(desc.slots).toMatchObject({ mmu: "pv-mmu", "pv-mmu": "pv-mmu" });
    const ops = desc.hypercalls
      .filter((h) => h.plugin === "pv-mmu")
      .map((h) => (h.cmd === undefined ? h.op : `${h.op}/${h.cmd}`));
    for (const op of [
      __HYPERVISOR_mmu_update,
      __HYPERVISOR_mmuext_op,
      __HYPERVISOR_update_va_mapping,
      __HYPERVISOR_update_va_mapping_otherdomain,
    ]) {
      expect(ops).toContain(op);
    }
    expect(ops).toContain(`${__HYPERVISOR_memory_op}/${XENMEM_exchange}`);
    expect(Object.keys(desc.stats)).toContain("pv-mmu");
  });

  it("counts its events in stats", () => {
    const w = boot();
    const g = guest(w);
    w.pv.read(g.d.vcpus[0], 0x1000, 4);
    const stats = w.hv.stats.snapshot()["pv-mmu"];
    const byName = Object.fromEntries(stats.map((s) => [s.name, s.value]));
    expect(byName.page_faults).toBe(1);
    expect(byName.promotions).toBeGreaterThan(3);
  });

  it("refuses to boot on a machine with no room for the M2P, saying what to do", () => {
    const machine = createMachine({
      ramBytes: 64 * 4096,
      cpus: 1,
      seed: 1,
      reserved: [{ mfn: 0, count: 62 }],
    });
    const hv = createHypervisor({ machine, plugins: [pvMmu()] });
    expect(() => hv.boot()).toThrow(HyperlabError);
    expect(() => createHypervisor({ machine, plugins: [pvMmu()] }).boot()).toThrow(
      /Give the machine more RAM/,
    );
  });
});
