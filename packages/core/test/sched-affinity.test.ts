/*
 * Hard and soft affinity (XEN_DOMCTL_setvcpuaffinity): a vCPU never runs on a pCPU outside
 * its hard mask, whatever a hostile guest and toolstack do; a mask that names no online pCPU
 * is refused with -EINVAL; soft affinity is only a preference.
 */
import { __HYPERVISOR_sched_op, EINVAL, SCHEDOP_block, SCHEDOP_yield } from "@hyperlab/abi";
import { createMachine } from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  burnCpu,
  createHypervisor,
  isHyperlabError,
  SCHEDULER_NAMES,
  type SchedService,
  schedulerByName,
  type Vcpu,
} from "../src/index";

const MS = 1_000_000;
const LONG = process.env.HYPERLAB_LONG !== undefined;

function system(name: string, cpus: number) {
  const machine = createMachine({ ramBytes: 32 << 20, cpus, seed: 5 });
  const hv = createHypervisor({ machine, plugins: [schedulerByName(name)] }).boot();
  const sched = hv.slot("sched");
  const burners = (n: number) => {
    const d = hv.createDomain({ maxVcpus: n, maxPages: 16 });
    hv.unpauseDomain(d);
    for (const v of d.vcpus) burnCpu(hv, v);
    return d;
  };
  return { hv, sched, clock: machine.clock, burners };
}

/**
 * Wraps the scheduler's decision so that `check(cpu)` runs after every one of them, the ones
 * its softirqs and timers make included (they call the instance's `schedule`).
 */
function watchDecisions(sched: SchedService, check: (cpu: number) => void): { count: number } {
  const seen = { count: 0 };
  const decide = sched.schedule.bind(sched);
  (sched as { schedule: (cpu: number) => void }).schedule = (cpu) => {
    decide(cpu);
    seen.count++;
    check(cpu);
  };
  return seen;
}

describe.each(SCHEDULER_NAMES)("%s: hard affinity", (name) => {
  it("runs a pinned vCPU only on the pCPUs of its mask, and moves a running one off at once", () => {
    const { sched, clock, burners } = system(name, 3);
    const d = burners(3);
    const [v0, v1, v2] = d.vcpus as [Vcpu, Vcpu, Vcpu];
    expect(sched.setAffinity(v0, [2])).toBe(0);
    expect(sched.setAffinity(v1, [0, 1])).toBe(0);
    const cpusSeen = new Map<Vcpu, Set<number>>([
      [v0, new Set()],
      [v1, new Set()],
      [v2, new Set()],
    ]);
    watchDecisions(sched, (cpu) => {
      const cur = sched.curr(cpu);
      if (cur !== null) cpusSeen.get(cur)?.add(cpu);
    });
    clock.runUntil(500 * MS);
    expect([...cpusSeen.get(v0)!]).toEqual([2]);
    expect([...cpusSeen.get(v1)!].every((c) => c === 0 || c === 1)).toBe(true);
    for (const v of d.vcpus) expect(sched.vcpuRuntime(v)).toBeGreaterThan(100 * MS);
    // Pin v0 away from the pCPU it runs on: it leaves at that pCPU's next decision.
    const at = v0.processor;
    expect(sched.curr(at)).toBe(v0);
    expect(sched.setAffinity(v0, [0])).toBe(0);
    clock.runUntil(clock.now);
    expect(sched.curr(at)).not.toBe(v0);
    const before = sched.vcpuRuntime(v0);
    cpusSeen.get(v0)!.clear();
    clock.runUntil(clock.now + 500 * MS);
    expect([...cpusSeen.get(v0)!]).toEqual([0]);
    expect(sched.vcpuRuntime(v0)).toBeGreaterThan(before + 50 * MS);
    expect(sched.affinity(v0)).toEqual({ hard: [0], soft: [0, 1, 2] });
  });

  it("answers -EINVAL, changing nothing, for a mask with no online pCPU or that is not a mask", () => {
    const { sched, burners } = system(name, 2);
    const v = burners(1).vcpus[0]!;
    expect(sched.setAffinity(v, [1])).toBe(0);
    const bad: unknown[] = [[], [2], [5, 64, 1023], [-1], [0.5], ["0"], [Number.NaN], "0-1", null];
    for (const mask of bad) {
      if (mask === null) continue;
      expect(sched.setAffinity(v, mask as number[])).toBe(-EINVAL);
      expect(sched.setAffinity(v, null, mask as number[])).toBe(
        Array.isArray(mask) && mask.every((c) => Number.isInteger(c) && (c as number) >= 0)
          ? 0 // an empty soft mask is allowed: it only means no preference
          : -EINVAL,
      );
    }
    // A bad soft mask refuses the hard one given with it too.
    expect(sched.setAffinity(v, [0], [-3])).toBe(-EINVAL);
    expect(sched.affinity(v).hard).toEqual([1]);
    // pCPUs beyond the machine are dropped, as bits beyond nr_cpu_ids are.
    expect(sched.setAffinity(v, [0, 7, 9])).toBe(0);
    expect(sched.affinity(v).hard).toEqual([0]);
    expect(sched.setAffinity(v, null, [1, 40])).toBe(0);
    expect(sched.affinity(v)).toEqual({ hard: [0], soft: [1] });
  });

  it("throws a typed error for a vCPU from another hypervisor", () => {
    const a = system(name, 1);
    const b = system(name, 1);
    const v = b.burners(1).vcpus[0]!;
    a.burners(1);
    let err: unknown;
    try {
      a.sched.setAffinity({ ...v, uid: 999 } as Vcpu, [0]);
    } catch (e) {
      err = e;
    }
    expect(isHyperlabError(err, ["SCHED_UNKNOWN_VCPU"])).toBe(true);
    expect(() => a.sched.affinity({ ...v } as Vcpu)).toThrow(/does not belong/);
  });
});

