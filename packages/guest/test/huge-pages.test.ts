import { ENOMEM } from "@hyperlab/abi";
import { describe, expect, it } from "vitest";
import {
  E_PRESENT,
  E_PSE,
  E_RW,
  type GuestKernel,
  HPAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  type Process,
  SIGKILL,
  SIGSEGV,
  spawnProcess,
} from "../src/index";
import { hwBuild, type NativeHw, xenBuild } from "./helpers";

const RW = PROT_READ | PROT_WRITE;
const HWS: NativeHw[] = ["native", "guest-store"];

/** The PMD entry mapping `va` in the process's tables (0 if there is none). */
function pmdEntry(k: GuestKernel, p: Process, va: number): number {
  const pmd = k.pmdPage(p.mm!, va, false);
  return pmd < 0 ? 0 : k.readEntry(pmd, Math.floor(va / HPAGE_SIZE) % 512);
}

function isHuge(e: number): boolean {
  return (e & (E_PRESENT | E_PSE)) === (E_PRESENT | E_PSE);
}

/** Writes a distinct value in every 4 KiB page of [va, va + len); returns their u32 sum. */
function fill(p: Process, va: number, len: number, salt: number): number {
  let sum = 0;
  for (let a = va; a < va + len; a += 4096) {
    const x = (Math.imul((a - va) / 4096 + salt, 0x9e3779b1) >>> 0) & 0x7fffffff;
    expect(p.store(a + 8, x)).toBe(true);
    sum = (sum + x) >>> 0;
  }
  return sum;
}

function sumOf(p: Process, va: number, len: number): number {
  let sum = 0;
  for (let a = va; a < va + len; a += 4096) sum = (sum + p.load(a + 8)) >>> 0;
  return sum;
}

