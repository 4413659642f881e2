import { createHypervisor, type Domain, type Hypervisor, type Plugin } from "@hyperlab/core";
import { createMachine, type Ram } from "@hyperlab/machine";
import { type NptMmu, type NptMmuOptions, nptMmu } from "../src/index";

export const P = 0x1;
export const RW = 0x2;
export const US = 0x4;
export const A = 0x20;
export const D = 0x40;
export const PSE = 0x80;
export const G = 0x100;
export const NX_HI = 0x8000_0000;
export const PRW = P | RW | US;

/** No caches at all: every translation is a full 2D walk. */
export const NO_CACHES: NptMmuOptions = {
  tlb: false,
  nestedPwcEntries: 0,
  nestedTlbEntries: 0,
};

export interface World {
  hv: Hypervisor;
  npt: NptMmu;
  ram: Ram;
}

export function boot(
  options: NptMmuOptions = {},
  ramBytes = 64 << 20,
  extra: Plugin[] = [],
): World {
  const machine = createMachine({ ramBytes, cpus: 2, seed: 1 });
  const hv = createHypervisor({ machine, plugins: [nptMmu(options), ...extra] }).boot();
  return { hv, npt: hv.slot("nptMmu"), ram: machine.ram };
}

/** A guest's memory: frames its domain owns, handed out by a tiny page allocator. */
export class GuestMem {
  readonly d: Domain;
  readonly frames: number[] = [];
  private next = 0;

  constructor(
    readonly w: World,
    opts: { pages?: number; order?: number; domid?: number; vcpus?: number } = {},
  ) {
    const order = opts.order ?? 0;
    const pages = opts.pages ?? 64;
    this.d = w.hv.createDomain({
      domid: opts.domid,
      maxVcpus: opts.vcpus ?? 2,
      maxPages: pages + (1 << order),
    });
    while (this.frames.length < pages) {
      const mfn = w.hv.allocDomainPages(this.d, order);
      if (mfn < 0) throw new Error("test machine out of memory");
      for (let i = 0; i < 1 << order && this.frames.length < pages; i++) this.frames.push(mfn + i);
    }
  }

  alloc(): number {
    const gfn = this.frames[this.next++];
    if (gfn === undefined) throw new Error("guest out of frames");
    this.w.ram.clearFrame(gfn);
    return gfn;
  }
}

/** The guest kernel's page-table builder (writes its own tables; gfn = mfn it owns). */
export class GuestTables {
  readonly cr3: number;

  constructor(
    readonly mem: GuestMem,
    readonly levels = 4,
  ) {
    this.cr3 = mem.alloc();
  }

  /** Maps va to gfn with `flags` (lo bits), `hi` flag bits, as a leaf at `leafLevel` (1, 2, 3). */
  map(va: number, gfn: number, flags = PRW, leafLevel = 1, hi = 0): void {
    const ram = this.mem.w.ram;
    let table = this.cr3;
    for (let L = this.levels; L > leafLevel; L--) {
      const a = table * 4096 + (Math.floor(va / 2 ** (12 + 9 * (L - 1))) % 512) * 8;
      const lo = ram.read64lo(a);
      if ((lo & P) === 0 || (lo & PSE) !== 0) {
        const t = this.mem.alloc();
        ram.write64(a, (t * 4096 + PRW) >>> 0, 0);
        table = t;
      } else {
        table = (ram.read64hi(a) & 0xfffff) * 2 ** 20 + (lo >>> 12);
      }
    }
    const a = table * 4096 + (Math.floor(va / 2 ** (12 + 9 * (leafLevel - 1))) % 512) * 8;
    const f = flags | (leafLevel > 1 ? PSE : 0);
    ram.write64(a, ((gfn % 2 ** 20) * 4096 + f) >>> 0, (Math.floor(gfn / 2 ** 20) | hi) >>> 0);
  }
}

/** A reference walk of guest tables (no caches, no A/D): the guest-physical address or -1. */
export function refWalk(ram: Ram, cr3: number, va: number, levels: number, access = 0): number {
  let table = cr3;
  let rw = RW;
  let us = US;
  let nx = 0;
  for (let L = levels; L >= 1; L--) {
    const a = table * 4096 + (Math.floor(va / 2 ** (12 + 9 * (L - 1))) % 512) * 8;
    const lo = ram.read64lo(a);
    const hi = ram.read64hi(a);
    if ((lo & P) === 0) return -1;
    rw &= lo;
    us &= lo;
    nx |= hi & NX_HI;
    const next = (hi & 0xfffff) * 2 ** 20 + (lo >>> 12);
    if (L > 1 && (lo & PSE) !== 0) {
      const span = 512 ** (L - 1);
      if (L > 3 || next % span > 1) return -1;
      table = next - (next % span) + (Math.floor(va / 4096) % span);
      break;
    }
    table = next;
    if (table >= ram.nrFrames) return -1;
  }
  if ((access & 2) !== 0 && rw === 0) return -1;
  if ((access & 4) !== 0 && us === 0) return -1;
  if ((access & 16) !== 0 && nx !== 0) return -1;
  return table * 4096 + (va % 4096);
}

/** Memory references (guest + nested) made by `fn`. */
export function refsOf(npt: NptMmu, fn: () => void): number {
  const before = npt.counts.guestRefs + npt.counts.nestedRefs;
  fn();
  return npt.counts.guestRefs + npt.counts.nestedRefs - before;
}

export const seed = 20261124;
export const runs = (n: number) => (process.env.HYPERLAB_LONG ? n * 20 : n);
