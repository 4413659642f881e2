// Run in a child process by footprint.test.ts: builds one study target, writes every page of
// 4 MiB in one process, and prints the process's resident memory (VmRSS) and the RAM's
// backing as JSON. Usage: footprint-child.ts <backend> <guestBytes>.
import { readFileSync } from "node:fs";
import { BACKENDS } from "../../src/backends";
import { GuestTarget } from "../../src/guest-target";
import { ACCESS_WRITE } from "../../src/target";

function vmRssBytes(): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
  return m === null ? process.memoryUsage().rss : Number(m[1]) * 1024;
}

const [name, bytesArg] = process.argv.slice(2);
const backend = BACKENDS.find((b) => b.name === name);
if (backend === undefined) throw new Error(`no backend ${name}`);
const guestBytes = Number(bytesArg);
const k = new GuestTarget({
  backend,
  params: { guestPageSize: "4K", hostPageSize: "4K" },
  guestBytes,
  seed: 1,
});
const pid = k.spawn();
const MiB = 2 ** 20;
const va = k.mmap(pid, 4 * MiB);
const n = (4 * MiB) / 4096;
const vas = Float64Array.from({ length: n }, (_, i) => va + i * 4096);
k.replay(pid, vas, new Uint8Array(n).fill(ACCESS_WRITE), n, 0);
// Collect until resident memory settles: V8 returns a large collected heap to the system
// only on a later collection, so one gc() can leave boot's transient arrays counted.
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");
let last = Number.POSITIVE_INFINITY;
for (let i = 0; i < 10; i++) {
  gc();
  await new Promise((r) => setTimeout(r, 50));
  const now = vmRssBytes();
  if (last - now < 2 ** 20) break;
  last = now;
}
process.stdout.write(
  `${JSON.stringify({
    backend: name,
    guestBytes,
    rss: vmRssBytes(),
    backing: k.hv.machine.ram.residentBytes,
    frames: k.hv.machine.ram.nrFrames,
  })}\n`,
);
