import {
  __HYPERVISOR_sched_op,
  __HYPERVISOR_vcpu_op,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOSYS,
  EPERM,
  ESRCH,
  RUNSTATE_blocked,
  RUNSTATE_offline,
  RUNSTATE_runnable,
  RUNSTATE_running,
  SCHEDOP_block,
  SCHEDOP_poll,
  SCHEDOP_remote_shutdown,
  SCHEDOP_shutdown,
  SCHEDOP_yield,
  SHUTDOWN_crash,
  SHUTDOWN_poweroff,
  VCPUOP_down,
  VCPUOP_get_runstate_info,
  VCPUOP_initialise,
  VCPUOP_is_up,
  VCPUOP_up,
  VIRQ_DOM_EXC,
  vcpu_guest_context_x86_64,
} from "@hyperlab/abi";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import {
  burnCpu,
  computeThenBlock,
  createHypervisor,
  HyperlabError,
  type Plugin,
  SCHEDULER_NAMES,
  schedCredit,
  schedRr,
  schedulerByName,
} from "../src/index";

const MS = 1_000_000;

function boot(sched: Plugin | string = "credit", cpus = 1) {
  const machine = createMachine({ ramBytes: 16 << 20, cpus, seed: 7 });
  const plugin = typeof sched === "string" ? schedulerByName(sched) : sched;
  const hv = createHypervisor({ machine, plugins: [plugin] }).boot();
  const sched_ = hv.slot("sched");
  const dom = (vcpus = 1, domid?: number) => {
    const d = hv.createDomain({ domid, maxVcpus: vcpus, maxPages: 16 });
    hv.unpauseDomain(d);
    for (const v of d.vcpus) sched_.vcpuUp(v);
    return d;
  };
  return { hv, machine, sched: sched_, clock: machine.clock, dom };
}

const op = (cmd: number, rest: object = {}) => ({ cmd, ...rest });

describe("choosing a scheduler", () => {
  it("builds each scheduler by its sched= name", () => {
    for (const name of SCHEDULER_NAMES) {
      const { sched, hv } = boot(name);
      expect(sched.name).toBe(name);
      expect(hv.describe().slots.sched).toBe(`sched-${name}`);
    }
  });

  it("rejects an unknown name and bad options with a HyperlabError", () => {
    expect(() => schedulerByName("sedf")).toThrow(HyperlabError);
    expect(() => schedulerByName("sedf")).toThrow(/credit, credit2, rr/);
    expect(() => schedCredit({ tsliceMs: -1 })).toThrow(/tsliceMs/);
    expect(() => schedulerByName("credit2", { runqueue: "socket" as never })).toThrow(/runqueue/);
    expect(() => schedRr({ sliceMs: Number.NaN })).toThrow(/sliceMs/);
    const machine = createMachine({ ramBytes: 16 << 20, cpus: 1, seed: 1 });
    expect(() =>
      createHypervisor({ machine, plugins: [schedCredit({ contextSwitchNs: -5 })] }).boot(),
    ).toThrow(/contextSwitchNs/);
  });
});

