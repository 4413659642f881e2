/*
 * Processes and the program interface: a guest program makes memory accesses (single, and in
 * bulk over typed arrays) and system calls through a Process.
 *
 * Invariants: every user access is translated by the hardware MMU (core's `mmu` slot) in
 * user mode, so the TLB model sees each one; a translation that faults enters the kernel's
 * fault handler, which fixes the mapping and retries or delivers a signal; a signal kills
 * the process (default action) and is counted, never thrown. Bulk loops allocate nothing.
 * A process that has exited keeps its pid, state and exit status; nothing else.
 */

import { EINVAL, ENOMEM } from "@hyperlab/abi";
import { PFEC_user_mode, PFEC_write_access, type Vcpu } from "@hyperlab/core";
import { fpuTrap, setFsBase } from "./cpu";
import { guestError } from "./errors";
import type { GuestKernel } from "./kernel";
import { HPAGE_PMD_NR, MAP_FIXED, PAGE_SIZE } from "./layout";
import { writeLdt } from "./ldt";
import type { Mm } from "./mm";
import { E_HOLDS_PAGE } from "./pte";
import type { ProcessSnapshot, ProcessState, Task } from "./task";

export type { ProcessSnapshot, ProcessState } from "./task";

/**
 * The per-access paths' constants as a const enum, so that the build writes each use as a
 * number literal (in the bundle a module-level `const` is a `var` and an imported one a
 * module cell, both loaded and checked at every use in V8's optimised code). A load-time
 * check below keeps them equal to their sources in core and to the exported kinds.
 */
const enum P {
  /** PFEC_user_mode: a user-mode read. */
  USER_READ = 4,
  /** PFEC_user_mode | PFEC_write_access. */
  USER_WRITE = 6,
  REPLAY_READ = 0,
  REPLAY_WRITE = 1,
  REPLAY_XOR = 2,
  /** End of user space: 2^47. */
  USER_END = 0x8000_0000_0000,
}
/** Retries of one access after fixed faults before the kernel gives up (a demand fault, then a COW). */
const MAX_FAULT_RETRIES = 4;

/** Kinds of access in `Process.replay`. */
export const REPLAY_READ = 0;
export const REPLAY_WRITE = 1;
/** Read, then store the value read xor an operand (a read-modify-write, as a GUPS update). */
export const REPLAY_XOR = 2;

if (
  P.USER_READ !== PFEC_user_mode ||
  P.USER_WRITE !== (PFEC_user_mode | PFEC_write_access) ||
  P.REPLAY_READ !== REPLAY_READ ||
  P.REPLAY_WRITE !== REPLAY_WRITE ||
  P.REPLAY_XOR !== REPLAY_XOR ||
  P.USER_END !== 2 ** 47
) {
  throw new Error("process.ts: the const enum P disagrees with the constants it stands for.");
}

/** Sees each access of a bulk replay before it is translated (e.g. a data-cache model). */
export interface ReplayObserver {
  access(tag: number, va: number): unknown;
}

export class Process implements Task {
  readonly kernel: GuestKernel;
  readonly pid: number;
  readonly ppid: number;
  mm: Mm | null;
  state: ProcessState = "running";
  exitCode = 0;
  /** The signal that killed it, or 0. */
  signal = 0;
  /** Accumulated u32 sum of every value bulk and single reads returned (a data fingerprint). */
  checksum = 0;

  /** The vCPU the process runs on: the kernel's CPU 0 now (after a restore, the new domain's). */
  private get v(): Vcpu {
    return this.kernel.vcpu(0);
  }
  /** Accesses made (single and bulk). */
  accesses = 0;

  constructor(kernel: GuestKernel, pid: number, ppid: number, mm: Mm) {
    this.kernel = kernel;
    this.pid = pid;
    this.ppid = ppid;
    this.mm = mm;
  }

  private alive(what: string): Mm {
    if (this.mm === null) {
      throw guestError(
        "PROCESS_DEAD",
        `Process ${this.pid} has ${this.state === "killed" ? `been killed by signal ${this.signal}` : "exited"}; it cannot ${what}. Check process.state before driving it.`,
      );
    }
    return this.mm;
  }

