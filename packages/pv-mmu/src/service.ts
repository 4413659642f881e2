/*
 * The PV MMU service: the vCPU's view of memory (translate through its TLB, guest reads and
 * writes), per-vCPU state and flushes, and per-domain lifecycle. The hypercalls it serves
 * are in the files beside it, one per upstream seam, as plain functions of a PvMmuContext:
 * mmu-update.ts (do_mmu_update, do_update_va_mapping), mmuext.ts (do_mmuext_op),
 * memory-op.ts (xen/common/memory.c) and ptwr.ts (writable page-table emulation); page types
 * and validation are in pv-mmu.ts (get_page_type and the l1..l4 validation of mm.c).
 *
 * Invariants: a vCPU's cr3Mfn / userCr3Mfn each hold one general and one L4 type reference;
 * a pin holds one of each; both are dropped by the one cleanup path, `domainDestroyed`. A
 * translation is a TLB hit only where paging's tlbGrants allows it, else a walk. After any
 * call that changes a mapping a guest may still cache, the guest's own flush is what makes
 * the change visible, as on hardware, except where Xen flushes for safety (type changes,
 * linear page-table updates, frames reused). Nothing here throws on guest input.
 */

import { vcpu_guest_context_x86_64 } from "@hyperlab/abi";
import {
  type Domain,
  type FrameTable,
  type Hypervisor,
  type MmuBackend,
  type MmuFault,
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_reserved_bit,
  PFEC_user_mode,
  PFEC_write_access,
  PGT_count_mask,
  PGT_l1_page_table,
  PGT_l4_page_table,
  PGT_pinned,
  PGT_type_mask,
  PGT_validated,
  PGT_writable_page,
  type PvMmuService,
  type Vcpu,
} from "@hyperlab/core";
import { CHUNK_FRAMES, type Ram } from "@hyperlab/machine";
import {
  CpuTlbs,
  createPagingMode,
  type PagingMode,
  PERM_DIRTY,
  PERM_GLOBAL,
  PERM_NX,
  PERM_RW,
  PERM_USER,
  type Tlb,
  type TlbConfig,
  WalkResult,
  walk,
} from "@hyperlab/paging";
import type { PvMmuContext, PvMmuCounters, PvVcpu } from "./context";
import { pvMmuError } from "./errors";
import { M2p } from "./m2p";
import type { MemoryOpArgs } from "./memory-op";
import * as memoryOp from "./memory-op";
import type { MmuUpdateArgs, UpdateVaMappingArgs } from "./mmu-update";
import * as mmuUpdateOps from "./mmu-update";
import type { MmuextOpArgs } from "./mmuext";
import * as mmuextOps from "./mmuext";
import * as ptwr from "./ptwr";
import { PvPageTables } from "./pv-mmu";

export type { PvMmuCounters } from "./context";
export type { MemoryOpArgs, MemoryReservation } from "./memory-op";
export type { MmuUpdate, MmuUpdateArgs, UpdateVaMappingArgs } from "./mmu-update";
export type { MmuextOp, MmuextOpArgs } from "./mmuext";

/*
 * The read path's constants, as const enums: esbuild (tsx and tsup alike) writes each use as
 * a number literal. A module-level `const` is a `var` in the bundle (dist/), which V8 loads
 * from the module's context and checks at every use; an imported binding is a cell load and a
 * check (h59 and h69 found the same). The load-time check below keeps S and P equal to the
 * constants they stand for (core's PFEC_* and paging's PERM_*).
 */
const enum S {
  /** 1 / 4096: multiplying by it divides by the page size exactly (a power of two), faster. */
  INV_PAGE = 1 / 4096,
  /** TLB tags: a 64-bit PV vCPU's kernel and user page tables (Xen's PCIDs for each). */
  TAG_KERNEL = 0,
  TAG_USER = 1,
  /** No root: a root is a frame number or -1 (none), so this matches nothing. */
  NO_ROOT = -3,
  /** Access bits (paging's ACCESS_*, core's PFEC_*). */
  WRITE = 0x02,
  USER = 0x04,
  FETCH = 0x10,
  /** log2 of machine's CHUNK_FRAMES (frames per 2 MiB chunk of RAM). */
  CHUNK_FRAME_SHIFT = 9,
}

