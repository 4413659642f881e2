import * as abi from "@hyperlab/abi";

const names = new Map<number, string>();
for (const [key, value] of Object.entries(abi)) {
  if (key.startsWith("__HYPERVISOR_") && typeof value === "number" && !names.has(value)) {
    names.set(value, key.slice("__HYPERVISOR_".length));
  }
}

/** Xen's name for a hypercall number ("mmu_update"), or "#n" for a number Xen does not name. */
export function hypercallName(op: number): string {
  return names.get(op) ?? `#${op}`;
}