describe("runstates and accounting", () => {
  it("runs a single burner all the time and accounts every nanosecond to some runstate", () => {
    const { sched, clock, dom } = boot("credit");
    const d = dom(2);
    sched.vcpuDown(d.vcpus[1]);
    clock.runUntil(100 * MS);
    const rs = sched.runstate(d.vcpus[0]);
    expect(rs.state).toBe(RUNSTATE_running);
    expect(rs.time.reduce((a, b) => a + b, 0)).toBe(100 * MS);
    expect(sched.vcpuRuntime(d.vcpus[0])).toBeGreaterThan(99 * MS);
    expect(sched.runstate(d.vcpus[1]).state).toBe(RUNSTATE_offline);
    expect(d.vcpus[1].state).toBe("offline");
    expect(sched.domainRuntime(d)).toBe(sched.vcpuRuntime(d.vcpus[0]));
    expect(sched.curr(0)).toBe(d.vcpus[0]);
  });

  it("counts context switches and charges their cost to nobody", () => {
    const { hv, sched, clock, dom } = boot(schedCredit({ contextSwitchNs: 5000 }));
    const a = dom();
    const b = dom();
    clock.runUntil(300 * MS);
    const switches = hv.stats.read("sched-credit", "context_switches")!;
    expect(switches).toBeGreaterThan(5);
    const used = sched.domainRuntime(a) + sched.domainRuntime(b);
    expect(used + switches * 5000).toBeCloseTo(300 * MS, -4);
    expect(hv.stats.read("sched-credit", "decisions")).toBeGreaterThan(switches);
  });

  it("runs two burners on two pCPUs in parallel and steals work to an idle pCPU", () => {
    const { sched, clock, dom } = boot("credit", 2);
    const a = dom();
    const b = dom();
    clock.runUntil(100 * MS);
    expect(sched.domainRuntime(a)).toBeGreaterThan(95 * MS);
    expect(sched.domainRuntime(b)).toBeGreaterThan(95 * MS);
    expect(a.vcpus[0].processor).not.toBe(b.vcpus[0].processor);
  });

  it("does not run paused domains, and runs them once unpaused", () => {
    const { hv, sched, clock } = boot("rr");
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
    clock.runUntil(50 * MS);
    expect(sched.vcpuRuntime(d.vcpus[0])).toBe(0);
    hv.unpauseDomain(d);
    clock.runUntil(100 * MS);
    expect(sched.vcpuRuntime(d.vcpus[0])).toBeGreaterThan(30 * MS);
    hv.pauseDomain(d);
    const before = sched.vcpuRuntime(d.vcpus[0]);
    clock.runUntil(200 * MS);
    expect(sched.vcpuRuntime(d.vcpus[0]) - before).toBeLessThanOrEqual(30 * MS);
    expect(sched.curr(0)).toBeNull();
  });

  it("stops scheduling a destroyed domain", () => {
    const { hv, sched, clock, dom } = boot("credit2");
    const a = dom();
    const b = dom();
    clock.runUntil(20 * MS);
    hv.destroyDomain(a);
    clock.runUntil(40 * MS);
    const t = sched.domainRuntime(b);
    clock.runUntil(140 * MS);
    expect(sched.domainRuntime(b) - t).toBeGreaterThan(99 * MS);
    expect(() => sched.domainRuntime(a)).toThrow(HyperlabError);
  });
});

