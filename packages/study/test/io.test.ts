// The I/O workload: per-request counts are exact and each one is explained by what the
// driver, the device and the platform do; every platform reads, writes and receives the same
// bytes; the same seed gives byte-identical results; every failure is a typed error.
import { HyperlabError } from "@hyperlab/core";
import { swiotlbOf } from "@hyperlab/swiotlb-dma";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bootIoHost,
  DEFAULT_IO_COSTS,
  estimateIoCycles,
  IO_COST_NAMES,
  IO_COUNT_NAMES,
  type IoConfig,
  type IoConfigInput,
  type IoPlatformName,
  type IoRow,
  ioConfigSchema,
  ioPlatformByName,
  ioSummaryTable,
  resolveIoConfig,
  runIoOnHost,
  runIoPlatform,
  runIoStudy,
} from "../src/io/index";

const LONG = process.env.HYPERLAB_LONG === "1";

function config(input: IoConfigInput): IoConfig {
  return resolveIoConfig(ioConfigSchema.parse(input), (m) => {
    throw new Error(m);
  });
}

function row(platform: IoPlatformName, c: IoConfig, pattern: string, seed = 1): IoRow {
  const run = runIoPlatform(platform, c, seed);
  return run.rows.find((r) => r.pattern === pattern) as IoRow;
}

/** The per-request counts of a row, without the units (requests, bytes). */
function events(r: IoRow) {
  const { requests: _r, bytes: _b, ...rest } = r.perRequest;
  return rest;
}

const none = {
  interrupts: 0,
  upcalls: 0,
  eoiHypercalls: 0,
  otherHypercalls: 0,
  bounces: 0,
  bytesBounced: 0,
  exchanges: 0,
  mmioAccesses: 0,
  mmioExits: 0,
  injections: 0,
  eoiExits: 0,
};

const read4k = { name: "r", op: "read", bytes: 4096, access: "random" } as const;

