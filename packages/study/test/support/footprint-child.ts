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
const gc = (globalThis as { gc?: () => void }).gc;
if (gc !== undefined) gc();
process.stdout.write(
  `${JSON.stringify({
    backend: name,
    guestBytes,
    rss: vmRssBytes(),
    backing: k.hv.machine.ram.residentBytes,
    frames: k.hv.machine.ram.nrFrames,
  })}\n`,
);
if (process.env.H10_SMAPS) {
  const s = readFileSync("/proc/self/smaps", "utf8").split("\n");
  let cur = "";
  let size = 0;
  for (const line of s) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) cur = line;
    const m = /^(Size|Rss):\s+(\d+) kB/.exec(line);
    if (m && m[1] === "Size") size = Number(m[2]);
    if (m && m[1] === "Rss" && size > 4096) process.stderr.write(`${size} ${m[2]} ${cur}\n`);
  }
}
