/*
 * The study's workloads. Each is a seeded, deterministic program over the kernel's process
 * interface: what it does depends only on its parameters and its PRNG, never on the backend,
 * so its functional result (a checksum of everything it read) must be the same on all.
 */

import type { Prng } from "@hyperlab/machine";
import type { PageSize } from "./backends";
import { studyError } from "./errors";
import { ACCESS_READ, ACCESS_UPDATE, ACCESS_WRITE, type StudyTarget } from "./target";

/** The parameters of one run of a workload. */
export interface WorkloadParams {
  /** Bytes of memory the workload keeps touching (split among its processes). */
  workingSetBytes: number;
  /** Page size the guest maps user memory with. */
  guestPageSize: PageSize;
  /** Host page size of the second dimension (nested paging only). */
  hostPageSize: PageSize;
  /** Processes the workload runs (parents, parallel jobs, tables). */
  processes: number;
  /** Operations (the workload's own unit, see `operationUnit`). */
  operations: number;
}

export interface Workload {
  readonly name: string;
  readonly description: string;
  /** What one operation is, e.g. "fork+exec+exit". */
  readonly operationUnit: string;
  /** Operations a run does unless the study says otherwise. */
  readonly defaultOperations: number;
  /** Guest memory the run needs, in bytes. */
  guestBytes(p: WorkloadParams): number;
  /** Runs the workload; returns its functional result (a checksum of what it read). */
  run(k: StudyTarget, p: WorkloadParams, prng: Prng): number;
}

const MiB = 2 ** 20;
/**
 * Instructions a compile job executes per 4 KiB page of heap it touches: the order of a
 * kernel build's instructions per page fault as `perf stat` reports them (a few 10^4;
 * docs/cost-model.md#instructions). Every backend runs the same instructions.
 */
export const KBUILD_INSTRUCTIONS_PER_PAGE = 25_000;
/**
 * The access loops' constants as a const enum: the build writes each use as a number
 * literal (a module-level `const` is a `var` in the bundle, loaded and checked at each use,
 * and a division by it a real division).
 */
const enum W {
  TWO_32 = 0x1_0000_0000,
  /** Accesses per replay batch. */
  BATCH = 4096,
}

/** Reusable access buffers of one run. */
class Batch {
  readonly vas = new Float64Array(W.BATCH);
  readonly kinds = new Uint8Array(W.BATCH);
  readonly values = new Uint32Array(W.BATCH);
  n = 0;
  h = 0x811c9dc5;
  salt = 0;

  constructor(
    readonly k: StudyTarget,
    public pid: number,
  ) {}

  push(va: number, kind: number): void {
    this.vas[this.n] = va;
    this.kinds[this.n] = kind;
    if (++this.n === W.BATCH) this.flush();
  }

  flush(): void {
    if (this.n === 0) return;
    const x = this.k.replay(this.pid, this.vas, this.kinds, this.n, this.salt++);
    this.h = Math.imul(this.h ^ x, 0x01000193) >>> 0;
    this.n = 0;
  }

  /** Switches process (flushing the accesses of the one before). */
  to(pid: number): void {
    if (pid !== this.pid) {
      this.flush();
      this.pid = pid;
    }
  }

  fold(x: number): void {
    this.h = Math.imul(this.h ^ x, 0x01000193) >>> 0;
  }
}

/** A process's share of the working set in whole 4 KiB pages (whatever the page size, so
 * a workload's addresses and results do not depend on it). */
function perProcess(p: WorkloadParams): number {
  return Math.max(4096, Math.floor(p.workingSetBytes / p.processes / 4096) * 4096);
}

/** Writes once into every page of [va, va + bytes): the first touch that demand-faults it in. */
function populate(b: Batch, va: number, bytes: number): void {
  for (let at = 0; at < bytes; at += 4096) b.push(va + at, ACCESS_WRITE);
}

function randomOffset(prng: Prng, bytes: number): number {
  return prng.nextInt(bytes / 4) * 4;
}

function headroom(p: WorkloadParams): number {
  return p.guestPageSize === "4K" ? 16 * MiB : 96 * MiB;
}

/** Parents with a working set fork children that touch a little, exec and exit. */
const forkExec: Workload = {
  name: "fork-exec",
  description:
    "fork/exec storm: parents fork, each child reads and writes a few inherited pages (copy on write), execs, maps and touches a small image, exits",
  operationUnit: "fork+exec+exit",
  defaultOperations: 200,
  guestBytes: (p) => p.workingSetBytes * 2 + headroom(p) * 2,
  run(k, p, prng) {
    const ws = perProcess(p);
    const b = new Batch(k, 0);
    const parents: { pid: number; va: number }[] = [];
    for (let i = 0; i < p.processes; i++) {
      const pid = k.spawn();
      const va = k.mmap(pid, ws);
      b.to(pid);
      populate(b, va, ws);
      parents.push({ pid, va });
    }
    b.flush();
    k.warmedUp?.();
    for (let op = 0; op < p.operations; op++) {
      const parent = parents[op % parents.length];
      b.to(parent.pid);
      b.push(parent.va + randomOffset(prng, ws), ACCESS_UPDATE);
      b.flush();
      const child = k.fork(parent.pid);
      b.to(child);
      for (let i = 0; i < 8; i++) b.push(parent.va + randomOffset(prng, ws), ACCESS_READ);
      for (let i = 0; i < 2; i++) b.push(parent.va + randomOffset(prng, ws), ACCESS_UPDATE);
      b.flush();
      k.exec(child);
      const image = k.mmap(child, 16 * 4096);
      populate(b, image, 16 * 4096);
      for (let i = 0; i < 32; i++) b.push(image + randomOffset(prng, 16 * 4096), ACCESS_READ);
      b.flush();
      k.exit(child);
      b.pid = parent.pid;
      k.countOperations(1);
    }
    b.flush();
    return b.h;
  },
};

