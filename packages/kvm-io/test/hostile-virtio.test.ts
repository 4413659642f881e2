/*
 * A hostile guest against the virtio device models: it writes its rings by hand (descriptor
 * loops, lengths beyond its memory, buffers in another VM's frames, indices out of range, an
 * available index far ahead, indirect tables of any size) and pokes the transport's registers
 * in any order. Whatever it does, the device model never throws, never touches a byte outside
 * the VM's own frames, and either serves a request or marks itself NEEDS_RESET; a reset then
 * brings it back.
 */
import {
  MemoryDiskImage,
  NetBridge,
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_MMIO_DRIVER_FEATURES,
  VIRTIO_MMIO_DRIVER_FEATURES_SEL,
  VIRTIO_MMIO_INTERRUPT_ACK,
  VIRTIO_MMIO_QUEUE_AVAIL_LOW,
  VIRTIO_MMIO_QUEUE_DESC_LOW,
  VIRTIO_MMIO_QUEUE_NOTIFY,
  VIRTIO_MMIO_QUEUE_NUM,
  VIRTIO_MMIO_QUEUE_READY,
  VIRTIO_MMIO_QUEUE_SEL,
  VIRTIO_MMIO_QUEUE_USED_LOW,
  VIRTIO_MMIO_STATUS,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
} from "@hyperlab/machine";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { VirtioBlk, type VirtioMmioDevice, VirtioNet } from "../src/index";
import { kvmBuild } from "./helpers";

const RUNS = process.env.HYPERLAB_LONG ? 400 : 40;
const PAGE = 4096;

function fnv(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

/** A VM with one virtio device, 8 pages of its own, and 8 pages of a victim VM interleaved. */
function world(kind: "blk" | "net") {
  const b = kvmBuild(3, 32);
  const victim = b.hv.createDomain({ maxVcpus: 1, maxPages: 64 });
  const own: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < 8; i++) {
    own.push(b.hv.allocDomainPages(b.d, 0));
    theirs.push(b.hv.allocDomainPages(victim, 0));
  }
  const ram = b.hv.machine.ram;
  for (const f of theirs)
    for (let o = 0; o < PAGE; o += 4) ram.write32(f * PAGE + o, Math.imul(f, o + 1));
  const image = new MemoryDiskImage(64);
  const bridge = new NetBridge();
  let dev: VirtioMmioDevice;
  if (kind === "blk") dev = b.vm.addVirtio(new VirtioBlk({ image, queueSize: 16 }));
  else {
    const net = new VirtioNet({ mac: [2, 0, 0, 0, 0, 1], queueSize: 16 });
    net.attachPort(bridge.connect(net));
    dev = b.vm.addVirtio(net);
  }
  const v = b.d.vcpus[0];
  const reg = (off: number, value: number) => b.vm.mmioExit(v, 49, dev.base + off, 4, true, value);
  const sums = () => theirs.map((f) => fnv(ram.readBytes(f * PAGE, PAGE)));
  return { b, own, theirs, ram, dev, reg, sums, image, bridge, num: 16 };
}

type W = ReturnType<typeof world>;

