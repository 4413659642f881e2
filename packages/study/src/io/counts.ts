/*
 * The I/O workload's counts: exact numbers of modelled events over the requests of one
 * pattern on one platform (facts); the cost model turns them into estimated cycles.
 */

export interface IoCounts {
  /** Requests completed (disk requests, or frames sent and received back). */
  requests: number;
  /** Payload bytes moved by those requests. */
  bytes: number;
  /** Device interrupts the drivers' handlers ran for. */
  interrupts: number;
  /** Event-channel upcalls Xen entered the kernel by. */
  upcalls: number;
  /** PHYSDEVOP_eoi hypercalls. */
  eoiHypercalls: number;
  /** Hypercalls other than PHYSDEVOP_eoi and XENMEM_exchange. */
  otherHypercalls: number;
  /** DMA mappings bounced through the swiotlb pool. */
  bounces: number;
  /** Bytes copied into and out of bounce slots. */
  bytesBounced: number;
  /** XENMEM_exchange hypercalls. */
  exchanges: number;
  /** Loads and stores the kernel made to device memory (registers, PCI config space). */
  mmioAccesses: number;
  /** Of those, the ones that left the guest for a device model (VM exits). */
  mmioExits: number;
  /** Interrupts injected into the guest by a hypervisor. */
  injections: number;
  /** Guest EOIs of level interrupts that exited to the hypervisor (EXIT_REASON_EOI_INDUCED). */
  eoiExits: number;
}

export type IoCountName = keyof IoCounts & string;

/** Count names in report order, with their unit. */
export const IO_COUNT_INFO: readonly { name: IoCountName; unit: string; description: string }[] = [
  { name: "requests", unit: "requests", description: "requests completed" },
  { name: "bytes", unit: "bytes", description: "payload bytes moved" },
  { name: "interrupts", unit: "interrupts", description: "device interrupts handled" },
  { name: "upcalls", unit: "upcalls", description: "event-channel upcalls" },
  { name: "eoiHypercalls", unit: "calls", description: "PHYSDEVOP_eoi hypercalls" },
  { name: "otherHypercalls", unit: "calls", description: "other hypercalls" },
  { name: "bounces", unit: "mappings", description: "swiotlb bounces" },
  { name: "bytesBounced", unit: "bytes", description: "bytes copied through bounce slots" },
  { name: "exchanges", unit: "calls", description: "XENMEM_exchange hypercalls" },
  { name: "mmioAccesses", unit: "accesses", description: "MMIO loads and stores" },
  { name: "mmioExits", unit: "exits", description: "MMIO exits to a device model" },
  { name: "injections", unit: "interrupts", description: "interrupts injected by a hypervisor" },
  { name: "eoiExits", unit: "exits", description: "EOIs that exited to the hypervisor" },
];

export const IO_COUNT_NAMES: readonly IoCountName[] = IO_COUNT_INFO.map((c) => c.name);

export function zeroIoCounts(): IoCounts {
  const c = {} as IoCounts;
  for (const n of IO_COUNT_NAMES) c[n] = 0;
  return c;
}

/** b - a, field by field. */
export function ioCountsDelta(a: IoCounts, b: IoCounts): IoCounts {
  const c = zeroIoCounts();
  for (const n of IO_COUNT_NAMES) c[n] = b[n] - a[n];
  return c;
}
