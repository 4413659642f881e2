/*
 * The study's workloads on @hyperlab/guest, the Linux-like guest kernel on pv_ops, through
 * the StudyTarget seam: processes, system calls and demand paging are the guest's. On bare
 * metal, nested and shadow paging the guest runs with native pv_ops (it stores its own
 * entries); on Xen PV with Xen's pv_ops (batched mmu_update, pinning, multicalls), booted
 * from the PV domain builder. 2 MiB guest pages are the guest's transparent huge pages
 * (THP "always"); Xen PV has none (its backend says so, and the cell is skipped).
 *
 * Invariants: every access goes through the guest's Process interface (and so through the
 * hardware MMU with the guest's fault handling); an access the guest answers with a signal
 * is a bug in the workload (or too little memory) and throws; the values hashed depend only
 * on the operations, so a workload's checksum is the same on every backend and page size.
 */
import { createHypervisor, HyperlabError, type Hypervisor } from "@hyperlab/core";
import {
  bootNativeKernel,
  bootXenPvKernel,
  createGuestPort,
  type GuestKernel,
  PROT_READ,
  PROT_WRITE,
  type Process,
  type REPLAY_READ,
  type REPLAY_WRITE,
  type REPLAY_XOR,
  SIGKILL,
  spawnProcess,
  startNativeKernel,
} from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain } from "@hyperlab/pv-mmu";
import type { BackendCounters, BackendParams, StudyBackend } from "./backends";
import { CacheHierarchy, type CacheLevelConfig, DEFAULT_CACHE_LEVELS } from "./cache";
import { type StudyCounts, zeroCounts } from "./counts";
import { ACCESS_READ, ACCESS_UPDATE, ACCESS_WRITE, type StudyTarget } from "./target";

// The study's access kinds are the guest's replay kinds (an update is a read-modify-write).
ACCESS_READ satisfies typeof REPLAY_READ;
ACCESS_WRITE satisfies typeof REPLAY_WRITE;
ACCESS_UPDATE satisfies typeof REPLAY_XOR;

/**
 * ACCESS_WRITE for the replay's per-access passes, as a const enum: the build writes it as a
 * literal, where the bundle's `var` would be loaded and checked at each use.
 */
const enum A {
  ACCESS_WRITE = 1,
}
if (A.ACCESS_WRITE !== ACCESS_WRITE)
  throw new Error("guest-target.ts: A disagrees with target.ts.");

export interface GuestTargetConfig {
  backend: StudyBackend;
  params: BackendParams;
  guestBytes: number;
  seed: number;
  /** Xen PV only: batch page-table updates into multicalls (Linux's lazy MMU mode). Default true. */
  pvBatching?: boolean;
  /** The data caches user accesses go through (default: DEFAULT_CACHE_LEVELS, Skylake's). */
  cache?: readonly CacheLevelConfig[];
}

const HPAGE = 2 ** 21;
const GPAGE = 2 ** 30;
/** mmap hands out addresses below this (the guest's MMAP_BASE); lengths stay under it. */
const MMAP_LIMIT = 0x7f00_0000_0000;

/** A process's address space in the data-cache model (0 is machine addresses). */
function space(pid: number): number {
  return 1 + (pid % 2046);
}

/** The guest kernel as a study target. */
export class GuestTarget implements StudyTarget {
  readonly hv: Hypervisor;
  readonly kernel: GuestKernel;
  readonly pageSize: number;
  private readonly hw: BackendCounters;
  private readonly procs = new Map<number, Process>();
  private readonly k = zeroCounts();
  private readonly xen: boolean;
  /** The data-cache hierarchy every user access goes through (the same on every backend). */
  readonly cache: CacheHierarchy;
  /** Page-walk references served by L1d, L2, the LLC and DRAM (the rest of cache.hits is user data). */
  readonly walkHits = new Float64Array(4);
  /** Replay's operands in, values read out (grown to the largest batch). */
  private values = new Uint32Array(4096);

