// The "Split-driver I/O cases" example of README.md, run as written.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveConfig, resolveSplitIoConfig, runSplitIo, splitIoTable } from "../src/index";

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

describe("README: In a study: io.split", () => {
  const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### In a study: `io.split`"));

  it("its config resolves as described: the study's seed, every mode", () => {
    const json = /```json\n([\s\S]*?)```/.exec(section)![1];
    const split = resolveConfig({ seed: 12, ...JSON.parse(json) }).io!.split!;
    expect(split).toMatchObject({
      seed: 12,
      modes: ["map", "copy", "persistent", "virtio"],
      requests: 16,
      warmup: 8,
    });
  });

  it("the mistake it quotes is the message a study gives", () => {
    expect(() => resolveConfig({ io: { split: { requests: 0 } } })).toThrow(
      'Study config field "io.split.requests": Too small: expected number to be >=1; got 0.',
    );
    expect(section.replace(/\s+/g, " ")).toContain(
      'Study config field "io.split.requests": Too small: expected number to be >=1; got 0.',
    );
  });
});
