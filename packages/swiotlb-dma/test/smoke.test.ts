import { describe, expect, it } from "vitest";
import { swiotlbOf } from "../src/index";
import { device, xenBuild } from "./helpers";

describe("smoke", () => {
  it("boots and builds the pool", () => {
    const { kernel } = xenBuild();
    const s = swiotlbOf(kernel);
    expect(s.dmaSupported(device(32), 32)).toBe(true);
    console.log(
      s.poolState,
      s.poolError,
      s.poolDmaBits,
      s.counts,
      Array.from(s.pool.segMaddr).map((x) => x.toString(16)),
    );
    const p2m = kernel.xen!.p2m;
    console.log(Array.from(p2m.slice(0, 20)));
  });
});
