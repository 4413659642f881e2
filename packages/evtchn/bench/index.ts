// Event rates: a guest sends on an interdomain channel (EVTCHNOP_send through the hypercall
// dispatcher), Xen sets the bits in the receiver's shared_info or FIFO queue, and the
// receiver's upcall scans, acks and runs the bound irq handler. One event = all three.
import { __HYPERVISOR_event_channel_op, EVTCHNOP_send } from "@hyperlab/abi";
import { createHypervisor, schedCredit } from "@hyperlab/core";
import { XenEvtchnGuest } from "@hyperlab/guest";
import { createMachine } from "@hyperlab/machine";
import { evtchn2l, evtchnFifo } from "../src/index";

function rate(label: string, unit: string, count: number, fn: () => void): void {
  fn(); // warm up
  const t0 = process.hrtime.bigint();
  fn();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`${label}: ${((count / ns) * 1e3).toFixed(1)} M${unit}/s`);
}

function pair(abi: "2-level" | "fifo", channels: number) {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({
    machine,
    plugins: [schedCredit(), abi === "fifo" ? evtchnFifo() : evtchn2l()],
  }).boot();
  const mk = (domid?: number) => {
    const d = hv.createDomain({ domid, maxVcpus: 1, maxPages: 64 });
    hv.unpauseDomain(d);
    const g = new XenEvtchnGuest({
      hv,
      vcpus: d.vcpus,
      sharedInfoMfn: d.sharedInfoMfn,
      abi,
      allocFrame: () => hv.allocDomainPages(d),
    });
    g.init();
    return { d, g };
  };
  const a = mk(0);
  const b = mk();
  let handled = 0;
  const sends: { cmd: number; port: number }[] = [];
  for (let i = 0; i < channels; i++) {
    const irqB = b.g.bindListeningPortToIrqHandler(0, () => {
      handled++;
    });
    const irqA = a.g.bindInterdomainEvtchnToIrqHandler(
      b.d.domid,
      b.g.evtchnFromIrq(irqB),
      () => {},
    );
    sends.push({ cmd: EVTCHNOP_send, port: a.g.evtchnFromIrq(irqA) });
  }
  a.g.xenEvtchnDoUpcall(0);
  return { hv, va: a.d.vcpus[0], g: b.g, sends, handled: () => handled };
}

const N = 2_000_000;
for (const abi of ["2-level", "fifo"] as const) {
  {
    const { hv, va, g, sends, handled } = pair(abi, 1);
    const s = sends[0];
    rate(`evtchn ${abi} send+deliver+handle, one at a time`, "events", N, () => {
      for (let i = 0; i < N; i++) {
        hv.hypercall(va, __HYPERVISOR_event_channel_op, s);
        g.xenEvtchnDoUpcall(0);
      }
    });
    if (handled() !== 2 * N) throw new Error(`lost events: ${handled()} of ${2 * N}`);
  }
  {
    const B = 64;
    const { hv, va, g, sends, handled } = pair(abi, B);
    const rounds = N / B;
    rate(`evtchn ${abi} send+deliver+handle, 64 channels per upcall`, "events", N, () => {
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < B; i++) hv.hypercall(va, __HYPERVISOR_event_channel_op, sends[i]);
        g.xenEvtchnDoUpcall(0);
      }
    });
    if (handled() !== 2 * N) throw new Error(`lost events: ${handled()} of ${2 * N}`);
  }
}
