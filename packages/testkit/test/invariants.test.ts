import {
  createHypervisor,
  PGC_allocated,
  PGT_l1_page_table,
  PGT_pinned,
  PGT_validated,
  PGT_writable_page,
} from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { assertFrameInvariants, checkFrameInvariants } from "../src/index";

/** A hypervisor with no MMU plugin and one domain; page tables are written by hand. */
function world() {
  const machine = createMachine({ ramBytes: 4 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [] }).boot();
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 64 });
  const e = hv.createDomain({ maxVcpus: 1, maxPages: 64 });
  return { hv, d, e, ram: machine.ram };
}

/** Makes `l1` a pinned, validated L1 whose entry 0 maps `target` (writable if rw). */
function pinL1(w: ReturnType<typeof world>, l1: number, target: number, rw: boolean) {
  const f = w.hv.frames;
  w.ram.write64(l1 * 4096, (target * 4096 + (rw ? 3 : 1)) >>> 0, 0);
  f.typeInfo[l1] = (PGT_l1_page_table | PGT_validated | PGT_pinned | 1) >>> 0;
  f.countInfo[l1] = (PGC_allocated | 2) >>> 0; // allocation + pin
  f.countInfo[target] += 1;
  if (rw) f.typeInfo[target] = (PGT_writable_page | PGT_validated | 1) >>> 0;
}

describe("frame invariants", () => {
  it("hold on a fresh system", () => {
    const w = world();
    expect(checkFrameInvariants(w.hv)).toEqual([]);
    expect(() => assertFrameInvariants(w.hv)).not.toThrow();
  });

  it("hold for a consistent hand-built L1", () => {
    const w = world();
    const l1 = w.hv.allocDomainPages(w.d);
    const data = w.hv.allocDomainPages(w.d);
    pinL1(w, l1, data, true);
    expect(checkFrameInvariants(w.hv)).toEqual([]);
  });

  it("catch a page table mapped writable", () => {
    const w = world();
    const l1 = w.hv.allocDomainPages(w.d);
    pinL1(w, l1, l1, false);
    // Now make the self-mapping writable without taking the writable type.
    w.ram.write32(l1 * 4096, (l1 * 4096 + 3) >>> 0);
    const v = checkFrameInvariants(w.hv);
    expect(v.some((s) => s.includes("maps it writable"))).toBe(true);
    expect(() => assertFrameInvariants(w.hv)).toThrow(/frame invariants broken/);
  });

  it("catch counts that differ from what tables hold", () => {
    const w = world();
    const l1 = w.hv.allocDomainPages(w.d);
    const data = w.hv.allocDomainPages(w.d);
    pinL1(w, l1, data, false);
    w.hv.frames.countInfo[data] += 1;
    expect(checkFrameInvariants(w.hv).some((s) => s.includes("general references"))).toBe(true);
  });

  it("catch a foreign mapping without a grant, and accept one with", () => {
    const w = world();
    const l1 = w.hv.allocDomainPages(w.d);
    const theirs = w.hv.allocDomainPages(w.e);
    pinL1(w, l1, theirs, false);
    expect(checkFrameInvariants(w.hv).some((s) => s.includes("without a grant"))).toBe(true);
    const granted = (mapper: number, mfn: number) => mapper === w.d.domid && mfn === theirs;
    expect(checkFrameInvariants(w.hv, { granted })).toEqual([]);
  });

  it("take references held elsewhere through extraRefs", () => {
    const w = world();
    const data = w.hv.allocDomainPages(w.d);
    w.hv.frames.countInfo[data] += 1;
    expect(checkFrameInvariants(w.hv).length).toBe(1);
    expect(
      checkFrameInvariants(w.hv, {
        extraRefs: (m) => (m === data ? { general: 1, type: 0 } : undefined),
      }),
    ).toEqual([]);
  });

  it("catch lost frames, doubly owned frames and wrong tot_pages", () => {
    const w = world();
    const data = w.hv.allocDomainPages(w.d);
    w.hv.frames.ownerKeys[data] = 0; // free (FRAME_FREE's key)
    w.hv.frames.countInfo[data] = 0;
    const v = checkFrameInvariants(w.hv);
    expect(v.some((s) => s.includes("lost"))).toBe(true);
    expect(v.some((s) => s.includes("tot_pages"))).toBe(true);
    const w2 = world();
    const m = w2.hv.allocDomainPages(w2.d);
    w2.hv.machine.frames.freeFrame(m);
    expect(checkFrameInvariants(w2.hv).some((s) => s.includes("owned twice"))).toBe(true);
  });
});
