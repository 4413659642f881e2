// Out-of-sync level-1 shadow pages and write-flood detection, as KVM's shadow MMU
// (arch/x86/kvm/mmu/mmu.c: mmu_try_to_unsync_pages, kvm_sync_page, kvm_mmu_sync_roots,
// detect_write_flooding).
import { createHypervisor, type Plugin } from "@hyperlab/core";
import {
  bootNativeKernel,
  PROT_READ,
  PROT_WRITE,
  type Process,
  spawnProcess,
} from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { EXIT_REASON_EXCEPTION_NMI, FLOOD_WRITES, type ShadowMmu, shadowMmu } from "../src/index";
import { boot, GuestMem, GuestTables } from "./helpers";

function setup(options = {}) {
  const w = boot(options);
  const mem = new GuestMem(w);
  const v = mem.d.vcpus[0];
  const t = new GuestTables(mem, v);
  v.cr3Mfn = t.cr3;
  return { w, mem, t, v, sh: w.sh };
}

const pfExits = (sh: ShadowMmu) => sh.exitCount(EXIT_REASON_EXCEPTION_NMI);

describe("out-of-sync level-1 shadow pages", () => {
  it("the first store to a shadowed L1 table exits once; later stores go straight to the table until a CR3 load syncs it", () => {
    const { mem, t, v, sh } = setup({ tlb: false });
    const [a, b, c] = [mem.alloc(), mem.alloc(), mem.alloc()];
    t.map(0x1000, a);
    t.map(0x2000, a);
    expect(sh.translate(v, 0x1000, 0)).toBe(a * 4096);
    expect(sh.translate(v, 0x2000, 0)).toBe(a * 4096);
    const l1 = Math.floor(t.slot(0x1000, 1) / 4096);
    const root = sh.shadowRoot(v);
    expect(sh.isWriteProtected(l1)).toBe(true);
    const exits = pfExits(sh);
    t.map(0x1000, b); // one #PF exit: the frame's shadows go out of sync
    expect(pfExits(sh)).toBe(exits + 1);
    expect(sh.counts.unsyncs).toBe(1);
    expect(sh.isWriteProtected(l1)).toBe(false);
    for (let i = 0; i < 100; i++) t.map(0x3000 + i * 4096, c); // no exits at all
    t.map(0x2000, c);
    expect(pfExits(sh)).toBe(exits + 1);
    expect(sh.counts.emulatedWrites).toBe(0);
    // Until the guest flushes, the shadow may be stale, as a TLB may be.
    expect(sh.translate(v, 0x1000, 0)).toBe(a * 4096);
    // A CR3 reload syncs: the frame is protected again, changed entries are dropped.
    sh.flushLocal(v);
    expect(sh.counts.syncs).toBe(1);
    expect(sh.counts.syncDropped).toBe(2);
    expect(sh.isWriteProtected(l1)).toBe(true);
    expect(sh.translate(v, 0x1000, 0)).toBe(b * 4096);
    expect(sh.translate(v, 0x2000, 0)).toBe(c * 4096);
    expect(sh.translate(v, 0x3000, 0)).toBe(c * 4096);
    expect(sh.shadowRoot(v)).toBe(root); // the roots survive a sync
    // Protected again: the next store takes one exit and goes out of sync again.
    t.unmap(0x3000);
    expect(pfExits(sh)).toBe(exits + 1 + 3 + 1); // the three fills above, then this store
    expect(sh.counts.unsyncs).toBe(2);
  });

  it("INVLPG syncs the entry of its address only; the page stays out of sync", () => {
    const { mem, t, v, sh } = setup({ tlb: false });
    const [a, b] = [mem.alloc(), mem.alloc()];
    t.map(0x1000, a);
    t.map(0x2000, a);
    sh.translate(v, 0x1000, 0);
    sh.translate(v, 0x2000, 0);
    t.map(0x1000, b);
    t.map(0x2000, b);
    sh.flushOne(v, 0x1000);
    expect(sh.translate(v, 0x1000, 0)).toBe(b * 4096);
    expect(sh.translate(v, 0x2000, 0)).toBe(a * 4096); // not flushed by the guest yet
    expect(sh.counts.syncs).toBe(0);
    expect(sh.counts.syncDropped).toBe(1);
    expect(sh.isWriteProtected(Math.floor(t.slot(0x1000, 1) / 4096))).toBe(false);
  });

  it("a sync drops entries that lost write access or were cleaned, and keeps the ones that agree", () => {
    const { mem, t, v, sh, w } = setup({ tlb: false });
    const [a, b] = [mem.alloc(), mem.alloc()];
    t.map(0x1000, a);
    t.map(0x2000, b);
    expect(sh.translate(v, 0x1000, PFEC_W)).toBe(a * 4096);
    expect(sh.translate(v, 0x2000, 0)).toBe(b * 4096);
    expect(sh.shadowLookup(v, 0x1000)?.writable).toBe(true);
    // Copy on write's change: the entry loses RW (the guest's fork), the other is rewritten as is.
    const s1 = t.slot(0x1000, 1);
    t.store(s1, (w.ram.read64lo(s1) & ~2) >>> 0, 0);
    const s2 = t.slot(0x2000, 1);
    t.store(s2, w.ram.read64lo(s2), 0);
    expect(sh.shadowLookup(v, 0x1000)?.writable).toBe(true); // stale until the flush
    sh.flushLocal(v);
    expect(sh.counts.syncDropped).toBe(1);
    expect(sh.translate(v, 0x1000, PFEC_W)).toBe(-1); // now read-only to the guest
    expect(sh.shadowLookup(v, 0x2000)).not.toBeNull();
  });

  it("a table above level 1 never goes out of sync: its stores are emulated", () => {
    const { mem, t, v, sh } = setup();
    const a = mem.alloc();
    t.map(0x1000, a);
    sh.translate(v, 0x1000, 0);
    const l2 = Math.floor(t.slot(0x1000, 2) / 4096);
    t.store(l2 * 4096 + 8 * 7, 0, 0);
    expect(sh.counts.unsyncs).toBe(0);
    expect(sh.counts.emulatedWrites).toBe(1);
    expect(sh.isWriteProtected(l2)).toBe(true);
  });

  it("with outOfSync false every store to a shadowed table is emulated", () => {
    const { mem, t, v, sh } = setup({ outOfSync: false });
    const a = mem.alloc();
    t.map(0x1000, a);
    sh.translate(v, 0x1000, 0);
    const exits = pfExits(sh);
    for (let i = 0; i < 10; i++) t.map(0x3000 + i * 4096, a);
    expect(pfExits(sh)).toBe(exits + 10);
    expect(sh.counts.emulatedWrites).toBe(10);
    expect(sh.counts.unsyncs).toBe(0);
  });

  it("bad options are refused with a typed error", () => {
    expect(() => boot({ outOfSync: 1 as unknown as boolean })).toThrow(
      /outOfSync must be true or false/,
    );
    expect(() => boot({ writeFlooding: "y" as unknown as boolean })).toThrow(
      /writeFlooding must be true or false/,
    );
  });
});

