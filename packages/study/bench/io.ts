/*
 * The I/O workload's request rate per platform: 4 KiB random disk reads and 1514-byte frames,
 * one at a time through the guest drivers, requests per second of model execution (host
 * dependent; every request is checked to have completed with the right data). Run with
 * `tsx --tsconfig tsconfig.source.json bench/io.ts`.
 */
import {
  bootIoHost,
  IO_PLATFORM_NAMES,
  type IoConfig,
  ioConfigSchema,
  resolveIoConfig,
  runIoOnHost,
} from "../src/index";

function cfg(input: object): IoConfig {
  return resolveIoConfig(ioConfigSchema.parse(input), (m) => {
    throw new Error(m);
  });
}

const cases: [string, IoConfig][] = [
  [
    "disk 4 KiB random read",
    cfg({
      requests: 4000,
      nic: [],
      disk: [{ name: "r", op: "read", bytes: 4096, access: "random" }],
    }),
  ],
  [
    "disk 64 KiB seq write",
    cfg({
      requests: 1000,
      nic: [],
      disk: [{ name: "w", op: "write", bytes: 65536, access: "sequential" }],
    }),
  ],
  [
    "nic 1514-byte frames",
    cfg({ requests: 4000, disk: [], nic: [{ name: "f", frameBytes: 1514 }] }),
  ],
];

for (const [label, c] of cases) {
  for (const p of IO_PLATFORM_NAMES) {
    const inbox: Uint8Array[] = [];
    const host = bootIoHost(p, c, 1, inbox);
    const t0 = performance.now();
    const run = runIoOnHost(host, inbox, c, 1);
    const s = (performance.now() - t0) / 1000;
    const n = run.rows[0].counts.requests;
    console.log(`io ${label.padEnd(24)} ${p.padEnd(10)} ${(n / s / 1e3).toFixed(1)} k requests/s`);
  }
}
