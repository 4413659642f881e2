// hyperlab top: xentop's batch output (tools/xentop/xentop.c) worked out by hand for a
// small host, CPU(%) between two samples on an injected clock, name sorting, widths that
// grow with the counters, -f and -r, and the option errors.
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../src/main";
import { setTopClock } from "../src/top/command";
import { topState, topSummary, topTable } from "../src/top/format";
import { sampleHost } from "../src/top/sample";
import { domInfo, MemoryXlHost } from "../src/xl/memory-host";
import { LIBXL_SHUTDOWN_REASON } from "../src/xl/types";

function host(): MemoryXlHost {
  const h = new MemoryXlHost();
  const base = { vcpus: [], weight: 256, cap: 0, disks: [], nics: [] };
  h.add({
    ...base,
    name: "Domain-0",
    info: domInfo(0, {
      running: true,
      currentMemkb: 1048576,
      maxMemkb: 1048576,
      cpuTime: 12_345_000_000,
      vcpuMaxId: 3,
      vcpuOnline: 4,
    }),
  });
  h.add({
    ...base,
    name: "alpha-guest-long-name",
    info: domInfo(4, {
      blocked: true,
      currentMemkb: 262144,
      maxMemkb: 524288,
      cpuTime: 999_999_999,
      vcpuMaxId: 0,
    }),
    stats: {
      nets: [{ rxBytes: 4096, txBytes: 2048 }],
      vbds: [{ ooReqs: 1, rdReqs: 20, wrReqs: 30, rdSects: 400, wrSects: 500 }],
    },
  });
  return h;
}

const HEADER =
  "      NAME  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) MAXMEM(%) VCPUS NETS NETTX(k) NETRX(k) VBDS   VBD_OO   VBD_RD   VBD_WR  VBD_RSECT  VBD_WSECT SSID";

let clockUs = 0;
afterEach(() => setTopClock(undefined));

async function top(h: MemoryXlHost, ...args: string[]) {
  let out = "";
  let err = "";
  clockUs = 1_000_000;
  setTopClock({
    nowUs: () => clockUs,
    timeOfDay: () => "12:00:00",
    sleep: async (ms) => {
      clockUs += ms * 1000;
      // the host moves on: dom0 burns 1.5 s of CPU per 3 s interval (50 %)
      const d = h.domains.get(0);
      if (d) d.info.cpuTime += 1_500_000_000;
    },
  });
  const code = await runCli(["top", ...args], {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    connectHost: async () => h,
  });
  return { out, err, code };
}

