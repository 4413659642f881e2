import {
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_physdev_op,
  BIND_PIRQ__WILL_SHARE,
  DOMID_SELF,
  EVTCHNOP_bind_pirq,
  MAP_PIRQ_TYPE_GSI,
  PHYSDEVOP_map_pirq,
  PHYSDEVOP_setup_gsi,
} from "@hyperlab/abi";
import {
  createHypervisor,
  type Domain,
  type Hypervisor,
  type IrqService,
  schedCredit,
} from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import { createMachine, createPlatform, type Platform } from "@hyperlab/machine";
import { type ApicHooks, type ApicHooksOptions, apicHooks } from "../src/index";

/** A booted Xen-style host with dom0 and `domUs` unprivileged domains, all running. */
export function boot(domUs = 2, options: ApicHooksOptions = {}) {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 7 });
  const platform: Platform = createPlatform(machine);
  const hv = createHypervisor({
    machine,
    plugins: [schedCredit(), evtchn2l(), apicHooks({ platform, ...options })],
  }).boot();
  const mk = (domid: number) => {
    const d = hv.createDomain({ domid, maxVcpus: 1, maxPages: 64 });
    hv.unpauseDomain(d);
    hv.slot("sched").vcpuUp(d.vcpus[0]);
    return d;
  };
  const dom0 = mk(0);
  const us: Domain[] = [];
  for (let i = 1; i <= domUs; i++) us.push(mk(i));
  const irq = hv.slot("irq") as ApicHooks;
  return { hv, machine, platform, irq, evtchn: hv.slot("evtchn"), dom0, us };
}

export function physdev(hv: Hypervisor, d: Domain, cmd: number, args: Record<string, unknown>) {
  const a: Record<string, unknown> = { cmd, ...args };
  const rc = hv.hypercall(d.vcpus[0], __HYPERVISOR_physdev_op, a);
  return { rc, a };
}

export function bindPirq(hv: Hypervisor, d: Domain, pirq: unknown, share = false) {
  const a: Record<string, unknown> = {
    cmd: EVTCHNOP_bind_pirq,
    pirq,
    flags: share ? BIND_PIRQ__WILL_SHARE : 0,
  };
  const rc = hv.hypercall(d.vcpus[0], __HYPERVISOR_event_channel_op, a);
  return { rc, port: a.port as number };
}

/** dom0's xen_register_gsi: map pirq = gsi for itself, then setup_gsi. */
export function dom0RegisterGsi(hv: Hypervisor, dom0: Domain, gsi: number, level: boolean) {
  const m = physdev(hv, dom0, PHYSDEVOP_map_pirq, {
    domid: DOMID_SELF,
    type: MAP_PIRQ_TYPE_GSI,
    index: gsi,
    pirq: gsi,
  });
  if (m.rc !== 0) throw new Error(`map_pirq ${gsi}: ${m.rc}`);
  const s = physdev(hv, dom0, PHYSDEVOP_setup_gsi, {
    gsi,
    triggering: level ? 1 : 0,
    polarity: level ? 1 : 0,
  });
  if (s.rc !== 0) throw new Error(`setup_gsi ${gsi}: ${s.rc}`);
  return m.a.pirq as number;
}

/**
 * The interrupt-routing invariants (testkit-style): every mapped pirq's irq is in its
 * domain's irq_caps; every bound pirq is mapped; an irq with several sharers was bound
 * shareable; no domain appears twice among an irq's sharers; in-flight counts match.
 */
export function checkIrqRouting(irq: IrqService & ApicHooks, doms: Domain[]): string[] {
  const bad: string[] = [];
  for (const d of doms) {
    for (const [pirq, x] of irq.mappings(d)) {
      if (!irq.irqAccessPermitted(d, x))
        bad.push(`d${d.domid} pirq ${pirq} -> irq ${x} without irq_caps`);
      if (irq.irqToPirq(d, x) !== pirq)
        bad.push(`d${d.domid} pirq ${pirq} and irq ${x} not inverse`);
    }
  }
  for (let x = 0; x < irq.nrIrqs; x++) {
    const s = irq.sharersOf(x);
    if (new Set(s).size !== s.length) bad.push(`irq ${x} has a domain twice among ${s}`);
    if (s.length > 1 && !irq.isShareable(x))
      bad.push(`irq ${x} bound ${s.length} times, not shareable`);
    let inFlight = 0;
    for (const domid of s) {
      const d = doms.find((e) => e.domid === domid);
      if (d === undefined) continue;
      const pirq = irq.irqToPirq(d, x);
      if (pirq < 0) bad.push(`d${domid} shares irq ${x} without a pirq`);
      else if (!irq.isBound(d, pirq))
        bad.push(`d${domid} shares irq ${x} but pirq ${pirq} is unbound`);
      else if (irq.pirqStatus(d, pirq).inFlight) inFlight++;
      if (!irq.irqAccessPermitted(d, x)) bad.push(`d${domid} bound irq ${x} without irq_caps`);
    }
    if (inFlight !== irq.inFlightOf(x))
      bad.push(`irq ${x} in flight ${irq.inFlightOf(x)} != ${inFlight}`);
  }
  return bad;
}
