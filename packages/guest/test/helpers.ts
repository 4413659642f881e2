import { createHypervisor, definePlugin, type Hypervisor, type Plugin } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { NativeMmu, nativeMmu } from "@hyperlab/native-mmu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { bootNativeKernel, bootXenPvKernel, type GuestKernel } from "../src/index";

export interface Built {
  hv: Hypervisor;
  kernel: GuestKernel;
}

/** A bare-metal machine with one native kernel of `nrPages` pages. */
export function nativeBuild(nrPages = 4096, ramBytes = 128 << 20): Built {
  const machine = createMachine({ ramBytes, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: nrPages + 16 });
  return { hv, kernel: bootNativeKernel(hv, d, { nrPages }) };
}

/** A Xen machine with one PV domU built by pv-mmu's builder and booted. */
export function xenBuild(nrPages = 4096, batching = true, ramBytes = 128 << 20): Built {
  const machine = createMachine({ ramBytes, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: nrPages + 16 });
  const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages });
  return { hv, kernel: bootXenPvKernel(hv, d, { startInfoVa: b.rsi, batching }) };
}

/**
 * Which hardware MMU a kernel with native pv_ops runs on: the native one, or the native one
 * taking page-table stores through `guestStore`, the entry point nested and shadow paging
 * give a guest (they cannot be dev dependencies here: their tests depend on this package;
 * @hyperlab/study runs the guest on both, huge pages included).
 */
export type NativeHw = "native" | "guest-store";

/** A native MMU with a guestStore that counts the stores it is given and makes them. */
function guestStoreMmu(log: { stores: number }): Plugin {
  return definePlugin({
    name: "guest-store-mmu",
    provides: ["mmu"],
    setup(ctx) {
      const mmu = new NativeMmu(ctx.hv, {});
      const ram = ctx.hv.machine.ram;
      Object.assign(mmu, {
        guestStore: (_v: unknown, gpa: number, lo: number, hi: number) => {
          log.stores++;
          ram.write64(gpa, lo, hi);
          return 0;
        },
      });
      ctx.provide("mmu", mmu);
    },
  });
}

/** A native-ops kernel on `hw`, with a transparent_hugepage mode; `stores` counts guestStore calls. */
export function hwBuild(
  hw: NativeHw,
  nrPages = 4096,
  transparentHugepage: "always" | "never" = "always",
): Built & { stores: { stores: number } } {
  const machine = createMachine({ ramBytes: 128 << 20, cpus: 1, seed: 1 });
  const stores = { stores: 0 };
  const plugin = hw === "native" ? nativeMmu() : guestStoreMmu(stores);
  const hv = createHypervisor({ machine, plugins: [plugin] }).boot();
  const d = hv.createDomain({ domid: 1, maxVcpus: 1, maxPages: nrPages + 16 });
  const kernel = bootNativeKernel(hv, d, { nrPages, transparentHugepage });
  hv.unpauseDomain(d);
  return { hv, kernel, stores };
}