/** mmap an area, touch every page, read some back, munmap; over and over. */
const mmapChurn: Workload = {
  name: "mmap-churn",
  description:
    "mmap-touch-munmap churn: map 1..16 pages, write each, read some back, unmap (TLB shootdown of what was touched)",
  operationUnit: "mmap+touch+munmap",
  defaultOperations: 2000,
  guestBytes: (p) => p.workingSetBytes + headroom(p) * 4,
  run(k, p, prng) {
    const b = new Batch(k, 0);
    const pids: number[] = [];
    for (let i = 0; i < p.processes; i++) pids.push(k.spawn());
    // No working set survives an operation: every operation is alike, warm-up is the spawn.
    k.warmedUp?.();
    const pb = k.pageSize;
    for (let op = 0; op < p.operations; op++) {
      const pid = pids[op % pids.length];
      b.to(pid);
      const pages = 1 + prng.nextInt(16);
      const bytes = pages * 4096;
      const va = k.mmap(pid, bytes);
      populate(b, va, bytes);
      for (let i = 0; i < pages; i++) b.push(va + randomOffset(prng, bytes), ACCESS_READ);
      b.flush();
      k.munmap(pid, va, Math.ceil(bytes / pb) * pb);
      k.countOperations(1);
    }
    b.flush();
    return b.h;
  },
};

/** GUPS: read-modify-write updates at random over a large table. */
const gups: Workload = {
  name: "random",
  description:
    "random access over a large working set (GUPS-like): the table is written once, then updated at random offsets",
  operationUnit: "update",
  defaultOperations: 1_000_000,
  guestBytes: (p) => p.workingSetBytes + headroom(p),
  run(k, p, prng) {
    const ws = perProcess(p);
    const b = new Batch(k, 0);
    const tables: { pid: number; va: number }[] = [];
    for (let i = 0; i < p.processes; i++) {
      const pid = k.spawn();
      const va = k.mmap(pid, ws);
      b.to(pid);
      populate(b, va, ws);
      tables.push({ pid, va });
    }
    b.flush();
    k.warmedUp?.();
    const words = ws / 4;
    let left = p.operations;
    let t = 0;
    while (left > 0) {
      const table = tables[t++ % tables.length];
      b.to(table.pid);
      const n = Math.min(left, W.BATCH);
      // Hot loop: fill the batch in place. Multiply-shift scaling of a u32 (bias below
      // 2^-32 * words) keeps one PRNG draw per update.
      b.flush();
      const vas = b.vas;
      const base = table.va;
      for (let i = 0; i < n; i++)
        vas[i] = base + Math.floor((prng.nextU32() * words) / W.TWO_32) * 4;
      b.kinds.fill(ACCESS_UPDATE, 0, n);
      b.n = n;
      b.flush();
      left -= n;
      k.countOperations(n);
    }
    return b.h;
  },
};

/** Streaming copy: read one half of the working set and write the other, a line at a time. */
const stream: Workload = {
  name: "stream",
  description:
    "sequential streaming: copy one half of the working set into the other (padded apart by a page and a line), one 64-byte line per access",
  operationUnit: "access",
  defaultOperations: 1_000_000,
  guestBytes: (p) => p.workingSetBytes + headroom(p),
  run(k, p) {
    const ws = perProcess(p);
    const half = Math.max(4096, Math.floor(ws / 2 / 4096) * 4096);
    const b = new Batch(k, 0);
    const areas: { pid: number; va: number }[] = [];
    for (let i = 0; i < p.processes; i++) {
      const pid = k.spawn();
      // The copy's destination starts one page and one line past the source's end, as
      // STREAM pads its arrays, so source and destination do not alias in small TLBs.
      areas.push({ pid, va: k.mmap(pid, half * 2 + 4096 + 64) });
    }
    const lines = half / 64;
    // Warm-up: the first pass over every area touches each page for the first time.
    const firstPass = lines * areas.length;
    for (let op = 0; op < p.operations; op += 2) {
      const round = Math.floor(op / 2);
      if (round === firstPass) {
        b.flush();
        k.warmedUp?.();
      }
      const a = areas[Math.floor(round / lines) % areas.length];
      b.to(a.pid);
      const at = (round % lines) * 64;
      b.push(a.va + at, ACCESS_READ);
      b.push(a.va + half + 4096 + 64 + at, ACCESS_WRITE);
    }
    k.countOperations(p.operations);
    b.flush();
    return b.h;
  },
};