/** Rights bits of a TLB entry (paging's PERM_*), the same way. */
const enum P {
  RW = 0x02,
  USER = 0x04,
  NX = 0x08,
  DIRTY = 0x40,
}

if (
  S.WRITE !== PFEC_write_access ||
  S.USER !== PFEC_user_mode ||
  S.FETCH !== PFEC_insn_fetch ||
  P.RW !== PERM_RW ||
  P.USER !== PERM_USER ||
  P.NX !== PERM_NX ||
  P.DIRTY !== PERM_DIRTY ||
  S.INV_PAGE * 4096 !== 1 ||
  1 << S.CHUNK_FRAME_SHIFT !== CHUNK_FRAMES
) {
  throw new Error(
    "service.ts: the const enums S and P disagree with the constants they stand for.",
  );
}

/**
 * paging's tlbGrants (may a TLB hit's rights `perms` serve `access`; CR0.WP from `mode`): the
 * same rule on S's and P's literals. test/pv-constants.test.ts holds the two equal.
 */
export function grants(perms: number, access: number, mode: PagingMode): boolean {
  if ((access & S.WRITE) !== 0) {
    if ((perms & P.DIRTY) === 0) return false;
    if ((perms & P.RW) === 0 && ((access & S.USER) !== 0 || mode.wp)) return false;
  }
  if ((access & S.USER) !== 0 && (perms & P.USER) === 0) return false;
  return (access & S.FETCH) === 0 || (perms & P.NX) === 0;
}

/** Options of the PV MMU. */
export interface PvMmuOptions {
  /** TLB shape per vCPU (paging's Tlb config); the default is paging's Skylake-like TLB. */
  tlb?: TlbConfig;
}

export class PvMmu implements MmuBackend, PvMmuService {
  readonly kind = "pv";

  // `declare`d, as every field the constructor sets (h71's finding for PvPageTables): an
  // ES2022 class field is defined as undefined first, and V8 then tracks neither its
  // representation nor its value's map, so a hot path re-checks the map of `ram` or `tlbs`.
  declare readonly hv: Hypervisor;

  declare readonly frames: FrameTable;

  declare readonly ram: Ram;

  declare readonly pt: PvPageTables;

  declare readonly m2p: M2p;

  readonly fault: MmuFault = { errorCode: 0, va: 0 };

  /** The paging mode of a 64-bit PV vCPU: 4 levels, NX, WP. */
  readonly mode: PagingMode = createPagingMode({ levels: 4 });

  /** Walks made, and the entries they read and wrote (A/D), for studies. */
  readonly walkCounts = { walks: 0, reads: 0, writes: 0 };

  private readonly out = new WalkResult();
  /**
   * Told the machine address of every paging-structure entry a hardware walk reads, in the
   * order read (for a data-cache model such as the study's); null for none.
   */
  walkRefSink: ((maddr: number) => void) | null = null;
  /** What the hypercall handlers (mmu-update.ts, mmuext.ts, memory-op.ts, ptwr.ts) run with. */
  declare private readonly ctx: PvMmuContext;

  /** One TLB per vCPU (by uid); tags 0 and 1 are the kernel and user tables. */
  declare private readonly tlbs: CpuTlbs;

  /*
   * Fast path (as native-mmu's): the most recent translation, of any vCPU. The same vCPU
   * touching the same page in the same mode again would hit that entry in the first TLB level,
   * where it is already most recently used, so it is counted as exactly that hit (a level-0
   * lookup and hit) without searching. Every other translation and every flush clears it.
   */
  private fastVcpu: Vcpu | null = null;

  /** The fast path's root in guest kernel mode and in guest user mode (NO_ROOT for the other). */
  private fastKernelRoot: number = S.NO_ROOT;

  private fastUserRoot: number = S.NO_ROOT;

  /** Whether the fast path's rights allow a guest read (tlbGrants for a user-mode read). */
  private fastReadable = false;

  /** The first VA of the fast path's page; NaN for none (no VA is in range of it). */
  private fastVa = Number.NaN;

  private fastMfn = 0;

  private fastPerms = 0;

  private fastCounters: Float64Array = new Float64Array(2);

  /**
   * The fast path page's words, which aligned u32 reads use directly: null until the first
   * such read finds the frame backed (an unbacked frame reads as zeros and is looked up again).
   */
  private fastWords: Uint32Array | null = null;

