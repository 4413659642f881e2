/*
 * Interrupt delivery end to end, device raise to the guest driver's handler, per second, on
 * bare metal and in a Xen PV dom0 (issue 12's "interrupt delivery" figure). One round: the
 * disk driver submits a flush request (a descriptor in its coherent ring, TAIL, the doorbell:
 * MMIO through the kernel's ioremap mapping), the controller completes it and raises its
 * interrupt (INTx: its GSI through the IO-APIC; MSI: a message to the LAPIC); natively the
 * handler runs at once from the line or the vector, under Xen the line or vector becomes a
 * pirq event that dom0's upcall turns back into the irq; the handler reads INT_STATUS, acks,
 * reaps the descriptor and completes the request; the flow EOIs (Xen: PHYSDEVOP_eoi for a
 * level line). Times depend on the host; every round is checked to have completed.
 */
import { apicHooks } from "@hyperlab/apic-hooks";
import { createHypervisor, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import {
  bootNativeKernel,
  bootXenPvKernel,
  type GuestKernel,
  hldiskProbe,
  ioremapOps,
  type PciIrqMode,
  pciScanBus,
  xenApic,
} from "@hyperlab/guest";
import { iomap } from "@hyperlab/iomap";
import { createMachine, createPlatform, DiskController, MemoryDiskImage } from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { swiotlbDma } from "../src/index";

function host(build: "native" | "xen") {
  const machine = createMachine({ ramBytes: 128 << 20, cpus: 1, seed: 3 });
  const platform = createPlatform(machine);
  new DiskController(platform.pci, { image: new MemoryDiskImage(64) });
  platform.pci.assignResources();
  let k: GuestKernel;
  if (build === "native") {
    const hv = createHypervisor({ machine, plugins: [nativeMmu()] }).boot();
    const d = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 4096 + 16 });
    k = bootNativeKernel(hv, d, { nrPages: 4096, apics: platform.apics });
  } else {
    const hv = createHypervisor({
      machine,
      plugins: [pvMmu(), evtchn2l(), schedCredit(), apicHooks({ platform }), iomap()],
    }).boot();
    const d = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 8192 + 16 });
    const b = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 8192 });
    k = bootXenPvKernel(hv, d, {
      startInfoVa: b.rsi,
      plugins: [swiotlbDma(), xenApic(), ioremapOps()],
    });
  }
  const devs = pciScanBus(k, { ecamBase: platform.pci.ecamBase });
  if (typeof devs === "number") throw new Error(`scan ${devs}`);
  return { k, dev: devs[0] };
}

function measure(build: "native" | "xen", mode: PciIrqMode): void {
  const { k, dev } = host(build);
  const disk = hldiskProbe(k, dev, { irq: mode });
  if (typeof disk === "number") throw new Error(`probe ${disk}`);
  let completed = 0;
  const req = { op: "flush" as const, sector: 0, count: 0, pfn: 0, done: () => completed++ };
  const events = k.events;
  const round =
    events === null
      ? () => disk.submit(req)
      : () => {
          disk.submit(req);
          events.xenEvtchnDoUpcall(0);
        };
  for (let i = 0; i < 30_000; i++) round(); // warm the JIT up
  const c0 = completed;
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < 500) {
    for (let i = 0; i < 100; i++) round();
    n += 100;
    t = performance.now();
  }
  if (completed - c0 !== n)
    throw new Error(`${build} ${mode}: ${completed - c0} of ${n} completed`);
  const label = `${build === "xen" ? "Xen dom0" : "native"}, disk ${mode === "msi" ? "MSI" : "INTx (level GSI)"}`;
  console.log(
    `interrupt delivery, device raise to guest handler: ${label.padEnd(26)} ${((n * 1000) / (t - t0) / 1e3).toFixed(1)} k/s`,
  );
}

for (const build of ["native", "xen"] as const)
  for (const mode of ["intx", "msi"] as const) measure(build, mode);
