import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { GrantMappingDouble } from "../src/index";

const RO = 0x4;
const PTE = 0x10;
const OK = 0;
const ERR = -1;

function vcpu() {
  const machine = createMachine({ ramBytes: 1 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [] }).boot();
  return hv.createDomain({ domid: 4, maxVcpus: 1, maxPages: 4 }).vcpus[0];
}

describe("GrantMappingDouble", () => {
  it("creates, checks and clears host mappings as a PV implementation would", () => {
    const v = vcpu();
    const d = new GrantMappingDouble();
    expect(d.releasedWithPageTables).toBe(false);
    expect(d.create(v, 0x1000, 7, 0)).toBe(OK);
    expect(d.lookup(4, 0x1000)).toBe(7);
    expect(d.create(v, 2 ** 47, 7, 0)).toBe(ERR);
    expect(d.create(v, 12, 7, PTE)).toBe(ERR);
    expect(d.create(v, 16, 7, PTE | RO)).toBe(OK);
    // replace needs the same frame and writability
    expect(d.replace(v, 0x1000, 8, 0, 0)).toBe(ERR);
    expect(d.replace(v, 0x1000, 7, 0, RO)).toBe(ERR);
    expect(d.replace(v, 0x2000, 7, 0, 0)).toBe(ERR);
    expect(d.replace(v, 0x1000, 7, 0, 0)).toBe(OK);
    expect(d.lookup(4, 0x1000)).toBe(-1);
    expect(d.replace(v, 16, 7, 0x1000, PTE | RO)).toBe(ERR); // no replace with contains_pte
    expect(d.creates).toBe(2);
    expect(d.replaces).toBe(1);
  });

  it("moves the entry at new_addr on replace, and drops it when the replace fails", () => {
    const v = vcpu();
    const d = new GrantMappingDouble();
    d.create(v, 0x1000, 7, 0);
    d.create(v, 0x2000, 9, 0);
    expect(d.replace(v, 0x1000, 7, 0x3000, 0)).toBe(ERR); // nothing at new_addr
    expect(d.replace(v, 0x1000, 7, 0x2000, 0)).toBe(OK);
    expect([d.lookup(4, 0x1000), d.lookup(4, 0x2000)]).toEqual([9, -1]);
    d.create(v, 0x4000, 5, 0);
    expect(d.replace(v, 0x5000, 7, 0x4000, 0)).toBe(ERR);
    expect(d.lookup(4, 0x4000)).toBe(-1);
    d.flushTlb(v.domain);
    expect(d.flushes).toBe(1);
    d.forget(4);
    expect(d.lookup(4, 0x1000)).toBe(-1);
  });
});
