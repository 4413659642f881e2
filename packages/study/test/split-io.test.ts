// The split-driver I/O cases: per-request counts that follow from what blkfront/blkback and
// netfront/netback do, identical data across blkback modes, and byte-identical results for
// one seed.
import { describe, expect, it } from "vitest";
import {
  resolveSplitIoConfig,
  runSplitIo,
  SPLIT_IO_COSTS,
  type SplitIoResult,
  splitIoCycles,
  splitIoTable,
} from "../src/index";
import { ioConfigSchema } from "../src/io/index";

const KiB = 1024;
const cfg = resolveSplitIoConfig({ requests: 4, warmup: 4 });
let results: SplitIoResult[] = [];
const get = (platform: string, pattern: string) =>
  results.find((r) => r.platform === platform && r.pattern === pattern)!;

describe("split-driver I/O cases", () => {
  it("runs every mode × pattern, each request answered", async () => {
    results = await runSplitIo(cfg);
    expect(results.map((r) => `${r.platform}/${r.pattern}`)).toEqual(
      ["xen-split-map", "xen-split-copy", "xen-split-persistent", "kvm-virtio"].flatMap((m) =>
        [
          "4k-random-read",
          "4k-random-write",
          "64k-seq-read",
          "64k-seq-write",
          "frame-64",
          "frame-1514",
        ].map((p) => `${m}/${p}`),
      ),
    );
    for (const r of results) {
      expect(r.counts.requests).toBe(4);
      expect(r.kind).toBe(r.pattern.startsWith("frame") ? "nic" : "disk");
      expect(r.counts.hypercalls).toBe(4 * r.perRequest.hypercalls);
    }
  }, 120_000);

  it("grant map, 4 KiB: map and unmap hypercalls of one element each, plus a notify each way", () => {
    for (const op of ["read", "write"]) {
      const p = get("xen-split-map", `4k-random-${op}`).perRequest;
      // blkfront: grant 1 page + end it (no hypercall), EVTCHNOP_send; blkback: map, unmap, send.
      expect(p).toEqual({
        requests: 1,
        bytes: 4 * KiB,
        hypercalls: 4,
        grantOps: 2,
        frontendGrantOps: 2,
        notifications: 2,
        vmExits: 0,
        copies: 0,
        copiedBytes: 0,
        cpuCopyBytes: 0,
      });
    }
  });

  it("grant map, 64 KiB: an indirect request (16 data pages + 1 indirect page), mapped in two hypercalls", () => {
    const p = get("xen-split-map", "64k-seq-read").perRequest;
    // 16 segments > BLKIF_MAX_SEGMENTS_PER_REQUEST (11): BLKIF_OP_INDIRECT. blkback maps the
    // indirect page, then the 16 data grants, unmaps both sets: 4 grant hypercalls, 34 ops.
    expect(p.grantOps).toBe(2 * 17);
    expect(p.frontendGrantOps).toBe(2 * 17);
    expect(p.hypercalls).toBe(4 + 2);
    expect(p.copies).toBe(0);
  });

  it("grant copy: one GNTTABOP_copy per batch, data moved by Xen", () => {
    const small = get("xen-split-copy", "4k-random-read").perRequest;
    expect(small).toMatchObject({ hypercalls: 3, grantOps: 1, copies: 1, copiedBytes: 4 * KiB });
    expect(small.cpuCopyBytes).toBe(0);
    const big = get("xen-split-copy", "64k-seq-write").perRequest;
    // The indirect page is copied in, then the 16 data segments in one GNTTABOP_copy.
    expect(big).toMatchObject({ hypercalls: 4, grantOps: 17, copies: 17 });
    expect(big.copiedBytes).toBe(64 * KiB + 4 * KiB);
  });

  it("persistent grants: 0 grant operations in the backend once warm, the frontend copies", () => {
    for (const pattern of ["4k-random-read", "4k-random-write"]) {
      const p = get("xen-split-persistent", pattern).perRequest;
      expect(p).toEqual({
        requests: 1,
        bytes: 4 * KiB,
        hypercalls: 2, // the two EVTCHNOP_send
        grantOps: 0,
        frontendGrantOps: 0,
        notifications: 2,
        vmExits: 0,
        copies: 1,
        copiedBytes: 4 * KiB,
        cpuCopyBytes: 4 * KiB,
      });
    }
    expect(get("xen-split-persistent", "64k-seq-read").perRequest).toMatchObject({
      grantOps: 0,
      copies: 16,
      cpuCopyBytes: 64 * KiB,
    });
  });

  it("network: per frame two grant copies (tx, rx), three notifications, three CPU copies", () => {
    for (const m of ["map", "copy", "persistent"]) {
      for (const [pattern, n] of [
        ["frame-64", 64],
        ["frame-1514", 1514],
      ] as const) {
        const p = get(`xen-split-${m}`, pattern).perRequest;
        // netfront A grants its tx page; netfront B re-posts one rx buffer (a new grant).
        // netback: GNTTABOP_copy of the tx slot, GNTTABOP_copy into B's buffer, and an
        // EVTCHNOP_send to each frontend; A kicks netback once.
        expect(p).toEqual({
          requests: 1,
          bytes: n,
          hypercalls: 5,
          grantOps: 2,
          frontendGrantOps: 2,
          notifications: 3,
          vmExits: 0,
          copies: 2,
          // grant copies tx and rx, dom0's bridge → staging copy, A's copy in, B's copy out
          copiedBytes: 5 * n,
          cpuCopyBytes: 3 * n,
        });
      }
    }
  });

  it("virtio on the KVM-style build: VM exits and injected interrupts, no hypercall, no grant", () => {
    for (const op of ["read", "write"]) {
      // The kick (QueueNotify) exits; the device completes inside it and raises its level
      // GSI; the handler reads InterruptStatus and writes InterruptACK (2 more MMIO exits) and
      // the level EOI exits: 4 exits, 1 kick + 1 interrupt. The device model copies the
      // 16-byte header, the 4 KiB and the status byte.
      expect(get("kvm-virtio", `4k-random-${op}`).perRequest).toEqual({
        requests: 1,
        bytes: 4 * KiB,
        hypercalls: 0,
        grantOps: 0,
        frontendGrantOps: 0,
        notifications: 2,
        vmExits: 4,
        copies: 3,
        copiedBytes: 4 * KiB + 16 + 1,
        cpuCopyBytes: 4 * KiB + 16 + 1,
      });
    }
    // 64 KiB: one chain of 16 page buffers, still one kick and one interrupt.
    expect(get("kvm-virtio", "64k-seq-read").perRequest).toMatchObject({
      vmExits: 4,
      notifications: 2,
      copies: 18,
      copiedBytes: 64 * KiB + 17,
    });
    const c = (p: string) => get(p, "4k-random-read").cyclesPerRequest;
    expect(c("kvm-virtio")).toBe(
      4 * SPLIT_IO_COSTS.vmExit +
        SPLIT_IO_COSTS.eventDelivery +
        (4 * KiB + 17) * SPLIT_IO_COSTS.copyByte,
    );
    // A frame: A's tx kick (1 exit), A's tx-completion interrupt and B's rx interrupt, each
    // InterruptStatus + InterruptACK + the level EOI (3 exits): 7 exits; 1 kick + 2 interrupts.
    for (const pattern of ["frame-64", "frame-1514"]) {
      const p = get("kvm-virtio", pattern).perRequest;
      expect(p).toMatchObject({ hypercalls: 0, grantOps: 0, vmExits: 7, notifications: 3 });
    }
  });

  it("data checksums are identical across blkback modes (and per pattern distinct)", () => {
    for (const pattern of [...cfg.disk, ...cfg.nic].map((p) => p.name)) {
      const sums = new Set(
        ["xen-split-map", "xen-split-copy", "xen-split-persistent", "kvm-virtio"].map(
          (m) => get(m, pattern).checksum,
        ),
      );
      expect(sums.size).toBe(1);
    }
    expect(new Set(results.map((r) => r.checksum)).size).toBe(cfg.disk.length + cfg.nic.length);
  });

  it("estimated cycles are the counts × the cited costs; persistent < copy < map for 4 KiB", () => {
    const p = get("xen-split-map", "4k-random-read");
    expect(p.cyclesPerRequest).toBe(
      4 * SPLIT_IO_COSTS.hypercall +
        2 * SPLIT_IO_COSTS.grantMapOp +
        2 * SPLIT_IO_COSTS.eventDelivery,
    );
    const c = (m: string) => get(`xen-split-${m}`, "4k-random-read").cyclesPerRequest;
    expect(c("persistent")).toBeLessThan(c("copy"));
    expect(c("copy")).toBeLessThan(c("map"));
    expect(
      splitIoCycles(
        { ...SPLIT_IO_COSTS, vmExit: 10 },
        { hypercalls: 0, notifications: 0, vmExits: 3, cpuCopyBytes: 0 },
        { grantMapOps: 0, grantCopies: 0, grantCopyBytes: 0 },
      ),
    ).toBe(30);
  });

  it("the report table has a row per case", () => {
    const t = splitIoTable(results).split("\n");
    expect(t).toHaveLength(4 + results.length);
    expect(t.at(-1)).toMatch(/^\| kvm-virtio \| frame-1514 \| 4 \| 0 \| 0 \| 0 \| 3 \| 7 \| 2 \|/);
    expect(t[4]).toBe("| xen-split-map | 4k-random-read | 4 | 4 | 2 | 2 | 2 | 0 | 0 | 0 | 13000 |");
  });

  it("the same seed gives byte-identical results; another seed other data", async () => {
    const one = resolveSplitIoConfig({
      requests: 3,
      warmup: 1,
      modes: ["copy"],
      disk: [{ name: "r", op: "read", bytes: 4096, access: "random" }],
      nic: [{ name: "f", frameBytes: 100 }],
    });
    const a = JSON.stringify(await runSplitIo(one));
    const b = JSON.stringify(await runSplitIo(one));
    expect(a).toBe(b);
    const other = JSON.stringify(await runSplitIo({ ...one, seed: 2 }));
    expect(other).not.toBe(a);
    expect(JSON.parse(other)[0].perRequest).toEqual(JSON.parse(a)[0].perRequest);
  }, 60_000);

  it("the io section's schema takes the split cases as io.split", () => {
    expect(ioConfigSchema.parse({ split: { modes: ["copy"], requests: 2 } }).split).toEqual({
      modes: ["copy"],
      requests: 2,
    });
    expect(() => ioConfigSchema.parse({ split: { modes: ["flip"] } })).toThrow();
  });

  it("configuration mistakes throw STUDY_BAD_CONFIG saying what to fix", () => {
    expect(() => resolveSplitIoConfig({ modes: ["flip"] })).toThrow(/modes/);
    expect(() => resolveSplitIoConfig({ requests: 0 })).toThrow(
      expect.objectContaining({ code: "STUDY_BAD_CONFIG" }),
    );
    expect(() =>
      resolveSplitIoConfig({
        disk: [{ name: "x", op: "read", bytes: 4096, access: "random" }],
        nic: [{ name: "x", frameBytes: 64 }],
      }),
    ).toThrow(/two patterns are named "x"/);
    expect(() =>
      resolveSplitIoConfig({
        diskBytes: 1024 * KiB,
        disk: [{ name: "big", op: "read", bytes: 1024 * KiB + 512, access: "random" }],
      }),
    ).toThrow(/bytes/);
    expect(() =>
      resolveSplitIoConfig({
        diskBytes: 1024 * KiB,
        disk: [{ name: "big", op: "read", bytes: 1024 * KiB, access: "random" }],
      }),
    ).not.toThrow();
    expect(() => resolveSplitIoConfig({ bogus: 1 })).toThrow(/bogus|Unrecognized/);
  });
});
