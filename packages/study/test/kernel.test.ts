import { describe, expect, it } from "vitest";
import {
  BACKENDS,
  type BackendParams,
  nativeBackend,
  nestedBackend,
  pvBackend,
  type StudyBackend,
  shadowBackend,
} from "../src/backends";
import { ACCESS_READ, ACCESS_UPDATE, ACCESS_WRITE, StudyKernel } from "../src/kernel";

const P4K: BackendParams = { guestPageSize: "4K", hostPageSize: "4K" };

function kernel(
  backend: StudyBackend,
  guestBytes = 8 << 20,
  params: BackendParams = P4K,
): StudyKernel {
  return new StudyKernel({ backend, params, guestBytes, seed: 1 });
}

function scenario(k: StudyKernel): number[] {
  const out: number[] = [];
  const pid = k.spawn();
  const va = k.mmap(pid, 64 * 4096);
  const n = 256;
  const vas = new Float64Array(n);
  const kinds = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    vas[i] = va + ((i * 37) % 64) * 4096 + (i % 7) * 4;
    kinds[i] = i % 3 === 0 ? ACCESS_WRITE : i % 3 === 1 ? ACCESS_UPDATE : ACCESS_READ;
  }
  out.push(k.replay(pid, vas, kinds, n, 1));
  const child = k.fork(pid);
  out.push(k.replay(child, vas, kinds, n, 2));
  out.push(k.replay(pid, vas, kinds.fill(ACCESS_READ), n, 3));
  k.exec(child);
  const cva = k.mmap(child, 8 * 4096);
  vas.fill(cva);
  out.push(k.replay(child, vas, kinds, 8, 4));
  k.munmap(pid, va, 32 * 4096);
  k.exit(child);
  out.push(k.replay(pid, vas.fill(va + 40 * 4096), kinds, 4, 5));
  k.exit(pid);
  return out;
}

