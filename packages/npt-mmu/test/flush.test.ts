import type { Vcpu } from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import {
  VMX_EPT_EXTENT_CONTEXT,
  VMX_EPT_EXTENT_GLOBAL,
  VMX_VPID_EXTENT_ALL_CONTEXT,
  VMX_VPID_EXTENT_INDIVIDUAL_ADDR,
  VMX_VPID_EXTENT_SINGLE_CONTEXT,
  VMX_VPID_EXTENT_SINGLE_NON_GLOBAL,
} from "../src/index";
import { boot, G, GuestMem, GuestTables, PRW, refsOf, type World } from "./helpers";

/** Two domains, two vCPUs each, all four vCPUs on pCPU 0 with the same tables per domain. */
function world(options = {}) {
  const w = boot(options);
  const doms = [new GuestMem(w), new GuestMem(w)];
  const tables = doms.map((mem) => {
    const t = new GuestTables(mem);
    t.map(0x1000, mem.alloc());
    t.map(0x2000, mem.alloc(), PRW | G);
    for (const v of mem.d.vcpus) {
      v.cr3Mfn = t.cr3;
      v.processor = 0;
    }
    return t;
  });
  const vcpus = doms.flatMap((m) => m.d.vcpus);
  for (const v of vcpus) {
    w.npt.translate(v, 0x1000, 0);
    w.npt.translate(v, 0x2000, 0);
  }
  return { w, doms, tables, vcpus };
}

const hit = (w: World, v: Vcpu, va: number) => refsOf(w.npt, () => w.npt.translate(v, va, 0)) === 0;

describe("INVVPID", () => {
  it("individual-address drops one address of one VPID", () => {
    const { w, vcpus } = world();
    w.npt.invvpid(VMX_VPID_EXTENT_INDIVIDUAL_ADDR, vcpus[0], 0x1000);
    expect(hit(w, vcpus[0], 0x1000)).toBe(false);
    expect(hit(w, vcpus[0], 0x2000)).toBe(true);
    expect(hit(w, vcpus[1], 0x1000)).toBe(true);
    expect(w.npt.counts.invvpid).toBe(1);
  });

  it("single-context drops one VPID's entries, globals too; single-non-global keeps globals", () => {
    const { w, vcpus } = world();
    w.npt.invvpid(VMX_VPID_EXTENT_SINGLE_CONTEXT, vcpus[0]);
    expect(hit(w, vcpus[0], 0x1000)).toBe(false);
    expect(hit(w, vcpus[0], 0x2000)).toBe(false);
    expect(hit(w, vcpus[1], 0x1000)).toBe(true);
    w.npt.invvpid(VMX_VPID_EXTENT_SINGLE_NON_GLOBAL, vcpus[1]);
    expect(hit(w, vcpus[1], 0x1000)).toBe(false);
    expect(hit(w, vcpus[1], 0x2000)).toBe(true);
  });

  it("all-context drops every VPID's entries but keeps guest-physical ones", () => {
    const { w, vcpus } = world();
    w.npt.invvpid(VMX_VPID_EXTENT_ALL_CONTEXT);
    for (const v of vcpus) {
      // The nested TLB and structure caches still serve most of the nested dimension.
      expect(refsOf(w.npt, () => w.npt.translate(v, 0x1000, 0))).toBeGreaterThan(0);
      expect(refsOf(w.npt, () => w.npt.translate(v, 0x1000, 0))).toBe(0);
    }
    const v = vcpus[0];
    w.npt.invvpid(VMX_VPID_EXTENT_ALL_CONTEXT);
    expect(refsOf(w.npt, () => w.npt.translate(v, 0x1000, 0))).toBeLessThan(24);
  });

  it("rejects a bad type or missing operands with a typed error", () => {
    const { w, vcpus } = world();
    const code = expect.objectContaining({ code: "NPT_BAD_INVVPID" });
    expect(() => w.npt.invvpid(VMX_VPID_EXTENT_SINGLE_CONTEXT)).toThrow(code);
    expect(() => w.npt.invvpid(VMX_VPID_EXTENT_INDIVIDUAL_ADDR, vcpus[0])).toThrow(code);
    expect(() => w.npt.invvpid(VMX_VPID_EXTENT_INDIVIDUAL_ADDR, vcpus[0], -1)).toThrow(code);
    expect(() => w.npt.invvpid(9, vcpus[0])).toThrow(code);
  });
});

