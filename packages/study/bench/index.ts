/*
 * Study benchmarks: the random-access replay rate of each backend through @hyperlab/guest
 * (translations and RAM accesses; 4 KiB guest pages, then 2 MiB where the backend has them),
 * and the wall and CPU time of a study of 10 million random accesses on every backend, run
 * on worker threads.
 */
import { availableParallelism, loadavg } from "node:os";
import {
  ACCESS_READ,
  BACKENDS,
  CacheHierarchy,
  GuestTarget,
  listBackends,
  type PageSize,
  runStudy,
} from "../src/index";

const MiB = 2 ** 20;

function replayRate(
  backend: (typeof BACKENDS)[number],
  guestPageSize: PageSize,
  total = 1_000_000,
): number {
  const ws = 64 * MiB;
  const config = {
    backend,
    params: { guestPageSize, hostPageSize: "4K" as PageSize },
    guestBytes: ws + 16 * MiB,
    seed: 1,
  };
  const k = new GuestTarget(config);
  const pid = k.spawn();
  const va = k.mmap(pid, ws);
  const n = 4096;
  const vas = new Float64Array(n);
  const kinds = new Uint8Array(n).fill(ACCESS_READ);
  // Fault the working set in first: the rate is of steady-state replay.
  for (let at = 0; at < ws; at += n * 4096) {
    for (let i = 0; i < n; i++) vas[i] = va + ((at + i * 4096) % ws);
    k.replay(pid, vas, kinds, n, 0);
  }
  let x = 12345;
  let best = 0;
  for (let round = 0; round < 3; round++) {
    // CPU time, not wall time: the host is shared, and no other thread of ours runs now.
    const t0 = process.cpuUsage();
    for (let done = 0; done < total; done += n) {
      for (let i = 0; i < n; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        vas[i] = va + (x % (ws / 4)) * 4;
      }
      k.replay(pid, vas, kinds, n, done);
    }
    const used = process.cpuUsage(t0);
    const rate = total / ((used.user + used.system) / 1e6);
    if (rate > best) best = rate;
  }
  return best;
}

/** The data-cache model alone: accesses per CPU second over a random or sequential stream. */
function cacheRate(random: boolean, total = 4_000_000): number {
  const c = new CacheHierarchy();
  let x = 12345;
  let best = 0;
  for (let round = 0; round < 3; round++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < total; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      c.access(1, random ? (x % (16 * MiB)) * 4 : (i % (16 * MiB)) * 4);
    }
    const used = process.cpuUsage(t0);
    best = Math.max(best, total / ((used.user + used.system) / 1e6));
  }
  return best;
}

for (const random of [true, false]) {
  console.log(
    `data-cache model, ${random ? "random over 64 MiB" : "sequential words"}: ${(cacheRate(random) / 1e6).toFixed(2)} M accesses per CPU second`,
  );
}

for (const page of ["4K", "2M"] as const) {
  for (const b of BACKENDS) {
    if (b.unsupported({ guestPageSize: page, hostPageSize: "4K" }) !== null) continue;
    const rate = replayRate(b, page);
    console.log(
      `random-access replay, ${b.name}, ${page} guest pages: ${(rate / 1e6).toFixed(2)} M accesses per CPU second`,
    );
  }
}

const backends = listBackends().map((b) => b.name);
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const { results } = await runStudy({
  workloads: ["random"],
  backends,
  workingSetBytes: [64 * MiB],
  operations: [10_000_000],
  workers: 2,
});
const secs = (performance.now() - t0) / 1000;
// CPU time of every thread of the process (the workers too): what an idle host would need.
const cpu = process.cpuUsage(cpu0);
const cpuSecs = (cpu.user + cpu.system) / 1e6;
const accesses = results.runs.map((r) => `${r.backend} ${(r.counts.accesses / 1e6).toFixed(1)}M`);
console.log(
  `study of 10M random updates on ${backends.join(", ")} (2 workers): ${secs.toFixed(1)} s (${accesses.join(", ")} accesses)`,
);
// The host is shared: say how busy it was, since wall times scale with it.
const cpus = availableParallelism();
console.log(
  `  CPU time ${cpuSecs.toFixed(1)} s over all threads (on ${cpus} idle CPUs: about ${(cpuSecs / Math.min(2, cpus)).toFixed(1)} s of wall time); host load average ${loadavg()[0].toFixed(1)}`,
);
