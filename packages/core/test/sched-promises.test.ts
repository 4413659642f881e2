/*
 * The scheduler's promises, over long virtual runs: CPU share proportional to weight within
 * 2 %, caps never exceeded, BOOST shortens wake-up latency, and no runnable vCPU starves.
 */
import { RUNSTATE_runnable } from "@hyperlab/abi";
import { createMachine } from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  burnCpu,
  computeThenBlock,
  createHypervisor,
  type Domain,
  type Plugin,
  SCHEDULER_NAMES,
  schedCredit,
  schedulerByName,
} from "../src/index";

const MS = 1_000_000;
const SEC = 1000 * MS;
const LONG = process.env.HYPERLAB_LONG !== undefined;
const report = (...args: unknown[]) => {
  if (process.env.HYPERLAB_REPORT) console.info(...args);
};

function system(plugin: Plugin, cpus: number, seed = 1) {
  const machine = createMachine({ ramBytes: 32 << 20, cpus, seed });
  const hv = createHypervisor({ machine, plugins: [plugin] }).boot();
  const sched = hv.slot("sched");
  const dom = (vcpus: number, weight = 256, cap = 0) => {
    const d = hv.createDomain({ maxVcpus: vcpus, maxPages: 16 });
    sched.setParams(d, { weight, cap });
    hv.unpauseDomain(d);
    for (const v of d.vcpus) burnCpu(hv, v);
    return d;
  };
  return { hv, sched, clock: machine.clock, dom };
}

describe("CPU share is proportional to weight (within 2 %)", () => {
  const cases: { name: string; cpus: number; doms: { vcpus: number; weight: number }[] }[] = [
    {
      name: "two domains 1:2 on one pCPU",
      cpus: 1,
      doms: [
        { vcpus: 1, weight: 256 },
        { vcpus: 1, weight: 512 },
      ],
    },
    {
      name: "three domains 1:2:5 on one pCPU",
      cpus: 1,
      doms: [
        { vcpus: 1, weight: 100 },
        { vcpus: 1, weight: 200 },
        { vcpus: 1, weight: 500 },
      ],
    },
    {
      name: "two 2-vCPU domains 1:3 on two pCPUs",
      cpus: 2,
      doms: [
        { vcpus: 2, weight: 128 },
        { vcpus: 2, weight: 384 },
      ],
    },
    {
      name: "four domains 1:1:2:2 on two pCPUs",
      cpus: 2,
      doms: [
        { vcpus: 1, weight: 100 },
        { vcpus: 1, weight: 100 },
        { vcpus: 1, weight: 200 },
        { vcpus: 1, weight: 200 },
      ],
    },
  ];
  for (const name of ["credit", "credit2"] as const) {
    for (const c of cases) {
      it(`${name}: ${c.name}`, () => {
        const { sched, clock, dom } = system(schedulerByName(name), c.cpus);
        const ds = c.doms.map((x) => dom(x.vcpus, x.weight));
        const run = (LONG ? 300 : 60) * SEC;
        clock.runUntil(run);
        const used = ds.map((d) => sched.domainRuntime(d));
        const total = used.reduce((a, b) => a + b, 0);
        const wsum = c.doms.reduce((a, x) => a + x.weight, 0);
        const errors = ds.map((_, i) => used[i] / total / (c.doms[i].weight / wsum) - 1);
        report(
          name,
          c.name,
          "relative share errors",
          errors.map((e) => `${(e * 100).toFixed(2)}%`).join(" "),
        );
        expect(total).toBeGreaterThan(0.98 * run * c.cpus);
        for (const e of errors) expect(Math.abs(e)).toBeLessThan(0.02);
      });
    }
  }
});

