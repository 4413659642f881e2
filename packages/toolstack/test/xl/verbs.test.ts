// The verbs the xl shim cannot answer (block-list, network-list, dmesg, list -l, the setting
// forms of sched-credit/credit2), checked against outputs worked out by hand from Xen 4.17's
// tools/xl sources; and reaching the host (none running, one that cannot be reached).
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/main";
import { setXlHostConnector } from "../../src/xl/cmd/common";
import { defaultPhysInfo, domInfo, MemoryXlHost } from "../../src/xl/memory-host";
import { LIBXL_SCHEDULER, type XlHost } from "../../src/xl/types";

async function run(host: XlHost | undefined, ...args: string[]) {
  let out = "";
  let err = "";
  const code = await runCli(args, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    connectHost: host === undefined ? undefined : async () => host,
  });
  return { out, err, code };
}

function twoDomains(): MemoryXlHost {
  const h = new MemoryXlHost();
  h.add({
    name: "Domain-0",
    info: domInfo(0, {
      running: true,
      currentMemkb: 1048576,
      maxMemkb: 1048576,
      vcpuOnline: 2,
      vcpuMaxId: 1,
    }),
    vcpus: [],
    weight: 256,
    cap: 0,
    disks: [],
    nics: [],
  });
  h.add({
    name: "guest",
    info: domInfo(3, {
      blocked: true,
      currentMemkb: 524288,
      maxMemkb: 524288,
      vcpuOnline: 2,
      vcpuMaxId: 1,
    }),
    vcpus: [],
    weight: 512,
    cap: 50,
    disks: [
      {
        backend: "/local/domain/0/backend/vbd/3/51712",
        backendId: 0,
        frontend: "/local/domain/3/device/vbd/51712",
        frontendId: 3,
        devid: 51712,
        state: 4,
        evtch: 9,
        rref: 8,
      },
      {
        backend: "/local/domain/0/backend/qdisk/3/51728",
        backendId: 0,
        frontend: "/local/domain/3/device/vbd/51728",
        frontendId: 3,
        devid: 51728,
        state: 1,
        evtch: -1,
        rref: -1,
      },
    ],
    nics: [
      {
        backend: "/local/domain/0/backend/vif/3/0",
        backendId: 0,
        frontend: "/local/domain/3/device/vif/0",
        frontendId: 3,
        devid: 0,
        state: 4,
        evtch: 10,
        rrefTx: 768,
        rrefRx: 769,
        mac: "00:16:3e:5a:01:02",
      },
    ],
    config: { obj: [["c_info", { obj: [["name", "guest"]] }]] },
  });
  return h;
}

describe('block-list (xl_block.c: "%-5d %-3d %-6d %-5d %-6d %-8d %-30s")', () => {
  it("prints the header and a row per disk, by name or id", async () => {
    const h = twoDomains();
    const r = await run(h, "block-list", "guest", "0", "3");
    const header = "Vdev  BE  handle state evt-ch ring-ref BE-path                       \n";
    const row1 = "51712 0   3      4     9      8        /local/domain/0/backend/vbd/3/51712\n";
    const row2 = "51728 0   3      1     -1     -1       /local/domain/0/backend/qdisk/3/51728\n";
    expect(r).toEqual({ out: header + row1 + row2 + row1 + row2, err: "", code: 0 });
  });
  it("skips an unknown domain with xl's message and still exits 0", async () => {
    const r = await run(twoDomains(), "block-list", "nosuch", "guest");
    expect(r.err).toBe("nosuch is an invalid domain identifier\n");
    expect(r.code).toBe(0);
    expect(r.out.split("\n")).toHaveLength(4);
  });
  it("pads a short backend path to 30 columns", async () => {
    const h = twoDomains();
    const d = h.domains.get(3);
    if (d) d.disks = [{ ...d.disks[0], backend: "/x" }];
    const r = await run(h, "block-list", "3");
    expect(r.out.split("\n")[1]).toBe(`51712 0   3      4     9      8        /x${" ".repeat(28)}`);
  });
  it("needs a domain", async () => {
    const r = await run(twoDomains(), "block-list");
    expect(r.err).toBe("'xl block-list' requires at least 1 argument.\n\n");
    expect(r.out).toContain("Usage: xl [-vtT] block-list <Domain(s)>");
    expect(r.code).toBe(2);
  });
});

describe("network-list (xl_nic.c)", () => {
  it("prints xl's header and the MAC glued to the handle column", async () => {
    const r = await run(twoDomains(), "network-list", "guest", "Domain-0");
    expect(r.out).toBe(
      "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path                       \n" +
        "0   0  00:16:3e:5a:01:02     0     4     10   768/769         /local/domain/0/backend/vif/3/0\n",
    );
    expect(r.code).toBe(0);
  });
  it("stops at an unknown domain with find_domain's message, exit 1", async () => {
    const r = await run(twoDomains(), "network-list", "guest", "nosuch", "guest");
    expect(r.err).toBe("nosuch is an invalid domain identifier (rc=-6)\n");
    expect(r.out.split("\n")).toHaveLength(3); // header, guest's nic, ""
    expect(r.code).toBe(1);
  });
  it("lists nothing for a domain that does not exist but is named by number", async () => {
    const r = await run(twoDomains(), "network-list", "77");
    expect(r.out.split("\n")).toHaveLength(2);
    expect(r.code).toBe(0);
  });
});

