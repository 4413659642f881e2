/*
 * A hostile guest (unprivileged, or a privileged dom0 that may map others' frames through
 * foreigndom) issues random sequences of mmu_update, mmuext_op, update_va_mapping,
 * memory_op and raw writes; after every call the testkit checkers prove the frame and
 * page-table invariants, and the TLBs are checked for writable translations of page tables.
 */
import {
  __HYPERVISOR_memory_op,
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_update_va_mapping,
  __HYPERVISOR_update_va_mapping_otherdomain,
  __HYPERVISOR_vm_assist,
  DOMID_SELF,
  VMASST_CMD_enable,
  VMASST_TYPE_writable_pagetables,
  XENMEM_decrease_reservation,
  XENMEM_exchange,
  XENMEM_increase_reservation,
  XENMEM_populate_physmap,
} from "@hyperlab/abi";
import { PGT_l1_page_table, PGT_l4_page_table, PGT_type_mask } from "@hyperlab/core";
import { PERM_RW } from "@hyperlab/paging";
import { checkFrameInvariants } from "@hyperlab/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { boot, guest, type World } from "./helpers";

const LONG = process.env.HYPERLAB_LONG === "1";
const RUNS = LONG ? 400 : 40;
const OPS = 260;

const FLAG_CHOICES = [
  0x0, 0x1, 0x3, 0x7, 0x23, 0x67, 0x83, 0x9, 0x11, 0x101, 0x103, 0x61, 0x5, 0x21, 0x25, 0x1, 0x21,
  0x63,
];
const HI_CHOICES = [0, 0, 0, 0x8000_0000 | 0, 0x4000_0000, 0x0010_0000, 0x7ff0_0000];

/**
 * Violations of "no TLB entry lets a vCPU write a page-table frame" and "no TLB entry reaches
 * a frame handed to another domain since" (a stale entry may name a freed frame).
 */
function tlbViolations(w: World): string[] {
  const out: string[] = [];
  for (const v of w.hv.vcpus) {
    if (v.domain.state === "dead") continue;
    const t = w.pv.tlbOf(v);
    for (let level = 0; level < t.nrLevels; level++) {
      const a = t.array(level, 12);
      if (a === null) continue;
      for (let i = 0; i < a.flags.length; i++) {
        if (a.flags[i] === 0) continue;
        const m = a.value[i];
        const x = w.hv.frames.typeInfo[m];
        const type = (x & PGT_type_mask) >>> 0;
        if (
          (a.perms[i] & PERM_RW) !== 0 &&
          type >= PGT_l1_page_table &&
          type <= PGT_l4_page_table &&
          (x & 0x3ff_ffff) !== 0
        ) {
          out.push(`vCPU ${v.domain.domid}.${v.vcpuId} TLB maps page table ${m} writable`);
        }
        const owner = w.hv.frames.ownerOf(m);
        if (
          owner !== -1 &&
          owner !== v.domain.domid &&
          owner !== 0x7ff2 &&
          !v.domain.isPrivileged
        ) {
          out.push(`vCPU ${v.domain.domid}.${v.vcpuId} TLB maps frame ${m} of domain ${owner}`);
        }
      }
    }
  }
  return out;
}

/** Violations of Xen's linear_pt_count rule, recomputed from the validated tables. */
function linearViolations(w: World): string[] {
  const f = w.hv.frames;
  const ram = w.hv.machine.ram;
  const entries = new Int32Array(f.nrFrames);
  const uses = new Int32Array(f.nrFrames);
  for (let t = 0; t < f.nrFrames; t++) {
    const x = f.typeInfo[t];
    const type = (x & PGT_type_mask) >>> 0;
    if (
      type < PGT_l1_page_table + (1 << 29) ||
      type > PGT_l4_page_table ||
      (x & 0x3ff_ffff) === 0 ||
      (x & (1 << 27)) === 0
    )
      continue;
    for (let i = 0; i < 512; i++) {
      if (type === PGT_l4_page_table && i >= 256 && i <= 271) continue;
      const lo = ram.read32(t * 4096 + i * 8);
      if ((lo & 1) === 0) continue;
      const m = (ram.read32(t * 4096 + i * 8 + 4) & 0xf_ffff) * 0x10_0000 + (lo >>> 12);
      if (m === t || (f.typeInfo[m] & PGT_type_mask) >>> 0 !== type) continue;
      entries[t]++;
      uses[m]++;
    }
  }
  const out: string[] = [];
  for (let m = 0; m < f.nrFrames; m++) {
    const want = entries[m] > 0 ? entries[m] : -uses[m];
    if (entries[m] > 0 && uses[m] > 0)
      out.push(`frame ${m} both holds and is the target of linear entries`);
    if (w.pv.pt.linear[m] !== want)
      out.push(`frame ${m} linear count ${w.pv.pt.linear[m]}, tables say ${want}`);
  }
  return out;
}

