import { describe, expect, it } from "vitest";
import {
  type ConformanceProcess,
  defineGuestConformance,
  type GuestBuildFactory,
  GuestConformanceError,
  guestConformanceCases,
  runGuestConformance,
} from "../src/index";

/*
 * A reference kernel with no paging at all: memory is a map of pages per process, fork
 * copies the map (or, in the broken variant, shares it), areas are a sorted list. It shows
 * what the suite expects of a kernel, and that the suite catches a kernel that gets COW wrong.
 */
const PAGE = 4096;
const USER_END = 2 ** 47;
const MMAP_BASE = 0x7f00_0000_0000;
const STACK_TOP = 0x7fff_ffff_f000;

interface Area {
  start: number;
  end: number;
  prot: number;
}

class RefKernel {
  free = 10_000;
  signals = 0;
  nextPid = 1;
  constructor(readonly shareOnFork: boolean) {}
}

class RefProcess implements ConformanceProcess {
  state = "running";
  exitCode = 0;
  signal = 0;
  checksum = 0;
  areas: Area[] = [];
  pages = new Map<number, Uint32Array>();
  constructor(
    readonly k: RefKernel,
    readonly pid: number,
    readonly ppid: number,
  ) {
    this.areas = [{ start: STACK_TOP - 32 * PAGE, end: STACK_TOP, prot: 3 }];
  }
  private area(va: number) {
    return this.areas.find((a) => va >= a.start && va < a.end);
  }
  private kill(sig: number) {
    this.k.signals++;
    this.signal = sig;
    this.state = "killed";
    this.exitCode = 128 + sig;
    this.drop();
  }
  private drop() {
    this.k.free += this.pages.size;
    this.pages = new Map();
    this.areas = [];
  }
  private page(va: number, write: boolean): Uint32Array | null {
    const a = Number.isSafeInteger(va) && va >= 0 && va < USER_END ? this.area(va) : undefined;
    if (a === undefined || (write ? (a.prot & 2) === 0 : (a.prot & 3) === 0)) {
      this.kill(11);
      return null;
    }
    const base = va - (va % PAGE);
    let p = this.pages.get(base);
    if (p === undefined) {
      p = new Uint32Array(1024);
      this.pages.set(base, p);
      this.k.free--;
    } else if (write && !this.k.shareOnFork) {
      p = p.slice();
      this.pages.set(base, p);
    }
    return p;
  }
  load(va: number, size: 1 | 2 | 4 = 4): number {
    let x = 0;
    for (let i = size - 1; i >= 0; i--) {
      const p = this.page(va + i, false);
      if (p === null) return -1;
      const o = (va + i) % PAGE;
      x = x * 256 + ((p[o >> 2] >>> ((o & 3) * 8)) & 0xff);
    }
    this.checksum = (this.checksum + x) >>> 0;
    return x;
  }
  store(va: number, value: number, size: 1 | 2 | 4 = 4): boolean {
    for (let i = 0; i < size; i++) {
      const p = this.page(va + i, true);
      if (p === null) return false;
      const o = (va + i) % PAGE;
      const sh = (o & 3) * 8;
      p[o >> 2] = ((p[o >> 2] & ~(0xff << sh)) | (((value >>> (8 * i)) & 0xff) << sh)) >>> 0;
    }
    return true;
  }
  strided(va: number, count: number, stride: number, write: boolean, value = 0): number {
    for (let i = 0; i < count; i++) {
      const ok = write
        ? this.store(va + i * stride, value)
        : this.load(va + i * stride) >= 0 || this.state === "running";
      if (!ok || this.state !== "running") return i;
    }
    return count;
  }
  accessSet(vas: Float64Array, values?: Uint32Array, count = vas.length): number {
    for (let i = 0; i < count; i++) {
      if (values) this.store(vas[i], values[i]);
      else this.load(vas[i]);
      if (this.state !== "running") return i;
    }
    return count;
  }
  mmap(length: number, prot: number, flags = 0, addr = 0): number {
    if (length <= 0 || (prot & ~7) !== 0 || (flags & ~0x10) !== 0) return -22;
    const len = Math.ceil(length / PAGE) * PAGE;
    let start: number;
    if (flags & 0x10) {
      if (addr % PAGE !== 0) return -22;
      if (addr + len > USER_END) return -12;
      this.munmap(addr, len);
      start = addr;
    } else {
      let top = MMAP_BASE;
      for (const a of [...this.areas].sort((x, y) => y.start - x.start)) {
        if (a.start >= top) continue;
        if (top - a.end >= len) break;
        top = a.start;
      }
      start = top - len;
    }
    this.areas.push({ start, end: start + len, prot });
    this.areas.sort((x, y) => x.start - y.start);
    return start;
  }
  private cut(start: number, end: number, prot: number | null) {
    const out: Area[] = [];
    for (const a of this.areas) {
      if (a.end <= start || a.start >= end) out.push(a);
      else {
        if (a.start < start) out.push({ ...a, end: start });
        if (prot !== null)
          out.push({ start: Math.max(a.start, start), end: Math.min(a.end, end), prot });
        if (a.end > end) out.push({ ...a, start: end });
      }
    }
    this.areas = out.sort((x, y) => x.start - y.start);
  }
  munmap(addr: number, length: number): number {
    if (addr % PAGE !== 0 || length <= 0) return -22;
    const end = addr + Math.ceil(length / PAGE) * PAGE;
    this.cut(addr, end, null);
    for (const va of [...this.pages.keys()]) {
      if (va >= addr && va < end) {
        this.pages.delete(va);
        this.k.free++;
      }
    }
    return 0;
  }
  mprotect(addr: number, length: number, prot: number): number {
    if ((prot & ~7) !== 0) return -22;
    const end = addr + Math.ceil(length / PAGE) * PAGE;
    for (let va = addr; va < end; va += PAGE) if (!this.area(va)) return -12;
    this.cut(addr, end, prot);
    return 0;
  }
  fork(): ConformanceProcess | number {
    const c = new RefProcess(this.k, this.k.nextPid++, this.pid);
    c.areas = this.areas.map((a) => ({ ...a }));
    c.pages = new Map(this.pages);
    this.k.free -= this.pages.size;
    return c;
  }
  exec(): number {
    this.drop();
    this.areas = [{ start: STACK_TOP - 32 * PAGE, end: STACK_TOP, prot: 3 }];
    return 0;
  }
  exit(code = 0): void {
    this.exitCode = code;
    this.state = "exited";
    this.drop();
  }
  snapshot() {
    return {
      pid: this.pid,
      ppid: this.ppid,
      state: this.state,
      exitCode: this.exitCode,
      signal: this.signal,
      vmas: this.areas.map((a) => ({ ...a })),
      rss: this.pages.size,
    };
  }
}