describe("dmesg (xl_info.c)", () => {
  it("prints the console ring as is; -c clears it after reading", async () => {
    const h = twoDomains();
    h.console = "(XEN) Xen version 4.17\n(XEN) Brought up 8 CPUs\n";
    expect(await run(h, "dmesg")).toEqual({ out: h.console, err: "", code: 0 });
    expect((await run(h, "dmesg", "-c")).out).toBe(
      "(XEN) Xen version 4.17\n(XEN) Brought up 8 CPUs\n",
    );
    expect(await run(h, "dmesg")).toEqual({ out: "", err: "", code: 0 });
    expect((await run(h, "dmesg", "--clear")).code).toBe(0);
  });
  it("refuses an unknown option as getopt does", async () => {
    expect(await run(twoDomains(), "dmesg", "-x")).toEqual({
      out: "",
      err: "option `x' not supported.\n",
      code: 2,
    });
  });
});

describe("list -l (list_domains_details)", () => {
  it("prints a JSON array of {domid, config}, skipping domains with no stored config", async () => {
    const r = await run(twoDomains(), "list", "-l");
    expect(r.out).toBe(
      '[\n    {\n        "domid": 3,\n        "config": {\n            "c_info": {\n                "name": "guest"\n            }\n        }\n    }\n]\n',
    );
    expect(r.code).toBe(0);
  });
  it("prints an empty array as yajl does", async () => {
    const r = await run(twoDomains(), "list", "-l", "0");
    expect(r.out).toBe("[\n\n]\n");
  });
  it("-n adds the NODE Affinity column: on a one-node host every domain's is node 0, 'all'", async () => {
    const r = await run(twoDomains(), "list", "-n", "guest");
    expect(r.code).toBe(0);
    const [head, row, end] = r.out.split("\n");
    expect(head).toBe(
      "Name                                        ID   Mem VCPUs\tState\tTime(s) NODE Affinity",
    );
    expect(row).toMatch(/^guest +3 .* all$/);
    expect(end).toBe("");
    // -l prints the configuration and ignores -n, as xl's main_list does.
    expect((await run(twoDomains(), "list", "-l", "-n", "0")).out).toBe("[\n\n]\n");
  });
  it("-n on a host of several nodes says it is modelled for one only", async () => {
    const h = new MemoryXlHost(defaultPhysInfo({ nrNodes: 2 }));
    const r = await run(h, "list", "-n");
    expect(r).toEqual({
      out: "",
      err: "hyperlab list: -n is modelled for a host of one NUMA node; this one has 2.\n",
      code: 1,
    });
  });
});

describe("sched-credit2 setting forms", () => {
  it("-d DOM -w W -c C sets weight and cap; the display shows them", async () => {
    const h = twoDomains();
    expect(await run(h, "sched-credit2", "-d", "guest", "-w", "300", "--cap=25")).toEqual({
      out: "",
      err: "",
      code: 0,
    });
    const r = await run(h, "sched-credit2", "-d", "guest");
    expect(r.out.split("\n")[1]).toBe("guest                                3    300   25");
  });
  it("an out-of-range weight fails as libxl_domain_sched_params_set does", async () => {
    const r = await run(twoDomains(), "sched-credit2", "-d", "guest", "-w", "0");
    expect(r).toEqual({ out: "", err: "libxl_domain_sched_params_set failed.\n", code: 1 });
    const r2 = await run(twoDomains(), "sched-credit2", "-d", "guest", "-c", "201");
    expect(r2.code).toBe(1);
  });
  it("-s -r sets the pool's ratelimit; out of range fails", async () => {
    const h = twoDomains();
    expect((await run(h, "sched-credit2", "-s", "-r", "2000")).code).toBe(0);
    expect((await run(h, "sched-credit2", "-s")).out).toBe("Cpupool Pool-0: ratelimit=2000us\n");
    expect(await run(h, "sched-credit2", "-s", "-r", "50")).toEqual({
      out: "",
      err: "libxl_sched_credit2_params_set failed.\n",
      code: 1,
    });
  });
  it("setting credit's params on a credit2 pool fails as xl does", async () => {
    const h = twoDomains();
    expect(await run(h, "sched-credit", "-s", "-t", "10")).toEqual({
      out: "",
      err: "libxl_sched_credit_params_get failed.\n",
      code: 1,
    });
    expect(await run(h, "sched-credit", "-d", "guest", "-w", "10")).toEqual({
      out: "",
      err: "libxl_domain_sched_params_set failed.\n",
      code: 1,
    });
  });
});

