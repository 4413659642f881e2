/*
 * The I/O cost model: exact I/O counts in, estimated cycles out. Every default names its
 * section of docs/cost-model.md ("The I/O workload"), which gives the published figure it
 * rests on or says it is our assumption; a study config overrides any of them (io.costs).
 *
 * Invariant: cycles = sum over priced counts of count * cycles per event; nothing else enters
 * (requests and bytes are the units, not events, and are not priced).
 */
import type { IoCountName, IoCounts } from "./counts";

export type IoCostName = Exclude<IoCountName, "requests" | "bytes">;
export type IoCostTable = Record<IoCostName, number>;

export interface IoCostInfo {
  name: IoCostName;
  cycles: number;
  source: string;
  assumption: boolean;
}

export const IO_COST_INFO: readonly IoCostInfo[] = [
  {
    name: "interrupts",
    cycles: 1500,
    source:
      "bare-metal interrupt entry, handler dispatch and EOI; Gordon et al., ELI, ASPLOS 2012 (cost-model.md#io-interrupts)",
    assumption: true,
  },
  {
    name: "upcalls",
    cycles: 2000,
    source:
      "Xen event upcall: bounce frame into the guest's callback and HYPERVISOR_iret back (cost-model.md#io-upcalls)",
    assumption: true,
  },
  {
    name: "eoiHypercalls",
    cycles: 600,
    source:
      "one entry into Xen by hypercall, as the MMU study prices it (cost-model.md#hypercalls, #io-hypercalls)",
    assumption: true,
  },
  {
    name: "otherHypercalls",
    cycles: 600,
    source:
      "one entry into Xen by hypercall, as the MMU study prices it (cost-model.md#hypercalls, #io-hypercalls)",
    assumption: true,
  },
  {
    name: "bounces",
    cycles: 200,
    source: "finding and releasing a swiotlb slot, beyond the copy (cost-model.md#io-bounces)",
    assumption: true,
  },
  {
    name: "bytesBounced",
    cycles: 0.25,
    source: "memcpy of cache-cold data at about 4 bytes per cycle (cost-model.md#io-bounces)",
    assumption: true,
  },
  {
    name: "exchanges",
    cycles: 50000,
    source:
      "XENMEM_exchange of a 64-page extent: frame allocation, M2P and P2M updates, TLB flush (cost-model.md#io-exchanges)",
    assumption: true,
  },
  {
    name: "mmioAccesses",
    cycles: 1000,
    source:
      "an uncached device register access over PCIe (reads ~0.5-1 us round trip, writes posted); Neugebauer et al. SIGCOMM 2018 (cost-model.md#io-mmio)",
    assumption: false,
  },
  {
    name: "mmioExits",
    cycles: 12000,
    source:
      "VM exit, decode and return through the host's device model (KVM_EXIT_MMIO to user space); kvm-unit-tests vmexit (cost-model.md#io-mmio-exits)",
    assumption: true,
  },
  {
    name: "injections",
    cycles: 2000,
    source:
      "KVM event injection at VM entry and the guest's virtual EOI; Gordon et al., ELI, ASPLOS 2012 (cost-model.md#io-injections)",
    assumption: true,
  },
  {
    name: "eoiExits",
    cycles: 1500,
    source:
      "an in-kernel VM exit and entry (EOI_INDUCED, handled in KVM); kvm-unit-tests vmexit (cost-model.md#io-eoi-exits)",
    assumption: true,
  },
];

export const IO_COST_NAMES: readonly IoCostName[] = IO_COST_INFO.map((c) => c.name);

export const DEFAULT_IO_COSTS: Readonly<IoCostTable> = Object.freeze(
  Object.fromEntries(IO_COST_INFO.map((c) => [c.name, c.cycles])) as IoCostTable,
);

/** The defaults with `overrides` applied (values are checked by the config schema). */
export function resolveIoCosts(overrides: Partial<IoCostTable> = {}): IoCostTable {
  return { ...DEFAULT_IO_COSTS, ...overrides };
}

/** Estimated cycles of `counts` under `costs`. */
export function estimateIoCycles(counts: IoCounts, costs: IoCostTable): number {
  let sum = 0;
  for (const n of IO_COST_NAMES) sum += counts[n] * costs[n];
  return sum;
}
