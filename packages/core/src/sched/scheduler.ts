/*
 * The scheduling core (Xen's xen/common/sched/core.c): per-pCPU current vCPUs, runstates,
 * run-time accounting, caps, SCHEDOP_* and the runstate/up/down VCPUOPs. A Policy (credit,
 * credit2, rr) owns the run queues and makes each decision.
 *
 * Invariants:
 * - A vCPU is current on at most one pCPU (`currUid[cpu] === uid` iff `onCpu[uid] === cpu`);
 *   a current vCPU is never on a run queue.
 * - Runstate times of a vCPU sum to (now - its creation time); exactly one runstate is open.
 * - Run time is charged from `acctFrom[uid]` (switch-in time + context switch cost) to the
 *   moment of accounting, once: every path that stops or inspects a running vCPU calls
 *   account() first.
 * - A capped domain's vCPU runs only on a grant taken from the domain's budget for the current
 *   period; grants are cut at each replenishment, so a period's run time never exceeds
 *   cap% of the period.
 * - Decisions happen in schedule(cpu), run from a clock event (a "softirq") so that no
 *   hypercall re-enters the scheduler.
 * - Hard affinity (Xen's cpu_hard_affinity): a vCPU is chosen to run on a pCPU only if its
 *   hard mask holds that pCPU (`hard[uid * nrCpus + cpu]`), and a queued vCPU sits on a queue
 *   of a pCPU its mask holds; the mask is never empty. Soft affinity is a preference only:
 *   where a waking vCPU is placed, and credit's first balance step.
 */
import {
  __HYPERVISOR_sched_op,
  __HYPERVISOR_vcpu_op,
  EFAULT,
  EINVAL,
  ENOENT,
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
  VCPUOP_down,
  VCPUOP_get_runstate_info,
  VCPUOP_is_up,
  VCPUOP_up,
  VIRQ_DOM_EXC,
} from "@hyperlab/abi";
import type { Clock } from "@hyperlab/machine";
import type { Domain, Vcpu, VcpuState } from "../domain";
import { HyperlabError } from "../errors";
import type { Hypervisor, SetupContext } from "../hypervisor";
import type { Counter } from "../stats";
import { PVCLOCK_CALIBRATION_NS } from "../time";
import type { VcpuAreas } from "../vcpu-op";
import type { SchedErrorCode } from "./errors";
import { RunQueues } from "./runq";
import type { EventSource, RunstateInfo, SchedParams, SchedService, WakeLatency } from "./types";

/** Xen's default domain weight. */
export const SCHED_DEFAULT_WEIGHT = 256;
/** Most ports one SCHEDOP_poll may name (Xen's "fairly arbitrary limit"). */
export const SCHED_POLL_MAX_PORTS = 128;

const STATE_NAMES: readonly VcpuState[] = ["running", "runnable", "blocked", "offline"];
const NO_TIMER = 0;
/** Shortest run the core arms a timer for: below it, budgets count as spent and slices round up. */
const MIN_RUN_NS = 1;

/** Options shared by every policy. */
export interface SchedCoreOptions {
  /** Time a pCPU spends switching from one vCPU to another, ns (default 1000). */
  contextSwitchNs?: number;
  /** Period of each pCPU's tick, ns (default 10 ms, Xen credit's tick). */
  tickNs?: number;
  /** Budget replenishment period for caps, ns (default 10 ms, as credit2). */
  capPeriodNs?: number;
}

/** A scheduling policy: owns the run queues and makes each decision. */
export interface Policy {
  readonly name: string;
  /** Number of run queues it needs (the core allocates them). */
  queues(nrCpus: number): number;
  attach(core: SchedCore): void;
  /** A new vCPU exists (offline or runnable, not queued yet). */
  addVcpu(uid: number): void;
  /** Puts a vCPU that became runnable on a queue; returns the pCPU to reschedule, or -1. */
  wake(uid: number, boostable: boolean): number;
  /** A queued vCPU that could not run was let run again (budget back): pCPU to poke, or -1. */
  tickle(uid: number): number;
  /** Takes a vCPU off its queue (it blocked, went down, or its domain died). */
  sleep(uid: number): void;
  /** SCHEDOP_yield from a running vCPU. */
  yield(uid: number): void;
  /** Charges `ns` of run time to a vCPU. */
  burn(uid: number, ns: number, now: number): void;
  /**
   * Xen's do_schedule for one pCPU: `prev` (-1 if idle) has been charged; `requeue` says
   * whether it still wants to run. Returns the vCPU to run (off every queue) or -1, and sets
   * `core.slice` (ns) for it. A vCPU that core.eligible() rejects must not be chosen.
   */
  pick(cpu: number, now: number, prev: number, requeue: boolean): number;
  /** The pCPU's periodic tick. */
  tick(cpu: number, now: number): void;
  /** A domain's weight changed. */
  paramsChanged(slot: number): void;
}

export class SchedCore implements SchedService {
  readonly hv: Hypervisor;
  readonly clock: Clock;
  readonly policy: Policy;
  readonly nrCpus: number;
  readonly rq: RunQueues;
  readonly switchNs: number;
  readonly tickNs: number;
  readonly capPeriodNs: number;
  /** Set by Policy.pick: how long the chosen vCPU may run. */
  slice = 0;
  /** Where the runstate areas and PV clocks live (owned by the hypervisor). */
  private readonly areas: VcpuAreas;