  /** The VA translateSlow translates (set by translate just before the call). */
  private slowVa = 0;

  /** The 2 MiB chunk of RAM translateSlow last read a word from (by number) and its words,
   * once backed: a read on it skips Ram's frame check and chunk lookup. */
  private readChunkNo = -1;
  private readChunk: Uint32Array = new Uint32Array(0);

  /**
   * The vCPU translateSlow last served, with its state and TLB. A vCPU's PvVcpu and Tlb, once
   * made, are never replaced, so they are taken from their arrays (bounds, hole and undefined
   * checks in V8's code) only when the vCPU changes.
   */
  private slowVcpu: Vcpu | null = null;
  private slowState: PvVcpu | null = null;
  private slowTlb: Tlb | null = null;

  private readonly vcpuState: (PvVcpu | undefined)[] = [];

  private lastFrees = 0;

  counters: PvMmuCounters = {
    mmuUpdates: { value: 0 },
    ptwrEmulations: { value: 0 },
    tlbFlushes: { value: 0 },
    pageFaults: { value: 0 },
    remoteFlushes: { value: 0 },
  };

  constructor(hv: Hypervisor, options: PvMmuOptions = {}) {
    this.hv = hv;
    this.frames = hv.frames;
    this.ram = hv.machine.ram;
    this.pt = new PvPageTables(hv, {
      flushDomain: (domid) => this.flushDomain(domid),
      flushEverything: () => this.flushEverything(),
    });
    this.m2p = new M2p(this.frames, this.ram);
    this.pt.roMptL3 = this.m2p.l3;
    const prng = hv.machine.prng.fork("pv-mmu");
    const tlbs =
      options !== null && typeof options === "object"
        ? CpuTlbs.fromOption(options.tlb, () => prng.nextU32())
        : undefined;
    if (tlbs === undefined || tlbs.config === null) {
      throw pvMmuError(
        "PV_MMU_BAD_OPTION",
        `pvMmu option tlb must be a TlbConfig from @hyperlab/paging (a PV vCPU always has a TLB), got ${String(options?.tlb)}.`,
      );
    }
    this.tlbs = tlbs;
    this.lastFrees = hv.machine.frames.nrFrees;
    const self = this;
    this.ctx = {
      hv,
      frames: this.frames,
      ram: this.ram,
      pt: this.pt,
      m2p: this.m2p,
      fault: this.fault,
      get counters() {
        return self.counters;
      },
      pvVcpu: (v) => this.pv(v),
      flushLocal: (v) => this.flushLocal(v),
      flushOne: (v, va) => this.flushOne(v, va),
      flushDomain: (domid) => this.flushDomain(domid),
      flushIfFramesReused: () => this.flushIfFramesReused(),
    };
  }

  // ---- vCPU state and TLB ----

  private pv(v: Vcpu): PvVcpu {
    let s = this.vcpuState[v.uid];
    if (s === undefined) {
      s = {
        roots: new Float64Array([-2, -2]),
        flushes: 0,
        ldtBase: 0,
        ldtEnts: 0,
        ldtLoads: 0,
        contextLoaded: false,
      };
      this.vcpuState[v.uid] = s;
    }
    if (!s.contextLoaded && v.vcpuId !== 0) {
      // A vCPU VCPUOP_initialise started takes its LDT from that context (arch_set_info_guest).
      const c = this.hv.vcpuAreas.guestContext(v);
      if (c !== undefined) {
        s.contextLoaded = true;
        const dv = new DataView(c.buffer, c.byteOffset, c.byteLength);
        const GC = vcpu_guest_context_x86_64.fields;
        const ents = dv.getUint32(GC.ldt_ents.offset, true);
        s.ldtEnts = ents;
        s.ldtBase =
          ents === 0
            ? 0
            : // A 48-bit plain number, as every VA here (canonical bits 63..48 dropped).
              (dv.getUint32(GC.ldt_base.offset + 4, true) & 0xffff) * 2 ** 32 +
              dv.getUint32(GC.ldt_base.offset, true);
      }
    }
    return s;
  }

  /** The vCPU's TLB (paging's Tlb; tags 0 and 1 are the kernel and user tables). */
  tlbOf(v: Vcpu): Tlb {
    return this.tlbs.get(v.uid);
  }

