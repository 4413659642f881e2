// Differential test: every xl verb the shim answers, ours (runCli over a MemoryXlHost) against
// Debian's real xl 4.17 (through the project's copy of the xl shim), byte for byte on stdout,
// stderr and exit status, over a fixed-seed set of generated hosts (HYPERLAB_LONG=1: more).
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/main";
import type { XlHost } from "../../src/xl/types";
import { type HostSpec, hostSpec, memoryHost, shimText } from "./hosts";
import { buildShim, missingPeer, type Shim, type XlRun } from "./shim";

const missing = missingPeer();
const RUNS = process.env.HYPERLAB_LONG === "1" ? 200 : 10;

async function ours(host: XlHost, args: string[]): Promise<XlRun> {
  let stdout = "";
  let stderr = "";
  const exitCode = await runCli(args, {
    out: (s) => {
      stdout += s;
    },
    err: (s) => {
      stderr += s;
    },
    connectHost: async () => host,
  });
  return { stdout, stderr, exitCode };
}

/** The command lines tried on every host: display forms, lookups and every error path. */
function commandLines(h: HostSpec, pick: number): string[][] {
  const d = h.domains[pick % h.domains.length];
  const id = String(d.domid);
  const absentId = String(40000 + pick);
  return [
    ["list"],
    ["list", "-v"],
    ["list", "-Z"],
    ["list", "-c"],
    ["list", "-vZc"],
    ["list", "--verbose", d.name],
    ["list", d.name, "-v"],
    ["list", "--", d.name],
    ["list", "-v", "--", "-v"],
    ["vcpu-list", id, "-a"],
    ["sched-credit", "-d", id, "--", "extra"],
    ["sched-credit2", "--domain", "-x"],
    ["list", id],
    ["list", "nosuch-domain"],
    ["list", absentId],
    ["list", d.name, id],
    ["list", "-x"],
    ["list", "--bogus"],
    ["list", "-h"],
    ["list", "--verb"],
    ["list", "-n"],
    ["list", "-nvc"],
    ["list", "--numa", d.name],
    ["list", "-n", "nosuch-domain"],
    ["info", "-n"],
    ["info", "-n", "free_memory"],
    ["info", "--numa", "cpu"],
    ["info"],
    ["info", "xen"],
    ["info", "free_memory"],
    ["info", "virt_caps"],
    ["info", "cpu_mhz"],
    ["vcpu-list"],
    ["vcpu-list", d.name],
    ["vcpu-list", id, d.name],
    ["vcpu-list", "nosuch-domain"],
    ["vcpu-list", id, "nosuch-domain", id],
    ["sched-credit"],
    ["sched-credit", "-d", d.name],
    ["sched-credit", "--domain", id],
    ["sched-credit", "-s"],
    ["sched-credit", "-p", "Pool-0"],
    ["sched-credit", "-p", "0"],
    ["sched-credit", "-p", "nosuch-pool"],
    ["sched-credit", "-s", "-p", "7"],
    ["sched-credit", "-w", "5"],
    ["sched-credit", "-d", id, "-s"],
    ["sched-credit", "-t", "5"],
    ["sched-credit", "-d", "nosuch-domain"],
    ["sched-credit", "-d"],
    ["sched-credit2"],
    ["sched-credit2", "-d", d.name],
    ["sched-credit2", "-s"],
    ["sched-credit2", "-p", "Pool-0"],
    ["sched-credit2", "-c", "5"],
    ["sched-credit2", "-p", "Pool-0", "-d", id],
    ["sched-credit2", "-d", "nosuch-domain"],
    ["domid", d.name],
    ["domid", "nosuch-domain"],
    ["domid", id],
    ["domid"],
    ["domname", id],
    ["domname", absentId],
    ["domname", "abc"],
    ["domname", ` ${id}x`],
    ["domname", "-0"],
    ["domname"],
  ];
}

describe("xl's read-side verbs, ours against the real xl 4.17", () => {
  if (missing !== null && process.env.CI === "true") {
    it("needs the real xl peer in CI", () => {
      throw new Error(`the xl peer cannot run: ${missing}`);
    });
    return;
  }
  let shim: Shim;
  beforeAll(() => {
    if (missing === null) shim = buildShim();
  });
  afterAll(() => shim?.close());

  it.skipIf(missing !== null)(
    "the shim's default host (dom0 alone) prints as ours does",
    async () => {
      const r = shim.run("", ["list"]);
      expect(r.exitCode).toBe(0);
      expect(r.stdout.split("\n")[0]).toBe(
        "Name                                        ID   Mem VCPUs\tState\tTime(s)",
      );
    },
  );

  it.skipIf(missing !== null)(
    "matches byte for byte on generated hosts",
    async () => {
      await fc.assert(
        fc.asyncProperty(hostSpec, fc.nat(), async (h, pick) => {
          const text = shimText(h);
          for (const args of commandLines(h, pick)) {
            const host = memoryHost(h);
            const real = shim.run(text, args);
            const mine = await ours(host, args);
            expect({ args, ...mine }).toEqual({ args, ...real });
          }
        }),
        { seed: 0x5eed26, numRuns: RUNS },
      );
    },
    RUNS * 60_000,
  );
});