describe("sched-credit setting forms", () => {
  function creditHost(): MemoryXlHost {
    const h = twoDomains();
    h.pools[0].sched = LIBXL_SCHEDULER.CREDIT;
    return h;
  }
  it("-s -t -r -m set the pool's parameters; unset ones stay", async () => {
    const h = creditHost();
    expect((await run(h, "sched-credit", "-s", "-t", "10", "-m", "500")).code).toBe(0);
    expect((await run(h, "sched-credit", "-s")).out).toBe(
      "Cpupool Pool-0: tslice=10ms ratelimit=1000us migration-delay=500us\n",
    );
    expect((await run(h, "sched-credit", "-s", "--ratelimit_us", "0")).code).toBe(0);
    expect((await run(h, "sched-credit", "-s")).out).toBe(
      "Cpupool Pool-0: tslice=10ms ratelimit=0us migration-delay=500us\n",
    );
  });
  it("refuses a ratelimit above the timeslice, and a timeslice out of range", async () => {
    const h = creditHost();
    expect((await run(h, "sched-credit", "-s", "-r", "40000")).err).toBe(
      "libxl_sched_credit_params_set failed.\n",
    );
    expect((await run(h, "sched-credit", "-s", "-t", "0")).code).toBe(1);
    expect((await run(h, "sched-credit", "-s", "-m", "100001")).code).toBe(1);
  });
  it("-d -w sets the weight, parsed as strtol does (trailing junk ignored)", async () => {
    const h = creditHost();
    expect((await run(h, "sched-credit", "-d", "3", "-w", "1000abc")).code).toBe(0);
    expect(h.domains.get(3)?.weight).toBe(1000);
    expect(h.domains.get(3)?.cap).toBe(50);
  });
  it("-d with -s is refused before the host is asked", async () => {
    expect(await run(undefined, "sched-credit", "-d", "3", "-p", "Pool-0")).toEqual({
      out: "",
      err: "Specifying a cpupool or schedparam is not allowed with domain options.\n",
      code: 1,
    });
  });
});

describe("info -n and reaching the host", () => {
  it("info -n prints the cpu and device topology and numa_info between physinfo and xen info", async () => {
    const h = new MemoryXlHost(
      defaultPhysInfo({ nrCpus: 3, maxCpuId: 2, totalPages: 262144, freePages: 131072 }),
    );
    const r = await run(h, "info", "-n");
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      "free_cpus              : 0\n" +
        "cpu_topology           :\n" +
        "cpu:    core    socket     node\n" +
        "  0:       0        0        0\n" +
        "  1:       1        0        0\n" +
        "  2:       2        0        0\n" +
        "device topology        :\n" +
        "device           node\n" +
        "No device topology data available\n" +
        "numa_info              :\n" +
        "node:    memsize    memfree    distances\n" +
        "   0:      1024        512      10\n" +
        "xen_major              : 4\n",
    );
    // With -n xl ignores NAME (main_info sets info_name only without -n).
    expect(await run(h, "info", "-n", "nr_cpus")).toEqual(r);
    const two = new MemoryXlHost(defaultPhysInfo({ nrNodes: 2 }));
    expect((await run(two, "info", "-n")).code).toBe(1);
  });
  it("with no host running, says how to start one", async () => {
    setXlHostConnector(undefined);
    expect(await run(undefined, "list")).toEqual({
      out: "",
      err: "hyperlab list: no host is running here; start one with 'hyperlab up'.\n",
      code: 1,
    });
  });
  it("uses the connector set with setXlHostConnector, and reports one that fails", async () => {
    const h = twoDomains();
    setXlHostConnector(async () => h);
    try {
      expect((await run(undefined, "domid", "guest")).out).toBe("3\n");
      setXlHostConnector(async () => {
        throw new Error("connect ENOENT /run/hyperlab.sock");
      });
      expect(await run(undefined, "info")).toEqual({
        out: "",
        err: "hyperlab info: cannot reach the host (connect ENOENT /run/hyperlab.sock); is 'hyperlab up' running?\n",
        code: 1,
      });
    } finally {
      setXlHostConnector(undefined);
    }
  });
  it("hyperlab help list prints xl's help for list", async () => {
    const r = await run(undefined, "help", "list");
    expect(r.out.startsWith("Usage: xl [-vtT] list [options] [Domain]\n")).toBe(true);
    expect(r.code).toBe(0);
  });
});

describe("a host that fails mid-command", () => {
  it("ends with a message and status 1, for every verb", async () => {
    const h = twoDomains();
    const broken = new Proxy(h, {
      get(target, prop, receiver) {
        if (prop === "listDomains" || prop === "physInfo" || prop === "domid" || prop === "dmesg") {
          return async () => {
            throw new Error("control socket closed");
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    for (const args of [
      ["list"],
      ["info"],
      ["vcpu-list"],
      ["sched-credit2"],
      ["domid", "x"],
      ["dmesg"],
      ["top", "-b", "-i", "1"],
    ]) {
      const r = await run(broken, ...args);
      expect(r.code).toBe(1);
      expect(r.err).toBe(`hyperlab ${args[0]}: the host failed: control socket closed\n`);
    }
  });
});
