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
import { GuestTarget } from "../src/guest-target";
import { ACCESS_READ, ACCESS_UPDATE, ACCESS_WRITE } from "../src/target";

const P4K: BackendParams = { guestPageSize: "4K", hostPageSize: "4K" };
const P2M: BackendParams = { guestPageSize: "2M", hostPageSize: "4K" };

function target(backend: StudyBackend, guestBytes = 8 << 20, params = P4K): GuestTarget {
  return new GuestTarget({ backend, params, guestBytes, seed: 1 });
}

function scenario(k: GuestTarget): number[] {
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

describe("the guest kernel as a study target (native, Xen PV, nested, shadow; 4 KiB and 2 MiB pages)", () => {
  it("gives the same results on every backend and page size, and frees everything at exit", () => {
    const cases: [StudyBackend, BackendParams][] = [
      ...BACKENDS.map((b): [StudyBackend, BackendParams] => [b, P4K]),
      [nativeBackend, P2M],
      [nestedBackend, { guestPageSize: "2M", hostPageSize: "2M" }],
      [shadowBackend, P2M],
    ];
    const runs = cases.map(([b, params]) => {
      const k = target(b, 8 << 20, params);
      const before = k.kernel.freePages;
      const r = scenario(k);
      if (params.guestPageSize === "2M") {
        // Huge pages on every backend that has them: faulted in, split by the child's
        // copy on write and the partial munmap, freed at exit (no leak, below).
        expect(k.kernel.counts.thpFaults, b.name).toBeGreaterThan(0);
        expect(k.kernel.counts.thpSplits, b.name).toBeGreaterThanOrEqual(2);
      }
      return {
        b: `${b.name} ${params.guestPageSize}`,
        r,
        c: k.counts(),
        leaked: before - k.kernel.freePages,
      };
    });
    for (const x of runs) {
      expect(x.r, x.b).toEqual(runs[0].r);
      expect(x.leaked, x.b).toBe(0);
      expect(x.c.accesses, x.b).toBe(runs[0].c.accesses);
      expect(x.c.syscalls, x.b).toBe(7);
      expect(x.c.ptUpdates, x.b).toBeGreaterThan(0);
    }
    // 4 KiB pages: the same faults everywhere; the kernel's table writes too, except on Xen PV
    // (its own pgd handling: the user pgd, pinning).
    const by = Object.fromEntries(runs.map((x) => [x.b, x.c]));
    for (const b of ["pv 4K", "nested 4K", "shadow 4K"]) {
      expect(by[b].pageFaults, b).toBe(by["native 4K"].pageFaults);
    }
    expect(by["nested 4K"].ptUpdates).toBe(by["native 4K"].ptUpdates);
    expect(by["shadow 4K"].ptUpdates).toBe(by["native 4K"].ptUpdates);
    expect(by["native 4K"].hypercalls).toBe(0);
    expect(by["native 4K"].vmExits).toBe(0);
    expect(by["native 4K"].traps).toBe(0);
    expect(by["nested 4K"].hypercalls).toBe(0);
    expect(by["nested 4K"].vmExits).toBeGreaterThan(0);
    expect(by["pv 4K"].vmExits).toBe(0);
    expect(by["pv 4K"].hypercalls).toBeGreaterThan(0);
    expect(by["pv 4K"].traps).toBeGreaterThanOrEqual(by["pv 4K"].pageFaults + by["pv 4K"].syscalls);
    expect(by["shadow 4K"].hypercalls).toBe(0);
    expect(by["shadow 4K"].vmExits).toBeGreaterThan(by["nested 4K"].vmExits);
    // 2 MiB pages: one fault maps the whole area.
    expect(by["native 2M"].pageFaults).toBeLessThan(by["native 4K"].pageFaults);
  });

  it("copy on write keeps a parent's data when its child writes", () => {
    for (const b of BACKENDS) {
      const k = target(b);
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
      const copies = k.kernel.counts.cowCopies;
      k.replay(pid, vas, w, 1, 3);
      expect(k.kernel.counts.cowCopies).toBe(copies);
      expect(k.kernel.counts.cowReuses).toBeGreaterThan(0);
    }
  });

  it("maps 2 MiB guest pages where the backend has them", () => {
    const params = { guestPageSize: "2M", hostPageSize: "2M" } as const;
    const sums = [nativeBackend, nestedBackend, shadowBackend].map((b) => {
      const k = target(b, 32 << 20, params);
      expect(k.pageSize).toBe(2 << 20);
      const pid = k.spawn();
      const va = k.mmap(pid, 3 << 20);
      expect(va % (2 << 20)).toBe(0);
      const vas = new Float64Array(64);
      for (let i = 0; i < 64; i++) vas[i] = va + i * 65536;
      const out = k.replay(pid, vas, new Uint8Array(64).fill(ACCESS_UPDATE), 64, 1);
      expect(k.counts().pageFaults).toBe(2);
      expect(k.kernel.counts.thpFaults).toBe(2);
      const child = k.fork(pid);
      k.replay(child, vas, new Uint8Array(64).fill(ACCESS_WRITE), 64, 2);
      k.munmap(pid, va, 4 << 20);
      k.exit(child);
      return out;
    });
    expect(new Set(sums).size).toBe(1);
  });

  it("answers a user's mistakes with typed errors", () => {
    const k = target(nativeBackend);
    expect(() => k.fork(42)).toThrow(expect.objectContaining({ code: "STUDY_NO_PROCESS" }));
    const pid = k.spawn();
    expect(() => k.mmap(pid, 0)).toThrow(expect.objectContaining({ code: "STUDY_BAD_MMAP" }));
    expect(() => k.mmap(pid, 1.5)).toThrow(expect.objectContaining({ code: "STUDY_BAD_MMAP" }));
    const vas = new Float64Array([0x1000_0000]);
    expect(() => k.replay(pid, vas, new Uint8Array(1), 1, 0)).toThrow(
      expect.objectContaining({ code: "STUDY_SEGV" }),
    );
    const q = k.spawn();
    expect(() => k.chase(q, 0x1000_0000, 64, 0, 1)).toThrow(
      expect.objectContaining({ code: "STUDY_SEGV" }),
    );
    const r = k.spawn();
    const big = k.mmap(r, 16 << 20);
    const many = new Float64Array(4096);
    for (let i = 0; i < 4096; i++) many[i] = big + i * 4096;
    expect(() => k.replay(r, many, new Uint8Array(4096), 4096, 0)).toThrow(
      expect.objectContaining({ code: "STUDY_OUT_OF_MEMORY" }),
    );
    expect(() => target(pvBackend, 8 << 20, P2M)).toThrow(
      expect.objectContaining({ code: "STUDY_UNSUPPORTED" }),
    );
    expect(() =>
      target(nativeBackend, 8 << 20, { guestPageSize: "1G", hostPageSize: "4K" }),
    ).toThrow(expect.objectContaining({ code: "STUDY_UNSUPPORTED" }));
  });

  it("stores and chases pointers identically on every backend", () => {
    const sums = BACKENDS.map((b) => {
      const k = target(b);
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
      const k = target(b);
      const pid = k.spawn();
      const va = k.mmap(pid, 128 * 4096);
      const n = 1000;
      const vas = new Float64Array(n);
      for (let i = 0; i < n; i++) vas[i] = va + ((i * 7) % 128) * 4096;
      const before = k.counts();
      k.replay(pid, vas, new Uint8Array(n).fill(ACCESS_WRITE), n, 0);
      const c = k.counts();
      const faults = c.pageFaults - before.pageFaults;
      // Each fault costs one extra translation (the retry).
      expect(c.tlbHits + c.tlbMisses - (before.tlbHits + before.tlbMisses), b.name).toBe(
        n + faults,
      );
      expect(c.tlbMisses, b.name).toBeGreaterThanOrEqual(128);
      expect(c.walkRefs, b.name).toBeGreaterThan(0);
    }
  });
});
