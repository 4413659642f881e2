/*
 * The pv-mmu bench's worlds, shared by bench/index.ts, the C reference (bench/c/pv-ref.c)
 * and test/c-reference.test.ts: the PV guest the bench updates and reads through (built as
 * the bench builds it, then warmed up by the TypeScript loops themselves), the 4 GiB tree the
 * pin bench validates, hostile mmu_update batches from a seeded PRNG, and the file that hands
 * a world's steady state (frame table, RAM, requests) to the C reference.
 *
 * Fixture file (little-endian u32 words unless said): 64 header words (magic "RFVP", RAM
 * frames, frames dumped, domid, the other domain's id, vCPUs in the system, vCPUs of the
 * domain, l1_disallow_mask's low word, flush epoch, CR3, bootstrap base lo / hi, its span,
 * batches, batch words, M2P data frames, the read-only M2P L3 (-1: none), m2p_strict, the pin
 * L4 (0: none), NXE, WP, whether the checksum covers all of RAM), the mode's 12 reserved-bit
 * masks lo then hi, then per frame: owner key (i32, core's ownerKey), count_info, type_info, writable epoch,
 * linear_pt_count (i16, padded to a word boundary); the M2P data frames; the batches (each:
 * count, foreigndom, then 4 words a request: ptr lo, ptr hi, val lo, val hi, as the
 * hypercall's guest buffer); the dumped frame numbers; then those frames.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  __HYPERVISOR_mmu_update,
  DOMID_SELF,
  MMU_MACHPHYS_UPDATE,
  MMU_NORMAL_PT_UPDATE,
  MMU_PT_UPDATE_NO_TRANSLATE,
  MMU_PT_UPDATE_PRESERVE_AD,
  VMASST_TYPE_m2p_strict,
} from "@hyperlab/abi";
import {
  createHypervisor,
  type Domain,
  FRAME_FREE,
  type Hypervisor,
  PGT_count_mask,
  type Vcpu,
} from "@hyperlab/core";
import { createMachine, createPrng } from "@hyperlab/machine";
import { scratchDir } from "../../paging/bench/fixture";
import { buildPvDomain, type PvBuildResult, type PvMmu, pvMmu } from "../src/index";

export interface PvWorld {
  hv: Hypervisor;
  pv: PvMmu;
  d: Domain;
  v: Vcpu;
  b: PvBuildResult;
  /** A second domain with a few frames (their mappings are refused). */
  other: Domain | null;
  /** The L1 the update loop rewrites (it covers the first 2 MiB after the bootstrap region). */
  l1: number;
  /** The update loop's two batches of 512 requests (4 words each). */
  batches: [Uint32Array, Uint32Array];
  /** Bytes of the bootstrap region the read loops cycle over. */
  span: number;
  /** The pin world's L4 (0 in the update world). */
  pinL4: number;
  /** Frames the fixture dumps (undefined: every nonzero frame). */
  dump?: number[];
}

/** Requests in one of the update loop's batches. */
export const BATCH = 512;
/** Untimed rounds the world runs before it is dumped (an even number: batch 1 is mapped). */
export const WARM_ROUNDS = 200;
/** Reads of each loop before the dump (the TLB is flushed after them). */
export const WARM_READS = 200_000;

/** The read loops' VAs (pv-ref.c's NEW_VA and SEQ_VA say the same). */
export const newVa = (w: PvWorld, i: number): number => w.b.virtBase + ((i * 4104) % w.span);
export const seqVa = (w: PvWorld, i: number): number => w.b.virtBase + ((i * 4) % w.span);

/** One round of the update loop: batch r & 1, as one mmu_update hypercall. */
export function updateRounds(w: PvWorld, n: number): void {
  const args = { ureqs: w.batches[0], count: BATCH, foreigndom: DOMID_SELF, pdone: 0 };
  for (let r = 0; r < n; r++) {
    args.ureqs = w.batches[r & 1];
    const rc = w.hv.hypercall(w.v, __HYPERVISOR_mmu_update, args);
    if (rc !== 0) throw new Error(`mmu_update failed: ${rc}`);
  }
}

/**
 * The bench's PV guest (64 MiB machine, 3072 pages), plus a second domain with 8 frames,
 * warmed up: WARM_ROUNDS update rounds and WARM_READS reads of each read loop, then a local
 * flush, so that the TLB is empty when the TypeScript or the C loops start.
 */
