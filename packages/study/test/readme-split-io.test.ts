// The "Split-driver I/O cases" example of README.md, run as written.
import { describe, expect, it } from "vitest";
import { resolveSplitIoConfig, runSplitIo, splitIoTable } from "../src/index";

describe("README: Split-driver I/O cases", () => {
  it("runs the example", async () => {
    const cfg = resolveSplitIoConfig({
      modes: ["persistent"],
      requests: 4,
      disk: [{ name: "4k-read", op: "read", bytes: 4096, access: "random" }],
      nic: [],
    });
    const [row] = await runSplitIo(cfg);
    expect([row!.perRequest.grantOps, row!.perRequest.hypercalls]).toEqual([0, 2]);
    expect(splitIoTable([row!]).split("\n")[4]).toBe(
      "| xen-split-persistent | 4k-read | 4 | 2 | 0 | 0 | 2 | 0 | 1 | 4096 | 7024 |",
    );
  });
});
