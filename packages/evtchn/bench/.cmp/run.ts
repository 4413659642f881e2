import { __HYPERVISOR_event_channel_op, EVTCHNOP_send } from "@hyperlab/abi";
import { createHypervisor, schedCredit } from "@hyperlab/core";
import { XenEvtchnGuest } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import * as NEW from "../../src/index";
import * as OLD from "./old/index";

const which = process.argv[2] === "old" ? OLD : NEW;
function cpu(count: number, fn: () => void): number {
  fn();
  const t0 = process.cpuUsage();
  fn();
  const t = process.cpuUsage(t0);
  return count / (t.user + t.system); // M events per CPU-second
}
function pair(abi: "2-level" | "fifo", channels: number) {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [schedCredit(), abi === "fifo" ? which.evtchnFifo() : which.evtchn2l()] }).boot();
  const mk = (domid?: number) => {
    const d = hv.createDomain({ domid, maxVcpus: 1, maxPages: 64 });
    hv.unpauseDomain(d);
    const g = new XenEvtchnGuest({ hv, vcpus: d.vcpus, sharedInfoMfn: d.sharedInfoMfn, abi, allocFrame: () => hv.allocDomainPages(d) });
    g.init();
    return { d, g };
  };
  const a = mk(0); const b = mk();
  const sends: { cmd: number; port: number }[] = [];
  for (let i = 0; i < channels; i++) {
    const irqB = b.g.bindListeningPortToIrqHandler(0, () => {});
    const irqA = a.g.bindInterdomainEvtchnToIrqHandler(b.d.domid, b.g.evtchnFromIrq(irqB), () => {});
    sends.push({ cmd: EVTCHNOP_send, port: a.g.evtchnFromIrq(irqA) });
  }
  a.g.xenEvtchnDoUpcall(0);
  return { hv, va: a.d.vcpus[0], g: b.g, sends };
}
const N = 1_000_000;
const out: string[] = [];
for (const abi of ["2-level", "fifo"] as const) {
  { const { hv, va, g, sends } = pair(abi, 1); const s = sends[0];
    out.push(cpu(N, () => { for (let i = 0; i < N; i++) { hv.hypercall(va, __HYPERVISOR_event_channel_op, s); g.xenEvtchnDoUpcall(0); } }).toFixed(2)); }
  { const B = 64; const { hv, va, g, sends } = pair(abi, B); const rounds = N / B;
    out.push(cpu(N, () => { for (let r = 0; r < rounds; r++) { for (let i = 0; i < B; i++) hv.hypercall(va, __HYPERVISOR_event_channel_op, sends[i]); g.xenEvtchnDoUpcall(0); } }).toFixed(2)); }
}
console.log(process.argv[2], out.join(" "));
