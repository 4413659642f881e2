/*
 * The rows of the split-driver cases (the io workload's row shape) and what every platform's
 * case shares: the raw image filled from the case's seed.
 *
 * Invariant: perRequest is counts / requests, field by field; nothing else enters a row.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPrng } from "@hyperlab/machine";
import type { BlkbackMode } from "@hyperlab/split-drivers";

/** A platform of the split-driver cases: blkback's data mode (netback always grant-copies). */
export type SplitIoPlatform = `xen-split-${BlkbackMode}` | "kvm-virtio";

/**
 * Counts of a split-driver case, totals over its measured requests (exact). The row has the
 * shape of the io workload's IoRow (platform, pattern, kind, counts, perRequest,
 * cyclesPerRequest, checksum); the count names are the split drivers' own.
 */
export interface SplitIoCounts {
  /** Requests completed: disk requests answered, or frames received by the other domU. */
  requests: number;
  /** Payload bytes of those requests. */
  bytes: number;
  /** Hypercalls of both ends (grant table ops, EVTCHNOP_send). */
  hypercalls: number;
  /** Grant operations: the backend's map/unmap/copy elements (inside hypercalls). */
  grantOps: number;
  /** Grant entries the frontends wrote or ended in their own tables (no hypercall). */
  frontendGrantOps: number;
  /** Event channel notifications (EVTCHNOP_send) of both ends. */
  notifications: number;
  /** VM exits: 0 on this PV host (a PV hypercall is a trap into Xen, not a VM exit). */
  vmExits: number;
  /** Copies: grant copy elements, plus blkfront's CPU copies through persistent pages. */
  copies: number;
  /** Bytes moved by grant copies and by CPU copies (of the frontends and dom0). */
  copiedBytes: number;
  /** The CPU-copied part of copiedBytes. */
  cpuCopyBytes: number;
}

export type SplitIoCountName = keyof SplitIoCounts & string;

/** Count names in report order, with their unit. */
export const SPLIT_IO_COUNT_INFO: readonly { name: SplitIoCountName; unit: string }[] = [
  { name: "requests", unit: "requests" },
  { name: "bytes", unit: "bytes" },
  { name: "hypercalls", unit: "calls" },
  { name: "grantOps", unit: "grant ops" },
  { name: "frontendGrantOps", unit: "grant entries" },
  { name: "notifications", unit: "events" },
  { name: "vmExits", unit: "exits" },
  { name: "copies", unit: "copies" },
  { name: "copiedBytes", unit: "bytes" },
  { name: "cpuCopyBytes", unit: "bytes" },
];

/** Each count of a case divided by its requests. */
export type SplitIoPerRequest = Record<SplitIoCountName, number>;

/** One case: a pattern on a platform. */
export interface SplitIoResult {
  platform: SplitIoPlatform;
  pattern: string;
  kind: "disk" | "nic";
  /** Totals over the measured requests; warm-up requests are not counted. */
  counts: SplitIoCounts;
  perRequest: SplitIoPerRequest;
  /** Estimated cycles per request: counts × the cited costs. */
  cyclesPerRequest: number;
  /** sha256 of every byte read (disk) or received (nic), and of the image after writes. */
  checksum: string;
}

/**
 * A row's key in results.csv and `hyperlab study compare`: its kind and pattern, then its
 * platform ("disk/4k-random-read kvm-virtio"), unique within a study's rows.
 */
export function splitRowKey(r: { kind: string; pattern: string; platform: string }): string {
  return `${r.kind}/${r.pattern} ${r.platform}`;
}

export function row(
  platform: SplitIoPlatform,
  kind: "disk" | "nic",
  pattern: string,
  counts: SplitIoCounts,
  cycles: number,
  checksum: string,
): SplitIoResult {
  const perRequest = {} as SplitIoPerRequest;
  for (const { name } of SPLIT_IO_COUNT_INFO) perRequest[name] = counts[name] / counts.requests;
  return {
    platform,
    pattern,
    kind,
    counts,
    perRequest,
    cyclesPerRequest: cycles / counts.requests,
    checksum,
  };
}

export function filledImage(bytes: number, seed: number): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), "hyperlab-split-io-"));
  const path = join(dir, "xvda.img");
  const img = new Uint8Array(bytes);
  const rng = createPrng(seed);
  for (let i = 0; i < img.length; i += 4) {
    const x = rng.nextU32();
    img[i] = x & 0xff;
    img[i + 1] = (x >>> 8) & 0xff;
    img[i + 2] = (x >>> 16) & 0xff;
    img[i + 3] = x >>> 24;
  }
  writeFileSync(path, img);
  return { dir, path };
}
