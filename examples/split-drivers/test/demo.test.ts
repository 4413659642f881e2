import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseModes, runSplitDriversDemo } from "../split";

const all = (lines: string[], prefix: string) => lines.filter((l) => l.startsWith(prefix));

describe("examples/split-drivers", () => {
  it("every blkback mode: checksummed blocks read back, per-request counts, packets, the pcap", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hyperlab-split-example-"));
    try {
      const lines = await runSplitDriversDemo({ modes: parseModes([]), dir });
      expect(all(lines, "== Xen-style host")).toEqual([
        '== Xen-style host, blkback mode "map"',
        '== Xen-style host, blkback mode "copy"',
        '== Xen-style host, blkback mode "persistent"',
      ]);
      const blk = all(lines, "blk: domU 1");
      expect(blk).toHaveLength(3);
      for (const l of blk) expect(l).toContain("all checksums OK");
      // The same blocks whatever the mode: one sha256 over what was read back.
      expect(new Set(blk.map((l) => l.split("sha256 ")[1])).size).toBe(1);
      const per = all(lines, "blk per request");
      // 32 requests (16 writes, 16 reads) of one 4 KiB segment each.
      expect(per[0]).toBe(
        "blk per request (map): blkback 3 hypercalls, 2 grant ops, 1 notifications, 0 copies; blkfront 1 hypercalls, 2 grant entries, 1 notifications, 0 copies",
      );
      expect(per[1]).toBe(
        "blk per request (copy): blkback 2 hypercalls, 1 grant ops, 1 notifications, 1 copies; blkfront 1 hypercalls, 2 grant entries, 1 notifications, 0 copies",
      );
      // Persistent: one request at a time uses one page of blkfront's pool; it is granted
      // once and blkback maps it once and keeps it, so 32 requests make 1 map (1/32).
      expect(per[2]).toBe(
        "blk per request (persistent): blkback 1.03 hypercalls, 0.03 grant ops, 1 notifications, 0 copies; blkfront 1 hypercalls, 0.03 grant entries, 1 notifications, 1 copies",
      );
      expect(all(lines, "blk: domU 2")).toHaveLength(3);
      for (const l of all(lines, "blk: domU 2")) {
        expect(l).toBe(
          "blk: domU 2 reads its own disk: status 0, zeros (domU 1's blocks are not there)",
        );
      }
      expect(all(lines, "net: domU")).toHaveLength(3);
      for (const l of all(lines, "net: domU")) {
        expect(l).toMatch(
          /^net: domU 2 got a request of 98 bytes, domU 1 got the reply; 2 round trips through xenbr0: netback \d+ hypercalls, 8 grant copies, \d+ notifications$/,
        );
      }
      const pcap = all(lines, "pcap:");
      expect(pcap[0]).toBe(`pcap: 4 frames written to ${join(dir, "xenbr0.pcap")}`);
      expect(readFileSync(join(dir, "xenbr0.pcap")).length).toBe(24 + 4 * (16 + 98));
      // The KVM-style half: the same blocks through virtio-blk, the same sha256.
      expect(all(lines, "== KVM-style host")).toHaveLength(1);
      const kvm = lines.slice(lines.findIndex((l) => l.startsWith("== KVM-style host")));
      expect(all(kvm, "blk: VM 1")[0]).toContain("all checksums OK");
      expect(all(kvm, "blk: VM 1")[0]!.split("sha256 ")[1]).toBe(blk[0]!.split("sha256 ")[1]);
      // Each request: the QueueNotify kick, then the interrupt handler's InterruptStatus read
      // and InterruptACK write (3 MMIO exits), one injected level interrupt whose EOI exits;
      // the device model copies the 4096 data bytes, the 16-byte header and the status byte.
      expect(all(kvm, "blk per request (virtio)")).toEqual([
        "blk per request (virtio): 3 VM exits (MMIO), 1 notifications (kicks), 1 injected interrupts, 1 EOI exits, 4113 bytes copied by the device model; 0 hypercalls, 0 grant ops",
      ]);
      expect(all(kvm, "blk: VM 2")).toEqual([
        "blk: VM 2 reads its own disk: status 0, zeros (VM 1's blocks are not there)",
      ]);
      // Per round trip VM 1 takes 5 exits and 2 injections: the tx kick, then two interrupts
      // (its tx completion, the reply's arrival), each read and acknowledged by the handler.
      expect(all(kvm, "net:")).toEqual([
        "net: VM 2 got a request of 98 bytes, VM 1 got the reply; 2 round trips through br0: VM 1 took 10 VM exits and 4 injected interrupts",
      ]);
      expect(all(kvm, "pcap:")).toEqual([`pcap: 4 frames written to ${join(dir, "kvm-br0.pcap")}`]);
      expect(readFileSync(join(dir, "kvm-br0.pcap")).length).toBe(24 + 4 * (16 + 98));
      // Debian's tshark (installed by scripts/peers.mjs) reads both captures without errors.
      const tshark = ["/usr/bin/tshark", "/usr/local/bin/tshark"].find((t) => existsSync(t));
      expect(tshark, "tshark is missing: run node scripts/peers.mjs").toBeDefined();
      for (const f of ["xenbr0.pcap", "kvm-br0.pcap"]) {
        const out = execFileSync(tshark!, ["-r", join(dir, f), "-T", "fields", "-e", "eth.type"], {
          encoding: "utf8",
          stdio: ["ignore", "pipe", "pipe"],
        });
        expect(out.trim().split("\n")).toEqual(["0x88b5", "0x88b5", "0x88b5", "0x88b5"]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--mode picks one mode; a wrong one says what to give", () => {
    expect(parseModes(["--mode", "copy"])).toEqual(["copy"]);
    expect(() => parseModes(["--mode", "flip"])).toThrow(
      /--mode takes one of map, copy, persistent/,
    );
  });
});
