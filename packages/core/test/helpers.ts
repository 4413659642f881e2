import { createMachine } from "@hyperlab/machine";
import { createHypervisor, definePlugin, type Plugin } from "../src/index";

/** A small machine (64 MiB, 2 pCPUs) and a booted hypervisor with the given plugins. */
export function bootWith(plugins: Plugin[] = [], ramBytes = 64 << 20) {
  const machine = createMachine({ ramBytes, cpus: 2, seed: 1 });
  return createHypervisor({ machine, plugins }).boot();
}

export function machine(ramBytes = 64 << 20) {
  return createMachine({ ramBytes, cpus: 2, seed: 1 });
}

/**
 * A test MMU: a virtual address is the machine address of a frame the vCPU's domain owns
 * (a direct map), so a test can name guest memory by machine address. `kind` picks the PV
 * path of VCPUOP_initialise (CR3 is a machine frame holding an L4 type reference).
 */
export function directMmu(kind = "pv"): Plugin {
  return definePlugin({
    name: "test-mmu",
    provides: ["mmu"],
    setup(ctx) {
      const hv = ctx.hv;
      const fault = { errorCode: 0, va: 0 };
      ctx.provide("mmu", {
        kind,
        fault,
        translate(v, va) {
          const mfn = Math.floor(va / 4096);
          if (!hv.frames.validMfn(mfn) || hv.frames.ownerOf(mfn) !== v.domain.domid) {
            fault.va = va;
            return -1;
          }
          return va;
        },
        flushLocal() {},
        flushOne() {},
      });
      // As pv-mmu does: a vCPU's base tables hold references until the domain goes.
      ctx.onDomainDestroy((d) => {
        if (kind !== "pv") return; // other backends hold no references on CR3
        for (const v of d.vcpus) {
          if (v.cr3Mfn >= 0) hv.frames.putPageAndType(v.cr3Mfn);
          if (v.userCr3Mfn >= 0) hv.frames.putPageAndType(v.userCr3Mfn);
          v.cr3Mfn = -1;
          v.userCr3Mfn = -1;
        }
      });
    },
  });
}
