// The README's "Device drivers" example, on bare metal.
import { createHypervisor } from "@hyperlab/core";
import { createMachine, createPlatform, DiskController, MemoryDiskImage } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { expect, it } from "vitest";
import { bootNativeKernel, hldiskMatch, hldiskProbe, pciScanBus } from "../src/index";

it("README: probe the disk, read two sectors", () => {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const platform = createPlatform(machine);
  const image = new MemoryDiskImage(16);
  image.bytes[3 * 512] = 42;
  new DiskController(platform.pci, { image });
  platform.pci.assignResources();
  const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
  const d = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 2048 + 16 });
  const kernel = bootNativeKernel(hv, d, { nrPages: 2048, apics: platform.apics });

  const devs = pciScanBus(kernel, { ecamBase: platform.pci.ecamBase });
  if (typeof devs === "number") throw new Error(String(devs));
  const disk = hldiskProbe(kernel, devs.find(hldiskMatch)!, { irq: "msi" });
  if (typeof disk === "number") throw new Error(String(disk));
  const pfn = kernel.allocPage();
  let got = -1;
  disk.submit({ op: "read", sector: 3, count: 2, pfn, done: (status) => (got = status) });
  expect(got).toBe(1);
  expect(kernel.ram.frameBytes(kernel.frameOf(pfn))[0]).toBe(42);
});
