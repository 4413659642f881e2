import { createHypervisor, definePlugin, type Hypervisor, isHyperlabError } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { describe, expect, it } from "vitest";
import { createWriteAudit, type GrantView, InvariantError } from "../src/index";

const PAGE = 4096;
/** A made-up hypercall number for a test plugin that stores where it is told. */
const STORE_OP = 60;

/** A plugin whose hypercall stores into `args.maddr` in the way `args.how` names. */
const storer = definePlugin({
  name: "storer",
  hypercalls: [{ op: STORE_OP }],
  setup(ctx) {
    ctx.hypercall(STORE_OP, (_v, a: { maddr: number; how: string }) => {
      const ram = ctx.hv.machine.ram;
      const mfn = Math.floor(a.maddr / PAGE);
      if (a.how === "write32") ram.write32(a.maddr, 1);
      else if (a.how === "bytes") ram.writeBytes(a.maddr, new Uint8Array(8).fill(1));
      else if (a.how === "view") ram.frameWords(mfn, true)[0] = 1;
      else if (a.how === "read") return ram.read32(a.maddr) === 0 ? 0 : 1;
      return 0;
    });
  },
});

function world(): { hv: Hypervisor; a: number; b: number; aFrame: number; bFrame: number } {
  const machine = createMachine({ ramBytes: 8 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [storer] }).boot();
  const a = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 8 });
  const b = hv.createDomain({ domid: 2, maxVcpus: 1, maxPages: 8 });
  return {
    hv,
    a: a.domid,
    b: b.domid,
    aFrame: hv.allocDomainPages(a),
    bFrame: hv.allocDomainPages(b),
  };
}

function store(hv: Hypervisor, domid: number, maddr: number, how: string): number {
  return hv.hypercall(hv.domain(domid)!.vcpus[0], STORE_OP, { maddr, how });
}

describe("write audit", () => {
  it("passes stores into the acting domain's own frames and its shared_info", () => {
    const { hv, a, aFrame } = world();
    const audit = createWriteAudit(hv);
    for (const how of ["write32", "bytes", "view"]) {
      audit.as(a, () => store(hv, a, aFrame * PAGE + 8, how));
      audit.as(a, () => store(hv, a, hv.domain(a)!.sharedInfoMfn * PAGE, how));
    }
    expect(audit.strays).toEqual([]);
    expect(audit.checked).toBe(6);
    audit.assertClean();
    audit.dispose();
  });

  it("reports a store (direct, bulk or through a view taken for writing) into another domain's frame", () => {
    const { hv, a, bFrame } = world();
    const audit = createWriteAudit(hv);
    for (const how of ["write32", "bytes", "view"])
      audit.as(a, () => store(hv, a, bFrame * PAGE, how));
    expect(audit.strays.map((s) => [s.domid, s.mfn, s.owner])).toEqual([
      [a, bFrame, 2],
      [a, bFrame, 2],
      [a, bFrame, 2],
    ]);
    expect(audit.strays[2].len).toBe(PAGE);
    expect(() => audit.assertClean()).toThrow(InvariantError);
    try {
      audit.assertClean();
    } catch (e) {
      expect((e as InvariantError).code).toBe("WRITE_AUDIT_STRAY");
      expect((e as InvariantError).violations).toHaveLength(3);
    }
    audit.dispose();
  });

  it("a store crossing from an own frame into the next (someone else's) is caught", () => {
    const { hv, a, b, aFrame, bFrame } = world();
    const audit = createWriteAudit(hv);
    // Frames are handed out from the top down: a's data frame lies just above b's.
    expect(bFrame + 1).toBe(aFrame);
    audit.as(b, () => store(hv, b, bFrame * PAGE + PAGE - 4, "bytes"));
    expect(audit.strays.map((s) => [s.mfn, s.owner])).toEqual([[aFrame, a]]);
  });

  it("with throwOnStray, the first stray store throws out of the hypercall", () => {
    const { hv, a, bFrame } = world();
    const audit = createWriteAudit(hv, { throwOnStray: true });
    expect(() => audit.as(a, () => store(hv, a, bFrame * PAGE, "write32"))).toThrow(
      /on behalf of domain 1 landed in frame/,
    );
    // The RAM was not changed: the hook runs before the store.
    expect(hv.machine.ram.read32(bFrame * PAGE)).toBe(0);
    audit.dispose();
  });

  it("allows frames granted to the acting domain and frames another domain shared for events", () => {
    const { hv, a, b, bFrame } = world();
    const other = hv.allocDomainPages(hv.domain(b)!);
    const grants: GrantView = {
      forEachMapping(fn) {
        fn({ mapperDomid: a, handle: 0, granterDomid: b, ref: 8, mfn: bFrame, flags: 0 });
      },
      forEachActive() {},
    };
    const audit = createWriteAudit(hv, { grants, sharedAreas: (d) => (d === b ? [other] : []) });
    audit.as(a, () => store(hv, a, bFrame * PAGE, "write32"));
    audit.as(a, () => store(hv, a, other * PAGE, "write32"));
    // Another domain's shared_info is an event-delivery area too.
    audit.as(a, () => store(hv, a, hv.domain(b)!.sharedInfoMfn * PAGE, "write32"));
    expect(audit.strays).toEqual([]);
    // The grant is a's, not b's: acting for the third domain it is a stray.
    const c = hv.createDomain({ domid: 3, maxVcpus: 1, maxPages: 4 });
    audit.as(c.domid, () => store(hv, c.domid, bFrame * PAGE, "write32"));
    expect(audit.strays.map((s) => s.domid)).toEqual([3]);
    audit.dispose();
  });

  it("ignores stores outside as(), and reads; dispose restores the previous hook", () => {
    const { hv, a, bFrame } = world();
    const seen: number[] = [];
    hv.machine.ram.setWriteHook((m) => seen.push(m));
    const audit = createWriteAudit(hv);
    store(hv, a, bFrame * PAGE, "write32");
    audit.as(a, () => store(hv, a, bFrame * PAGE, "read"));
    expect(audit.strays).toEqual([]);
    expect(audit.checked).toBe(0);
    audit.dispose();
    audit.dispose();
    hv.machine.ram.write32(0, 1);
    expect(seen).toEqual([0]);
  });

  it("user mistakes: nested as() and use after dispose throw typed errors", () => {
    const { hv, a, b } = world();
    const audit = createWriteAudit(hv);
    let err: unknown;
    try {
      audit.as(a, () => audit.as(b, () => 0));
    } catch (e) {
      err = e;
    }
    expect(isHyperlabError(err, ["WRITE_AUDIT_NESTED"])).toBe(true);
    // The failed call left the audit usable.
    expect(audit.as(a, () => 5)).toBe(5);
    audit.dispose();
    err = undefined;
    try {
      audit.as(a, () => 0);
    } catch (e) {
      err = e;
    }
    expect(isHyperlabError(err, ["WRITE_AUDIT_DISPOSED"])).toBe(true);
  });
});
