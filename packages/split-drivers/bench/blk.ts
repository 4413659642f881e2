// Block split driver throughput, end to end (blkfront in a domU, blkback in dom0, a raw
// image file): 4 KiB random reads (IOPS) and 64 KiB sequential writes and reads (MB/s) for
// each backend data mode, with what one request cost in hypercalls, grant operations,
// notifications and copies. Wall-clock rates include the model's xenstore, event channel and
// grant table work as well as node:fs I/O.
import { createPrng } from "@hyperlab/machine";
import { type BlkbackMode, perRequest } from "../src/index";
import { blkWorld } from "../test/blk-world";

const QD = 32; // requests kept in flight (blk-mq queue depth)

async function run(n: number, issue: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    while (next < n) await issue(next++);
  };
  await Promise.all(Array.from({ length: QD }, worker));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function costs(w: Awaited<ReturnType<typeof blkWorld>>, since: { b: number[]; f: number[] }) {
  const b = w.back.stats.snapshot().blkback!;
  const f = w.front.stats.snapshot().blkfront!;
  const d = (now: typeof b, then: number[]) =>
    perRequest(now.map((s, i) => ({ ...s, value: s.value - then[i]! })));
  const pb = d(b, since.b);
  const pf = d(f, since.f);
  const x = (v: number) => v.toFixed(2);
  return (
    `back: ${x(pb.hypercalls!)} hypercalls, ${x(pb.grantOps!)} grant ops, ${x(pb.notifications!)} notifications, ` +
    `${x(pb.copies!)} copies; front: ${x(pf.hypercalls!)} hypercalls, ${x(pf.grantOps!)} grant ops, ` +
    `${x(pf.notifications!)} notifications, ${x(pf.copies!)} copies (per request)`
  );
}

function mark(w: Awaited<ReturnType<typeof blkWorld>>) {
  return {
    b: w.back.stats.snapshot().blkback!.map((s) => s.value),
    f: w.front.stats.snapshot().blkfront!.map((s) => s.value),
  };
}

export async function benchBlk(): Promise<void> {
  const SECTORS = 32768; // 16 MiB image
  for (const mode of ["map", "copy", "persistent"] as BlkbackMode[]) {
    const w = await blkWorld({
      mode,
      sectors: SECTORS,
      front: { maxRingPageOrder: 2, poolPages: 1200 },
    });
    try {
      const disk = w.disk;
      const rng = createPrng(7);
      // Warm up (maps persistent grants, fills caches).
      await run(512, (i) => disk.read((i * 8) % SECTORS, 8));
      let m = mark(w);
      const N = 4000;
      let s = await run(N, () => disk.read(rng.nextInt(SECTORS / 8) * 8, 8));
      console.log(`blk ${mode}: 4 KiB random read: ${(N / s).toFixed(0)} IOPS; ${costs(w, m)}`);
      const big = new Uint8Array(64 * 1024).fill(0xa5);
      const M = 600;
      const span = SECTORS / 128;
      m = mark(w);
      s = await run(M, (i) => disk.write((i % span) * 128, big));
      console.log(
        `blk ${mode}: 64 KiB sequential write: ${((M * 64) / 1024 / s).toFixed(1)} MB/s; ${costs(w, m)}`,
      );
      m = mark(w);
      s = await run(M, (i) => disk.read((i % span) * 128, 128));
      console.log(
        `blk ${mode}: 64 KiB sequential read: ${((M * 64) / 1024 / s).toFixed(1)} MB/s; ${costs(w, m)}`,
      );
    } finally {
      w.cleanup();
    }
  }
}
