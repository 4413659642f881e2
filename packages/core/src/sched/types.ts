/*
 * The `sched` slot: what the scheduler offers the rest of the hypervisor, and what it needs
 * back from the event channel plugin (an EventSource), so that neither imports the other.
 */
import type { Domain, Vcpu } from "../domain";

/**
 * What the scheduler asks of the event channels. The evtchn plugin installs one at setup
 * with `sched.setEventSource`; without one, no event is ever pending and every poll fails.
 */
export interface EventSource {
  /** Xen's local_events_need_delivery: upcall pending and not masked in the vCPU's vcpu_info. */
  localEventsNeedDelivery(v: Vcpu): boolean;
  /** Xen's local_event_delivery_enable: clears evtchn_upcall_mask in the vCPU's vcpu_info. */
  localEventDeliveryEnable(v: Vcpu): void;
  /** Xen's evtchn_port_poll: -EINVAL for a port never allocated, 1 if pending, else 0. */
  portPoll(d: Domain, port: number): number;
  /** Raises a global VIRQ at the domain that handles it (dom0 by default), e.g. VIRQ_DOM_EXC. */
  sendGlobalVirq(virq: number): void;
}

/** Per-domain scheduling parameters, as `xl sched-credit -d dom -w weight -c cap`. */
export interface SchedParams {
  /** Relative share, 1..65535; Xen's default is 256. */
  weight: number;
  /** Most CPU the domain may use, in percent of one pCPU (100 = one whole pCPU); 0 = no cap. */
  cap: number;
}

export interface RunstateInfo {
  /** RUNSTATE_* now. */
  state: number;
  /** When the vCPU entered that state (virtual ns). */
  stateEntryTime: number;
  /** Time spent in each RUNSTATE_*, ns, up to now. */
  time: [number, number, number, number];
}

export interface WakeLatency {
  /** Wake-ups that were followed by a run. */
  count: number;
  /** Sum of wake-to-run delays, ns. */
  totalNs: number;
  /** Longest wake-to-run delay, ns. */
  maxNs: number;
}

/**
 * The scheduler (Xen's common scheduling core with one policy: credit, credit2 or rr).
 * Every method is safe to call with any vCPU of a live domain.
 */
export interface SchedService {
  /** The policy's name, as Xen's `sched=`: "credit", "credit2" or "rr". */
  readonly name: string;
  /** Installs the event channel side (the evtchn plugin calls this once at setup). */
  setEventSource(source: EventSource): void;
  /** Xen's vcpu_wake: a blocked vCPU becomes runnable (no-op otherwise). */
  vcpuWake(v: Vcpu): void;
  /**
   * Xen's vcpu_kick, called when evtchn_upcall_pending goes from 0 to 1: a vCPU blocked in
   * SCHEDOP_block or SCHEDOP_poll wakes.
   */
  vcpuKick(v: Vcpu): void;
  /** Xen's evtchn_check_pollers: wakes the domain's vCPUs polling `port` (or any port). */
  checkPollers(d: Domain, port: number): void;
  /** Whether the vCPU is blocked in SCHEDOP_poll. */
  isPolling(v: Vcpu): boolean;
  /** Brings an offline vCPU online (VCPUOP_up). */
  vcpuUp(v: Vcpu): void;
  /** Takes a vCPU offline (VCPUOP_down). */
  vcpuDown(v: Vcpu): void;
  /** Sets a domain's weight and cap; throws HyperlabError on values out of range. */
  setParams(d: Domain, params: Partial<SchedParams>): void;
  getParams(d: Domain): SchedParams;
  /** Xen's vcpu_runstate_get. */
  runstate(v: Vcpu): RunstateInfo;
  /** CPU time the vCPU has used (virtual ns, context switch cost excluded). */
  vcpuRuntime(v: Vcpu): number;
  /** CPU time all vCPUs of the domain have used (virtual ns). */
  domainRuntime(d: Domain): number;
  /** The vCPU running on a pCPU, or null when it idles. */
  curr(cpu: number): Vcpu | null;
  /**
   * Synthetic work: calls `done` once `v` has run `ns` more nanoseconds (time it spends
   * preempted, blocked or switching does not count). Replaces any earlier work of `v`.
   */
  setWork(v: Vcpu, ns: number, done: (v: Vcpu) => void): void;
  /** Drops the vCPU's synthetic work, if any. */
  clearWork(v: Vcpu): void;
  /** Wake-to-run delays of a vCPU, measured by the scheduler. */
  wakeLatency(v: Vcpu): WakeLatency;
  /**
   * XEN_DOMCTL_setvcpuaffinity (Xen's vcpu_set_hard_affinity / vcpu_set_soft_affinity): the
   * pCPUs a vCPU may run on (hard) and prefers (soft), as lists of pCPU numbers; `null` leaves
   * that mask as it is. Numbers beyond the last pCPU are dropped, as bits beyond nr_cpu_ids
   * are. Answers 0, or -EINVAL (nothing changed) when the hard mask names no online pCPU or
   * a mask is not a list of non-negative whole numbers. A running vCPU outside its new hard
   * mask leaves its pCPU at that pCPU's next decision (Xen's vcpu_migrate); a queued one is
   * moved at once.
   */
  setAffinity(v: Vcpu, hard: readonly number[] | null, soft?: readonly number[] | null): number;
  /** The vCPU's hard and soft masks as set (every pCPU until a setAffinity), ascending. */
  affinity(v: Vcpu): { hard: number[]; soft: number[] };
  /** Runs the scheduling decision on a pCPU now (Xen's schedule()); tests and benches use it. */
  schedule(cpu: number): void;
}