describe("SCHEDOP_*", () => {
  it("blocks a vCPU until it is woken, and keeps it running if events wait", () => {
    const { hv, sched, clock, dom } = boot("credit");
    const d = dom();
    const v = d.vcpus[0];
    clock.runUntil(MS);
    expect(hv.hypercall(v, __HYPERVISOR_sched_op, op(SCHEDOP_block))).toBe(0);
    clock.runUntil(2 * MS);
    expect(v.state).toBe("blocked");
    expect(sched.runstate(v).state).toBe(RUNSTATE_blocked);
    sched.vcpuKick(v);
    clock.runUntil(3 * MS);
    expect(v.state).toBe("running");
    expect(sched.wakeLatency(v).count).toBe(1);
    // With an event source that reports pending events, SCHEDOP_block returns at once.
    let enabled = 0;
    sched.setEventSource({
      localEventsNeedDelivery: () => true,
      localEventDeliveryEnable: () => enabled++,
      portPoll: () => 0,
      sendGlobalVirq: () => {},
    });
    expect(hv.hypercall(v, __HYPERVISOR_sched_op, op(SCHEDOP_block))).toBe(0);
    clock.runUntil(4 * MS);
    expect(v.state).toBe("running");
    expect(enabled).toBe(1);
  });

  it("yields to another runnable vCPU, and keeps running when alone", () => {
    const { hv, sched, clock, dom } = boot(schedCredit({ ratelimitUs: 0 }));
    const a = dom();
    clock.runUntil(MS);
    expect(hv.hypercall(a.vcpus[0], __HYPERVISOR_sched_op, op(SCHEDOP_yield))).toBe(0);
    clock.runUntil(2 * MS);
    expect(sched.curr(0)).toBe(a.vcpus[0]);
    const b = dom();
    clock.runUntil(3 * MS);
    const cur = sched.curr(0)!;
    const other = cur === a.vcpus[0] ? b.vcpus[0] : a.vcpus[0];
    hv.hypercall(cur, __HYPERVISOR_sched_op, op(SCHEDOP_yield));
    clock.runUntil(4 * MS);
    expect(sched.curr(0)).toBe(other);
  });

  it("polls: fails on bad arguments and ports never allocated, wakes on the port or the timeout", () => {
    const { hv, sched, clock, dom } = boot("credit");
    const d = dom();
    const v = d.vcpus[0];
    clock.runUntil(MS);
    const poll = (a: object) => hv.hypercall(v, __HYPERVISOR_sched_op, op(SCHEDOP_poll, a));
    expect(poll({ ports: [1], nr_ports: 129, timeout: 0 })).toBe(-EINVAL);
    expect(poll({ ports: [1], nr_ports: -1, timeout: 0 })).toBe(-EINVAL);
    expect(poll({ ports: "x", nr_ports: 1, timeout: 0 })).toBe(-EFAULT);
    expect(poll({ ports: [], nr_ports: 1, timeout: 0 })).toBe(-EFAULT);
    expect(poll({ ports: [1], nr_ports: 1, timeout: "soon" })).toBe(-EFAULT);
    expect(poll({ ports: [1.5], nr_ports: 1, timeout: 0 })).toBe(-EFAULT);
    // No event channels: every port is one never allocated.
    expect(poll({ ports: [3], nr_ports: 1, timeout: 0 })).toBe(-EINVAL);
    const pending = new Set<number>();
    sched.setEventSource({
      localEventsNeedDelivery: () => false,
      localEventDeliveryEnable: () => {},
      portPoll: (_d, p) => (p === 99 ? -EINVAL : pending.has(p) ? 1 : 0),
      sendGlobalVirq: () => {},
    });
    expect(poll({ ports: [5, 99], nr_ports: 2, timeout: 0 })).toBe(-EINVAL);
    expect(v.state).toBe("running");
    pending.add(5);
    expect(poll({ ports: [5], nr_ports: 1, timeout: 0 })).toBe(0);
    expect(sched.isPolling(v)).toBe(false);
    pending.clear();
    expect(poll({ ports: [5], nr_ports: 1, timeout: 0 })).toBe(0);
    expect(sched.isPolling(v)).toBe(true);
    clock.runUntil(clock.now + MS);
    expect(v.state).toBe("blocked");
    sched.checkPollers(d, 6);
    expect(sched.isPolling(v)).toBe(true);
    sched.checkPollers(d, 5);
    expect(sched.isPolling(v)).toBe(false);
    clock.runUntil(clock.now + MS);
    expect(v.state).toBe("running");
    // With a timeout, the vCPU wakes by itself.
    expect(poll({ ports: [5, 6], nr_ports: 2, timeout: clock.now + 5 * MS })).toBe(0);
    clock.runUntil(clock.now + 4 * MS);
    expect(v.state).toBe("blocked");
    clock.runUntil(clock.now + 2 * MS);
    expect(v.state).toBe("running");
  });

  it("shuts down its own domain and raises VIRQ_DOM_EXC", () => {
    const { hv, sched, clock, dom } = boot("credit");
    const d = dom();
    const virqs: number[] = [];
    sched.setEventSource({
      localEventsNeedDelivery: () => false,
      localEventDeliveryEnable: () => {},
      portPoll: () => 0,
      sendGlobalVirq: (virq) => virqs.push(virq),
    });
    clock.runUntil(MS);
    expect(
      hv.hypercall(d.vcpus[0], __HYPERVISOR_sched_op, op(SCHEDOP_shutdown, { reason: "x" })),
    ).toBe(-EFAULT);
    expect(
      hv.hypercall(
        d.vcpus[0],
        __HYPERVISOR_sched_op,
        op(SCHEDOP_shutdown, { reason: SHUTDOWN_poweroff }),
      ),
    ).toBe(0);
    expect(d.state).toBe("shutdown");
    expect(d.shutdownCode).toBe(SHUTDOWN_poweroff);
    expect(virqs).toEqual([VIRQ_DOM_EXC]);
    clock.runUntil(2 * MS);
    expect(sched.curr(0)).toBeNull();
    const t = sched.domainRuntime(d);
    clock.runUntil(50 * MS);
    expect(sched.domainRuntime(d)).toBe(t);
  });

  it("lets only a privileged domain or the target's device model shut another down", () => {
    const { hv, dom } = boot("credit");
    const dom0 = dom(1, 0);
    const a = dom();
    const b = dom();
    const rs = (from: typeof a, domid: unknown, reason: unknown = SHUTDOWN_crash) =>
      hv.hypercall(
        from.vcpus[0],
        __HYPERVISOR_sched_op,
        op(SCHEDOP_remote_shutdown, { domain_id: domid, reason }),
      );
    expect(rs(a, b.domid)).toBe(-EPERM);
    expect(rs(a, 999)).toBe(-ESRCH);
    expect(rs(a, "1")).toBe(-EFAULT);
    expect(rs(a, b.domid, null)).toBe(-EFAULT);
    expect(b.state).toBe("running");
    a.target = b.domid;
    expect(rs(a, b.domid)).toBe(0);
    expect(b.state).toBe("shutdown");
    expect(b.shutdownCode).toBe(SHUTDOWN_crash);
    expect(rs(dom0, a.domid)).toBe(0);
    expect(a.state).toBe("shutdown");
  });

  it("answers -ENOSYS for sched_op sub-ops it does not model", () => {
    const { hv, dom } = boot("credit");
    const d = dom();
    expect(hv.hypercall(d.vcpus[0], __HYPERVISOR_sched_op, op(6))).toBe(-ENOSYS);
  });
});

