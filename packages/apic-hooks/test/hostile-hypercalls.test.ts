/*
 * Issue 15: every hypercall of a full Xen-style build (PV MMU, PV CPU, FIFO event channels,
 * vCPU timers, grant tables, the IRQ layer), called by a hostile domU whose arguments are
 * non-finite, negative, huge, fractional or BigInt numbers, values of the wrong type, or
 * plausible ones. The argument object answers every field a handler reads, so no field a
 * handler looks at is left out. Each call must return an integer (0, a result or a negative
 * errno), never throw, and every store the hypervisor makes while serving it must land in a
 * frame domU owns or was granted (testkit's write audit). The routes come from the build
 * itself (hv.describe()), so a hypercall added later is covered without editing this test.
 */
import { __HYPERVISOR_sched_op, SCHEDOP_shutdown } from "@hyperlab/abi";
import { createHypervisor, type Hypervisor, schedCredit } from "@hyperlab/core";
import { evtchnFifo, vcpuTimers } from "@hyperlab/evtchn";
import { grantTable } from "@hyperlab/grant-table";
import { createMachine, createPlatform } from "@hyperlab/machine";
import { pvCpu } from "@hyperlab/pv-cpu";
import { buildPvDomain, pvGrantMapping, pvMmu } from "@hyperlab/pv-mmu";
import { createWriteAudit } from "@hyperlab/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { apicHooks } from "../src/index";

const LONG = process.env.HYPERLAB_LONG !== undefined;

const HOSTILE: readonly unknown[] = [
  Number.NaN,
  Infinity,
  -Infinity,
  -1,
  -0,
  0.5,
  -(2 ** 31),
  2 ** 31,
  2 ** 32,
  2 ** 53,
  2 ** 64,
  1e300,
  -1e300,
  -(2n ** 63n),
  2n ** 64n + 5n,
  5n,
  -1n,
  undefined,
  null,
  "1",
  true,
  {},
  [],
];

function world(): {
  hv: Hypervisor;
  domU: number;
  frames: number[];
  pfns: number[];
  vas: number[];
  /** Machine addresses of entries in domU's page tables, and entry values to put there. */
  ptes: number[];
} {
  const machine = createMachine({ ramBytes: 96 << 20, cpus: 2, seed: 15 });
  const platform = createPlatform(machine);
  const hv = createHypervisor({
    machine,
    plugins: [
      pvMmu(),
      pvCpu(),
      evtchnFifo(),
      vcpuTimers(),
      schedCredit(),
      grantTable(),
      pvGrantMapping(),
      apicHooks({ platform }),
    ],
  }).boot();
  const dom0 = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 1200 });
  buildPvDomain(hv, hv.slot("pv-mmu"), { domain: dom0, nrPages: 1024 });
  const domU = hv.createDomain({ domid: 1, maxVcpus: 2, maxPages: 1200 });
  const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: domU, nrPages: 1024 });
  for (const d of [dom0, domU]) {
    hv.unpauseDomain(d);
    hv.slot("sched").vcpuUp(d.vcpus[0]);
  }
  const frames = hv.frames.framesOf(domU.domid).slice(0, 64);
  // Guest pointers: free pages past the page tables and stack, inside the bootstrap map.
  const free = b.stackTop + 4096;
  const vas = [free, free + 8, free + 4096 - 8, b.startInfoVa, b.sharedInfoVa, b.ptBaseVa];
  const pfns = [3, 700, 1000, 1023];
  const l1 = b.p2m[Math.floor((b.ptBaseVa - b.virtBase) / 4096) + b.nrPtFrames - 1];
  const data = b.p2m[1000];
  const ptes = [
    b.l4Mfn * 4096 + 8 * 300,
    l1 * 4096 + 8 * 500,
    (l1 * 4096 + 8 * 501) | 2, // MMU_PT_UPDATE_PRESERVE_AD
    data * 4096 + 0x67,
    data * 4096 + 0x65,
    0,
  ];
  return { hv, domU: domU.domid, frames, pfns, vas, ptes };
}

/** In a palette: an array of 1 to 3 argument objects like the outer one (uops, ureqs...). */
const NESTED = Symbol("nested");

const COUNT = /^(count|nr_[a-z_]+|nr)$/;
const LIST = /^(uops|ureqs|entries|ports|vcpumask)$/;
const DOM = /^(foreigndom|dom|domid|remote_dom|domain_id)$/;

/** A small deterministic hash of a field name, mixed with a per-call salt. */
function pick(name: string | symbol, salt: number, n: number): number {
  const s = typeof name === "string" ? name : String(name.description);
  let h = salt | 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x9e3779b1);
  return ((h ^ (h >>> 15)) >>> 0) % n;
}

/**
 * An argument object that answers any field: hostile values, or (with `plausibleBias`) small
 * numbers and addresses of domU's frames, chosen by field name and salt. Fields the handler
 * writes back are kept and read back as written, as guest memory would be.
 */
