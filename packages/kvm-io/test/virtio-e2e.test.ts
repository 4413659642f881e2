import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FileDiskImage,
  MemoryDiskImage,
  NetBridge,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from "@hyperlab/machine";
import { EXIT_REASON_EPT_MISCONFIG } from "@hyperlab/npt-mmu";
import { VirtioBlkFront, VirtioNetFront } from "@hyperlab/split-drivers";
import { describe, expect, it } from "vitest";
import { VirtioBlk, type VirtioMmioDevice, VirtioNet } from "../src/index";
import { kvmGuest, kvmWorld } from "./virtio-world";

function blkGuest(sectors = 2048, eventIdx = true, indirect = true) {
  const w = kvmWorld();
  const image = new MemoryDiskImage(sectors);
  let backend!: VirtioBlk;
  let where!: VirtioMmioDevice;
  const g = kvmGuest(w, (vm) => {
    backend = new VirtioBlk({ image });
    where = vm.addVirtio(backend);
  });
  const front = VirtioBlkFront.probe(g.k, where.base, where.gsi, { eventIdx, indirect });
  if (typeof front === "number") throw new Error(`probe ${front}`);
  return { w, g, image, backend, where, front };
}

describe("virtio-blk over virtio-mmio in a KVM-style guest", () => {
  it("probes, writes and reads back sectors of the image, counting exits, injections and EOIs", () => {
    const { g, image, backend, where, front } = blkGuest();
    expect(front.capacity).toBe(2048);
    const buf = g.k.allocPage();
    for (let i = 0; i < 4096; i++) g.k.ram.write8(buf * 4096 + i, (i * 13) & 0xff);
    const exits0 = g.vm.counts.mmioExits;
    const inj0 = g.vm.ioApic.injections;
    const s0 = g.vm.snapshot();
    let st = -1;
    expect(
      front.submit(VIRTIO_BLK_T_OUT, 16, [{ addr: buf * 4096, len: 4096 }], (s) => (st = s)),
    ).toBe(0);
    expect(st).toBe(VIRTIO_BLK_S_OK);
    expect(image.bytes[16 * 512 + 5]).toBe(65);
    // One kick, then the interrupt handler's InterruptStatus read and InterruptACK write.
    expect(g.vm.counts.mmioExits - exits0).toBe(3);
    expect(g.vm.ioApic.injections - inj0).toBe(1);
    expect(g.vm.ioApic.eoiExits).toBe(g.vm.ioApic.injections);
    // Per request, as a study reads it: two snapshots subtracted.
    const s1 = g.vm.snapshot();
    expect(s1.mmioExits - s0.mmioExits).toBe(3);
    expect(s1.exitsByReason.EPT_MISCONFIG - s0.exitsByReason.EPT_MISCONFIG).toBe(3);
    expect(s1.notifications - s0.notifications).toBe(1);
    expect(s1.injections - s0.injections).toBe(1);
    expect(s1.eoiExits - s0.eoiExits).toBe(1);
    expect(s1.virtioInterrupts - s0.virtioInterrupts).toBe(1);
    // The device read the 4 KiB, the header and 3 descriptor/ring words at least.
    expect(s1.copiedBytes - s0.copiedBytes).toBeGreaterThanOrEqual(4096 + 16 + 1);
    const back = g.k.allocPage();
    st = -1;
    front.submit(
      VIRTIO_BLK_T_IN,
      16,
      [
        { addr: back * 4096, len: 2048 },
        { addr: back * 4096 + 2048, len: 2048 },
      ],
      (s) => (st = s),
    );
    expect(st).toBe(VIRTIO_BLK_S_OK);
    for (let i = 0; i < 4096; i++) expect(g.k.ram.read8(back * 4096 + i)).toBe((i * 13) & 0xff);
    expect(backend.counts).toMatchObject({
      reads: 1,
      writes: 1,
      bytesRead: 4096,
      bytesWritten: 4096,
    });
    expect(where.transport.counts.notifications).toBe(2);
    expect(g.vm.exits[EXIT_REASON_EPT_MISCONFIG]).toBeGreaterThan(0);
    expect(front.counts).toEqual({ requests: 2, completions: 2, errors: 0 });
    // Both requests were multi-buffer chains: each took one ring slot through an indirect table.
    expect(front.vq.indirect).toBe(true);
    expect(front.vq.counts.indirect).toBe(2);
    expect(where.transport.queues[0].indirect).toBe(true);
  });

  it("without INDIRECT_DESC or EVENT_IDX, chains take one descriptor per buffer and NO_INTERRUPT is the flag", () => {
    const { g, front, where, image } = blkGuest(64, false, false);
    expect(where.transport.queues[0].indirect).toBe(false);
    expect(where.transport.queues[0].eventIdx).toBe(false);
    const buf = g.k.allocPage();
    g.k.ram.write8(buf * 4096, 0x77);
    const free0 = front.vq.numFree;
    let st = -1;
    front.submit(VIRTIO_BLK_T_OUT, 1, [{ addr: buf * 4096, len: 512 }], (s) => (st = s), false);
    expect(front.vq.numFree).toBe(free0 - 3);
    front.vq.disableCb(); // VRING_AVAIL_F_NO_INTERRUPT
    front.kick();
    expect(image.bytes[512]).toBe(0x77);
    expect(st).toBe(-1); // no interrupt: the driver polls
    expect(where.transport.queues[0].suppressed).toBe(1);
    expect(front.vq.enableCb()).toBe(false);
    expect(front.vq.getBuf()?.len).toBe(1);
    expect(front.vq.counts.indirect).toBe(0);
  });

  it("answers flush, GET_ID, out-of-range and unsupported requests as the spec says", () => {
    const { g, image, front } = blkGuest(64);
    const buf = g.k.allocPage();
    const got: number[] = [];
    front.submit(VIRTIO_BLK_T_FLUSH, 0, [], (s) => got.push(s));
    expect(image.flushes).toBe(1);
    front.submit(VIRTIO_BLK_T_GET_ID, 0, [{ addr: buf * 4096, len: 20 }], (s) => got.push(s));
    expect(new TextDecoder().decode(g.k.ram.readBytes(buf * 4096, 13))).toBe("hyperlab-vblk");
    front.submit(VIRTIO_BLK_T_IN, 63, [{ addr: buf * 4096, len: 1024 }], (s) => got.push(s));
    front.submit(VIRTIO_BLK_T_IN, 0, [{ addr: buf * 4096, len: 100 }], (s) => got.push(s));
    front.submit(77, 0, [], (s) => got.push(s));
    expect(got).toEqual([
      VIRTIO_BLK_S_OK,
      VIRTIO_BLK_S_OK,
      VIRTIO_BLK_S_IOERR,
      VIRTIO_BLK_S_IOERR,
      VIRTIO_BLK_S_UNSUPP,
    ]);
  });

  it("batches: four requests queued, one kick, one interrupt (EVENT_IDX on)", () => {
    const { g, front, where } = blkGuest(256, true);
    const buf = g.k.allocPage();
    const st: number[] = [];
    const inj0 = g.vm.ioApic.injections;
    for (let i = 0; i < 4; i++) {
      expect(
        front.submit(
          VIRTIO_BLK_T_IN,
          i,
          [{ addr: buf * 4096, len: 512 }],
          (s) => st.push(s),
          false,
        ),
      ).toBe(0);
    }
    expect(st).toEqual([]);
    expect(front.inFlight).toBe(4);
    expect(front.kick()).toBe(true);
    expect(st).toEqual([0, 0, 0, 0]);
    const q = where.transport.queues[0];
    expect(q.pushed).toBe(4);
    expect(where.transport.counts.notifications).toBe(1);
    expect(g.vm.ioApic.injections - inj0).toBe(1);
    expect(front.inFlight).toBe(0);
  });
});