  // per pCPU
  readonly currUid: Int32Array;
  readonly softirq: Uint8Array;
  private readonly sliceTimer: Float64Array;
  /** When the current vCPU was switched in (or kept running). */
  readonly runStart: Float64Array;
  private readonly softirqCb: ((now: number) => void)[] = [];
  private readonly tickCb: ((now: number) => void)[] = [];
  private readonly sliceCb: ((now: number) => void)[] = [];

  // per vCPU (uid)
  private cap = 0;
  onCpu = new Int32Array(0);
  dom = new Int32Array(0);
  private rsState = new Uint8Array(0);
  private rsEntry = new Float64Array(0);
  private rsTime = new Float64Array(0);
  private runtime = new Float64Array(0);
  acctFrom = new Float64Array(0);
  blocked = new Uint8Array(0);
  down = new Uint8Array(0);
  private polling = new Uint8Array(0);
  private pollPort = new Int32Array(0);
  private pollTimer = new Float64Array(0);
  private workLeft = new Float64Array(0);
  private workTimer = new Float64Array(0);
  private workCb: (((v: Vcpu) => void) | undefined)[] = [];
  private wakeAt = new Float64Array(0);
  private latCount = new Float64Array(0);
  private latTotal = new Float64Array(0);
  private latMax = new Float64Array(0);
  private grant = new Float64Array(0);
  parked = new Uint8Array(0);
  /** Hard affinity, one byte per (vCPU, pCPU): `hard[uid * nrCpus + cpu]`. */
  hard = new Uint8Array(0);
  /** Soft affinity, laid out as `hard`. */
  soft = new Uint8Array(0);
  /** Xen's has_soft_affinity: the soft mask meets the hard one and does not cover it. */
  softEff = new Uint8Array(0);
  /** Xen's _VPF_migrating: affinity changed while running; re-placed at the next decision. */
  migrating = new Uint8Array(0);
  /** A vCPU this decision moved to another pCPU's queue: no queue of this pCPU may take it back. */
  movedAway = -1;
  /** How many vCPUs have softEff set (credit skips its soft balance step when none does). */
  nrSoftEff = 0;
  /** Scratch masks for setAffinity (Xen's cpumask_scratch), one byte per pCPU. */
  private readonly scratchHard: Uint8Array;
  private readonly scratchSoft: Uint8Array;

  // per domain slot
  private domCap = 0;
  readonly slotOf = new Map<number, number>();
  domains: (Domain | undefined)[] = [];
  weight = new Float64Array(0);
  capPct = new Float64Array(0);
  private pool = new Float64Array(0);
  private domRuntime = new Float64Array(0);
  private capTimer = NO_TIMER;

  private events: EventSource = {
    localEventsNeedDelivery: () => false,
    localEventDeliveryEnable: () => {},
    portPoll: () => -EINVAL,
    sendGlobalVirq: () => {},
  };

  // stats
  private readonly cSwitches: Counter;
  private readonly cDecisions: Counter;
  private readonly cWakeups: Counter;
  readonly cMigrations: Counter;
  private readonly cSwitchNs: Counter;

  constructor(ctx: SetupContext, policy: Policy, options: SchedCoreOptions = {}) {
    this.hv = ctx.hv;
    this.clock = ctx.hv.machine.clock;
    this.policy = policy;
    this.nrCpus = ctx.hv.machine.cpus.length;
    this.switchNs = checkNs(options.contextSwitchNs ?? 1000, "contextSwitchNs", true);
    this.tickNs = checkNs(options.tickNs ?? 10_000_000, "tickNs", false);
    this.capPeriodNs = checkNs(options.capPeriodNs ?? 10_000_000, "capPeriodNs", false);
    this.rq = new RunQueues(policy.queues(this.nrCpus));
    this.areas = ctx.hv.vcpuAreas;
    const n = this.nrCpus;
    this.currUid = new Int32Array(n).fill(-1);
    this.softirq = new Uint8Array(n);
    this.sliceTimer = new Float64Array(n);
    this.runStart = new Float64Array(n);
    this.scratchHard = new Uint8Array(n);
    this.scratchSoft = new Uint8Array(n);
    for (let cpu = 0; cpu < n; cpu++) {
      this.softirqCb.push(() => this.schedule(cpu));
      this.sliceCb.push(() => {
        this.sliceTimer[cpu] = NO_TIMER;
        this.schedule(cpu);
      });
      this.tickCb.push((now) => {
        this.policy.tick(cpu, now);
        if (this.currUid[cpu] < 0) this.raiseSoftirq(cpu);
        this.clock.schedule(now + this.tickNs, this.tickCb[cpu]);
      });
    }
    const g = ctx.stats;
    this.cSwitches = g.counter("context_switches", "switches", "switches from one vCPU to another");
    this.cSwitchNs = g.counter("context_switch_ns", "ns", "pCPU time spent switching vCPUs");
    this.cDecisions = g.counter("decisions", "decisions", "scheduling decisions (do_schedule)");
    this.cWakeups = g.counter("wakeups", "wakeups", "vCPUs woken from blocked");
    this.cMigrations = g.counter("migrations", "moves", "vCPUs moved to another pCPU's queue");
    g.gauge("runnable", "vCPUs", "vCPUs waiting on a run queue", () => {
      let s = 0;
      for (let q = 0; q < this.rq.len.length; q++) s += this.rq.len[q];
      return s;
    });
    policy.attach(this);
    this.register(ctx);
    for (let cpu = 0; cpu < n; cpu++)
      this.clock.schedule(this.clock.now + this.tickNs, this.tickCb[cpu]);
    // Xen's local_time_calibration: each pCPU takes a new time stamp once per epoch and
    // refreshes the PV clock of the vCPU it runs.
    const calibrate = (now: number) => {
      for (let cpu = 0; cpu < n; cpu++) {
        this.areas.calibrate(cpu, now);
        if (this.currUid[cpu] >= 0) this.areas.updateTime(this.currUid[cpu], cpu);
      }
      this.clock.schedule(now + PVCLOCK_CALIBRATION_NS, calibrate);
    };
    this.clock.schedule(this.clock.now + PVCLOCK_CALIBRATION_NS, calibrate);
  }