describe("disk requests: exact counts per request", () => {
  // The driver's MMIO per request: TAIL and DOORBELL stores to submit; the handler's
  // INT_STATUS load, INT_ACK store and HEAD load to reap. Five, on every platform.
  it("native, level INTx: one interrupt, five MMIO accesses, nothing else", () => {
    const r = row("native", config({ requests: 8, disk: [read4k], nic: [] }), "r");
    expect(r.counts.requests).toBe(8);
    expect(r.counts.bytes).toBe(8 * 4096);
    expect(events(r)).toEqual({ ...none, interrupts: 1, mmioAccesses: 5 });
  });

  it("Xen dom0, level INTx: the interrupt is one upcall and one PHYSDEVOP_eoi, no other hypercall", () => {
    const r = row("xen-dom0", config({ requests: 8, disk: [read4k], nic: [] }), "r");
    expect(events(r)).toEqual({
      ...none,
      interrupts: 1,
      upcalls: 1,
      eoiHypercalls: 1,
      mmioAccesses: 5,
    });
  });

  it("Xen dom0, MSI: still one PHYSDEVOP_eoi (dom0 has no EOI map page, so Xen 4.17 says needs_eoi for every pirq)", () => {
    const c = config({ requests: 4, disk: [read4k], nic: [], diskIrq: "msi" });
    expect(events(row("xen-dom0", c, "r"))).toEqual({
      ...none,
      interrupts: 1,
      upcalls: 1,
      eoiHypercalls: 1,
      mmioAccesses: 5,
    });
    expect(events(row("native", c, "r"))).toEqual({ ...none, interrupts: 1, mmioAccesses: 5 });
    // In the KVM-style guest the MSI goes to the VM's virtual LAPIC: injected, and its EOI is
    // virtualized (APICv), so it does not exit.
    expect(events(row("kvm-guest", c, "r"))).toEqual({
      ...none,
      interrupts: 1,
      mmioAccesses: 5,
      mmioExits: 5,
      injections: 1,
    });
  });

  it("KVM-style guest, level INTx: every MMIO access exits to the device model, one injection, one EOI exit, no hypercall", () => {
    const r = row("kvm-guest", config({ requests: 8, disk: [read4k], nic: [] }), "r");
    expect(events(r)).toEqual({
      ...none,
      interrupts: 1,
      mmioAccesses: 5,
      mmioExits: 5,
      injections: 1,
      eoiExits: 1,
    });
  });

  it("a buffer straddling two pages bounces under Xen exactly when their machine frames are not adjacent", () => {
    const c = config({
      requests: 4,
      disk: [{ name: "s", op: "read", bytes: 1024, access: "random", bufferOffset: 3584 }],
      nic: [],
    });
    const inbox: Uint8Array[] = [];
    const host = bootIoHost("xen-dom0", c, 5, inbox);
    const run = runIoOnHost(host, inbox, c, 5);
    const p2m = host.k.xen?.p2m as Float64Array;
    const scattered = p2m[run.bufferPfn + 1] !== p2m[run.bufferPfn] + 1;
    const r = run.rows[0];
    expect(r.perRequest.bounces).toBe(scattered ? 1 : 0);
    // A read copies the slot back to the buffer once: 1024 bytes.
    expect(r.perRequest.bytesBounced).toBe(scattered ? 1024 : 0);
    // Natively, physical addresses are the bus addresses: never a bounce.
    expect(row("native", c, "s", 5).perRequest.bounces).toBe(0);
  });

  it("64 KiB sequential requests bounce under Xen when their 16 pages are not machine-contiguous; a write copies in, a read out", () => {
    const c = config({
      requests: 4,
      disk: [
        { name: "w", op: "write", bytes: 65536, access: "sequential" },
        { name: "r", op: "read", bytes: 65536, access: "sequential" },
      ],
      nic: [],
    });
    const inbox: Uint8Array[] = [];
    const host = bootIoHost("xen-dom0", c, 1, inbox);
    const run = runIoOnHost(host, inbox, c, 1);
    const p2m = host.k.xen?.p2m as Float64Array;
    let contiguous = true;
    for (let i = 1; i < 16; i++)
      if (p2m[run.bufferPfn + i] !== p2m[run.bufferPfn] + i) contiguous = false;
    expect(contiguous).toBe(false); // the PV domain builder scatters dom0's frames
    for (const r of run.rows) {
      expect(r.perRequest.bounces).toBe(1);
      expect(r.perRequest.bytesBounced).toBe(65536);
      expect(r.perRequest.exchanges).toBe(0); // the pool was made contiguous at boot
    }
    expect(row("native", c, "w").perRequest.bounces).toBe(0);
  });

  it("XENMEM_exchange runs at boot only (bounce pool segments, coherent rings), none per request", () => {
    const c = config({ requests: 2 });
    const inbox: Uint8Array[] = [];
    const host = bootIoHost("xen-dom0", c, 1, inbox);
    const run = runIoOnHost(host, inbox, c, 1);
    expect(run.setup.exchanges).toBeGreaterThan(0);
    expect(run.setup.exchanges).toBe(swiotlbOf(host.k).counts.exchanges);
    for (const r of run.rows) expect(r.counts.exchanges).toBe(0);
    expect(runIoPlatform("native", c, 1).setup.exchanges).toBe(0);
  });
});

