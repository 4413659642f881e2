/*
 * The `irq` slot (provided by @hyperlab/apic-hooks): Xen's physical
 * interrupt layer as xen/arch/x86/irq.c and physdev.c keep it. Terms as Xen's: an *irq* is
 * Xen's own interrupt number (for a GSI it equals the GSI; MSIs get dynamic ones above
 * nr_irqs_gsi); a *pirq* is a per-domain name for a physical interrupt source, mapped to an
 * irq by PHYSDEVOP_map_pirq; a domain may map or bind an irq only if its irq_caps allow it.
 *
 * Contract (what every provider keeps):
 * - A domain reaches only irqs its irq_caps permit (`irqAccessPermitted`); the toolstack
 *   (`irqPermitAccess`/`irqDenyAccess`, Xen's XEN_DOMCTL_irq_permission) or a map_pirq by a
 *   privileged domain on another's behalf grants them. Denying access to an irq that is mapped
 *   unmaps it first.
 * - pirq <-> irq is one-to-one per domain; every guest-chosen pirq, irq, GSI or index is
 *   checked against the domain's limits (nr_pirqs, nr_irqs_gsi) before it is used, and bad ones
 *   get Xen 4.17's errno (-EINVAL, -EPERM, -EEXIST, -ENOSPC, -EBUSY); nothing throws on them.
 * - Delivery goes one way: when a line fires, the provider calls the `evtchn` slot's
 *   `sendPirq(d, pirq)` for every domain bound to it (Xen's do_IRQ_guest), after marking each
 *   sharer in flight when the ack type needs an EOI. EVTCHNOP_bind_pirq and closing a PIRQ port
 *   come back through the PirqHooks the provider installs with `evtchn.setPirqHooks` at setup
 *   (Xen's pirq_guest_bind / pirq_guest_unbind). The provider never reads or writes ports.
 * - A level-triggered line stays masked until every sharer has EOId (`eoi`) or Xen's 1 ms
 *   timeout forces the EOI; EOI of a pirq a domain has not bound or does not own is -EINVAL and
 *   changes nothing.
 * - When a domain dies every pirq it mapped is unbound and unmapped, and its irq_caps dropped.
 */
import type { Domain } from "../domain";

/** PHYSDEVOP_map_pirq's source kinds (MAP_PIRQ_TYPE_* from @hyperlab/abi). */
export type PirqSource =
  | { type: "gsi"; gsi: number }
  | { type: "msi"; seg: number; bus: number; devfn: number; entryNr: number; tableBase: number };

/** How a pirq is, as PHYSDEVOP_irq_status_query and tools see it. */
export interface PirqStatus {
  /** The Xen irq the pirq maps to, or -1 when unmapped. */
  irq: number;
  /** XENIRQSTAT_* flags (needs_eoi, shared). */
  flags: number;
  /** Domains bound to the irq (the sharers), this one included. */
  sharers: number;
  /** Whether this domain's share is in flight (delivered, not yet EOId). */
  inFlight: boolean;
}

/** The `irq` slot: routing machine interrupt lines to domains' pirqs. */
export interface IrqService {
  /** Xen's nr_irqs_gsi: GSIs the IO-APICs provide (at least 16). */
  readonly nrIrqsGsi: number;
  /** Xen's d->nr_pirqs for a domain. */
  nrPirqs(d: Domain): number;
  /**
   * PHYSDEVOP_map_pirq on behalf of `caller` for `target`: maps `source` to `pirq` (or, when
   * `pirq` < 0, a free one as get_free_pirq picks it) and grants `target` access to the irq.
   * The pirq, or a negative errno.
   */
  mapPirq(caller: Domain, target: Domain, source: PirqSource, pirq: number): number;
  /** PHYSDEVOP_unmap_pirq: 0 or a negative errno; a pirq still bound is force-unbound. */
  unmapPirq(caller: Domain, target: Domain, pirq: number): number;
  /** PHYSDEVOP_setup_gsi (privileged): trigger 0 edge / 1 level, polarity 0 high / 1 low. */
  setupGsi(caller: Domain, gsi: number, trigger: number, polarity: number): number;
  /** PHYSDEVOP_eoi: 0 or a negative errno. */
  eoi(d: Domain, pirq: number): number;
  /** PHYSDEVOP_irq_status_query's flags (>= 0), or a negative errno. */
  irqStatusQuery(d: Domain, pirq: number): number;
  /** A view of one pirq for tools and checkers; irq -1 when unmapped or out of range. */
  pirqStatus(d: Domain, pirq: number): PirqStatus;
  /** The pirq `d` maps `irq` to, or -1 (Xen's domain_irq_to_pirq). */
  irqToPirq(d: Domain, irq: number): number;
  /** Xen's irq_permit_access (XEN_DOMCTL_irq_permission, allow): throws on a bad irq number. */
  irqPermitAccess(d: Domain, irq: number): void;
  /** Xen's irq_deny_access (XEN_DOMCTL_irq_permission, deny). */
  irqDenyAccess(d: Domain, irq: number): void;
  /** Xen's irq_access_permitted: whether `d`'s irq_caps hold `irq`. */
  irqAccessPermitted(d: Domain, irq: number): boolean;
}