  /** The vCPU's LDT as MMUEXT_SET_LDT (or VCPUOP_initialise) set it: Xen's arch.pv.ldt_base/ents. */
  ldtOf(v: Vcpu): { base: number; ents: number; loads: number } {
    const s = this.pv(v);
    return { base: s.ldtBase, ents: s.ldtEnts, loads: s.ldtLoads };
  }

  /** How many times the vCPU's TLB was flushed (locally, by a CR3 load, or by a remote flush). */
  /** Hands the entries the last walk read to walkRefSink (from the walk's first level down). */
  private emitWalkRefs(out: WalkResult): void {
    const sink = this.walkRefSink;
    if (sink === null) return;
    const top = out.pwcLevel > 0 ? out.pwcLevel - 1 : this.mode.levels;
    for (let i = 0; i < out.reads; i++) sink(out.entryMaddr[top - i]);
  }

  tlbFlushCount(v: Vcpu): number {
    return this.pv(v).flushes;
  }

  flushLocal(v: Vcpu): void {
    this.fastVa = Number.NaN;
    this.counters.tlbFlushes.value++;
    const s = this.pv(v);
    s.flushes++;
    this.tlbs.get(v.uid).flushNonGlobal();
  }

  flushOne(v: Vcpu, va: number): void {
    this.fastVa = Number.NaN;
    const t = this.tlbs.get(v.uid);
    t.invlpg(va, S.TAG_KERNEL);
    t.invlpg(va, S.TAG_USER);
  }

  /** Flushes every vCPU of a domain (Xen's flush_tlb_mask(d->dirty_cpumask)). */
  flushAll(d: Domain): void {
    for (const v of d.vcpus) this.flushLocal(v);
  }

  private flushDomain(domid: number): void {
    const d = this.hv.domain(domid);
    if (d !== undefined) for (const v of d.vcpus) this.flushLocal(v);
  }

  private flushEverything(): void {
    for (const v of this.hv.vcpus) this.flushLocal(v);
    this.lastFrees = this.hv.machine.frames.nrFrees;
  }

  /**
   * Before frames are handed to a guest: if any frame was freed since the last full flush,
   * some TLB may still map it; flush (Xen's filtered flush on allocation, without timestamps).
   */
  flushIfFramesReused(): void {
    if (this.hv.machine.frames.nrFrees !== this.lastFrees) this.pt.flushAll();
  }

  // ---- translation (the mmu slot) ----

  /**
   * Translates `va` for `v` as the hardware does for a 64-bit PV guest: kernel and user run in
   * ring 3 on their own L4 (cr3Mfn / userCr3Mfn), so every walk is a user-mode walk; a fault
   * reports the error code Xen gives the guest (U clear in guest kernel mode).
   */
  translate(v: Vcpu, va: number, access: number): number {
    const acc = access | S.USER;
    const off = va - this.fastVa;
    if (off >= 0 && off < 4096 && this.fastHit(v, acc)) return this.fastMfn * 4096 + off;
    // The VA goes by a field: as an argument to a call V8 does not inline (translateSlow is
    // too big), a VA above 2^30 would be boxed, a heap allocation per TLB lookup.
    this.slowVa = va;
    return this.translateSlow(v, acc, 0);
  }

  /**
   * Whether the fast path's page (va within it, the caller checked) serves vCPU `v` in its
   * current mode and root for `acc`; if so, counts the first-level TLB lookup and hit it stands
   * for.
   */
  private fastHit(v: Vcpu, acc: number): boolean {
    // `=== true`: one compare where a plain truth test of a field V8 cannot type is five.
    if (
      v === this.fastVcpu &&
      (v.inKernel === true
        ? v.cr3Mfn === this.fastKernelRoot
        : v.userCr3Mfn === this.fastUserRoot) &&
      (acc === S.USER ? this.fastReadable === true : grants(this.fastPerms, acc, this.mode))
    ) {
      const c = this.fastCounters;
      c[0]++; // level-0 lookups
      c[1]++; // level-0 hits
      return true;
    }
    return false;
  }