/** Pointer chasing: each load's address is the value the previous load read. */
const pointerChase: Workload = {
  name: "pointer-chase",
  description:
    "pointer chasing: a random cycle through 256-byte slots of the working set, one dependent load per step",
  operationUnit: "dependent load",
  defaultOperations: 1_000_000,
  guestBytes: (p) => p.workingSetBytes + headroom(p),
  run(k, p, prng) {
    const ws = perProcess(p);
    const stride = 256;
    const slots = ws / stride;
    const b = new Batch(k, 0);
    const chains: { pid: number; va: number }[] = [];
    const next = new Uint32Array(slots);
    for (let c = 0; c < p.processes; c++) {
      const pid = k.spawn();
      const va = k.mmap(pid, ws);
      // Sattolo's algorithm: one cycle through every slot.
      for (let i = 0; i < slots; i++) next[i] = i;
      for (let i = slots - 1; i > 0; i--) {
        const j = prng.nextInt(i);
        const t = next[i];
        next[i] = next[j];
        next[j] = t;
      }
      for (let s = 0; s < slots; s += W.BATCH) {
        const n = Math.min(W.BATCH, slots - s);
        for (let i = 0; i < n; i++) {
          b.vas[i] = va + (s + i) * stride;
          b.values[i] = next[s + i];
        }
        k.store(pid, b.vas, b.values, n);
      }
      chains.push({ pid, va });
    }
    k.warmedUp?.();
    const per = Math.ceil(p.operations / chains.length);
    let left = p.operations;
    for (const c of chains) {
      const steps = Math.min(per, left);
      b.fold(k.chase(c.pid, c.va, stride, 0, steps));
      left -= steps;
    }
    k.countOperations(p.operations);
    return b.h;
  },
};

/** A kernel-build-like mix: a make process runs jobs that fork, exec, map, compute and exit. */
const kbuild: Workload = {
  name: "kbuild",
  description:
    "kernel-build-like mix: make forks parallel jobs; each execs, grows a heap, works on it at random and in sequence, maps and unmaps buffers, exits",
  operationUnit: "compile job",
  defaultOperations: 100,
  guestBytes: (p) => p.workingSetBytes * 2 + headroom(p) * 4,
  run(k, p, prng) {
    const pb = k.pageSize;
    const makeWs = Math.max(4096, Math.floor(p.workingSetBytes / 8 / 4096) * 4096);
    const heapBytes = Math.max(
      16 * 4096,
      Math.floor(p.workingSetBytes / 2 / p.processes / 4096) * 4096,
    );
    const b = new Batch(k, 0);
    const make = k.spawn();
    const makeVa = k.mmap(make, makeWs);
    b.to(make);
    populate(b, makeVa, makeWs);
    b.flush();
    // Warm-up: make's own working set; every job after that starts afresh, as real jobs do.
    k.warmedUp?.();
    let done = 0;
    while (done < p.operations) {
      const jobs = Math.min(p.processes, p.operations - done);
      b.to(make);
      for (let i = 0; i < 64; i++) b.push(makeVa + randomOffset(prng, makeWs), ACCESS_UPDATE);
      b.flush();
      const running: { pid: number; heap: number }[] = [];
      for (let j = 0; j < jobs; j++) {
        const pid = k.fork(make);
        k.exec(pid);
        running.push({ pid, heap: k.mmap(pid, heapBytes) });
      }
      // Time slices: each job in turn, four slices each.
      for (let slice = 0; slice < 4; slice++) {
        for (const job of running) {
          b.to(job.pid);
          const from = Math.floor((heapBytes * slice) / 4 / 4096) * 4096;
          const to = Math.floor((heapBytes * (slice + 1)) / 4 / 4096) * 4096;
          populate(b, job.heap + from, to - from);
          k.compute?.(((to - from) / 4096) * KBUILD_INSTRUCTIONS_PER_PAGE);
          for (let i = 0; i < 256; i++) b.push(job.heap + randomOffset(prng, to), ACCESS_UPDATE);
          for (let at = 0; at < to; at += 512) b.push(job.heap + at, ACCESS_READ);
          b.flush();
          const tmp = k.mmap(job.pid, 4 * 4096);
          populate(b, tmp, 4 * 4096);
          b.flush();
          k.munmap(job.pid, tmp, Math.ceil((4 * 4096) / pb) * pb);
        }
      }
      for (const job of running) k.exit(job.pid);
      b.pid = make;
      done += jobs;
      k.countOperations(jobs);
    }
    b.flush();
    return b.h;
  },
};

export const WORKLOADS: readonly Workload[] = [
  forkExec,
  mmapChurn,
  gups,
  stream,
  pointerChase,
  kbuild,
];

/** A workload by name; throws with the list of names when there is none. */
export function workloadByName(name: string): Workload {
  const w = WORKLOADS.find((x) => x.name === name);
  if (w === undefined) {
    throw studyError(
      "STUDY_UNKNOWN_WORKLOAD",
      `There is no workload "${name}". Choose from: ${WORKLOADS.map((x) => x.name).join(", ")}.`,
    );
  }
  return w;
}