  get name(): string {
    return this.policy.name;
  }

  // ---- registration ----

  private register(ctx: SetupContext): void {
    ctx.hypercall(__HYPERVISOR_sched_op, (v) => this.doYield(v), SCHEDOP_yield);
    ctx.hypercall(__HYPERVISOR_sched_op, (v) => this.doBlock(v), SCHEDOP_block);
    ctx.hypercall(__HYPERVISOR_sched_op, (v, a) => this.doShutdown(v, a), SCHEDOP_shutdown);
    ctx.hypercall(__HYPERVISOR_sched_op, (v, a) => this.doPoll(v, a), SCHEDOP_poll);
    ctx.hypercall(
      __HYPERVISOR_sched_op,
      (v, a) => this.doRemoteShutdown(v, a),
      SCHEDOP_remote_shutdown,
    );
    ctx.hypercall(__HYPERVISOR_vcpu_op, (v, a) => this.doVcpuUpDown(v, a, true), VCPUOP_up);
    ctx.hypercall(__HYPERVISOR_vcpu_op, (v, a) => this.doVcpuUpDown(v, a, false), VCPUOP_down);
    ctx.hypercall(__HYPERVISOR_vcpu_op, (v, a) => this.doIsUp(v, a), VCPUOP_is_up);
    ctx.hypercall(
      __HYPERVISOR_vcpu_op,
      (v, a) => this.doRunstateInfo(v, a),
      VCPUOP_get_runstate_info,
    );
    ctx.onDomainCreate((d) => this.domainCreated(d));
    ctx.onDomainDestroy((d) => this.domainDestroyed(d));
  }

  setEventSource(source: EventSource): void {
    this.events = source;
  }

  // ---- per-vCPU and per-domain storage ----

  private growVcpus(n: number): void {
    if (n <= this.cap) return;
    let cap = Math.max(64, this.cap);
    while (cap < n) cap *= 2;
    const i32 = (a: Int32Array, fill: number) => {
      const b = new Int32Array(cap).fill(fill);
      b.set(a);
      return b;
    };
    const u8 = (a: Uint8Array) => {
      const b = new Uint8Array(cap);
      b.set(a);
      return b;
    };
    const f64 = (a: Float64Array, mult = 1) => {
      const b = new Float64Array(cap * mult);
      b.set(a);
      return b;
    };
    this.onCpu = i32(this.onCpu, -1);
    this.dom = i32(this.dom, -1);
    this.rsState = u8(this.rsState);
    this.rsEntry = f64(this.rsEntry);
    this.rsTime = f64(this.rsTime, 4);
    this.runtime = f64(this.runtime);
    this.acctFrom = f64(this.acctFrom);
    this.blocked = u8(this.blocked);
    this.down = u8(this.down);
    this.polling = u8(this.polling);
    this.pollPort = i32(this.pollPort, 0);
    this.pollTimer = f64(this.pollTimer);
    this.workLeft = f64(this.workLeft);
    this.workLeft.fill(-1, this.cap);
    this.workTimer = f64(this.workTimer);
    this.wakeAt = f64(this.wakeAt);
    this.wakeAt.fill(-1, this.cap);
    this.latCount = f64(this.latCount);
    this.latTotal = f64(this.latTotal);
    this.latMax = f64(this.latMax);
    this.grant = f64(this.grant);
    this.parked = u8(this.parked);
    this.softEff = u8(this.softEff);
    this.migrating = u8(this.migrating);
    const masks = (a: Uint8Array) => {
      const b = new Uint8Array(cap * this.nrCpus).fill(1);
      b.set(a);
      return b;
    };
    this.hard = masks(this.hard);
    this.soft = masks(this.soft);
    this.rq.grow(cap);
    this.cap = cap;
  }

  private growDomains(n: number): void {
    if (n <= this.domCap) return;
    let cap = Math.max(16, this.domCap);
    while (cap < n) cap *= 2;
    const f64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.weight = f64(this.weight);
    this.capPct = f64(this.capPct);
    this.pool = f64(this.pool);
    this.domRuntime = f64(this.domRuntime);
    this.domCap = cap;
  }

  private domainCreated(d: Domain): void {
    const slot = this.domains.length;
    this.growDomains(slot + 1);
    this.domains.push(d);
    this.slotOf.set(d.domid, slot);
    this.weight[slot] = SCHED_DEFAULT_WEIGHT;
    const now = this.clock.now;
    for (const v of d.vcpus) {
      const uid = v.uid;
      this.growVcpus(uid + 1);
      this.dom[uid] = slot;
      this.hard.fill(1, uid * this.nrCpus, (uid + 1) * this.nrCpus);
      this.soft.fill(1, uid * this.nrCpus, (uid + 1) * this.nrCpus);
      if (this.softEff[uid]) {
        this.softEff[uid] = 0;
        this.nrSoftEff--;
      }
      this.rsEntry[uid] = now;
      this.down[uid] = v.state === "offline" ? 1 : 0;
      this.rsState[uid] = this.down[uid] ? RUNSTATE_offline : RUNSTATE_runnable;
      v.state = STATE_NAMES[this.rsState[uid]];
      this.policy.addVcpu(uid);
    }
    this.policy.paramsChanged(slot);
    for (const v of d.vcpus) {
      if (!this.down[v.uid]) this.kickCpu(this.policy.wake(v.uid, false));
    }
  }