const PFEC_W = 2;

describe("write-flood detection", () => {
  it(`a table above level 1 written ${FLOOD_WRITES} times without use is zapped, and later stores do not trap`, () => {
    const { mem, t, v, sh } = setup();
    const a = mem.alloc();
    t.map(0x1000, a);
    sh.translate(v, 0x1000, 0);
    const l2 = Math.floor(t.slot(0x1000, 2) / 4096);
    const exits = pfExits(sh);
    for (let i = 0; i < FLOOD_WRITES; i++) t.store(l2 * 4096 + 8 * (10 + i), 0, 0);
    expect(sh.counts.floodZaps).toBe(1);
    expect(sh.isWriteProtected(l2)).toBe(false);
    for (let i = 0; i < 50; i++) t.store(l2 * 4096 + 8 * (20 + i), 0, 0);
    expect(pfExits(sh)).toBe(exits + FLOOD_WRITES);
    // The guest's mapping still works: the next access refills the shadow path.
    sh.flushLocal(v);
    expect(sh.translate(v, 0x1000, 0)).toBe(a * 4096);
    expect(sh.isWriteProtected(l2)).toBe(true);
  });

  it("a fault walking through the page resets its count", () => {
    const { mem, t, v, sh } = setup();
    const a = mem.alloc();
    // Five L1 tables under one L2 table, mapped before anything is shadowed.
    for (let r = 0; r < 5; r++) t.map(0x1000 + r * 0x20_0000, a);
    sh.translate(v, 0x1000, 0);
    const l2 = Math.floor(t.slot(0x1000, 2) / 4096);
    for (let round = 1; round < 5; round++) {
      for (let i = 0; i < FLOOD_WRITES - 1; i++) t.store(l2 * 4096 + 8 * (10 + i), 0, 0);
      // A fault whose fill walks through the L2 shadow page: it is in use.
      expect(sh.translate(v, 0x1000 + round * 0x20_0000, 0)).toBe(a * 4096);
    }
    expect(sh.counts.floodZaps).toBe(0);
    expect(sh.isWriteProtected(l2)).toBe(true);
  });

  it("with writeFlooding false the page is never zapped", () => {
    const { mem, t, v, sh } = setup({ writeFlooding: false });
    t.map(0x1000, mem.alloc());
    sh.translate(v, 0x1000, 0);
    const l2 = Math.floor(t.slot(0x1000, 2) / 4096);
    for (let i = 0; i < 20; i++) t.store(l2 * 4096 + 8 * (10 + i), 0, 0);
    expect(sh.counts.floodZaps).toBe(0);
    expect(sh.counts.emulatedWrites).toBe(20);
  });
});

