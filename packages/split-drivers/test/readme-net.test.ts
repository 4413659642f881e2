// The "Network" example of README.md, run as written on the test world's kernels.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PcapWriter } from "@hyperlab/machine";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  GnttabGuest,
  NetbackDriver,
  NetfrontDriver,
  VifBridge,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
} from "../src/index";
import { addVifTo, until } from "./net-world";
import { world } from "./world";

describe("README: Network", () => {
  it("runs the example: a ping-like frame and its reply through dom0's bridge", async () => {
    const w = world();
    const dom0 = w.dom0Kernel;
    const a = await w.bootDomU();
    const b = await w.bootDomU();
    const domA = a.kernel;
    const domB = b.kernel;
    const gnttabA = new GnttabGuest(w.hv, a.domain);
    const gnttabB = new GnttabGuest(w.hv, b.domain);
    const log: string[] = [];
    const console = { log: (...x: unknown[]) => log.push(x.join(" ")) };
    const tmp = mkdtempSync(join(tmpdir(), "hyperlab-readme-net-"));
    onTestFinished(() => rmSync(tmp, { recursive: true, force: true }));
    const path = join(tmp, "xenbr0.pcap");

    const pcap = PcapWriter.toFile(path);
    const bridge = new VifBridge({ pcap });
    const back = new NetbackDriver(dom0, { bridge });
    await xenbusRegisterBackend(dom0, back).start();
    const netA = new NetfrontDriver(domA, gnttabA);
    const netB = new NetfrontDriver(domB, gnttabB);
    await xenbusRegisterFrontend(domA, netA).start();
    await xenbusRegisterFrontend(domB, netB).start();
    await addVifTo(w.xs, a.domain.domid, 0, "00:16:3e:00:00:0a");
    await addVifTo(w.xs, b.domain.domid, 0, "00:16:3e:00:00:0b");
    await until(
      () => netA.devices.get(0)?.connected === true && netB.devices.get(0)?.connected === true,
    );
    const vifA = netA.devices.get(0)!;
    const vifB = netB.devices.get(0)!;
    vifB.onReceive((frame) => {
      const reply = frame.slice();
      reply.set(frame.subarray(6, 12), 0);
      reply.set(frame.subarray(0, 6), 6);
      reply[14] = 0;
      vifB.send(reply);
    });
    vifA.onReceive((frame) => console.log("A got", frame[14] === 0 ? "a reply" : "something else"));
    const ping = new Uint8Array(60);
    ping.set(vifB.mac, 0);
    ping.set(vifA.mac, 6);
    ping.set([0x88, 0xb5, 8], 12);
    expect(vifA.send(ping)).toBe(0);
    await until(() => log.length === 1);
    expect(log).toEqual(["A got a reply"]);
    pcap.close();
    expect(pcap.frames).toBe(2);
    expect(readFileSync(path).length).toBe(24 + 2 * (16 + 60));
  });
});
