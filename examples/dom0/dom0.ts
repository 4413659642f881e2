// The program behind main.ts, returning its trace so that test/trace.test.ts can check it.
import { apicHooks } from "@hyperlab/apic-hooks";
import { createHypervisor, type Domain, type Hypervisor, schedCredit } from "@hyperlab/core";
import { evtchn2l } from "@hyperlab/evtchn";
import {
  bootNativeKernel,
  bootXenPvKernel,
  E_IOMAP,
  type GuestKernel,
  hldiskProbe,
  hlnicProbe,
  ioremapOps,
  type PciDev,
  pciScanBus,
  readl,
  xenApic,
} from "@hyperlab/guest";
import { iomap } from "@hyperlab/iomap";
import {
  createMachine,
  createPlatform,
  DISK_REG_RING_BASE_LO,
  DISK_SECTOR_SIZE,
  DISK_ST_OK,
  DiskController,
  LoopbackPort,
  MemoryDiskImage,
  Nic,
  pciName,
} from "@hyperlab/machine";
import { nativeMmu } from "@hyperlab/native-mmu";
import { buildPvDomain, pvMmu } from "@hyperlab/pv-mmu";
import { swiotlbDma, swiotlbOf } from "@hyperlab/swiotlb-dma";

const MiB = 2 ** 20;
const hex = (n: number) => `0x${n.toString(16)}`;

/** The host: one machine with the two devices, firmware has placed them. */
function machineWithDevices() {
  const machine = createMachine({ ramBytes: 128 * MiB, cpus: 1, seed: 2009 });
  const platform = createPlatform(machine);
  const image = new MemoryDiskImage(64);
  const text = new TextEncoder().encode("sector 7: hello from the disk, by DMA. ");
  for (let i = 0; i < 2 * DISK_SECTOR_SIZE; i++)
    image.bytes[7 * DISK_SECTOR_SIZE + i] = text[i % text.length];
  const disk = new DiskController(platform.pci, { image });
  const nic = new Nic(platform.pci);
  nic.attach(new LoopbackPort(nic));
  platform.pci.assignResources();
  return { machine, platform, image, disk, nic };
}

interface Booted {
  hv: Hypervisor;
  d: Domain;
  k: GuestKernel;
}

function bootXen(m: ReturnType<typeof machineWithDevices>): Booted {
  const hv = createHypervisor({
    machine: m.machine,
    plugins: [pvMmu(), evtchn2l(), schedCredit(), apicHooks({ platform: m.platform }), iomap()],
  }).boot();
  const d = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 8192 + 16 });
  const built = buildPvDomain(hv, hv.slot("pv-mmu"), { domain: d, nrPages: 8192 });
  const k = bootXenPvKernel(hv, d, {
    startInfoVa: built.rsi,
    plugins: [swiotlbDma(), xenApic(), ioremapOps({ strategy: "iomap-bit" })],
  });
  return { hv, d, k };
}

function bootNative(m: ReturnType<typeof machineWithDevices>): Booted {
  const hv = createHypervisor({ machine: m.machine, plugins: [nativeMmu()] }).boot();
  const d = hv.createDomain({ domid: 0, maxVcpus: 1, maxPages: 8192 + 16 });
  const k = bootNativeKernel(hv, d, { nrPages: 8192, apics: m.platform.apics });
  return { hv, d, k };
}

/** Two adjacent free pages; under Xen, ones whose machine frames are not adjacent. */
function bufferPages(k: GuestKernel): number {
  const pages: number[] = [];
  for (let i = 0; i < 64; i++) pages.push(k.allocPage());
  pages.sort((a, b) => a - b);
  for (let i = 0; i + 1 < pages.length; i++) {
    const p = pages[i];
    if (pages[i + 1] !== p + 1) continue;
    if (k.xen === null || k.frameOf(p + 1) !== k.frameOf(p) + 1) return p;
  }
  throw new Error("no two adjacent pages to straddle");
}