/** A driver's setup of queue q at rings in the VM's own pages, with the features asked. */
function setUp(w: W, q: number, num: number, features: number, ringPage: number) {
  const { reg, own } = w;
  reg(VIRTIO_MMIO_STATUS, 0);
  reg(VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  reg(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  reg(VIRTIO_MMIO_DRIVER_FEATURES, features);
  reg(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  reg(VIRTIO_MMIO_DRIVER_FEATURES, 1); // VIRTIO_F_VERSION_1
  reg(
    VIRTIO_MMIO_STATUS,
    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
  );
  for (const qq of q === 1 ? [0, 1] : [q]) {
    reg(VIRTIO_MMIO_QUEUE_SEL, qq);
    reg(VIRTIO_MMIO_QUEUE_NUM, num);
    const base = own[ringPage + qq] * PAGE;
    reg(VIRTIO_MMIO_QUEUE_DESC_LOW, base);
    reg(VIRTIO_MMIO_QUEUE_AVAIL_LOW, base + 2048);
    reg(VIRTIO_MMIO_QUEUE_USED_LOW, base + 3072);
    reg(VIRTIO_MMIO_QUEUE_READY, 1);
  }
  reg(
    VIRTIO_MMIO_STATUS,
    VIRTIO_CONFIG_S_ACKNOWLEDGE |
      VIRTIO_CONFIG_S_DRIVER |
      VIRTIO_CONFIG_S_FEATURES_OK |
      VIRTIO_CONFIG_S_DRIVER_OK,
  );
}

const descArb = fc.record({
  where: fc.constantFrom("own", "theirs", "beyond", "huge", "straddle"),
  page: fc.nat(7),
  off: fc.nat(4095),
  len: fc.oneof(fc.nat(5000), fc.constantFrom(0, 16, 512, 4096, 0xffff_ffff)),
  flags: fc.nat(7),
  next: fc.nat(40),
});

const opArb = fc.oneof(
  fc.record({
    op: fc.constant("descs" as const),
    descs: fc.array(descArb, { minLength: 1, maxLength: 20 }),
    q: fc.nat(1),
  }),
  fc.record({
    op: fc.constant("avail" as const),
    q: fc.nat(1),
    ring: fc.array(fc.nat(40), { minLength: 1, maxLength: 16 }),
    idx: fc.nat(0xffff),
    usedEvent: fc.nat(0xffff),
  }),
  fc.record({
    op: fc.constant("kick" as const),
    q: fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: -1, max: 3 })),
  }),
  fc.record({
    op: fc.constant("reg" as const),
    off: fc.nat(0xff).map((x) => x * 4),
    value: fc.nat(0xffff_ffff),
  }),
  fc.record({
    op: fc.constant("header" as const),
    page: fc.nat(7),
    type: fc.constantFrom(0, 1, 4, 8, 99),
    sector: fc.nat(80),
  }),
  fc.record({ op: fc.constant("frame" as const), len: fc.integer({ min: 14, max: 9000 }) }),
  fc.record({ op: fc.constant("good" as const), q: fc.nat(1) }),
);

type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;
type Desc = typeof descArb extends fc.Arbitrary<infer T> ? T : never;

