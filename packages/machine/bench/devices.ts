/*
 * Device rates: interrupt delivery (device raises -> LAPIC delivery callback) by INTx through
 * the IO-APIC and by MSI, disk DMA in MB/s (in-memory image, 4 KiB and 64 KiB requests) and
 * NIC frames per second over loopback. Each figure is one timed run after an untimed warm-up.
 */

import {
  DISK_OP_READ,
  DISK_OP_WRITE,
  LoopbackPort,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_ENABLE,
} from "../src/index";
import { DiskDriver, ethFrame, NicDriver, rig, route } from "../test/device-helpers";

function time(loop: () => number): { ns: number; units: number } {
  loop();
  const t0 = process.hrtime.bigint();
  const units = loop();
  return { ns: Number(process.hrtime.bigint() - t0), units };
}

function rate(name: string, unit: string, scale: number, r: { ns: number; units: number }): void {
  console.log(`${name}: ${(r.units / scale / (r.ns / 1e9)).toFixed(2)} ${unit}`);
}

{
  const { m, p, disk } = rig({ ramBytes: 64 * 2 ** 20 });
  const lapic = p.apics.lapics[0];
  let delivered = 0;
  lapic.onDeliver = () => {
    delivered++;
  };
  route(p, disk.pci.gsi, 0x50, true);
  const N = 1_000_000;
  rate(
    "interrupt INTx level (raise -> IO-APIC -> LAPIC callback, EOI)",
    "M/s",
    1e6,
    time(() => {
      const start = delivered;
      for (let i = 0; i < N; i++) {
        disk.pci.setInterrupt(true);
        disk.pci.setInterrupt(false);
        lapic.eoi();
      }
      return delivered - start;
    }),
  );
  const cap = disk.pci.msiCap;
  disk.pci.writeConfig(4, 2, 6);
  disk.pci.writeConfig(cap + PCI_MSI_ADDRESS_LO, 4, 0xfee0_0000);
  disk.pci.writeConfig(cap + PCI_MSI_DATA_32, 2, 0x51);
  disk.pci.writeConfig(cap + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
  rate(
    "interrupt MSI (raise -> MSI write -> LAPIC callback, EOI)",
    "M/s",
    1e6,
    time(() => {
      const start = delivered;
      for (let i = 0; i < N; i++) {
        disk.pci.setInterrupt(true);
        disk.pci.setInterrupt(false);
        lapic.eoi();
      }
      return delivered - start;
    }),
  );
  if (m.irqs.stats(disk.pci.gsi).delivered === 0) throw new Error("no INTx delivered");
}

for (const [kib, op] of [
  [4, DISK_OP_READ],
  [64, DISK_OP_READ],
  [4, DISK_OP_WRITE],
  [64, DISK_OP_WRITE],
] as const) {
  const { m, disk } = rig({ ramBytes: 64 * 2 ** 20 });
  const d = new DiskDriver(m, disk, 0x10_0000, 64, { intMask: 0 });
  const bytes = kib * 1024;
  const sectors = bytes / 512;
  const total = 256 * 2 ** 20;
  const batch = Array.from({ length: 32 }, (_, i) => ({
    op,
    sector: (i * sectors) % (4096 - sectors),
    count: sectors,
    buf: 0x20_0000 + i * bytes,
  }));
  rate(
    `disk DMA ${op === DISK_OP_READ ? "read" : "write"} ${kib} KiB requests (memory image)`,
    "MB/s",
    1e6,
    time(() => {
      let moved = 0;
      while (moved < total) {
        d.submit(batch);
        moved += batch.length * bytes;
      }
      return moved;
    }),
  );
}

for (const len of [60, 1514]) {
  const { m, nic } = rig({ ramBytes: 64 * 2 ** 20 });
  const d = new NicDriver(m, nic, 0x10_0000, 0x11_0000, 256, { intMask: 0 });
  nic.attach(new LoopbackPort(nic));
  const frame = ethFrame([...nic.mac], [...nic.mac], new Uint8Array(len - 14).fill(0x5a));
  m.ram.writeBytes(0x20_0000, frame);
  for (let i = 0; i < 255; i++) d.addRx(0x40_0000 + i * 2048, 2048);
  const batch = Array.from({ length: 32 }, () => ({ buf: 0x20_0000, len }));
  const FRAMES = 200_000;
  rate(
    `nic loopback ${len}-byte frames (tx DMA -> port -> rx DMA)`,
    "k frames/s",
    1e3,
    time(() => {
      const start = nic.stats.rxFrames;
      for (let sent = 0; sent < FRAMES; sent += batch.length) {
        d.send(batch);
        for (let k = 0; k < batch.length; k++)
          d.addRx(0x40_0000 + ((d.rxTail + k) % 255) * 2048, 2048);
      }
      return nic.stats.rxFrames - start;
    }),
  );
}
