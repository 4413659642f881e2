/*
 * The counts a study run produces. Every field is an exact count of modelled events (a
 * fact); cycles are derived from them by the cost model (an estimate).
 */

/** Exact event counts of one run. */
export interface StudyCounts {
  /** Workload operations (the unit of "per operation" figures; each workload defines it). */
  operations: number;
  /** User memory accesses replayed through the MMU. */
  accesses: number;
  tlbHits: number;
  tlbMisses: number;
  /** Memory references made by page walks (guest and nested entries read). */
  walkRefs: number;
  /** Page faults delivered to the guest kernel (demand paging, copy on write). */
  pageFaults: number;
  /** System calls the workload made (mmap, munmap, fork, exec, exit). */
  syscalls: number;
  /** Page-table entries the guest kernel wrote (a store, a trapped write, or a request). */
  ptUpdates: number;
  /** Hypercalls (Xen PV). */
  hypercalls: number;
  /** Traps that went through the hypervisor to the guest kernel (Xen PV faults and syscalls). */
  traps: number;
  /** VM exits (nested and shadow paging). */
  vmExits: number;
  /** Full non-global TLB flushes (CR3 loads, flush-all). */
  tlbFlushes: number;
  /** Single-address TLB flushes (INVLPG). */
  invlpg: number;
  /** Switches of page tables between processes. */
  contextSwitches: number;
}

export type CountName = keyof StudyCounts & string;

/** Count names in report order, with a unit and a description. */
export const COUNT_INFO: readonly { name: CountName; unit: string; description: string }[] = [
  { name: "operations", unit: "ops", description: "workload operations" },
  { name: "accesses", unit: "accesses", description: "user memory accesses" },
  { name: "tlbHits", unit: "translations", description: "TLB hits" },
  { name: "tlbMisses", unit: "translations", description: "TLB misses" },
  { name: "walkRefs", unit: "references", description: "memory references made by page walks" },
  { name: "pageFaults", unit: "faults", description: "page faults handled by the guest kernel" },
  { name: "syscalls", unit: "calls", description: "system calls made by the workload" },
  { name: "ptUpdates", unit: "entries", description: "page-table entries written by the kernel" },
  { name: "hypercalls", unit: "calls", description: "hypercalls" },
  { name: "traps", unit: "traps", description: "traps bounced through the hypervisor" },
  { name: "vmExits", unit: "exits", description: "VM exits" },
  { name: "tlbFlushes", unit: "flushes", description: "full TLB flushes" },
  { name: "invlpg", unit: "flushes", description: "single-address TLB flushes" },
  { name: "contextSwitches", unit: "switches", description: "page-table switches" },
];

export const COUNT_NAMES: readonly CountName[] = COUNT_INFO.map((c) => c.name);

export function zeroCounts(): StudyCounts {
  const c = {} as StudyCounts;
  for (const n of COUNT_NAMES) c[n] = 0;
  return c;
}
