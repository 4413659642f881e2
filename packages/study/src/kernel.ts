/*
 * The study's own small guest kernel: processes with address spaces, anonymous mmap and
 * munmap, demand paging, fork with copy on write, exec and exit, and bulk replay of user
 * memory accesses through the MMU backend. It drives any backend directly (BackendOps), so a
 * study runs before, and beside, the full guest kernel of @hyperlab/guest.
 *
 * Invariants:
 * - The kernel owns a fixed allotment of the domain's frames, handed out by its own page
 *   allocator (2 MiB blocks split into 4 KiB pages on demand; nothing is merged back), so a
 *   run's frame numbers depend only on its operations.
 * - Page tables are written only through BackendOps.setEntry, CR3 only through loadCr3, and
 *   every TLB maintenance the x86 rules require is issued through flushOne / flushAll: after
 *   a present entry loses rights (COW, munmap) and before its frame is reused.
 * - `refs[frame]` counts the leaf entries that map a user page (copy on write shares a page
 *   between a parent and its children); a page returns to the allocator at zero.
 * - The kernel reads its own tables straight from RAM (it has them mapped); user accesses,
 *   page-table writes and its zeroing and copying of frames go through the backend (on
 *   shadow paging a freed table is still write-protected). That read is the one shortcut.
 */
import {
  createHypervisor,
  HyperlabError,
  type Hypervisor,
  PFEC_user_mode,
  PFEC_write_access,
  type Vcpu,
} from "@hyperlab/core";
import { createMachine, type Ram } from "@hyperlab/machine";
import type { BackendOps, BackendParams, StudyBackend } from "./backends";
import { type StudyCounts, zeroCounts } from "./counts";

const P = 0x1;
const RW = 0x2;
const US = 0x4;
const A = 0x20;
const D = 0x40;
const PSE = 0x80;
const TABLE_FLAGS = P | RW | US | A;
const TWO_20 = 0x10_0000;

/** User mappings live below this address (L4 slots 0..255). */
export const USER_VA_END = 0x8000_0000_0000;
/** mmap hands out addresses top down below here. */
export const MMAP_BASE = 0x7f00_0000_0000;
const MMAP_MIN = 0x40_0000;
/** Linux's tlb_single_page_flush_ceiling. */
const FLUSH_CEILING = 33;

/** Access kinds in a replay. */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
/** Read, then write the value read mixed with the access index (a GUPS update). */
export const ACCESS_UPDATE = 2;

/**
 * What a workload runs on: processes with anonymous memory and bulk access replay. The
 * study's own kernel (StudyKernel) and the guest kernel of @hyperlab/guest (GuestTarget)
 * both serve it.
 */
export interface StudyTarget {
  /** Bytes of one user page (the guest page size). */
  readonly pageSize: number;
  spawn(): number;
  fork(pid: number): number;
  exec(pid: number): void;
  exit(pid: number): void;
  mmap(pid: number, bytes: number): number;
  munmap(pid: number, va: number, bytes: number): void;
  replay(pid: number, vas: Float64Array, kinds: Uint8Array, n: number, salt: number): number;
  store(pid: number, vas: Float64Array, values: Uint32Array, n: number): void;
  chase(pid: number, base: number, stride: number, start: number, steps: number): number;
  countOperations(n: number): void;
  counts(): StudyCounts;
}

interface Vma {
  start: number;
  end: number;
}

interface Proc {
  pid: number;
  pgd: number;
  vmas: Vma[];
}

export interface KernelConfig {
  backend: StudyBackend;
  params: BackendParams;
  /** Guest memory in bytes (rounded up to 2 MiB). */
  guestBytes: number;
  /** Seed of the machine (the kernel itself draws nothing random). */
  seed: number;
}

function frameOf(lo: number, hi: number): number {
  return (hi & 0xfffff) * TWO_20 + (lo >>> 12);
}

/** The study kernel on one booted hypervisor with one domain and one vCPU. */
export class StudyKernel implements StudyTarget {
  readonly hv: Hypervisor;
  readonly vcpu: Vcpu;
  readonly ops: BackendOps;
  readonly ram: Ram;
  readonly large: boolean;
  private readonly mmu: BackendOps["mmu"];
  private readonly k: StudyCounts = zeroCounts();
  private readonly refs: Int32Array;
  private readonly free4k: number[] = [];
  private readonly free2m: number[] = [];
  private readonly procs = new Map<number, Proc>();
  private nextPid = 1;
  private current = -1;
  private readonly idleRoot: number;
  private readonly pageBytes: number;