  /** Runs this process on the vCPU: loads its address space (a context switch if needed). */
  private enter(what: string): Mm {
    const mm = this.alive(what);
    this.kernel.switchMm(0, mm);
    return mm;
  }

  /** Translates a user access after a miss: the fault path. Machine address, or -1 after a signal. */
  private faultIn(va: number, access: number): number {
    const k = this.kernel;
    const mmu = k.hwMmu;
    const v = this.v;
    for (let tries = 0; tries < MAX_FAULT_RETRIES; tries++) {
      v.inKernel = true;
      const sig = k.handleFault(this.mm!, va, (access & PFEC_write_access) !== 0);
      v.inKernel = false;
      if (sig !== 0) {
        this.kill(sig);
        return -1;
      }
      const ma = mmu.translate(v, va, access);
      if (ma >= 0) return ma;
    }
    this.kill(11);
    return -1;
  }

  private userMode(): void {
    this.v.inKernel = false;
  }

  private kernelMode(): void {
    this.v.inKernel = true;
  }

  // ---- single accesses ----

  /** Loads `size` (1, 2 or 4) bytes at `va`; the value, or -1 if the access killed the process. */
  load(va: number, size: 1 | 2 | 4 = 4): number {
    this.enter("load");
    if (!validVa(va)) return this.segv();
    if (Math.floor(va / PAGE_SIZE) !== Math.floor((va + size - 1) / PAGE_SIZE)) {
      let x = 0;
      for (let i = size - 1; i >= 0; i--) {
        const b = this.load(va + i, 1);
        if (b < 0) return -1;
        x = x * 256 + b;
      }
      return x;
    }
    this.userMode();
    this.accesses++;
    let ma = this.kernel.hwMmu.translate(this.v, va, P.USER_READ);
    if (ma < 0) ma = this.faultIn(va, P.USER_READ);
    this.kernelMode();
    if (ma < 0) return -1;
    const ram = this.kernel.ram;
    const x = size === 4 ? ram.read32(ma) : size === 2 ? ram.read16(ma) : ram.read8(ma);
    this.checksum = (this.checksum + x) >>> 0;
    return x;
  }

  /** Stores `size` bytes of `value` at `va`; false if the access killed the process. */
  store(va: number, value: number, size: 1 | 2 | 4 = 4): boolean {
    this.enter("store");
    if (!validVa(va)) return this.segv() === 0;
    if (Math.floor(va / PAGE_SIZE) !== Math.floor((va + size - 1) / PAGE_SIZE)) {
      for (let i = 0; i < size; i++)
        if (!this.store(va + i, (value >>> (8 * i)) & 0xff, 1)) return false;
      return true;
    }
    this.userMode();
    this.accesses++;
    let ma = this.kernel.hwMmu.translate(this.v, va, P.USER_WRITE);
    if (ma < 0) ma = this.faultIn(va, P.USER_WRITE);
    this.kernelMode();
    if (ma < 0) return false;
    const ram = this.kernel.ram;
    if (size === 4) ram.write32(ma, value >>> 0);
    else if (size === 2) ram.write16(ma, value & 0xffff);
    else ram.write8(ma, value & 0xff);
    return true;
  }

  // ---- bulk accesses ----

  /**
   * `count` u32 accesses at va, va + stride, ...: reads add to `checksum`, writes store
   * `value`. Returns the accesses made (count, or fewer when one killed the process).
   * `va` and `stride` must be multiples of 4.
   */
  strided(va: number, count: number, stride: number, write: boolean, value = 0): number {
    this.enter("access memory");
    if (va % 4 !== 0 || stride % 4 !== 0 || !Number.isInteger(count) || count < 0) {
      throw guestError(
        "PROCESS_BAD_BULK",
        `Bulk accesses are u32s: va (${va}) and stride (${stride}) must be multiples of 4 and count (${count}) a whole number.`,
      );
    }
    const k = this.kernel;
    const mmu = k.hwMmu;
    const ram = k.ram;
    const v = this.v;
    const access = write ? P.USER_WRITE : P.USER_READ;
    const val = value >>> 0;
    // How many of the addresses are user addresses: past them the access is SIGSEGV.
    const valid = userCount(va, count, stride);
    let sum = this.checksum;
    let i = 0;
    let a = va;
    this.userMode();
    if (write) {
      for (; i < valid; i++, a += stride) {
        let ma = mmu.translate(v, a, access);
        if (ma < 0) {
          ma = this.faultIn(a, access);
          if (ma < 0) break;
          this.userMode();
        }
        ram.write32(ma, val);
      }
    } else {
      for (; i < valid; i++, a += stride) {
        let ma = mmu.translate(v, a, access);
        if (ma < 0) {
          ma = this.faultIn(a, access);
          if (ma < 0) break;
          this.userMode();
        }
        sum = (sum + ram.read32(ma)) >>> 0;
      }
    }
    this.kernelMode();
    this.checksum = sum;
    this.accesses += i;
    if (i === valid && valid < count && this.mm !== null) this.segv();
    return i;
  }

