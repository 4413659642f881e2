import {
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_user_mode,
  PFEC_write_access,
} from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import {
  defineMmuConformance,
  type MmuBuildFactory,
  type MmuConformanceBuild,
  MmuConformanceError,
  type MmuRights,
  mmuConformanceCases,
  runMmuConformance,
} from "../src/index";

/*
 * A reference MMU with no page tables: a map of pages and their rights, and a TLB of the
 * rights a cold lookup granted. `skipNxOnHit` makes the TLB-hit check forget no-execute,
 * the bug native-mmu had; `userOnHit` makes it forget user/supervisor.
 */
function modelBuild(bug: "none" | "skipNxOnHit" | "userOnHit" | "writeOnHit"): MmuBuildFactory {
  return (): MmuConformanceBuild => {
    const pages = new Map<number, MmuRights>();
    const tlb = new Set<number>();
    const fault = { errorCode: 0, va: 0 };
    const deny = (r: MmuRights, a: number, hit: boolean): boolean =>
      ((a & PFEC_user_mode) !== 0 && !r.user && !(hit && bug === "userOnHit")) ||
      ((a & PFEC_write_access) !== 0 && !r.write && !(hit && bug === "writeOnHit")) ||
      ((a & PFEC_insn_fetch) !== 0 && r.nx && !(hit && bug === "skipNxOnHit"));
    return {
      map(k, rights) {
        const va = 0x1000 * (k + 1);
        pages.set(va, rights);
        return va;
      },
      translate(va, access) {
        const page = va - (va % 4096);
        const r = pages.get(page);
        if (r === undefined) {
          fault.errorCode = access;
          fault.va = va;
          return -1;
        }
        if (deny(r, access, tlb.has(page))) {
          fault.errorCode = access | PFEC_page_present;
          fault.va = va;
          return -1;
        }
        tlb.add(page);
        return 0x10_0000 + va;
      },
      fault,
      flushLocal: () => tlb.clear(),
    };
  };
}

describe("the MMU conformance suite", () => {
  it("passes a model MMU whose TLB hits check what its walks check", () => {
    expect(() => runMmuConformance(modelBuild("none"))).not.toThrow();
  });

  it("catches a TLB hit that skips no-execute (native-mmu's old bug), in two cases", () => {
    const failed = mmuConformanceCases.filter((c) => {
      try {
        c.run(modelBuild("skipNxOnHit"));
        return false;
      } catch (e) {
        expect(e).toBeInstanceOf(MmuConformanceError);
        return true;
      }
    });
    expect(failed.map((c) => c.name)).toEqual([
      "an instruction fetch from an NX page faults, cold and after a data read",
      "a TLB hit and a cold walk agree on every access to every kind of page",
    ]);
  });

  it("catches a TLB hit that forgets user/supervisor or read-only", () => {
    expect(() => runMmuConformance(modelBuild("userOnHit"))).toThrow(
      /user access to a supervisor page/,
    );
    expect(() => runMmuConformance(modelBuild("writeOnHit"))).toThrow(/read-only page/);
  });
});

// The registration path, as a backend uses it.
defineMmuConformance({ describe, it }, [["model MMU", modelBuild("none")]]);