const op = fc.tuple(fc.nat(12), fc.nat(), fc.nat(), fc.nat(), fc.nat(), fc.nat());

function run(ops: [number, number, number, number, number, number][], privileged: boolean) {
  const w = boot(24 << 20);
  const g = guest(w, { domid: privileged ? 0 : 1, nrPages: 1100, maxPages: 1400 });
  const victim = w.hv.createDomain({ maxVcpus: 1, maxPages: 4096 });
  const victimFrames: number[] = [];
  for (let i = 0; i < 16; i++) victimFrames.push(w.hv.allocDomainPages(victim, 0));
  const v = g.d.vcpus[0];
  const own = Array.from(g.b.p2m);
  const ptFrames = () =>
    w.hv.frames
      .framesOf(g.d.domid)
      .filter(
        (m) =>
          (w.hv.frames.typeInfo[m] & PGT_type_mask) >>> 0 >= PGT_l1_page_table &&
          (w.hv.frames.typeInfo[m] & PGT_type_mask) >>> 0 <= PGT_l4_page_table,
      );
  const spares = own.slice(own.length - 48);
  const pickMfn = (x: number): number => {
    switch (x % 7) {
      case 0:
      case 1:
        return spares[(x >>> 3) % spares.length];
      case 2: {
        const p = ptFrames();
        return p.length > 0 ? p[(x >>> 3) % p.length] : own[0];
      }
      case 3:
        return victimFrames[(x >>> 3) % victimFrames.length];
      case 4:
        return (x >>> 3) % (w.hv.frames.nrFrames + 16);
      case 5:
        return own[(x >>> 3) % own.length];
      default:
        return g.b.l4Mfn;
    }
  };
  const pickVa = (x: number): number => {
    switch (x % 5) {
      case 0: // the page tables, mapped read-only: ptwr's ground
        return g.b.ptBaseVa + ((x >>> 3) % (g.b.nrPtFrames * 4096));
      case 1: // past the bootstrap region, where new mappings go
        return g.b.vEnd + ((x >>> 3) % (64 * 4096));
      case 2:
        return (x * 4096 * 7) % 2 ** 48;
      default:
        return g.b.virtBase + ((x >>> 3) % (g.b.vEnd - g.b.virtBase + 4096));
    }
  };
  const entry = (x: number, y: number): bigint => {
    const mfn = pickMfn(x);
    const lo = (mfn % 0x10_0000) * 4096 + FLAG_CHOICES[y % FLAG_CHOICES.length];
    const hi = (Math.floor(mfn / 0x10_0000) | HI_CHOICES[(y >>> 4) % HI_CHOICES.length]) >>> 0;
    return (BigInt(hi) << 32n) | BigInt(lo >>> 0);
  };
  let done = 0;
  for (const [kind, a, b, c, d, e] of ops) {
    switch (kind) {
      case 0:
      case 1: {
        const table = pickMfn(a);
        const reqs = [
          {
            ptr: table * 4096 + (b % 512) * 8 + (c % 4 === 3 ? 1 : c % 4 === 2 ? 2 : 0),
            val: entry(d, e),
          },
        ];
        w.hv.hypercall(v, __HYPERVISOR_mmu_update, {
          ureqs: reqs,
          count: 1,
          foreigndom: e % 7 === 0 ? victim.domid : DOMID_SELF,
        });
        break;
      }
      case 2: {
        const cmd = a % 21;
        w.hv.hypercall(v, __HYPERVISOR_mmuext_op, {
          uops: [
            {
              cmd,
              arg1: { mfn: pickMfn(b), linear_addr: pickVa(c) },
              arg2: { nr_ents: d % 9000, vcpumask: [d % 4], src_mfn: pickMfn(e) },
            },
          ],
          count: 1,
          foreigndom: DOMID_SELF,
        });
        break;
      }
      case 3:
        w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, {
          va: pickVa(a),
          val: entry(b, c),
          flags: d % 8,
          vcpumask: [1],
        });
        break;
      case 4:
        w.hv.hypercall(v, __HYPERVISOR_update_va_mapping_otherdomain, {
          va: pickVa(a),
          val: entry(b, c),
          flags: 0,
          domid: victim.domid,
        });
        break;
      case 5: {
        const which = [
          XENMEM_increase_reservation,
          XENMEM_decrease_reservation,
          XENMEM_populate_physmap,
        ][a % 3];
        const list = [pickMfn(b), pickMfn(c)];
        const n = w.hv.hypercall(v, __HYPERVISOR_memory_op, {
          cmd: which,
          extent_start: list,
          nr_extents: 1 + (d % 2),
          extent_order: e % 3,
          mem_flags: 0,
          domid: DOMID_SELF,
        });
        if (which !== XENMEM_decrease_reservation) for (let i = 0; i < n; i++) own.push(list[i]);
        break;
      }
      case 6: {
        const inList = [pickMfn(a)];
        const outList = [b % 4096];
        w.hv.hypercall(v, __HYPERVISOR_memory_op, {
          cmd: XENMEM_exchange,
          in: { extent_start: inList, nr_extents: 1, extent_order: 0, domid: DOMID_SELF },
          out: { extent_start: outList, nr_extents: 1, extent_order: 0, domid: DOMID_SELF },
          nr_exchanged: 0,
        });
        if (outList[0] !== b % 4096) own.push(outList[0]);
        break;
      }
      case 7: {
        // A raw store of an entry-like value: into the page tables (ptwr when enabled) or anywhere.
        if (a % 3 === 0)
          w.hv.hypercall(v, __HYPERVISOR_vm_assist, {
            cmd: VMASST_CMD_enable,
            type: VMASST_TYPE_writable_pagetables,
          });
        const va =
          b % 3 === 0 ? pickVa(b) : g.b.ptBaseVa + ((b >>> 2) % (g.b.nrPtFrames * 512)) * 8;
        const val = entry(c, d);
        if (e % 4 === 0) w.pv.write(v, va - (va % 4), 4, Number(val & 0xffff_ffffn));
        else w.pv.write64(v, va - (va % 8), Number(val & 0xffff_ffffn), Number(val >> 32n));
        break;
      }
      case 8:
        w.pv.read(v, pickVa(a), 4);
        w.pv.write(v, pickVa(b), 4, c);
        break;
      case 10:
        // Pin a frame as some level, or unpin one.
        w.hv.hypercall(v, __HYPERVISOR_mmuext_op, {
          uops: [{ cmd: b % 5, arg1: { mfn: pickMfn(a) } }],
          count: 1,
          foreigndom: DOMID_SELF,
        });
        break;
      case 11: {
        // Hook a frame into a page table read-only (the way linear and lower tables go in).
        const table = pickMfn(a);
        const slot = table === g.b.l4Mfn ? b % 256 : b % 512;
        const mfn = pickMfn(c);
        const val = (BigInt(mfn) << 12n) | (d % 3 === 0 ? 0x23n : 0x21n);
        w.hv.hypercall(v, __HYPERVISOR_mmu_update, {
          ureqs: [{ ptr: table * 4096 + slot * 8, val }],
          count: 1,
          foreigndom: DOMID_SELF,
        });
        break;
      }
      case 12:
        // The other domain takes frames: whatever the guest freed may be handed to it.
        w.hv.hypercall(victim.vcpus[0], __HYPERVISOR_memory_op, {
          cmd: XENMEM_increase_reservation,
          extent_start: null,
          nr_extents: 1 + (a % 4),
          extent_order: 0,
          domid: DOMID_SELF,
        });
        break;
      default:
        // A second vCPU switches base pointer to a random frame.
        w.hv.hypercall(g.d.vcpus[1], __HYPERVISOR_mmuext_op, {
          uops: [{ cmd: 5, arg1: { mfn: pickMfn(a) } }],
          count: 1,
          foreigndom: DOMID_SELF,
        });
    }
    done++;
    const bad = [...checkFrameInvariants(w.hv), ...tlbViolations(w), ...linearViolations(w)];
    if (bad.length > 0)
      throw new Error(
        `after op ${done} ${JSON.stringify([kind, a, b, c, d, e])}:\n${bad.join("\n")}`,
      );
  }
  // And the one cleanup path leaves nothing behind.
  w.hv.destroyDomain(g.d);
  const after = checkFrameInvariants(w.hv);
  if (after.length > 0) throw new Error(`after destroy:\n${after.join("\n")}`);
  expect(w.hv.frames.framesOf(g.d.domid)).toEqual([]);
  return done;
}

describe("a hostile guest cannot break the frame invariants", () => {
  it(
    `holds over ${RUNS} runs of ${OPS} random operations`,
    () => {
      let total = 0;
      fc.assert(
        fc.property(
          fc.array(op, { minLength: OPS, maxLength: OPS }),
          fc.boolean(),
          (ops, privileged) => {
            total += run(ops, privileged);
          },
        ),
        { seed: 0x5eed, numRuns: RUNS, endOnFailure: true },
      );
      expect(total).toBeGreaterThanOrEqual(RUNS * OPS);
    },
    LONG ? 3_600_000 : 300_000,
  );
});
