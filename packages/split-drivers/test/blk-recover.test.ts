// Reliability: blkback is killed mid-stream (its module unloaded: every device closes) and a
// new one is started. blkfront follows the backend through Closing/Closed, reconnects through
// xenbus when the new backend waits again, and issues every unanswered request again
// (blkif_recover). No acknowledged write is lost: the image's checksum at the end equals the
// one computed from every write.
import { BLKIF_RSP_OKAY } from "@hyperlab/abi";
import { createPrng } from "@hyperlab/machine";
import { afterEach, describe, expect, it } from "vitest";
import { BlkBack } from "../src/index";
import { type BlkWorld, blkWorld, sha256 } from "./blk-world";
import { until } from "./world";

let live: BlkWorld[] = [];
afterEach(() => {
  for (const w of live) w.cleanup();
  live = [];
});

describe.each(["map", "copy", "persistent"] as const)("killing blkback (%s)", (mode) => {
  it("the frontend reconnects, re-issues what was unanswered and loses no acknowledged write", async () => {
    const w = await blkWorld({ mode, back: { batch: 3 }, front: { maxRingPageOrder: 1 } });
    live.push(w);
    const disk = w.disk;
    const rng = createPrng(77);
    const N = 160;
    // Distinct 4 KiB blocks in a random order, so the expected image does not depend on the
    // order the backends complete them in.
    const blocks = Array.from({ length: 512 }, (_, i) => i);
    for (let i = blocks.length - 1; i > 0; i--) {
      const j = rng.nextInt(i + 1);
      [blocks[i], blocks[j]] = [blocks[j]!, blocks[i]!];
    }
    const expected = w.img.bytes.slice();
    const acked: number[] = [];
    let killed: Promise<void> | null = null;
    const jobs: Promise<number>[] = [];
    for (let i = 0; i < N; i++) {
      const data = new Uint8Array(4096);
      for (let k = 0; k < data.length; k += 4) {
        const x = rng.nextU32();
        data[k] = x;
        data[k + 1] = x >>> 8;
        data[k + 2] = x >>> 16;
        data[k + 3] = x >>> 24;
      }
      const sector = blocks[i]! * 8;
      expected.set(data, sector * 512);
      jobs.push(
        disk.write(sector, data).then((st) => {
          if (st === BLKIF_RSP_OKAY) acked.push(i);
          // Kill the backend once a quarter of the writes were answered: the rest are queued,
          // on the ring, or being processed.
          if (acked.length === N / 4 && killed === null) killed = w.backBus!.stop();
          return st;
        }),
      );
    }
    await until(() => killed !== null);
    await killed;
    await until(async () => (await w.state(w.fe)) === "6");
    expect(disk.state).toBe("disconnected");
    const beforeRestart = acked.length;
    expect(beforeRestart).toBeLessThan(N);
    // Every write acknowledged so far is on the image already.
    const now = w.image();
    for (const i of acked) {
      const at = blocks[i]! * 8 * 512;
      expect(Buffer.compare(now.subarray(at, at + 4096), expected.subarray(at, at + 4096))).toBe(0);
    }
    // A new blkback: the device goes InitWait, the frontend sets a new ring up and resends.
    await w.startBackend(new BlkBack(w.dom0Kernel, w.backOpts));
    const statuses = await Promise.all(jobs);
    expect(statuses.every((s) => s === BLKIF_RSP_OKAY)).toBe(true);
    expect(disk.reconnects).toBe(1);
    expect(disk.recovered).toBeGreaterThan(0);
    expect(acked.length).toBe(N);
    expect(await w.state(w.fe)).toBe("4");
    expect(sha256(w.image())).toBe(sha256(expected));
    // Reads after the restart see the same bytes.
    const at = blocks[0]! * 8;
    const r = await disk.read(at, 8);
    expect(Buffer.compare(r.data, expected.subarray(at * 512, at * 512 + 4096))).toBe(0);
  });
});