/** The entry mapping kernel address `va`. */
function entryOf(k: GuestKernel, va: number): number {
  const pte = k.ptePage(k.initMm, va, false);
  return k.readEntry(pte, Math.floor(va / 4096) % 512);
}

/** Runs the dom0 program on one build and returns its trace, one line per step. */
export function runDom0Demo(build: "xen" | "native"): string[] {
  const out: string[] = [];
  const t = (s: string) => out.push(s);
  const m = machineWithDevices();
  const { hv, d, k } = build === "xen" ? bootXen(m) : bootNative(m);
  t(
    `boot: ${build === "xen" ? "Xen-style host, dom0 a PV kernel" : "bare-metal kernel"}; ` +
      `plugins ${hv
        .describe()
        .plugins.map((p) => p.name)
        .join(", ")}`,
  );

  // 1. The PCI bus, through the kernel's own ECAM mapping.
  const devs = pciScanBus(k, { ecamBase: m.platform.pci.ecamBase });
  if (typeof devs === "number") throw new Error(`pci scan: ${devs}`);
  for (const dev of devs) {
    t(
      `pci: ${pciName((dev.bus << 8) | dev.devfn)} ${hex(dev.vendorId)}:${hex(dev.deviceId)} ` +
        `class ${hex(dev.classCode)} INTx GSI ${dev.irqLine}`,
    );
  }
  const diskDev = devs.find((x) => x.deviceId === 0x0d15) as PciDev;

  // 2. The disk driver probes: BAR0 through ioremap, its ring by dma_alloc_coherent, its irq.
  const disk = hldiskProbe(k, diskDev, { irq: "intx" });
  if (typeof disk === "number") throw new Error(`disk probe: ${disk}`);
  const bar = m.disk.pci.barAddress(0);
  const e = entryOf(k, disk.regs);
  const frame = Math.floor(e / 4096) % 2 ** 40;
  t(
    `iomap: BAR0 ${hex(bar)} mapped at ${hex(disk.regs)}; pte frame ${hex(frame)}` +
      `${frame === bar / 4096 ? " = the BAR's frame, untranslated" : " (translated!)"}` +
      `${(e & E_IOMAP) !== 0 ? ", _PAGE_IOMAP set" : ""}; magic ${hex(readl(k, disk.regs))}`,
  );
  const irq = disk.irq.irq;
  if (build === "xen") {
    const pirq = (k.ops.apic as unknown as { pirqOf(i: number): number }).pirqOf(irq);
    t(
      `irq: GSI ${m.disk.pci.gsi} -> Linux irq ${irq} (PHYSDEVOP_map_pirq: pirq ${pirq}; ` +
        "setup_gsi level, active low; EVTCHNOP_bind_pirq)",
    );
  } else {
    t(
      `irq: GSI ${m.disk.pci.gsi} -> Linux irq ${irq} (the kernel programs the IO-APIC pin itself)`,
    );
  }

  // 3. A read of two sectors into a buffer that straddles two pages.
  const pfn = bufferPages(k);
  const offset = 4096 - DISK_SECTOR_SIZE;
  const frames = `${hex(k.frameOf(pfn))} and ${hex(k.frameOf(pfn + 1))}`;
  const bounces = build === "xen" ? swiotlbOf(k).counts.bounces : 0;
  let status = -1;
  let handledIn = "";
  const rc = disk.submit({
    op: "read",
    sector: 7,
    count: 2,
    pfn,
    offset,
    done: (s) => {
      status = s;
      handledIn = `irq ${irq} handler`;
    },
  });
  if (rc !== 0) throw new Error(`submit: ${rc}`);
  const ringBus = readl(k, disk.regs + DISK_REG_RING_BASE_LO);
  const busAddr = k.ram.read32(ringBus + 16) + k.ram.read32(ringBus + 20) * 2 ** 32;
  t(
    `dma: buffer pfn ${hex(pfn)}+${hex(offset)}, 1024 bytes over frames ${frames}: ` +
      (build === "xen"
        ? `${swiotlbOf(k).counts.bounces > bounces ? "bounced through swiotlb-xen" : "direct"}, device gets machine address ${hex(busAddr)}`
        : `direct, device gets physical address ${hex(busAddr)}`),
  );
  // What the device did: its counters, and the line it raised (held in flight under Xen,
  // already handled natively).
  const raised =
    build === "xen" ? hv.machine.irqs.inService(m.disk.pci.gsi) : disk.counts.interrupts > 0;
  t(
    `device: disk read ${m.disk.stats.sectorsRead} sectors by DMA to ${hex(busAddr)}` +
      `${raised ? ` and raised GSI ${m.disk.pci.gsi}` : ", no interrupt"}`,
  );

  // 4. The interrupt: natively it already ran inside the doorbell write; under Xen it waits as
  //    an event until dom0's upcall.
  if (build === "xen") {
    const evtchn = hv.slot("evtchn");
    const pirq = (k.ops.apic as unknown as { pirqOf(i: number): number }).pirqOf(irq);
    let port = -1;
    for (let p = 1; p < 64; p++) if (evtchn.portInfo(d, p).irq === pirq) port = p;
    t(
      `xen: GSI ${m.disk.pci.gsi} -> pirq ${pirq} -> event channel port ${port}, pending ${evtchn.isPending(d, port)}; ` +
        `line in flight until dom0's EOI: ${hv.slot("irq").pirqStatus(d, pirq).inFlight}`,
    );
    const handled = k.events?.xenEvtchnDoUpcall(0) ?? 0;
    t(`dom0: upcall handled ${handled} event: port ${port} -> ${handledIn || "nothing"}`);
    t(
      `eoi: PHYSDEVOP_eoi pirq ${pirq}; line in flight ${hv.slot("irq").pirqStatus(d, pirq).inFlight}, ` +
        `IO-APIC remote IRR ${hv.machine.irqs.inService(m.disk.pci.gsi)}`,
    );
  } else {
    t(
      `cpu: GSI ${m.disk.pci.gsi} -> IO-APIC -> ${handledIn || "nothing"}; IO-APIC EOI, remote IRR ${hv.machine.irqs.inService(m.disk.pci.gsi)}`,
    );
  }
  const a = k.ram.frameBytes(k.frameOf(pfn));
  const b = k.ram.frameBytes(k.frameOf(pfn + 1));
  const got = new Uint8Array([...a.subarray(offset), ...b.subarray(0, 1024 - DISK_SECTOR_SIZE)]);
  const want = m.image.bytes.subarray(7 * DISK_SECTOR_SIZE, 9 * DISK_SECTOR_SIZE);
  const same = got.every((x, i) => x === want[i]);
  t(
    `driver: request complete, status ${status === DISK_ST_OK ? "OK" : status}; buffer ${same ? "holds" : "does NOT hold"} ` +
      `sectors 7-8: "${new TextDecoder().decode(got.subarray(0, 38))}"`,
  );

  // 5. The NIC by MSI: a frame out and back through loopback.
  const nicDev = devs.find((x) => x.deviceId === 0x0e71) as PciDev;
  const frames2: Uint8Array[] = [];
  const nic = hlnicProbe(k, nicDev, { irq: "msi", onReceive: (f) => frames2.push(f) });
  if (typeof nic === "number") throw new Error(`nic probe: ${nic}`);
  const frameOut = new Uint8Array(60);
  frameOut.set(nic.mac, 0);
  frameOut.set(nic.mac, 6);
  nic.xmit(frameOut);
  if (build === "xen") k.events?.xenEvtchnDoUpcall(0);
  t(
    `nic: MSI irq ${nic.irq.irq} (${build === "xen" ? "Xen wrote the message; the vector became an event" : "the kernel wrote the message"}); ` +
      `sent ${nic.counts.txFrames}, received ${frames2.length} frame back`,
  );
  return out;
}