function refBuild(shareOnFork = false): GuestBuildFactory {
  return () => {
    const k = new RefKernel(shareOnFork);
    return {
      spawn: () => new RefProcess(k, k.nextPid++, 0),
      freePages: () => k.free,
      signals: () => k.signals,
    };
  };
}

describe("guest conformance suite", () => {
  it("a faithful reference kernel passes every case", () => {
    const t = runGuestConformance(refBuild());
    expect(Object.keys(t)).toEqual(guestConformanceCases.map((c) => c.name));
    for (const c of guestConformanceCases) expect(t[c.name].length).toBeGreaterThan(0);
  });

  it("a kernel that shares pages on fork instead of copying them fails, naming the case and step", () => {
    const cow = guestConformanceCases.find((c) => c.name.startsWith("fork shares pages"))!;
    let err: unknown;
    try {
      cow.run(refBuild(true));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GuestConformanceError);
    expect((err as GuestConformanceError).caseName).toBe(cow.name);
    expect((err as Error).message).toMatch(/parent unchanged: got \d+, expected \d+/);
  });

  it("a build's check hook runs, and its failure fails the case", () => {
    const base = refBuild();
    const failing: GuestBuildFactory = () => ({
      ...base(),
      check: () => {
        throw new Error("invariant broken");
      },
    });
    expect(() => guestConformanceCases[0].run(failing)).toThrow(/invariant broken/);
  });

  it("a failed fork is reported as the step that failed", () => {
    const base = refBuild();
    const noFork: GuestBuildFactory = () => {
      const b = base();
      return {
        ...b,
        spawn: () => {
          const p = b.spawn();
          p.fork = () => -12;
          return p;
        },
      };
    };
    const cow = guestConformanceCases.find((c) => c.name.startsWith("fork shares pages"))!;
    expect(() => cow.run(noFork)).toThrow(/fork failed with -12/);
  });

  it("defineGuestConformance registers a test per build and case, and one that compares them", () => {
    const run = (builds: [string, GuestBuildFactory][]) => {
      const tests: { name: string; fn: () => void }[] = [];
      let prefix = "";
      defineGuestConformance(
        {
          describe: (name, fn) => {
            prefix = name;
            fn();
          },
          it: (name, fn) => tests.push({ name: `${prefix} > ${name}`, fn }),
        },
        builds,
      );
      const failed: string[] = [];
      for (const t of tests) {
        try {
          t.fn();
        } catch (e) {
          expect(e).toBeInstanceOf(GuestConformanceError);
          failed.push(t.name);
        }
      }
      return { count: tests.length, failed };
    };
    const agree = run([
      ["reference", refBuild()],
      ["again", refBuild()],
    ]);
    expect(agree).toEqual({ count: 2 * guestConformanceCases.length + 1, failed: [] });
    // A build whose process states differ from the reference's (one page more resident).
    const base = refBuild();
    const differs: GuestBuildFactory = () => {
      const b = base();
      return {
        ...b,
        spawn: () => {
          const p = b.spawn();
          const snap = p.snapshot.bind(p);
          p.snapshot = () => ({ ...snap(), rss: snap().rss + 1 });
          return p;
        },
      };
    };
    const disagree = run([
      ["reference", refBuild()],
      ["differs", differs],
    ]);
    expect(disagree.failed).toContain(
      "guest conformance: every build agrees > every case gives reference's transcript",
    );
    expect(disagree.failed.some((n) => n.startsWith("guest conformance: reference"))).toBe(false);
  });
});
