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
