/*
 * The guest-kernel conformance suite: the same guest programs must read the same data and
 * end with the same process states on every MMU backend (native, Xen PV, nested, shadow).
 *
 * A backend's package runs it with a build factory: a function that makes a hypervisor with
 * that backend and boots a guest kernel on it, and returns how to start a process. Each case
 * starts from a fresh build, checks its own expectations (throwing GuestConformanceError
 * with the case, the step and what differed) and returns a transcript: the data it read and
 * the states it saw. Two backends conform to each other when their transcripts are equal.
 *
 * The suite only knows the program interface, structurally, so it runs against any kernel
 * with that shape; it never reaches into the kernel's or the hypervisor's internals (a
 * build's `check` hook may, e.g. to run the frame-table invariant checkers).
 */
import { isDeepStrictEqual } from "node:util";
import { EINVAL, ENOMEM } from "@hyperlab/abi";
import { createPrng } from "@hyperlab/machine";

const PAGE = 4096;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_FIXED = 0x10;
const SIGSEGV = 11;

/** What the suite needs of a process (the program interface of @hyperlab/guest). */
export interface ConformanceProcess {
  readonly pid: number;
  readonly state: string;
  readonly exitCode: number;
  readonly signal: number;
  checksum: number;
  load(va: number, size?: 1 | 2 | 4): number;
  store(va: number, value: number, size?: 1 | 2 | 4): boolean;
  strided(va: number, count: number, stride: number, write: boolean, value?: number): number;
  accessSet(vas: Float64Array, values?: Uint32Array, count?: number): number;
  mmap(length: number, prot: number, flags?: number, addr?: number): number;
  munmap(addr: number, length: number): number;
  mprotect(addr: number, length: number, prot: number): number;
  fork(): ConformanceProcess | number;
  exec(): number;
  exit(code?: number): void;
  snapshot(): {
    pid: number;
    ppid: number;
    state: string;
    exitCode: number;
    signal: number;
    vmas: { start: number; end: number; prot: number }[];
    rss: number;
  };
}

/** One booted system for one case. */
export interface GuestConformanceBuild {
  /** Starts a process on a fresh address space (the first process of the kernel). */
  spawn(): ConformanceProcess;
  /** Pages in the kernel's free pool (teardown must give every page back). */
  freePages(): number;
  /** Signals the kernel delivered so far. */
  signals(): number;
  /** Runs after every step that changes memory: throw to fail (e.g. frame-table invariants). */
  check?(): void;
}

export type GuestBuildFactory = () => GuestConformanceBuild;

export class GuestConformanceError extends Error {
  override readonly name = "GuestConformanceError";
  readonly caseName: string;
  constructor(caseName: string, message: string) {
    super(`guest conformance "${caseName}": ${message}`);
    this.caseName = caseName;
  }
}

export interface GuestConformanceCase {
  readonly name: string;
  /** Runs the case on a fresh build; returns its transcript. */
  run(build: GuestBuildFactory): unknown[];
}

/** A case's helper: records transcript entries and fails with context. */
class Ctx {
  readonly t: unknown[] = [];
  readonly b: GuestConformanceBuild;
  private readonly name: string;
  constructor(name: string, b: GuestConformanceBuild) {
    this.name = name;
    this.b = b;
  }
  log(what: string, value: unknown): void {
    this.t.push([what, value]);
  }
  eq(what: string, got: unknown, want: unknown): void {
    this.log(what, got);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new GuestConformanceError(
        this.name,
        `${what}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`,
      );
    }
  }
  check(): void {
    this.b.check?.();
  }
  proc(p: ConformanceProcess | number, what: string): ConformanceProcess {
    if (typeof p === "number") {
      throw new GuestConformanceError(this.name, `${what} failed with ${p}`);
    }
    return p;
  }
}

