import { expect, it } from "vitest";

it("README example", async () => {
  // --- the README's example, verbatim from here ---
  const { createHypervisor } = await import("@hyperlab/core");
  const { createMachine } = await import("@hyperlab/machine");
  const { buildPvDomain, pvMmu } = await import("@hyperlab/pv-mmu");
  const { bootXenPvKernel, PROT_READ, PROT_WRITE, spawnProcess } = await import("../src/index");

  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: 4200 });
  const built = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 4096 });
  const kernel = bootXenPvKernel(hv, d, { startInfoVa: built.rsi, batching: true });

  const init = spawnProcess(kernel);
  const buf = init.mmap(64 * 4096, PROT_READ | PROT_WRITE); // demand-zero, nothing mapped yet
  init.writeRange(buf, 64 * 4096, 0x2a); // 16384 u32 stores, 64 page faults
  const child = init.fork(); // copy-on-write
  if (typeof child === "number") throw new Error(`fork: ${child}`);
  child.store(buf, 7); // a COW fault copies one page
  init.load(buf); // 0x2a: the parent's page is untouched
  child.exit(0);
  init.load(0x1000); // -1: SIGSEGV, init is killed (counted, not thrown)
  const xen = kernel.stats.snapshot()["xen-pv-ops"];
  // --- end of the example ---

  expect(init.state).toBe("killed");
  expect(init.signal).toBe(11);
  expect(kernel.counts.cowCopies).toBe(1);
  expect(kernel.counts.demandZero).toBe(64);
  expect(xen.find((s) => s.name === "hypercalls")!.value).toBeGreaterThan(0);
  expect(xen.find((s) => s.name === "ptwr_traps")!.value).toBe(0);
});
