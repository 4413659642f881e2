/*
 * The I/O workload: disk requests and NIC frames driven through the guest drivers (hldisk,
 * hlnic) of a kernel that owns the devices, on each platform, one request at a time (queue
 * depth 1: submit, let the hypervisor deliver, check the completion). What it does depends
 * only on the config and the seed, never on the platform: the same sectors, the same data
 * written, the same frames, so the data checksum must be the same on every platform, and the
 * counts differ only by what the platform adds on the way.
 *
 * Invariants: a request that does not complete with DISK_ST_OK, or a frame that does not
 * come back byte for byte, fails the run (STUDY_IO_FAILED) instead of being counted; each
 * pattern's counts are the difference of the host's counters around its requests only.
 */
import {
  createPrng,
  DISK_SECTOR_SIZE,
  DISK_ST_OK,
  MemoryDiskImage,
  type Prng,
} from "@hyperlab/machine";
import { studyError } from "../errors";
import type { IoConfig, IoDiskPattern, IoNicPattern, IoPlatformName } from "./config";
import { estimateIoCycles } from "./cost";
import { IO_COUNT_NAMES, type IoCountName, type IoCounts, ioCountsDelta } from "./counts";
import { type IoHost, ioPlatformByName } from "./hosts";

const PAGE = 4096;

/** One pattern on one platform. */
export interface IoRow {
  platform: IoPlatformName;
  pattern: string;
  kind: "disk" | "nic";
  /** Totals over the pattern's requests. */
  counts: IoCounts;
  /** Each count divided by the requests. */
  perRequest: Record<IoCountName, number>;
  /** Estimated cycles per request (cost model). */
  cyclesPerRequest: number;
  /** FNV-1a of every byte read into memory, written onto the disk, or received, in order (hex). */
  checksum: string;
}

/** One platform's whole run. */
export interface IoPlatformRun {
  platform: IoPlatformName;
  /** What boot and the drivers' probes cost (before the first request). */
  setup: IoCounts;
  /** The kernel page the requests' buffer starts at (a run of 512 pages). */
  bufferPfn: number;
  rows: IoRow[];
  /** FNV-1a over the patterns' checksums and the disk image at the end (hex). */
  checksum: string;
}

const FNV_OFFSET = 0x811c9dc5;
const fnv = (h: number, b: number) => Math.imul(h ^ b, 0x01000193) >>> 0;
const hex = (h: number) => h.toString(16).padStart(8, "0");

function hashBytes(h: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h;
}

/** Calls `f` with each page-sized piece of [pfn * 4096 + offset, + n) in kernel memory. */
function eachPiece(
  host: IoHost,
  pfn: number,
  offset: number,
  n: number,
  f: (b: Uint8Array) => void,
) {
  const k = host.k;
  let at = offset;
  let left = n;
  while (left > 0) {
    const page = pfn + Math.floor(at / PAGE);
    const off = at % PAGE;
    const len = Math.min(left, PAGE - off);
    f(k.ram.frameBytes(k.frameOf(page)).subarray(off, off + len));
    at += len;
    left -= len;
  }
}

/** Fills `b` from the PRNG, four bytes per draw (little-endian). */
function fillRandom(prng: Prng, b: Uint8Array): void {
  const n = b.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const x = prng.nextU32();
    b[i] = x;
    b[i + 1] = x >>> 8;
    b[i + 2] = x >>> 16;
    b[i + 3] = x >>> 24;
  }
  if (i < n) {
    const x = prng.nextU32();
    for (let j = 0; i < n; i++, j += 8) b[i] = x >>> j;
  }
}

function failed(host: IoHost, pattern: string, what: string): never {
  throw studyError(
    "STUDY_IO_FAILED",
    `I/O pattern "${pattern}" on ${host.platform}: ${what}. The platform lost a request; run its package tests to find why.`,
  );
}

function perRequest(c: IoCounts): Record<IoCountName, number> {
  const r = {} as Record<IoCountName, number>;
  for (const n of IO_COUNT_NAMES) r[n] = c.requests === 0 ? 0 : c[n] / c.requests;
  return r;
}

