/*
 * The split-driver cases on the KVM-style build: virtio-blk over the same raw image (a file,
 * as blkback serves) and virtio-net between two VMs on a bridge, on nested paging with kvm-io.
 * The same requests as the Xen cases (same seed, same order, same warm-up), so the checksums
 * match theirs. Counts per request: VM exits (MMIO exits and EOI exits), notifications (kicks
 * and the interrupts the devices raised), copies (buffers the device model copied) and bytes;
 * no hypercall and no grant operation exist on this path.
 *
 * Invariant: virtio requests complete inside the kick's exit (kvm-io's device model is
 * synchronous), so each request's counts are exact without waiting on an event loop.
 */
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { createHypervisor } from "@hyperlab/core";
import { bootNativeKernel, type GuestKernel } from "@hyperlab/guest";
import { kvmIo, VirtioBlk, VirtioNet, type VmIo, type VmIoSnapshot } from "@hyperlab/kvm-io";
import {
  createMachine,
  createPrng,
  FileDiskImage,
  NetBridge,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
} from "@hyperlab/machine";
import { nptMmu } from "@hyperlab/npt-mmu";
import { VirtioBlkFront, VirtioNetFront } from "@hyperlab/split-drivers";
import { studyError } from "../errors";
import type { SplitIoConfig } from "./split-config";
import { splitIoCaseSeed } from "./split-config";
import { type SplitIoCostTable, splitIoCycles } from "./split-costs";
import { filledImage, row, type SplitIoCounts, type SplitIoResult } from "./split-rows";

const PAGE = 4096;

function kvmHost(seed: number) {
  const machine = createMachine({ ramBytes: 256 * 2 ** 20, cpus: 1, seed });
  return createHypervisor({ machine, plugins: [nptMmu(), kvmIo()] }).boot();
}

function bootVm(
  hv: ReturnType<typeof kvmHost>,
  attach: (vm: VmIo) => void,
): { vm: VmIo; k: GuestKernel } {
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 2048 + 64 });
  hv.unpauseDomain(d);
  const vm = hv.slot("kvm-io").vm(d);
  attach(vm);
  return { vm, k: bootNativeKernel(hv, d, { nrPages: 2048 }) };
}

function failed(pattern: string, got: number | string): never {
  throw studyError(
    "STUDY_GUEST_FAILED",
    `Split-driver case ${pattern} on kvm-virtio got ${got} where the device should have answered every request OK. Report this as a bug with the configuration that ran.`,
  );
}

const delta = (a: VmIoSnapshot, b: VmIoSnapshot) => ({
  exits: b.mmioExits - a.mmioExits + (b.eoiExits - a.eoiExits),
  kicks: b.notifications - a.notifications,
  interrupts: b.virtioInterrupts - a.virtioInterrupts,
  injections: b.injections - a.injections,
  bytes: b.copiedBytes - a.copiedBytes,
});