describe("NIC frames: exact counts per frame", () => {
  const c = config({ requests: 6, disk: [], nic: [{ name: "f", frameBytes: 1514 }] });

  // Natively the TX completion's MSI runs the handler inside the TX_TAIL store (it reclaims:
  // INT_STATUS, INT_ACK, TX_HEAD), then the looped-back frame's MSI runs it again (INT_STATUS,
  // INT_ACK, RX_HEAD, RX_TAIL): two interrupts, 1 + 3 + 4 MMIO accesses.
  it("native, MSI: two interrupts per frame (TX done, then RX), eight MMIO accesses", () => {
    expect(events(row("native", c, "f"))).toEqual({ ...none, interrupts: 2, mmioAccesses: 8 });
  });

  // The KVM-style guest sees what bare metal sees (two MSIs, eight accesses), each access an
  // exit and each MSI an injection into its virtual LAPIC, whose EOI does not exit.
  it("KVM-style guest, MSI: two injected interrupts per frame, eight MMIO exits, no EOI exit", () => {
    expect(events(row("kvm-guest", c, "f"))).toEqual({
      ...none,
      interrupts: 2,
      mmioAccesses: 8,
      mmioExits: 8,
      injections: 2,
    });
  });

  // Under Xen both messages arrive while the first event is still pending: they merge into
  // one event, one upcall, one handler run that sees TX and RX in INT_STATUS.
  it("Xen dom0, MSI: the two messages merge into one pending event: one interrupt, one upcall, one EOI, six MMIO", () => {
    expect(events(row("xen-dom0", c, "f"))).toEqual({
      ...none,
      interrupts: 1,
      upcalls: 1,
      eoiHypercalls: 1,
      mmioAccesses: 6,
    });
  });
});

describe("the same data on every platform", () => {
  it("reads, writes and frames checksum the same on native, Xen dom0 and the KVM-style guest, pattern by pattern", () => {
    const res = runIoStudy(config({ requests: 6 }), 3);
    expect(res.runs.map((r) => r.platform)).toEqual(["native", "xen-dom0", "kvm-guest"]);
    expect(res.checksumsAgree).toBe(true);
    const [a, b, k] = res.runs;
    expect(a.rows.map((r) => r.checksum)).toEqual(b.rows.map((r) => r.checksum));
    expect(k.rows.map((r) => r.checksum)).toEqual(a.rows.map((r) => r.checksum));
    // The checksum covers data: another seed moves other bytes.
    const other = runIoStudy(config({ requests: 6, platforms: ["native"] }), 4);
    expect(other.runs[0].checksum).not.toBe(a.checksum);
  });

  it("property: any pattern (size, offset, direction) moves the same bytes on every platform, and Xen bounces exactly the buffers whose pages are not machine-contiguous", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 0, max: 4095 }),
        fc.constantFrom("read" as const, "write" as const),
        fc.constantFrom("random" as const, "sequential" as const),
        fc.integer({ min: 60, max: 1514 }),
        fc.integer({ min: 1, max: 1000 }),
        (sectors, bufferOffset, op, access, frameBytes, seed) => {
          const c = config({
            requests: 3,
            disk: [{ name: "d", op, bytes: sectors * 512, access, bufferOffset }],
            nic: [{ name: "n", frameBytes }],
          });
          const native = runIoPlatform("native", c, seed);
          expect(runIoPlatform("kvm-guest", c, seed).checksum).toBe(native.checksum);
          const inbox: Uint8Array[] = [];
          const host = bootIoHost("xen-dom0", c, seed, inbox);
          const xen = runIoOnHost(host, inbox, c, seed);
          expect(xen.checksum).toBe(native.checksum);
          const p2m = host.k.xen?.p2m as Float64Array;
          const first = xen.bufferPfn + Math.floor(bufferOffset / 4096);
          const pages = Math.ceil(((bufferOffset % 4096) + sectors * 512) / 4096);
          let contiguous = true;
          for (let i = 1; i < pages; i++) if (p2m[first + i] !== p2m[first] + i) contiguous = false;
          const d = xen.rows[0];
          expect(d.perRequest.bounces).toBe(contiguous ? 0 : 1);
          expect(d.perRequest.bytesBounced).toBe(contiguous ? 0 : sectors * 512);
          expect(native.rows[0].perRequest.bounces).toBe(0);
        },
      ),
      { seed: 12, numRuns: LONG ? 60 : 6 },
    );
  });
});

