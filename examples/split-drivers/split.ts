// The split-drivers example as a function returning its lines, so a test checks them.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BLKIF_RSP_OKAY } from "@hyperlab/abi";
import { PcapWriter } from "@hyperlab/machine";
import {
  BlkBack,
  type BlkbackMode,
  BlkFront,
  NetbackDriver,
  NetfrontDriver,
  perRequest,
  VifBridge,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
} from "@hyperlab/split-drivers";
import { splitHostUntil, xenSplitHost } from "@hyperlab/study";
import { BLOCKS, block, checksumOk, fmt } from "./blocks";
import { runKvmHalf } from "./kvm";

const MODES: readonly BlkbackMode[] = ["map", "copy", "persistent"];
const XVDA = 51712; // 202:0, as libxl numbers xvda

/** `--mode M` (one of map, copy, persistent) or all three. */
export function parseModes(argv: string[]): BlkbackMode[] {
  const i = argv.indexOf("--mode");
  if (i < 0) return [...MODES];
  const m = argv[i + 1] as BlkbackMode;
  if (!MODES.includes(m)) {
    throw new Error(`--mode takes one of ${MODES.join(", ")}; got ${argv[i + 1] ?? "nothing"}.`);
  }
  return [m];
}

export interface SplitDemoOptions {
  modes: BlkbackMode[];
  /** Where the raw images and the pcap files go. */
  dir: string;
  /** Run the KVM-style half with virtio too (default true). */
  kvm?: boolean;
}

export async function runSplitDriversDemo(o: SplitDemoOptions): Promise<string[]> {
  const lines: string[] = [];
  for (const [k, mode] of o.modes.entries()) {
    lines.push("", `== Xen-style host, blkback mode "${mode}"`);
    const host = xenSplitHost({ seed: 1 });
    const images = new Map<number, string>();
    const back = new BlkBack(host.dom0Kernel, {
      // libxl's vbd "params": each domU's own raw image
      image: (domid) => images.get(domid)!,
      mode,
    });
    await xenbusRegisterBackend(host.dom0Kernel, back).start();
    // The bridge writes every frame it forwards; one capture, on the first host.
    const pcapPath = join(o.dir, "xenbr0.pcap");
    const pcap = k === 0 ? PcapWriter.toFile(pcapPath) : undefined;
    const bridge = new VifBridge({ pcap });
    const netback = new NetbackDriver(host.dom0Kernel, { bridge });
    await xenbusRegisterBackend(host.dom0Kernel, netback).start();
    const doms = [];
    for (const [i, mac] of ["00:16:3e:00:00:01", "00:16:3e:00:00:02"].entries()) {
      const u = await host.bootDomU();
      const path = join(o.dir, `${mode}-domu${i + 1}-xvda.img`);
      writeFileSync(path, new Uint8Array(4 << 20)); // 4 MiB raw image of zeros
      images.set(u.domain.domid, path);
      const blk = new BlkFront(u.kernel, { gnttab: u.gnttab });
      await xenbusRegisterFrontend(u.kernel, blk).start();
      const net = new NetfrontDriver(u.kernel, u.gnttab);
      await xenbusRegisterFrontend(u.kernel, net).start();
      await host.connected(await host.addVbd(u.domain.domid, XVDA));
      await host.connected(await host.addVif(u.domain.domid, 0, mac));
      const disk = blk.disk(XVDA)!;
      await disk.ready();
      doms.push({ u, blk, disk, vif: net.devices.get(0)!, path, name: `domU ${i + 1}` });
    }
    const [d1, d2] = doms as [(typeof doms)[0], (typeof doms)[0]];
    lines.push(
      `dom0: blkback (${mode}) and netback on xenbr0; domU 1 = domid ${d1.u.domain.domid}, domU 2 = domid ${d2.u.domain.domid}; xvda and vif 0 Connected in both`,
    );

    // domU 1: checksummed blocks out, back in, checked; counts per request in between.
    const before = [back.stats.snapshot().blkback!, d1.blk.stats.snapshot().blkfront!];
    let bad = 0;
    const all = createHash("sha256");
    for (let i = 0; i < BLOCKS; i++) {
      const st = await d1.disk.write(i * 8, block(1, i));
      if (st !== BLKIF_RSP_OKAY) bad++;
    }
    for (let i = 0; i < BLOCKS; i++) {
      const r = await d1.disk.read(i * 8, 8);
      const ok = r.status === BLKIF_RSP_OKAY && checksumOk(r.data);
      if (!ok) bad++;
      all.update(r.data);
    }
    const [b1, f1] = [back.stats.snapshot().blkback!, d1.blk.stats.snapshot().blkfront!];
    const per = (now: typeof b1, then: typeof b1) =>
      perRequest(now.map((s, i) => ({ ...s, value: s.value - then[i]!.value })));
    const pb = per(b1, before[0]!);
    const pf = per(f1, before[1]!);
    lines.push(
      `blk: domU 1 wrote ${BLOCKS} checksummed 4 KiB blocks and read them back: ${bad === 0 ? "all checksums OK" : `${bad} BAD`}; sha256 ${all.digest("hex").slice(0, 16)}`,
      `blk per request (${mode}): blkback ${fmt(pb.hypercalls!)} hypercalls, ${fmt(pb.grantOps!)} grant ops, ${fmt(pb.notifications!)} notifications, ${fmt(pb.copies!)} copies; blkfront ${fmt(pf.hypercalls!)} hypercalls, ${fmt(pf.grantOps!)} grant entries, ${fmt(pf.notifications!)} notifications, ${fmt(pf.copies!)} copies`,
    );
    const r2 = await d2.disk.read(0, 8);
    lines.push(
      `blk: domU 2 reads its own disk: status ${r2.status}, ${r2.data.every((x) => x === 0) ? "zeros (domU 1's blocks are not there)" : "NOT zeros"}`,
    );

    // Both domUs exchange frames through dom0's bridge: an echo request and its reply.
    const got: string[] = [];
    d2.vif.onReceive((f) => {
      const reply = f.slice();
      reply.set(f.subarray(6, 12), 0);
      reply.set(f.subarray(0, 6), 6);
      reply[14] = 0; // 8 request, 0 reply
      got.push(`domU 2 got a request of ${f.length} bytes`);
      d2.vif.send(reply);
    });
    d1.vif.onReceive((f) => got.push(`domU 1 got ${f[14] === 0 ? "the reply" : "something else"}`));
    for (let seq = 0; seq < 2; seq++) {
      const ping = new Uint8Array(98);
      ping.set(d2.vif.mac, 0);
      ping.set(d1.vif.mac, 6);
      ping.set([0x88, 0xb5, 8, seq], 12); // IEEE local experimental ethertype
      d1.vif.send(ping);
      await splitHostUntil(() => got.length === 2 * (seq + 1), "the echo reply");
    }
    const nb = Object.fromEntries(netback.stats.snapshot().netback!.map((s) => [s.name, s.value]));
    lines.push(
      `net: ${got.slice(0, 2).join(", ")}; 2 round trips through xenbr0: netback ${nb.hypercalls} hypercalls, ${nb.grant_copies} grant copies, ${nb.notifications} notifications`,
    );
    if (pcap !== undefined) {
      pcap.close();
      lines.push(`pcap: ${pcap.frames} frames written to ${pcapPath}`);
    }
  }
  if (o.kvm !== false) lines.push(...(await runKvmHalf(o.dir)));
  return lines;
}
