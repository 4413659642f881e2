// The README's examples for xl's display verbs and the dashboard, run as written.
import { get } from "node:http";
import { expect, it } from "vitest";
import { domInfo, MemoryXlHost, runCli, startDashboard } from "../src/index";

it("README example: hyperlab list over a MemoryXlHost", async () => {
  const host = new MemoryXlHost();
  host.add({
    name: "Domain-0",
    info: domInfo(0, {
      running: true,
      currentMemkb: 1048576,
      maxMemkb: 1048576,
      cpuTime: 2_750_000_000,
    }),
    vcpus: [],
    weight: 256,
    cap: 0,
    disks: [],
    nics: [],
  });
  let out = "";
  await runCli(["list"], {
    out: (s) => {
      out += s;
    },
    err: () => {},
    connectHost: async () => host,
  });
  expect(out).toBe(
    "Name                                        ID   Mem VCPUs\tState\tTime(s)\n" +
      "Domain-0                                     0  1024     1     r-----       2.8\n",
  );
});

it("README example: startDashboard", async () => {
  const dash = await startDashboard({ host: new MemoryXlHost() }, { port: 0 });
  expect(dash.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  const status = await new Promise<number>((resolve, reject) =>
    get(dash.url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", reject),
  );
  expect(status).toBe(200);
  await dash.close();
});
