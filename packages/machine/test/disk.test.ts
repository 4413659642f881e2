import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import {
  DISK_DESC_SIZE,
  DISK_INT_COMPLETE,
  DISK_INT_ERROR,
  DISK_MAGIC,
  DISK_MAX_SECTORS,
  DISK_OP_FLUSH,
  DISK_OP_READ,
  DISK_OP_WRITE,
  DISK_REG_CAPACITY_LO,
  DISK_REG_CONTROL,
  DISK_REG_DMA_BITS,
  DISK_REG_DOORBELL,
  DISK_REG_HEAD,
  DISK_REG_MAGIC,
  DISK_REG_RING_SIZE,
  DISK_REG_STATUS,
  DISK_REG_TAIL,
  DISK_ST_DMA_ERROR,
  DISK_ST_IOERR,
  DISK_ST_OK,
  DISK_ST_PENDING,
  DISK_ST_UNSUPPORTED,
  DISK_STATUS_RING_ERROR,
  DiskController,
  FileDiskImage,
  MemoryDiskImage,
  PCI_COMMAND,
  PCI_COMMAND_MEMORY,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_ENABLE,
} from "../src/index";
import { DiskDriver, MiB, rig, route } from "./device-helpers";
import { expectMachineError, fcParams } from "./helpers";