describe("study kernel", () => {
  it("gives the same functional results on every backend and frees everything at exit", () => {
    const runs = BACKENDS.map((b) => {
      const k = kernel(b);
      const before = k.freeFrames;
      const r = scenario(k);
      return { b: b.name, r, c: k.counts(), leaked: before - k.freeFrames };
    });
    for (const x of runs) {
      expect(x.r).toEqual(runs[0].r);
      expect(x.leaked).toBe(0);
      expect(x.c.accesses).toBe(runs[0].c.accesses);
      expect(x.c.pageFaults).toBe(runs[0].c.pageFaults);
      expect(x.c.ptUpdates).toBe(runs[0].c.ptUpdates);
      expect(x.c.syscalls).toBe(7);
    }
    const by = Object.fromEntries(runs.map((x) => [x.b, x.c]));
    expect(by.native.hypercalls).toBe(0);
    expect(by.native.vmExits).toBe(0);
    expect(by.native.traps).toBe(0);
    expect(by.nested.hypercalls).toBe(0);
    expect(by.nested.vmExits).toBeGreaterThan(0);
    expect(by.pv.vmExits).toBe(0);
    expect(by.pv.hypercalls).toBeGreaterThan(0);
    expect(by.pv.traps).toBe(by.pv.pageFaults + by.pv.syscalls);
    expect(by.shadow.hypercalls).toBe(0);
    expect(by.shadow.vmExits).toBeGreaterThan(by.nested.vmExits);
  });

  it("copy on write keeps a parent's data when its child writes", () => {
    for (const b of BACKENDS) {
      const k = kernel(b);
      const pid = k.spawn();
      const va = k.mmap(pid, 4096);
      const vas = new Float64Array([va]);
      const w = new Uint8Array([ACCESS_WRITE]);
      const r = new Uint8Array([ACCESS_READ]);
      k.replay(pid, vas, w, 1, 7);
      const parentBefore = k.replay(pid, vas, r, 1, 0);
      const child = k.fork(pid);
      expect(k.replay(child, vas, r, 1, 0)).toBe(parentBefore);
      k.replay(child, vas, w, 1, 99);
      expect(k.replay(child, vas, r, 1, 0)).not.toBe(parentBefore);
      expect(k.replay(pid, vas, r, 1, 0)).toBe(parentBefore);
      // The parent's next write takes the page over without a copy.
      k.exit(child);
      const faults = k.counts().pageFaults;
      k.replay(pid, vas, w, 1, 3);
      expect(k.counts().pageFaults).toBe(faults + 1);
    }
  });

  it("maps 2 MiB guest pages where the backend has them", () => {
    const params = { guestPageSize: "2M", hostPageSize: "2M" } as const;
    const sums = [nativeBackend, nestedBackend, shadowBackend].map((b) => {
      const k = kernel(b, 32 << 20, params);
      expect(k.pageSize).toBe(2 << 20);
      const pid = k.spawn();
      const va = k.mmap(pid, 3 << 20);
      expect(va % (2 << 20)).toBe(0);
      const vas = new Float64Array(64);
      for (let i = 0; i < 64; i++) vas[i] = va + i * 65536;
      const out = k.replay(pid, vas, new Uint8Array(64).fill(ACCESS_UPDATE), 64, 1);
      expect(k.counts().pageFaults).toBe(2);
      const child = k.fork(pid);
      k.replay(child, vas, new Uint8Array(64).fill(ACCESS_WRITE), 64, 2);
      k.munmap(pid, va, 4 << 20);
      k.exit(child);
      return out;
    });
    expect(new Set(sums).size).toBe(1);
  });

  it("answers a user's mistakes with typed errors", () => {
    const k = kernel(nativeBackend);
    expect(() => k.fork(42)).toThrow(expect.objectContaining({ code: "STUDY_NO_PROCESS" }));
    const pid = k.spawn();
    expect(() => k.mmap(pid, 0)).toThrow(expect.objectContaining({ code: "STUDY_BAD_MMAP" }));
    expect(() => k.mmap(pid, 1.5)).toThrow(expect.objectContaining({ code: "STUDY_BAD_MMAP" }));
    const vas = new Float64Array([0x1000_0000]);
    expect(() => k.replay(pid, vas, new Uint8Array(1), 1, 0)).toThrow(
      expect.objectContaining({ code: "STUDY_SEGV" }),
    );
    expect(() => k.chase(pid, 0x1000_0000, 64, 0, 1)).toThrow(
      expect.objectContaining({ code: "STUDY_SEGV" }),
    );
    const big = k.mmap(pid, 16 << 20);
    const many = new Float64Array(4096);
    for (let i = 0; i < 4096; i++) many[i] = big + i * 4096;
    expect(() => k.replay(pid, many, new Uint8Array(4096), 4096, 0)).toThrow(
      expect.objectContaining({ code: "STUDY_OUT_OF_MEMORY" }),
    );
    expect(() => kernel(pvBackend, 8 << 20, { guestPageSize: "2M", hostPageSize: "4K" })).toThrow(
      expect.objectContaining({ code: "STUDY_UNSUPPORTED" }),
    );
  });

  it("stores and chases pointers identically on every backend", () => {
    const sums = BACKENDS.map((b) => {
      const k = kernel(b);
      const pid = k.spawn();
      const va = k.mmap(pid, 16 * 4096);
      const vas = new Float64Array(16);
      const values = new Uint32Array(16);
      for (let i = 0; i < 16; i++) {
        vas[i] = va + i * 4096;
        values[i] = (i * 5 + 3) % 16;
      }
      k.store(pid, vas, values, 16);
      return k.chase(pid, va, 4096, 0, 100);
    });
    expect(new Set(sums).size).toBe(1);
  });
});

describe("hardware counts", () => {
  it("are consistent on every backend: hits and misses add up to translations", () => {
    for (const b of BACKENDS) {
      const k = kernel(b);
      const pid = k.spawn();
      const va = k.mmap(pid, 128 * 4096);
      const n = 1000;
      const vas = new Float64Array(n);
      for (let i = 0; i < n; i++) vas[i] = va + ((i * 7) % 128) * 4096;
      k.replay(pid, vas, new Uint8Array(n).fill(ACCESS_WRITE), n, 0);
      const c = k.counts();
      // Each fault costs one extra translation (the retry).
      expect(c.tlbHits + c.tlbMisses, b.name).toBe(n + c.pageFaults);
      expect(c.tlbMisses, b.name).toBeGreaterThanOrEqual(128);
      expect(c.walkRefs, b.name).toBeGreaterThan(0);
    }
  });
});