describe("VCPUOP_up/down/is_up/get_runstate_info", () => {
  it("brings vCPUs up and down and reports their runstate", () => {
    const { hv, sched, clock } = boot("credit", 2);
    const d = hv.createDomain({ maxVcpus: 2, maxPages: 16 });
    hv.unpauseDomain(d);
    const [v0, v1] = d.vcpus;
    const call = (cmd: number, a: object) => hv.hypercall(v0, __HYPERVISOR_vcpu_op, op(cmd, a));
    expect(call(VCPUOP_is_up, { vcpuid: 1 })).toBe(0);
    expect(call(VCPUOP_is_up, { vcpuid: 0 })).toBe(1);
    expect(call(VCPUOP_up, { vcpuid: 7 })).toBe(-ENOENT);
    expect(call(VCPUOP_up, { vcpuid: "1" })).toBe(-EFAULT);
    // Xen: no VCPUOP_up before VCPUOP_initialise gave the vCPU a context.
    expect(call(VCPUOP_up, { vcpuid: 1 })).toBe(-EINVAL);
    expect(call(VCPUOP_is_up, { vcpuid: 1 })).toBe(0);
    const ctxt = new Uint8Array(vcpu_guest_context_x86_64.sizeof);
    expect(call(VCPUOP_initialise, { vcpuid: 1, ctxt })).toBe(0);
    expect(call(VCPUOP_up, { vcpuid: 1 })).toBe(0);
    expect(call(VCPUOP_is_up, { vcpuid: 1 })).toBe(1);
    clock.runUntil(10 * MS);
    expect(v1.state).toBe("running");
    expect(call(VCPUOP_down, { vcpuid: 1 })).toBe(0);
    clock.runUntil(20 * MS);
    expect(v1.state).toBe("offline");
    const a: Record<string, unknown> = { cmd: VCPUOP_get_runstate_info, vcpuid: 1 };
    expect(hv.hypercall(v0, __HYPERVISOR_vcpu_op, a)).toBe(0);
    expect(a.state).toBe(RUNSTATE_offline);
    const time = a.time as number[];
    expect(time.reduce((x, y) => x + y, 0)).toBe(20 * MS);
    expect(time[RUNSTATE_running]).toBeGreaterThan(9 * MS);
    expect(call(VCPUOP_get_runstate_info, { vcpuid: 9 })).toBe(-ENOENT);
    expect(sched.runstate(v0).time[RUNSTATE_runnable]).toBe(0);
  });
});

