// The KVM-style half of the split-drivers example: the same two guests on a host with nested
// paging and kvm-io, each with a virtio-blk disk over its own raw image file and a virtio-net
// NIC on one bridge (a NetBridge whose ports are tapped into a pcap file). Requests exit to
// the host's device model (MMIO exits on the kick and in the interrupt handler), completions
// are injected interrupts.
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHypervisor } from "@hyperlab/core";
import { bootNativeKernel } from "@hyperlab/guest";
import { kvmIo, VirtioBlk, VirtioNet, type VmIo } from "@hyperlab/kvm-io";
import {
  createMachine,
  FileDiskImage,
  NetBridge,
  PcapWriter,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from "@hyperlab/machine";
import { nptMmu } from "@hyperlab/npt-mmu";
import { VirtioBlkFront, VirtioNetFront } from "@hyperlab/split-drivers";
import { BLOCK, BLOCKS, block, checksumOk, fmt } from "./blocks";

export async function runKvmHalf(dir: string): Promise<string[]> {
  const lines: string[] = [
    "",
    "== KVM-style host (nested paging, kvm-io), virtio-blk and virtio-net",
  ];
  const machine = createMachine({ ramBytes: 128 * 2 ** 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nptMmu(), kvmIo()] }).boot();
  const pcapPath = join(dir, "kvm-br0.pcap");
  const pcap = PcapWriter.toFile(pcapPath);
  const bridge = new NetBridge();
  const vms = [1, 2].map((n) => {
    const path = join(dir, `kvm-vm${n}-vda.img`);
    writeFileSync(path, new Uint8Array(4 << 20));
    const image = new FileDiskImage(path);
    const d = hv.createDomain({ maxVcpus: 1, maxPages: 2048 + 64 });
    hv.unpauseDomain(d);
    const vm: VmIo = hv.slot("kvm-io").vm(d);
    const disk = vm.addVirtio(new VirtioBlk({ image }));
    const nic = new VirtioNet({ mac: [0x52, 0x54, 0, 0, 0, n] });
    const port = bridge.connect(nic);
    nic.attachPort({
      transmit: (f) => {
        pcap.record(f);
        port.transmit(f);
      },
    });
    const nicAt = vm.addVirtio(nic);
    const k = bootNativeKernel(hv, d, { nrPages: 2048 });
    const blk = VirtioBlkFront.probe(k, disk.base, disk.gsi);
    const got: Uint8Array[] = [];
    const net = VirtioNetFront.probe(k, nicAt.base, nicAt.gsi, {
      onReceive: (f) => got.push(f.slice()),
    });
    if (typeof blk === "number" || typeof net === "number") {
      throw new Error(`virtio probe failed in VM ${n}: ${blk} ${net}`);
    }
    return { n, vm, k, blk, net, got, image };
  });
  const [v1, v2] = vms as [(typeof vms)[0], (typeof vms)[0]];
  lines.push(
    `host: VM 1 and VM 2, each with virtio-blk (vda) over its own raw image and virtio-net on br0`,
  );

  // VM 1: the same checksummed blocks as the Xen half, out and back in.
  const page = v1.k.allocPage();
  const io = (type: number, sector: number) => {
    let st = -1;
    v1.blk.submit(type, sector, [{ addr: page * 4096, len: BLOCK }], (s) => (st = s));
    return st;
  };
  const s0 = v1.vm.snapshot();
  let bad = 0;
  const all = createHash("sha256");
  for (let i = 0; i < BLOCKS; i++) {
    v1.k.ram.writeBytes(page * 4096, block(1, i));
    if (io(VIRTIO_BLK_T_OUT, i * 8) !== VIRTIO_BLK_S_OK) bad++;
  }
  for (let i = 0; i < BLOCKS; i++) {
    v1.k.ram.writeBytes(page * 4096, new Uint8Array(BLOCK));
    const st = io(VIRTIO_BLK_T_IN, i * 8);
    const data = v1.k.ram.readBytes(page * 4096, BLOCK);
    if (st !== VIRTIO_BLK_S_OK || !checksumOk(data)) bad++;
    all.update(data);
  }
  const s1 = v1.vm.snapshot();
  const n = 2 * BLOCKS;
  const per = (k: "mmioExits" | "notifications" | "injections" | "eoiExits" | "copiedBytes") =>
    fmt((s1[k] - s0[k]) / n);
  lines.push(
    `blk: VM 1 wrote ${BLOCKS} checksummed 4 KiB blocks and read them back: ${bad === 0 ? "all checksums OK" : `${bad} BAD`}; sha256 ${all.digest("hex").slice(0, 16)}`,
    `blk per request (virtio): ${per("mmioExits")} VM exits (MMIO), ${per("notifications")} notifications (kicks), ${per("injections")} injected interrupts, ${per("eoiExits")} EOI exits, ${per("copiedBytes")} bytes copied by the device model; 0 hypercalls, 0 grant ops`,
  );
  const p2 = v2.k.allocPage();
  let st2 = -1;
  v2.blk.submit(VIRTIO_BLK_T_IN, 0, [{ addr: p2 * 4096, len: BLOCK }], (s) => (st2 = s));
  const zeros = v2.k.ram.readBytes(p2 * 4096, BLOCK).every((x) => x === 0);
  lines.push(
    `blk: VM 2 reads its own disk: status ${st2}, ${zeros ? "zeros (VM 1's blocks are not there)" : "NOT zeros"}`,
  );

  // Echo through the bridge: VM 2 answers VM 1's requests.
  const replies: string[] = [];
  const n0 = v1.vm.snapshot();
  for (let seq = 0; seq < 2; seq++) {
    const ping = new Uint8Array(98);
    ping.set(v2.net.mac, 0);
    ping.set(v1.net.mac, 6);
    ping.set([0x88, 0xb5, 8, seq], 12);
    v1.net.send(ping);
    for (const f of v2.got.splice(0)) {
      replies.push(`VM 2 got a request of ${f.length} bytes`);
      const r = f.slice();
      r.set(f.subarray(6, 12), 0);
      r.set(f.subarray(0, 6), 6);
      r[14] = 0;
      v2.net.send(r);
    }
    for (const f of v1.got.splice(0))
      replies.push(`VM 1 got ${f[14] === 0 ? "the reply" : "something else"}`);
  }
  const n1 = v1.vm.snapshot();
  lines.push(
    `net: ${replies.slice(0, 2).join(", ")}; 2 round trips through br0: VM 1 took ${n1.mmioExits - n0.mmioExits} VM exits and ${n1.injections - n0.injections} injected interrupts`,
  );
  pcap.close();
  lines.push(`pcap: ${pcap.frames} frames written to ${pcapPath}`);
  for (const v of vms) v.image.close?.();
  return lines;
}
