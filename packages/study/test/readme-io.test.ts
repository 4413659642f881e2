import { expect, it } from "vitest";
import { ioConfigSchema, ioSummaryTable, resolveIoConfig, runIoStudy } from "../src/index";

it("runs the README's I/O example", () => {
  const log: unknown[][] = [];
  const console = { log: (...a: unknown[]) => log.push(a) };

  const io = resolveIoConfig(
    ioConfigSchema.parse({
      requests: 8,
      disk: [
        { name: "4k-rr", op: "read", bytes: 4096, access: "random" },
        { name: "64k-sw", op: "write", bytes: 65536, access: "sequential", bufferOffset: 512 },
      ],
      nic: [{ name: "mtu", frameBytes: 1514 }],
    }),
    (message) => {
      throw new Error(message);
    },
  );
  const results = runIoStudy(io, 1);
  console.log(ioSummaryTable(results));
  const [native, dom0] = results.runs;
  console.log(results.checksumsAgree); // true: the same bytes on both
  console.log(native.rows[0].perRequest.interrupts, dom0.rows[0].perRequest.eoiHypercalls); // 1 1
  console.log(native.rows[1].perRequest.bounces, dom0.rows[1].perRequest.bounces); // 0 1

  expect(log.slice(1)).toEqual([[true], [1, 1], [0, 1]]);
  expect(String(log[0][0])).toMatch(/4k-rr\s+xen-dom0/);
});