  constructor(config: GuestTargetConfig) {
    const { backend, params } = config;
    this.cache = new CacheHierarchy(config.cache ?? DEFAULT_CACHE_LEVELS);
    const why = backend.unsupported(params);
    if (why !== null) {
      throw new HyperlabError(
        "STUDY_UNSUPPORTED",
        `Backend ${backend.name} cannot run guest pages ${params.guestPageSize}: ${why}. Drop that combination from the matrix.`,
      );
    }
    const large = params.guestPageSize === "2M";
    this.pageSize = large ? HPAGE : 4096;
    // Whole 2 MiB blocks, so huge pages come from the kernel's own blocks; with huge pages,
    // one more block per 64 for page tables and 4 KiB pages.
    const blocks = Math.max(2, Math.ceil(config.guestBytes / HPAGE));
    // A 1 GiB host page maps only a whole, aligned 1 GiB run the domain owns (npt-mmu's
    // backGfn): with 1 GiB host pages the guest's memory is whole 1 GiB runs, and the
    // machine has one run more for the hypervisor's own frames below the first.
    const giant = backend.name === "nested" && params.hostPageSize === "1G";
    const runs = Math.ceil((blocks * HPAGE * 1.1) / GPAGE);
    const nrPages = giant
      ? runs * (GPAGE / 4096)
      : (large ? blocks + Math.ceil(blocks / 64) + 1 : blocks) * 512;
    const ramBytes = giant
      ? (runs + 1) * GPAGE + (Math.ceil(nrPages / 64) + 8192) * 4096
      : (nrPages + Math.ceil(nrPages / 64) + 8192) * 4096;
    const machine = createMachine({ ramBytes, cpus: 1, seed: config.seed });
    this.hv = createHypervisor({ machine, plugins: backend.plugins(params) }).boot();
    const d = this.hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: nrPages + 512 });
    // Page walks' references (from boot on) go through the same caches as user data, at
    // machine addresses (space 0; processes are spaces 1..2046).
    const cache = this.cache;
    const walkHits = this.walkHits;
    this.hw = backend.attach(this.hv, d.vcpus[0], (maddr) => {
      walkHits[cache.access(0, maddr)]++;
    });
    this.xen = backend.name === "pv";
    if (this.xen) {
      const built = buildPvDomain(this.hv, this.hv.slot("pv-mmu"), { domain: d, nrPages });
      this.kernel = bootXenPvKernel(this.hv, d, {
        startInfoVa: built.rsi,
        batching: config.pvBatching ?? true,
      });
    } else if (giant) {
      const frames: number[] = [];
      for (let r = 0; r < runs; r++) {
        // Populated on demand, as the blocks below: the same 1 GiB runs, reserved.
        const mfn = this.hv.reserveDomainPages(d, 18);
        if (mfn < 0) this.failed("1 GiB of aligned guest memory", mfn);
        for (let i = 0; i < GPAGE / 4096; i++) frames.push(mfn + i);
      }
      this.kernel = startNativeKernel(createGuestPort(this.hv, d), frames, {
        transparentHugepage: large ? "always" : "never",
      });
    } else {
      this.kernel = bootNativeKernel(this.hv, d, {
        nrPages,
        // Guest memory it never touches costs no host memory (issue #16 item 3).
        populateOnDemand: true,
        transparentHugepage: large ? "always" : "never",
      });
    }
    this.hv.unpauseDomain(d);
  }

  private proc(pid: number): Process {
    const p = this.procs.get(pid);
    if (p === undefined || p.mm === null) {
      throw new HyperlabError(
        "STUDY_NO_PROCESS",
        `Process ${pid} does not exist (or is dead) in the guest kernel. Use a pid returned by spawn or fork.`,
      );
    }
    return p;
  }

  private syscall(): void {
    this.k.syscalls++;
    if (this.xen) this.k.traps++;
  }

  private failed(what: string, rc: number): never {
    throw new HyperlabError(
      "STUDY_GUEST_FAILED",
      `The guest kernel refused ${what} (${rc}). Give the study more guest memory or fewer processes.`,
    );
  }

  private killed(p: Process, va: number): never {
    if (p.signal === SIGKILL) {
      throw new HyperlabError(
        "STUDY_OUT_OF_MEMORY",
        `The guest kernel ran out of memory (process ${p.pid} killed at ${va.toString(16)}). Lower workingSetBytes or processes, or raise the workload's guest memory.`,
      );
    }
    throw new HyperlabError(
      "STUDY_SEGV",
      `The guest kernel killed process ${p.pid} (signal ${p.signal}) at ${va.toString(16)}. Workloads must touch only what they mmap.`,
    );
  }

  spawn(): number {
    const p = spawnProcess(this.kernel);
    this.procs.set(p.pid, p);
    return p.pid;
  }

  fork(pid: number): number {
    this.syscall();
    const c = this.proc(pid).fork();
    if (typeof c === "number") this.failed("fork", c);
    this.procs.set(c.pid, c);
    return c.pid;
  }

  exec(pid: number): void {
    this.syscall();
    const rc = this.proc(pid).exec();
    if (rc !== 0) this.failed("exec", rc);
  }

  exit(pid: number): void {
    this.syscall();
    this.proc(pid).exit(0);
    this.procs.delete(pid);
  }

  mmap(pid: number, bytes: number): number {
    if (!(Number.isInteger(bytes) && bytes > 0 && bytes <= MMAP_LIMIT / 2)) {
      throw new HyperlabError(
        "STUDY_BAD_MMAP",
        `mmap of ${bytes} bytes: ask for a positive whole number of bytes up to ${MMAP_LIMIT / 2}.`,
      );
    }
    this.syscall();
    // Whole guest pages: with 2 MiB pages every area is a run of huge pages.
    const len = Math.ceil(bytes / this.pageSize) * this.pageSize;
    const va = this.proc(pid).mmap(len, PROT_READ | PROT_WRITE);
    if (va < 0) this.failed("mmap", va);
    return va;
  }

  munmap(pid: number, va: number, bytes: number): void {
    this.syscall();
    const rc = this.proc(pid).munmap(va, Math.ceil(bytes / 4096) * 4096);
    if (rc !== 0) this.failed("munmap", rc);
  }

  replay(pid: number, vas: Float64Array, kinds: Uint8Array, n: number, salt: number): number {
    const p = this.proc(pid);
    let values = this.values;
    if (values.length < n) {
      values = new Uint32Array(n);
      this.values = values;
    }
    // The operands: a write stores a value of the index, an update xors the index in.
    for (let i = 0; i < n; i++) {
      values[i] =
        kinds[i] === A.ACCESS_WRITE ? Math.imul(i + salt, 0x9e3779b1) >>> 0 : (i + salt) >>> 0;
    }
    // One loop in the guest: per access the cache model's reference, then its translations
    // (whose walks' references follow it into the model) and RAM.
    const done = p.replay(vas, kinds, values, n, this.cache, space(pid));
    if (done !== n) this.killed(p, vas[done]);
    let h = 0x811c9dc5 ^ salt;
    for (let i = 0; i < n; i++) {
      if (kinds[i] !== A.ACCESS_WRITE) h = Math.imul(h ^ values[i], 0x01000193);
    }
    this.k.accesses += n;
    return h >>> 0;
  }

  store(pid: number, vas: Float64Array, values: Uint32Array, n: number): void {
    const p = this.proc(pid);
    if (p.accessSet(vas, values, n) !== n) this.killed(p, vas[0]);
    const sp = space(pid);
    for (let i = 0; i < n; i++) this.cache.access(sp, vas[i]);
    this.k.accesses += n;
  }

  chase(pid: number, base: number, stride: number, start: number, steps: number): number {
    const p = this.proc(pid);
    let slot = start;
    let h = 0x811c9dc5;
    const cache = this.cache;
    const sp = space(pid);
    for (let i = 0; i < steps; i++) {
      const va = base + slot * stride;
      cache.access(sp, va);
      const x = p.load(va);
      if (x < 0) this.killed(p, va);
      slot = x;
      h = Math.imul(h ^ slot, 0x01000193);
    }
    this.k.accesses += steps;
    return h >>> 0;
  }

  compute(n: number): void {
    this.k.instructions += n;
  }

  countOperations(n: number): void {
    this.k.operations += n;
  }

  counts(): StudyCounts {
    const c = { ...this.k };
    const g = this.kernel.counts;
    const hits = this.cache.hits;
    const walk = this.walkHits;
    c.l2Hits = hits[1] - walk[1];
    c.llcHits = hits[2] - walk[2];
    c.dramAccesses = hits[3] - walk[3];
    c.walkL2Hits = walk[1];
    c.walkLlcHits = walk[2];
    c.walkDramAccesses = walk[3];
    c.pageFaults = g.pageFaults;
    c.contextSwitches = g.contextSwitches;
    c.ptUpdates = g.ptUpdates;
    // Demand-zero pages (512 per huge page) and new page tables are zeroed; COW copies.
    c.pagesZeroed = g.demandZero + g.ptPagesAllocated;
    c.pagesCopied = g.cowCopies;
    c.forks = g.forks;
    c.execs = g.execs;
    c.exits = g.exits;
    // Under Xen PV faults trap through Xen, and so do stores to pinned tables (ptwr).
    if (this.xen) c.traps += g.pageFaults + g.trappingStores;
    this.hw.addHardwareCounts(c);
    this.hw.addFlushCounts(c);
    return c;
  }
}