function defineCase(name: string, body: (c: Ctx) => void): GuestConformanceCase {
  return {
    name,
    run(build) {
      const c = new Ctx(name, build());
      body(c);
      c.check();
      return c.t;
    },
  };
}

/** The expected u32 sum of `count` words of `value`. */
function sumOf(value: number, count: number): number {
  let s = 0;
  for (let i = 0; i < count; i++) s = (s + value) >>> 0;
  return s;
}

export const guestConformanceCases: readonly GuestConformanceCase[] = [
  defineCase("demand-zero pages read as zeros and fault in on first touch", (c) => {
    const p = c.b.spawn();
    const a = p.mmap(16 * PAGE, PROT_READ | PROT_WRITE);
    c.eq("mmap page aligned", a % PAGE, 0);
    c.eq("rss before touch", p.snapshot().rss, 0);
    p.checksum = 0;
    c.eq("read 16 pages", p.strided(a, 16, PAGE, false), 16);
    c.eq("zeros", p.checksum, 0);
    c.eq("rss after reads", p.snapshot().rss, 16);
    c.eq("write a page", p.strided(a + 3 * PAGE, 1024, 4, true, 0xdeadbeef), 1024);
    p.checksum = 0;
    p.strided(a + 3 * PAGE, 1024, 4, false);
    c.eq("read it back", p.checksum, sumOf(0xdeadbeef, 1024));
    c.eq("byte load", p.load(a + 3 * PAGE + 1, 1), 0xbe);
    c.eq("halfword across a page", p.store(a + 4 * PAGE - 1, 0xabcd, 2), true);
    c.eq("halfword back", p.load(a + 4 * PAGE - 1, 2), 0xabcd);
    c.check();
    p.exit(0);
    c.eq("state", p.snapshot(), {
      pid: p.pid,
      ppid: 0,
      state: "exited",
      exitCode: 0,
      signal: 0,
      vmas: [],
      rss: 0,
    });
  }),

  defineCase("random sets of addresses keep their values", (c) => {
    const p = c.b.spawn();
    const pages = 64;
    const a = p.mmap(pages * PAGE, PROT_READ | PROT_WRITE);
    const prng = createPrng(7);
    const n = 4096;
    const vas = new Float64Array(n);
    const vals = new Uint32Array(n);
    const model = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      vas[i] = a + prng.nextInt(pages * 1024) * 4;
      vals[i] = prng.nextU32();
      model.set(vas[i], vals[i]);
    }
    c.eq("writes", p.accessSet(vas, vals), n);
    let want = 0;
    for (let i = 0; i < n; i++) want = (want + model.get(vas[i])!) >>> 0;
    p.checksum = 0;
    c.eq("reads", p.accessSet(vas), n);
    c.eq("checksum", p.checksum, want);
    c.check();
  }),

  defineCase("fork shares pages copy-on-write; each side sees only its own writes", (c) => {
    const b = c.b;
    const parent = b.spawn();
    const a = parent.mmap(32 * PAGE, PROT_READ | PROT_WRITE);
    parent.strided(a, 32 * 1024, 4, true, 0x11111111);
    const child = c.proc(parent.fork(), "fork");
    c.check();
    c.eq("child pid", child.snapshot().ppid, parent.pid);
    child.checksum = 0;
    child.strided(a, 32 * 1024, 4, false);
    c.eq("child reads the parent's data", child.checksum, sumOf(0x11111111, 32 * 1024));
    c.eq("child rss", child.snapshot().rss, 32);
    child.strided(a, 8 * 1024, 4, true, 0x22222222);
    c.check();
    parent.checksum = 0;
    parent.strided(a, 32 * 1024, 4, false);
    c.eq("parent unchanged", parent.checksum, sumOf(0x11111111, 32 * 1024));
    parent.store(a + 20 * PAGE, 0x33333333);
    c.eq("child does not see the parent's write", child.load(a + 20 * PAGE), 0x11111111);
    c.eq("child sees its own write", child.load(a + 4), 0x22222222);
    const grandchild = c.proc(child.fork(), "second fork");
    c.eq("grandchild sees the child's data", grandchild.load(a + 4), 0x22222222);
    grandchild.store(a + 4, 0x44444444);
    c.eq("child keeps its value", child.load(a + 4), 0x22222222);
    c.check();
    grandchild.exit(7);
    child.exit(5);
    c.check();
    c.eq("parent intact after the children exit", parent.load(a + 4), 0x11111111);
    c.eq("child state", child.snapshot(), {
      pid: child.pid,
      ppid: parent.pid,
      state: "exited",
      exitCode: 5,
      signal: 0,
      vmas: [],
      rss: 0,
    });
    c.eq("grandchild exit code", grandchild.exitCode, 7);
  }),

  defineCase("exit gives back every page; fork and exit leak nothing", (c) => {
    const b = c.b;
    const before = b.freePages();
    const p = b.spawn();
    const a = p.mmap(128 * PAGE, PROT_READ | PROT_WRITE);
    p.strided(a, 128, PAGE, true, 1);
    for (let i = 0; i < 3; i++) {
      const ch = c.proc(p.fork(), "fork");
      ch.strided(a, 64, PAGE, true, 2);
      ch.exit(0);
      c.check();
    }
    const r = p.munmap(a + 64 * PAGE, 64 * PAGE);
    c.eq("munmap", r, 0);
    p.exit(0);
    c.check();
    c.eq("pages not given back", before - b.freePages(), 0);
  }),

  defineCase("touching unmapped memory is SIGSEGV, counted, not thrown", (c) => {
    const b = c.b;
    const s0 = b.signals();
    const p = b.spawn();
    c.eq("load at 0", p.load(0), -1);
    c.eq("state", p.state, "killed");
    c.eq("signal", p.signal, SIGSEGV);
    c.eq("exit code", p.exitCode, 128 + SIGSEGV);
    c.eq("signals counted", b.signals() - s0, 1);
    const q = b.spawn();
    const a = q.mmap(4 * PAGE, PROT_READ | PROT_WRITE);
    c.eq("strided run off the end stops at the fault", q.strided(a, 8, PAGE, true, 3), 4);
    c.eq("killed", q.signal, SIGSEGV);
    const r = b.spawn();
    c.eq("kernel half is not user memory", r.load(0x8880_0000_0000), -1);
    c.eq("killed by the kernel half", r.signal, SIGSEGV);
    c.check();
  }),

  defineCase("munmap removes pages; splitting areas keeps the rest", (c) => {
    const p = c.b.spawn();
    const a = p.mmap(8 * PAGE, PROT_READ | PROT_WRITE);
    p.strided(a, 8, PAGE, true, 0x5a5a5a5a);
    c.eq("munmap middle", p.munmap(a + 2 * PAGE, 2 * PAGE), 0);
    const areas = p.snapshot().vmas.filter((v) => v.start >= a && v.end <= a + 8 * PAGE);
    c.eq("two areas left", areas, [
      { start: a, end: a + 2 * PAGE, prot: 3 },
      { start: a + 4 * PAGE, end: a + 8 * PAGE, prot: 3 },
    ]);
    c.eq("rss", p.snapshot().rss, 6);
    c.eq("data before the hole", p.load(a + PAGE), 0x5a5a5a5a);
    c.eq("data after the hole", p.load(a + 5 * PAGE), 0x5a5a5a5a);
    c.eq("munmap of nothing", p.munmap(a + 2 * PAGE, PAGE), 0);
    c.eq("bad munmap address", p.munmap(a + 1, PAGE), -EINVAL);
    c.eq("bad munmap length", p.munmap(a, 0), -EINVAL);
    c.check();
    c.eq("the hole faults", p.load(a + 2 * PAGE), -1);
    c.eq("killed", p.signal, SIGSEGV);
  }),

  defineCase("mprotect: read-only pages refuse writes, PROT_NONE refuses reads", (c) => {
    const b = c.b;
    const p = b.spawn();
    const a = p.mmap(4 * PAGE, PROT_READ | PROT_WRITE);
    p.strided(a, 4, PAGE, true, 9);
    c.eq("mprotect RO", p.mprotect(a, 4 * PAGE, PROT_READ), 0);
    c.eq("still readable", p.load(a + PAGE), 9);
    c.eq("mprotect RW again", p.mprotect(a, PAGE, PROT_READ | PROT_WRITE), 0);
    c.eq("writable again", p.store(a, 10), true);
    c.eq("value", p.load(a), 10);
    c.eq("mprotect NONE", p.mprotect(a + 3 * PAGE, PAGE, 0), 0);
    c.eq("mprotect back to RW", p.mprotect(a + 3 * PAGE, PAGE, PROT_READ | PROT_WRITE), 0);
    c.eq("data survives PROT_NONE", p.load(a + 3 * PAGE), 9);
    c.eq("mprotect over a hole", p.mprotect(a, 64 * PAGE, PROT_READ), -ENOMEM);
    c.eq("mprotect bad prot", p.mprotect(a, PAGE, 0x100), -EINVAL);
    c.check();
    c.eq("write to RO page", p.store(a + PAGE, 1), false);
    c.eq("killed by the write", p.signal, SIGSEGV);
    const q = b.spawn();
    const z = q.mmap(PAGE, PROT_READ | PROT_WRITE);
    q.store(z, 1);
    q.mprotect(z, PAGE, 0);
    c.eq("read of PROT_NONE", q.load(z), -1);
    c.eq("killed by the read", q.signal, SIGSEGV);
    c.check();
  }),

  defineCase("exec replaces the address space", (c) => {
    const b = c.b;
    const before = b.freePages();
    const p = b.spawn();
    const a = p.mmap(16 * PAGE, PROT_READ | PROT_WRITE);
    p.strided(a, 16, PAGE, true, 4);
    c.eq("exec", p.exec(), 0);
    c.check();
    const stack = p.snapshot().vmas;
    c.eq("one area (the stack)", stack.length, 1);
    c.eq("stack works", p.store(stack[0].end - 4, 77), true);
    c.eq("stack value", p.load(stack[0].end - 4), 77);
    p.exit(1);
    c.eq("pages leaked by exec and exit", before - b.freePages(), 0);
    const q = b.spawn();
    const z = q.mmap(PAGE, PROT_READ | PROT_WRITE);
    q.store(z, 1);
    q.exec();
    c.eq("old mapping gone after exec", q.load(z), -1);
    c.check();
  }),

  defineCase("mmap arguments and MAP_FIXED", (c) => {
    const p = c.b.spawn();
    c.eq("zero length", p.mmap(0, PROT_READ), -EINVAL);
    c.eq("bad prot", p.mmap(PAGE, 0x40), -EINVAL);
    c.eq("bad flags", p.mmap(PAGE, PROT_READ, 0x8000), -EINVAL);
    c.eq("unaligned fixed", p.mmap(PAGE, PROT_READ, MAP_FIXED, 0x10001), -EINVAL);
    const fixed = 0x4000_0000;
    c.eq("fixed", p.mmap(3 * PAGE, PROT_READ | PROT_WRITE, MAP_FIXED, fixed), fixed);
    p.store(fixed + PAGE, 123);
    c.eq(
      "fixed over fixed",
      p.mmap(PAGE, PROT_READ | PROT_WRITE, MAP_FIXED, fixed + PAGE),
      fixed + PAGE,
    );
    c.eq("replaced page is fresh", p.load(fixed + PAGE), 0);
    c.eq(
      "three areas",
      p.snapshot().vmas.filter((v) => v.start >= fixed && v.end <= fixed + 3 * PAGE).length,
      3,
    );
    c.eq("odd length rounds up", p.mmap(5000, PROT_READ) % PAGE, 0);
    c.check();
  }),

  defineCase("a random program: mmap, writes, forks and exits against a model", (c) => {
    const b = c.b;
    const prng = createPrng(1234);
    const root = b.spawn();
    const pages = 48;
    const a = root.mmap(pages * PAGE, PROT_READ | PROT_WRITE);
    type P = { p: ConformanceProcess; mem: Map<number, number> };
    let live: P[] = [{ p: root, mem: new Map() }];
    for (let step = 0; step < 300; step++) {
      const who = live[prng.nextInt(live.length)];
      const r = prng.nextInt(100);
      if (r < 45) {
        const va = a + prng.nextInt(pages * 1024) * 4;
        const v = prng.nextU32();
        who.p.store(va, v);
        who.mem.set(va, v);
      } else if (r < 85) {
        const va = a + prng.nextInt(pages * 1024) * 4;
        const got = who.p.load(va);
        const want = who.mem.get(va) ?? 0;
        if (got !== want) c.eq(`step ${step} pid ${who.p.pid} load ${va}`, got, want);
      } else if (r < 93 && live.length < 6) {
        const ch = c.proc(who.p.fork(), "fork");
        live.push({ p: ch, mem: new Map(who.mem) });
      } else if (live.length > 1) {
        who.p.exit(step & 0xff);
        live = live.filter((x) => x !== who);
      }
      if (step % 50 === 0) c.check();
    }
    for (const x of live) {
      let want = 0;
      for (const v of x.mem.values()) want = (want + v) >>> 0;
      const vas = new Float64Array([...x.mem.keys()]);
      x.p.checksum = 0;
      x.p.accessSet(vas);
      c.eq(`final data of pid ${x.p.pid}`, x.p.checksum, want);
    }
    c.log(
      "live",
      live.map((x) => x.p.snapshot()),
    );
  }),
];