describe("transparent huge pages (2 MiB) on the native MMU, and through guestStore", () => {
  for (const hw of HWS) {
    it(`${hw}: a first touch maps one 2 MiB page by a PSE entry; exit frees it`, () => {
      const { kernel: k, stores } = hwBuild(hw);
      expect(k.hugePages).toBe(true);
      const free0 = k.freePages;
      const p = spawnProcess(k);
      const va = p.mmap(3 * HPAGE_SIZE, RW);
      expect(va % HPAGE_SIZE).toBe(0);
      expect(p.store(va + 5000, 7)).toBe(true);
      expect(k.counts.thpFaults).toBe(1);
      expect(isHuge(pmdEntry(k, p, va))).toBe(true);
      const head = k.entryPfn(pmdEntry(k, p, va));
      expect(head % 512).toBe(0);
      expect(p.rss()).toBe(512);
      const faults = k.counts.pageFaults;
      const s = fill(p, va, 3 * HPAGE_SIZE, 1);
      // One fault per 2 MiB page, no more.
      expect(k.counts.pageFaults - faults).toBe(2);
      expect(sumOf(p, va, 3 * HPAGE_SIZE)).toBe(s);
      expect(p.rss()).toBe(3 * 512);
      expect(k.counts.ptUpdates).toBeGreaterThan(0);
      const before = stores.stores;
      p.exit(0);
      // Through guestStore, the huge PMD's zap is a store the host sees.
      if (hw === "guest-store") expect(stores.stores).toBeGreaterThan(before);
      expect(k.freePages).toBe(free0);
      // The blocks went back whole: a huge page can be handed out again.
      expect(k.allocHugePage()).toBeGreaterThanOrEqual(0);
    });

    it(`${hw}: results match a kernel without huge pages`, () => {
      const run = (thp: "always" | "never") => {
        const { kernel: k } = hwBuild(hw, 4096, thp);
        const p = spawnProcess(k);
        const va = p.mmap(2 * HPAGE_SIZE + 8192, RW);
        const s = fill(p, va, 2 * HPAGE_SIZE + 8192, 3);
        const c = p.fork() as Process;
        fill(c, va, HPAGE_SIZE, 9);
        return { s, back: sumOf(p, va, 2 * HPAGE_SIZE + 8192), child: sumOf(c, va, 4 * 4096) };
      };
      expect(run("always")).toEqual(run("never"));
    });
  }

  it("fork shares a huge page read-only; a write to a shared one splits the PMD and copies 4 KiB", () => {
    const { kernel: k } = hwBuild("native");
    const p = spawnProcess(k);
    const va = p.mmap(HPAGE_SIZE, RW);
    const s = fill(p, va, HPAGE_SIZE, 1);
    const c = p.fork() as Process;
    expect(isHuge(pmdEntry(k, c, va))).toBe(true);
    expect(pmdEntry(k, p, va) & E_RW).toBe(0);
    expect(pmdEntry(k, c, va) & E_RW).toBe(0);
    const free = k.freePages;
    expect(c.store(va + 8, 42)).toBe(true);
    // Linux since 5.8: split the shared PMD (one PTE page), then copy the page written.
    expect(k.counts.thpSplits).toBe(1);
    expect(k.counts.cowCopies).toBe(1);
    expect(k.freePages).toBe(free - 2);
    expect(isHuge(pmdEntry(k, c, va))).toBe(false);
    expect(isHuge(pmdEntry(k, p, va))).toBe(true);
    expect(c.load(va + 8)).toBe(42);
    expect(sumOf(p, va, HPAGE_SIZE)).toBe(s);
    // Once the child is gone the parent's mapping is the only one: reused in place, still huge.
    c.exit(0);
    const reuses = k.counts.cowReuses;
    expect(p.store(va + 4096 + 8, 5)).toBe(true);
    expect(k.counts.cowReuses).toBe(reuses + 1);
    expect(isHuge(pmdEntry(k, p, va))).toBe(true);
    expect(pmdEntry(k, p, va) & E_RW).toBe(E_RW);
  });

  it("munmap and mprotect of part of a huge page split it; of all of it keep it whole", () => {
    const { kernel: k } = hwBuild("native");
    const p = spawnProcess(k);
    const va = p.mmap(2 * HPAGE_SIZE, RW);
    fill(p, va, 2 * HPAGE_SIZE, 1);
    expect(p.munmap(va + 4096, 4096)).toBe(0);
    expect(k.counts.thpSplits).toBe(1);
    expect(p.rss()).toBe(1023);
    expect(p.load(va + 8)).toBeGreaterThan(0);
    // The second huge page: read-only as a whole stays huge, and refuses writes.
    const hi = va + HPAGE_SIZE;
    expect(p.mprotect(hi, HPAGE_SIZE, PROT_READ)).toBe(0);
    expect(k.counts.thpSplits).toBe(1);
    expect(isHuge(pmdEntry(k, p, hi))).toBe(true);
    expect(pmdEntry(k, p, hi) & E_RW).toBe(0);
    expect(p.mprotect(hi, HPAGE_SIZE, RW)).toBe(0);
    expect(pmdEntry(k, p, hi) & E_RW).toBe(E_RW);
    // Part of it: split.
    expect(p.mprotect(hi + HPAGE_SIZE / 2, 4096, PROT_READ)).toBe(0);
    expect(k.counts.thpSplits).toBe(2);
    expect(p.store(hi + 8, 1)).toBe(true);
    // PROT_NONE of a whole huge page is kept in PTEs: split too.
    const q = spawnProcess(k);
    const qa = q.mmap(HPAGE_SIZE, RW);
    const qs = fill(q, qa, HPAGE_SIZE, 2);
    expect(q.mprotect(qa, HPAGE_SIZE, PROT_NONE)).toBe(0);
    expect(k.counts.thpSplits).toBe(3);
    expect(q.mprotect(qa, HPAGE_SIZE, PROT_READ)).toBe(0);
    expect(sumOf(q, qa, HPAGE_SIZE)).toBe(qs);
    expect(q.store(qa, 1)).toBe(false);
    expect(q.signal).toBe(SIGSEGV);
  });

  it("falls back to 4 KiB pages when no 2 MiB block is free", () => {
    const { kernel: k } = hwBuild("native", 1024);
    const p = spawnProcess(k);
    const va = p.mmap(2 * HPAGE_SIZE, RW);
    const s = fill(p, va, 2 * HPAGE_SIZE - 65536, 1);
    expect(k.counts.thpFallbacks).toBeGreaterThan(0);
    expect(sumOf(p, va, 2 * HPAGE_SIZE - 65536)).toBe(s);
    p.exit(0);
  });

  it("a split with no page for its PTE table fails with -ENOMEM, or kills on copy on write", () => {
    const { kernel: k } = hwBuild("native");
    const p = spawnProcess(k);
    const va = p.mmap(HPAGE_SIZE, RW);
    fill(p, va, HPAGE_SIZE, 1);
    const c = p.fork() as Process;
    const taken: number[] = [];
    for (let f = k.allocPage(); f >= 0; f = k.allocPage()) taken.push(f);
    expect(p.munmap(va + 4096, 4096)).toBe(-ENOMEM);
    expect(p.mprotect(va, 4096, PROT_READ)).toBe(-ENOMEM);
    expect(p.rss()).toBe(512);
    expect(c.store(va, 1)).toBe(false);
    expect(c.signal).toBe(SIGKILL);
    for (const f of taken) k.freePage(f);
    expect(p.munmap(va + 4096, 4096)).toBe(0);
    expect(p.rss()).toBe(511);
  });

  it("Xen PV: no PSE in CPUID, so THP always still maps 4 KiB pages", () => {
    const { kernel: k } = xenBuild(4096);
    k.setTransparentHugepage("always");
    expect(k.transparentHugepage).toBe("always");
    expect(k.hugePages).toBe(false);
    const p = spawnProcess(k);
    const va = p.mmap(HPAGE_SIZE, RW);
    const s = fill(p, va, HPAGE_SIZE, 1);
    expect(sumOf(p, va, HPAGE_SIZE)).toBe(s);
    expect(k.counts.thpFaults).toBe(0);
    expect(isHuge(pmdEntry(k, p, va))).toBe(false);
    expect(p.rss()).toBe(512);
  });

  it("refuses an unknown transparent_hugepage mode", () => {
    const { kernel: k } = hwBuild("native", 256, "never");
    expect(k.hugePages).toBe(false);
    expect(() => k.setTransparentHugepage("madvise" as never)).toThrow(
      expect.objectContaining({ code: "GUEST_BAD_THP" }),
    );
  });
});
