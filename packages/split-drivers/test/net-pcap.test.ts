// Every frame that crosses dom0's bridge goes into a pcap file, which Debian's tshark reads
// back with no error: the same count, lengths and addresses, ICMP dissected with good checksums.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PcapWriter } from "@hyperlab/machine";
import { describe, expect, it, onTestFinished } from "vitest";
import { ethFrame, icmpEcho, netWorld, until } from "./net-world";

const MAC_A = "00:16:3e:00:00:0a";
const MAC_B = "00:16:3e:00:00:0b";
const IP_A: [number, number, number, number] = [10, 0, 0, 1];
const IP_B: [number, number, number, number] = [10, 0, 0, 2];

describe("pcap of the bridge", () => {
  it("tshark reads every frame that crossed the bridge, without errors", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "hyperlab-net-"));
    onTestFinished(() => rmSync(tmp, { recursive: true, force: true }));
    const path = join(tmp, "xenbr0.pcap");
    let clock = 0;
    const pcap = PcapWriter.toFile(path, { now: () => (clock += 1_000_000) });
    const w = await netWorld({ pcap });
    const a = await w.bootVif(MAC_A);
    const b = await w.bootVif(MAC_B);
    // A broadcast, three pings and their replies, and a jumbo frame of 3 slots.
    expect(a.dev.send(ethFrame("ff:ff:ff:ff:ff:ff", MAC_A, 60))).toBe(0);
    await until(() => b.got.length === 1);
    for (let seq = 1; seq <= 3; seq++) {
      expect(a.dev.send(icmpEcho(MAC_B, MAC_A, IP_A, IP_B, 8, seq))).toBe(0);
      await until(() => b.got.length === 1 + seq);
      expect(b.dev.send(icmpEcho(MAC_A, MAC_B, IP_B, IP_A, 0, seq))).toBe(0);
      await until(() => a.got.length === seq);
    }
    expect(a.dev.send(ethFrame(MAC_B, MAC_A, 9000))).toBe(0);
    await until(() => b.got.length === 5);
    pcap.close();
    expect(w.bridge.frames).toBe(8);
    expect(pcap.frames).toBe(8);
    expect(readFileSync(path).length).toBe(24 + 8 * 16 + 60 + 6 * 98 + 9000);

    const tshark = ["/usr/bin/tshark", "/usr/local/bin/tshark"].find((t) => existsSync(t));
    if (tshark === undefined) {
      // CI installs tshark (scripts/peers.mjs) and must not get here.
      expect(process.env.CI, "tshark is missing: run `sudo node scripts/peers.mjs`").not.toBe(
        "true",
      );
      return;
    }
    const run = (args: string[]) =>
      execFileSync(tshark, ["-r", path, ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, HOME: tmp },
      });
    const fields = ["frame.len", "eth.src", "eth.dst", "ip.src", "ip.dst", "icmp.type"];
    const lines = run(["-T", "fields", ...fields.flatMap((f) => ["-e", f])])
      .trim()
      .split("\n")
      .map((l) => l.split("\t"));
    expect(lines.length).toBe(8);
    expect(lines.map((l) => l[0])).toEqual(["60", "98", "98", "98", "98", "98", "98", "9000"]);
    expect(lines[0]!.slice(1, 3)).toEqual([MAC_A, "ff:ff:ff:ff:ff:ff"]);
    expect(lines[1]).toEqual(["98", MAC_A, MAC_B, "10.0.0.1", "10.0.0.2", "8"]);
    expect(lines[2]).toEqual(["98", MAC_B, MAC_A, "10.0.0.2", "10.0.0.1", "0"]);
    expect(lines[7]!.slice(0, 3)).toEqual(["9000", MAC_A, MAC_B]);
    // No malformed frame and no bad checksum in tshark's expert analysis.
    const bad = run([
      "-o",
      "ip.check_checksum:TRUE",
      "-Y",
      "_ws.malformed || _ws.expert.severity >= warning || (icmp && icmp.checksum.status != 1) || (ip && ip.checksum.status != 1)",
    ]);
    expect(bad.trim()).toBe("");
    const good = run([
      "-o",
      "ip.check_checksum:TRUE",
      "-Y",
      "icmp.checksum.status == 1 && ip.checksum.status == 1",
    ]);
    expect(good.trim().split("\n").length).toBe(6);
    // Echo replies answer the requests (tshark pairs them by id and sequence).
    const replies = run(["-Y", "icmp.resp_to", "-T", "fields", "-e", "icmp.resp_to"]);
    expect(replies.trim().split("\n")).toEqual(["2", "4", "6"]);
  });
});