describe("soft affinity is a preference", () => {
  it("moves a running vCPU to an idle pCPU it prefers, and places it there when it wakes", () => {
    for (const name of SCHEDULER_NAMES) {
      const { hv, sched, clock } = system(name, 4);
      const d = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
      const v = d.vcpus[0]!;
      hv.unpauseDomain(d);
      burnCpu(hv, v);
      clock.runUntil(10 * MS);
      expect(sched.curr(0)).toBe(v);
      expect(sched.setAffinity(v, null, [3])).toBe(0);
      clock.runUntil(20 * MS);
      expect(sched.curr(3)).toBe(v);
      expect(hv.hypercall(v, __HYPERVISOR_sched_op, { cmd: SCHEDOP_block })).toBe(0);
      clock.runUntil(30 * MS);
      v.processor = 0; // as if it last ran on pCPU 0: waking, it goes back to pCPU 3
      sched.vcpuKick(v);
      clock.runUntil(40 * MS);
      expect(sched.curr(3)).toBe(v);
      // Soft outside hard counts for nothing: the vCPU runs where its hard mask lets it.
      expect(sched.setAffinity(v, [1], [3])).toBe(0);
      clock.runUntil(50 * MS);
      expect(sched.curr(1)).toBe(v);
      expect(sched.curr(3)).toBeNull();
    }
  });

  it("credit steals the vCPU that prefers the idle pCPU first (the soft balance step)", () => {
    const { hv, sched, clock } = system("credit", 2);
    const x = hv.createDomain({ maxVcpus: 1, maxPages: 16 }).vcpus[0]!;
    expect(sched.setAffinity(x, [1])).toBe(0);
    hv.unpauseDomain(x.domain);
    burnCpu(hv, x);
    const d = hv.createDomain({ maxVcpus: 4, maxPages: 16 });
    for (const v of d.vcpus) expect(sched.setAffinity(v, [0])).toBe(0);
    hv.unpauseDomain(d);
    for (const v of d.vcpus) burnCpu(hv, v);
    clock.runUntil(MS);
    expect(sched.curr(1)).toBe(x);
    // One of d's vCPUs runs on pCPU 0, three wait there; c, waiting, prefers pCPU 1.
    const c = d.vcpus[3]!;
    for (const v of d.vcpus) expect(sched.setAffinity(v, [0, 1], v === c ? [1] : null)).toBe(0);
    clock.runUntil(clock.now);
    const waiting = d.vcpus.filter((v) => sched.curr(0) !== v);
    expect(waiting).toHaveLength(3);
    expect(waiting).toContain(c);
    expect(waiting.every((v) => v.state === "runnable" && v.processor === 0)).toBe(true);
    // x blocks: pCPU 1 looks for work and its soft step finds c before the others.
    expect(hv.hypercall(x, __HYPERVISOR_sched_op, { cmd: SCHEDOP_block })).toBe(0);
    clock.runUntil(clock.now);
    expect(sched.curr(1)).toBe(c);
  });
});

