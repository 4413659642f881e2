import { describe, expect, it } from "vitest";
import { HyperlabError, Stats } from "../src/index";

describe("stats", () => {
  it("groups counters and gauges with units and descriptions", () => {
    const s = new Stats();
    const g = s.group("pv-mmu");
    const c = g.counter("mmu_updates", "entries", "page-table entries updated");
    let level = 3;
    g.gauge("pinned", "frames", "frames pinned now", () => level);
    c.value += 5;
    level = 4;
    expect(s.group("pv-mmu")).toBe(g);
    expect(s.snapshot()).toEqual({
      "pv-mmu": [
        {
          name: "mmu_updates",
          unit: "entries",
          description: "page-table entries updated",
          value: 5,
        },
        { name: "pinned", unit: "frames", description: "frames pinned now", value: 4 },
      ],
    });
    expect(s.read("pv-mmu", "mmu_updates")).toBe(5);
    expect(s.read("pv-mmu", "nope")).toBeUndefined();
    expect(s.read("nope", "x")).toBeUndefined();
  });

  it("refuses a stat defined twice", () => {
    const g = new Stats().group("x");
    g.counter("a", "u", "d");
    expect(() => g.gauge("a", "u", "d", () => 0)).toThrow(HyperlabError);
  });
});