describe("determinism and the results", () => {
  it("the same seed gives byte-identical results", () => {
    const c = config({ requests: 4 });
    expect(JSON.stringify(runIoStudy(c, 9))).toBe(JSON.stringify(runIoStudy(c, 9)));
  });

  it("estimated cycles are counts times the cost table, and io.costs overrides them", () => {
    const c = config({ requests: 4, disk: [read4k], nic: [] });
    const r = row("xen-dom0", c, "r");
    expect(r.cyclesPerRequest * 4).toBe(estimateIoCycles(r.counts, DEFAULT_IO_COSTS));
    const cheap = config({ requests: 4, disk: [read4k], nic: [], costs: { upcalls: 0 } });
    expect(row("xen-dom0", cheap, "r").cyclesPerRequest).toBe(
      r.cyclesPerRequest - DEFAULT_IO_COSTS.upcalls,
    );
    for (const n of IO_COST_NAMES) expect(IO_COUNT_NAMES).toContain(n);
  });

  it("the results name a unit for every count, leave nothing pending and print a per-request table", () => {
    const res = runIoStudy(config({ requests: 2 }), 1);
    for (const n of IO_COUNT_NAMES) expect(res.units[n]).toMatch(/\w/);
    expect(res.pending).toEqual([]);
    const table = ioSummaryTable(res);
    expect(table).toContain("EOI hc/req");
    expect(table).toMatch(/4k-random-read\s+xen-dom0\s+1\s+1\s+1\s/);
    expect(table).toMatch(
      /4k-random-read\s+kvm-guest\s+1\s+0\s+0\s+0\s+0\s+0\s+0\s+5\s+5\s+1\s+1\s/,
    );
    expect(table).not.toContain("pending");
  });
});

describe("mistakes and failures", () => {
  const fails = (input: IoConfigInput) => () => config(input);

  it("a configuration the schema refuses, and ones resolveIoConfig refuses with what to do", () => {
    expect(ioConfigSchema.safeParse({ disk: [{ ...read4k, bytes: 1000 }] }).success).toBe(false);
    expect(ioConfigSchema.safeParse({ nic: [{ name: "x", frameBytes: 20 }] }).success).toBe(false);
    expect(ioConfigSchema.safeParse({ platforms: ["vmware"] }).success).toBe(false);
    expect(ioConfigSchema.safeParse({ costs: { upcalls: -1 } }).success).toBe(false);
    expect(fails({ disk: [read4k, read4k] })).toThrow(/two patterns are named "r"/);
    expect(fails({ disk: [{ ...read4k, bytes: 128 * 1024 }], diskBytes: 64 * 1024 })).toThrow(
      /Raise io.diskBytes/,
    );
  });

  it("an unknown platform is a STUDY_BAD_CONFIG error naming the choices", () => {
    expect(() => ioPlatformByName("vmware")).toThrow(/Choose from: native, xen-dom0, kvm-guest/);
    try {
      ioPlatformByName("vmware");
    } catch (e) {
      expect((e as HyperlabError<string>).code).toBe("STUDY_BAD_CONFIG");
    }
  });

  it("a request that never completes, or a frame that never comes back, fails the run with STUDY_IO_FAILED", () => {
    for (const c of [
      config({ requests: 1, disk: [read4k], nic: [] }),
      config({ requests: 1, disk: [], nic: [{ name: "f", frameBytes: 64 }] }),
    ]) {
      const inbox: Uint8Array[] = [];
      const host = bootIoHost("xen-dom0", c, 1, inbox);
      // A hypervisor that never delivers the event: the completion never runs.
      const stuck = { ...host, deliver() {} };
      let err: unknown;
      try {
        runIoOnHost(stuck, inbox, c, 1);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HyperlabError);
      expect((err as HyperlabError<string>).code).toBe("STUDY_IO_FAILED");
      expect((err as Error).message).toMatch(/(completed with status -1|came back 0 times)/);
    }
  });

  it("a frame that comes back changed fails the run", () => {
    const c = config({ requests: 1, disk: [], nic: [{ name: "f", frameBytes: 64 }] });
    const inbox: Uint8Array[] = [];
    const host = bootIoHost("native", c, 1, inbox);
    const corrupt = {
      ...host,
      deliver() {
        for (const f of inbox) f[20] ^= 1;
      },
    };
    expect(() => runIoOnHost(corrupt, inbox, c, 1)).toThrow(/came back changed/);
  });
});
