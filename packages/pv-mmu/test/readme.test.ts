import {
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_update_va_mapping,
  DOMID_SELF,
  EBUSY,
  UVMF_INVLPG,
} from "@hyperlab/abi";
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { expect, it } from "vitest";
import { buildPvDomain, pvMmu } from "../src/index";

it("runs the README example", () => {
  const log: unknown[][] = [];
  const console = { log: (...a: unknown[]) => log.push(a) };

  const machine = createMachine({ ramBytes: 64 * 2 ** 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const pv = hv.slot("pv-mmu");

  // A 64-bit PV domU with 8 MiB, built as Xen builds one: tables validated, L4 pinned and in CR3.
  const domu = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 2048 });
  const built = buildPvDomain(hv, pv, { domain: domu, nrPages: 2048, cmdline: "console=hvc0" });
  const vcpu = domu.vcpus[0];

  // Map one of its free pages writable just past the bootstrap region, then write through it.
  const va = built.vEnd + 8 * 4096;
  const page = built.p2m[2047];
  const rc = hv.hypercall(vcpu, __HYPERVISOR_update_va_mapping, {
    va,
    val: page * 4096 + 0x3,
    flags: UVMF_INVLPG,
  });
  console.log(rc, pv.write(vcpu, va, 4, 0xfeed), machine.ram.read32(page * 4096)); // 0 true 65261

  // A writable mapping of a page table is refused: the L4 has a page-table type.
  const loc = pv.guestL1Slot(built.l4Mfn, va);
  const refused = hv.hypercall(vcpu, __HYPERVISOR_mmu_update, {
    ureqs: [{ ptr: Math.floor(loc / 512) * 4096 + (loc % 512) * 8, val: built.l4Mfn * 4096 + 0x3 }],
    count: 1,
    foreigndom: DOMID_SELF,
  });
  console.log(refused === -EBUSY); // true

  expect(log).toEqual([[0, true, 0xfeed], [true]]);
});
