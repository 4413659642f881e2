/*
 * The `evtchn` slot: Xen's event channels (xen/common/event_channel.c) as the rest of the
 * hypervisor sees them: raising VIRQs and PIRQs, sending on a port, and read-only views for
 * tools and checkers. @hyperlab/evtchn provides it with the 2-level or the FIFO ABI.
 *
 * Contract (what every provider keeps): a domain's ports are named only within the limit of
 * the ABI it uses now (which shrinks back when EVTCHNOP_reset returns a FIFO domain to
 * 2-level); every operation that names a port acts only on a port in use, and otherwise
 * answers -EINVAL (or false / EVTCHNSTAT_closed for the views); a store the provider makes on
 * a domain's behalf lands only in that domain's shared_info, vcpu_info, FIFO control blocks
 * or event arrays; a freed port has no pending event; nothing here throws on a guest-chosen
 * value. The irq provider connects physical interrupts through `setPirqHooks` (bind and
 * unbind) and `sendPirq` (delivery); it never touches the ports itself.
 */
import type { Domain, Vcpu } from "../domain";

/** What a port is bound to, as EVTCHNOP_status reports it (for tests and tools). */
export interface PortInfo {
  status: number;
  vcpu: number;
  /** Peer domain (interdomain) or allowed domain (unbound); -1 otherwise. */
  remoteDom: number;
  remotePort: number;
  /** VIRQ or PIRQ number; -1 otherwise. */
  irq: number;
}

/**
 * Hooks the `irq` provider installs so that EVTCHNOP_bind_pirq and closing a PIRQ port reach
 * the physical interrupt layer (Xen's pirq_guest_bind / pirq_guest_unbind).
 */
export interface PirqHooks {
  /** Xen's pirq_guest_bind: 0, or a negative errno that fails EVTCHNOP_bind_pirq. */
  bind(d: Domain, pirq: number, willShare: boolean): number;
  /** Xen's pirq_guest_unbind. */
  unbind(d: Domain, pirq: number): void;
}

/** The event channel ABIs: Xen's 2-level bitmaps in shared_info, or FIFO queues. */
export type EvtchnAbi = "2-level" | "fifo";

/** The `evtchn` slot. */
export interface EvtchnService {
  /** "2-level" or "fifo": the ABI this build offers (FIFO builds start each domain on 2-level). */
  readonly abi: EvtchnAbi;
  /** The ABI a domain uses now. */
  domainAbi(d: Domain): EvtchnAbi;
  /** Xen's send_guest_vcpu_virq (per-vCPU VIRQs) or send_guest_global_virq (global ones). */
  sendVirq(v: Vcpu, virq: number): void;
  /** Xen's send_global_virq: to the domain that handles `virq` (dom0 unless set). */
  sendGlobalVirq(virq: number): void;
  /** Xen's set_global_virq_handler. */
  setGlobalVirqHandler(d: Domain, virq: number): void;
  /** Xen's send_guest_pirq: the physical interrupt behind `pirq` fired. False if unbound. */
  sendPirq(d: Domain, pirq: number): boolean;
  /** Xen's irq_permit_access (XEN_DOMCTL_irq_permission): lets `d` bind `pirq`. */
  permitPirq(d: Domain, pirq: number, allow: boolean): void;
  /** Installs the irq provider's hooks (once, at its setup). */
  setPirqHooks(hooks: PirqHooks): void;
  /** Xen's evtchn_send on behalf of a domain (as the hypercall, without the argument checks). */
  send(d: Domain, port: number): number;
  /** Binding, as EVTCHNOP_status; status EVTCHNSTAT_closed for free or nonexistent ports. */
  portInfo(d: Domain, port: number): PortInfo;
  isPending(d: Domain, port: number): boolean;
  isMasked(d: Domain, port: number): boolean;
  /** Channels the domain's ABI can name now. */
  maxPorts(d: Domain): number;
  /** Ports in use (port 0, reserved, included). */
  activePorts(d: Domain): number;
}