/**
 * Runs every case on fresh builds from `build`. Returns the transcripts by case name; throws
 * GuestConformanceError on the first expectation a backend misses.
 */
export function runGuestConformance(build: GuestBuildFactory): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const c of guestConformanceCases) out[c.name] = c.run(build);
  return out;
}

/** The two functions of a test runner (vitest's, jest's) that the suite registers with. */
export interface TestRunner {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => void): void;
}

/**
 * Registers the suite with a test runner: one test per build and case, then one test that
 * every build's transcripts equal the first build's (the reference, e.g. bare metal). A
 * backend's package calls this with its builds; it fails with the case and build named.
 */
export function defineGuestConformance(
  runner: TestRunner,
  builds: readonly (readonly [name: string, build: GuestBuildFactory])[],
): void {
  const transcripts = new Map<string, Map<string, unknown[]>>();
  for (const [name, build] of builds) {
    runner.describe(`guest conformance: ${name}`, () => {
      for (const c of guestConformanceCases) {
        runner.it(c.name, () => {
          const byBuild = transcripts.get(c.name) ?? new Map<string, unknown[]>();
          transcripts.set(c.name, byBuild);
          byBuild.set(name, c.run(build));
        });
      }
    });
  }
  const reference = builds[0]?.[0];
  runner.describe("guest conformance: every build agrees", () => {
    runner.it(`every case gives ${reference}'s transcript`, () => {
      for (const c of guestConformanceCases) {
        const byBuild = transcripts.get(c.name);
        if (byBuild === undefined || byBuild.size !== builds.length) {
          throw new GuestConformanceError(c.name, "did not run on every build (see its failures)");
        }
        const expected = byBuild.get(reference!);
        for (const [name, t] of byBuild) {
          if (!isDeepStrictEqual(t, expected)) {
            throw new GuestConformanceError(
              c.name,
              `${name} saw ${JSON.stringify(t)}, ${reference} saw ${JSON.stringify(expected)}`,
            );
          }
        }
      }
    });
  });
}
