import {
  __HYPERVISOR_grant_table_op,
  GNTMAP_host_map,
  GNTTABOP_map_grant_ref,
  GNTTABOP_unmap_grant_ref,
  GTF_permit_access,
} from "@hyperlab/abi";
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, pvGrantMapping, pvMmu } from "@hyperlab/pv-mmu";
import { expect, it } from "vitest";
import { type GnttabMapGrantRef, type GnttabUnmapGrantRef, grantTable } from "../src/index";

it("runs the README example", () => {
  const log: unknown[][] = [];
  const console = { log: (...a: unknown[]) => log.push(a) };

  const machine = createMachine({ ramBytes: 64 * 2 ** 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({
    machine,
    plugins: [pvMmu(), pvGrantMapping(), grantTable()],
  }).boot();
  const pv = hv.slot("pv-mmu");
  const gt = hv.slot("grant-table");

  // Two 64-bit PV guests: dom1 shares one of its pages with dom2.
  const [front, back] = [1, 2].map((domid) => {
    const d = hv.createDomain({ domid, maxVcpus: 1, maxPages: 1100 });
    return { d, b: buildPvDomain(hv, pv, { domain: d, nrPages: 1100 }) };
  });
  const page = front.b.p2m[1000];
  machine.ram.write32(page * 4096, 0xcafe);

  // dom1 fills grant entry 8 in its grant frame: frame, grantee, then flags (grant_entry_v1).
  const entry = gt.table(1)!.entryAddr(8);
  machine.ram.write32(entry + 4, page);
  machine.ram.write16(entry + 2, 2);
  machine.ram.write16(entry, GTF_permit_access);

  // dom2 maps it past its bootstrap region and reads it through its own page tables.
  const v = back.d.vcpus[0];
  const va = back.b.vEnd + 8 * 4096;
  const map: GnttabMapGrantRef = { host_addr: va, flags: GNTMAP_host_map, ref: 8, dom: 1 };
  hv.hypercall(v, __HYPERVISOR_grant_table_op, {
    cmd: GNTTABOP_map_grant_ref,
    uops: [map],
    count: 1,
  });
  console.log(map, pv.read(v, va, 4).toString(16));
  console.log(machine.ram.read16(entry)); // 25: GTF_permit_access | GTF_reading | GTF_writing

  const unmap: GnttabUnmapGrantRef = { host_addr: va, dev_bus_addr: 0, handle: 0 };
  hv.hypercall(v, __HYPERVISOR_grant_table_op, {
    cmd: GNTTABOP_unmap_grant_ref,
    uops: [unmap],
    count: 1,
  });
  console.log(unmap.status, pv.read(v, va, 4), machine.ram.read16(entry)); // 0 -1 1

  expect(log[0][0]).toMatchObject({ status: 0, handle: 0, dev_bus_addr: page * 4096 });
  expect(log[0][1]).toBe("cafe");
  expect(log.slice(1)).toEqual([[25], [0, -1, 1]]);
});
