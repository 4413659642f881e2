import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { GuestMem, GuestTables, PTE_NX_HI, PTE_P, PTE_PRW, PTE_RW, refWalk } from "../src/index";

function world() {
  const machine = createMachine({ ramBytes: 16 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [] }).boot();
  return { hv, ram: machine.ram };
}

describe("the MMU test harness", () => {
  it("writes tables through its store and the reference walk follows them", () => {
    const w = world();
    const mem = new GuestMem(w, { pages: 16 });
    const stores: number[] = [];
    const t = new GuestTables(mem, {
      store: (gpa, lo, hi) => {
        stores.push(gpa);
        w.ram.write64(gpa, lo, hi);
      },
    });
    const data = mem.alloc();
    t.map(0x40_0000, data, PTE_P | PTE_RW, 1, PTE_NX_HI);
    expect(stores.length).toBe(4); // three new tables and the leaf
    expect(mem.allocated().length).toBe(5);
    expect(refWalk(w.ram, t.cr3, 0x40_0123)).toBe(data * 4096 + 0x123);
    expect(refWalk(w.ram, t.cr3, 0x40_0123, { access: 2 })).toBe(data * 4096 + 0x123);
    expect(refWalk(w.ram, t.cr3, 0x40_0123, { access: 4 })).toBe(-1); // supervisor page
    expect(refWalk(w.ram, t.cr3, 0x40_0123, { access: 16 })).toBe(-1); // NX
    expect(refWalk(w.ram, t.cr3, 0x40_0123, { owns: (f) => f !== data })).toBe(-1);
    t.unmap(0x40_0000);
    expect(refWalk(w.ram, t.cr3, 0x40_0123)).toBe(-1);
  });

  it("maps 2 MiB leaves and 5-level tables", () => {
    const w = world();
    const mem = new GuestMem(w, { pages: 1024, order: 9 });
    const t = new GuestTables(mem, { levels: 5 });
    const big = mem.frames[512];
    t.map(0x20_0000, big, PTE_PRW, 2);
    expect(refWalk(w.ram, t.cr3, 0x20_0000 + 5 * 4096 + 7, { levels: 5 })).toBe(
      (big + 5) * 4096 + 7,
    );
    expect(() => new GuestMem(w, { pages: 1 << 20 })).toThrow(/out of memory/);
  });
});