  /** Reads `len` bytes (a multiple of 4) from `va` as u32s; see strided. */
  readRange(va: number, len: number): number {
    return this.strided(va, len / 4, 4, false);
  }

  /** Writes `value` over `len` bytes (a multiple of 4) at `va`; see strided. */
  writeRange(va: number, len: number, value: number): number {
    return this.strided(va, len / 4, 4, true, value);
  }

  /**
   * u32 accesses at each address of `vas` (the first `count`): reads add to `checksum`;
   * with `values`, writes store values[i]. Returns the accesses made.
   */
  accessSet(vas: Float64Array, values?: Uint32Array, count = vas.length): number {
    this.enter("access memory");
    if (values !== undefined && values.length < count) {
      throw guestError(
        "PROCESS_BAD_BULK",
        `accessSet got ${values.length} values for ${count} addresses; pass one value per address.`,
      );
    }
    const k = this.kernel;
    const mmu = k.hwMmu;
    const ram = k.ram;
    const v = this.v;
    const write = values !== undefined;
    const access = write ? P.USER_WRITE : P.USER_READ;
    let sum = this.checksum;
    let i = 0;
    this.userMode();
    for (; i < count; i++) {
      const a = vas[i];
      // `a % 4 === 0` for 0 <= a < 2^47, exactly, without V8's float modulo (an x87 fprem).
      if (!(a >= 0 && a < 0x8000_0000_0000 && Math.floor(a * 0.25) * 4 === a)) {
        this.kernelMode();
        this.checksum = sum;
        this.accesses += i;
        if (a % 4 !== 0 && a >= 0 && a < 0x8000_0000_0000) {
          throw guestError(
            "PROCESS_BAD_BULK",
            `accessSet addresses are u32s: address ${a} at index ${i} is not a multiple of 4.`,
          );
        }
        this.segv();
        return i;
      }
      let ma = mmu.translate(v, a, access);
      if (ma < 0) {
        ma = this.faultIn(a, access);
        if (ma < 0) break;
        this.userMode();
      }
      if (write) ram.write32(ma, values[i]);
      else sum = (sum + ram.read32(ma)) >>> 0;
    }
    this.kernelMode();
    this.checksum = sum;
    this.accesses += i;
    return i;
  }