  /**
   * translate and read past their fast paths, for the VA in slowVa: the TLB, then
   * (translateWalk) a walk. With `size` 0, translates for `acc` (the machine address, or -1
   * after a fault); with 1, 2 or 4, reads that many bytes (acc a guest read: the value, or -1).
   * One function for both, too big for V8 to inline: translate and read keep only their fast
   * paths and a call, small enough to be inlined into the caller's loop.
   */
  private translateSlow(v: Vcpu, acc: number, size: 0 | 1 | 2 | 4): number {
    const va = this.slowVa;
    const vpn = Math.floor(va * S.INV_PAGE);
    const kernel = v.inKernel === true;
    const tag = kernel ? S.TAG_KERNEL : S.TAG_USER;
    const root = kernel ? v.cr3Mfn : v.userCr3Mfn;
    this.fastVa = Number.NaN;
    let s: PvVcpu;
    let tlb: Tlb;
    if (v === this.slowVcpu) {
      s = this.slowState!;
      tlb = this.slowTlb!;
    } else {
      s = this.vcpuState[v.uid] ?? this.pv(v);
      tlb = this.tlbs.byCpu[v.uid] ?? this.tlbs.get(v.uid);
      this.slowVcpu = v;
      this.slowState = s;
      this.slowTlb = tlb;
    }
    if (s.roots[tag] !== root) {
      // A new base pointer for this mode: a CR3 load under this tag's PCID.
      tlb.flushTag(tag);
      s.roots[tag] = root;
    }
    // `=== true`: lookup's answer is a phi of its own `true` and lookupRest's tagged return;
    // a plain truth test of it is V8's generic ToBoolean (Smi, false, "", undetectable, heap
    // number and BigInt tests), a pointer compare this way.
    if (tlb.lookup(va, tag) === true) {
      const p = tlb.hitPerms;
      const mfn = tlb.hitMfn;
      // The vCPU and the counters are stored only when they change: storing an object into a
      // field is a write barrier in V8's code, comparing it is not.
      if (this.fastVcpu !== v) this.fastVcpu = v;
      this.fastKernelRoot = tag === S.TAG_KERNEL ? root : S.NO_ROOT;
      this.fastUserRoot = tag === S.TAG_USER ? root : S.NO_ROOT;
      const readable = grants(p, S.USER, this.mode);
      this.fastReadable = readable;
      this.fastVa = vpn * 4096;
      this.fastMfn = mfn;
      this.fastPerms = p;
      const counters = tlb.counters;
      if (this.fastCounters !== counters) this.fastCounters = counters;
      this.fastWords = null;
      if (acc === S.USER ? readable : grants(p, acc, this.mode)) {
        const off = va - vpn * 4096;
        if (size === 0) return mfn * 4096 + off;
        // An aligned u32 on the page the fast path now holds: its word, from the frame's 2 MiB
        // chunk (an untouched one reads as zeros, as loadFastWords' null does). The fast path's
        // own view is left to its first use: a guest reading a new page each time would pay
        // frameWords' second lookup (a cache miss on the frame's view) for nothing.
        if (size === 4 && (off & 3) === 0) {
          const words =
            mfn >>> S.CHUNK_FRAME_SHIFT === this.readChunkNo
              ? this.readChunk
              : this.loadReadChunk(mfn);
          return words[this.ram.chunkWordBase(mfn) + (off >>> 2)];
        }
        return this.readMa(mfn * 4096 + off, size);
      }
    }
    const ma = this.translateWalk(v, acc, tag, root, tlb);
    return size === 0 || ma < 0 ? ma : this.readMa(ma, size);
  }

