/*
 * What a workload runs on: processes with anonymous memory and bulk replay of user
 * accesses. GuestTarget serves it with @hyperlab/guest, the one guest kernel; the seam keeps
 * the workloads free of the kernel's own interface.
 *
 * Invariant: a target's results depend only on the operations asked of it (and its seed),
 * never on the backend or the page size: those change counts, not values.
 */
import type { StudyCounts } from "./counts";

/** Access kinds in a replay. */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
/** Read, then write the value read mixed with the access index (a GUPS update). */
export const ACCESS_UPDATE = 2;

export interface StudyTarget {
  /** Bytes of one user page (the guest page size). */
  readonly pageSize: number;
  spawn(): number;
  fork(pid: number): number;
  exec(pid: number): void;
  exit(pid: number): void;
  mmap(pid: number, bytes: number): number;
  munmap(pid: number, va: number, bytes: number): void;
  /**
   * Replays `n` user accesses of process `pid`: `vas[i]` (4-byte aligned) with kind
   * `kinds[i]` (ACCESS_*). Writes store a value derived from `salt` and i; reads fold the
   * value read into the returned checksum, which is the functional result of the replay.
   */
  replay(pid: number, vas: Float64Array, kinds: Uint8Array, n: number, salt: number): number;
  /** Writes `values[i]` at `vas[i]` (4-byte aligned) for i < n, in process `pid`. */
  store(pid: number, vas: Float64Array, values: Uint32Array, n: number): void;
  /**
   * Pointer chasing: from slot `start`, reads `steps` times the u32 slot index stored at
   * `base + slot * stride`, each read depending on the one before. Returns the checksum.
   */
  chase(pid: number, base: number, stride: number, start: number, steps: number): number;
  /**
   * Marks the end of warm-up: the working set has been touched once (first-touch faults,
   * table building). Counts up to here are the run's warm-up, the rest its steady state.
   * Optional: the study's run wrapper provides it; a workload calls it at most once.
   */
  warmedUp?(): void;
  /**
   * Counts `n` non-memory instructions of the workload's own computation (what a compiler
   * does between its memory accesses). Optional; the same on every backend.
   */
  compute?(n: number): void;
  /** Counts a workload-level operation (the unit of per-operation figures). */
  countOperations(n: number): void;
  /** Kernel counts plus the backend's hardware counts, as of now. */
  counts(): StudyCounts;
}
