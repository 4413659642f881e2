/*
 * The `sched` slot: Xen's common scheduling core with one policy (credit, credit2 or rr), as
 * the rest of the hypervisor sees it, and the EventSource it needs back from the event
 * channels so that neither package imports the other. The types live beside the scheduler in
 * sched/types.ts; this file is where a consumer finds them with their contract.
 *
 * Contract (what every provider keeps): every method is safe to call with any vCPU of a live
 * domain and never throws on what a guest chose (only `setParams` throws, a typed
 * HyperlabError for a caller's out-of-range weight or cap); `vcpuKick` wakes a vCPU blocked in
 * SCHEDOP_block or SCHEDOP_poll and does nothing to a running one; a vCPU runs on at most one
 * pCPU at a time; runstate times only grow and add up to the time since the vCPU was created;
 * without an EventSource no event is ever pending and every poll fails.
 */
export type {
  EventSource,
  RunstateInfo,
  SchedParams,
  SchedService,
  WakeLatency,
} from "../sched/types";
