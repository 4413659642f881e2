import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import {
  createMachine,
  createPlatform,
  DISK_CONTROL_ENABLE,
  DISK_DESC_SIZE,
  DISK_INT_COMPLETE,
  DISK_INT_ERROR,
  DISK_OP_READ,
  DISK_REG_CONTROL,
  DISK_REG_DOORBELL,
  DISK_REG_INT_ACK,
  DISK_REG_INT_MASK,
  DISK_REG_INT_STATUS,
  DISK_REG_RING_BASE_LO,
  DISK_REG_RING_SIZE,
  DISK_REG_TAIL,
  DISK_ST_DMA_ERROR,
  DISK_ST_OK,
  DiskController,
  IO_APIC_RTE_DEST_SHIFT,
  IO_APIC_RTE_LEVEL,
  LoopbackPort,
  MemoryDiskImage,
  Nic,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
} from "../src/index";

it("runs the README's Devices example", () => {
  // --- README devices example: begin ---
  const m = createMachine({ ramBytes: 64 * 2 ** 20, cpus: 2, seed: 1 });
  const { apics, ioapic, pci } = createPlatform(m);

  // An old disk controller (32-bit DMA) at 00:02.0 and a NIC (64-bit DMA) at 00:03.0.
  const image = new MemoryDiskImage(2048); // 1 MiB of 512-byte sectors; FileDiskImage for a file
  image.bytes.set(new TextEncoder().encode("boot sector"), 0);
  const disk = new DiskController(pci, { image }); // INTA# -> GSI 18
  const nic = new Nic(pci); // INTA# -> GSI 19
  nic.attach(new LoopbackPort(nic));
  pci.assignResources(); // firmware: size the BARs, place them above RAM, decode them

  // The OS routes GSI 18 (level) to vector 0x50 on CPU 0 and handles it there.
  ioapic.writeRte(disk.pci.gsi, 0x50 | IO_APIC_RTE_LEVEL, 0 << IO_APIC_RTE_DEST_SHIFT);
  const bar = disk.pci.barAddress(0);
  const taken: number[] = [];
  apics.lapics[0].onDeliver = (vector, lapic) => {
    taken.push(vector);
    m.mmio.write(bar + DISK_REG_INT_ACK, 4, m.mmio.read(bar + DISK_REG_INT_STATUS, 4));
    lapic.eoi(); // a level vector: the EOI reaches the IO-APIC and clears Remote IRR
  };

  // The driver: bus mastering on, a ring of 8 descriptors, then two requests.
  const ring = 0x10_0000;
  const buf = 0x20_0000;
  disk.pci.writeConfig(PCI_COMMAND, 2, disk.pci.readConfig(PCI_COMMAND, 2) | PCI_COMMAND_MASTER);
  m.mmio.write(bar + DISK_REG_RING_BASE_LO, 4, ring);
  m.mmio.write(bar + DISK_REG_RING_SIZE, 4, 8);
  m.mmio.write(bar + DISK_REG_INT_MASK, 4, DISK_INT_COMPLETE | DISK_INT_ERROR);
  m.mmio.write(bar + DISK_REG_CONTROL, 4, DISK_CONTROL_ENABLE);
  m.ram.write8(ring, DISK_OP_READ); // descriptor 0: sector 0, 1 sector, into buf
  m.ram.write32(ring + 4, 1);
  m.ram.write64n(ring + 16, buf); // a bus address (identity-mapped here)
  m.ram.write8(ring + DISK_DESC_SIZE, DISK_OP_READ); // descriptor 1: into 4 GiB, past the mask
  m.ram.write32(ring + DISK_DESC_SIZE + 4, 1);
  m.ram.write64n(ring + DISK_DESC_SIZE + 16, 2 ** 32);
  m.mmio.write(bar + DISK_REG_TAIL, 4, 2);
  m.mmio.write(bar + DISK_REG_DOORBELL, 4, 1);

  const text = new TextDecoder().decode(m.ram.readBytes(buf, 11)); // "boot sector"
  const ok = m.ram.read8(ring + 1); // DISK_ST_OK
  const refused = m.ram.read8(ring + DISK_DESC_SIZE + 1); // DISK_ST_DMA_ERROR: an error, not a throw
  // --- README devices example: end ---

  expect(text).toBe("boot sector");
  expect(ok).toBe(DISK_ST_OK);
  expect(refused).toBe(DISK_ST_DMA_ERROR);
  expect(taken).toEqual([0x50]);
  expect(disk.pci.dma.maskFaults).toBe(1);
  expect(disk.pci.gsi).toBe(18);
  expect(nic.pci.gsi).toBe(19);
  expect(bar).toBeGreaterThanOrEqual(m.ram.bytes);
  expect(m.irqs.state(18)).toMatchObject({ asserted: false, inService: false });
});

it("the README's Devices section shows the same example", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const devices = readme.slice(readme.indexOf("## Devices"));
  const block = /```ts\n([\s\S]*?)```/.exec(devices)?.[1] ?? "";
  const test = readFileSync(new URL(import.meta.url), "utf8");
  const example =
    /--- README devices example: begin ---\n([\s\S]*?)\n\s*\/\/ --- README devices example: end/.exec(
      test,
    )?.[1] ?? "";
  const norm = (s: string) =>
    s
      .split("\n")
      .map((l) => l.trim())
      .filter(
        (l) =>
          l !== "" && !l.startsWith("import ") && !l.startsWith("}") && !/^[A-Z_a-z]+,$/.test(l),
      );
  expect(example.length).toBeGreaterThan(100);
  expect(norm(block)).toEqual(norm(example));
});
