/*
 * Synthetic vCPU work for scheduler tests and studies: a vCPU with no work burns CPU for
 * as long as it is let run; an event waiter computes for a while, then blocks in
 * SCHEDOP_block until an event wakes it, and repeats. Both act only through the `sched`
 * slot and hypercalls, as a guest would.
 */
import { __HYPERVISOR_sched_op, SCHEDOP_block } from "@hyperlab/abi";
import type { Vcpu } from "../domain";
import { HyperlabError } from "../errors";
import type { Hypervisor } from "../hypervisor";
import type { SchedErrorCode } from "./errors";

/** Makes a vCPU a CPU burner: online, no work, so it runs whenever it is chosen. */
export function burnCpu(hv: Hypervisor, v: Vcpu): void {
  const sched = hv.slot("sched");
  sched.clearWork(v);
  sched.vcpuUp(v);
}

/**
 * Makes a vCPU compute `computeNs` of CPU time, then block (SCHEDOP_block), and do the same
 * again each time an event wakes it. `onBlock` runs just before each block.
 */
export function computeThenBlock(
  hv: Hypervisor,
  v: Vcpu,
  computeNs: number,
  onBlock?: (v: Vcpu) => void,
): void {
  if (!(Number.isFinite(computeNs) && computeNs >= 0)) {
    throw new HyperlabError<SchedErrorCode>(
      "SCHED_BAD_WORK",
      `computeThenBlock needs a finite, non-negative computeNs, got ${computeNs}.`,
    );
  }
  const sched = hv.slot("sched");
  const step = (w: Vcpu) => {
    onBlock?.(w);
    sched.setWork(w, computeNs, step);
    hv.hypercall(w, __HYPERVISOR_sched_op, { cmd: SCHEDOP_block });
  };
  sched.vcpuUp(v);
  sched.setWork(v, computeNs, step);
}