  /**
   * translate past the TLB (a miss, or rights it does not grant): a walk of the tag's root,
   * filling the TLB; the VA is slowVa.
   */
  private translateWalk(v: Vcpu, acc: number, tag: number, root: number, tlb: Tlb): number {
    const va = this.slowVa;
    // Not the fast path's page (a TLB hit that did not grant `acc` left it set): the next
    // access looks the TLB up again, which counts exactly as the fast path would.
    this.fastVa = Number.NaN;
    let errorCode = acc & (PFEC_write_access | PFEC_user_mode | PFEC_insn_fetch);
    if (root >= 0) {
      const out = this.out;
      const c = this.walkCounts;
      const r0 = out.totalReads;
      const w0 = out.totalWrites;
      c.walks++;
      const ok = walk(this.ram, root, va, acc, this.mode, out, tlb.pwc, tag);
      if (this.walkRefSink !== null) this.emitWalkRefs(out);
      c.reads += out.totalReads - r0;
      c.writes += out.totalWrites - w0;
      if (ok && out.maddr < this.ram.bytes) {
        // Guest global pages are not modelled as global (see README): every entry is per tag.
        tlb.insert(va, tag, out.pageMfn, out.pageShift, out.perms & ~PERM_GLOBAL);
        this.fastVa = Number.NaN;
        return out.maddr;
      }
      // A validated entry to I/O memory (only accepted with an iomem provider): the address
      // goes to the machine's MMIO decoder, uncached, so it is not kept in the TLB.
      if (ok && out.maddr >= this.ram.bytes && this.pt.iomem !== null) return out.maddr;
      if (!ok && out.errorCode !== 0) errorCode = out.errorCode;
      else if (ok) errorCode |= PFEC_page_present | PFEC_reserved_bit;
    }
    this.fault.va = va;
    this.fault.errorCode = v.inKernel ? errorCode & ~PFEC_user_mode : errorCode;
    this.counters.pageFaults.value++;
    return -1;
  }

  /** Reads `size` (1, 2 or 4) bytes at `va`; the value, or -1 after a fault (details in `fault`). */
  read(v: Vcpu, va: number, size: 1 | 2 | 4): number {
    // An aligned u32 on the fast path's page: straight from its words.
    const fastOff = va - this.fastVa;
    if (
      fastOff >= 0 &&
      fastOff <= 4092 &&
      size === 4 &&
      (fastOff & 3) === 0 &&
      this.fastHit(v, S.USER)
    ) {
      const fw = this.fastWords;
      const w = fw !== null ? fw : this.loadFastWords();
      return w !== null ? w[fastOff >>> 2] : 0;
    }
    const vpn = Math.floor(va * S.INV_PAGE);
    const off = va - vpn * 4096;
    // Not within one page (or not a number): byte by byte.
    if (!(off <= 4096 - size)) return this.readBytes(v, va, size);
    this.slowVa = va; // by a field, not boxed (see translate)
    if (size !== 4 || (off & 3) !== 0) return this.readSmall(v, size);
    return this.translateSlow(v, S.USER, 4);
  }

  /** read of 1 or 2 bytes, or of a u32 not aligned, at slowVa: translate (its fast path too). */
  private readSmall(v: Vcpu, size: 1 | 2 | 4): number {
    const ma = this.translate(v, this.slowVa, 0);
    return ma < 0 ? -1 : this.readMa(ma, size);
  }

  /** The `size` bytes at machine address `ma` (>= 0): RAM, or the machine's MMIO beyond it. */
  private readMa(ma: number, size: 1 | 2 | 4): number {
    if (ma >= this.ram.bytes) return this.hv.machine.mmio.read(ma, size);
    return size === 4 ? this.ram.read32(ma) : size === 2 ? this.ram.read16(ma) : this.ram.read8(ma);
  }

  /** Frame `mfn`'s chunk of words for translateSlow's read; kept once backed (a chunk's view
   * never changes then), not while it reads as zeros (a write may back it later). */
  private loadReadChunk(mfn: number): Uint32Array {
    const ram = this.ram;
    const words = ram.chunkWordsForRead(mfn);
    if (ram.frameResident(mfn)) {
      this.readChunkNo = mfn >>> S.CHUNK_FRAME_SHIFT;
      this.readChunk = words;
    }
    return words;
  }

  /** The fast path page's words (a TLB entry is always RAM), or null while it is not backed. */
  private loadFastWords(): Uint32Array | null {
    const mfn = this.fastMfn;
    // Not cached while unbacked: a later write may back the frame with a new chunk.
    if (!this.ram.frameResident(mfn)) return null;
    this.fastWords = this.ram.frameWords(mfn, false);
    return this.fastWords;
  }

  private readBytes(v: Vcpu, va: number, size: number): number {
    let x = 0;
    for (let i = size - 1; i >= 0; i--) {
      const b = this.read(v, va + i, 1);
      if (b < 0) return -1;
      x = x * 256 + b;
    }
    return x;
  }

  /** Reads the u64 at `va` into `out`; false after a fault. */
  read64(v: Vcpu, va: number, out: { lo: number; hi: number }): boolean {
    const lo = this.read(v, va, 4);
    if (lo < 0) return false;
    const hi = this.read(v, va + 4, 4);
    if (hi < 0) return false;
    out.lo = lo;
    out.hi = hi;
    return true;
  }

