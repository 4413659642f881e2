/*
 * The counts a study run produces. Every field is an exact count of modelled events (a
 * fact); cycles are derived from them by the cost model (an estimate).
 */

/** Exact event counts of one run. */
export interface StudyCounts {
  /** Workload operations (the unit of "per operation" figures; each workload defines it). */
  operations: number;
  /** User memory accesses replayed through the MMU (each at least an L1 data-cache access). */
  accesses: number;
  /** User accesses that missed L1d and hit L2 (the data-cache model, cache.ts). */
  l2Hits: number;
  /** User accesses that missed L2 and hit the last-level cache. */
  llcHits: number;
  /** User accesses that missed every cache level and went to DRAM. */
  dramAccesses: number;
  tlbHits: number;
  tlbMisses: number;
  /** Memory references made by page walks (guest and nested entries read). */
  walkRefs: number;
  /** Page-walk references that missed L1d and hit L2 (the data-cache model, cache.ts). */
  walkL2Hits: number;
  /** Page-walk references that missed L2 and hit the last-level cache. */
  walkLlcHits: number;
  /** Page-walk references that missed every cache level and went to DRAM. */
  walkDramAccesses: number;
  /** Non-memory instructions the workload executes besides its accesses (its computation). */
  instructions: number;
  /** Page faults delivered to the guest kernel (demand paging, copy on write). */
  pageFaults: number;
  /** 4 KiB pages the guest kernel zeroed: demand-zero pages (512 per huge page), new page tables. */
  pagesZeroed: number;
  /** 4 KiB pages the guest kernel copied (copy on write). */
  pagesCopied: number;
  /** System calls the workload made (mmap, munmap, fork, exec, exit). */
  syscalls: number;
  /** fork system calls (the kernel's fixed work beyond page tables and page copies). */
  forks: number;
  /** exec system calls (the kernel's fixed work beyond page tables). */
  execs: number;
  /** Process exits (the kernel's fixed work beyond page tables). */
  exits: number;
  /** Page-table entries the guest kernel wrote (a store, a trapped write, or a request). */
  ptUpdates: number;
  /** Entries into Xen by hypercall (Xen PV): a multicall is one, whatever it carries. */
  hypercalls: number;
  /** Calls made from inside multicalls (each dispatched and its arguments copied by Xen). */
  multicallEntries: number;
  /** mmu_update requests Xen validated (one per page-table entry sent, batched or not). */
  mmuUpdateRequests: number;
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
  { name: "l2Hits", unit: "accesses", description: "user accesses served by L2" },
  { name: "llcHits", unit: "accesses", description: "user accesses served by the LLC" },
  { name: "dramAccesses", unit: "accesses", description: "user accesses served by DRAM" },
  { name: "tlbHits", unit: "translations", description: "TLB hits" },
  { name: "tlbMisses", unit: "translations", description: "TLB misses" },
  { name: "walkRefs", unit: "references", description: "memory references made by page walks" },
  { name: "walkL2Hits", unit: "references", description: "walk references served by L2" },
  { name: "walkLlcHits", unit: "references", description: "walk references served by the LLC" },
  { name: "walkDramAccesses", unit: "references", description: "walk references served by DRAM" },
  { name: "instructions", unit: "instructions", description: "non-memory instructions" },
  { name: "pageFaults", unit: "faults", description: "page faults handled by the guest kernel" },
  { name: "pagesZeroed", unit: "pages", description: "4 KiB pages zeroed by the guest kernel" },
  { name: "pagesCopied", unit: "pages", description: "4 KiB pages copied by the guest kernel" },
  { name: "syscalls", unit: "calls", description: "system calls made by the workload" },
  { name: "forks", unit: "calls", description: "fork system calls" },
  { name: "execs", unit: "calls", description: "exec system calls" },
  { name: "exits", unit: "calls", description: "process exits" },
  { name: "ptUpdates", unit: "entries", description: "page-table entries written by the kernel" },
  {
    name: "hypercalls",
    unit: "entries",
    description: "entries into Xen by hypercall (a multicall is one)",
  },
  { name: "multicallEntries", unit: "calls", description: "calls made inside multicalls" },
  {
    name: "mmuUpdateRequests",
    unit: "requests",
    description: "mmu_update requests validated by Xen",
  },
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