describe("INVEPT", () => {
  it("single-context drops one domain's entries of every kind", () => {
    const { w, vcpus } = world();
    const nestedRefs = w.npt.counts.nestedRefs;
    w.npt.invept(VMX_EPT_EXTENT_CONTEXT, vcpus[0].domain);
    expect(hit(w, vcpus[0], 0x1000)).toBe(false);
    expect(w.npt.counts.nestedRefs).toBeGreaterThan(nestedRefs);
    expect(hit(w, vcpus[1], 0x2000)).toBe(false);
    expect(hit(w, vcpus[2], 0x1000)).toBe(true);
    expect(hit(w, vcpus[3], 0x2000)).toBe(true);
  });

  it("global drops everything", () => {
    const { w, vcpus } = world();
    w.npt.invept(VMX_EPT_EXTENT_GLOBAL);
    for (const v of vcpus) expect(hit(w, v, 0x2000)).toBe(false);
    expect(w.npt.counts.invept).toBe(1);
  });

  it("rejects a bad type or a missing domain with a typed error", () => {
    const { w } = world();
    const code = expect.objectContaining({ code: "NPT_BAD_INVEPT" });
    expect(() => w.npt.invept(VMX_EPT_EXTENT_CONTEXT)).toThrow(code);
    expect(() => w.npt.invept(7)).toThrow(code);
  });
});

describe("guest flushes and VPID tagging", () => {
  it("a CR3 reload keeps global entries; INVLPG drops a global entry", () => {
    const { w, vcpus } = world();
    const v = vcpus[0];
    w.npt.flushLocal(v);
    expect(hit(w, v, 0x1000)).toBe(false);
    expect(hit(w, v, 0x2000)).toBe(true);
    w.npt.flushOne(v, 0x2000);
    expect(hit(w, v, 0x2000)).toBe(false);
    expect(w.npt.counts.guestInvlpg).toBe(1);
  });

  it("a CR3 written straight into the vCPU is noticed on the next translation", () => {
    const { w, doms, vcpus } = world();
    const v = vcpus[0];
    const t2 = new GuestTables(doms[0]);
    const other = doms[0].alloc();
    t2.map(0x1000, other);
    v.cr3Mfn = t2.cr3;
    expect(w.npt.translate(v, 0x1000, 0)).toBe(other * 4096);
    w.npt.writeCr3(v, doms[0].d.vcpus[1].cr3Mfn);
    expect(w.npt.translate(v, 0x1000, 0)).not.toBe(other * 4096);
  });

  it("with VPIDs, vCPUs sharing a pCPU keep their entries; without, each switch flushes", () => {
    const tagged = world();
    expect(hit(tagged.w, tagged.vcpus[0], 0x1000)).toBe(true);
    expect(hit(tagged.w, tagged.vcpus[2], 0x1000)).toBe(true);
    expect(tagged.w.npt.vpidOf(tagged.vcpus[2])).toBe(tagged.vcpus[2].uid + 1);
    const untagged = world({ vpid: false });
    expect(untagged.w.npt.vpidOf(untagged.vcpus[0])).toBe(0);
    expect(hit(untagged.w, untagged.vcpus[0], 0x1000)).toBe(false);
    expect(hit(untagged.w, untagged.vcpus[0], 0x1000)).toBe(true);
    expect(hit(untagged.w, untagged.vcpus[2], 0x1000)).toBe(false);
    expect(untagged.w.npt.counts.vmentryFlushes).toBeGreaterThan(0);
  });

  it("a vCPU that moves to another pCPU keeps its own TLB, and its entries stay correct", () => {
    const { w, vcpus } = world();
    const v = vcpus[0];
    const before = w.npt.translate(v, 0x1000, 0);
    v.processor = 1;
    expect(w.npt.translate(v, 0x1000, 0)).toBe(before);
    expect(w.npt.tlbOf(v)).not.toBeNull();
    expect(boot({ tlb: false }).npt.tlbOf(v)).toBeNull();
  });
});
