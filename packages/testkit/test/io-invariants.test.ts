import { EVTCHNSTAT_closed, EVTCHNSTAT_pirq, XENIRQSTAT_shared } from "@hyperlab/abi";
import {
  createHypervisor,
  type Domain,
  type Hypervisor,
  PGC_allocated,
  PGT_l1_page_table,
  PGT_validated,
} from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import {
  assertIomemInvariants,
  assertIrqRoutingInvariants,
  checkIomemInvariants,
  checkIrqRoutingInvariants,
  InvariantError,
} from "../src/index";

/** A hypervisor with no plugins; the irq, evtchn and iomem slots are doubles set per test. */
function world() {
  const machine = createMachine({ ramBytes: 4 << 20, cpus: 1, seed: 1 });
  const real = createHypervisor({ machine, plugins: [] }).boot();
  const d0 = real.createDomain({ domid: 0, maxVcpus: 1, maxPages: 64 });
  const d1 = real.createDomain({ domid: 1, maxVcpus: 1, maxPages: 64 });
  const slots: Record<string, unknown> = {};
  const hv = Object.create(real) as Hypervisor;
  (hv as { slot: unknown }).slot = (name: string) => slots[name];
  return { hv, real, d0, d1, slots, ram: machine.ram };
}

/** An irq slot and an evtchn slot over plain tables: pirq -> {irq, inFlight}, port -> pirq. */
function routing(
  w: ReturnType<typeof world>,
  table: Record<
    number,
    {
      map: Record<number, number>;
      caps: number[];
      ports: Record<number, number>;
      inFlight?: number[];
    }
  >,
  sharers: (irq: number) => number,
  shared: (irq: number) => boolean = (irq) => sharers(irq) > 1,
) {
  const t = (d: Domain) => table[d.domid];
  w.slots.irq = {
    nrPirqs: () => 32,
    pirqStatus: (d: Domain, pirq: number) => {
      const irq = t(d).map[pirq] ?? -1;
      return {
        irq,
        flags: irq >= 0 && shared(irq) ? XENIRQSTAT_shared : 0,
        sharers: irq >= 0 ? sharers(irq) : 0,
        inFlight: (t(d).inFlight ?? []).includes(pirq),
      };
    },
    irqToPirq: (d: Domain, irq: number) => {
      for (const [p, x] of Object.entries(t(d).map)) if (x === irq) return Number(p);
      return -1;
    },
    irqAccessPermitted: (d: Domain, irq: number) => t(d).caps.includes(irq),
  };
  w.slots.evtchn = {
    maxPorts: () => 16,
    portInfo: (d: Domain, port: number) => {
      const pirq = t(d).ports[port];
      return pirq === undefined
        ? { status: EVTCHNSTAT_closed, vcpu: 0, remoteDom: -1, remotePort: 0, irq: -1 }
        : { status: EVTCHNSTAT_pirq, vcpu: 0, remoteDom: -1, remotePort: 0, irq: pirq };
    },
  };
}

describe("interrupt-routing invariants", () => {
  it("hold for dom0 and a domU sharing irq 19, each on its own pirq", () => {
    const w = world();
    routing(
      w,
      {
        0: { map: { 19: 19 }, caps: [19], ports: { 1: 19 }, inFlight: [19] },
        1: { map: { 16: 19 }, caps: [19], ports: { 3: 16 } },
      },
      () => 2,
    );
    expect(checkIrqRoutingInvariants(w.hv)).toEqual([]);
    expect(() => assertIrqRoutingInvariants(w.hv)).not.toThrow();
  });

  it("catch a pirq mapped without irq_caps, a binding without a mapping's owner, and bad counts", () => {
    const w = world();
    routing(
      w,
      {
        // d0 maps irq 5 twice and without caps; d1 is in flight on a pirq it never bound.
        0: { map: { 5: 5, 6: 5 }, caps: [], ports: { 1: 5, 2: 5 } },
        1: { map: { 16: 5 }, caps: [5], ports: {}, inFlight: [16] },
      },
      () => 2,
      () => false,
    );
    const v = checkIrqRoutingInvariants(w.hv);
    expect(v.some((s) => s.includes("without irq_caps"))).toBe(true);
    expect(v.some((s) => s.includes("not inverse"))).toBe(true);
    expect(v.some((s) => s.includes("maps irq 5 twice"))).toBe(true);
    expect(v.some((s) => s.includes("binds pirq 5 on ports 1 and 2"))).toBe(true);
    expect(v.some((s) => s.includes("d1 pirq 16 in flight without a bound port"))).toBe(true);
    expect(v.some((s) => s.includes("2 sharers counted, 2 domains bound"))).toBe(false);
    expect(v.some((s) => s.includes("not reported shared"))).toBe(true);
    try {
      assertIrqRoutingInvariants(w.hv, [w.d0, w.d1]);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InvariantError);
      expect((e as InvariantError).code).toBe("IRQ_ROUTING_INVARIANTS_BROKEN");
    }
  });

  it("catch a sharer count that differs from the bound ports, and an unmapped pirq in flight", () => {
    const w = world();
    routing(
      w,
      {
        0: { map: { 9: 9 }, caps: [9], ports: { 1: 9 }, inFlight: [3] },
        1: { map: {}, caps: [], ports: {} },
      },
      () => 3,
    );
    const v = checkIrqRoutingInvariants(w.hv);
    expect(v).toContain("irq 9: 3 sharers counted, 1 domains bound (0)");
    expect(v).toContain("d0 pirq 3 unmapped but in flight");
  });
});

