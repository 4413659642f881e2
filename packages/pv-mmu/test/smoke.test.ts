import { describe, expect, it } from "vitest";
import { boot, guest } from "./helpers";

describe("smoke", () => {
  it("builds a domain", () => {
    const w = boot();
    const g = guest(w);
    expect(g.d.vcpus[0].cr3Mfn).toBe(g.b.l4Mfn);
    const v = g.d.vcpus[0];
    expect(w.pv.read(v, g.b.startInfoVa, 4)).toBe(0x2d6e6578);
  });
});
