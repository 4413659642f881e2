import { isHyperlabError } from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_SHOOTDOWN_COSTS,
  runShootdownStudy,
  type ShootdownBackend,
  shootdownCycles,
} from "../src/index";

describe("the TLB shootdown study (2 vCPUs, munmap/mprotect of memory both touched)", () => {
  const results = runShootdownStudy({ pages: 8, rounds: 2 });
  const by = Object.fromEntries(results.map((r) => [r.backend, r])) as Record<
    ShootdownBackend,
    (typeof results)[number]
  >;
  // Per round: one mprotect of 4 pages, 4 single-page munmaps, one munmap of 4 pages.
  const SHOOTDOWNS = 2 * 6;

  it("Xen PV shoots down with one MMUEXT_*_MULTI hypercall each and Xen's own IPI, no guest IPI", () => {
    const c = by.pv.counts;
    expect(c.shootdowns).toBe(SHOOTDOWNS);
    expect(c.hypercalls).toBe(SHOOTDOWNS);
    expect(c.xenIpis).toBe(SHOOTDOWNS);
    expect(c.guestIpis).toBe(0);
    expect(c.interrupts).toBe(0);
    expect(c.vmExits).toBe(0);
    // xen_flush_tlb_multi: INVLPG_MULTI for one page, a full flush of vCPU 1 for more.
    expect(c.invlpg).toBe(2 * 4);
    expect(c.tlbFlushes).toBe(2 * 2);
  });

  it("natively each shootdown is one IPI, one interrupt and INVLPGs on the target", () => {
    const c = by.native.counts;
    expect(c.shootdowns).toBe(SHOOTDOWNS);
    expect(c.guestIpis).toBe(SHOOTDOWNS);
    expect(c.interrupts).toBe(SHOOTDOWNS);
    expect(c.hypercalls).toBe(0);
    expect(c.vmExits).toBe(0);
    expect(c.invlpg).toBe(2 * (4 + 4 + 4));
  });

  it("under nested paging the same IPIs cost three exits each (ICR write, the target's kick, EOI write)", () => {
    const c = by.nested.counts;
    expect(c.guestIpis).toBe(SHOOTDOWNS);
    expect(c.interrupts).toBe(SHOOTDOWNS);
    expect(c.vmExits).toBe(3 * SHOOTDOWNS);
    expect(c.invlpg).toBe(by.native.counts.invlpg);
  });

  it("estimates cycles from the counts alone; nested costs the most, native the least", () => {
    for (const r of results) {
      expect(r.cycles).toBe(shootdownCycles(r.counts, DEFAULT_SHOOTDOWN_COSTS));
      expect(r.cyclesPerShootdown).toBe(r.cycles / r.counts.shootdowns);
    }
    expect(by.nested.cycles).toBeGreaterThan(by.pv.cycles);
    expect(by.pv.cycles).toBeGreaterThan(by.native.cycles);
    // With exits free, nested costs what native does.
    const free = runShootdownStudy({
      pages: 8,
      rounds: 2,
      backends: ["nested"],
      costs: { vmExits: 0 },
    });
    expect(free[0].cycles).toBe(by.native.cycles);
  });

  it("is deterministic", () => {
    expect(runShootdownStudy({ pages: 8, rounds: 2 })).toEqual(results);
  });

  it("refuses bad options with STUDY_BAD_CONFIG", () => {
    const bad: Parameters<typeof runShootdownStudy>[0][] = [
      { pages: 0 },
      { pages: 1.5 },
      { rounds: 0 },
      { rounds: Number.NaN },
      { backends: ["shadow" as ShootdownBackend] },
      { costs: { vmExits: -1 } },
      { costs: { nope: 1 } as never },
      { costs: { invlpg: Infinity } },
    ];
    for (const o of bad) {
      let err: unknown;
      try {
        runShootdownStudy(o);
      } catch (e) {
        err = e;
      }
      expect(isHyperlabError(err, ["STUDY_BAD_CONFIG"]), JSON.stringify(o)).toBe(true);
    }
  });
});
