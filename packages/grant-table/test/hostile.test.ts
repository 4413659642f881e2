/*
 * Hostile guests mix grant-table operations with PV MMU operations: they rewrite their grant
 * entries, map, unmap, replace and copy with random (often wrong) arguments, overwrite grant
 * mappings through mmu_update and update_va_mapping, hand granted frames back, try to pin
 * them as page tables, switch versions, and finally die in a random order. After every call
 * the testkit checkers prove the frame, page-table and grant invariants.
 */
import {
  __HYPERVISOR_grant_table_op,
  __HYPERVISOR_memory_op,
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_update_va_mapping,
  DOMID_SELF,
  DOMID_XEN,
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_application_map,
  GNTMAP_contains_pte,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTTABOP_copy,
  GNTTABOP_get_version,
  GNTTABOP_map_grant_ref,
  GNTTABOP_query_size,
  GNTTABOP_set_version,
  GNTTABOP_setup_table,
  GNTTABOP_unmap_and_replace,
  GNTTABOP_unmap_grant_ref,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_sub_page,
  GTF_type_mask,
  GTF_writing,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_UNPIN_TABLE,
  XENMEM_decrease_reservation,
} from "@hyperlab/abi";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { GnttabMapGrantRef, GrantTableOpArgs } from "../src/index";
import { bootPv, type PvGuest, pvGuest, violations } from "./pv-helpers";

const LONG = process.env.HYPERLAB_LONG === "1";
const RUNS = LONG ? 200 : 8;
const OPS = LONG ? 300 : 120;
const seen = { maps: 0, unmaps: 0, copies: 0 };

const MAP_FLAGS = [
  GNTMAP_host_map,
  GNTMAP_host_map | GNTMAP_readonly,
  GNTMAP_device_map,
  GNTMAP_device_map | GNTMAP_readonly,
  GNTMAP_host_map | GNTMAP_device_map,
  GNTMAP_host_map | GNTMAP_device_map | GNTMAP_readonly,
  GNTMAP_host_map | GNTMAP_contains_pte,
  GNTMAP_host_map | GNTMAP_application_map,
  GNTMAP_host_map | GNTMAP_readonly | (5 << 16),
  0,
];
const GRANT_FLAGS = [
  GTF_permit_access,
  GTF_permit_access,
  GTF_permit_access | GTF_readonly,
  0,
  GTF_permit_access | GTF_sub_page,
  2,
];

const op = fc.tuple(fc.nat(13), fc.nat(), fc.nat(), fc.nat(), fc.nat());
type Op = [number, number, number, number, number];

interface Mapping {
  by: PvGuest;
  handle: number;
  host_addr: number;
  dev_bus_addr: number;
}