describe("parameters and synthetic work", () => {
  it("checks weights and caps", () => {
    const { sched, dom, hv } = boot("credit");
    const d = dom();
    expect(sched.getParams(d)).toEqual({ weight: 256, cap: 0 });
    sched.setParams(d, { weight: 512, cap: 50 });
    expect(sched.getParams(d)).toEqual({ weight: 512, cap: 50 });
    expect(() => sched.setParams(d, { weight: 0 })).toThrow(/weight/);
    expect(() => sched.setParams(d, { weight: 1.5 })).toThrow(HyperlabError);
    expect(() => sched.setParams(d, { cap: 101 })).toThrow(/cap/);
    expect(() => sched.setParams(d, { cap: -1 })).toThrow(/cap/);
    const other = createHypervisor({
      machine: createMachine({ ramBytes: 16 << 20, cpus: 1, seed: 1 }),
      plugins: [schedCredit()],
    }).boot();
    const foreign = other.createDomain({ maxVcpus: 1, maxPages: 4 });
    expect(() => sched.getParams(foreign)).toThrow(/not scheduled/);
    expect(() => sched.runstate(foreign.vcpus[0])).toThrow(HyperlabError);
    hv.destroyDomain(d);
    expect(() => sched.setParams(d, { weight: 5 })).toThrow(HyperlabError);
  });

  it("runs work for exactly its CPU time, across preemption", () => {
    const { hv, sched, clock, dom } = boot("credit");
    const a = dom();
    const b = dom();
    let doneAt = -1;
    let ranAtDone = -1;
    sched.setWork(a.vcpus[0], 50 * MS, (v) => {
      doneAt = clock.now;
      ranAtDone = sched.vcpuRuntime(v);
    });
    burnCpu(hv, b.vcpus[0]);
    clock.runUntil(500 * MS);
    expect(ranAtDone).toBe(50 * MS);
    expect(doneAt).toBeGreaterThan(80 * MS);
    expect(() => sched.setWork(a.vcpus[0], -1, () => {})).toThrow(/setWork/);
    expect(() => computeThenBlock(hv, a.vcpus[0], Number.NaN)).toThrow(HyperlabError);
    sched.setWork(a.vcpus[0], 10 * MS, () => {
      throw new Error("cleared work must not run");
    });
    sched.clearWork(a.vcpus[0]);
    clock.runUntil(600 * MS);
  });

  it("computes then blocks until woken (computeThenBlock)", () => {
    const { hv, sched, clock, dom } = boot("credit");
    const d = dom();
    let blocks = 0;
    computeThenBlock(hv, d.vcpus[0], 2 * MS, () => blocks++);
    clock.runUntil(10 * MS);
    expect(blocks).toBe(1);
    expect(d.vcpus[0].state).toBe("blocked");
    sched.vcpuKick(d.vcpus[0]);
    clock.runUntil(20 * MS);
    expect(blocks).toBe(2);
    expect(sched.vcpuRuntime(d.vcpus[0])).toBe(4 * MS);
  });

  it("throws a HyperlabError for a pCPU that does not exist", () => {
    const { sched } = boot("rr");
    expect(() => sched.schedule(3)).toThrow(/pCPU 3/);
  });
});
