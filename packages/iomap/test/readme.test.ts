import { __HYPERVISOR_mmu_update, _PAGE_IOMAP, _PAGE_PCD, DOMID_SELF } from "@hyperlab/abi";
import { createHypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { expect, it } from "vitest";
import { iomap } from "../src/index";

it("runs the README example", () => {
  const log: unknown[][] = [];
  const console = { log: (...a: unknown[]) => log.push(a) };

  const machine = createMachine({ ramBytes: 64 * 2 ** 20, cpus: 1, seed: 1 });
  const regs = new Uint32Array(1024);
  machine.mmio.register({
    name: "device",
    base: 0xf000_0000,
    len: 4096,
    read: (offset) => regs[offset >>> 2],
    write: (offset, _width, value) => {
      regs[offset >>> 2] = value;
    },
  });
  const hv = createHypervisor({ machine, plugins: [pvMmu(), iomap()] }).boot();
  const pv = hv.slot("pv-mmu");
  const io = hv.slot("iomap");

  // A domU holds no I/O memory until the toolstack grants its device's frame.
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 1100 });
  const b = buildPvDomain(hv, pv, { domain: d, nrPages: 1024 });
  const va = b.vEnd + 8 * 4096;
  const loc = pv.guestL1Slot(b.l4Mfn, va);
  const ptr = Math.floor(loc / 512) * 4096 + (loc % 512) * 8;
  const map = () =>
    hv.hypercall(d.vcpus[0], __HYPERVISOR_mmu_update, {
      ureqs: [{ ptr, val: 0xf000_0000 + (0x63 | _PAGE_IOMAP) }],
      count: 1,
      foreigndom: DOMID_SELF,
    });
  console.log("before the grant:", map()); // -1 (-EPERM)
  io.iomemPermission(null, d, 0xf0000, 1, true);
  console.log("after the grant:", map()); // 0
  console.log("uncached:", (pv.pt.readLo(Math.floor(loc / 512), loc % 512) & _PAGE_PCD) !== 0);
  pv.write(d.vcpus[0], va + 4, 4, 42);
  console.log("register 1:", regs[1]); // 42

  expect(log).toEqual([
    ["before the grant:", -1],
    ["after the grant:", 0],
    ["uncached:", true],
    ["register 1:", 42],
  ]);
});