describe("hyperlab top -b", () => {
  it("prints xentop's columns, sorted by name case-blind, once per iteration", async () => {
    const r = await top(host(), "-b", "-i", "2");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    expect(lines).toEqual([
      HEADER,
      "alpha-gues --b---          0    0.0     262144    1.6     524288       3.1     1    1        2        4    1        1       20       30        400        500    0",
      "  Domain-0 -----r         12    0.0    1048576    6.2    1048576       6.2     4    0        0        0    0        0        0        0          0          0    0",
      HEADER,
      "alpha-gues --b---          0    0.0     262144    1.6     524288       3.1     1    1        2        4    1        1       20       30        400        500    0",
      "  Domain-0 -----r         13   50.0    1048576    6.2    1048576       6.2     4    0        0        0    0        0        0        0          0          0    0",
      "",
    ]);
  });

  it("-f shows whole names and -r repeats the header", async () => {
    const r = await top(host(), "--batch", "--iterations", "1", "-f", "-r");
    const lines = r.out.split("\n");
    expect(lines[0].startsWith(`${" ".repeat(17)}NAME  STATE`)).toBe(true);
    expect(lines[1].startsWith("alpha-guest-long-name --b---")).toBe(true);
    expect(lines[2]).toBe(lines[0]);
    expect(lines[3].startsWith("             Domain-0 -----r")).toBe(true);
  });

  it("widens a counter column when its value needs more digits", async () => {
    const h = host();
    const d = h.domains.get(4);
    if (d?.stats) d.stats.vbds[0].rdReqs = 123_456_789;
    const r = await top(h, "-b", "-i", "1");
    const [head, row] = r.out.split("\n");
    expect(head).toContain("    VBD_RD ");
    expect(row).toContain(" 123456789 ");
  });

  it("shows '-' for block counters when every device failed, and counts devices without stats", async () => {
    const h = host();
    const d = h.domains.get(4);
    if (d?.stats) d.stats.vbds[0].error = true;
    const r = await top(h, "-b", "-i", "1");
    expect(r.out.split("\n")[1]).toContain(
      "    1        -        -        -          -          -    0",
    );
    const bare = new MemoryXlHost();
    bare.add({
      name: "x",
      info: domInfo(1, { currentMemkb: 4, maxMemkb: 4 }),
      vcpus: [],
      weight: 256,
      cap: 0,
      disks: [
        {
          backend: "b",
          backendId: 0,
          frontend: "f",
          frontendId: 1,
          devid: 1,
          state: 4,
          evtch: 1,
          rref: 1,
        },
      ],
      nics: [],
    });
    const s = await sampleHost(bindAll(bare));
    expect(s.domains[0].vbds).toHaveLength(1);
    expect(s.domains[0].nets).toHaveLength(0);
  });

  it("refuses a bad iteration count or delay, naming the flag", async () => {
    expect(await top(host(), "-b", "-i", "0")).toMatchObject({ code: 2, out: "" });
    const r = await top(host(), "-b", "--delay", "x");
    expect(r.code).toBe(2);
    expect(r.err).toBe("hyperlab top: --delay must be a whole number of at least 0; got 'x'\n");
    expect((await top(host(), "-b", "-i")).err).toBe(
      "hyperlab top: -i needs a number of refreshes (e.g. -i 5). Run 'hyperlab top --help' for the options.\n",
    );
  });
});

/** The host's methods bound, without domainStats (a host that has no counters). */
function bindAll(h: MemoryXlHost) {
  return {
    listDomains: h.listDomains.bind(h),
    domainInfo: h.domainInfo.bind(h),
    domid: h.domid.bind(h),
    domname: h.domname.bind(h),
    vcpuList: h.vcpuList.bind(h),
    physInfo: h.physInfo.bind(h),
    cpupools: h.cpupools.bind(h),
    domainSchedParams: h.domainSchedParams.bind(h),
    setDomainSchedParams: h.setDomainSchedParams.bind(h),
    schedCreditParams: h.schedCreditParams.bind(h),
    setSchedCreditParams: h.setSchedCreditParams.bind(h),
    schedCredit2Params: h.schedCredit2Params.bind(h),
    setSchedCredit2Params: h.setSchedCredit2Params.bind(h),
    blockList: h.blockList.bind(h),
    networkList: h.networkList.bind(h),
    domainConfig: h.domainConfig.bind(h),
    dmesg: h.dmesg.bind(h),
    domainStats: undefined,
  };
}

describe("xentop's summary and states", () => {
  it("counts states as xentop does and prints memory and CPUs", async () => {
    const s = await sampleHost(host());
    expect(topSummary(s, "12:00:00")).toBe(
      "xentop - 12:00:00   Xen 4.17.0\n" +
        "2 domains: 1 running, 1 blocked, 0 paused, 0 crashed, 0 dying, 0 shutdown \n" +
        "Mem: 16777216k total, 8388608k used, 8388608k free    CPUs: 8 @ 2000MHz\n",
    );
  });
  it("state letters in xentop's order d s b c p r", () => {
    const d = {
      domid: 1,
      name: "x",
      running: true,
      blocked: false,
      paused: true,
      shutdown: true,
      dying: true,
      shutdownReason: LIBXL_SHUTDOWN_REASON.CRASH,
      cpuNs: 0,
      curMemBytes: 0,
      maxMemBytes: undefined,
      vcpus: 1,
      ssid: 0,
      nets: [],
      vbds: [],
    };
    expect(topState(d)).toBe("ds-cpr");
    const t = topTable(
      {
        xenVersion: "4.17.0",
        totMemBytes: 1024,
        freeMemBytes: 0,
        numCpus: 1,
        cpuHz: 1e9,
        domains: [d],
      },
      undefined,
      1,
    );
    expect(t.split("\n")[1]).toContain("  no limit       n/a");
  });
});
