// Invariants of the formatters under hostile values (a guest cannot choose its name, but it
// drives its CPU time, state and console; a broken host can send anything): nothing throws,
// every row is one line, columns stay where xl puts them while values fit their widths, and
// CPU masks print as print_bitmap would (checked by reading the ranges back).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { topTable } from "../../src/top/format";
import { listHeader, listRow, stateLetters } from "../../src/xl/format/list";
import { cpuRanges, vcpuRow } from "../../src/xl/format/vcpu";
import { domInfo } from "../../src/xl/memory-host";

const RUNS = process.env.HYPERLAB_LONG === "1" ? 20_000 : 500;
const opts = { seed: 0x26, numRuns: RUNS };

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: false }),
  fc.constantFrom(0, -1, 2 ** 32, 2 ** 53 - 1, Number.MAX_SAFE_INTEGER),
);

const dom = fc.record({
  domid: fc.nat(0x7fef),
  running: fc.boolean(),
  blocked: fc.boolean(),
  paused: fc.boolean(),
  shutdown: fc.boolean(),
  dying: fc.boolean(),
  shutdownReason: fc.integer({ min: -5, max: 10 }),
  // Values that fit xl's widths (%5lu MiB, %8.1f s); wider ones push the row right, as in C.
  currentMemkb: fc.nat({ max: 99_999 * 1024 }),
  cpuTime: fc.nat({ max: 999_999 * 1e9 }),
  vcpuOnline: fc.nat(128),
});

/** "0-3,6" / "all" / "none" back to a set, for `n` CPUs. */
function readRanges(s: string, n: number): number[] {
  if (s === "none") return [];
  if (s === "all") return Array.from({ length: n }, (_, i) => i);
  const out: number[] = [];
  for (const part of s.split(",")) {
    const [a, b] = part.split("-").map(Number);
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

describe("list rows", () => {
  it("keep xl's columns for any state and time while the name fits 40 columns", () => {
    fc.assert(
      fc.property(
        dom,
        fc.string({ minLength: 0, maxLength: 40 }).filter((s) => !/[\n\u0080-\uffff]/.test(s)),
        (d, name) => {
          const row = listRow(domInfo(d.domid, d), name);
          expect(row.endsWith("\n")).toBe(true);
          expect(row.slice(0, -1)).not.toContain("\n");
          expect(row.slice(0, 40).trimEnd()).toBe(name.trimEnd());
          expect(row.slice(40, 46)).toBe(String(d.domid).padStart(6));
          expect(row.slice(63, 69)).toBe(stateLetters(domInfo(d.domid, d)));
          expect(stateLetters(domInfo(d.domid, d))).toMatch(/^[r-][b-][p-][s-][-rscwS?][d-]$/);
          expect(row.length).toBeGreaterThanOrEqual(80);
        },
      ),
      opts,
    );
  });
  it("the fifth letter is '-' unless shut down, then the reason's letter or '?'", () => {
    fc.assert(
      fc.property(dom, (d) => {
        const l = stateLetters(domInfo(d.domid, d))[4];
        if (!d.shutdown) expect(l).toBe("-");
        else expect(l).toBe("-rscwS"[d.shutdownReason] ?? "?");
      }),
      opts,
    );
  });
  it("never throws on hostile numbers", () => {
    fc.assert(
      fc.property(hostileNumber, hostileNumber, hostileNumber, (a, b, c) => {
        const row = listRow(
          domInfo(0, { currentMemkb: a, cpuTime: Math.abs(b), vcpuOnline: c }),
          "x",
          {
            verbose: true,
            context: true,
          },
        );
        expect(typeof row).toBe("string");
      }),
      opts,
    );
    // "VCPUs\tState\tTime(s)" and "Reason-Code\tSecurity Label": three tabs.
    expect(listHeader({ verbose: true }).split("\t")).toHaveLength(4);
  });
});

describe("cpuRanges (print_bitmap)", () => {
  it("reads back to the same set of CPUs, 'all' only for a full mask", () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 300 })
          .chain((n) => fc.tuple(fc.constant(n), fc.uniqueArray(fc.nat(n + 4)))),
        ([n, cpus]) => {
          const s = cpuRanges(cpus, n);
          const want = [...new Set(cpus.filter((c) => c < n))].sort((x, y) => x - y);
          expect(readRanges(s, n)).toEqual(want);
          if (s === "all") expect(want).toHaveLength(n);
          if (want.length === n) expect(s).toBe("all");
          expect(s).toMatch(/^(all|none|\d+(-\d+)?(,\d+(-\d+)?)*)$/);
        },
      ),
      opts,
    );
  });
  it("vcpu rows keep the state column for offline and online vCPUs", () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        fc.nat(255),
        (online, running, blocked, cpu) => {
          const row = vcpuRow(
            "d",
            1,
            {
              vcpuid: 0,
              cpu,
              online,
              running,
              blocked,
              vcpuTime: 0,
              cpumap: [0],
              cpumapSoft: [],
            },
            4,
          );
          expect(row.slice(44, 50)).toBe(online ? `${String(cpu).padStart(5)} ` : "    - ");
          expect(row.slice(50, 55)).toBe(
            online ? `  ${running ? "r" : "-"}${blocked ? "b" : "-"}-` : "  --p",
          );
          expect(row.endsWith("0 / none\n")).toBe(true);
        },
      ),
      opts,
    );
  });
});

describe("top's table", () => {
  it("has one header and one row per domain, all of one width when counters fit", () => {
    fc.assert(
      fc.property(fc.array(dom, { minLength: 1, maxLength: 8 }), (ds) => {
        const domains = ds.map((d, i) => ({
          domid: i,
          name: `d${i}`,
          running: d.running,
          blocked: d.blocked,
          paused: d.paused,
          shutdown: d.shutdown,
          dying: d.dying,
          shutdownReason: d.shutdownReason,
          cpuNs: d.cpuTime % 1e15,
          curMemBytes: (d.currentMemkb % 1e9) * 1024,
          maxMemBytes: undefined,
          vcpus: d.vcpuOnline,
          ssid: 0,
          nets: [],
          vbds: [],
        }));
        const t = topTable(
          {
            xenVersion: "4.17.0",
            totMemBytes: 2 ** 40,
            freeMemBytes: 0,
            numCpus: 8,
            cpuHz: 1e9,
            domains,
          },
          undefined,
          1,
        );
        const lines = t.split("\n").slice(0, -1);
        expect(lines).toHaveLength(ds.length + 1);
        for (const l of lines) expect(l.length).toBe(lines[0].length);
      }),
      opts,
    );
  });
});
