import { isHyperlabError } from "@hyperlab/core";
import type { NativeMmu } from "@hyperlab/native-mmu";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  PROT_READ,
  PROT_WRITE,
  type Process,
  REPLAY_READ,
  REPLAY_WRITE,
  REPLAY_XOR,
  type ReplayObserver,
  SIGKILL,
  SIGSEGV,
  spawnProcess,
} from "../src/index";
import { type Built, nativeBuild, xenBuild } from "./helpers";

const PAGES = 8;

interface Access {
  /** Word offset from the area's start (past the area is unmapped; -1 is a kernel address). */
  word: number;
  kind: number;
  value: number;
}

/** A hostile guest's batch: in and past the mapped area, a kernel address, every kind. */
const accessArb: fc.Arbitrary<Access> = fc.record({
  word: fc.oneof(
    fc.integer({ min: 0, max: PAGES * 1024 - 1 }),
    fc.integer({ min: 0, max: PAGES * 1024 + 2048 }),
    fc.constant(-1),
  ),
  kind: fc.constantFrom(REPLAY_READ, REPLAY_WRITE, REPLAY_XOR),
  value: fc.integer({ min: 0, max: 0xffff_ffff }),
});

function setUp(build: () => Built): { b: Built; p: Process; a: number } {
  const b = build();
  const p = spawnProcess(b.kernel);
  const a = p.mmap(PAGES * 4096, PROT_READ | PROT_WRITE);
  return { b, p, a };
}

const vaOf = (a: number, x: Access) => (x.word < 0 ? 0xffff_8000_0000_0000 : a + x.word * 4);

/** What a process and its kernel show after a run, for comparing two runs. */
function state(b: Built, p: Process) {
  return {
    checksum: p.checksum,
    accesses: p.accesses,
    state: p.state,
    signal: p.signal,
    counts: { ...b.kernel.counts },
    stats: b.hv.stats.snapshot(),
  };
}