  constructor(config: KernelConfig) {
    const { backend, params } = config;
    const why = backend.unsupported(params);
    if (why !== null) {
      throw new HyperlabError(
        "STUDY_UNSUPPORTED",
        `Backend ${backend.name} cannot run guest pages ${params.guestPageSize}: ${why}. Drop that combination from the matrix.`,
      );
    }
    const blocks = Math.max(1, Math.ceil(config.guestBytes / (2 * TWO_20)));
    const guestPages = blocks * 512;
    // Room for the hypervisor's own frames (M2P, nested or shadow tables, frame 0); RAM is
    // backed lazily, so slack costs nothing until used.
    const ramBytes = (guestPages + Math.ceil(guestPages / 64) + 8192) * 4096;
    const machine = createMachine({ ramBytes, cpus: 1, seed: config.seed });
    this.hv = createHypervisor({ machine, plugins: backend.plugins(params) }).boot();
    const d = this.hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: guestPages });
    for (let i = 0; i < blocks; i++) {
      const mfn = this.hv.allocDomainPages(d, 9);
      if (mfn < 0) throw new Error("study kernel bug: the machine is too small for its guest");
      this.free2m.push(mfn);
    }
    // Hand blocks out lowest first.
    this.free2m.reverse();
    this.hv.unpauseDomain(d);
    this.vcpu = d.vcpus[0];
    this.ram = machine.ram;
    this.refs = new Int32Array(this.ram.nrFrames);
    this.large = params.guestPageSize === "2M";
    this.pageBytes = this.large ? 2 * TWO_20 : 4096;
    this.ops = backend.attach(this.hv, this.vcpu);
    this.mmu = this.ops.mmu;
    this.idleRoot = this.allocTable();
    this.ops.newRoot(this.idleRoot);
    this.ops.loadCr3(this.idleRoot);
    this.k.tlbFlushes++;
  }

  /** Kernel counts plus the backend's hardware counts, as of now. */
  counts(): StudyCounts {
    const c = { ...this.k };
    this.ops.addHardwareCounts(c);
    return c;
  }

  /** Counts a workload-level operation (the unit of per-operation figures). */
  countOperations(n: number): void {
    this.k.operations += n;
  }

  /** Bytes of one user page (the guest page size). */
  get pageSize(): number {
    return this.pageBytes;
  }

  // ---- memory ----

  private alloc4k(): number {
    let f = this.free4k.pop();
    if (f === undefined) {
      const b = this.free2m.pop();
      if (b === undefined) this.oom();
      for (let i = 511; i >= 0; i--) this.free4k.push(b + i);
      f = this.free4k.pop() as number;
    }
    this.ops.clearFrame(f);
    return f;
  }

  private alloc2m(): number {
    const b = this.free2m.pop();
    if (b === undefined) this.oom();
    for (let i = 0; i < 512; i++) this.ops.clearFrame(b + i);
    return b;
  }

  private oom(): never {
    throw new HyperlabError(
      "STUDY_OUT_OF_MEMORY",
      "The study's guest ran out of memory. Lower workingSetBytes or processes, or raise guestMemoryBytes.",
    );
  }

  private allocTable(): number {
    return this.alloc4k();
  }

  private freePage(f: number, large: boolean): void {
    if (large) this.free2m.push(f);
    else this.free4k.push(f);
  }

  private set(table: number, index: number, lo: number, hi: number): void {
    this.k.ptUpdates++;
    this.ops.setEntry(table, index, lo >>> 0, hi >>> 0);
  }

  private entryLo(table: number, index: number): number {
    return this.ram.read64lo(table * 4096 + index * 8);
  }

  private entryHi(table: number, index: number): number {
    return this.ram.read64hi(table * 4096 + index * 8);
  }

  // ---- processes ----

  private proc(pid: number): Proc {
    const p = this.procs.get(pid);
    if (p === undefined) {
      throw new HyperlabError(
        "STUDY_NO_PROCESS",
        `Process ${pid} does not exist in the study kernel. Use a pid returned by spawn or fork.`,
      );
    }
    return p;
  }

  private newRoot(): number {
    const pgd = this.allocTable();
    this.ops.newRoot(pgd);
    return pgd;
  }

  /** A new process with an empty address space. */
  spawn(): number {
    const pid = this.nextPid++;
    this.procs.set(pid, { pid, pgd: this.newRoot(), vmas: [] });
    return pid;
  }

  private switchTo(p: Proc): void {
    if (this.current === p.pid) return;
    this.ops.commit();
    this.ops.loadCr3(p.pgd);
    this.current = p.pid;
    this.k.contextSwitches++;
    this.k.tlbFlushes++;
  }

  private syscall(): void {
    this.k.syscalls++;
    if (this.ops.trapsThroughHypervisor) this.k.traps++;
  }

  /** fork(): a child sharing every user page copy on write. Returns the child's pid. */
  fork(pid: number): number {
    this.syscall();
    const parent = this.proc(pid);
    const child: Proc = {
      pid: this.nextPid++,
      pgd: this.newRoot(),
      vmas: parent.vmas.map((v) => ({ start: v.start, end: v.end })),
    };
    this.procs.set(child.pid, child);
    this.copyTable(parent.pgd, child.pgd, 4);
    this.ops.commit();
    // The parent's writable entries became read-only: flush what its TLB may still hold.
    if (this.current === pid) {
      this.ops.flushAll();
      this.k.tlbFlushes++;
    }
    return child.pid;
  }

  private copyTable(src: number, dst: number, level: number): void {
    const leafLevel = this.large ? 2 : 1;
    const end = level === 4 ? 256 : 512;
    for (let i = 0; i < end; i++) {
      const lo = this.entryLo(src, i);
      if ((lo & P) === 0) continue;
      const hi = this.entryHi(src, i);
      if (level > leafLevel) {
        const t = this.allocTable();
        this.set(dst, i, t * 4096 + TABLE_FLAGS, Math.floor(t / TWO_20));
        this.copyTable(frameOf(lo, hi), t, level - 1);
        continue;
      }
      const ro = lo & ~(RW | D);
      if (lo !== ro) this.set(src, i, ro, hi);
      this.set(dst, i, ro, hi);
      this.refs[frameOf(lo, hi)]++;
    }
  }

  /** exec(): replaces the address space with an empty one. */
  exec(pid: number): void {
    this.syscall();
    const p = this.proc(pid);
    const old = p.pgd;
    if (this.current === pid) {
      this.ops.commit();
      this.ops.loadCr3(this.idleRoot);
      this.current = -1;
      this.k.tlbFlushes++;
    }
    this.teardown(old);
    p.pgd = this.newRoot();
    p.vmas = [];
  }

  /** exit(): frees the address space and the process. */
  exit(pid: number): void {
    this.syscall();
    const p = this.proc(pid);
    if (this.current === pid) {
      this.ops.commit();
      this.ops.loadCr3(this.idleRoot);
      this.current = -1;
      this.k.tlbFlushes++;
    }
    this.teardown(p.pgd);
    this.procs.delete(pid);
  }

  private teardown(pgd: number): void {
    this.ops.commit();
    const tables: number[] = [];
    const pages: number[] = [];
    this.collect(pgd, 4, tables, pages);
    this.ops.freeRoot(pgd);
    for (const f of pages) this.freePage(f, this.large);
    for (const t of tables) this.freePage(t, false);
    this.freePage(pgd, false);
  }

  private collect(table: number, level: number, tables: number[], pages: number[]): void {
    const leafLevel = this.large ? 2 : 1;
    const end = level === 4 ? 256 : 512;
    for (let i = 0; i < end; i++) {
      const lo = this.entryLo(table, i);
      if ((lo & P) === 0) continue;
      const f = frameOf(lo, this.entryHi(table, i));
      if (level > leafLevel) {
        this.collect(f, level - 1, tables, pages);
        tables.push(f);
      } else if (--this.refs[f] === 0) {
        pages.push(f);
      }
    }
  }

  // ---- mmap, munmap ----

  /** mmap(): an anonymous private read-write area of at least `bytes`. Returns its address. */
  mmap(pid: number, bytes: number): number {
    this.syscall();
    const p = this.proc(pid);
    if (!(Number.isInteger(bytes) && bytes > 0 && bytes <= MMAP_BASE - MMAP_MIN)) {
      throw new HyperlabError(
        "STUDY_BAD_MMAP",
        `mmap of ${bytes} bytes: ask for a positive whole number of bytes below ${MMAP_BASE - MMAP_MIN}.`,
      );
    }
    const len = Math.ceil(bytes / this.pageBytes) * this.pageBytes;
    let top = MMAP_BASE;
    for (let i = p.vmas.length - 1; i >= 0; i--) {
      const a = p.vmas[i];
      if (a.start >= top) continue;
      if (top - a.end >= len) break;
      top = a.start;
    }
    const start = top - len;
    if (start < MMAP_MIN) this.oom();
    let i = 0;
    while (i < p.vmas.length && p.vmas[i].start < start) i++;
    p.vmas.splice(i, 0, { start, end: start + len });
    return start;
  }

  /** munmap(): unmaps [va, va + bytes) (whole pages), frees its pages after the TLB flush. */
  munmap(pid: number, va: number, bytes: number): void {
    this.syscall();
    const p = this.proc(pid);
    const pb = this.pageBytes;
    const start = Math.floor(va / pb) * pb;
    const end = Math.ceil((va + bytes) / pb) * pb;
    const out: Vma[] = [];
    for (const a of p.vmas) {
      if (a.end <= start || a.start >= end) out.push(a);
      else {
        if (a.start < start) out.push({ start: a.start, end: start });
        if (a.end > end) out.push({ start: end, end: a.end });
      }
    }
    p.vmas = out;
    const freed: number[] = [];
    const cleared: number[] = [];
    for (let at = start; at < end; at += pb) {
      const t = this.leafTable(p.pgd, at, false);
      if (t < 0) continue;
      const idx = this.index(at, this.large ? 2 : 1);
      const lo = this.entryLo(t, idx);
      if ((lo & P) === 0) continue;
      const f = frameOf(lo, this.entryHi(t, idx));
      this.set(t, idx, 0, 0);
      cleared.push(at);
      if (--this.refs[f] === 0) freed.push(f);
    }
    this.ops.commit();
    if (this.current === pid && cleared.length > 0) {
      if (cleared.length > FLUSH_CEILING) {
        this.ops.flushAll();
        this.k.tlbFlushes++;
      } else {
        for (const at of cleared) {
          this.ops.flushOne(at);
          this.k.invlpg++;
        }
      }
    }
    for (const f of freed) this.freePage(f, this.large);
  }

  private index(va: number, level: number): number {
    return Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512;
  }

  /** The table holding `va`'s leaf entry, created on the way if `create`, or -1. */
  private leafTable(pgd: number, va: number, create: boolean): number {
    const leafLevel = this.large ? 2 : 1;
    let table = pgd;
    for (let level = 4; level > leafLevel; level--) {
      const i = this.index(va, level);
      const lo = this.entryLo(table, i);
      if ((lo & P) !== 0) {
        table = frameOf(lo, this.entryHi(table, i));
        continue;
      }
      if (!create) return -1;
      const t = this.allocTable();
      this.set(table, i, t * 4096 + TABLE_FLAGS, Math.floor(t / TWO_20));
      table = t;
    }
    return table;
  }

  // ---- faults ----

  private pageFault(p: Proc, va: number, write: boolean): void {
    this.k.pageFaults++;
    if (this.ops.trapsThroughHypervisor) this.k.traps++;
    const vma = this.findVma(p, va);
    if (vma === undefined) {
      throw new HyperlabError(
        "STUDY_SEGV",
        `A workload touched ${va.toString(16)} outside its mappings in process ${p.pid}. Workloads must touch only what they mmap.`,
      );
    }
    const pb = this.pageBytes;
    const base = Math.floor(va / pb) * pb;
    const leafLevel = this.large ? 2 : 1;
    const t = this.leafTable(p.pgd, base, true);
    const idx = this.index(base, leafLevel);
    const lo = this.entryLo(t, idx);
    const leaf = P | US | A | (this.large ? PSE : 0);
    if ((lo & P) === 0) {
      const f = this.large ? this.alloc2m() : this.alloc4k();
      this.refs[f] = 1;
      this.set(t, idx, f * 4096 + leaf + (write ? RW | D : RW), Math.floor(f / TWO_20));
      this.ops.commit();
      return;
    }
    const f = frameOf(lo, this.entryHi(t, idx));
    if (write && (lo & RW) === 0) {
      // Copy on write: the last sharer takes the page over, others copy it.
      let g = f;
      if (this.refs[f] > 1) {
        g = this.large ? this.alloc2m() : this.alloc4k();
        const n = this.large ? 512 : 1;
        for (let i = 0; i < n; i++) this.ops.copyFrame(g + i, f + i);
        this.refs[f]--;
        this.refs[g] = 1;
      }
      this.set(t, idx, g * 4096 + leaf + RW + D, Math.floor(g / TWO_20));
      this.ops.commit();
    }
    // The old entry (read-only, or stale) may still be cached.
    this.ops.flushOne(base);
    this.k.invlpg++;
  }

  private findVma(p: Proc, va: number): Vma | undefined {
    for (const a of p.vmas) if (va >= a.start && va < a.end) return a;
    return undefined;
  }

  // ---- user accesses ----

  /**
   * Replays `n` user accesses of process `pid`: `vas[i]` (4-byte aligned) with kind
   * `kinds[i]` (ACCESS_*). Writes store a value derived from `salt` and i; reads fold the
   * value read into the returned checksum, which is the functional result of the replay.
   */
  replay(pid: number, vas: Float64Array, kinds: Uint8Array, n: number, salt: number): number {
    const p = this.proc(pid);
    this.switchTo(p);
    const mmu = this.mmu;
    const v = this.vcpu;
    const ram = this.ram;
    let h = 0x811c9dc5 ^ salt;
    for (let i = 0; i < n; i++) {
      const va = vas[i];
      const kind = kinds[i];
      const access = kind === ACCESS_READ ? PFEC_user_mode : PFEC_user_mode | PFEC_write_access;
      let ma = mmu.translate(v, va, access);
      if (ma < 0) {
        this.pageFault(p, va, kind !== ACCESS_READ);
        ma = mmu.translate(v, va, access);
        if (ma < 0) throw new Error(`study kernel bug: ${va.toString(16)} faults after its fault`);
      }
      if (kind === ACCESS_WRITE) {
        ram.write32(ma, Math.imul(i + salt, 0x9e3779b1));
      } else {
        const x = ram.read32(ma);
        h = Math.imul(h ^ x, 0x01000193);
        if (kind === ACCESS_UPDATE) ram.write32(ma, x ^ (i + salt));
      }
    }
    this.k.accesses += n;
    return h >>> 0;
  }

  /** Writes `values[i]` at `vas[i]` (4-byte aligned) for i < n, in process `pid`. */
  store(pid: number, vas: Float64Array, values: Uint32Array, n: number): void {
    const p = this.proc(pid);
    this.switchTo(p);
    const access = PFEC_user_mode | PFEC_write_access;
    for (let i = 0; i < n; i++) {
      const va = vas[i];
      let ma = this.mmu.translate(this.vcpu, va, access);
      if (ma < 0) {
        this.pageFault(p, va, true);
        ma = this.mmu.translate(this.vcpu, va, access);
        if (ma < 0) throw new Error(`study kernel bug: ${va.toString(16)} faults after its fault`);
      }
      this.ram.write32(ma, values[i]);
    }
    this.k.accesses += n;
  }

  /**
   * Pointer chasing: from slot `start`, reads `steps` times the u32 slot index stored at
   * `base + slot * stride`, each read depending on the one before. Returns the checksum.
   */
  chase(pid: number, base: number, stride: number, start: number, steps: number): number {
    const p = this.proc(pid);
    this.switchTo(p);
    const mmu = this.mmu;
    const v = this.vcpu;
    const ram = this.ram;
    let slot = start;
    let h = 0x811c9dc5;
    for (let i = 0; i < steps; i++) {
      const va = base + slot * stride;
      let ma = mmu.translate(v, va, PFEC_user_mode);
      if (ma < 0) {
        this.pageFault(p, va, false);
        ma = mmu.translate(v, va, PFEC_user_mode);
        if (ma < 0) throw new Error(`study kernel bug: ${va.toString(16)} faults after its fault`);
      }
      slot = ram.read32(ma);
      h = Math.imul(h ^ slot, 0x01000193);
    }
    this.k.accesses += steps;
    return h >>> 0;
  }

  /** Frames the kernel has not handed out (for tests). */
  get freeFrames(): number {
    return this.free4k.length + this.free2m.length * 512;
  }

  /** Live processes. */
  get processCount(): number {
    return this.procs.size;
  }
}
