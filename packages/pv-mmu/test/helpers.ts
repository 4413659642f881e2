import { createHypervisor, type Domain, type Hypervisor } from "@hyperlab/core";
import { createMachine } from "@hyperlab/machine";
import { buildPvDomain, type PvBuildResult, type PvMmu, pvMmu } from "../src/index";

export interface World {
  hv: Hypervisor;
  pv: PvMmu;
}

/** A booted hypervisor with the PV MMU on a small machine. */
export function boot(ramBytes = 64 << 20): World {
  const machine = createMachine({ ramBytes, cpus: 2, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  return { hv, pv: hv.slot("pv-mmu") };
}

export interface Guest {
  d: Domain;
  b: PvBuildResult;
}

/** Creates and builds a 64-bit PV guest. */
export function guest(
  w: World,
  opts: { domid?: number; nrPages?: number; maxPages?: number; vcpus?: number } = {},
): Guest {
  const nrPages = opts.nrPages ?? 2048;
  const d = w.hv.createDomain({
    domid: opts.domid,
    maxVcpus: opts.vcpus ?? 2,
    maxPages: opts.maxPages ?? nrPages + 256,
  });
  const b = buildPvDomain(w.hv, w.pv, { domain: d, nrPages });
  return { d, b };
}