describe("Process.replay", () => {
  it("is load and store in one loop: same values, counts, TLB and hypervisor statistics (native, Xen PV)", () => {
    for (const build of [() => nativeBuild(512), () => xenBuild(2048)]) {
      fc.assert(
        fc.property(fc.array(accessArb, { maxLength: 80 }), (batch) => {
          // The single forms, one access at a time, with the observer told first.
          const one = setUp(build);
          const seenOne: number[] = [];
          const valuesOne: number[] = [];
          let doneOne = batch.length;
          for (let i = 0; i < batch.length; i++) {
            const x = batch[i];
            const va = vaOf(one.a, x);
            // An address outside user space is SIGSEGV before any reference is made.
            if (x.word >= 0) seenOne.push(va);
            if (x.kind === REPLAY_WRITE) {
              if (!one.p.store(va, x.value)) {
                doneOne = i;
                break;
              }
              valuesOne.push(x.value);
              continue;
            }
            const v = one.p.load(va);
            if (v < 0) {
              doneOne = i;
              break;
            }
            valuesOne.push(v);
            if (x.kind === REPLAY_XOR && !one.p.store(va, (v ^ x.value) >>> 0)) {
              doneOne = i;
              break;
            }
          }
          // The bulk form.
          const bulk = setUp(build);
          const seen: number[] = [];
          const observer: ReplayObserver = {
            access(tag, va) {
              expect(tag).toBe(7);
              seen.push(va);
            },
          };
          const vas = new Float64Array(batch.map((x) => vaOf(bulk.a, x)));
          const kinds = new Uint8Array(batch.map((x) => x.kind));
          const values = new Uint32Array(batch.map((x) => x.value));
          const done = bulk.p.replay(vas, kinds, values, batch.length, observer, 7);
          expect(done).toBe(doneOne);
          expect(seen).toEqual(seenOne.slice(0, Math.min(seenOne.length, done + 1)));
          expect([...values.subarray(0, done)]).toEqual(valuesOne.slice(0, done));
          expect(state(bulk.b, bulk.p)).toEqual(state(one.b, one.p));
        }),
        { seed: 16, numRuns: process.env.HYPERLAB_LONG ? 200 : 25 },
      );
    }
  });

  it("tells the observer of each access before its translations, once for a read-modify-write", () => {
    const { hv, kernel } = nativeBuild(512);
    const p = spawnProcess(kernel);
    const a = p.mmap(4 * 4096, PROT_READ | PROT_WRITE);
    p.writeRange(a, 4 * 4096, 1);
    const mmu = hv.slot("mmu") as NativeMmu;
    const at: number[] = [];
    const observer = { access: () => at.push(mmu.counts.translations) };
    const t0 = mmu.counts.translations;
    const kinds = new Uint8Array([REPLAY_READ, REPLAY_XOR, REPLAY_WRITE, REPLAY_XOR]);
    const vas = new Float64Array([a, a + 4096, a + 8192, a + 12288]);
    const values = new Uint32Array([0, 6, 9, 0]);
    expect(p.replay(vas, kinds, values, 4, observer)).toBe(4);
    expect(at.map((t) => t - t0)).toEqual([0, 1, 3, 4]);
    expect(mmu.counts.translations - t0).toBe(6);
    expect([...values]).toEqual([1, 1, 9, 1]);
    expect(p.load(a + 4096)).toBe(7);
    expect(p.load(a + 8192)).toBe(9);
    expect(p.load(a + 12288)).toBe(1);
  });

  it("works without an observer and over a prefix of the arrays", () => {
    const { kernel } = nativeBuild(512);
    const p = spawnProcess(kernel);
    const a = p.mmap(4096, PROT_READ | PROT_WRITE);
    const vas = new Float64Array([a, a + 4, a + 8]);
    const values = new Uint32Array([5, 6, 7]);
    expect(p.replay(vas, new Uint8Array(3).fill(REPLAY_WRITE), values, 2)).toBe(2);
    expect(p.load(a + 4)).toBe(6);
    expect(p.load(a + 8)).toBe(0);
    expect(p.accesses).toBe(4);
  });

  it("an address outside user space is SIGSEGV: the accesses before it are made", () => {
    const { kernel } = nativeBuild(512);
    const p = spawnProcess(kernel);
    const a = p.mmap(4096, PROT_READ | PROT_WRITE);
    for (const bad of [-4, 0x8000_0000_0000, Number.NaN]) {
      const q = p.state === "running" ? p : spawnProcess(kernel);
      const b = q === p ? a : q.mmap(4096, PROT_READ | PROT_WRITE);
      const vas = new Float64Array([b, bad, b + 4]);
      const values = new Uint32Array([3, 0, 0]);
      expect(q.replay(vas, new Uint8Array(3).fill(REPLAY_WRITE), values, 3)).toBe(1);
      expect(q.signal).toBe(SIGSEGV);
      expect(q.accesses).toBe(1);
    }
    expect(kernel.counts.signals).toBe(3);
  });

  it("a fault the kernel cannot fix kills the process (out of memory: SIGKILL) and stops the replay", () => {
    for (const build of [() => nativeBuild(256), () => xenBuild(1400)]) {
      const { kernel } = build();
      const p = spawnProcess(kernel);
      const a = p.mmap(4096 * 4096, PROT_READ | PROT_WRITE);
      const n = 4096;
      const vas = new Float64Array(n).map((_, i) => a + i * 4096);
      const done = p.replay(vas, new Uint8Array(n).fill(REPLAY_XOR), new Uint32Array(n), n);
      expect(done).toBeGreaterThan(0);
      expect(done).toBeLessThan(n);
      expect(p.signal).toBe(SIGKILL);
      expect(p.mm).toBeNull();
      // An unmapped page is SIGSEGV, in the read of a read-modify-write.
      const q = spawnProcess(kernel);
      const z = q.mmap(4096, PROT_READ | PROT_WRITE);
      const two = new Float64Array([z, z + 4096]);
      expect(q.replay(two, new Uint8Array(2).fill(REPLAY_XOR), new Uint32Array(2), 2)).toBe(1);
      expect(q.signal).toBe(SIGSEGV);
    }
  });

  it("a read-only page kills in the write half of a read-modify-write, after the read", () => {
    const { kernel } = nativeBuild(512);
    const p = spawnProcess(kernel);
    const a = p.mmap(4096, PROT_READ);
    const values = new Uint32Array([1]);
    expect(p.replay(new Float64Array([a]), new Uint8Array([REPLAY_XOR]), values, 1)).toBe(0);
    expect(values[0]).toBe(0);
    expect(p.signal).toBe(SIGSEGV);
    expect(p.accesses).toBe(2);
  });

  it("the caller's mistakes throw PROCESS_BAD_BULK (the accesses before them are made), a dead process PROCESS_DEAD", () => {
    const { kernel } = nativeBuild(512);
    const p = spawnProcess(kernel);
    const a = p.mmap(4096, PROT_READ | PROT_WRITE);
    const w = new Uint8Array([REPLAY_WRITE, REPLAY_WRITE]);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(isHyperlabError(e, ["PROCESS_BAD_BULK", "PROCESS_DEAD"])).toBe(true);
        return [(e as { code: string }).code, (e as Error).message];
      }
      return null;
    };
    const vas = new Float64Array([a, a + 2]);
    expect(code(() => p.replay(vas, w, new Uint32Array([4, 5]), 2))).toEqual([
      "PROCESS_BAD_BULK",
      expect.stringMatching(/not a multiple of 4/),
    ]);
    expect(p.load(a)).toBe(4);
    const mixed = new Uint8Array([REPLAY_WRITE, 3]);
    expect(
      code(() => p.replay(new Float64Array([a + 4, a + 8]), mixed, new Uint32Array([8, 9]), 2)),
    ).toEqual(["PROCESS_BAD_BULK", expect.stringMatching(/kind 3 at index 1/)]);
    expect(p.load(a + 4)).toBe(8);
    expect(p.load(a + 8)).toBe(0);
    for (const count of [3, -1, 1.5]) {
      expect(code(() => p.replay(vas, w, new Uint32Array(2), count))).toEqual([
        "PROCESS_BAD_BULK",
        expect.stringMatching(/count must be a whole number/),
      ]);
    }
    expect(code(() => p.replay(vas, w, new Uint32Array(1), 2))?.[0]).toBe("PROCESS_BAD_BULK");
    expect(p.state).toBe("running");
    // The vCPU is back in kernel mode after a throw, as after a return.
    expect(kernel.vcpu(0).inKernel).toBe(true);
    p.exit(0);
    expect(code(() => p.replay(vas, w, new Uint32Array(2), 2))).toEqual([
      "PROCESS_DEAD",
      expect.stringMatching(/exited/),
    ]);
  });
});