function apply(w: W, o: Op): void {
  const { ram, own, theirs, reg, b } = w;
  // Ring pokes go to the device's own queues (blk has one).
  const ringOf = (q: number) => own[4 + (q % w.dev.transport.queues.length)] * PAGE;
  const addr = (d: { where: string; page: number; off: number }) => {
    switch (d.where) {
      case "own":
        return own[d.page] * PAGE + d.off;
      case "theirs":
        return theirs[d.page] * PAGE + d.off;
      case "beyond":
        return b.hv.machine.ram.bytes + d.off * PAGE;
      case "straddle":
        return own[d.page] * PAGE + PAGE - 8;
      default:
        return 2 ** 52 - 16 + d.off;
    }
  };
  if (o.op === "descs") {
    o.descs.forEach((d: Desc, i: number) => {
      const at = ringOf(o.q) + (i % 16) * 16;
      const a = addr(d);
      ram.write32(at, a % 2 ** 32);
      ram.write32(at + 4, Math.floor(a / 2 ** 32));
      ram.write32(at + 8, d.len >>> 0);
      ram.write16(at + 12, d.flags);
      ram.write16(at + 14, d.next);
    });
  } else if (o.op === "avail") {
    const base = ringOf(o.q) + 2048;
    o.ring.forEach((h: number, i: number) => {
      ram.write16(base + 4 + 2 * i, h);
    });
    ram.write16(base + 2, o.idx);
    ram.write16(base + 4 + 2 * 16, o.usedEvent);
  } else if (o.op === "kick") {
    reg(VIRTIO_MMIO_QUEUE_NOTIFY, o.q >>> 0);
  } else if (o.op === "reg") {
    reg(o.off, o.value);
  } else if (o.op === "header") {
    const at = own[o.page] * PAGE;
    ram.write32(at, o.type);
    ram.write32(at + 8, o.sector);
  } else if (o.op === "good") {
    // A well-formed chain at descriptors 0..2, made available at the guest's next index.
    const nq = w.dev.transport.queues.length;
    const q = o.q % nq;
    const ring = ringOf(q);
    const desc = (i: number, a: number, len: number, flags: number) => {
      ram.write32(ring + i * 16, a);
      ram.write32(ring + i * 16 + 4, 0);
      ram.write32(ring + i * 16 + 8, len);
      ram.write16(ring + i * 16 + 12, flags);
      ram.write16(ring + i * 16 + 14, i + 1);
    };
    if (nq === 1) {
      ram.write32(own[0] * PAGE, 0); // VIRTIO_BLK_T_IN, sector 0
      ram.write32(own[0] * PAGE + 8, 0);
      desc(0, own[0] * PAGE, 16, VIRTQ_DESC_F_NEXT);
      desc(1, own[1] * PAGE, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE);
      desc(2, own[2] * PAGE, 1, VIRTQ_DESC_F_WRITE);
    } else if (q === 0) desc(0, own[1] * PAGE, 2048, VIRTQ_DESC_F_WRITE);
    else desc(0, own[1] * PAGE, 12 + 60, 0);
    const idx = ram.read16(ring + 2048 + 2);
    ram.write16(ring + 2048 + 4 + 2 * (idx % w.num), 0);
    ram.write16(ring + 2048 + 2, (idx + 1) & 0xffff);
    reg(VIRTIO_MMIO_QUEUE_NOTIFY, q);
  } else if (o.op === "frame") {
    const f = new Uint8Array(o.len);
    f.fill(0xff, 0, 6);
    w.bridge.connect({ receive() {} }).transmit(f);
  }
}