export function pvWorld(): PvWorld {
  const machine = createMachine({ ramBytes: 64 << 20, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const pv: PvMmu = hv.slot("pv-mmu");
  const d = hv.createDomain({ maxVcpus: 1, maxPages: 4096 });
  const b = buildPvDomain(hv, pv, { domain: d, nrPages: 3072 });
  const other = hv.createDomain({ maxVcpus: 1, maxPages: 16 });
  for (let i = 0; i < 8; i++) hv.allocDomainPages(other, 0);
  const v = d.vcpus[0];
  const l1 = Math.floor(pv.guestL1Slot(b.l4Mfn, b.vEnd) / 512);
  const spare = Array.from(b.p2m.slice(b.p2m.length - 2 * BATCH));
  // Two batches mapping different frames into every slot, so that each request validates a
  // new mapping and releases the old one (never the fast path).
  const batches = [0, 1].map((k) => {
    const u = new Uint32Array(BATCH * 4);
    for (let i = 0; i < BATCH; i++) {
      u[i * 4] = l1 * 4096 + i * 8;
      u[i * 4 + 2] = (spare[k * BATCH + i] * 4096 + (i % 2 === 0 ? 0x63 : 0x21)) >>> 0;
    }
    return u;
  }) as [Uint32Array, Uint32Array];
  const w: PvWorld = {
    hv,
    pv,
    d,
    v,
    b,
    other,
    l1,
    batches,
    span: b.vEnd - b.virtBase,
    pinL4: 0,
  };
  updateRounds(w, WARM_ROUNDS);
  let x = 0;
  for (let i = 0; i < WARM_READS; i++) x ^= pv.read(v, newVa(w, i), 4);
  for (let i = 0; i < WARM_READS; i++) x ^= pv.read(v, seqVa(w, i), 4);
  if (x === 0.5) throw new Error("unreachable");
  pv.flushLocal(v);
  return w;
}

/**
 * The pin bench's world: a domain whose `pages` frames are mapped by one L4, one L3, L2s and
 * pages / 512 L1s (4 KiB pages, writable), none validated yet. The bench's is 2^20 pages
 * (4 GiB); the test uses fewer.
 */
export function pinWorld(pages = 1 << 20): PvWorld {
  const machine = createMachine({ ramBytes: (pages + 8192) * 4096, cpus: 1, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [pvMmu()] }).boot();
  const pv: PvMmu = hv.slot("pv-mmu");
  const d = hv.createDomain({ maxVcpus: 1, maxPages: pages + 4096 });
  const v = d.vcpus[0];
  const ram = machine.ram;
  const data = new Float64Array(pages);
  for (let i = 0; i < pages; i++) data[i] = hv.allocDomainPages(d, 0);
  const t = () => hv.allocDomainPages(d, 0);
  const l4 = t();
  const l3 = t();
  const dump = [l4, l3];
  ram.write64(l4 * 4096, (l3 * 4096 + 0x67) >>> 0, Math.floor(l3 / 0x10_0000));
  const nL1 = pages / 512;
  for (let g = 0; g * 512 < nL1; g++) {
    const l2 = t();
    dump.push(l2);
    ram.write64(l3 * 4096 + g * 8, (l2 * 4096 + 0x67) >>> 0, Math.floor(l2 / 0x10_0000));
    for (let j = 0; j < 512 && g * 512 + j < nL1; j++) {
      const l1 = t();
      dump.push(l1);
      ram.write64(l2 * 4096 + j * 8, (l1 * 4096 + 0x67) >>> 0, Math.floor(l1 / 0x10_0000));
      const words = ram.frameWords(l1, true);
      for (let i = 0; i < 512; i++) {
        const m = data[(g * 512 + j) * 512 + i];
        words[i * 2] = ((m % 0x10_0000) * 4096 + 0x63) >>> 0;
        words[i * 2 + 1] = Math.floor(m / 0x10_0000);
      }
    }
  }
  const none = new Uint32Array(0);
  return {
    hv,
    pv,
    d,
    v,
    b: { virtBase: 0, vEnd: 0, l4Mfn: l4 } as PvBuildResult,
    other: null,
    l1: 0,
    batches: [none, none],
    span: 0,
    pinL4: l4,
    dump: dump.sort((a, b) => a - b),
  };
}

/** One mmu_update hypercall's arguments as the fixture carries them. */
export interface HostileBatch {
  foreigndom: number;
  /** 4 words a request. */
  ureqs: Uint32Array;
}

/**
 * `n` hostile mmu_update batches of 1..4 requests from `seed`: targets among the update L1,
 * the guest's other page tables of every level, its data frames, others' and Xen's frames,
 * free frames and frames beyond RAM; commands NORMAL, PRESERVE_AD, NO_TRANSLATE, MACHPHYS
 * and unknown ones; values naming any of those frames (and INVALID_MFN) with random flags,
 * including disallowed ones. Every error path of the validated update is reached.
 */
export function hostileBatches(w: PvWorld, seed: number, n: number): HostileBatch[] {
  const prng = createPrng(seed);
  const f = w.hv.frames;
  const tables: number[][] = [[], [], [], [], []];
  const foreign: number[] = [];
  let free = -1;
  for (let mfn = 1; mfn < f.nrFrames; mfn++) {
    const o = f.ownerOf(mfn);
    if (o === w.d.domid) {
      const level = f.typeInfo[mfn] >>> 29;
      if (level >= 1 && level <= 4 && (f.typeInfo[mfn] & PGT_count_mask) !== 0)
        tables[level].push(mfn);
    } else if (o === FRAME_FREE) {
      if (free < 0) free = mfn;
    } else if (foreign.length < 64) foreign.push(mfn);
  }
  const data = Array.from(w.b.p2m);
  const pick = <T>(a: readonly T[]): T => a[prng.nextInt(a.length)];
  const anyTable = (): number => pick(tables[1 + prng.nextInt(4)]);
  const frame = (): number => {
    const r = prng.nextInt(100);
    if (r < 40) return pick(data);
    if (r < 60) return anyTable();
    if (r < 70) return pick(foreign);
    if (r < 75) return free;
    if (r < 80) return f.nrFrames + prng.nextInt(4096);
    if (r < 83) return 2 ** 40 - 1;
    if (r < 88) return w.l1;
    return 0;
  };
  const out: HostileBatch[] = [];
  for (let k = 0; k < n; k++) {
    const count = 1 + prng.nextInt(4);
    const u = new Uint32Array(count * 4);
    for (let i = 0; i < count; i++) {
      const r = prng.nextInt(100);
      let target: number;
      if (r < 45) target = w.l1;
      else if (r < 55) target = pick(tables[1]);
      else if (r < 65) target = pick(tables[2]);
      else if (r < 70) target = pick(tables[3]);
      else if (r < 75) target = pick(tables[4]);
      else if (r < 90) target = pick(data);
      else target = frame();
      const c = prng.nextInt(100);
      const cmd =
        c < 70
          ? MMU_NORMAL_PT_UPDATE
          : c < 80
            ? MMU_PT_UPDATE_PRESERVE_AD
            : c < 88
              ? MMU_PT_UPDATE_NO_TRANSLATE
              : c < 95
                ? MMU_MACHPHYS_UPDATE
                : 4 + prng.nextInt(4);
      const slot = prng.nextInt(512);
      u[i * 4] = ((target % 0x10_0000) * 4096 + slot * 8 + cmd) >>> 0;
      u[i * 4 + 1] = Math.floor(target / 0x10_0000) >>> 0;
      if (cmd === MMU_MACHPHYS_UPDATE) {
        u[i * 4 + 2] = prng.nextInt(4096);
        continue;
      }
      const m = frame();
      let lo = prng.nextInt(100) < 85 ? 1 : 0; // present
      for (const bit of [0x2, 0x4, 0x20, 0x40]) if (prng.nextInt(2) === 1) lo |= bit;
      for (const bit of [0x8, 0x10, 0x80, 0x100]) if (prng.nextInt(10) === 0) lo |= bit;
      lo |= prng.nextInt(8) << 9; // AVAIL
      let hi = prng.nextInt(5) === 0 ? 0x8000_0000 : 0; // NX
      if (prng.nextInt(20) === 0) hi |= prng.nextInt(0x800) << 20; // AVAIL_HIGH, GNTTAB
      u[i * 4 + 2] = ((m % 0x10_0000) * 4096 + lo) >>> 0;
      u[i * 4 + 3] = ((Math.floor(m / 0x10_0000) & 0xf_ffff) | hi) >>> 0;
    }
    // Now and then the domain names itself by number, which do_mmu_update refuses.
    const foreigndom = prng.nextInt(50) === 0 ? w.d.domid : DOMID_SELF;
    out.push({ foreigndom, ureqs: u });
  }
  return out;
}

/** FNV-1a-style over 32-bit words: the checksum pv-ref.c's `hash` also computes. */
export function hashWords(h: number, a: ArrayLike<number>): number {
  let x = h;
  for (let i = 0; i < a.length; i++) x = Math.imul(x ^ a[i], 0x01000193) >>> 0;
  return x;
}

/** The frames a world's RAM checksum covers (every frame, or the pin world's tables). */
export function hashedFrames(w: PvWorld): number[] {
  if (w.dump !== undefined) return w.dump;
  return Array.from({ length: w.hv.machine.ram.nrFrames }, (_, i) => i);
}

/** Writes `w`'s steady state for the C reference, with `extra` batches after the loop's two. */
export function writePvFixture(w: PvWorld, path: string, extra: HostileBatch[] = []): void {
  const { hv, pv, d } = w;
  const ram = hv.machine.ram;
  const f = hv.frames;
  const nr = f.nrFrames;
  let mfns = w.dump;
  if (mfns === undefined) {
    mfns = [];
    for (let mfn = 0; mfn < ram.nrFrames; mfn++) {
      const fw = ram.frameWords(mfn, false);
      for (let i = 0; i < fw.length; i++) {
        if (fw[i] !== 0) {
          mfns.push(mfn);
          break;
        }
      }
    }
  }
  const all: HostileBatch[] = [
    { foreigndom: DOMID_SELF, ureqs: w.batches[0] },
    { foreigndom: DOMID_SELF, ureqs: w.batches[1] },
    ...extra,
  ];
  let batchWords = 0;
  for (const b of all) batchWords += 2 + b.ureqs.length;
  const header = new Uint32Array(64 + 24);
  header.set([
    0x50564652,
    nr,
    mfns.length,
    d.domid,
    w.other === null ? 0xffff_ffff : w.other.domid,
    hv.vcpus.length,
    d.vcpus.length,
    pv.pt.l1DisallowLo(d),
    pv.pt.flushEpoch,
    w.v.cr3Mfn,
    w.b.virtBase % 2 ** 32,
    Math.floor(w.b.virtBase / 2 ** 32),
    w.span,
    all.length,
    batchWords,
    pv.m2p.dataFrames.length,
    pv.pt.roMptL3 >>> 0,
    d.vmAssist.has(VMASST_TYPE_m2p_strict) ? 1 : 0,
    w.pinL4,
    pv.mode.nxe ? 1 : 0,
    pv.mode.wp ? 1 : 0,
    w.dump === undefined ? 1 : 0,
  ]);
  header.set(pv.mode.rsvdLo, 64);
  header.set(pv.mode.rsvdHi, 76);
  const linear = new Int16Array(nr + (nr & 1));
  linear.set(pv.pt.linear);
  const batches = new Uint32Array(batchWords);
  let at = 0;
  for (const b of all) {
    batches[at++] = b.ureqs.length / 4;
    batches[at++] = b.foreigndom;
    batches.set(b.ureqs, at);
    at += b.ureqs.length;
  }
  const frames = new Uint32Array(mfns.length * 1024);
  for (let i = 0; i < mfns.length; i++) frames.set(ram.frameWords(mfns[i], false), i * 1024);
  const parts = [
    header,
    f.ownerKeys,
    f.countInfo,
    f.typeInfo,
    pv.pt.writableEpoch,
    linear,
    new Uint32Array(pv.m2p.dataFrames),
    batches,
    new Uint32Array(mfns),
    frames,
  ];
  writeFileSync(
    path,
    Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))),
  );
}