  private domainDestroyed(d: Domain): void {
    const slot = this.slotOf.get(d.domid);
    if (slot === undefined) return;
    const now = this.clock.now;
    for (const v of d.vcpus) {
      const uid = v.uid;
      this.clearPoll(uid);
      this.clearWorkUid(uid);
      this.down[uid] = 1;
      const cpu = this.onCpu[uid];
      if (cpu >= 0) {
        this.account(uid, now);
        this.raiseSoftirq(cpu);
      } else {
        this.policy.sleep(uid);
        this.setRunstate(uid, RUNSTATE_offline, now);
      }
    }
    this.capPct[slot] = 0;
    this.weight[slot] = 0;
    this.slotOf.delete(d.domid);
    this.domains[slot] = undefined;
    this.policy.paramsChanged(slot);
  }

  // ---- runstates and accounting ----

  private setRunstate(uid: number, st: number, now: number): void {
    const old = this.rsState[uid];
    if (old === st) return;
    this.rsTime[uid * 4 + old] += now - this.rsEntry[uid];
    this.rsEntry[uid] = now;
    this.rsState[uid] = st;
    const v = this.hv.vcpus[uid];
    v.state = STATE_NAMES[st];
    if (this.areas.hasRunstateArea(uid)) this.areas.writeRunstate(v, st, now, this.rsTime, uid * 4);
  }

  /** Charges a running vCPU's run time up to `now`. */
  account(uid: number, now: number): void {
    const from = this.acctFrom[uid];
    if (!(now > from)) return;
    const delta = now - from;
    this.acctFrom[uid] = now;
    this.runtime[uid] += delta;
    this.domRuntime[this.dom[uid]] += delta;
    if (this.grant[uid] > 0) {
      const g = this.grant[uid] - delta;
      this.grant[uid] = g < MIN_RUN_NS ? 0 : g;
    }
    if (this.workLeft[uid] > 0) {
      const w = this.workLeft[uid] - delta;
      this.workLeft[uid] = w < MIN_RUN_NS ? 0 : w;
    }
    this.policy.burn(uid, delta, now);
  }

  /** Whether the vCPU wants to run: not blocked, not down, domain alive (paused or not). */
  wantsToRun(uid: number): boolean {
    if (this.blocked[uid] || this.down[uid]) return false;
    const st = this.hv.vcpus[uid].domain.state;
    return st === "running" || st === "paused";
  }

  /** Whether the vCPU may run now: wants to, unpaused, and (if capped) has budget. */
  eligible(uid: number): boolean {
    if (this.blocked[uid] || this.down[uid]) return false;
    const v = this.hv.vcpus[uid];
    const d = v.domain;
    if (d.state !== "running" || d.pauseCount !== 0 || v.pauseCount !== 0) return false;
    const slot = this.dom[uid];
    if (this.capPct[slot] > 0 && this.pool[slot] + this.grant[uid] < MIN_RUN_NS) {
      this.parked[uid] = 1;
      return false;
    }
    return true;
  }

  // ---- the decision ----

  raiseSoftirq(cpu: number): void {
    if (this.softirq[cpu]) return;
    this.softirq[cpu] = 1;
    this.clock.schedule(this.clock.now, this.softirqCb[cpu]);
  }

  /** Whether the vCPU's hard affinity holds the pCPU. */
  canRun(uid: number, cpu: number): boolean {
    return this.hard[uid * this.nrCpus + cpu] === 1;
  }

  /** Whether the vCPU has a soft affinity worth a balance step and it holds the pCPU. */
  prefers(uid: number, cpu: number): boolean {
    return this.softEff[uid] === 1 && this.soft[uid * this.nrCpus + cpu] === 1;
  }

  /**
   * Where a waking vCPU should queue (Xen's pick_resource with its affinity balance steps,
   * without topology): its own pCPU if that idles, else any idle pCPU with no decision
   * pending, first among its soft affinity, then among its hard affinity; else its own pCPU,
   * or, when its hard mask no longer holds that one, the first pCPU the mask holds.
   */
  placeCpu(uid: number): number {
    const own = this.hv.vcpus[uid].processor;
    const n = this.nrCpus;
    const mine = own >= 0 && own < n ? own : 0;
    const base = uid * n;
    const hard = this.hard;
    if (this.softEff[uid]) {
      const soft = this.soft;
      if (hard[base + mine] && soft[base + mine] && this.currUid[mine] < 0 && !this.softirq[mine])
        return mine;
      for (let c = 0; c < n; c++) {
        if (hard[base + c] && soft[base + c] && this.currUid[c] < 0 && !this.softirq[c]) {
          if (c !== mine) this.cMigrations.value++;
          return c;
        }
      }
    }
    if (hard[base + mine] && this.currUid[mine] < 0 && !this.softirq[mine]) return mine;
    for (let c = 0; c < n; c++) {
      if (hard[base + c] && this.currUid[c] < 0 && !this.softirq[c]) {
        if (c !== mine) this.cMigrations.value++;
        return c;
      }
    }
    if (hard[base + mine]) return mine;
    let first = -1;
    for (let c = 0; c < n; c++) {
      if (!hard[base + c]) continue;
      if (this.softEff[uid] && this.soft[base + c]) {
        first = c;
        break;
      }
      if (first < 0) first = c;
    }
    this.cMigrations.value++;
    return first;
  }

