import { createHypervisor, type Hypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { nativeMmuPlugin } from "@hyperlab/native-mmu";
import { nptMmu } from "@hyperlab/npt-mmu";
import { buildPvDomain, pvMmuPlugin } from "@hyperlab/pv-mmu";
import { shadowMmu } from "@hyperlab/shadow-mmu";
import { bootNativeKernel, bootXenPvKernel, type GuestKernel } from "../src/index";

export interface Built {
  hv: Hypervisor;
  kernel: GuestKernel;
}

/** A bare-metal machine with one native kernel of `nrPages` pages. */
export function nativeBuild(nrPages = 4096, ramBytes = 128 << 20): Built {
  const machine = createMachine({ ramBytes, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nativeMmuPlugin()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: nrPages + 16 });
  return { hv, kernel: bootNativeKernel(hv, d, { nrPages }) };
}

/** A Xen machine with one PV domU built by pv-mmu's builder and booted. */
export function xenBuild(nrPages = 4096, batching = true, ramBytes = 128 << 20): Built {
  const machine = createMachine({ ramBytes, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmuPlugin()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: nrPages + 16 });
  const b = buildPvDomain(hv, hv.slot("pvMmu"), { domain: d, nrPages });
  return { hv, kernel: bootXenPvKernel(hv, d, { startInfoVa: b.rsi, batching }) };
}

/** Which hardware MMU a kernel with native pv_ops runs on. */
export type NativeHw = "native" | "nested" | "shadow";

/** A native-ops kernel on bare metal, nested or shadow paging, with a transparent_hugepage mode. */
export function hwBuild(
  hw: NativeHw,
  nrPages = 4096,
  transparentHugepage: "always" | "never" = "always",
): Built {
  const machine = createMachine({ ramBytes: 128 << 20, cpus: 1, seed: 1 });
  const plugin =
    hw === "native"
      ? nativeMmuPlugin()
      : hw === "nested"
        ? nptMmu({ hostPageSize: "4K" })
        : shadowMmu();
  const hv = createHypervisor({ machine, plugins: [plugin] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: nrPages + 16 });
  const kernel = bootNativeKernel(hv, d, { nrPages, transparentHugepage });
  hv.unpauseDomain(d);
  return { hv, kernel };
}