  /**
   * Writes `size` bytes at `va`. A write that faults on a present read-only page in guest
   * kernel mode, with VMASST_TYPE_writable_pagetables on, goes to the ptwr emulation; true if
   * the write happened (directly or emulated), false after a fault.
   */
  write(v: Vcpu, va: number, size: 1 | 2 | 4, value: number): boolean {
    if (Math.floor(va / 4096) !== Math.floor((va + size - 1) / 4096)) {
      for (let i = 0; i < size; i++)
        if (!this.write(v, va + i, 1, (value >>> (8 * i)) & 0xff)) return false;
      return true;
    }
    const ma = this.translate(v, va, PFEC_write_access);
    if (ma < 0) {
      return ptwr.tryPtwr(this.ctx, v, va, size, value >>> 0, 0);
    }
    if (ma >= this.ram.bytes) {
      this.hv.machine.mmio.write(ma, size, value >>> 0);
      return true;
    }
    if (size === 4) this.ram.write32(ma, value >>> 0);
    else if (size === 2) this.ram.write16(ma, value & 0xffff);
    else this.ram.write8(ma, value & 0xff);
    return true;
  }

  /** Writes the u64 (lo, hi) at `va` (naturally aligned writes reach ptwr whole). */
  write64(v: Vcpu, va: number, lo: number, hi: number): boolean {
    if (va % 8 === 0) {
      const ma = this.translate(v, va, PFEC_write_access);
      if (ma < 0) return ptwr.tryPtwr(this.ctx, v, va, 8, lo >>> 0, hi >>> 0);
      if (ma >= this.ram.bytes) this.hv.machine.mmio.write(ma, 8, lo >>> 0, hi >>> 0);
      else this.ram.write64(ma, lo, hi);
      return true;
    }
    return this.write(v, va, 4, lo) && this.write(v, va + 4, 4, hi);
  }

  /**
   * Xen's ptwr_emulated_update: the guest wrote `size` bytes at `va`, which its kernel L1
   * maps read-only onto one of its own validated L1 page tables. The write becomes a
   * validated update of the entry it covers. True if handled.
   */
  ptwrEmulate(v: Vcpu, va: number, size: number, lo: number, hi: number): boolean {
    return ptwr.ptwrEmulate(this.ctx, v, va, size, lo, hi);
  }

  /**
   * The L1 slot that maps `va` under the L4 `l4` (Xen's map_guest_l1e / linear L1 lookup):
   * l1mfn * 512 + index, or -1 if an upper level is not present or is a superpage.
   */
  guestL1Slot(l4: number, va: number): number {
    return ptwr.guestL1Slot(this.ctx, l4, va);
  }

  // ---- domains ----

  /** At domain creation: shared_info keeps a writable type for life (share_xen_page_with_guest). */
  domainCreated(d: Domain): void {
    this.flushIfFramesReused();
    const si = d.sharedInfoMfn;
    if (
      si >= 0 &&
      this.frames.ownedBy(si, d.domid) &&
      (this.frames.typeInfo[si] & PGT_count_mask) === 0
    ) {
      this.frames.typeInfo[si] = (PGT_writable_page | PGT_validated | 1) >>> 0;
    }
    this.m2p.set(si, 0xffff_ffff, 0xffff_ffff);
  }

