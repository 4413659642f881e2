import { describe, expect, it } from "vitest";
import { type Domain, defineMmuPlugin, type MmuFault, type Vcpu } from "../src/index";
import { bootWith } from "./helpers";

/** A backend that maps nothing and counts what it is asked. */
class CountingMmu {
  readonly kind = "counting";
  readonly fault: MmuFault = { errorCode: 0, va: 0 };
  readonly counts = { translations: 0, flushes: 0 };
  readonly exits = new Float64Array(64);
  readonly destroyed: number[] = [];
  translate(_v: Vcpu, va: number): number {
    this.counts.translations++;
    this.exits[14]++;
    this.fault.va = va;
    return -1;
  }
  flushLocal(): void {
    this.counts.flushes++;
  }
  flushOne(): void {}
}

declare module "../src/index" {
  interface Slots {
    countingMmu: CountingMmu;
  }
}

function plugin(service: boolean) {
  return defineMmuPlugin({
    name: "counting-mmu",
    description: "test backend",
    service: service ? "countingMmu" : undefined,
    create: () => new CountingMmu(),
    counts: (b) => b.counts,
    stats: [
      ["translations", "translations", "accesses", "translations asked"],
      ["flushes", "tlb_flushes", "flushes", "local flushes"],
    ],
    exits: { names: { 14: "INVLPG" }, count: (b, r) => b.exits[r] },
    domainDestroyed: (b, d: Domain) => b.destroyed.push(d.domid),
  });
}

describe("defineMmuPlugin: one wiring for every MMU backend", () => {
  it("fills mmu and the service slot with one object, and publishes live gauges", () => {
    const hv = bootWith([plugin(true)]);
    const mmu = hv.slot("mmu");
    expect(hv.slot("countingMmu")).toBe(mmu);
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 4 });
    mmu.translate(d.vcpus[0], 0x1000, 0);
    mmu.translate(d.vcpus[0], 0x2000, 0);
    mmu.flushLocal(d.vcpus[0]);
    expect(hv.stats.read("counting-mmu", "translations")).toBe(2);
    expect(hv.stats.read("counting-mmu", "tlb_flushes")).toBe(1);
    expect(hv.stats.read("counting-mmu", "exit_INVLPG")).toBe(2);
    hv.destroyDomain(d);
    expect(hv.slot("countingMmu").destroyed).toEqual([d.domid]);
  });

  it("provides only mmu when the backend has no service", () => {
    const p = plugin(false);
    expect(p.provides).toEqual(["mmu"]);
    const hv = bootWith([p]);
    expect(hv.slot("mmu").kind).toBe("counting");
    expect(hv.describe().slots.mmu).toBe("counting-mmu");
  });
});
