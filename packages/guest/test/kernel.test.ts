import { ENOMEM } from "@hyperlab/abi";
import { createHypervisor, HyperlabError } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { assertFrameInvariants } from "@hyperlab/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bootNativeKernel,
  bootXenPvKernel,
  MAP_FIXED,
  PROT_READ,
  PROT_WRITE,
  SIGKILL,
  SIGSEGV,
  spawnProcess,
} from "../src/index";
import { type Built, nativeBuild, xenBuild } from "./helpers";

describe("boot", () => {
  it("native: refuses bad sizes and a second kernel on one domain", () => {
    const machine = createMachine({ ramBytes: 8 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 600 });
    expect(() => bootNativeKernel(hv, d, { nrPages: 8 })).toThrow(/GUEST_BAD_SIZE|from 16/);
    expect(() => bootNativeKernel(hv, d, { nrPages: 601 })).toThrow(HyperlabError);
    const k = bootNativeKernel(hv, d, { nrPages: 512 });
    expect(k.totalPages).toBe(512);
    expect(k.platform.kind).toBe("native");
    expect(d.vcpus[0].cr3Mfn).toBe(k.initMm.pgd);
    expect(() => bootNativeKernel(hv, d, { nrPages: 16 })).toThrow(/already runs a kernel/);
    const big = hv.createDomain({ maxVcpus: 1, maxPages: 1 << 20 });
    expect(() => bootNativeKernel(hv, big, { nrPages: 4096 })).toThrow(/ran out of frames/);
  });

  it("Xen PV: start_info must be where Xen said", () => {
    const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
    const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 2100 });
    const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 2048 });
    expect(() => bootXenPvKernel(hv, d, { startInfoVa: b.rsi + 1 })).toThrow(/page-aligned/);
    expect(() => bootXenPvKernel(hv, d, { startInfoVa: 0x1000 })).toThrow(/not mapped/);
    expect(() => bootXenPvKernel(hv, d, { startInfoVa: b.kernelVa })).toThrow(/magic/);
    const k = bootXenPvKernel(hv, d, { startInfoVa: b.rsi });
    expect(k.xen!.nrPages).toBe(2048);
    expect(k.xen!.p2m[5]).toBe(b.p2m[5]);
    expect(k.freePages).toBeGreaterThan(900);
  });
});

describe("processes", () => {
  it("a dead process cannot be driven, and says why", () => {
    const { kernel } = nativeBuild(512);
    const p = spawnProcess(kernel);
    p.exit(3);
    expect(() => p.load(0)).toThrow(/exited/);
    const q = spawnProcess(kernel);
    q.load(0);
    expect(() => q.mmap(4096, PROT_READ)).toThrow(/killed by signal 11/);
    expect(q.getpid).toBeDefined();
    expect(() => q.getpid()).toThrow(HyperlabError);
    expect(() => q.exit(0)).toThrow(HyperlabError);
    q.kill(SIGKILL);
    expect(q.signal).toBe(SIGSEGV);
  });

  it("bulk accesses are u32s: misaligned requests are the caller's mistake", () => {
    const { kernel } = nativeBuild(512);
    const p = spawnProcess(kernel);
    const a = p.mmap(4096, PROT_READ | PROT_WRITE);
    expect(() => p.strided(a + 1, 4, 4, false)).toThrow(/multiples of 4/);
    expect(() => p.strided(a, 4, 6, false)).toThrow(HyperlabError);
    expect(() => p.strided(a, -1, 4, false)).toThrow(HyperlabError);
    expect(() => p.accessSet(new Float64Array([a + 2]))).toThrow(/not a multiple of 4/);
    expect(() => p.accessSet(new Float64Array([a, a]), new Uint32Array(1))).toThrow(
      /one value per address/,
    );
    expect(p.state).toBe("running");
  });

  it("odd addresses, unaligned and cross-page accesses, copyIn and copyOut", () => {
    const { kernel } = nativeBuild(512);
    const p = spawnProcess(kernel);
    const a = p.mmap(2 * 4096, PROT_READ | PROT_WRITE);
    expect(p.store(a + 4094, 0x11223344)).toBe(true);
    expect(p.load(a + 4094)).toBe(0x11223344);
    expect(p.load(a + 4095, 1)).toBe(0x33);
    expect(p.copyIn(a + 10, new Uint8Array([1, 2, 3]))).toBe(true);
    expect([...p.copyOut(a + 10, 3)!]).toEqual([1, 2, 3]);
    expect(p.copyOut(a + 2 * 4096 - 1, 2)).toBeNull();
    expect(p.signal).toBe(SIGSEGV);
    const q = spawnProcess(kernel);
    expect(q.store(-8, 1)).toBe(false);
    const r = spawnProcess(kernel);
    expect(r.copyIn(0x5000, new Uint8Array([1]))).toBe(false);
    expect(kernel.counts.signals).toBe(3);
    expect(kernel.stats.read("guest", "signals")).toBe(3);
  });

  it("out of memory: the faulting process is killed, the kernel lives on", () => {
    for (const b of [() => nativeBuild(256), () => xenBuild(1400)]) {
      const { kernel } = b();
      const p = spawnProcess(kernel);
      const a = p.mmap(4096 * 4096, PROT_READ | PROT_WRITE);
      expect(p.strided(a, 4096, 4096, true, 1)).toBeLessThan(4096);
      expect(p.signal).toBe(SIGKILL);
      const q = spawnProcess(kernel);
      const z = q.mmap(4096, PROT_READ | PROT_WRITE);
      expect(q.store(z, 1)).toBe(true);
    }
  });

  it("fork and exec report -ENOMEM when memory runs out", () => {
    for (const b of [() => nativeBuild(128), () => xenBuild(1400)]) {
      const { kernel } = b();
      const p = spawnProcess(kernel);
      const a = p.mmap(8 * 4096, PROT_READ | PROT_WRITE);
      p.strided(a, 8, 4096, true, 1);
      const taken: number[] = [];
      for (let pfn = kernel.allocPage(); pfn >= 0; pfn = kernel.allocPage()) taken.push(pfn);
      expect(p.fork()).toBe(-ENOMEM);
      expect(p.exec()).toBe(-ENOMEM);
      // Enough for the new pgd but not the rest of the child's tables: fork unwinds cleanly.
      for (let i = 0; i < 3; i++) kernel.freePage(taken.pop()!);
      const before = kernel.freePages;
      expect(p.fork()).toBe(-ENOMEM);
      expect(kernel.freePages).toBe(before);
      expect(p.load(a)).toBe(1);
      for (const pfn of taken) kernel.freePage(pfn);
      const c = p.fork();
      expect(typeof c).toBe("object");
      expect(p.exec()).toBe(0);
    }
  });

  it("mmap runs out of address space with -ENOMEM", () => {
    const { kernel } = nativeBuild(128);
    const p = spawnProcess(kernel);
    expect(p.mmap(0x7e00_0000_0000, PROT_READ)).toBeGreaterThan(0);
    expect(p.mmap(0x0100_0000_0000, PROT_READ)).toBe(-ENOMEM);
    expect(p.mmap(8192, PROT_READ, MAP_FIXED, 0x7fff_ffff_f000)).toBe(-ENOMEM);
    expect(p.mmap(4096, PROT_READ, MAP_FIXED, 0x7fff_ffff_f000)).toBe(0x7fff_ffff_f000);
  });
});