/** An iomem slot: frames >= ramFrames are MMIO; `caps` per domain; `ro` read-only frames. */
function iomemSlot(w: ReturnType<typeof world>, caps: Record<number, number[]>, ro: number[] = []) {
  const ramFrames = w.ram.bytes / 4096;
  w.slots.iomem = {
    isRam: (m: number) => m < ramFrames,
    isMmioReadOnly: (m: number) => ro.includes(m),
    iomemAccessPermitted: (d: Domain, s: number, e: number) =>
      s === e && (caps[d.domid] ?? []).includes(s),
  };
}

/** Makes a validated L1 of `d` whose entry i is entries[i] (a full lo word with the frame). */
function l1(w: ReturnType<typeof world>, d: Domain, entries: [number, number][]) {
  const t = w.real.allocDomainPages(d);
  for (const [i, [mfn, flags]] of entries.entries())
    w.ram.write64(t * 4096 + i * 8, (mfn % 0x100000) * 4096 + flags, Math.floor(mfn / 0x100000));
  w.real.frames.typeInfo[t] = (PGT_l1_page_table | PGT_validated | 1) >>> 0;
  w.real.frames.countInfo[t] = (PGC_allocated | 1) >>> 0;
  return t;
}

describe("I/O memory invariants", () => {
  const DEV = 0xf0000;
  it("hold for an uncached device mapping the domain was given, and its own RAM", () => {
    const w = world();
    iomemSlot(w, { 1: [DEV] });
    const own = w.real.allocDomainPages(w.d1);
    l1(w, w.d1, [
      [DEV, 0x13], // present, rw, PCD
      [own, 0x3],
    ]);
    expect(checkIomemInvariants(w.hv)).toEqual([]);
    expect(() => assertIomemInvariants(w.hv)).not.toThrow();
  });

  it("catch I/O memory not given, a cached or writable read-only device entry, another domain's RAM", () => {
    const w = world();
    iomemSlot(w, { 1: [DEV + 1] }, [DEV + 1]);
    const dom0Page = w.real.allocDomainPages(w.d0);
    l1(w, w.d1, [
      [DEV, 0x13],
      [DEV + 1, 0x3],
      [dom0Page, 0x213], // dom0's RAM, whatever the software bits say
    ]);
    const v = checkIomemInvariants(w.hv);
    expect(v.some((s) => s.includes(`maps I/O frame ${DEV} it was not given`))).toBe(true);
    expect(v.some((s) => s.includes(`maps I/O frame ${DEV + 1} cached`))).toBe(true);
    expect(v.some((s) => s.includes(`read-only I/O frame ${DEV + 1} writable`))).toBe(true);
    expect(v.some((s) => s.includes(`maps RAM frame ${dom0Page} of d0`))).toBe(true);
    expect(
      checkIomemInvariants(w.hv, { granted: (d, m) => d === 1 && m === dom0Page }).some((s) =>
        s.includes("of d0"),
      ),
    ).toBe(false);
    expect(() => assertIomemInvariants(w.hv)).toThrow(/I\/O memory broken/);
  });
});