/** A native guest kernel on shadow paging, with a parent that has touched `pages` pages. */
function kernelWithParent(mmu: Plugin, pages: number) {
  const machine = createMachine({ ramBytes: 128 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [mmu] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 8192 + 16 });
  const k = bootNativeKernel(hv, d, { nrPages: 8192 });
  hv.unpauseDomain(d);
  const p: Process = spawnProcess(k);
  const va = p.mmap(pages * 4096, PROT_READ | PROT_WRITE);
  for (let i = 0; i < pages; i++) expect(p.store(va + i * 4096, i)).toBe(true);
  return { sh: hv.slot("shadow-mmu") as ShadowMmu, p, va, k };
}

describe("fork, exec and exit under shadow paging", () => {
  const PAGES = 2048; // four full L1 tables of the parent
  const forkExecExit = (p: Process, va: number) => {
    const c = p.fork();
    if (typeof c === "number") throw new Error(`fork failed: ${c}`);
    expect(c.load(va + 4096)).toBe(1);
    expect(c.store(va + 8192, 7)).toBe(true); // copy on write
    expect(c.exec()).toBe(0);
    c.exit(0);
    expect(p.load(va + 8192)).toBe(2);
  };

  it("traps a few times per table page, not once per entry (KVM's unsync pages and write flooding)", () => {
    const exitsOf = (mmu: Plugin) => {
      const { sh, p, va } = kernelWithParent(mmu, PAGES);
      forkExecExit(p, va); // warm: the shadows of the parent exist
      // The parent works on its whole working set (its entries become writable again).
      for (let i = 0; i < PAGES; i++) expect(p.store(va + i * 4096, i)).toBe(true);
      const before = pfExits(sh);
      forkExecExit(p, va);
      return pfExits(sh) - before;
    };
    const kvm = exitsOf(shadowMmu());
    const inSync = exitsOf(shadowMmu({ outOfSync: false, writeFlooding: false }));
    // In sync every entry fork write-protects traps: at least the parent's 2048 PTEs, and
    // every entry exec and exit clear in the child's shadowed tables.
    expect(inSync).toBeGreaterThan(PAGES);
    // Out of sync the four L1 tables trap once each per fork; with the child's faults
    // and its tables' teardown, a few dozen exits in all.
    expect(kvm).toBeLessThan(PAGES / 16);
    expect(kvm * 20).toBeLessThan(inSync);
  });

  it("what the guest reads is the same with and without out-of-sync pages", () => {
    const run = (mmu: Plugin) => {
      const { p, va } = kernelWithParent(mmu, 600);
      const seen: number[] = [];
      for (let r = 0; r < 3; r++) {
        const c = p.fork();
        if (typeof c === "number") throw new Error(`fork failed: ${c}`);
        for (let i = 0; i < 600; i += 37) {
          seen.push(c.load(va + i * 4096));
          c.store(va + i * 4096, i * 3 + r);
          seen.push(c.load(va + i * 4096));
          seen.push(p.load(va + i * 4096));
        }
        c.exit(0);
        p.store(va + r * 4096, 1000 + r);
      }
      return seen;
    };
    expect(run(shadowMmu())).toEqual(run(shadowMmu({ outOfSync: false, writeFlooding: false })));
  });
});

describe("walkRefSink", () => {
  it("hears every shadow entry a hardware walk reads, and nothing of the host's software walks", () => {
    const { w, mem, t, v, sh } = setup();
    const heard: number[] = [];
    sh.walkRefSink = (ma) => heard.push(ma);
    t.map(0x1000, mem.alloc());
    const before = sh.counts.shadowRefs;
    sh.translate(v, 0x1000, 0);
    expect(heard).toHaveLength(sh.counts.shadowRefs - before);
    // Every address heard is in a shadow page (a host frame Xen owns), never in the guest's tables.
    for (const ma of heard) expect(w.hv.frames.ownerOf(Math.floor(ma / 4096))).toBe(0x7ff2);
    expect(heard).toContain(sh.shadowRoot(v) * 4096);
    expect(heard).not.toContain(t.cr3 * 4096);
  });
});
