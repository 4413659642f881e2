// The KVM-style I/O path: virtio-blk 4 KiB random IOPS and 64 KiB sequential MB/s, virtio-net
// packets per second (64 B and 1500 B, VM to VM through a NetBridge), and interrupt delivery
// (device raise to the guest's handler) per second, each with its per-request counts: MMIO
// exits, injections, EOI exits, notifications (kicks) and bytes the device model copied.
import { createHypervisor, type Domain, type Hypervisor } from "@hyperlab/core";
import { bootNativeKernel, type GuestKernel, ioremap, writel } from "@hyperlab/guest";
import {
  createMachine,
  MemoryDiskImage,
  NetBridge,
  Prng,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from "@hyperlab/machine";
import { nptMmu } from "@hyperlab/npt-mmu";
import { VirtioBlkFront, VirtioNetFront } from "@hyperlab/split-drivers";
import { type KvmIo, kvmIo, VirtioBlk, VirtioNet, type VmIo } from "../src/index";

const MiB = 2 ** 20;

function world(): { hv: Hypervisor; kvm: KvmIo } {
  const machine = createMachine({ ramBytes: 256 * MiB, cpus: 1, seed: 5 });
  const hv = createHypervisor({ machine, plugins: [nptMmu(), kvmIo()] }).boot();
  return { hv, kvm: hv.slot("kvm-io") };
}

function guest(w: { hv: Hypervisor; kvm: KvmIo }, attach: (vm: VmIo) => void, pages = 4096) {
  const d: Domain = w.hv.createDomain({ maxVcpus: 1, maxPages: pages + 64 });
  w.hv.unpauseDomain(d);
  const vm = w.kvm.vm(d);
  attach(vm);
  return { vm, k: bootNativeKernel(w.hv, d, { nrPages: pages }) };
}

interface Snap {
  exits: number;
  inj: number;
  eoi: number;
  copied: number;
}
const snap = (vm: VmIo): Snap => ({
  exits: vm.counts.mmioExits,
  inj: vm.ioApic.injections,
  eoi: vm.ioApic.eoiExits,
  copied: vm.memory.bytesRead + vm.memory.bytesWritten,
});

function timeIt(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function perReq(vm: VmIo, a: Snap, n: number, kicks: number): string {
  const b = snap(vm);
  const f = (x: number) => (x / n).toFixed(2);
  return `per request: ${f(b.exits - a.exits)} MMIO exits, ${f(b.inj - a.inj)} injections, ${f(b.eoi - a.eoi)} EOI exits, ${f(kicks)} notifications, ${f(b.copied - a.copied)} bytes copied`;
}

function blkBench(): void {
  const w = world();
  const image = new MemoryDiskImage((64 * MiB) / 512);
  let where = { base: 0, gsi: 0 };
  const g = guest(w, (vm) => {
    where = vm.addVirtio(new VirtioBlk({ image }));
  });
  const disk = VirtioBlkFront.probe(g.k, where.base, where.gsi);
  if (typeof disk === "number") throw new Error(`virtio-blk probe ${disk}`);
  const k: GuestKernel = g.k;
  const bufs: number[] = [];
  for (let i = 0; i < 16; i++) bufs.push(k.allocPage());
  const prng = Prng.fromSeed(99);
  const sectors = image.sectors;
  let failed = 0;
  const done = (s: number) => {
    if (s !== 0) failed++;
  };
  // 4 KiB random, half reads and half writes.
  const N = 20000;
  const run4k = () => {
    for (let i = 0; i < N; i++) {
      const sector = prng.nextInt(sectors / 8) * 8;
      disk.submit(
        i & 1 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
        sector,
        [{ addr: bufs[0] * 4096, len: 4096 }],
        done,
      );
    }
  };
  run4k(); // warm up
  let a = snap(g.vm);
  let k0 = disk.vq.counts.kicks;
  let s = timeIt(run4k);
  console.log(`virtio-blk 4 KiB random: ${(N / s / 1000).toFixed(1)} k IOPS`);
  console.log(`  ${perReq(g.vm, a, N, disk.vq.counts.kicks - k0)}`);
  // 64 KiB sequential reads.
  const M = 3000;
  const segs = bufs.map((p) => ({ addr: p * 4096, len: 4096 }));
  const run64k = () => {
    for (let i = 0; i < M; i++)
      disk.submit(VIRTIO_BLK_T_IN, (i * 128) % (sectors - 128), segs, done);
  };
  run64k();
  a = snap(g.vm);
  k0 = disk.vq.counts.kicks;
  s = timeIt(run64k);
  console.log(`virtio-blk 64 KiB sequential read: ${((M * 65536) / s / MiB).toFixed(1)} MB/s`);
  console.log(`  ${perReq(g.vm, a, M, disk.vq.counts.kicks - k0)}`);
  if (failed > 0) throw new Error(`${failed} virtio-blk requests failed`);
}

function netBench(): void {
  const w = world();
  const bridge = new NetBridge();
  const make = (mac: number[]) => {
    let where = { base: 0, gsi: 0 };
    const g = guest(
      w,
      (vm) => {
        const dev = new VirtioNet({ mac });
        dev.attachPort(bridge.connect(dev));
        where = vm.addVirtio(dev);
      },
      2048,
    );
    let got = 0;
    const nic = VirtioNetFront.probe(g.k, where.base, where.gsi, { onReceive: () => got++ });
    if (typeof nic === "number") throw new Error(`virtio-net probe ${nic}`);
    return { g, nic, received: () => got };
  };
  const a = make([2, 0, 0, 0, 0, 1]);
  const b = make([2, 0, 0, 0, 0, 2]);
  for (const size of [64, 1500]) {
    const f = new Uint8Array(size);
    f.set(b.nic.mac, 0);
    f.set(a.nic.mac, 6);
    f[12] = 0x88;
    f[13] = 0xb5;
    const N = 20000;
    const run = () => {
      for (let i = 0; i < N; i++) if (a.nic.send(f) !== 0) throw new Error("send failed");
    };
    run();
    const r0 = b.received();
    const sa = snap(a.g.vm);
    const sb = snap(b.g.vm);
    const k0 = a.nic.tx.counts.kicks + b.nic.rx.counts.kicks;
    const s = timeIt(run);
    if (b.received() - r0 !== N) throw new Error("frames lost");
    const kicks = a.nic.tx.counts.kicks + b.nic.rx.counts.kicks - k0;
    const ea = snap(a.g.vm);
    const eb = snap(b.g.vm);
    const per = (x: number) => (x / N).toFixed(2);
    console.log(`virtio-net ${size} B VM to VM: ${(N / s / 1000).toFixed(1)} k packets/s`);
    console.log(
      `  per packet (sender + receiver): ${per(ea.exits - sa.exits + eb.exits - sb.exits)} MMIO exits, ` +
        `${per(ea.inj - sa.inj + eb.inj - sb.inj)} injections, ${per(ea.eoi - sa.eoi + eb.eoi - sb.eoi)} EOI exits, ` +
        `${per(kicks)} notifications, ${per(ea.copied - sa.copied + eb.copied - sb.copied)} bytes copied`,
    );
  }
}

/** Device raise -> injection -> guest handler (acks the device by MMIO, EOIs) per second. */
function irqBench(): void {
  const w = world();
  let raise = () => {};
  const g = guest(w, () => {}, 1024);
  const vm = g.vm;
  const gsi = 10;
  // A one-register device: a write to it lowers its line (the ack a handler does).
  vm.mmio.register({
    name: "irq-bench",
    base: vm.virtioBase + 0x10_0000,
    len: 4096,
    read: () => 0,
    write: () => vm.ioApic.lower(gsi),
  });
  raise = () => vm.ioApic.raise(gsi);
  const k = g.k;
  const regs = ioremap(k, vm.virtioBase + 0x10_0000, 4096);
  let handled = 0;
  const irq = k.ops.apic.setupGsi(gsi, "level", "high");
  k.ops.apic.bindIrq(irq, () => {
    handled++;
    writel(k, regs, 1);
    k.ops.apic.eoi(irq);
  });
  k.ops.apic.unmask(irq);
  const N = 100000;
  const run = () => {
    for (let i = 0; i < N; i++) raise();
  };
  run();
  const a = snap(vm);
  const h0 = handled;
  const s = timeIt(run);
  if (handled - h0 !== N) throw new Error("interrupts lost");
  console.log(
    `interrupt delivery, device raise to guest handler (KVM-style guest): ${(N / s / 1e6).toFixed(2)} M/s`,
  );
  console.log(`  ${perReq(vm, a, N, 0)}`);
}

blkBench();
netBench();
irqBench();
