/*
 * Physical CPUs: plain data. A pCPU's id is its index in the machine's `cpus` array and
 * never changes; everything else belongs to the hypervisor, which reads and writes it freely.
 */

import { MachineError } from "./errors";

/** Largest number of pCPUs a machine models. */
export const MAX_PCPUS = 4096;

/** Number of per-pCPU scratch slots (`Pcpu.scratch`). */
export const PCPU_SCRATCH_SLOTS = 16;

/** One physical CPU. */
export interface Pcpu {
  /** Its id, 0-based; equal to its index in `machine.cpus`. */
  readonly id: number;
  /** Whether it is online (takes part in scheduling). All pCPUs start online. */
  online: boolean;
  /** The vCPU it runs now, as the hypervisor numbers vCPUs; -1 for idle. */
  current: number;
  /** Numbers the hypervisor keeps per pCPU (its own layout), all 0 at boot. */
  readonly scratch: Float64Array;
}

/** Makes `count` online, idle pCPUs with ids 0 .. count - 1. */
export function createPcpus(count: number): Pcpu[] {
  if (!(Number.isInteger(count) && count >= 1 && count <= MAX_PCPUS)) {
    throw new MachineError(
      "CPU_BAD_COUNT",
      `a machine needs a whole number of pCPUs from 1 to ${MAX_PCPUS}, got ${count}; pass e.g. cpus: 4`,
    );
  }
  const cpus: Pcpu[] = [];
  for (let id = 0; id < count; id++) {
    cpus.push({ id, online: true, current: -1, scratch: new Float64Array(PCPU_SCRATCH_SLOTS) });
  }
  return cpus;
}

/** Ids of the online pCPUs, in ascending order. */
export function onlinePcpus(cpus: readonly Pcpu[]): number[] {
  const ids: number[] = [];
  for (const c of cpus) if (c.online) ids.push(c.id);
  return ids;
}