describe("a hostile guest and toolstack never get a vCPU run outside its hard affinity", () => {
  const cmd = fc.oneof(
    fc.record({
      k: fc.constant("pin" as const),
      v: fc.nat(15),
      hard: fc.option(fc.array(fc.integer({ min: -2, max: 9 }), { maxLength: 5 })),
      soft: fc.option(fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 5 })),
    }),
    fc.record({ k: fc.constant("yield" as const), v: fc.nat(15) }),
    fc.record({ k: fc.constant("block" as const), v: fc.nat(15) }),
    fc.record({ k: fc.constant("kick" as const), v: fc.nat(15) }),
    fc.record({ k: fc.constant("down" as const), v: fc.nat(15) }),
    fc.record({ k: fc.constant("up" as const), v: fc.nat(15) }),
    fc.record({ k: fc.constant("pause" as const), v: fc.nat(15) }),
    fc.record({ k: fc.constant("schedule" as const), cpu: fc.nat(7) }),
    fc.record({ k: fc.constant("run" as const), us: fc.integer({ min: 0, max: 40_000 }) }),
  );
  const arb = fc.record({
    sched: fc.constantFrom(...SCHEDULER_NAMES),
    cpus: fc.integer({ min: 1, max: 4 }),
    doms: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
    cmds: fc.array(cmd, { minLength: 1, maxLength: 120 }),
  });

  it("holds the invariant over every decision, and a pinned vCPU still runs", () => {
    let decisions = 0;
    fc.assert(
      fc.property(arb, (cfg) => {
        const { hv, sched, clock } = system(cfg.sched, cfg.cpus);
        const vcpus: Vcpu[] = [];
        const doms = cfg.doms.map((n) => {
          const d = hv.createDomain({ maxVcpus: n, maxPages: 16 });
          hv.unpauseDomain(d);
          for (const v of d.vcpus) {
            burnCpu(hv, v);
            vcpus.push(v);
          }
          return d;
        });
        // The model: each vCPU's hard mask as the accepted pins left it.
        const model = new Map<Vcpu, Set<number>>(
          vcpus.map((v) => [v, new Set(Array.from({ length: cfg.cpus }, (_, c) => c))]),
        );
        const seen = watchDecisions(sched, (cpu) => {
          const cur = sched.curr(cpu);
          if (cur !== null && !model.get(cur)!.has(cpu)) {
            throw new Error(`vCPU uid ${cur.uid} chosen on pCPU ${cpu} outside its mask`);
          }
          for (let c = 0; c < cfg.cpus; c++) {
            if (c !== cpu && cur !== null) expect(sched.curr(c)).not.toBe(cur);
          }
        });
        const paused = new Set<number>();
        for (const c of cfg.cmds) {
          if (c.k === "run") {
            clock.runUntil(clock.now + c.us * 1000);
            continue;
          }
          if (c.k === "schedule") {
            if (c.cpu < cfg.cpus) sched.schedule(c.cpu);
            continue;
          }
          const v = vcpus[c.v % vcpus.length]!;
          if (c.k === "pin") {
            const valid = (m: number[] | null) =>
              m === null || m.every((x) => Number.isInteger(x) && x >= 0);
            const online = c.hard?.filter((x) => x >= 0 && x < cfg.cpus) ?? [];
            const want =
              !valid(c.hard) || !valid(c.soft) || (c.hard !== null && online.length === 0)
                ? -EINVAL
                : 0;
            expect(sched.setAffinity(v, c.hard, c.soft)).toBe(want);
            if (want === 0 && c.hard !== null) model.set(v, new Set(online));
            expect(sched.affinity(v).hard).toEqual([...model.get(v)!].sort((x, y) => x - y));
          } else if (c.k === "yield") {
            expect(hv.hypercall(v, __HYPERVISOR_sched_op, { cmd: SCHEDOP_yield })).toBe(0);
          } else if (c.k === "block") {
            expect(hv.hypercall(v, __HYPERVISOR_sched_op, { cmd: SCHEDOP_block })).toBe(0);
          } else if (c.k === "kick") sched.vcpuKick(v);
          else if (c.k === "down") sched.vcpuDown(v);
          else if (c.k === "up") sched.vcpuUp(v);
          else {
            const d = v.domain;
            if (paused.has(d.domid)) {
              hv.unpauseDomain(d);
              paused.delete(d.domid);
            } else {
              hv.pauseDomain(d);
              paused.add(d.domid);
            }
          }
        }
        // Everything back up and burning: every vCPU runs, pinned or not.
        for (const d of doms) if (paused.has(d.domid)) hv.unpauseDomain(d);
        for (const v of vcpus) {
          sched.vcpuKick(v);
          burnCpu(hv, v);
        }
        clock.runUntil(clock.now + 10 * MS);
        const ran = vcpus.map((v) => sched.vcpuRuntime(v));
        clock.runUntil(clock.now + 2000 * MS);
        vcpus.forEach((v, i) => {
          expect(sched.vcpuRuntime(v)).toBeGreaterThan(ran[i]!);
        });
        decisions += seen.count;
      }),
      { seed: 42, numRuns: LONG ? 400 : 40 },
    );
    expect(decisions).toBeGreaterThan(10_000);
  });
});
