/*
 * The study's split-driver I/O cases: disk requests through blkfront → blkback (grant map,
 * grant copy, persistent grants) over a raw image, and frames domU → dom0's bridge → domU
 * through netfront/netback, on the Xen-style host of split-host.ts. Each case counts, per
 * request: hypercalls, grant operations, notifications, VM exits, copies and copied bytes
 * (from the drivers' own counters and the hypervisor's), and estimates cycles from the cited
 * costs of split-costs.ts.
 *
 * Invariants: requests are issued one at a time (queue depth 1), each case on a fresh host and
 * a fresh image filled from the case's seed, so the counts are exact per request and a case's
 * result depends only on the configuration; the data checksum of a pattern is the same in
 * every backend mode (the modes differ in how data moves, never in what moves).
 */
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { BLKIF_RSP_OKAY as OKAY } from "@hyperlab/abi";
import type { StatValue } from "@hyperlab/core";
import { createPrng } from "@hyperlab/machine";
import {
  BlkBack,
  type BlkbackMode,
  BlkFront,
  NetbackDriver,
  NetfrontDriver,
  VifBridge,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
} from "@hyperlab/split-drivers";
import { studyError } from "../errors";
import { type SplitIoConfig, splitIoCaseSeed } from "./split-config";
import { SPLIT_IO_COSTS, type SplitIoCostTable, splitIoCycles } from "./split-costs";
import { splitHostUntil, xenSplitHost } from "./split-host";
import { filledImage, row, type SplitIoCounts, type SplitIoResult } from "./split-rows";
import { virtioDiskCase, virtioNicCase } from "./split-virtio";

type Snap = Record<string, number>;
const snap = (v: StatValue[] | undefined, prefix: string, into: Snap) => {
  for (const s of v ?? []) into[`${prefix}.${s.name}`] = s.value;
  return into;
};
const diff = (a: Snap, b: Snap, k: string) => (b[k] ?? 0) - (a[k] ?? 0);

const XVDA = 51712;

async function diskCase(
  cfg: SplitIoConfig,
  mode: BlkbackMode,
  p: SplitIoConfig["disk"][number],
  costs: SplitIoCostTable,
): Promise<SplitIoResult> {
  const seed = splitIoCaseSeed(cfg.seed, p.name);
  const host = xenSplitHost({ seed });
  const img = filledImage(cfg.diskBytes, seed);
  try {
    const back = new BlkBack(host.dom0Kernel, { image: img.path, mode });
    await xenbusRegisterBackend(host.dom0Kernel, back).start();
    const u = await host.bootDomU();
    const front = new BlkFront(u.kernel, { gnttab: u.gnttab });
    await xenbusRegisterFrontend(u.kernel, front).start();
    await host.connected(await host.addVbd(u.domain.domid, XVDA));
    const disk = front.disk(XVDA)!;
    await disk.ready();
    const sectors = p.bytes / 512;
    const span = Math.floor(cfg.diskBytes / p.bytes);
    const rng = createPrng(seed ^ 0x5eed);
    const data = new Uint8Array(p.bytes);
    const hash = createHash("sha256");
    let seq = 0;
    const one = async () => {
      const at = (p.access === "random" ? rng.nextInt(span) : seq++ % span) * sectors;
      if (p.op === "write") {
        for (let i = 0; i < data.length; i += 4) {
          const x = rng.nextU32();
          data[i] = x & 0xff;
          data[i + 1] = (x >>> 8) & 0xff;
          data[i + 2] = (x >>> 16) & 0xff;
          data[i + 3] = x >>> 24;
        }
        const st = await disk.write(at, data);
        if (st !== OKAY) failed(mode, p.name, st);
      } else {
        const r = await disk.read(at, sectors);
        if (r.status !== OKAY) failed(mode, p.name, r.status);
        hash.update(r.data);
      }
    };
    for (let i = 0; i < cfg.warmup; i++) await one();
    const s0 = snap(
      back.stats.snapshot().blkback,
      "b",
      snap(front.stats.snapshot().blkfront, "f", {}),
    );
    for (let i = 0; i < cfg.requests; i++) await one();
    const s1 = snap(
      back.stats.snapshot().blkback,
      "b",
      snap(front.stats.snapshot().blkfront, "f", {}),
    );
    if (p.op === "write") hash.update(readFileSync(img.path));
    const n = diff(s0, s1, "b.requests");
    if (n !== cfg.requests) failed(mode, p.name, n);
    const both = (k: string) => diff(s0, s1, `b.${k}`) + diff(s0, s1, `f.${k}`);
    const counts: SplitIoCounts = {
      requests: n,
      bytes: n * p.bytes,
      hypercalls: both("hypercalls"),
      grantOps: diff(s0, s1, "b.grantOps"),
      frontendGrantOps: diff(s0, s1, "f.grantOps"),
      notifications: both("notifications"),
      vmExits: 0,
      copies: both("copies"),
      copiedBytes: both("copiedBytes"),
      cpuCopyBytes: diff(s0, s1, "f.copiedBytes"),
    };
    const grantCopies = mode === "copy" ? counts.grantOps : 0;
    const cycles = splitIoCycles(costs, counts, {
      grantMapOps: counts.grantOps - grantCopies,
      grantCopies,
      grantCopyBytes: mode === "copy" ? diff(s0, s1, "b.copiedBytes") : 0,
    });
    return row(`xen-split-${mode}`, "disk", p.name, counts, cycles, hash.digest("hex"));
  } finally {
    rmSync(img.dir, { recursive: true, force: true });
  }
}