  /** An idle pCPU with no decision pending that the vCPU's hard affinity holds, or -1. */
  idleCpuFor(uid: number): number {
    const base = uid * this.nrCpus;
    for (let c = 0; c < this.nrCpus; c++) {
      if (this.hard[base + c] && this.currUid[c] < 0 && !this.softirq[c]) return c;
    }
    return -1;
  }

  private kickCpu(cpu: number): void {
    if (cpu >= 0) this.raiseSoftirq(cpu);
  }

  schedule(cpu: number): void {
    if (!(cpu >= 0 && cpu < this.nrCpus)) {
      throw new HyperlabError<SchedErrorCode>(
        "SCHED_BAD_CPU",
        `There is no pCPU ${cpu}; this machine has pCPUs 0..${this.nrCpus - 1}.`,
      );
    }
    this.softirq[cpu] = 0;
    const now = this.clock.now;
    const prev = this.currUid[cpu];
    let requeue = false;
    if (prev >= 0) {
      this.account(prev, now);
      requeue = this.wantsToRun(prev);
    }
    this.slice = 0;
    this.movedAway = -1;
    const next = this.policy.pick(cpu, now, prev, requeue);
    this.cDecisions.value++;
    if (next >= 0) {
      if (this.slice > 0 && this.slice < MIN_RUN_NS) this.slice = MIN_RUN_NS;
      this.takeGrant(next);
      this.hv.vcpus[next].processor = cpu;
    }

    if (next !== prev) {
      if (prev >= 0) {
        this.onCpu[prev] = -1;
        this.cancelWorkTimer(prev);
        this.setRunstate(
          prev,
          this.blocked[prev]
            ? RUNSTATE_blocked
            : this.down[prev] || !requeue
              ? RUNSTATE_offline
              : RUNSTATE_runnable,
          now,
        );
      }
      this.currUid[cpu] = next;
      this.hv.machine.cpus[cpu].current = next;
      this.runStart[cpu] = now;
      if (next >= 0) {
        this.onCpu[next] = cpu;
        this.hv.vcpus[next].processor = cpu;
        this.setRunstate(next, RUNSTATE_running, now);
        this.areas.updateTime(next, cpu);
        if (prev >= 0) {
          this.cSwitches.value++;
          this.cSwitchNs.value += this.switchNs;
          this.acctFrom[next] = now + this.switchNs;
        } else {
          this.acctFrom[next] = now;
        }
        const w = this.wakeAt[next];
        if (w >= 0) {
          // Wake to first instruction: the switch cost counts.
          const lat = this.acctFrom[next] - w;
          this.latCount[next]++;
          this.latTotal[next] += lat;
          if (lat > this.latMax[next]) this.latMax[next] = lat;
          this.wakeAt[next] = -1;
        }
      }
    }
    const old = this.sliceTimer[cpu];
    if (old !== NO_TIMER) this.clock.cancel(old);
    this.sliceTimer[cpu] = NO_TIMER;
    if (next >= 0) {
      const start = Math.max(now, this.acctFrom[next]);
      if (this.slice > 0)
        this.sliceTimer[cpu] = this.clock.schedule(start + this.slice, this.sliceCb[cpu]);
      this.armWork(next, start);
    }
  }

  /** A capped vCPU takes its run time from the domain's budget (leftovers go back first). */
  private takeGrant(uid: number): void {
    const slot = this.dom[uid];
    if (!(this.capPct[slot] > 0)) return;
    this.pool[slot] += this.grant[uid];
    const g = Math.min(this.pool[slot], this.slice > 0 ? this.slice : this.capPeriodNs);
    this.grant[uid] = g;
    this.pool[slot] -= g;
    this.slice = g;
  }

  private replenish(now: number): void {
    let any = false;
    for (let slot = 0; slot < this.domains.length; slot++) {
      const d = this.domains[slot];
      if (d === undefined || !(this.capPct[slot] > 0)) continue;
      any = true;
      this.pool[slot] = (this.capPct[slot] / 100) * this.capPeriodNs;
      for (const v of d.vcpus) {
        const uid = v.uid;
        const cpu = this.onCpu[uid];
        if (cpu >= 0) {
          this.account(uid, now);
          this.grant[uid] = 0;
          this.raiseSoftirq(cpu);
        } else {
          this.grant[uid] = 0;
        }
        if (this.parked[uid]) {
          this.parked[uid] = 0;
          if (this.rq.onQueue(uid)) this.kickCpu(this.policy.tickle(uid));
        }
      }
    }
    this.capTimer = any
      ? this.clock.schedule(now + this.capPeriodNs, (t) => this.replenish(t))
      : NO_TIMER;
  }

  // ---- synthetic work ----

  private armWork(uid: number, start: number): void {
    this.cancelWorkTimer(uid);
    const left = this.workLeft[uid];
    if (left < 0) return;
    this.workTimer[uid] = this.clock.schedule(start + left, () => this.workDue(uid));
  }

  private cancelWorkTimer(uid: number): void {
    const t = this.workTimer[uid];
    if (t !== NO_TIMER) {
      this.clock.cancel(t);
      this.workTimer[uid] = NO_TIMER;
    }
  }

  private workDue(uid: number): void {
    this.workTimer[uid] = NO_TIMER;
    if (this.onCpu[uid] < 0) return;
    const now = this.clock.now;
    this.account(uid, now);
    if (this.workLeft[uid] > 0) {
      this.armWork(uid, Math.max(now, this.acctFrom[uid]));
      return;
    }
    const cb = this.workCb[uid];
    this.workLeft[uid] = -1;
    this.workCb[uid] = undefined;
    cb?.(this.hv.vcpus[uid]);
  }

