/*
 * A test harness for the MMU backends: a guest's memory (frames its domain owns, handed out
 * in order) and a guest kernel's page-table writer over it, with 4- or 5-level tables.
 *
 * Invariant: every page-table store goes through the one `store` the harness was given (a
 * plain RAM write for bare metal and nested paging, the trapping guestStore for shadow
 * paging), so a backend sees exactly the stores a guest kernel would make; a table frame is
 * cleared before its first entry is written. The writer is test code: it throws on misuse.
 */
import type { Domain, Hypervisor } from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";

/** Low-half PTE flags the harness writes (x86 spelling: present, RW, user, PSE). */
export const PTE_P = 0x1;
export const PTE_RW = 0x2;
export const PTE_US = 0x4;
export const PTE_PSE = 0x80;
/** Present, writable, user: the flags of every non-leaf entry the writer makes. */
export const PTE_PRW = PTE_P | PTE_RW | PTE_US;
/** No-execute, as a flag of an entry's high half. */
export const PTE_NX_HI = 0x8000_0000;

/** What the harness needs of a booted system. */
export interface HarnessWorld {
  readonly hv: Hypervisor;
  readonly ram: Ram;
}

export interface GuestMemOptions {
  /** Frames to take (default 64). */
  pages?: number;
  /** Allocate in chunks of 2^order frames (default 0). */
  order?: number;
  domid?: number;
  /** vCPUs of the domain (default 2). */
  vcpus?: number;
}

/** A guest's memory: frames its domain owns, handed out by a tiny page allocator. */
export class GuestMem<W extends HarnessWorld = HarnessWorld> {
  readonly d: Domain;
  readonly frames: number[] = [];
  private next = 0;

  constructor(
    readonly w: W,
    opts: GuestMemOptions = {},
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
      if (mfn < 0) throw new Error("test machine out of memory: give the machine more RAM");
      for (let i = 0; i < 1 << order && this.frames.length < pages; i++) this.frames.push(mfn + i);
    }
  }

  /** Frames handed out so far, in order. */
  allocated(): number[] {
    return this.frames.slice(0, this.next);
  }

  /** The next frame, cleared. */
  alloc(): number {
    const gfn = this.frames[this.next++];
    if (gfn === undefined) throw new Error("guest out of frames: pass a larger `pages`");
    this.w.ram.clearFrame(gfn);
    return gfn;
  }
}

/** A 64-bit page-table store at a guest-physical address. */
export type EntryStore = (gpa: number, lo: number, hi: number) => void;

export interface GuestTablesOptions {
  /** Paging levels, 4 or 5 (default 4). */
  levels?: number;
  /** How entries are written (default: straight to RAM, frame = guest frame). */
  store?: EntryStore;
}

/** The guest kernel's page-table writer. */
export class GuestTables<W extends HarnessWorld = HarnessWorld> {
  readonly cr3: number;
  readonly levels: number;
  private readonly storeFn: EntryStore;

  constructor(
    readonly mem: GuestMem<W>,
    options: GuestTablesOptions = {},
  ) {
    this.levels = options.levels ?? 4;
    const ram = mem.w.ram;
    this.storeFn = options.store ?? ((gpa, lo, hi) => ram.write64(gpa, lo, hi));
    this.cr3 = mem.alloc();
  }

  store(gpa: number, lo: number, hi: number): void {
    this.storeFn(gpa, lo, hi);
  }

  /** The address of va's entry at `level`, creating the tables above it. */
  slot(va: number, level: number): number {
    const ram = this.mem.w.ram;
    let table = this.cr3;
    for (let L = this.levels; L > level; L--) {
      const a = table * 4096 + (Math.floor(va / 2 ** (12 + 9 * (L - 1))) % 512) * 8;
      const lo = ram.read64lo(a);
      if ((lo & PTE_P) === 0 || (lo & PTE_PSE) !== 0) {
        const t = this.mem.alloc();
        this.store(a, (t * 4096 + PTE_PRW) >>> 0, 0);
        table = t;
      } else {
        table = (ram.read64hi(a) & 0xfffff) * 2 ** 20 + (lo >>> 12);
      }
    }
    return table * 4096 + (Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512) * 8;
  }

  /** Maps va to gfn with `flags` (low bits) and `hi` (high-half flags) as a leaf at `leafLevel` (1, 2, 3). */
  map(va: number, gfn: number, flags = PTE_PRW, leafLevel = 1, hi = 0): void {
    const f = flags | (leafLevel > 1 ? PTE_PSE : 0);
    this.store(
      this.slot(va, leafLevel),
      ((gfn % 2 ** 20) * 4096 + f) >>> 0,
      (Math.floor(gfn / 2 ** 20) | hi) >>> 0,
    );
  }

  unmap(va: number, level = 1): void {
    this.store(this.slot(va, level), 0, 0);
  }
}

export interface RefWalkOptions {
  /** Paging levels, 4 or 5 (default 4). */
  levels?: number;
  /** PFEC_* bits of the access (default 0, a supervisor read). */
  access?: number;
  /** Whether a frame on the path may be used (default: it is inside RAM). */
  owns?: (frame: number) => boolean;
}

/**
 * A reference walk of guest tables written with no shared code from @hyperlab/paging (no
 * caches, no A/D): the address the hardware reaches, or -1 where it would fault or a frame on
 * the path is not the guest's. Superpages at levels 2 and 3 are followed.
 */
export function refWalk(ram: Ram, cr3: number, va: number, options: RefWalkOptions = {}): number {
  const levels = options.levels ?? 4;
  const access = options.access ?? 0;
  const owns = options.owns ?? ((f: number) => f < ram.nrFrames);
  let table = cr3;
  let rw = PTE_RW;
  let us = PTE_US;
  let nx = 0;
  for (let L = levels; L >= 1; L--) {
    if (!(table < ram.nrFrames && owns(table))) return -1;
    const a = table * 4096 + (Math.floor(va / 2 ** (12 + 9 * (L - 1))) % 512) * 8;
    const lo = ram.read64lo(a);
    const hi = ram.read64hi(a);
    if ((lo & PTE_P) === 0) return -1;
    rw &= lo;
    us &= lo;
    nx |= hi & PTE_NX_HI;
    const next = (hi & 0xfffff) * 2 ** 20 + (lo >>> 12);
    if (L > 1 && (lo & PTE_PSE) !== 0) {
      const span = 512 ** (L - 1);
      if (L > 3 || next % span > 1) return -1;
      table = next - (next % span) + (Math.floor(va / 4096) % span);
      break;
    }
    table = next;
  }
  if (!(table < ram.nrFrames && owns(table))) return -1;
  if ((access & 2) !== 0 && rw === 0) return -1;
  if ((access & 4) !== 0 && us === 0) return -1;
  if ((access & 16) !== 0 && nx !== 0) return -1;
  return table * 4096 + (va % 4096);
}