  /**
   * Replays `count` u32 accesses in order, each as `load` or `store` would make it, in one
   * loop: `kinds[i]` is REPLAY_READ (the value read goes to `values[i]`), REPLAY_WRITE
   * (`values[i]` is stored) or REPLAY_XOR (a read-modify-write: the value read goes to
   * `values[i]` and the value read xor the old `values[i]` is stored; two translations, a
   * read then a write). Before each access is translated, `observer.access(tag, vas[i])` is
   * told of it (once for a read-modify-write), so a data-cache model sees user references
   * and the walks' references in the order the accesses make them. Reads add to `checksum`;
   * `accesses` counts each read and write, as the single forms do. Returns the accesses
   * completed: `count`, or the index of the one that killed the process (a fault the kernel
   * could not fix, or an address outside user space: SIGSEGV). A misaligned address or an
   * unknown kind is the caller's mistake and throws (the accesses before it are made).
   * The observer must not drive this kernel.
   */
  replay(
    vas: Float64Array,
    kinds: Uint8Array,
    values: Uint32Array,
    count: number,
    observer?: ReplayObserver,
    tag = 0,
  ): number {
    const mm = this.enter("replay accesses");
    if (
      !Number.isInteger(count) ||
      count < 0 ||
      count > vas.length ||
      count > kinds.length ||
      count > values.length
    ) {
      throw guestError(
        "PROCESS_BAD_BULK",
        `replay of ${count} accesses with ${vas.length} addresses, ${kinds.length} kinds and ${values.length} values: count must be a whole number no larger than any of the three arrays.`,
      );
    }
    const k = this.kernel;
    const mmu = k.hwMmu;
    const ram = k.ram;
    const v = this.v;
    let sum = this.checksum;
    let made = 0;
    let i = 0;
    v.inKernel = false;
    try {
      for (; i < count; i++) {
        const a = vas[i];
        const kind = kinds[i];
        // `a % 4 === 0` for 0 <= a < 2^47, exactly, without V8's float modulo (an x87 fprem).
        if (!(a >= 0 && a < P.USER_END && Math.floor(a * 0.25) * 4 === a && kind <= P.REPLAY_XOR)) {
          if (kind > P.REPLAY_XOR) {
            throw guestError(
              "PROCESS_BAD_BULK",
              `replay kind ${kind} at index ${i} is not REPLAY_READ (0), REPLAY_WRITE (1) or REPLAY_XOR (2).`,
            );
          }
          if (a % 4 !== 0 && a >= 0 && a < P.USER_END) {
            throw guestError(
              "PROCESS_BAD_BULK",
              `replay addresses are u32s: address ${a} at index ${i} is not a multiple of 4.`,
            );
          }
          this.segv();
          break;
        }
        if (observer !== undefined) observer.access(tag, a);
        if (kind !== P.REPLAY_WRITE) {
          made++;
          let ma = mmu.translate(v, a, P.USER_READ);
          if (ma < 0) {
            ma = this.faultIn(a, P.USER_READ);
            if (ma < 0) break;
            k.switchMm(0, mm);
            v.inKernel = false;
          }
          const x = ram.read32(ma);
          sum = (sum + x) >>> 0;
          const operand = values[i];
          values[i] = x;
          if (kind === P.REPLAY_READ) continue;
          made++;
          let mw = mmu.translate(v, a, P.USER_WRITE);
          if (mw < 0) {
            mw = this.faultIn(a, P.USER_WRITE);
            if (mw < 0) break;
            k.switchMm(0, mm);
            v.inKernel = false;
          }
          ram.write32(mw, (x ^ operand) >>> 0);
          continue;
        }
        made++;
        let ma = mmu.translate(v, a, P.USER_WRITE);
        if (ma < 0) {
          ma = this.faultIn(a, P.USER_WRITE);
          if (ma < 0) break;
          k.switchMm(0, mm);
          v.inKernel = false;
        }
        ram.write32(ma, values[i]);
      }
    } finally {
      v.inKernel = true;
      this.checksum = sum;
      this.accesses += made;
    }
    return i;
  }