function failed(mode: string, pattern: string, got: number): never {
  throw studyErrorOf(
    `Split-driver case ${pattern} on xen-split-${mode} got ${got} where the drivers should have answered every request OKAY. Report this as a bug with the configuration that ran.`,
  );
}

const studyErrorOf = (m: string) => studyError("STUDY_GUEST_FAILED", m);

async function nicCase(
  cfg: SplitIoConfig,
  mode: BlkbackMode,
  p: SplitIoConfig["nic"][number],
  costs: SplitIoCostTable,
): Promise<SplitIoResult> {
  const seed = splitIoCaseSeed(cfg.seed, p.name);
  const host = xenSplitHost({ seed });
  const bridge = new VifBridge({});
  const back = new NetbackDriver(host.dom0Kernel, { bridge });
  await xenbusRegisterBackend(host.dom0Kernel, back).start();
  const macs = ["00:16:3e:00:00:0a", "00:16:3e:00:00:0b"];
  const vifs = [];
  for (const mac of macs) {
    const u = await host.bootDomU();
    const front = new NetfrontDriver(u.kernel, u.gnttab);
    await xenbusRegisterFrontend(u.kernel, front).start();
    await host.connected(await host.addVif(u.domain.domid, 0, mac));
    vifs.push(front);
  }
  const [fa, fb] = vifs as [NetfrontDriver, NetfrontDriver];
  const a = fa.devices.get(0)!;
  const b = fb.devices.get(0)!;
  const hash = createHash("sha256");
  let got = 0;
  b.onReceive((f) => {
    hash.update(f);
    got++;
  });
  const rng = createPrng(seed ^ 0x5eed);
  const frame = new Uint8Array(p.frameBytes);
  frame.set(b.mac, 0);
  frame.set(a.mac, 6);
  frame[12] = 0x88; // IEEE local experimental ethertype
  frame[13] = 0xb5;
  const one = async () => {
    for (let i = 14; i < frame.length; i++) frame[i] = rng.nextU32() & 0xff;
    const want = got + 1;
    const rc = a.send(frame);
    if (rc !== 0) failed(mode, p.name, rc);
    await splitHostUntil(() => got === want, `frame ${want} of ${p.name} received`);
  };
  for (let i = 0; i < cfg.warmup; i++) await one();
  const take = () =>
    snap(
      back.stats.snapshot().netback,
      "b",
      snap(fa.stats.snapshot().netfront, "a", snap(fb.stats.snapshot().netfront, "c", {})),
    );
  const s0 = take();
  for (let i = 0; i < cfg.requests; i++) await one();
  const s1 = take();
  const n = cfg.requests;
  const d = (k: string) => diff(s0, s1, k);
  const fronts = (k: string) => d(`a.${k}`) + d(`c.${k}`);
  const counts: SplitIoCounts = {
    requests: n,
    bytes: n * p.frameBytes,
    hypercalls: d("b.hypercalls") + fronts("notifications"),
    grantOps: d("b.grant_copies"),
    frontendGrantOps: fronts("grants"),
    notifications: d("b.notifications") + fronts("notifications"),
    vmExits: 0,
    copies: d("b.grant_copies"),
    copiedBytes: d("b.grant_copy_bytes") + d("b.local_copy_bytes") + fronts("copy_bytes"),
    cpuCopyBytes: d("b.local_copy_bytes") + fronts("copy_bytes"),
  };
  const cycles = splitIoCycles(costs, counts, {
    grantMapOps: 0,
    grantCopies: counts.grantOps,
    grantCopyBytes: d("b.grant_copy_bytes"),
  });
  return row(`xen-split-${mode}`, "nic", p.name, counts, cycles, hash.digest("hex"));
}

/**
 * Runs every split-driver case of `cfg`: for each platform (blkback mode), each disk pattern,
 * then each NIC pattern (netback is the same in every mode: it runs once per platform so the
 * table is complete, and its counts are equal across platforms).
 */
export async function runSplitIo(
  cfg: SplitIoConfig,
  costs: SplitIoCostTable = SPLIT_IO_COSTS,
): Promise<SplitIoResult[]> {
  const out: SplitIoResult[] = [];
  for (const mode of cfg.modes) {
    if (mode === "virtio") {
      for (const p of cfg.disk) out.push(virtioDiskCase(cfg, p, costs));
      for (const p of cfg.nic) out.push(virtioNicCase(cfg, p, costs));
      continue;
    }
    for (const p of cfg.disk) out.push(await diskCase(cfg, mode, p, costs));
    for (const p of cfg.nic) out.push(await nicCase(cfg, mode, p, costs));
  }
  return out;
}
