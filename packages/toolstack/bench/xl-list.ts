// `hyperlab list` with 1,000 domains over the in-memory XlHost: the whole verb (query, name
// lookup, formatting, one write) and the formatter alone, as latency per call and rows/s.
// (The host daemon measures the same verb over its control socket.)
import { runCli } from "../src/main";
import { formatList } from "../src/xl/format/list";
import { domInfo, MemoryXlHost } from "../src/xl/memory-host";

const N = 1000;
const host = new MemoryXlHost();
for (let i = 0; i < N; i++) {
  host.add({
    name: `guest-${i.toString().padStart(4, "0")}`,
    info: domInfo(i, {
      running: i % 3 === 0,
      blocked: i % 3 === 1,
      currentMemkb: 262144 + i,
      maxMemkb: 524288,
      cpuTime: i * 1_250_000_000,
      vcpuOnline: 2,
      vcpuMaxId: 1,
    }),
    vcpus: [],
    weight: 256,
    cap: 0,
    disks: [],
    nics: [],
  });
}

async function timeIt(
  label: string,
  iters: number,
  fn: () => Promise<unknown> | unknown,
): Promise<void> {
  for (let i = 0; i < 5; i++) await fn(); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) await fn();
  const ns = Number(process.hrtime.bigint() - t0) / iters;
  console.log(
    `${label}: ${(ns / 1e6).toFixed(3)} ms per call, ${(((N / ns) * 1e9) / 1e6).toFixed(2)} M rows/s`,
  );
}

let bytes = 0;
const io = {
  out: (s: string) => {
    bytes += s.length;
  },
  err: (s: string) => {
    bytes += s.length;
  },
  connectHost: async () => host,
};

const domains = await host.listDomains();
const names = new Map(domains.map((d) => [d.domid, d.name]));
await timeIt(`formatList, ${N} domains`, 200, () => formatList(domains, (id) => names.get(id)));
await timeIt(`formatList -v, ${N} domains`, 200, () =>
  formatList(domains, (id) => names.get(id), { verbose: true }),
);
await timeIt(`hyperlab list (query + format), ${N} domains`, 100, () => runCli(["list"], io));
await timeIt(`hyperlab list -v (query + format), ${N} domains`, 100, () =>
  runCli(["list", "-v"], io),
);
if (bytes === 0) throw new Error("nothing printed");
