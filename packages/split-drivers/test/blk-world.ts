// Shared set-up for the block tests and bench: dom0 with blkback on a raw image in a temp
// directory, a domU with blkfront, the vbd device directories written as libxl writes them.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPrng } from "@hyperlab/machine";
import {
  BlkBack,
  type BlkbackMode,
  type BlkbackOptions,
  BlkFront,
  type BlkfrontDisk,
  type BlkfrontOptions,
  GnttabGuest,
  type XenbusBus,
  xenbusRegisterBackend,
  xenbusRegisterFrontend,
} from "../src/index";
import { until, world } from "./world";

/** The vbd device number of xvda (202 << 8), as libxl names it. */
export const XVDA = 51712;

export interface BlkWorldOptions {
  mode?: BlkbackMode;
  /** Keys the toolstack writes in the backend directory besides the handshake's (`mode`). */
  backendKeys?: Record<string, string>;
  back?: Partial<BlkbackOptions>;
  front?: Partial<BlkfrontOptions>;
  /** Image size in 512-byte sectors (default 4096: 2 MiB). */
  sectors?: number;
  seed?: number;
  /** Do not start the backend bus (a test starts its own). */
  noBackend?: boolean;
}

/** A temp raw image filled from a seeded PRNG; `path` and a cleanup. */
export function makeImage(
  sectors: number,
  seed = 1,
): { path: string; dir: string; bytes: Uint8Array } {
  const dir = mkdtempSync(join(tmpdir(), "hyperlab-blk-"));
  const path = join(dir, "disk.img");
  const bytes = new Uint8Array(sectors * 512);
  const rng = createPrng(seed);
  for (let i = 0; i < bytes.length; i += 4) {
    const x = rng.nextU32();
    bytes[i] = x & 0xff;
    bytes[i + 1] = (x >>> 8) & 0xff;
    bytes[i + 2] = (x >>> 16) & 0xff;
    bytes[i + 3] = x >>> 24;
  }
  writeFileSync(path, bytes);
  return { path, dir, bytes };
}

export function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

export async function blkWorld(o: BlkWorldOptions = {}) {
  const w = world();
  // xl mem-max: room for rings, data pools and the copy mode's buffers.
  w.dom0.maxPages += 512;
  const u = await w.bootDomU();
  u.domain.maxPages += 1024;
  const img = makeImage(o.sectors ?? 4096, o.seed ?? 1);
  const backOpts: BlkbackOptions = { image: img.path, mode: o.mode ?? "map", ...o.back };
  let back = new BlkBack(w.dom0Kernel, backOpts);
  let backBus: XenbusBus | null = null;
  const startBackend = async (b?: BlkBack) => {
    if (b !== undefined) back = b;
    backBus = xenbusRegisterBackend(w.dom0Kernel, back);
    await backBus.start();
    return back;
  };
  if (!o.noBackend) await startBackend();
  const gnttab = new GnttabGuest(w.hv, u.domain, 4);
  const front = new BlkFront(u.kernel, { gnttab, ...o.front });
  const frontBus = xenbusRegisterFrontend(u.kernel, front);
  await frontBus.start();
  const { fe, be } = await w.addDevice(u.domain.domid, "vbd", XVDA, o.backendKeys);
  const connected = async () => {
    await until(async () => (await w.state(fe)) === "4" && (await w.state(be)) === "4");
    const d = front.disk(XVDA)!;
    await d.ready();
    return d;
  };
  let disk: BlkfrontDisk | null = null;
  if (!o.noBackend) disk = await connected();
  return {
    ...w,
    u,
    img,
    get back() {
      return back;
    },
    get backBus() {
      return backBus;
    },
    startBackend,
    backOpts,
    front,
    frontBus,
    gnttab,
    fe,
    be,
    connected,
    disk: disk as BlkfrontDisk,
    /** The image file's bytes now. */
    image: () => new Uint8Array(readFileSync(img.path)),
    cleanup: () => rmSync(img.dir, { recursive: true, force: true }),
  };
}

export type BlkWorld = Awaited<ReturnType<typeof blkWorld>>;
