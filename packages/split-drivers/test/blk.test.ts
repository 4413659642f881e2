// blkfront and blkback end to end: the xenstore handshake with libxl/blkback's keys, reads
// and writes checked against the image file, indirect segments, multi-page rings, flush,
// barrier, discard, read-only disks, and the three backend data modes with their counters.

import { closeSync, fstatSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import {
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  VDISK_READONLY,
} from "@hyperlab/abi";
import { afterEach, describe, expect, it } from "vitest";
import {
  BlkBack,
  type BlkbackMode,
  BlkError,
  BlkFront,
  GnttabGuest,
  imageSectors,
  perRequest,
} from "../src/index";
import { type BlkWorld, blkWorld, makeImage, XVDA } from "./blk-world";
import { until } from "./world";

let live: BlkWorld[] = [];
afterEach(() => {
  for (const w of live) w.cleanup();
  live = [];
});
async function make(o: Parameters<typeof blkWorld>[0] = {}) {
  const w = await blkWorld(o);
  live.push(w);
  return w;
}

/** Byte equality without vitest's slow deep diff of large typed arrays. */
function same(a: Uint8Array, b: Uint8Array): void {
  const x = Buffer.from(a.buffer, a.byteOffset, a.length);
  const y = Buffer.from(b.buffer, b.byteOffset, b.length);
  expect(x.length).toBe(y.length);
  expect(x.equals(y)).toBe(true);
}

const pattern = (n: number, seed: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return b;
};

describe("xenstore handshake", () => {
  it("blkback publishes its features and the disk, blkfront its transport keys", async () => {
    const w = await make({ mode: "persistent", front: { maxRingPageOrder: 2 } });
    const be = async (k: string) => w.xs.read(`${w.be}/${k}`);
    const fe = async (k: string) => w.xs.read(`${w.fe}/${k}`);
    expect(await be("sectors")).toBe("4096");
    expect(await be("info")).toBe("0");
    expect(await be("sector-size")).toBe("512");
    expect(await be("physical-sector-size")).toBe("512");
    expect(await be("feature-flush-cache")).toBe("1");
    expect(await be("feature-barrier")).toBe("1");
    expect(await be("feature-discard")).toBe("1");
    expect(await be("discard-granularity")).toBe("512");
    expect(await be("discard-alignment")).toBe("0");
    expect(await be("discard-secure")).toBe("1");
    expect(await be("feature-persistent")).toBe("1");
    expect(await be("feature-max-indirect-segments")).toBe("256");
    expect(await be("max-ring-page-order")).toBe("4");
    expect(await fe("ring-page-order")).toBe("2");
    for (let i = 0; i < 4; i++) expect(Number(await fe(`ring-ref${i}`))).toBeGreaterThan(7);
    expect(await w.xs.exists(`${w.fe}/ring-ref`)).toBe(false);
    expect(Number(await fe("event-channel"))).toBeGreaterThan(0);
    expect(await fe("protocol")).toBe("x86_64-abi");
    expect(await fe("feature-persistent")).toBe("1");
    const f = w.disk.features!;
    expect(f).toMatchObject({ sectors: 4096, sectorSize: 512, readonly: false, persistent: true });
    expect(f.maxSegments).toBe(32);
    expect(f.ringPageOrder).toBe(2);
  });

  it("an order-0 ring uses ring-ref, and the ring order is the smaller of the two maxima", async () => {
    const w = await make({ back: { maxRingPageOrder: 1 }, front: { maxRingPageOrder: 4 } });
    expect(await w.xs.read(`${w.fe}/ring-page-order`)).toBe("1");
    const w0 = await make({ front: { maxRingPageOrder: 0 } });
    expect(await w0.xs.exists(`${w0.fe}/ring-page-order`)).toBe(false);
    expect(Number(await w0.xs.read(`${w0.fe}/ring-ref`))).toBeGreaterThan(7);
  });

  it("a read-only disk says VDISK_READONLY and refuses writes with BLKIF_RSP_ERROR", async () => {
    const w = await make({ back: { readonly: true } });
    expect(Number(await w.xs.read(`${w.be}/info`)) & VDISK_READONLY).toBe(VDISK_READONLY);
    expect(w.disk.features!.readonly).toBe(true);
    expect(await w.disk.write(0, pattern(512, 1))).toBe(BLKIF_RSP_ERROR);
    expect(await w.disk.flush()).toBe(BLKIF_RSP_ERROR);
    const r = await w.disk.read(0, 8);
    expect(r.status).toBe(BLKIF_RSP_OKAY);
    same(r.data, w.img.bytes.subarray(0, 4096));
  });

  it.each(["map", "copy", "persistent"] as const)(
    "%s: mode = r in the backend node makes that vbd read-only: writes, flushes, barriers and discards get BLKIF_RSP_ERROR",
    async (mode) => {
      const w = await make({ mode, backendKeys: { mode: "r" } });
      expect(Number(await w.xs.read(`${w.be}/info`)) & VDISK_READONLY).toBe(VDISK_READONLY);
      expect(w.disk.readOnly).toBe(true); // set_disk_ro
      const before = w.image();
      expect(await w.disk.write(0, pattern(4096, 3))).toBe(BLKIF_RSP_ERROR);
      expect(await w.disk.flush()).toBe(BLKIF_RSP_ERROR);
      expect(await w.disk.barrier(8, pattern(512, 4))).toBe(BLKIF_RSP_ERROR);
      expect(await w.disk.barrier(0, new Uint8Array(0))).toBe(BLKIF_RSP_ERROR);
      expect(await w.disk.discard(0, 16)).toBe(BLKIF_RSP_ERROR);
      same(w.image(), before);
      const r = await w.disk.read(0, 8);
      expect(r.status).toBe(BLKIF_RSP_OKAY);
      same(r.data, before.subarray(0, 4096));
    },
  );

  it("an image is a regular file (its length) or a block device (its sysfs size, as phy: serves it)", () => {
    const img = makeImage(96, 2);
    try {
      const fd = openSync(img.path, "r");
      expect(imageSectors(fd)).toBe(96);
      closeSync(fd);
    } finally {
      rmSync(img.dir, { recursive: true, force: true });
    }
    // A block device node of this host, opened read-only (the first /sys/class/block entry
    // whose /dev node opens: loop0 on the machines seen so far): fstat says 0 bytes, the
    // kernel's sysfs says how many sectors it has.
    const found = hostBlockDevice();
    expect(found, "this test needs one readable block device node under /dev").not.toBeNull();
    const { fd: dev, name } = found as { fd: number; name: string };
    try {
      expect(fstatSync(dev).isBlockDevice()).toBe(true);
      const sys = Number(readFileSync(`/sys/class/block/${name}/size`, "latin1").trim());
      expect(imageSectors(dev)).toBe(sys);
      // The sysfs node is found from the device's major:minor.
      expect(() => imageSectors(dev, "/nonexistent")).toThrow(/dev\/block\/\d+:\d+\/size/);
    } finally {
      closeSync(dev);
    }
  });

  it("mode = w (and no mode at all) serves the vbd read-write", async () => {
    for (const backendKeys of [{ mode: "w" }, {}] as Record<string, string>[]) {
      const w = await make({ backendKeys });
      expect(Number(await w.xs.read(`${w.be}/info`)) & VDISK_READONLY).toBe(0);
      expect(w.disk.readOnly).toBe(false);
      expect(await w.disk.write(0, pattern(512, 5))).toBe(BLKIF_RSP_OKAY);
      same(w.image().subarray(0, 512), pattern(512, 5));
    }
  });

  it("configuration mistakes throw BlkError with what to do", async () => {
    const w = await make();
    expect(
      () => new BlkBack(w.dom0Kernel, { image: w.img.path, mode: "dma" as BlkbackMode }),
    ).toThrow(BlkError);
    expect(() => new BlkBack(w.dom0Kernel, { image: w.img.path, maxRingPageOrder: 5 })).toThrow(
      /maxRingPageOrder/,
    );
    expect(() => new BlkBack(w.dom0Kernel, {} as never)).toThrow(/image/);
    const gnttab = new GnttabGuest(w.hv, w.u.domain);
    expect(() => new BlkFront(w.u.kernel, { gnttab, maxRingPageOrder: -1 })).toThrow(BlkError);
    expect(
      () => new BlkFront(w.u.kernel, { gnttab, poolPages: 20, maxIndirectSegments: 32 }),
    ).toThrow(/poolPages/);
    expect(() => new BlkFront(w.u.kernel, {} as never)).toThrow(/gnttab/);
    expect(() => w.disk.read(-1, 1)).toThrow(BlkError);
    expect(() => w.disk.write(0, new Uint8Array(0))).toThrow(/at least one/);
    expect(() => w.disk.barrier(0, new Uint8Array(512 * 100))).toThrow(/barrier/);
  });
});

describe.each(["map", "copy", "persistent"] as const)("data mode %s", (mode) => {
  it("reads what the image holds and writes what the image then holds", async () => {
    const w = await make({ mode });
    const r = await w.disk.read(100, 24);
    expect(r.status).toBe(BLKIF_RSP_OKAY);
    same(r.data, w.img.bytes.subarray(100 * 512, 124 * 512));
    const data = pattern(8 * 512, 3);
    expect(await w.disk.write(17, data)).toBe(BLKIF_RSP_OKAY);
    same(w.image().subarray(17 * 512, 25 * 512), data);
    same((await w.disk.read(17, 8)).data, data);
    // An odd sector count and offset: the last segment is partial.
    const odd = pattern(3 * 512, 4);
    expect(await w.disk.write(4093, odd)).toBe(BLKIF_RSP_OKAY);
    same((await w.disk.read(4093, 3)).data, odd);
    // Beyond the end of the disk: ERROR, nothing written.
    expect(await w.disk.write(4095, pattern(1024, 5))).toBe(BLKIF_RSP_ERROR);
    expect((await w.disk.read(4096, 1)).status).toBe(BLKIF_RSP_ERROR);
  });

  it("64 KiB requests go as one indirect request of 16 segments", async () => {
    const w = await make({ mode });
    const data = pattern(64 * 1024, 9);
    const before = w.back.stats.read("blkback", "requests")!;
    expect(await w.disk.write(1024, data)).toBe(BLKIF_RSP_OKAY);
    expect(w.back.stats.read("blkback", "requests")! - before).toBe(1);
    same(w.image().subarray(1024 * 512, 1024 * 512 + data.length), data);
    const r = await w.disk.read(1024, 128);
    same(r.data, data);
    // 1 MiB: split into requests of 32 segments (blkfront's default maximum).
    const big = pattern(1 << 20, 10);
    const n0 = w.back.stats.read("blkback", "requests")!;
    expect(await w.disk.write(2048, big)).toBe(BLKIF_RSP_OKAY);
    expect(w.back.stats.read("blkback", "requests")! - n0).toBe(8);
    same((await w.disk.read(2048, 2048)).data, big);
  });

  it("without indirect segments a 64 KiB write becomes two direct requests", async () => {
    const w = await make({ mode, back: { maxIndirectSegments: 0 } });
    expect(w.disk.features!.maxSegments).toBe(11);
    const data = pattern(64 * 1024, 11);
    const n0 = w.back.stats.read("blkback", "requests")!;
    expect(await w.disk.write(0, data)).toBe(BLKIF_RSP_OKAY);
    expect(w.back.stats.read("blkback", "requests")! - n0).toBe(2);
    same((await w.disk.read(0, 128)).data, data);
  });

  it("flush, barrier and discard (plain and secure)", async () => {
    const w = await make({ mode });
    expect(await w.disk.flush()).toBe(BLKIF_RSP_OKAY);
    const data = pattern(4096, 12);
    expect(await w.disk.barrier(40, data)).toBe(BLKIF_RSP_OKAY);
    same(w.image().subarray(40 * 512, 48 * 512), data);
    expect(await w.disk.discard(40, 4)).toBe(BLKIF_RSP_OKAY);
    expect(
      w
        .image()
        .subarray(40 * 512, 44 * 512)
        .every((b) => b === 0),
    ).toBe(true);
    same(w.image().subarray(44 * 512, 48 * 512), data.subarray(2048));
    expect(await w.disk.discard(44, 4, true)).toBe(BLKIF_RSP_OKAY);
    expect(
      w
        .image()
        .subarray(44 * 512, 48 * 512)
        .every((b) => b === 0),
    ).toBe(true);
    expect(await w.disk.discard(4000, 200)).toBe(BLKIF_RSP_ERROR);
  });

  it("counts per request: hypercalls, grant operations, notifications, copies", async () => {
    const w = await make({ mode });
    for (let i = 0; i < 32; i++) await w.disk.read(i * 8, 8);
    const back = perRequest(w.back.stats.snapshot().blkback!);
    const front = perRequest(w.front.stats.snapshot().blkfront!);
    const units = Object.fromEntries(w.back.stats.snapshot().blkback!.map((s) => [s.name, s.unit]));
    expect(units).toMatchObject({
      hypercalls: "hypercalls",
      copiedBytes: "bytes",
      notifications: "events",
    });
    if (mode === "map") {
      // One map and one unmap hypercall per request, one grant op each way.
      expect(back.grantOps).toBeGreaterThanOrEqual(2);
      expect(back.copies).toBe(0);
      expect(front.copies).toBe(0);
    } else if (mode === "copy") {
      expect(back.copies).toBe(1);
      expect(back.copiedBytes).toBe(4096);
    } else {
      // Persistent: after the pool is mapped once, requests need no grant hypercall at all.
      expect(back.grantOps).toBeLessThan(1);
      expect(front.copies).toBe(1);
      expect(w.back.persistentGrants(w.u.domain.domid, XVDA)).toBeGreaterThan(0);
    }
    expect(back.notifications).toBeGreaterThan(0);
    expect(back.notifications).toBeLessThanOrEqual(1);
  });
});

describe("multi-page rings", () => {
  it.each([0, 1, 2, 3, 4])(
    "order %i: a ring of 2^order pages carries more than a full ring of requests",
    async (order) => {
      const w = await make({
        front: { maxRingPageOrder: order, poolPages: 600, maxIndirectSegments: 0 },
      });
      expect(w.disk.features!.ringPageOrder).toBe(order);
      const size = 32 << order;
      // One request more than the ring holds, all issued at once.
      const jobs: Promise<{ status: number; data: Uint8Array }>[] = [];
      for (let i = 0; i <= size; i++) jobs.push(w.disk.read((i * 8) % 4096, 1));
      const rs = await Promise.all(jobs);
      rs.forEach((r, i) => {
        const s = (i * 8) % 4096;
        expect(r.status).toBe(BLKIF_RSP_OKAY);
        same(r.data, w.img.bytes.subarray(s * 512, s * 512 + 512));
      });
    },
  );
});

describe("persistent grants", () => {
  it("stay mapped between requests, bounded by maxPersistentGrants (LRU purge)", async () => {
    const w = await make({ mode: "persistent", back: { maxPersistentGrants: 20 } });
    const dom = w.u.domain.domid;
    // One 4 KiB read maps one page for good: the next read of it needs no grant operation.
    await w.disk.read(0, 8);
    expect(w.back.persistentGrants(dom, XVDA)).toBe(1);
    const ops = w.back.stats.read("blkback", "grantOps")!;
    await w.disk.read(0, 8);
    expect(w.back.stats.read("blkback", "grantOps")).toBe(ops);
    // Six 64 KiB writes at once use 6 x 17 pool pages: far more than the bound.
    const data = Array.from({ length: 6 }, (_, i) => pattern(64 * 1024, 30 + i));
    const st = await Promise.all(data.map((d, i) => w.disk.write(i * 128, d)));
    expect(st.every((s) => s === BLKIF_RSP_OKAY)).toBe(true);
    expect(w.back.persistentGrants(dom, XVDA)).toBeLessThanOrEqual(20);
    // Purged grants are mapped again when their pages come back.
    const rs = await Promise.all(data.map((_, i) => w.disk.read(i * 128, 128)));
    rs.forEach((r, i) => {
      same(r.data, data[i]!);
    });
    expect(w.back.persistentGrants(dom, XVDA)).toBeLessThanOrEqual(20);
    // Disconnecting unmaps every one of them: no mapping of the domU's pages is left.
    await w.backBus!.stop();
    let left = 0;
    w.hv.slot("grant-table").forEachMapping((m) => {
      if (m.granterDomid === dom) left++;
    });
    expect(left).toBe(0);
  });

  it("a frontend without feature-persistent gets the map mode", async () => {
    const w = await make({ mode: "persistent", front: { persistent: false } });
    expect(w.disk.features!.persistent).toBe(false);
    expect(await w.disk.write(0, pattern(4096, 2))).toBe(BLKIF_RSP_OKAY);
    expect(w.back.persistentGrants(w.u.domain.domid, XVDA)).toBe(0);
  });
});

describe("features turned off", () => {
  it("a backend built without flush answers EOPNOTSUPP and the frontend turns the feature off", async () => {
    const w = await make({ back: { flush: false, barrier: false, discard: false } });
    const f = w.disk.features!;
    // As if the frontend had read stale features: the requests reach the backend.
    f.flush = f.barrier = f.discard = true;
    expect(await w.disk.flush()).toBe(BLKIF_RSP_EOPNOTSUPP);
    expect(await w.disk.barrier(0, pattern(512, 1))).toBe(BLKIF_RSP_EOPNOTSUPP);
    expect(await w.disk.discard(0, 8)).toBe(BLKIF_RSP_EOPNOTSUPP);
    expect(w.back.stats.read("blkback", "requests")).toBe(3);
    expect([f.flush, f.barrier, f.discard]).toEqual([false, false, false]);
    // Now answered by the frontend without a request.
    expect(await w.disk.flush()).toBe(BLKIF_RSP_EOPNOTSUPP);
    expect(w.back.stats.read("blkback", "requests")).toBe(3);
  });

  it("a backend without flush, barrier or discard: the frontend answers EOPNOTSUPP itself", async () => {
    const w = await make({ back: { flush: false, barrier: false, discard: false } });
    expect(await w.xs.read(`${w.be}/feature-flush-cache`)).toBe("0");
    expect(await w.xs.exists(`${w.be}/feature-discard`)).toBe(false);
    expect(await w.disk.flush()).toBe(BLKIF_RSP_EOPNOTSUPP);
    expect(await w.disk.barrier(0, pattern(512, 1))).toBe(BLKIF_RSP_EOPNOTSUPP);
    expect(await w.disk.discard(0, 8)).toBe(BLKIF_RSP_EOPNOTSUPP);
    expect(w.back.stats.read("blkback", "requests")).toBe(0);
  });
});

describe("a backend whose image cannot be opened", () => {
  it("reports 2 (ENOENT) in its error node and closes; the frontend keeps its requests", async () => {
    const w = await make({ noBackend: true });
    await w.startBackend(new BlkBack(w.dom0Kernel, { image: `${w.img.dir}/missing.img` }));
    const errPath = `/local/domain/0/error/backend/vbd/${w.u.domain.domid}/${XVDA}/error`;
    await until(() => w.xs.exists(errPath));
    expect(await w.xs.read(errPath)).toMatch(/^2 opening the image/);
    await until(async () => (await w.state(w.be)) === "6");
    const disk = w.front.disk(XVDA)!;
    expect(disk.state).toBe("disconnected");
    const pending = disk.read(0, 8);
    expect(disk.queued).toBe(1);
    // The toolstack fixes the image and a new backend serves the waiting read.
    await w.backBus!.stop();
    await w.startBackend(new BlkBack(w.dom0Kernel, w.backOpts));
    same((await pending).data, w.img.bytes.subarray(0, 4096));
  });
});

describe("indirect maxima", () => {
  it("front 256 and back 256: a 1 MiB write is one indirect request; back 64 caps the front", async () => {
    const w = await make({ front: { maxIndirectSegments: 256, poolPages: 600 } });
    expect(w.disk.features!.maxSegments).toBe(256);
    const big = pattern(1 << 20, 40);
    const n0 = w.back.stats.read("blkback", "requests")!;
    expect(await w.disk.write(0, big)).toBe(BLKIF_RSP_OKAY);
    expect(w.back.stats.read("blkback", "requests")! - n0).toBe(1);
    same((await w.disk.read(0, 2048)).data, big);
    const w64 = await make({
      back: { maxIndirectSegments: 64 },
      front: { maxIndirectSegments: 256, poolPages: 600 },
    });
    expect(w64.disk.features!.maxSegments).toBe(64);
    const m0 = w64.back.stats.read("blkback", "requests")!;
    expect(await w64.disk.write(0, big)).toBe(BLKIF_RSP_OKAY);
    expect(w64.back.stats.read("blkback", "requests")! - m0).toBe(4);
  });
});

describe("ordering and queueing", () => {
  it("a barrier completes after every write issued before it", async () => {
    const w = await make();
    const order: string[] = [];
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      jobs.push(w.disk.write(i * 8, pattern(4096, i)).then(() => order.push(`w${i}`)));
    }
    jobs.push(w.disk.barrier(400, pattern(4096, 99)).then(() => order.push("barrier")));
    await Promise.all(jobs);
    expect(order.indexOf("barrier")).toBe(40);
  });

  it("requests issued before the backend exists wait, then go once connected", async () => {
    const w = await make({ noBackend: true });
    await until(() => w.front.disk(XVDA) !== undefined);
    const disk = w.front.disk(XVDA)!;
    const data = pattern(8192, 5);
    const wr = disk.write(64, data);
    const rd = disk.read(0, 8);
    expect(disk.queued).toBe(2);
    await w.startBackend();
    expect(await wr).toBe(BLKIF_RSP_OKAY);
    same((await rd).data, w.img.bytes.subarray(0, 4096));
    same(w.image().subarray(64 * 512, 64 * 512 + 8192), data);
  });

  it("one backend serves two disks of a domU from two images", async () => {
    const w = await make({ noBackend: true });
    const second = makeImage(2048, 9);
    live.push({ cleanup: () => rmSync(second.dir, { recursive: true, force: true }) } as BlkWorld);
    const back = new BlkBack(w.dom0Kernel, {
      image: (_domid, devid) => (devid === XVDA ? w.img.path : second.path),
    });
    await w.startBackend(back);
    const xvda = await w.connected();
    const { fe } = await w.addDevice(w.u.domain.domid, "vbd", XVDA + 16);
    await until(async () => (await w.state(fe)) === "4");
    const xvdb = w.front.disk(XVDA + 16)!;
    await xvdb.ready();
    expect(xvdb.features!.sectors).toBe(2048);
    same((await xvdb.read(0, 8)).data, second.bytes.subarray(0, 4096));
    same((await xvda.read(0, 8)).data, w.img.bytes.subarray(0, 4096));
    expect(back.connected(w.u.domain.domid, XVDA + 16)).toBe(true);
  });
});

/** The first block device of this host whose /dev node opens read-only, or null. */
function hostBlockDevice(): { fd: number; name: string } | null {
  for (const name of readdirSync("/sys/class/block").sort()) {
    try {
      const fd = openSync(`/dev/${name}`, "r");
      if (fstatSync(fd).isBlockDevice()) return { fd, name };
      closeSync(fd);
    } catch {
      // Not present in /dev, or not readable: try the next one.
    }
  }
  return null;
}
