// Split drivers end to end on a Xen-style host: dom0 runs blkback, netback and the bridge
// xenbr0; two domUs each have a disk (a raw image file) and a vif. domU 1 writes checksummed
// blocks and reads them back in each blkback mode (grant map, grant copy, persistent grants),
// printing what one request cost; the domUs ping each other through dom0's bridge, which
// writes every frame to a pcap file. Then the same on the KVM-style build: two VMs with
// virtio-blk over their own raw images and virtio-net on one bridge, the same blocks read
// back, the per-request VM exits and injected interrupts, a second pcap. Run with `pnpm demo`
// from the repository root, or `pnpm start -- --mode copy` here for one mode.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseModes, runSplitDriversDemo } from "./split";

const modes = parseModes(process.argv.slice(2));
const dir = mkdtempSync(join(tmpdir(), "hyperlab-split-drivers-"));
for (const line of await runSplitDriversDemo({ modes, dir })) console.log(line);
// The raw images go; the pcap files stay for a look with tshark or wireshark.
for (const f of readdirSync(dir)) if (f.endsWith(".img")) rmSync(join(dir, f));