export const PV_C_SOURCE = fileURLToPath(new URL("./c/pv-ref.c", import.meta.url));

/** Compiles pv-ref.c with gcc -O2 into a fresh temporary directory; the binary's path. */
export function buildPvReference(): string {
  const dir = scratchDir("hyperlab-pv-ref-");
  const bin = join(dir, "pv-ref");
  execFileSync("gcc", ["-O2", "-o", bin, PV_C_SOURCE], { stdio: "inherit" });
  return bin;
}

/** Writes `w`'s fixture (with `extra` batches) into a fresh temporary directory; its path. */
export function pvFixtureFile(w: PvWorld, extra: HostileBatch[] = []): string {
  const path = join(scratchDir("hyperlab-pv-fixture-"), "fixture.bin");
  writePvFixture(w, path, extra);
  return path;
}

/** Runs pv-ref (`mode` bench, check, pin or pincheck, for `n`); its lines split on tabs. */
export function runPvReference(
  bin: string,
  fixture: string,
  mode: "bench" | "check" | "pin" | "pincheck",
  n: number,
): Map<string, string[]> {
  const text = execFileSync(bin, [fixture, mode, String(n)], {
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  const lines = new Map<string, string[]>();
  for (const line of text.trim().split("\n")) {
    const [name, ...rest] = line.split("\t");
    lines.set(name, rest);
  }
  return lines;
}