  setWork(v: Vcpu, ns: number, done: (v: Vcpu) => void): void {
    this.check(v);
    if (!(Number.isFinite(ns) && ns >= 0) || typeof done !== "function") {
      throw new HyperlabError<SchedErrorCode>(
        "SCHED_BAD_WORK",
        `setWork needs a finite, non-negative amount of ns and a callback, got ${ns}.`,
      );
    }
    const uid = v.uid;
    const cpu = this.onCpu[uid];
    if (cpu >= 0) this.account(uid, this.clock.now);
    this.workLeft[uid] = ns;
    this.workCb[uid] = done;
    if (cpu >= 0) this.armWork(uid, Math.max(this.clock.now, this.acctFrom[uid]));
  }

  clearWork(v: Vcpu): void {
    this.check(v);
    this.clearWorkUid(v.uid);
  }

  private clearWorkUid(uid: number): void {
    this.cancelWorkTimer(uid);
    this.workLeft[uid] = -1;
    this.workCb[uid] = undefined;
  }

  // ---- blocking and waking ----

  /** Xen's vcpu_wake for a vCPU that was blocked (the flag is already clear) or came up. */
  private wakeUid(uid: number, boostable: boolean): void {
    if (this.down[uid] || this.blocked[uid]) return;
    if (this.onCpu[uid] >= 0 || this.rq.onQueue(uid)) return;
    if (!this.wantsToRun(uid)) return;
    const now = this.clock.now;
    this.setRunstate(uid, RUNSTATE_runnable, now);
    this.wakeAt[uid] = now;
    this.cWakeups.value++;
    this.kickCpu(this.policy.wake(uid, boostable));
  }

  vcpuWake(v: Vcpu): void {
    this.check(v);
    const uid = v.uid;
    if (this.blocked[uid]) {
      this.blocked[uid] = 0;
      this.clearPoll(uid);
    }
    this.wakeUid(uid, true);
  }

  vcpuKick(v: Vcpu): void {
    const uid = v.uid;
    if (!this.blocked[uid]) return;
    this.blocked[uid] = 0;
    this.clearPoll(uid);
    this.wakeUid(uid, true);
  }

  checkPollers(d: Domain, port: number): void {
    for (const v of d.vcpus) {
      const uid = v.uid;
      if (!this.polling[uid]) continue;
      const p = this.pollPort[uid];
      if (p <= 0 || p === port) this.vcpuKick(v);
    }
  }

  isPolling(v: Vcpu): boolean {
    this.check(v);
    return this.polling[v.uid] === 1;
  }

  private clearPoll(uid: number): void {
    this.polling[uid] = 0;
    this.pollPort[uid] = 0;
    const t = this.pollTimer[uid];
    if (t !== NO_TIMER) {
      this.clock.cancel(t);
      this.pollTimer[uid] = NO_TIMER;
    }
  }

  /** Marks a vCPU blocked and takes it off the CPU (or its queue). */
  private blockUid(uid: number): void {
    this.blocked[uid] = 1;
    const cpu = this.onCpu[uid];
    if (cpu >= 0) {
      this.raiseSoftirq(cpu);
    } else {
      this.policy.sleep(uid);
      this.setRunstate(uid, RUNSTATE_blocked, this.clock.now);
    }
  }

  vcpuUp(v: Vcpu): void {
    this.check(v);
    const uid = v.uid;
    if (!this.down[uid]) return;
    this.down[uid] = 0;
    this.wakeUid(uid, false);
  }

  vcpuDown(v: Vcpu): void {
    this.check(v);
    const uid = v.uid;
    if (this.down[uid]) return;
    this.down[uid] = 1;
    const cpu = this.onCpu[uid];
    if (cpu >= 0) this.raiseSoftirq(cpu);
    else {
      this.policy.sleep(uid);
      this.setRunstate(uid, RUNSTATE_offline, this.clock.now);
    }
  }

  // ---- parameters and queries ----

  private check(v: Vcpu): void {
    if (v === undefined || v === null || this.hv.vcpus[v.uid] !== v || v.uid >= this.cap) {
      throw new HyperlabError<SchedErrorCode>(
        "SCHED_UNKNOWN_VCPU",
        "That vCPU does not belong to this hypervisor. Pass a vCPU from hv.createDomain(...).vcpus.",
      );
    }
  }

  private slotFor(d: Domain): number {
    const slot = this.slotOf.get(d?.domid);
    if (slot === undefined || this.domains[slot] !== d) {
      throw new HyperlabError<SchedErrorCode>(
        "SCHED_UNKNOWN_DOMAIN",
        `Domain ${d?.domid} is not scheduled by this hypervisor (destroyed, or from another one).`,
      );
    }
    return slot;
  }