  /**
   * Xen's domain_relinquish_resources for the MMU: drop each vCPU's base tables, unpin every
   * pinned table, then force-devalidate the page tables left (which breaks reference cycles
   * through linear entries), and drop shared_info's permanent type reference.
   */
  domainDestroyed(d: Domain): void {
    const f = this.frames;
    for (const v of d.vcpus) {
      if (v.cr3Mfn >= 0) {
        const m = v.cr3Mfn;
        v.cr3Mfn = -1;
        f.putPageAndType(m);
      }
      if (v.userCr3Mfn >= 0) {
        const m = v.userCr3Mfn;
        v.userCr3Mfn = -1;
        f.putPageAndType(m);
      }
      this.flushLocal(v);
    }
    const mine = f.framesOf(d.domid);
    for (const mfn of mine) {
      if ((f.typeInfo[mfn] & PGT_pinned) !== 0 && f.ownedBy(mfn, d.domid)) {
        f.setPinned(mfn, false);
        f.putPageAndType(mfn);
      }
    }
    for (const mfn of mine) {
      if (!f.ownedBy(mfn, d.domid)) continue;
      const x = f.typeInfo[mfn];
      const type = (x & PGT_type_mask) >>> 0;
      if (
        type >= PGT_l1_page_table &&
        type <= PGT_l4_page_table &&
        (x & PGT_validated) !== 0 &&
        (x & PGT_count_mask) !== 0
      ) {
        f.typeInfo[mfn] = (x & ~PGT_validated) >>> 0;
        this.pt.devalidateForTeardown(mfn, type);
      }
    }
    const si = d.sharedInfoMfn;
    if (
      si >= 0 &&
      f.ownedBy(si, d.domid) &&
      (f.typeInfo[si] & PGT_count_mask) !== 0 &&
      (f.typeInfo[si] & PGT_type_mask) >>> 0 === PGT_writable_page
    ) {
      f.putPageType(si);
    }
    this.pt.flushAll();
  }

  // ---- mmu_update ----

  /** HYPERVISOR_mmu_update (Xen's do_mmu_update). */
  mmuUpdate(v: Vcpu, a: MmuUpdateArgs): number {
    return mmuUpdateOps.mmuUpdate(this.ctx, v, a);
  }

  // ---- mmuext_op ----

  /** HYPERVISOR_mmuext_op (Xen's do_mmuext_op). */
  mmuextOp(v: Vcpu, a: MmuextOpArgs): number {
    return mmuextOps.mmuextOp(this.ctx, v, a);
  }

  /** Xen's new_guest_cr3 for a 64-bit PV vCPU. */
  newGuestCr3(v: Vcpu, mfn: number): number {
    return mmuextOps.newGuestCr3(this.ctx, v, mfn);
  }

  // ---- update_va_mapping ----

  /** HYPERVISOR_update_va_mapping. */
  updateVaMapping(v: Vcpu, a: UpdateVaMappingArgs): number {
    return mmuUpdateOps.updateVaMapping(this.ctx, v, a);
  }

  /** HYPERVISOR_update_va_mapping_otherdomain. */
  updateVaMappingOtherdomain(v: Vcpu, a: UpdateVaMappingArgs): number {
    return mmuUpdateOps.updateVaMappingOtherdomain(this.ctx, v, a);
  }

  // ---- memory_op ----

  /** XENMEM_increase_reservation: returns extents done. */
  increaseReservation(v: Vcpu, a: MemoryOpArgs): number {
    return memoryOp.increaseReservation(this.ctx, v, a);
  }

  /** XENMEM_populate_physmap: extents done; each gpfn's M2P entry is set (PV guests). */
  populatePhysmap(v: Vcpu, a: MemoryOpArgs): number {
    return memoryOp.populatePhysmap(this.ctx, v, a);
  }

  /** XENMEM_decrease_reservation: extents done. */
  decreaseReservation(v: Vcpu, a: MemoryOpArgs): number {
    return memoryOp.decreaseReservation(this.ctx, v, a);
  }

  /** XENMEM_exchange. 0 or -errno; `nr_exchanged` is written back. */
  exchange(v: Vcpu, a: MemoryOpArgs): number {
    return memoryOp.exchange(this.ctx, v, a);
  }

  /**
   * XENMEM_machphys_mapping: where the guest finds the read-only M2P (v_start, v_end as
   * 48-bit addresses) and the largest mfn it may look up there (the real one for a hardware
   * domain, the table's capacity otherwise), as Xen's arch_memory_op answers.
   */
  machphysMapping(
    v: Vcpu,
    a: MemoryOpArgs & { v_start?: number; v_end?: number; max_mfn?: number },
  ): number {
    return memoryOp.machphysMapping(this.ctx, v, a);
  }

  /** XENMEM_maximum_ram_page. */
  maximumRamPage(): number {
    return memoryOp.maximumRamPage(this.ctx);
  }

  /** XENMEM_current_reservation / XENMEM_maximum_reservation. */
  reservationOf(v: Vcpu, a: MemoryOpArgs, max: boolean): number {
    return memoryOp.reservationOf(this.ctx, v, a, max);
  }
}