function runDisk(host: IoHost, p: IoDiskPattern, requests: number, buf: number, prng: Prng) {
  const count = p.bytes / DISK_SECTOR_SIZE;
  const slots = Math.floor(host.disk.capacity / count);
  let h = FNV_OFFSET;
  let cursor = 0;
  let status = -1;
  const done = (s: number) => {
    status = s;
  };
  for (let r = 0; r < requests; r++) {
    const sector = (p.access === "random" ? prng.nextInt(slots) : cursor++ % slots) * count;
    if (p.op === "write") eachPiece(host, buf, p.bufferOffset, p.bytes, (b) => fillRandom(prng, b));
    status = -1;
    const rc = host.disk.submit({
      op: p.op,
      sector,
      count,
      pfn: buf,
      offset: p.bufferOffset,
      done,
    });
    if (rc !== 0) failed(host, p.name, `request ${r} refused with errno ${-rc}`);
    host.deliver();
    if (status !== DISK_ST_OK) failed(host, p.name, `request ${r} completed with status ${status}`);
    // What a read brought into memory, or what a write left on the disk.
    if (p.op === "read")
      eachPiece(host, buf, p.bufferOffset, p.bytes, (b) => (h = hashBytes(h, b)));
    else
      h = hashBytes(
        h,
        host.image.bytes.subarray(sector * DISK_SECTOR_SIZE, sector * DISK_SECTOR_SIZE + p.bytes),
      );
  }
  return { h, bytes: requests * p.bytes };
}

function runNic(host: IoHost, p: IoNicPattern, requests: number, inbox: Uint8Array[], prng: Prng) {
  let h = FNV_OFFSET;
  const frame = new Uint8Array(p.frameBytes);
  for (let r = 0; r < requests; r++) {
    fillRandom(prng, frame);
    frame.set(host.nic.mac, 0);
    frame.set(host.nic.mac, 6);
    frame[12] = 0x88; // EtherType 0x88b5, for local experiments (IEEE 802)
    frame[13] = 0xb5;
    inbox.length = 0;
    const rc = host.nic.xmit(frame);
    if (rc !== 0) failed(host, p.name, `frame ${r} refused with errno ${-rc}`);
    host.deliver();
    if (inbox.length !== 1) failed(host, p.name, `frame ${r} came back ${inbox.length} times`);
    const got = inbox[0];
    if (got.length !== frame.length || got.some((x, i) => x !== frame[i])) {
      failed(host, p.name, `frame ${r} came back changed`);
    }
    h = hashBytes(h, got);
  }
  return { h, bytes: requests * p.frameBytes };
}

/** The disk image every platform starts from (the same bytes for the same seed). */
export function ioDiskImage(config: IoConfig, seed: number): MemoryDiskImage {
  const image = new MemoryDiskImage(config.diskBytes / DISK_SECTOR_SIZE);
  fillRandom(createPrng(seed ^ 0x1d15c), image.bytes);
  return image;
}

/** Boots `name`'s host for `config` (its disk image from the seed). */
export function bootIoHost(
  name: IoPlatformName,
  config: IoConfig,
  seed: number,
  inbox: Uint8Array[],
): IoHost {
  return ioPlatformByName(name).boot({
    seed,
    image: ioDiskImage(config, seed),
    diskIrq: config.diskIrq,
    nicIrq: config.nicIrq,
    onReceive: (f) => inbox.push(f),
  });
}

/** Runs every pattern of `config` on one platform. */
export function runIoPlatform(name: IoPlatformName, config: IoConfig, seed: number): IoPlatformRun {
  const inbox: Uint8Array[] = [];
  return runIoOnHost(bootIoHost(name, config, seed, inbox), inbox, config, seed);
}

/** Runs every pattern of `config` on a booted host whose NIC hands frames to `inbox`. */
export function runIoOnHost(
  host: IoHost,
  inbox: Uint8Array[],
  config: IoConfig,
  seed: number,
): IoPlatformRun {
  const name = host.platform;
  const prng = createPrng(seed);
  const buf = host.k.allocHugePage(); // 512 pfns in a row: a 1 MiB request and its offset fit
  if (buf < 0) failed(host, "setup", "no 2 MiB block for the buffers");
  const setup = host.counts();
  const rows: IoRow[] = [];
  let total = FNV_OFFSET;
  const add = (kind: "disk" | "nic", pattern: string, run: () => { h: number; bytes: number }) => {
    const before = host.counts();
    const { h, bytes } = run();
    const counts = ioCountsDelta(before, host.counts());
    counts.requests = config.requests;
    counts.bytes = bytes;
    total = fnv(total, h);
    rows.push({
      platform: name,
      pattern,
      kind,
      counts,
      perRequest: perRequest(counts),
      cyclesPerRequest: estimateIoCycles(counts, config.costs) / counts.requests,
      checksum: hex(h),
    });
  };
  for (const p of config.disk)
    add("disk", p.name, () => runDisk(host, p, config.requests, buf, prng));
  for (const p of config.nic)
    add("nic", p.name, () => runNic(host, p, config.requests, inbox, prng));
  total = hashBytes(total, host.image.bytes);
  return { platform: name, setup, bufferPfn: buf, rows, checksum: hex(total) };
}
