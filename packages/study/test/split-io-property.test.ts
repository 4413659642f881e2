// Property: whatever the disk pattern (size in whole sectors, read or write, random or
// sequential), every data path moves the same bytes (equal checksums on map, copy, persistent
// and virtio), persistent grants need no grant operation once warm, and the grant map path
// maps and unmaps exactly the pages it touches.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { resolveSplitIoConfig, runSplitIo } from "../src/index";

const LONG = process.env.HYPERLAB_LONG === "1";

describe("split-driver I/O property", () => {
  it("any disk pattern: equal checksums on every path, exact grant counts", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 128 }), // sectors per request (up to 64 KiB)
        fc.constantFrom("read" as const, "write" as const),
        fc.constantFrom("random" as const, "sequential" as const),
        fc.integer({ min: 1, max: 1000 }),
        async (sectors, op, access, seed) => {
          const cfg = resolveSplitIoConfig({
            seed,
            requests: 2,
            warmup: 2,
            disk: [{ name: "p", op, bytes: sectors * 512, access }],
            nic: [],
          });
          const rows = await runSplitIo(cfg);
          expect(new Set(rows.map((r) => r.checksum)).size).toBe(1);
          const by = (p: string) => rows.find((r) => r.platform === p)!.perRequest;
          const pages = Math.ceil((sectors * 512) / 4096);
          // more than 11 segments goes indirect: one more page to grant, map and unmap
          const grants = pages + (pages > 11 ? 1 : 0);
          expect(by("xen-split-map").grantOps).toBe(2 * grants);
          expect(by("xen-split-copy").grantOps).toBe(grants);
          expect(by("xen-split-persistent").grantOps).toBe(0);
          expect(by("kvm-virtio")).toMatchObject({ hypercalls: 0, grantOps: 0, vmExits: 4 });
        },
      ),
      { seed: 31, numRuns: LONG ? 60 : 4 },
    );
  }, 180_000);
});