export function virtioDiskCase(
  cfg: SplitIoConfig,
  p: SplitIoConfig["disk"][number],
  costs: SplitIoCostTable,
): SplitIoResult {
  const seed = splitIoCaseSeed(cfg.seed, p.name);
  const img = filledImage(cfg.diskBytes, seed);
  const image = new FileDiskImage(img.path);
  try {
    const hv = kvmHost(seed);
    let where!: ReturnType<VmIo["addVirtio"]>;
    const { vm, k } = bootVm(hv, (v) => {
      where = v.addVirtio(new VirtioBlk({ image }));
    });
    const front = VirtioBlkFront.probe(k, where.base, where.gsi);
    if (typeof front === "number") failed(p.name, `probe ${front}`);
    const pages = p.bytes / PAGE;
    const bufs = Array.from({ length: Math.ceil(pages) }, () => k.allocPage() * PAGE);
    const chain = bufs.map((addr, i) => ({ addr, len: Math.min(PAGE, p.bytes - i * PAGE) }));
    const sectors = p.bytes / 512;
    const span = Math.floor(cfg.diskBytes / p.bytes);
    const rng = createPrng(seed ^ 0x5eed);
    const data = new Uint8Array(p.bytes);
    const hash = createHash("sha256");
    let seq = 0;
    const one = () => {
      const at = (p.access === "random" ? rng.nextInt(span) : seq++ % span) * sectors;
      let st = -1;
      if (p.op === "write") {
        for (let i = 0; i < data.length; i += 4) {
          const x = rng.nextU32();
          data[i] = x & 0xff;
          data[i + 1] = (x >>> 8) & 0xff;
          data[i + 2] = (x >>> 16) & 0xff;
          data[i + 3] = x >>> 24;
        }
        for (const [i, b] of chain.entries()) {
          k.ram.writeBytes(b.addr, data.subarray(i * PAGE, i * PAGE + b.len));
        }
        front.submit(VIRTIO_BLK_T_OUT, at, chain, (s) => (st = s));
      } else {
        front.submit(VIRTIO_BLK_T_IN, at, chain, (s) => (st = s));
        for (const b of chain) hash.update(k.ram.readBytes(b.addr, b.len));
      }
      if (st !== VIRTIO_BLK_S_OK) failed(p.name, st);
    };
    for (let i = 0; i < cfg.warmup; i++) one();
    const s0 = vm.snapshot();
    for (let i = 0; i < cfg.requests; i++) one();
    const d = delta(s0, vm.snapshot());
    if (p.op === "write") {
      hash.update(readFileSync(img.path));
    }
    const n = cfg.requests;
    const counts: SplitIoCounts = {
      requests: n,
      bytes: n * p.bytes,
      hypercalls: 0,
      grantOps: 0,
      frontendGrantOps: 0,
      notifications: d.kicks + d.interrupts,
      vmExits: d.exits,
      // the device model copies the header, each data buffer and the status byte
      copies: n * (chain.length + 2),
      copiedBytes: d.bytes,
      cpuCopyBytes: d.bytes,
    };
    const cycles = splitIoCycles(costs, counts, {
      grantMapOps: 0,
      grantCopies: 0,
      grantCopyBytes: 0,
      deliveries: d.injections,
    });
    return row("kvm-virtio", "disk", p.name, counts, cycles, hash.digest("hex"));
  } finally {
    image.close();
    rmSync(img.dir, { recursive: true, force: true });
  }
}

export function virtioNicCase(
  cfg: SplitIoConfig,
  p: SplitIoConfig["nic"][number],
  costs: SplitIoCostTable,
): SplitIoResult {
  const seed = splitIoCaseSeed(cfg.seed, p.name);
  const hv = kvmHost(seed);
  const bridge = new NetBridge();
  const hash = createHash("sha256");
  let got = 0;
  const vms = [0x0a, 0x0b].map((last) => {
    let where!: ReturnType<VmIo["addVirtio"]>;
    const g = bootVm(hv, (v) => {
      const dev = new VirtioNet({ mac: [0x00, 0x16, 0x3e, 0, 0, last] });
      dev.attachPort(bridge.connect(dev));
      where = v.addVirtio(dev);
    });
    const front = VirtioNetFront.probe(g.k, where.base, where.gsi, {
      onReceive: (f) => {
        if (last === 0x0b) {
          hash.update(f);
          got++;
        }
      },
    });
    if (typeof front === "number") failed(p.name, `probe ${front}`);
    return { ...g, front };
  });
  const [a, b] = vms as [(typeof vms)[0], (typeof vms)[0]];
  const rng = createPrng(seed ^ 0x5eed);
  const frame = new Uint8Array(p.frameBytes);
  frame.set(b.front.mac, 0);
  frame.set(a.front.mac, 6);
  frame[12] = 0x88;
  frame[13] = 0xb5;
  const one = () => {
    for (let i = 14; i < frame.length; i++) frame[i] = rng.nextU32() & 0xff;
    const want = got + 1;
    const rc = a.front.send(frame);
    if (rc !== 0 || got !== want) failed(p.name, rc !== 0 ? rc : "a frame not received");
  };
  for (let i = 0; i < cfg.warmup; i++) one();
  const a0 = a.vm.snapshot();
  const b0 = b.vm.snapshot();
  for (let i = 0; i < cfg.requests; i++) one();
  const da = delta(a0, a.vm.snapshot());
  const db = delta(b0, b.vm.snapshot());
  const n = cfg.requests;
  const counts: SplitIoCounts = {
    requests: n,
    bytes: n * p.frameBytes,
    hypercalls: 0,
    grantOps: 0,
    frontendGrantOps: 0,
    notifications: da.kicks + da.interrupts + db.kicks + db.interrupts,
    vmExits: da.exits + db.exits,
    copies: 2 * n, // the frame out of A's tx buffer, into B's rx buffer
    copiedBytes: da.bytes + db.bytes,
    cpuCopyBytes: da.bytes + db.bytes,
  };
  const cycles = splitIoCycles(costs, counts, {
    grantMapOps: 0,
    grantCopies: 0,
    grantCopyBytes: 0,
    deliveries: da.injections + db.injections,
  });
  return row("kvm-virtio", "nic", p.name, counts, cycles, hash.digest("hex"));
}