  /** Copies `len` bytes out of the process (byte loads); null if an access killed it. */
  copyOut(va: number, len: number): Uint8Array | null {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      const b = this.load(va + i, 1);
      if (b < 0) return null;
      out[i] = b;
    }
    return out;
  }

  /** Copies bytes into the process (byte stores); false if an access killed it. */
  copyIn(va: number, bytes: Uint8Array): boolean {
    for (let i = 0; i < bytes.length; i++) if (!this.store(va + i, bytes[i], 1)) return false;
    return true;
  }

  // ---- system calls ----

  /** mmap of anonymous private memory: the address, or -errno. `addr` with MAP_FIXED places it exactly. */
  mmap(length: number, prot: number, flags = 0, addr = 0): number {
    const mm = this.enter("mmap");
    if (!Number.isInteger(flags) || (flags & ~MAP_FIXED) !== 0) return -EINVAL;
    return this.kernel.sysMmap(mm, addr, length, prot, (flags & MAP_FIXED) !== 0);
  }

  munmap(addr: number, length: number): number {
    return this.kernel.sysMunmap(this.enter("munmap"), addr, length);
  }

  /** modify_ldt(1, ...): sets LDT entry `index` to the descriptor (lo, hi). 0 or -errno. */
  modifyLdt(index: number, lo: number, hi: number): number {
    return writeLdt(this.kernel, this.enter("modify_ldt"), index, lo, hi);
  }

  mprotect(addr: number, length: number, prot: number): number {
    return this.kernel.sysMprotect(this.enter("mprotect"), addr, length, prot);
  }

  getpid(): number {
    this.alive("getpid");
    return this.pid;
  }

  /** fork(): the child (sharing every page copy-on-write), or -errno. */
  fork(): Process | number {
    const mm = this.enter("fork");
    const k = this.kernel;
    const child = k.dupMm(mm);
    if (typeof child === "number") return child;
    const p = new Process(k, k.allocPid(), this.pid, child);
    k.processes.set(p.pid, p);
    k.counts.forks++;
    return p;
  }

  /** arch_prctl(ARCH_SET_FS, base): this task's FS base (its TLS pointer), loaded now and at every switch to it. */
  setFsBase(base: number): void {
    const mm = this.enter("arch_prctl");
    setFsBase(this.kernel, 0, mm, base);
  }

  /** Runs an FPU instruction: after a switch it traps (#NM) and the kernel clears CR0.TS. */
  useFpu(): void {
    this.enter("fpu");
    fpuTrap(this.kernel, 0);
  }

  /** exec(): replaces the address space with a fresh one (a stack only). 0 or -errno. */
  exec(): number {
    const old = this.enter("exec");
    const k = this.kernel;
    const mm = k.mmForExec(old);
    if (mm === null) return -ENOMEM;
    const rc = k.takeError();
    if (rc !== 0) {
      k.mmTeardown(mm);
      return rc;
    }
    k.switchMm(0, mm);
    this.mm = mm;
    k.mmTeardown(old);
    k.counts.execs++;
    return k.takeError();
  }

  /** exit(code): tears the address space down; the process keeps only its status. */
  exit(code = 0): void {
    this.alive("exit");
    this.exitCode = code;
    this.state = "exited";
    this.teardown();
  }

  /** Delivers `sig` with its default action: the process dies. */
  kill(sig: number): void {
    if (this.mm === null) return;
    this.kernel.counts.signals++;
    this.signal = sig;
    this.state = "killed";
    this.exitCode = 128 + sig;
    this.teardown();
  }

  private segv(): number {
    this.kill(11);
    return -1;
  }

  private teardown(): void {
    const mm = this.mm!;
    this.mm = null;
    this.kernel.mmTeardown(mm);
    this.kernel.takeError();
    this.kernel.counts.exits++;
  }

  /** Resident user pages: present PTEs of the address space, 512 for a huge PMD (read from the tables). */
  rss(): number {
    const mm = this.mm;
    if (mm === null) return 0;
    const k = this.kernel;
    let n = 0;
    for (const a of mm.vmas) {
      k.forEachPtePage(
        mm,
        a.start,
        a.end,
        (pt, tableVa) => {
          const from = Math.max(0, (a.start - tableVa) / PAGE_SIZE);
          const to = Math.min(512, (a.end - tableVa) / PAGE_SIZE);
          for (let i = from; i < to; i++) if ((k.readEntry(pt, i) & E_HOLDS_PAGE) !== 0) n++;
        },
        () => {
          n += HPAGE_PMD_NR;
        },
      );
    }
    return n;
  }

  snapshot(): ProcessSnapshot {
    return {
      pid: this.pid,
      ppid: this.ppid,
      state: this.state,
      exitCode: this.exitCode,
      signal: this.signal,
      vmas: (this.mm?.vmas ?? []).map((a) => ({ start: a.start, end: a.end, prot: a.prot })),
      rss: this.rss(),
    };
  }
}

/** How many of va, va + stride, ... (count of them) are user addresses, from the first. */
function userCount(va: number, count: number, stride: number): number {
  if (!(va >= 0 && va < P.USER_END)) return 0;
  if (stride === 0) return count;
  const n = stride > 0 ? Math.ceil((P.USER_END - va) / stride) : Math.floor(va / -stride) + 1;
  return Math.min(count, n);
}

function validVa(va: number): boolean {
  return Number.isSafeInteger(va) && va >= 0 && va < 0x8000_0000_0000;
}