function hostileArgs(
  salt: number,
  palette: readonly unknown[],
  hostileShare: number,
  ptes: readonly number[],
): Record<string, unknown> {
  /** mmu_update's ptr is an entry's machine address, val an entry (ptes: 3 of each kind). */
  const pteOf = (name: string, salt: number) =>
    ptes[(name === "ptr" ? 0 : 3) + pick(name, salt, 3)];
  const written = new Map<string | symbol, unknown>();
  return new Proxy({} as Record<string, unknown>, {
    get(_t, name) {
      if (written.has(name)) return written.get(name);
      if (name === "then" || name === "toJSON" || typeof name === "symbol") return undefined;
      if (pick(name, salt ^ 0x5bd1e995, 8) < hostileShare) {
        return HOSTILE[pick(name, salt, HOSTILE.length)];
      }
      // Plausible values follow the field's kind: counts are small, request lists are lists.
      let v = palette[pick(name, salt, palette.length)];
      if (COUNT.test(name)) v = pick(name, salt, 4) >> 1;
      else if (LIST.test(name)) v = NESTED;
      else if (DOM.test(name)) v = [0x7ff0, 0x7ff0, 0, 1][pick(name, salt, 4)];
      else if (name === "ptr" || name === "val") v = pteOf(name, salt);
      if (v !== NESTED) return v;
      const n = 1 + pick(name, salt + 1, 3);
      const arr = Array.from({ length: n }, (_, i) =>
        hostileArgs(salt * 31 + i + 1, palette, hostileShare, ptes),
      );
      written.set(name, arr);
      return arr;
    },
    set(_t, name, value) {
      written.set(name, value);
      return true;
    },
    has(_t, name) {
      return typeof name === "string" && name !== "then";
    },
  });
}

describe("issue 15: a hostile domU against every hypercall of a full Xen build", () => {
  it("gets an integer (0, a result or -errno) from each, never a throw, and the write audit holds", {
    timeout: LONG ? 1_800_000 : 120_000,
  }, () => {
    const { hv } = world();
    const all = hv.describe().hypercalls;
    // SCHEDOP_shutdown ends the domain, so it is called once, last, in each sequence.
    const isShutdown = (r: (typeof all)[number]) =>
      r.op === __HYPERVISOR_sched_op && r.cmd === SCHEDOP_shutdown;
    const routes = [...all.filter((r) => !isShutdown(r)), ...all.filter(isShutdown)];
    const last = routes.length - 1;
    expect(isShutdown(routes[last])).toBe(true);
    // Sanity: the build serves the calls the issue names.
    expect(routes.length).toBeGreaterThan(60);
    const succeeded = new Set<string>();
    const errnos = new Set<number>();
    let checked = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            route: fc.integer({ min: 0, max: last - 1 }),
            salt: fc.integer(),
            /** Out of 8, how many fields get a hostile value; the rest are plausible. */
            hostileShare: fc.constantFrom(0, 0, 1, 1, 2, 4, 8),
            vcpu: fc.integer({ min: 0, max: 1 }),
          }),
          { minLength: 20, maxLength: LONG ? 200 : 60, size: "max" },
        ),
        fc.integer(),
        (calls, shutdownSalt) => {
          const w = world();
          const audit = createWriteAudit(w.hv, { grants: w.hv.slot("grant-table") });
          const d = w.hv.domain(w.domU)!;
          const plausible: unknown[] = [
            0,
            0,
            1,
            1,
            2,
            3,
            8,
            0x7ff0,
            NESTED,
            NESTED,
            ...w.pfns,
            ...w.vas,
            ...w.vas,
            ...w.ptes,
            ...w.ptes,
          ];
          for (const c of [
            ...calls,
            { route: last, salt: shutdownSalt, hostileShare: 2, vcpu: 0 },
          ]) {
            const r = routes[c.route];
            const args = hostileArgs(c.salt, plausible, c.hostileShare, w.ptes);
            if (r.cmd !== undefined) args.cmd = r.cmd;
            let rc: unknown;
            try {
              rc = audit.as(w.domU, () => w.hv.hypercall(d.vcpus[c.vcpu], r.op, args));
            } catch (e) {
              throw new Error(
                `${r.name}${r.cmd === undefined ? "" : ` cmd ${r.cmd}`} threw: ${String(e)}`,
              );
            }
            if (!Number.isInteger(rc)) {
              throw new Error(`${r.name} cmd ${r.cmd} returned ${String(rc)}, not an integer`);
            }
            if ((rc as number) >= 0) succeeded.add(`${r.name}/${r.cmd}`);
            else errnos.add(rc as number);
          }
          checked += audit.checked;
          audit.assertClean();
          audit.dispose();
        },
      ),
      { seed: 0x15, numRuns: LONG ? 100 : 16 },
    );
    // The arguments reach past the first checks: calls succeed, errnos vary, stores are audited.
    expect(succeeded.size).toBeGreaterThan(25);
    expect(errnos.size).toBeGreaterThan(4);
    expect(checked).toBeGreaterThan(20);
  });
});