  setParams(d: Domain, params: Partial<SchedParams>): void {
    const slot = this.slotFor(d);
    const { weight, cap } = params ?? {};
    if (weight !== undefined && !(Number.isInteger(weight) && weight >= 1 && weight <= 65535)) {
      throw new HyperlabError<SchedErrorCode>(
        "SCHED_BAD_WEIGHT",
        `A weight is a whole number from 1 to 65535 (Xen's default is 256), got ${weight}.`,
      );
    }
    if (cap !== undefined && !(Number.isInteger(cap) && cap >= 0 && cap <= 100 * this.nrCpus)) {
      throw new HyperlabError<SchedErrorCode>(
        "SCHED_BAD_CAP",
        `A cap is a whole percentage of one pCPU from 0 (none) to ${100 * this.nrCpus}, got ${cap}.`,
      );
    }
    if (weight !== undefined) this.weight[slot] = weight;
    if (cap !== undefined) {
      const now = this.clock.now;
      for (const v of d.vcpus) {
        if (this.onCpu[v.uid] >= 0) this.account(v.uid, now);
        this.grant[v.uid] = 0;
        if (this.parked[v.uid]) {
          this.parked[v.uid] = 0;
          if (this.rq.onQueue(v.uid)) this.kickCpu(this.policy.tickle(v.uid));
        }
        if (this.onCpu[v.uid] >= 0) this.raiseSoftirq(this.onCpu[v.uid]);
      }
      this.capPct[slot] = cap;
      this.pool[slot] = (cap / 100) * this.capPeriodNs;
      if (cap > 0 && this.capTimer === NO_TIMER) {
        this.capTimer = this.clock.schedule(now + this.capPeriodNs, (t) => this.replenish(t));
      }
    }
    this.policy.paramsChanged(slot);
  }

  getParams(d: Domain): SchedParams {
    const slot = this.slotFor(d);
    return { weight: this.weight[slot], cap: this.capPct[slot] };
  }

  setAffinity(v: Vcpu, hard: readonly number[] | null, soft?: readonly number[] | null): number {
    this.check(v);
    const uid = v.uid;
    const n = this.nrCpus;
    if (hard !== null && !this.readMask(hard, this.scratchHard)) return -EINVAL;
    // vcpu_set_hard_affinity: the mask must meet the online pCPUs.
    if (hard !== null && this.scratchHard.indexOf(1) < 0) return -EINVAL;
    const hasSoft = soft !== null && soft !== undefined;
    if (hasSoft && !this.readMask(soft, this.scratchSoft)) return -EINVAL;
    const base = uid * n;
    if (hard !== null) this.hard.set(this.scratchHard, base);
    if (hasSoft) this.soft.set(this.scratchSoft, base);
    // sched_set_affinity: soft_aff_effective = !subset(hard, soft) && intersects(soft, hard).
    let meets = false;
    let covers = true;
    for (let c = 0; c < n; c++) {
      if (!this.hard[base + c]) continue;
      if (this.soft[base + c]) meets = true;
      else covers = false;
    }
    const eff = meets && !covers ? 1 : 0;
    this.nrSoftEff += eff - this.softEff[uid];
    this.softEff[uid] = eff;
    // vcpu_set_affinity sets _VPF_migrating; vcpu_migrate_finish places the vCPU again. A
    // running one is placed at its pCPU's next decision, a queued one now.
    const cpu = this.onCpu[uid];
    if (cpu >= 0) {
      this.migrating[uid] = 1;
      this.raiseSoftirq(cpu);
    } else if (this.rq.onQueue(uid)) {
      this.policy.sleep(uid);
      this.kickCpu(this.policy.wake(uid, false));
    } else if (!this.canRun(uid, v.processor)) {
      v.processor = this.placeCpu(uid);
    }
    return 0;
  }

  /** Reads a list of pCPU numbers into a byte mask; false if it is not one. */
  private readMask(list: readonly number[], out: Uint8Array): boolean {
    if (!Array.isArray(list)) return false;
    out.fill(0);
    for (let i = 0; i < list.length; i++) {
      const c = list[i];
      if (typeof c !== "number" || !Number.isInteger(c) || c < 0) return false;
      if (c < out.length) out[c] = 1;
    }
    return true;
  }

  affinity(v: Vcpu): { hard: number[]; soft: number[] } {
    this.check(v);
    const base = v.uid * this.nrCpus;
    const hard: number[] = [];
    const soft: number[] = [];
    for (let c = 0; c < this.nrCpus; c++) {
      if (this.hard[base + c]) hard.push(c);
      if (this.soft[base + c]) soft.push(c);
    }
    return { hard, soft };
  }

  runstate(v: Vcpu): RunstateInfo {
    this.check(v);
    const uid = v.uid;
    const now = this.clock.now;
    const st = this.rsState[uid];
    const time: [number, number, number, number] = [
      this.rsTime[uid * 4],
      this.rsTime[uid * 4 + 1],
      this.rsTime[uid * 4 + 2],
      this.rsTime[uid * 4 + 3],
    ];
    time[st] += now - this.rsEntry[uid];
    return { state: st, stateEntryTime: this.rsEntry[uid], time };
  }

  vcpuRuntime(v: Vcpu): number {
    this.check(v);
    const uid = v.uid;
    if (this.onCpu[uid] >= 0) this.account(uid, this.clock.now);
    return this.runtime[uid];
  }

  domainRuntime(d: Domain): number {
    const slot = this.slotFor(d);
    for (const v of d.vcpus) if (this.onCpu[v.uid] >= 0) this.account(v.uid, this.clock.now);
    return this.domRuntime[slot];
  }

  curr(cpu: number): Vcpu | null {
    const uid = this.currUid[cpu];
    return uid >= 0 ? this.hv.vcpus[uid] : null;
  }

  wakeLatency(v: Vcpu): WakeLatency {
    this.check(v);
    const uid = v.uid;
    return { count: this.latCount[uid], totalNs: this.latTotal[uid], maxNs: this.latMax[uid] };
  }

  // ---- hypercalls ----

  private doYield(v: Vcpu): number {
    const uid = v.uid;
    this.policy.yield(uid);
    const cpu = this.onCpu[uid];
    if (cpu >= 0) this.raiseSoftirq(cpu);
    return 0;
  }