function run(ops: Op[], privileged: boolean): void {
  const w = bootPv(32 << 20);
  const a = pvGuest(w, 1);
  const b = pvGuest(w, privileged ? 0 : 2);
  const guests = [a, b];
  const ram = w.hv.machine.ram;
  const maps: Mapping[] = [];
  const other = (g: PvGuest) => (g === a ? b : a);

  /** Whether a frame holds grant entries or status words (of any domain). */
  const isGrantFrame = (mfn: number): boolean =>
    guests.some((g) => {
      const t = w.gt.table(g.d.domid);
      return t !== undefined && (t.shared.includes(mfn) || t.status.includes(mfn));
    });
  /**
   * A frame to name. Only grant entries may name a grant frame (and then read-only): the
   * guests leave GTF_reading / GTF_writing to Xen, as Linux does, so nothing else writes there.
   */
  const pickFrame = (g: PvGuest, x: number, forGrant = false): number => {
    let mfn: number;
    switch (x % 6) {
      case 0:
      case 1:
        mfn = g.b.p2m[1050 + ((x >>> 3) % 50)];
        break;
      case 2:
        mfn = g.b.l4Mfn;
        break;
      case 3:
        mfn = w.gt.table(g.d.domid)?.shared[0] ?? 0;
        break;
      case 4:
        mfn = other(g).b.p2m[1050 + ((x >>> 3) % 50)];
        break;
      default:
        mfn = (x >>> 3) % (w.hv.frames.nrFrames + 8);
    }
    return !forGrant && isGrantFrame(mfn) ? g.b.l4Mfn : mfn;
  };
  const pickVa = (g: PvGuest, x: number): number => {
    switch (x % 4) {
      case 0:
      case 1:
        return g.b.vEnd + 48 * 4096 + ((x >>> 2) % 24) * 4096;
      case 2:
        return g.b.virtBase + ((x >>> 2) % 64) * 4096;
      default:
        return ((x >>> 2) * 4096 * 13) % 2 ** 48;
    }
  };
  const pickPte = (g: PvGuest, x: number): number => {
    const slot = w.pv.guestL1Slot(g.d.vcpus[0].cr3Mfn, g.b.vEnd + 48 * 4096);
    if (x % 5 === 4 || slot < 0) return ((x >>> 3) % (w.hv.frames.nrFrames * 4096)) & ~7;
    return Math.floor(slot / 512) * 4096 + (((slot % 512) + ((x >>> 3) % 24)) % 512) * 8;
  };
  /**
   * The granter rewrites an entry as Linux would: GTF_reading / GTF_writing are Xen's, an entry
   * in use keeps its type and GTF_readonly (it may still change frame and grantee, which Xen
   * ignores while the entry is pinned), and an entry naming a grant frame is read-only.
   */
  const writeGrant = (g: PvGuest, ref: number, grantee: number, frame: number, flagsIn: number) => {
    const t = w.gt.table(g.d.domid);
    if (t === undefined || ref >= t.nrEntries) return;
    const e = t.entryAddr(ref);
    const inUse = t.statusBits(ref) & (GTF_reading | GTF_writing);
    let flags = flagsIn & ~(GTF_reading | GTF_writing);
    const keep = GTF_type_mask | GTF_readonly;
    if (inUse !== 0) flags = (flags & ~keep) | (t.flags(ref) & keep);
    if (isGrantFrame(frame)) flags |= GTF_readonly;
    if (t.version === 1) ram.write32(e + 4, frame);
    else {
      ram.write32(e + 8, frame);
      ram.write32(e + 12, 0);
      ram.write16(e + 4, (frame >>> 3) % 4096);
      ram.write16(e + 6, 1 + (frame % 4096));
    }
    ram.write16(e + 2, grantee);
    ram.write16(e, flags | (t.version === 1 ? inUse : 0));
  };
  /**
   * A new grant or status frame may be a frame an old entry still names: the guest makes such
   * entries read-only, so that its grant frames are never granted writable.
   */
  const readOnlyGrantFrames = (g: PvGuest) => {
    const t = w.gt.table(g.d.domid);
    if (t === undefined) return;
    for (let ref = 0; ref < t.nrEntries; ref++) {
      if (!isGrantFrame(t.frame(ref))) continue;
      const e = t.entryAddr(ref);
      ram.write16(e, ram.read16(e) | GTF_readonly);
    }
  };
  for (const g of guests)
    for (let r = 0; r < 24; r++)
      writeGrant(g, r, other(g).d.domid, pickFrame(g, r * 7 + 1, true), GRANT_FLAGS[r % 3]);

  const gnttab = (g: PvGuest, cmd: number, uops: object[]) =>
    w.hv.hypercall(g.d.vcpus[0], __HYPERVISOR_grant_table_op, {
      cmd,
      uops: uops as GrantTableOpArgs["uops"],
      count: uops.length,
    });

  ops.forEach(([kind, x, y, z, s], step) => {
    const g = guests[s % 2];
    const v = g.d.vcpus[0];
    const peer = other(g);
    switch (kind) {
      case 0:
        writeGrant(
          g,
          x % 28,
          y % 5 === 0 ? 77 : peer.d.domid,
          pickFrame(g, z, true),
          GRANT_FLAGS[y % GRANT_FLAGS.length],
        );
        break;
      case 1:
      case 2: {
        const n = 1 + (x % 3);
        const uops: GnttabMapGrantRef[] = [];
        for (let i = 0; i < n; i++) {
          const flags = MAP_FLAGS[(y + i * 7) % MAP_FLAGS.length];
          const host_addr =
            (flags & GNTMAP_contains_pte) !== 0 ? pickPte(g, z + i) : pickVa(g, z + i * 5);
          uops.push({
            host_addr,
            flags,
            ref: (x >>> 2) % 30,
            dom: s % 7 === 0 ? DOMID_SELF : s % 11 === 0 ? g.d.domid : peer.d.domid,
          });
        }
        gnttab(g, GNTTABOP_map_grant_ref, uops);
        for (const u of uops)
          if (u.status === 0)
            maps.push({
              by: g,
              handle: u.handle as number,
              host_addr: u.host_addr as number,
              dev_bus_addr: u.dev_bus_addr as number,
            });
        break;
      }
      case 3:
      case 4: {
        const mine = maps.filter((m) => m.by === g);
        const m = mine.length > 0 ? mine[x % mine.length] : undefined;
        const handle = m !== undefined && y % 6 !== 0 ? m.handle : y % 300;
        const host_addr = m !== undefined && z % 5 !== 0 ? m.host_addr : pickVa(g, z);
        if (kind === 3) {
          const dev = m !== undefined && z % 3 !== 0 ? m.dev_bus_addr : z % 2 === 0 ? 0 : z;
          gnttab(g, GNTTABOP_unmap_grant_ref, [{ host_addr, dev_bus_addr: dev, handle }]);
        } else {
          gnttab(g, GNTTABOP_unmap_and_replace, [
            { host_addr, new_addr: z % 4 === 0 ? 0 : pickVa(g, z >>> 2), handle },
          ]);
        }
        break;
      }
      case 5: {
        const flags = x % 4;
        const side = (gref: boolean, r: number) =>
          gref
            ? { u: { ref: r % 30 }, domid: r % 9 === 0 ? 99 : peer.d.domid, offset: (r * 8) % 4096 }
            : { u: { gmfn: pickFrame(g, r) }, domid: DOMID_SELF, offset: (r * 8) % 4096 };
        gnttab(g, GNTTABOP_copy, [
          {
            source: side((flags & GNTCOPY_source_gref) !== 0, y),
            dest: side((flags & GNTCOPY_dest_gref) !== 0, z),
            len: (y ^ z) % 300,
            flags,
          },
        ]);
        break;
      }
      case 6: {
        // Overwrites, clears or remaps whatever is at a VA: implicit unmaps of grant entries.
        const frame = pickFrame(g, y);
        const val = z % 3 === 0 ? 0 : frame * 4096 + (z % 2 === 0 ? 0x67 : 0x65);
        w.hv.hypercall(v, __HYPERVISOR_update_va_mapping, {
          va: pickVa(g, x),
          val,
          flags: z % 5 === 0 ? 2 : 0,
        });
        break;
      }
      case 7:
        w.hv.hypercall(v, __HYPERVISOR_mmu_update, {
          ureqs: [{ ptr: pickPte(g, x), val: y % 4 === 0 ? 0 : pickFrame(g, z) * 4096 + 0x67 }],
          count: 1,
          foreigndom: DOMID_SELF,
        });
        break;
      case 8: {
        const frame = pickFrame(g, x);
        if (y % 3 === 0)
          w.hv.hypercall(v, __HYPERVISOR_memory_op, {
            cmd: XENMEM_decrease_reservation,
            extent_start: [frame],
            nr_extents: 1,
            extent_order: 0,
            domid: DOMID_SELF,
          });
        else
          w.hv.hypercall(v, __HYPERVISOR_mmuext_op, {
            uops: [
              { cmd: y % 3 === 1 ? MMUEXT_PIN_L1_TABLE : MMUEXT_UNPIN_TABLE, arg1: { mfn: frame } },
            ],
            count: 1,
            foreigndom: DOMID_SELF,
          });
        break;
      }
      case 9:
        w.pv.read(v, pickVa(g, x), 4);
        w.pv.write(v, pickVa(g, y), 4, z);
        break;
      case 10:
        if (x % 3 === 0) gnttab(g, GNTTABOP_set_version, [{ version: 1 + (y % 2) }]);
        else
          gnttab(g, GNTTABOP_setup_table, [
            { dom: DOMID_SELF, nr_frames: y % 5, frame_list: [0, 0, 0, 0, 0] },
          ]);
        readOnlyGrantFrames(g);
        break;
      case 11:
        gnttab(g, x % 2 === 0 ? GNTTABOP_query_size : GNTTABOP_get_version, [
          { dom: y % 3 === 0 ? peer.d.domid : DOMID_SELF },
        ]);
        gnttab(g, y % 16, [{ bogus: z }]);
        break;
      default:
        // Malformed calls: they must fault cleanly.
        w.hv.hypercall(v, __HYPERVISOR_grant_table_op, {
          cmd: x % 11,
          uops: [null, { host_addr: -1 }] as unknown as GrantTableOpArgs["uops"],
          count: 1 + (y % 3),
        });
    }
    const bad = violations(w);
    if (bad.length > 0)
      throw new Error(`after op ${step} ${JSON.stringify(ops[step])}:\n  ${bad.join("\n  ")}`);
  });

  seen.maps += w.gt.counters.maps.value;
  seen.unmaps += w.gt.counters.unmaps.value;
  seen.copies += w.gt.counters.copies.value;
  // Everyone dies, in an order the run picks; nothing may be left behind.
  const order = ops.length % 2 === 0 ? [a, b] : [b, a];
  for (const g of order) {
    w.hv.destroyDomain(g.d);
    const bad = violations(w);
    if (bad.length > 0) throw new Error(`after destroying d${g.d.domid}:\n  ${bad.join("\n  ")}`);
  }
  expect(a.d.state).toBe("dead");
  expect(b.d.state).toBe("dead");
  expect(
    Array.from(w.hv.frames.ownerKeys, (k) => ~k).every((o) => o === -1 || o === DOMID_XEN),
  ).toBe(true);
}

describe("hostile guests mixing grant and MMU operations", () => {
  for (const privileged of [false, true]) {
    it(
      `keep every invariant (${privileged ? "privileged" : "unprivileged"} peer), ${RUNS} runs of ${OPS} operations`,
      () => {
        fc.assert(
          fc.property(fc.array(op, { minLength: OPS, maxLength: OPS }), (ops) =>
            run(ops as Op[], privileged),
          ),
          { seed: privileged ? 0x9a7 : 0x6e7, numRuns: RUNS, endOnFailure: true },
        );
        // The runs did reach the interesting paths, not only the error answers.
        expect(seen.maps).toBeGreaterThan(RUNS * 3);
        expect(seen.unmaps).toBeGreaterThan(RUNS);
        expect(seen.copies).toBeGreaterThan(0);
      },
      LONG ? 3_600_000 : 120_000,
    );
  }
});
