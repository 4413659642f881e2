import {
  createHypervisor,
  type Domain,
  type Hypervisor,
  type Plugin,
  schedCredit,
} from "@hyperlab/core";
import { XenEvtchnGuest } from "@hyperlab/guest";
import { createMachine, type Machine } from "@hyperlab/machine";
import { evtchn2l, evtchnFifo, vcpuTimers } from "../src/index";

export type Abi = "2-level" | "fifo";

/** A booted hypervisor with the credit scheduler, the chosen event channel ABI and vCPU timers. */
export function boot(
  abi: Abi = "2-level",
  extra: Plugin[] = [],
  options: { maxEvtchnPort?: number } = {},
  machine: Machine = createMachine({ ramBytes: 64 << 20, cpus: 2, seed: 1 }),
  sched: Plugin = schedCredit(),
) {
  const ev = abi === "fifo" ? evtchnFifo(options) : evtchn2l(options);
  const hv = createHypervisor({
    machine,
    plugins: [sched, ev, vcpuTimers(), ...extra],
  }).boot();
  return { hv, machine, evtchn: hv.slot("evtchn"), sched: hv.slot("sched") };
}

/** A running domain with its guest-side event channels initialised. */
export function guestDomain(
  hv: Hypervisor,
  abi: Abi,
  opts: { domid?: number; vcpus?: number; addressSize?: 64 | 32 } = {},
): { d: Domain; g: XenEvtchnGuest } {
  const d = hv.createDomain({
    domid: opts.domid,
    maxVcpus: opts.vcpus ?? 2,
    maxPages: 512,
    addressSize: opts.addressSize,
  });
  hv.unpauseDomain(d);
  for (const v of d.vcpus) hv.slot("sched").vcpuUp(v);
  const g = new XenEvtchnGuest({
    hv,
    vcpus: d.vcpus,
    sharedInfoMfn: d.sharedInfoMfn,
    addressSize: opts.addressSize,
    abi,
    allocFrame: () => hv.allocDomainPages(d),
  });
  const rc = g.init();
  if (rc !== 0) throw new Error(`guest init failed: ${rc}`);
  return { d, g };
}