  private doBlock(v: Vcpu): number {
    this.events.localEventDeliveryEnable(v);
    if (this.events.localEventsNeedDelivery(v)) return 0;
    this.blockUid(v.uid);
    return 0;
  }

  private doShutdown(v: Vcpu, a: { reason?: unknown }): number {
    const reason = a.reason;
    if (typeof reason !== "number" || !Number.isInteger(reason)) return -EFAULT;
    this.shutdown(v.domain, reason & 0xff);
    return 0;
  }

  private doRemoteShutdown(v: Vcpu, a: { domain_id?: unknown; reason?: unknown }): number {
    const { domain_id: domid, reason } = a;
    if (typeof domid !== "number" || !Number.isInteger(domid)) return -EFAULT;
    if (typeof reason !== "number" || !Number.isInteger(reason)) return -EFAULT;
    const d = this.hv.domain(domid);
    if (d === undefined || d.state === "dying" || d.state === "dead") return -ESRCH;
    const src = v.domain;
    if (!(src.isPrivileged || src.target === d.domid)) return -EPERM;
    this.shutdown(d, reason & 0xff);
    return 0;
  }

  private shutdown(d: Domain, reason: number): void {
    const was = d.state;
    this.hv.shutdownDomain(d, reason);
    if (was === d.state) return;
    const now = this.clock.now;
    for (const v of d.vcpus) {
      const uid = v.uid;
      this.clearPoll(uid);
      const cpu = this.onCpu[uid];
      if (cpu >= 0) this.raiseSoftirq(cpu);
      else if (this.rq.onQueue(uid)) {
        this.policy.sleep(uid);
        this.setRunstate(uid, RUNSTATE_offline, now);
      } else {
        // shutdownDomain rewrote the state; keep our runstate as it was.
        v.state = STATE_NAMES[this.rsState[uid]];
      }
    }
    this.events.sendGlobalVirq(VIRQ_DOM_EXC);
  }

  private doPoll(v: Vcpu, a: { ports?: unknown; nr_ports?: unknown; timeout?: unknown }): number {
    const { ports, nr_ports: nr, timeout } = a;
    if (typeof nr !== "number" || !Number.isInteger(nr) || nr < 0) return -EINVAL;
    if (nr > SCHED_POLL_MAX_PORTS) return -EINVAL;
    if (!Array.isArray(ports) || ports.length < nr) return -EFAULT;
    // timeout is a uint64_t of absolute system time: anything else cannot be copied in.
    if (
      typeof timeout !== "number" ||
      !Number.isInteger(timeout) ||
      timeout < 0 ||
      timeout >= 2 ** 64
    ) {
      return -EFAULT;
    }
    const uid = v.uid;
    const d = v.domain;
    if (this.events.localEventsNeedDelivery(v)) return 0;
    let port = 0;
    for (let i = 0; i < nr; i++) {
      port = ports[i];
      if (typeof port !== "number" || !Number.isInteger(port)) return -EFAULT;
      // Port 0 is reserved and never in use; evtchn_port_t is 32 bits.
      if (port <= 0 || port >= 2 ** 32) return -EINVAL;
      const rc = this.events.portPoll(d, port);
      if (rc !== 0) return Math.min(rc, 0);
    }
    this.polling[uid] = 1;
    this.pollPort[uid] = nr === 1 ? port : -1;
    if (timeout !== 0) {
      const at = Math.max(this.clock.now, timeout);
      this.pollTimer[uid] = this.clock.schedule(at, () => {
        this.pollTimer[uid] = NO_TIMER;
        if (this.polling[uid]) this.vcpuKick(v);
      });
    }
    this.blockUid(uid);
    return 0;
  }

  private targetVcpu(v: Vcpu, a: { vcpuid?: unknown }): Vcpu | number {
    const id = a.vcpuid;
    if (typeof id !== "number" || !Number.isInteger(id)) return -EFAULT;
    const t = v.domain.vcpus[id];
    return t === undefined ? -ENOENT : t;
  }

  private doVcpuUpDown(v: Vcpu, a: { vcpuid?: unknown }, up: boolean): number {
    const t = this.targetVcpu(v, a);
    if (typeof t === "number") return t;
    if (up) {
      // Xen: a vCPU comes up only once it has a context (VCPUOP_initialise).
      if (!this.areas.isInitialised(t)) return -EINVAL;
      this.vcpuUp(t);
    } else this.vcpuDown(t);
    return 0;
  }

  private doIsUp(v: Vcpu, a: { vcpuid?: unknown }): number {
    const t = this.targetVcpu(v, a);
    if (typeof t === "number") return t;
    return this.down[t.uid] ? 0 : 1;
  }

  private doRunstateInfo(
    v: Vcpu,
    a: { vcpuid?: unknown; state?: number; state_entry_time?: number; time?: number[] },
  ): number {
    const t = this.targetVcpu(v, a);
    if (typeof t === "number") return t;
    const info = this.runstate(t);
    a.state = info.state;
    a.state_entry_time = info.stateEntryTime;
    a.time = info.time;
    return 0;
  }
}

function checkNs(value: number, name: string, zeroOk: boolean): number {
  if (!(Number.isFinite(value) && (zeroOk ? value >= 0 : value > 0))) {
    throw new HyperlabError<SchedErrorCode>(
      "SCHED_BAD_OPTION",
      `Scheduler option ${name} must be a ${zeroOk ? "non-negative" : "positive"} number of ns, got ${value}.`,
    );
  }
  return value;
}