const tmp = mkdtempSync(join(tmpdir(), "hyperlab-disk-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const RING = 0x10_0000;
const BUF = 0x20_0000;

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe("disk controller", () => {
  it("identifies itself and reports capacity and its 32-bit DMA mask", () => {
    const { m, disk } = rig();
    const bar = disk.pci.barAddress(0);
    expect(m.mmio.read(bar + DISK_REG_MAGIC, 4)).toBe(DISK_MAGIC);
    expect(m.mmio.read(bar + DISK_REG_CAPACITY_LO, 4)).toBe(4096);
    expect(m.mmio.read(bar + DISK_REG_DMA_BITS, 4)).toBe(32);
    expect(disk.pci.dma.maskBits).toBe(32);
    expect(m.mmio.read(bar + DISK_REG_MAGIC, 2)).toBe(0);
    expect(m.mmio.read(bar + 0x800, 4)).toBe(0);
  });

  it("writes sectors from RAM to the image and reads them back into RAM", () => {
    const { m, disk, image } = rig();
    const d = new DiskDriver(m, disk, RING, 8);
    const data = pattern(8 * 512, 1);
    m.ram.writeBytes(BUF, data);
    const [w] = d.submit([{ op: DISK_OP_WRITE, sector: 100, count: 8, buf: BUF }]);
    expect(d.status(w)).toBe(DISK_ST_OK);
    expect((image as MemoryDiskImage).bytes.subarray(100 * 512, 108 * 512)).toEqual(data);
    const [r] = d.submit([{ op: DISK_OP_READ, sector: 100, count: 8, buf: BUF + 0x10_0000 }]);
    expect(d.status(r)).toBe(DISK_ST_OK);
    expect(m.ram.readBytes(BUF + 0x10_0000, 8 * 512)).toEqual(data);
    expect(d.rd(DISK_REG_HEAD)).toBe(2);
    expect(d.intStatus()).toBe(DISK_INT_COMPLETE);
    expect(disk.stats).toMatchObject({ requests: 2, sectorsRead: 8, sectorsWritten: 8, errors: 0 });
  });

  it("is backed by a file: writes land in it and flush is fsync", () => {
    const path = join(tmp, "disk.img");
    writeFileSync(path, pattern(64 * 512, 9));
    const image = new FileDiskImage(path);
    const { m, disk } = rig({ image });
    const d = new DiskDriver(m, disk, RING, 4);
    const r = d.submit([{ op: DISK_OP_READ, sector: 2, count: 2, buf: BUF }]);
    expect(d.status(r[0])).toBe(DISK_ST_OK);
    expect(m.ram.readBytes(BUF, 1024)).toEqual(pattern(64 * 512, 9).subarray(1024, 2048));
    m.ram.writeBytes(BUF, new Uint8Array(512).fill(0xab));
    const s = d.submit([
      { op: DISK_OP_WRITE, sector: 63, count: 1, buf: BUF },
      { op: DISK_OP_FLUSH, sector: 0, count: 0, buf: 0 },
    ]);
    expect(s.map((i) => d.status(i))).toEqual([DISK_ST_OK, DISK_ST_OK]);
    image.close();
    const file = readFileSync(path);
    expect(file.length).toBe(64 * 512);
    expect(file.subarray(63 * 512).every((b) => b === 0xab)).toBe(true);
    expect(disk.stats.flushes).toBe(1);
  });

  it("refuses unusable image files with a typed error", () => {
    const odd = join(tmp, "odd.img");
    writeFileSync(odd, new Uint8Array(700));
    expectMachineError(() => new FileDiskImage(odd), "DISK_IMAGE");
    expectMachineError(() => new FileDiskImage(join(tmp, "missing.img")), "DISK_IMAGE");
    expectMachineError(() => new MemoryDiskImage(new Uint8Array(100)), "DISK_IMAGE");
    const { p } = rig();
    expectMachineError(() => new DiskController(p.pci, {} as never), "DEVICE_BAD_CONFIG");
    const path = join(tmp, "ro.img");
    writeFileSync(path, new Uint8Array(1024));
    const ro = new FileDiskImage(path, { readOnly: true });
    expect(ro.write(0, new Uint8Array(512))).toBe(false); // EBADF: an I/O error, not a throw
    ro.close();
  });

  it("completes a write to a read-only image with an I/O error status", () => {
    const path = join(tmp, "ro2.img");
    writeFileSync(path, new Uint8Array(8 * 512));
    const image = new FileDiskImage(path, { readOnly: true });
    const { m, disk } = rig({ image });
    const d = new DiskDriver(m, disk, RING, 4);
    const [s] = d.submit([{ op: DISK_OP_WRITE, sector: 0, count: 1, buf: BUF }]);
    expect(d.status(s)).toBe(DISK_ST_IOERR);
    expect(d.intStatus()).toBe(DISK_INT_COMPLETE | DISK_INT_ERROR);
    image.close();
  });

  describe("bad descriptors get an error status and an interrupt, and touch nothing", () => {
    const cases: [string, Parameters<DiskDriver["submit"]>[0][0], number, number?][] = [
      ["an unknown opcode", { op: 7, sector: 0, count: 1, buf: BUF }, DISK_ST_UNSUPPORTED],
      [
        "a count that runs off the image",
        { op: DISK_OP_READ, sector: 4095, count: 2, buf: BUF },
        DISK_ST_IOERR,
      ],
      [
        "a sector beyond the image",
        { op: DISK_OP_WRITE, sector: 2 ** 40, count: 1, buf: BUF },
        DISK_ST_IOERR,
      ],
      [
        "a count above the maximum",
        { op: DISK_OP_READ, sector: 0, count: DISK_MAX_SECTORS + 1, buf: BUF },
        DISK_ST_IOERR,
      ],
      [
        "a buffer beyond RAM",
        { op: DISK_OP_READ, sector: 0, count: 1, buf: 16 * MiB - 256 },
        DISK_ST_DMA_ERROR,
      ],
      [
        "a buffer beyond the 32-bit mask",
        { op: DISK_OP_READ, sector: 0, count: 1, buf: 2 ** 32 + BUF },
        DISK_ST_DMA_ERROR,
        5 * 2 ** 30,
      ],
      [
        "a buffer straddling the mask",
        { op: DISK_OP_WRITE, sector: 0, count: 2, buf: 2 ** 32 - 512 },
        DISK_ST_DMA_ERROR,
        5 * 2 ** 30,
      ],
    ];
    for (const [what, desc, status, ramBytes] of cases) {
      it(what, () => {
        const { m, disk, image } = rig({ ramBytes });
        const d = new DiskDriver(m, disk, RING, 4);
        const before = (image as MemoryDiskImage).bytes.slice();
        const [s] = d.submit([desc]);
        expect(d.status(s)).toBe(status);
        expect(d.intStatus()).toBe(DISK_INT_COMPLETE | DISK_INT_ERROR);
        expect(disk.stats.errors).toBe(1);
        expect(Buffer.compare((image as MemoryDiskImage).bytes, before)).toBe(0); // toEqual is slow on 2 MiB
        expect(m.ram.read32(BUF)).toBe(0);
        if (ramBytes !== undefined) expect(m.ram.read32(2 ** 32 + BUF)).toBe(0);
        // The ring goes on: the next good descriptor completes.
        const [t] = d.submit([{ op: DISK_OP_READ, sector: 0, count: 1, buf: BUF }]);
        expect(d.status(t)).toBe(DISK_ST_OK);
      });
    }

    it("with a 64-bit mask the same high buffer works", () => {
      const { m, disk } = rig({ ramBytes: 5 * 2 ** 30, diskMaskBits: 64 });
      const d = new DiskDriver(m, disk, RING, 4);
      const [s] = d.submit([{ op: DISK_OP_READ, sector: 0, count: 1, buf: 2 ** 32 + BUF }]);
      expect(d.status(s)).toBe(DISK_ST_OK);
    });
  });

  describe("a ring the device cannot use stops it with a ring error and an interrupt", () => {
    it("bus mastering off", () => {
      const { m, disk } = rig();
      const d = new DiskDriver(m, disk, RING, 4, { master: false });
      const [s] = d.submit([{ op: DISK_OP_READ, sector: 0, count: 1, buf: BUF }]);
      expect(d.status(s)).toBe(DISK_ST_PENDING);
      expect(d.rd(DISK_REG_STATUS) & DISK_STATUS_RING_ERROR).toBe(DISK_STATUS_RING_ERROR);
      expect(d.intStatus()).toBe(DISK_INT_ERROR);
      expect(disk.pci.dma.accessFaults).toBe(1);
      // Stays stopped until reset.
      d.reg(DISK_REG_DOORBELL, 1);
      expect(disk.stats.ringErrors).toBe(1);
      d.reg(DISK_REG_CONTROL, 3);
      expect(d.rd(DISK_REG_STATUS)).toBe(1);
      expect(d.rd(DISK_REG_HEAD)).toBe(0);
    });

    it("a ring beyond RAM, a bad size, a tail past the end", () => {
      const { m, disk } = rig();
      const d = new DiskDriver(m, disk, RING, 4);
      d.reg(0x10, 32 * MiB); // RING_BASE_LO beyond RAM
      d.reg(DISK_REG_TAIL, 1);
      d.reg(DISK_REG_DOORBELL, 1);
      expect(disk.stats.ringErrors).toBe(1);
      expect(disk.pci.dma.faults).toBe(1);
      const r2 = rig();
      const d2 = new DiskDriver(r2.m, r2.disk, RING, 4);
      d2.reg(DISK_REG_RING_SIZE, 0);
      d2.reg(DISK_REG_TAIL, 0);
      d2.reg(DISK_REG_DOORBELL, 1);
      expect(r2.disk.stats.ringErrors).toBe(1);
      const r3 = rig();
      const d3 = new DiskDriver(r3.m, r3.disk, RING, 4);
      d3.reg(DISK_REG_TAIL, 4);
      d3.reg(DISK_REG_DOORBELL, 1);
      expect(r3.disk.stats.ringErrors).toBe(1);
      expect(r3.m.ram.read32(RING)).toBe(0);
    });

    it("does nothing while disabled", () => {
      const { m, disk } = rig();
      const d = new DiskDriver(m, disk, RING, 4);
      d.reg(DISK_REG_CONTROL, 0);
      const [s] = d.submit([{ op: DISK_OP_READ, sector: 0, count: 1, buf: BUF }]);
      expect(d.status(s)).toBe(DISK_ST_PENDING);
      d.reg(DISK_REG_CONTROL, 1);
      d.reg(DISK_REG_DOORBELL, 1);
      expect(d.status(s)).toBe(DISK_ST_OK);
    });
  });

  it("interrupts by level INTx through the IO-APIC until acknowledged", () => {
    const { m, p, disk } = rig();
    const d = new DiskDriver(m, disk, RING, 4);
    const seen: number[] = [];
    p.apics.lapics[0].onDeliver = (v, a) => {
      seen.push(v, d.intStatus());
      d.ack(d.intStatus()); // the handler acknowledges the device, then the APIC
      a.eoi();
    };
    route(p, disk.pci.gsi, 0x50, true);
    d.submit([{ op: DISK_OP_READ, sector: 0, count: 1, buf: BUF }]);
    expect(seen).toEqual([0x50, DISK_INT_COMPLETE]);
    expect(m.irqs.state(disk.pci.gsi)).toMatchObject({ asserted: false, inService: false });
    // With the mask off the device keeps the status but does not interrupt.
    d.reg(0x34, 0);
    d.submit([{ op: DISK_OP_READ, sector: 0, count: 1, buf: BUF }]);
    expect(seen.length).toBe(2);
    expect(d.intStatus()).toBe(DISK_INT_COMPLETE);
  });

  it("interrupts by MSI when enabled", () => {
    const { m, p, disk } = rig();
    const d = new DiskDriver(m, disk, RING, 4);
    const cap = disk.pci.msiCap;
    disk.pci.writeConfig(cap + PCI_MSI_ADDRESS_LO, 4, 0xfee0_1000);
    disk.pci.writeConfig(cap + PCI_MSI_DATA_32, 2, 0x62);
    disk.pci.writeConfig(cap + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE);
    const seen: number[] = [];
    p.apics.lapics[1].onDeliver = (v, a) => {
      seen.push(v);
      d.ack();
      a.eoi();
    };
    d.submit([{ op: DISK_OP_READ, sector: 0, count: 1, buf: BUF }]);
    d.submit([{ op: DISK_OP_WRITE, sector: 0, count: 1, buf: BUF }]);
    expect(seen).toEqual([0x62, 0x62]);
    expect(m.irqs.stats(disk.pci.gsi).raised).toBe(0);
  });

  it("goes through the bus's IOMMU when one is installed, refusing unmapped pages", () => {
    const { m, p, disk } = rig();
    const d = new DiskDriver(m, disk, RING, 4);
    (disk.image as MemoryDiskImage).bytes.fill(0x5c, 0, 512);
    // Identity for the ring's page; bus page 0x7000_0000 -> machine 0x30_0000; nothing else.
    p.pci.translator = {
      translate: (page) => (page === RING ? RING : page === 0x7000_0000 ? 0x30_0000 : -1),
    };
    expect(disk.pci.dma.translator).toBe(p.pci.translator);
    const [a, b] = d.submit([
      { op: DISK_OP_READ, sector: 0, count: 1, buf: 0x7000_0000 },
      { op: DISK_OP_READ, sector: 0, count: 1, buf: BUF },
    ]);
    expect(d.status(a)).toBe(DISK_ST_OK);
    expect(m.ram.read32(0x30_0000)).toBe(0x5c5c5c5c);
    expect(d.status(b)).toBe(DISK_ST_DMA_ERROR);
    expect(m.ram.read32(BUF)).toBe(0);
    p.pci.translator = null;
    expect(disk.pci.dma.translator).toBeNull();
  });

  it("its registers vanish when memory decoding is off", () => {
    const { m, disk } = rig();
    const bar = disk.pci.barAddress(0);
    disk.pci.writeConfig(PCI_COMMAND, 2, 0);
    expect(m.mmio.read(bar + DISK_REG_MAGIC, 4)).toBe(0xffffffff);
    disk.pci.writeConfig(PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    expect(m.mmio.read(bar + DISK_REG_MAGIC, 4)).toBe(DISK_MAGIC);
  });
});

describe("disk properties", () => {
  const RAM = MiB;
  const REGION = 0x1_0000; // buffers live in [64 KiB, 768 KiB)

  it("random descriptors never throw and touch only the ring and the buffers of reads", () => {
    const addr = fc.oneof(
      fc.integer({ min: REGION, max: 0xc_0000 }),
      fc.integer({ min: RAM - 4096, max: RAM + 4096 }),
      fc.integer({ min: 2 ** 32 - 4096, max: 2 ** 32 + 4096 }),
      fc.constant(2 ** 53 - 1),
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.integer({ min: 0, max: 5 }),
            sector: fc.oneof(
              fc.integer({ min: 0, max: 300 }),
              fc.integer({ min: 0, max: 2 ** 52 }),
            ),
            count: fc.oneof(
              fc.integer({ min: 0, max: 12 }),
              fc.integer({ min: 0, max: 0xffffffff }),
            ),
            buf: addr,
          }),
          { minLength: 1, maxLength: 7 },
        ),
        (descs) => {
          const image = new MemoryDiskImage(256);
          image.bytes.set(pattern(image.bytes.length, 3));
          const { m, disk } = rig({ ramBytes: RAM, image });
          const d = new DiskDriver(m, disk, 0x8000, 8);
          const fill = pattern(RAM, 5);
          m.ram.writeBytes(0, fill);
          m.ram.writeBytes(0x8000, new Uint8Array(8 * DISK_DESC_SIZE));
          const imgBefore = image.bytes.slice();
          const slots = d.submit(descs);
          const after = m.ram.readBytes(0, RAM);
          const allowed = new Uint8Array(RAM);
          allowed.fill(1, 0x8000, 0x8000 + 8 * DISK_DESC_SIZE);
          const ok = new Set<number>();
          descs.forEach((x, i) => {
            const st = d.status(slots[i]);
            expect(st).not.toBe(DISK_ST_PENDING);
            if (x.op === DISK_OP_READ && st === DISK_ST_OK) {
              allowed.fill(1, x.buf, Math.min(RAM, x.buf + x.count * 512));
            }
            if (x.op === DISK_OP_WRITE && st === DISK_ST_OK) ok.add(i);
          });
          for (let i = 0; i < RAM; i++) {
            if (after[i] !== fill[i] && allowed[i] === 0 && (i < 0x8000 || i >= 0x8100)) {
              throw new Error(`byte ${i} changed outside the ring and the read buffers`);
            }
          }
          // The image changed only in sectors of successful writes.
          const touched = new Uint8Array(image.sectors);
          descs.forEach((x, i) => {
            if (ok.has(i)) touched.fill(1, x.sector, x.sector + x.count);
          });
          for (let i = 0; i < image.bytes.length; i++) {
            if (touched[i >>> 9] === 0 && image.bytes[i] !== imgBefore[i]) {
              throw new Error(`image byte ${i} changed outside every successful write`);
            }
          }
        },
      ),
      fcParams(60),
    );
  });

  it("random register writes never throw and write RAM only inside rings they named", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            reg: fc.integer({ min: 0, max: 16 }).map((i) => i * 4),
            value: fc.oneof(
              fc.integer({ min: 0, max: 0xffffffff }),
              fc.integer({ min: 0, max: 40 }),
              fc.constant(0x1000),
            ),
          }),
          { maxLength: 50 },
        ),
        (writes) => {
          const { m, p, disk } = rig({ ramBytes: RAM });
          p.apics.lapics[0].onDeliver = (_v, a) => {
            m.mmio.write(disk.pci.barAddress(0) + 0x30, 4, 3);
            a.eoi();
          };
          route(p, disk.pci.gsi, 0x50, true);
          const d = new DiskDriver(m, disk, 0x1000, 4);
          const rings: [number, number][] = [];
          for (const w of writes) {
            if (w.reg === DISK_REG_DOORBELL) {
              const base = d.rd(0x14) * 2 ** 32 + d.rd(0x10);
              rings.push([base, base + Math.min(d.rd(DISK_REG_RING_SIZE), 1024) * DISK_DESC_SIZE]);
            }
            d.reg(w.reg, w.value);
            d.rd(w.reg);
          }
          const after = m.ram.readBytes(0, RAM);
          for (let i = 0; i < RAM; i++) {
            if (after[i] !== 0 && !rings.some(([a, b]) => i >= a && i < b)) {
              throw new Error(`byte ${i} written outside every named ring`);
            }
          }
        },
      ),
      fcParams(60),
    );
  });
});
