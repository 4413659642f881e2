/*
 * Cycle costs of the split-driver events, each with its source in docs/cost-model.md
 * ("Split-driver I/O"). Counts are exact; cycles are an estimate: counts × these figures.
 */

export interface SplitIoCostTable {
  /** A PV hypercall into Xen and back (the study's `hypercalls` figure). */
  hypercall: number;
  /** One GNTTABOP_map_grant_ref or unmap_grant_ref element (unmap includes its TLB flush). */
  grantMapOp: number;
  /** One GNTTABOP_copy element, before its bytes. */
  grantCopyOp: number;
  /** Cycles per byte that a copy (grant copy or CPU memcpy) moves. */
  copyByte: number;
  /** Delivering one event: the receiver's upcall, its handler's dispatch, and return. */
  eventDelivery: number;
  /** A VM exit and entry with the host's handling (the study's `vmExits` figure). */
  vmExit: number;
}

export const SPLIT_IO_COSTS: Readonly<SplitIoCostTable> = {
  hypercall: 1000,
  grantMapOp: 2500,
  grantCopyOp: 600,
  copyByte: 0.25,
  eventDelivery: 2000,
  vmExit: 1500,
};

/** What a platform's counts mean for pricing: grant operations by kind, events delivered. */
export interface SplitIoGrantSplit {
  grantMapOps: number;
  grantCopies: number;
  grantCopyBytes: number;
  /**
   * Events delivered to a kernel (upcalls on Xen: one per notification; injected interrupts
   * on the KVM-style build, whose kicks are VM exits and are priced as such). Default: the
   * notifications.
   */
  deliveries?: number;
}

/** Estimated cycles of one request from its counts. */
export function splitIoCycles(
  c: SplitIoCostTable,
  per: {
    hypercalls: number;
    notifications: number;
    vmExits: number;
    cpuCopyBytes: number;
  },
  g: SplitIoGrantSplit,
): number {
  return (
    per.hypercalls * c.hypercall +
    g.grantMapOps * c.grantMapOp +
    g.grantCopies * c.grantCopyOp +
    (g.grantCopyBytes + per.cpuCopyBytes) * c.copyByte +
    (g.deliveries ?? per.notifications) * c.eventDelivery +
    per.vmExits * c.vmExit
  );
}