/** A well-formed request after a reset: the device serves it. */
function serveAfterReset(w: W): void {
  const { ram, own, reg, image } = w;
  ram.clearFrame(own[4]);
  setUp(w, 0, 16, 0, 4);
  const ring = own[4] * PAGE;
  const hdr = own[0] * PAGE;
  ram.write32(hdr, 1); // VIRTIO_BLK_T_OUT
  ram.write32(hdr + 4, 0);
  ram.write32(hdr + 8, 3);
  ram.write32(hdr + 12, 0);
  for (let i = 0; i < 512; i++) ram.write8(own[1] * PAGE + i, 0x5a);
  const desc = (i: number, a: number, len: number, flags: number, next: number) => {
    ram.write32(ring + i * 16, a);
    ram.write32(ring + i * 16 + 4, 0);
    ram.write32(ring + i * 16 + 8, len);
    ram.write16(ring + i * 16 + 12, flags);
    ram.write16(ring + i * 16 + 14, next);
  };
  desc(0, hdr, 16, VIRTQ_DESC_F_NEXT, 1);
  desc(1, own[1] * PAGE, 512, VIRTQ_DESC_F_NEXT, 2);
  desc(2, own[2] * PAGE, 1, VIRTQ_DESC_F_WRITE, 0);
  ram.write16(ring + 2048 + 4, 0);
  ram.write16(ring + 2048 + 2, 1);
  reg(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
  expect(w.dev.transport.status & VIRTIO_CONFIG_S_NEEDS_RESET).toBe(0);
  expect(ram.read8(own[2] * PAGE)).toBe(0);
  expect(image.bytes[3 * 512 + 7]).toBe(0x5a);
  expect(ram.read16(ring + 3072 + 2)).toBe(1);
  reg(VIRTIO_MMIO_INTERRUPT_ACK, 3);
}

describe("a hostile guest against virtio-blk and virtio-net", () => {
  for (const kind of ["blk", "net"] as const) {
    it(`virtio-${kind}: never throws, never touches another VM's frames, breaks or serves, recovers by reset`, () => {
      const seen = { broken: 0, served: 0 };
      fc.assert(
        fc.property(
          fc.nat(3).map((x) => 2 << x),
          fc.constantFrom(
            0,
            1 << VIRTIO_F_EVENT_IDX,
            1 << VIRTIO_F_INDIRECT_DESC,
            (1 << VIRTIO_F_EVENT_IDX) | (1 << VIRTIO_F_INDIRECT_DESC),
          ),
          fc.array(opArb, { minLength: 1, maxLength: 30 }),
          (num, features, ops) => {
            const w = world(kind);
            w.num = num;
            const before = w.sums();
            setUp(w, kind === "blk" ? 0 : 1, num, features >>> 0, 4);
            for (const o of ops) {
              apply(w, o);
              const t = w.dev.transport;
              // Broken queues and NEEDS_RESET go together.
              const broken = t.queues.some((q) => q.error !== null);
              if (broken) expect(t.status & VIRTIO_CONFIG_S_NEEDS_RESET).not.toBe(0);
            }
            expect(w.sums()).toEqual(before);
            const t = w.dev.transport;
            if (t.counts.broken > 0) seen.broken++;
            if (t.queues.some((q) => q.pushed > 0)) seen.served++;
            if (kind === "blk") serveAfterReset(w);
            expect(w.sums()).toEqual(before);
          },
        ),
        { seed: 23, numRuns: RUNS },
      );
      // The runs reached both outcomes: the property is not vacuous.
      expect(seen.broken).toBeGreaterThan(0);
      expect(seen.served).toBeGreaterThan(0);
    });
  }

  it("named cases: a descriptor loop, avail idx far ahead, a head out of range, a buffer in another VM", () => {
    const cases: [string, (w: W, ring: number) => void][] = [
      [
        "looped descriptor chain",
        (w, ring) => {
          w.ram.write16(ring + 12, VIRTQ_DESC_F_NEXT);
          w.ram.write16(ring + 14, 0);
          w.ram.write32(ring + 8, 16);
          w.ram.write32(ring, w.own[0] * PAGE);
          w.ram.write16(ring + 2048 + 2, 1);
        },
      ],
      ["guest moved the available index", (w, ring) => w.ram.write16(ring + 2048 + 2, 100)],
      [
        "guest says index 9 is available",
        (w, ring) => {
          w.ram.write16(ring + 2048 + 4, 9);
          w.ram.write16(ring + 2048 + 2, 1);
        },
      ],
      [
        "buffer is not in guest memory",
        (w, ring) => {
          w.ram.write32(ring, w.theirs[0] * PAGE);
          w.ram.write32(ring + 8, 16);
          w.ram.write16(ring + 12, 0);
          w.ram.write16(ring + 2048 + 2, 1);
        },
      ],
      [
        "buffer is not in guest memory",
        (w, ring) => {
          // Length beyond the VM's memory: 4 GiB from its own page.
          w.ram.write32(ring, w.own[0] * PAGE);
          w.ram.write32(ring + 8, 0xffff_ffff);
          w.ram.write16(ring + 2048 + 2, 1);
        },
      ],
    ];
    for (const [why, poke] of cases) {
      const w = world("blk");
      const before = w.sums();
      setUp(w, 0, 8, 0, 4);
      poke(w, w.own[4] * PAGE);
      w.reg(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
      const t = w.dev.transport;
      expect(t.queues[0].error).toContain(why);
      expect(t.status & VIRTIO_CONFIG_S_NEEDS_RESET).not.toBe(0);
      expect(t.interruptStatus & 2).toBe(2); // a configuration-change interrupt
      expect(t.counts.broken).toBe(1);
      // Kicks are ignored until reset.
      w.reg(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
      expect(t.counts.ignoredNotifications).toBe(1);
      expect(w.sums()).toEqual(before);
      serveAfterReset(w);
    }
  });
});