type Op =
  | { k: "store"; page: number; word: number; value: number }
  | { k: "load"; page: number; word: number }
  | { k: "fork" }
  | { k: "exit" }
  | { k: "mprotect"; page: number; prot: number }
  | { k: "munmap"; page: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    k: fc.constant("store" as const),
    page: fc.nat(15),
    word: fc.nat(1023),
    value: fc.nat(),
  }),
  fc.record({ k: fc.constant("load" as const), page: fc.nat(17), word: fc.nat(1023) }),
  fc.record({ k: fc.constant("fork" as const) }),
  fc.record({ k: fc.constant("exit" as const) }),
  fc.record({
    k: fc.constant("mprotect" as const),
    page: fc.nat(15),
    prot: fc.constantFrom(0, 1, 3),
  }),
  fc.record({ k: fc.constant("munmap" as const), page: fc.nat(15) }),
);

/** Runs a program on a build and returns everything it observed. */
function run(b: Built, ops: Op[]): unknown[] {
  const out: unknown[] = [];
  const root = spawnProcess(b.kernel);
  const a = root.mmap(16 * 4096, PROT_READ | PROT_WRITE);
  let procs = [root];
  ops.forEach((op, i) => {
    procs = procs.filter((p) => p.state === "running");
    if (procs.length === 0) return;
    const p = procs[i % procs.length];
    if (op.k === "store") out.push(p.store(a + op.page * 4096 + op.word * 4, op.value));
    else if (op.k === "load") out.push(p.load(a + op.page * 4096 + op.word * 4));
    else if (op.k === "fork") {
      const c = procs.length < 5 ? p.fork() : -1;
      if (typeof c !== "number") procs.push(c);
    } else if (op.k === "exit" && procs.length > 1) p.exit(i);
    else if (op.k === "mprotect") out.push(p.mprotect(a + op.page * 4096, 4096, op.prot));
    else if (op.k === "munmap") out.push(p.munmap(a + op.page * 4096, 4096));
  });
  for (const p of b.kernel.processes.values()) out.push(p.snapshot());
  if (b.kernel.xen !== null) assertFrameInvariants(b.hv);
  return out;
}

describe("the TLB model sees every access", () => {
  it("bulk replays make one translation and one first-level TLB lookup per access", () => {
    const { hv, kernel } = nativeBuild(1024);
    const p = spawnProcess(kernel);
    const a = p.mmap(32 * 4096, PROT_READ | PROT_WRITE);
    p.strided(a, 32, 4096, true, 1);
    const mmu = hv.slot("mmu") as import("@hyperlab/native-mmu").NativeMmu;
    const tlb = mmu.tlbOf(kernel.vcpu(0));
    const t0 = mmu.counts.translations;
    const l0 = tlb.counters[0];
    expect(p.strided(a, 32 * 1024, 4, false)).toBe(32 * 1024);
    const vas = new Float64Array(5000).map((_, i) => a + ((i * 7919) % (32 * 1024)) * 4);
    expect(p.accessSet(vas)).toBe(5000);
    expect(mmu.counts.translations - t0).toBe(32 * 1024 + 5000);
    expect(tlb.counters[0] - l0).toBe(32 * 1024 + 5000);
    expect(p.accesses).toBe(32 + 32 * 1024 + 5000);
  });
});

describe("results do not depend on the backend", () => {
  it("random programs observe the same data and end in the same states (native, Xen PV on and off)", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const native = run(nativeBuild(512), ops);
        expect(run(xenBuild(2048, true), ops)).toEqual(native);
        expect(run(xenBuild(2048, false), ops)).toEqual(native);
      }),
      { seed: 42, numRuns: process.env.HYPERLAB_LONG ? 200 : 12 },
    );
  });
});