describe("virtio-blk over a file-backed raw image, as blkback's", () => {
  it("writes reach the file, flush fsyncs it, and a second VM's device reads them back", () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlab-vblk-"));
    const path = join(dir, "disk.img");
    writeFileSync(path, new Uint8Array(64 * 512));
    try {
      const w = kvmWorld();
      const open = () => {
        const image = new FileDiskImage(path);
        let where!: VirtioMmioDevice;
        const g = kvmGuest(
          w,
          (vm) => {
            where = vm.addVirtio(new VirtioBlk({ image }));
          },
          1024,
        );
        const front = VirtioBlkFront.probe(g.k, where.base, where.gsi);
        if (typeof front === "number") throw new Error(`probe ${front}`);
        return { g, front, image };
      };
      const a = open();
      const page = a.g.k.allocPage();
      for (let i = 0; i < 512; i++) a.g.k.ram.write8(page * 4096 + i, 255 - (i & 0xff));
      const st: number[] = [];
      a.front.submit(VIRTIO_BLK_T_OUT, 7, [{ addr: page * 4096, len: 512 }], (s) => st.push(s));
      a.front.submit(VIRTIO_BLK_T_FLUSH, 0, [], (s) => st.push(s));
      expect(st).toEqual([VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK]);
      expect(readFileSync(path)[7 * 512 + 1]).toBe(254);
      const b = open();
      const back = b.g.k.allocPage();
      b.front.submit(VIRTIO_BLK_T_IN, 7, [{ addr: back * 4096, len: 512 }], (s) => st.push(s));
      expect(st[2]).toBe(VIRTIO_BLK_S_OK);
      expect(b.g.k.ram.read8(back * 4096 + 1)).toBe(254);
      a.image.close();
      b.image.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("virtio-net over the same bridge as the Xen side", () => {
  it("two VMs exchange frames through a NetBridge", () => {
    const w = kvmWorld(9, 128);
    const bridge = new NetBridge();
    const make = (mac: number[]) => {
      let where!: VirtioMmioDevice;
      let dev!: VirtioNet;
      const g = kvmGuest(
        w,
        (vm) => {
          dev = new VirtioNet({ mac });
          dev.attachPort(bridge.connect(dev));
          where = vm.addVirtio(dev);
        },
        1024,
      );
      const got: Uint8Array[] = [];
      const front = VirtioNetFront.probe(g.k, where.base, where.gsi, {
        onReceive: (f) => got.push(f.slice()),
      });
      if (typeof front === "number") throw new Error(`probe ${front}`);
      return { g, front, dev, got };
    };
    const a = make([2, 0, 0, 0, 0, 0xa]);
    const b = make([2, 0, 0, 0, 0, 0xb]);
    expect([...a.front.mac]).toEqual([2, 0, 0, 0, 0, 0xa]);
    const frame = (dst: Uint8Array, src: Uint8Array, n: number) => {
      const f = new Uint8Array(n);
      f.set(dst, 0);
      f.set(src, 6);
      f[12] = 0x88;
      f[13] = 0xb5;
      for (let i = 14; i < n; i++) f[i] = i & 0xff;
      return f;
    };
    expect(a.front.send(frame(b.front.mac, a.front.mac, 64))).toBe(0);
    expect(b.front.send(frame(a.front.mac, b.front.mac, 1500))).toBe(0);
    for (let i = 0; i < 100; i++)
      expect(a.front.send(frame(b.front.mac, a.front.mac, 60 + i))).toBe(0);
    expect(b.got.length).toBe(101);
    expect(b.got[0].length).toBe(64);
    expect(b.got[100][73]).toBe(73);
    expect(a.got.length).toBe(1);
    expect(a.got[0].length).toBe(1500);
    expect(a.dev.counts.txPackets).toBe(101);
    expect(b.dev.counts.rxPackets).toBe(101);
    expect(a.front.send(new Uint8Array(3))).toBe(-22);
  });
});
