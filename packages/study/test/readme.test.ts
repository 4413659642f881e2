import { expect, it } from "vitest";
import { runStudy, summaryTable } from "../src/index";

it("runs the README example", async () => {
  const log: unknown[][] = [];
  const console = { log: (...a: unknown[]) => log.push(a) };

  const { results } = await runStudy({
    seed: 7,
    workloads: ["random", "fork-exec"],
    backends: ["native", "pv", "nested"],
    workingSetBytes: [4 * 2 ** 20],
    operations: [200],
    costs: { vmExits: 1200 }, // any default can be overridden
    workers: 0, // on this thread; the default runs cells on 2 worker threads
  });
  console.log(summaryTable(results));

  const [native, pv, nested] = results.runs; // matrix order: workload, parameters, backend
  console.log(native.checksum === pv.checksum && pv.checksum === nested.checksum); // true
  console.log(pv.counts.hypercalls > 0, nested.counts.vmExits > 0, native.counts.vmExits); // true true 0
  console.log(nested.estOverheadVsNative! > 1); // true (an estimate)

  expect(log.slice(1)).toEqual([[true], [true, true, 0], [true]]);
  expect(String(log[0][0])).toContain("random ws=4MiB page=4K/4K procs=1 ops=200");
});
