import { createMachine } from "@hyperlab/machine";
import { createHypervisor, type Plugin } from "../src/index";

/** A small machine (64 MiB, 2 pCPUs) and a booted hypervisor with the given plugins. */
export function bootWith(plugins: Plugin[] = [], ramBytes = 64 << 20) {
  const machine = createMachine({ ramBytes, cpus: 2, seed: 1 });
  return createHypervisor({ machine, plugins }).boot();
}

export function machine(ramBytes = 64 << 20) {
  return createMachine({ ramBytes, cpus: 2, seed: 1 });
}