describe("a cap is never exceeded", () => {
  for (const name of SCHEDULER_NAMES) {
    it(`${name}: no cap period sees more than cap% of it, alone or contended`, () => {
      const { sched, clock, dom } = system(schedulerByName(name), 2);
      const capped = dom(2, 512, 50);
      const alone = dom(1, 256, 30);
      const rival = dom(2, 256, 0);
      const period = 10 * MS;
      const t0 = clock.now;
      const last = new Map<Domain, number>([
        [capped, 0],
        [alone, 0],
      ]);
      let worst = 0;
      let checks = 0;
      const end = (LONG ? 60 : 10) * SEC;
      for (let t = t0 + period; t <= end; t += period) {
        clock.runUntil(t);
        for (const [d, before] of last) {
          const now = sched.domainRuntime(d);
          const cap = sched.getParams(d).cap;
          const used = (now - before) / period;
          worst = Math.max(worst, used / (cap / 100));
          expect(now - before).toBeLessThanOrEqual((cap / 100) * period + 1e-6);
          last.set(d, now);
          checks++;
        }
      }
      expect(checks).toBeGreaterThan(1000);
      // Caps bind: the capped domains use close to their cap when CPU is there for them.
      const over = sched.domainRuntime(capped) / (end - t0);
      report(
        name,
        "cap 50%:",
        `${(over * 100).toFixed(1)}%`,
        "worst period / cap:",
        worst.toFixed(3),
      );
      expect(over).toBeLessThanOrEqual(0.5);
      expect(sched.domainRuntime(rival)).toBeGreaterThan(0);
    });
  }
});

describe("BOOST", () => {
  it("credit: a vCPU woken by an event runs sooner with BOOST than without", () => {
    const latency = (boost: boolean) => {
      const { hv, sched, clock, dom } = system(schedCredit({ boost }), 1);
      dom(1);
      dom(1);
      const io = dom(1);
      computeThenBlock(hv, io.vcpus[0], 200_000);
      // An event every 7 ms (what evtchn's vcpuKick does when it raises an upcall).
      const kick = () => {
        sched.vcpuKick(io.vcpus[0]);
        clock.scheduleAfter(7 * MS, kick);
      };
      clock.scheduleAfter(7 * MS, kick);
      clock.runUntil((LONG ? 60 : 10) * SEC);
      const l = sched.wakeLatency(io.vcpus[0]);
      return { mean: l.totalNs / l.count, max: l.maxNs, count: l.count };
    };
    const on = latency(true);
    const off = latency(false);
    report("credit wake-up latency with BOOST", on, "without", off);
    expect(on.count).toBeGreaterThan(1000);
    expect(off.count).toBeGreaterThan(100);
    expect(on.mean).toBeLessThan(off.mean);
    expect(on.max).toBeLessThanOrEqual(off.max);
  });
});

describe("no runnable vCPU starves", () => {
  it("every runnable vCPU runs within a bounded wait, for any mix of weights, caps and work", () => {
    const domArb = fc.record({
      vcpus: fc.integer({ min: 1, max: 3 }),
      weight: fc.integer({ min: 1, max: 1000 }),
      cap: fc.oneof(fc.constant(0), fc.integer({ min: 5, max: 100 })),
      io: fc.boolean(),
      computeUs: fc.integer({ min: 50, max: 20_000 }),
      kickMs: fc.integer({ min: 1, max: 50 }),
    });
    const arb = fc.record({
      sched: fc.constantFrom(...SCHEDULER_NAMES),
      cpus: fc.integer({ min: 1, max: 3 }),
      doms: fc.array(domArb, { minLength: 1, maxLength: 5 }),
    });
    let worstWait = 0;
    fc.assert(
      fc.property(arb, (cfg) => {
        const { hv, sched, clock } = system(schedulerByName(cfg.sched), cfg.cpus);
        const vcpus = [];
        for (const x of cfg.doms) {
          const d = hv.createDomain({ maxVcpus: x.vcpus, maxPages: 16 });
          sched.setParams(d, { weight: x.weight, cap: x.cap });
          hv.unpauseDomain(d);
          for (const v of d.vcpus) {
            vcpus.push(v);
            if (!x.io) {
              burnCpu(hv, v);
              continue;
            }
            computeThenBlock(hv, v, x.computeUs * 1000);
            const kick = () => {
              sched.vcpuKick(v);
              clock.scheduleAfter(x.kickMs * MS, kick);
            };
            clock.scheduleAfter(x.kickMs * MS, kick);
          }
        }
        const end = 3 * SEC;
        for (let t = MS; t <= end; t += MS) {
          clock.runUntil(t);
          for (const v of vcpus) {
            const rs = sched.runstate(v);
            if (rs.state === RUNSTATE_runnable)
              worstWait = Math.max(worstWait, t - rs.stateEntryTime);
          }
        }
        for (const v of vcpus) expect(sched.vcpuRuntime(v)).toBeGreaterThan(0);
        expect(worstWait).toBeLessThan(1 * SEC);
      }),
      { seed: 42, numRuns: LONG ? 300 : 25 },
    );
    report("worst runnable wait (ms):", worstWait / MS);
  });
});
