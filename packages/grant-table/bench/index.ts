/*
 * Rates of the grant table's hot paths, in thousands of operations per second, through the
 * full hypercall path (dispatch, argument checks, statuses written back). Each figure is one
 * loop timed with process.hrtime.bigint() after an untimed warm-up of the same loop.
 */
import {
  __HYPERVISOR_grant_table_op,
  __HYPERVISOR_update_va_mapping,
  DOMID_SELF,
  GNTCOPY_source_gref,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTTABOP_copy,
  GNTTABOP_map_grant_ref,
  GNTTABOP_setup_table,
  GNTTABOP_unmap_grant_ref,
  GTF_permit_access,
  UVMF_INVLPG,
} from "@hyperlab/abi";
import { createHypervisor, type Domain, type Hypervisor, type Plugin } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, pvGrantMapping, pvMmu } from "@hyperlab/pv-mmu";
import { GrantMappingDouble } from "@hyperlab/testkit";
import {
  type GnttabCopy,
  type GnttabMapGrantRef,
  type GnttabUnmapGrantRef,
  grantHostMapping,
  grantTable,
} from "../src/index";

function measure(name: string, ops: number, loop: () => void): void {
  loop();
  const t0 = process.hrtime.bigint();
  loop();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`${name}: ${(ops / (ns / 1e6)).toFixed(1)} k/s`);
}

function hv(plugins: Plugin[]): Hypervisor {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 1 });
  return createHypervisor({ machine, plugins }).boot();
}

function grant(h: Hypervisor, granter: Domain, ref: number, grantee: number, frame: number) {
  const t = h.slot("grant-table").table(granter.domid)!;
  const a = t.entryAddr(ref);
  h.machine.ram.write32(a + 4, frame);
  h.machine.ram.write16(a + 2, grantee);
  h.machine.ram.write16(a, GTF_permit_access);
}

// ---- copy and device map/unmap, with the test double for host mappings ----
{
  const dbl = new GrantMappingDouble();
  const h = hv([grantHostMapping(() => dbl), grantTable()]);
  const a = h.createDomain({ domid: 1, maxVcpus: 1, maxPages: 64 });
  const b = h.createDomain({ domid: 2, maxVcpus: 1, maxPages: 64 });
  const src = h.allocDomainPages(a);
  const dst = h.allocDomainPages(b);
  grant(h, a, 1, 2, src);
  const v = b.vcpus[0];
  const N = 100_000;
  for (const len of [64, 4096]) {
    const op: GnttabCopy = {
      source: { u: { ref: 1 }, domid: 1, offset: 0 },
      dest: { u: { gmfn: dst }, domid: DOMID_SELF, offset: 0 },
      len,
      flags: GNTCOPY_source_gref,
    };
    const args = { cmd: GNTTABOP_copy, uops: [op], count: 1 };
    measure(`grant copy ${len} B (gref -> own frame)`, N, () => {
      for (let i = 0; i < N; i++) h.hypercall(v, __HYPERVISOR_grant_table_op, args);
    });
  }
  const map: GnttabMapGrantRef = { host_addr: 0, flags: GNTMAP_device_map, ref: 1, dom: 1 };
  const unmap: GnttabUnmapGrantRef = { host_addr: 0, dev_bus_addr: src * 4096, handle: 0 };
  const mapArgs = { cmd: GNTTABOP_map_grant_ref, uops: [map], count: 1 };
  const unmapArgs = { cmd: GNTTABOP_unmap_grant_ref, uops: [unmap], count: 1 };
  measure("grant device map + unmap", N, () => {
    for (let i = 0; i < N; i++) {
      h.hypercall(v, __HYPERVISOR_grant_table_op, mapArgs);
      unmap.handle = map.handle as number;
      h.hypercall(v, __HYPERVISOR_grant_table_op, unmapArgs);
    }
  });
}

// ---- host map/unmap through PV page tables ----
{
  const h = hv([pvMmu(), pvGrantMapping(), grantTable()]);
  const pv = h.slot("pv-mmu");
  const mk = (domid: number) => {
    const d = h.createDomain({ domid, maxVcpus: 1, maxPages: 1200 });
    return { d, b: buildPvDomain(h, pv, { domain: d, nrPages: 1100 }) };
  };
  const a = mk(1);
  const b = mk(2);
  const setup = { dom: DOMID_SELF, nr_frames: 1, frame_list: [0] };
  h.hypercall(a.d.vcpus[0], __HYPERVISOR_grant_table_op, {
    cmd: GNTTABOP_setup_table,
    uops: [setup],
    count: 1,
  });
  const page = a.b.p2m[1090];
  grant(h, a.d, 1, 2, page);
  const v = b.d.vcpus[0];
  const va = b.b.vEnd + 8 * 4096;
  const N = 50_000;
  const map: GnttabMapGrantRef = { host_addr: va, flags: GNTMAP_host_map, ref: 1, dom: 1 };
  const unmap: GnttabUnmapGrantRef = { host_addr: va, dev_bus_addr: 0, handle: 0 };
  const mapArgs = { cmd: GNTTABOP_map_grant_ref, uops: [map], count: 1 };
  const unmapArgs = { cmd: GNTTABOP_unmap_grant_ref, uops: [unmap], count: 1 };
  measure("grant host map + read + unmap (PV page tables)", N, () => {
    for (let i = 0; i < N; i++) {
      h.hypercall(v, __HYPERVISOR_grant_table_op, mapArgs);
      pv.read(v, va, 4);
      unmap.handle = map.handle as number;
      h.hypercall(v, __HYPERVISOR_grant_table_op, unmapArgs);
    }
  });
  // For scale: the same PTE write and clear done with update_va_mapping on an own frame.
  const own = b.b.p2m[1090];
  measure("baseline: update_va_mapping map + read + clear (own frame)", N, () => {
    for (let i = 0; i < N; i++) {
      h.hypercall(v, __HYPERVISOR_update_va_mapping, { va, val: own * 4096 + 0x67, flags: 0 });
      pv.read(v, va, 4);
      h.hypercall(v, __HYPERVISOR_update_va_mapping, { va, val: 0, flags: UVMF_INVLPG });
    }
  });
}
