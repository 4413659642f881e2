/*
 * Rates of the machine's hot paths, in millions of operations per second. Each figure is
 * one plain loop of millions of operations timed with process.hrtime.bigint() (BigInt only
 * outside the loop), after one untimed warm-up of the same loop.
 */

import { Clock, createPrng, FrameAllocator, PAGE_SIZE, Ram } from "../src/index";

const REGION = 64 * 2 ** 20; // touched region: 64 MiB
const N = 20_000_000;
let sink = 0;

function measure(name: string, ops: number, loop: () => void): void {
  loop();
  const t0 = process.hrtime.bigint();
  loop();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`${name}: ${(ops / (ns / 1e3)).toFixed(1)} M/s`);
}

const ram = new Ram({ bytes: 4 * 2 ** 30 });
const base = 2 ** 30; // a region that does not start at 0
for (let a = base; a < base + REGION; a += PAGE_SIZE) ram.write32(a, a >>> 12);

// Random aligned offsets, drawn once from the seeded PRNG.
const prng = createPrng(1);
const RAND = 1 << 20;
const rand32 = new Float64Array(RAND);
const rand64 = new Float64Array(RAND);
for (let i = 0; i < RAND; i++) {
  rand32[i] = base + prng.nextInt(REGION / 4) * 4;
  rand64[i] = base + prng.nextInt(REGION / 8) * 8;
}
const M32 = REGION / 4 - 1;
const M64 = REGION / 8 - 1;

measure("ram read u32 seq", N, () => {
  let s = 0;
  for (let i = 0; i < N; i++) s += ram.read32(base + (i & M32) * 4);
  sink += s;
});
measure("ram read u32 random", N, () => {
  let s = 0;
  for (let i = 0; i < N; i++) s += ram.read32(rand32[i & (RAND - 1)]);
  sink += s;
});
// The same random reads on one plain typed array: the host's memory-latency bound.
const plain = new Uint32Array(REGION / 4).fill(1);
measure("baseline: Uint32Array read random (no Ram)", N, () => {
  let s = 0;
  for (let i = 0; i < N; i++) s += plain[(rand32[i & (RAND - 1)] - base) / 4];
  sink += s;
});
measure("ram write u32 seq", N, () => {
  for (let i = 0; i < N; i++) ram.write32(base + (i & M32) * 4, i);
});
measure("ram write u32 random", N, () => {
  for (let i = 0; i < N; i++) ram.write32(rand32[i & (RAND - 1)], i);
});
measure("ram read u64 (lo+hi) seq", N, () => {
  let s = 0;
  for (let i = 0; i < N; i++) {
    const a = base + (i & M64) * 8;
    s += ram.read64lo(a) ^ ram.read64hi(a);
  }
  sink += s;
});
measure("ram read u64 (lo+hi) random", N, () => {
  let s = 0;
  for (let i = 0; i < N; i++) {
    const a = rand64[i & (RAND - 1)];
    s += ram.read64lo(a) ^ ram.read64hi(a);
  }
  sink += s;
});
measure("ram read u64 (number) random", N, () => {
  let s = 0;
  for (let i = 0; i < N; i++) s += ram.read64(rand64[i & (RAND - 1)]);
  sink += s;
});
measure("ram write u64 seq", N, () => {
  for (let i = 0; i < N; i++) ram.write64(base + (i & M64) * 8, i, ~i);
});
measure("ram write u64 random", N, () => {
  for (let i = 0; i < N; i++) ram.write64(rand64[i & (RAND - 1)], i, ~i);
});
measure("ram frameWords u32 read (per word)", N, () => {
  let s = 0;
  const frames = REGION / PAGE_SIZE;
  for (let i = 0; i < N; i += 1024) {
    const mfn = (base >>> 12) + ((i >>> 10) % frames);
    const v = ram.frameWords(mfn, false);
    for (let j = 0; j < 1024; j++) s += v[j];
  }
  sink += s;
});

const FRAMES = 1 << 20;
measure("ram frameWords hand-out + one u32 read, random frames", N, () => {
  let s = 0;
  const frames = REGION / PAGE_SIZE;
  const first = base >>> 12;
  for (let i = 0; i < N; i++) {
    s += ram.frameWords(first + ((rand32[i & (RAND - 1)] >>> 12) % frames), false)[i & 1023];
  }
  sink += s;
});

measure("frame alloc (1 M frames, fresh allocator)", FRAMES, () => {
  const fa = new FrameAllocator(FRAMES);
  let s = 0;
  for (let i = 0; i < FRAMES; i++) s += fa.allocFrame();
  sink += s;
});
measure("frame alloc+free (steady)", N / 4, () => {
  const fa = new FrameAllocator(FRAMES);
  for (let i = 0; i < FRAMES / 2; i++) fa.allocFrame();
  for (let i = 0; i < N / 4; i++) fa.freeFrame(fa.allocFrame());
});
measure("frame alloc order 9 + free", 1_000_000, () => {
  const fa = new FrameAllocator(FRAMES);
  for (let i = 0; i < 1_000_000; i++) fa.freePages(fa.allocPages(9), 9);
});

const EVENTS = 5_000_000;
measure("clock schedule+run (1024 pending)", EVENTS, () => {
  const clock = new Clock();
  const r = createPrng(2);
  let fired = 0;
  const cb = () => {
    fired++;
  };
  for (let i = 0; i < 1024; i++) clock.schedule(r.nextInt(1000), cb);
  for (let i = 0; i < EVENTS; i++) {
    clock.runNext();
    clock.schedule(clock.now + (i & 1023), cb);
  }
  sink += fired;
});
measure("prng nextU32", N, () => {
  const r = createPrng(3);
  let s = 0;
  for (let i = 0; i < N; i++) s ^= r.nextU32();
  sink += s;
});

if (sink === 0.5) console.log("(sink)");

await import("./devices");
