/*
 * The bare-metal MMU: the hardware walks the kernel's own page tables, nothing validates them.
 *
 * Invariants: a vCPU's translations come from the tables at vcpu.cr3Mfn (machine frames: on
 * bare metal a guest-physical frame is a machine frame, pfn == mfn), through that vCPU's
 * TLB, which only ever caches what a completed walk allowed; every translation is one TLB
 * lookup and, on a miss (or a hit that does not grant the access), one walk; every walk,
 * memory reference, hit, miss and fault is counted. Nothing here checks what the tables
 * point at: a kernel that maps another domain's frame reaches it, as on real hardware, which
 * is why this backend is only for a machine with one kernel on it (the native baseline).
 *
 * Fast path: `fast*` describe the most recent translation (of any vCPU). An access to the
 * same 4 KiB page by the same vCPU would hit that translation's entry in the first TLB level,
 * where it is already the most recently used, so the lookup changes no replacement state:
 * the fast path counts it as exactly that hit (first-level lookup and hit) without
 * searching. Every flush, and every other translation, moves or clears `fast*`.
 *
 * Rights: `grantMasks` holds paging's tlbGrants answers for this MMU's (fixed) mode, per
 * rights and access; every hit reads them there instead of calling tlbGrants, so each
 * access is granted or refused exactly as tlbGrants would.
 */
import type { Hypervisor, MmuBackend, MmuFault, Vcpu } from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import {
  CpuTlbs,
  createPagingMode,
  type PagingMode,
  PERM_DIRTY,
  PERM_NX,
  PERM_RW,
  PERM_USER,
  type Tlb,
  type TlbConfig,
  tlbGrants,
  WalkResult,
  walk,
} from "@hyperlab/paging";
import { nativeMmuError } from "./errors";

/** fastBase when the fast path describes no page: va - NO_FAST is never below 4096. */
const NO_FAST = -(2 ** 62);
/**
 * NO_FAST as a const enum member, which the build writes as a number literal at each use:
 * for translateSlow, where a module constant that is not a small integer is loaded from the
 * module's context and unboxed on every use (h92). A load-time check keeps the two equal.
 */
const enum Fast {
  NONE = -0x4000_0000_0000_0000,
}
if (Fast.NONE !== NO_FAST) {
  throw new Error("native-mmu.ts: Fast.NONE disagrees with NO_FAST.");
}

/** The rights tlbGrants reads: PERM_RW, PERM_USER, PERM_NX, PERM_DIRTY. */
export const GRANT_PERMS = PERM_RW | PERM_USER | PERM_NX | PERM_DIRTY;

/**
 * Per rights (perms & GRANT_PERMS), the accesses tlbGrants grants under `mode`: bit a is
 * tlbGrants(perms, a, mode) for a = 0..31 (the access bits it reads are all below 32).
 */
export function grantMasks(mode: PagingMode): Int32Array {
  const masks = new Int32Array(GRANT_PERMS + 1);
  for (let p = 0; p <= GRANT_PERMS; p++) {
    if ((p & GRANT_PERMS) !== p) continue;
    for (let a = 0; a < 32; a++) if (tlbGrants(p, a, mode)) masks[p] |= 1 << a;
  }
  return masks;
}

export interface NativeMmuOptions {
  /** TLB shape per vCPU (paging's Tlb config); the default is paging's Skylake-like TLB. */
  tlb?: TlbConfig;
}

/** Plain counters, read by the plugin's stat gauges. */
export interface NativeMmuCounts {
  translations: number;
  tlbHits: number;
  tlbMisses: number;
  walks: number;
  walkReads: number;
  walkWrites: number;
  faults: number;
  flushes: number;
  invlpgs: number;
}

export class NativeMmu implements MmuBackend {
  readonly kind = "native";
  readonly fault: MmuFault = { errorCode: 0, va: 0 };
  readonly counts: NativeMmuCounts = {
    translations: 0,
    tlbHits: 0,
    tlbMisses: 0,
    walks: 0,
    walkReads: 0,
    walkWrites: 0,
    faults: 0,
    flushes: 0,
    invlpgs: 0,
  };
  // Fields the constructor sets are `declare`d: a plain declaration (ES2022 class fields)
  // first defines them as undefined, and V8 then checks their maps on every read.
  declare private readonly ram: Ram;
  declare private readonly mode: PagingMode;
  private readonly out = new WalkResult();
  /**
   * Told the machine address of every paging-structure entry a hardware walk reads, in the
   * order read (for a data-cache model such as the study's); null for none.
   */
  walkRefSink: ((maddr: number) => void) | null = null;
  declare private readonly tlbs: CpuTlbs;
  private fastUid = -1;
  /**
   * Base VA of the remembered page (NO_FAST: none) and its machine address. NO_FAST is far
   * below 0 so that no VA is within a page of it (with -1, VAs 0..4094 hit a forgotten page).
   */
  private fastBase = NO_FAST;
  private fastMa = 0;
  /** The accesses the remembered page's rights grant: their grantMasks entry. */
  private fastGrants = 0;
  /**
   * An access the remembered rights grant, or -1: the fast path compares it before reading
   * fastGrants (cheaper when a loop repeats one access). translate's hit sets it before its
   * grant check; when that check refuses, translateSlow forgets the page before anything
   * reads it.
   */
  private fastAccess = -1;
  /**
   * tlbGrants(perms, access, mode) for this MMU's mode, precomputed: bit (access & 31) of
   * grantMasks[perms & GRANT_PERMS]. tlbGrants reads only the access bits below 32 (W, U, I)
   * and the perms bits in GRANT_PERMS, and the mode never changes, so the bit is its answer
   * for every access and perms. A table read instead of tlbGrants' branches keeps translate
   * small (see translate).
   */
  declare private readonly grantMasks: Int32Array;
  private fastCounters: Float64Array = new Float64Array(2);
  /** translateSlow's argument and result (see translate). */
  private slowVa = 0.5;
  private slowResult = 0.5;
  /** True when translate already looked `slowVa` up (a miss or a denied hit). */
  private slowSkip = false;
  /** The vCPU uid translateSlow last served (-1: none yet) and its TLB (see slowTlbOf). */
  private slowUid = -1;
  private slowTlb: Tlb | null = null;

  constructor(hv: Hypervisor, options: NativeMmuOptions = {}) {
    this.ram = hv.machine.ram;
    this.mode = createPagingMode({});
    this.grantMasks = grantMasks(this.mode);
    if (options === null || typeof options !== "object") {
      throw nativeMmuError(
        "NATIVE_BAD_OPTION",
        "nativeMmu takes an options object, e.g. nativeMmu({ tlb: { pwc: false } }).",
      );
    }
    const prng = hv.machine.prng.fork("native-mmu");
    const tlbs = CpuTlbs.fromOption(options.tlb, () => prng.nextU32());
    if (tlbs === undefined || tlbs.config === null) {
      throw nativeMmuError(
        "NATIVE_BAD_OPTION",
        `nativeMmu option tlb must be a TlbConfig from @hyperlab/paging (bare metal always has a TLB), got ${String(options.tlb)}.`,
      );
    }
    this.tlbs = tlbs;
  }

  /** The vCPU's TLB (created on first use). */
  tlbOf(v: Vcpu): Tlb {
    return this.tlbs.get(v.uid);
  }

  /**
   * Kept small on purpose: V8 inlines a call into a loop only while the callee's bytecode
   * plus what its own optimized code already inlined, times 1.2, fits the loop's 920-byte
   * budget. translate (330 bytes) inlines lookup and find (369): 699 * 1.2 = 839. At 344 +
   * 532 (with tlbGrants and remember calls) it did not fit once translate had been
   * optimized by itself, and whether that happened before the caller's loop was compiled
   * decided whether every translation in that loop was an out-of-line call with the VA and
   * the result boxed (h68 in docs/decisions.md). Grow it, or what it calls, with care.
   */
  translate(v: Vcpu, va: number, access: number): number {
    const c = this.counts;
    c.translations++;
    const off = va - this.fastBase;
    if (
      off >= 0 &&
      off < 4096 &&
      v.uid === this.fastUid &&
      (access === this.fastAccess || ((this.fastGrants >> access) & 1) !== 0)
    ) {
      // Paging's Tlb counters: level 0's lookups at [0], hits at [1].
      const tc = this.fastCounters;
      tc[0]++;
      tc[1]++;
      c.tlbHits++;
      return this.fastMa + off;
    }
    // The TLB hit, also inline: `lookup` is small enough to go into the caller's loop when
    // its hits are frequent there (when they are rare, it is a call on the rare path only).
    const tlb = this.tlbs.byCpu[v.uid];
    if (tlb !== undefined && tlb.lookup(va, 0) === true) {
      // va % 4096 for a VA >= 0 (a TLB holds no negative VA), without a float modulo.
      const pageOff = va - Math.floor(va * 2 ** -12) * 4096;
      const ma = tlb.hitMfn * 4096;
      // remember(v, tlb, va - pageOff, hitMfn, grants), written out: see translate's size.
      const grants = this.grantMasks[tlb.hitPerms & 0x4e]; // & GRANT_PERMS
      this.fastUid = v.uid;
      this.fastBase = va - pageOff;
      this.fastMa = ma;
      this.fastGrants = grants;
      this.fastCounters = tlb.counters;
      this.fastAccess = access; // refused: translateSlow forgets the page first
      if (((grants >> access) & 1) !== 0) {
        c.tlbHits++;
        return ma + pageOff;
      }
    }
    // No TLB yet (translateSlow creates it and looks up), a miss or a hit that does not
    // grant the access (translateSlow walks without looking up again). The rest is out of
    // line, and too large to inline (see translateSlow). The VA goes in and the result comes
    // out through double fields, written in place: a number above 2^31 passed to or returned
    // from a call that is not inlined is boxed, a heap allocation.
    this.slowVa = va;
    this.slowSkip = tlb !== undefined;
    this.translateSlow(v, access);
    return this.slowResult;
  }

  /**
   * translate past its hits, for `slowVa`: the TLB lookup unless translate did it
   * (`slowSkip`), and on a miss (or a denied hit) a walk and, when it succeeds, the fill.
   * Leaves the result in `slowResult`.
   *
   * One function on purpose, larger than V8 inlines (460 bytes of bytecode; this is about
   * 550): callers then always get translate's two hit paths alone, never the walk. As two smaller functions, whether the TLB half was inlined into a
   * caller's loop depended on call-frequency feedback from earlier loops, and when it was,
   * `lookup` no longer fitted the caller's inlining budget: an out-of-line call with the VA
   * boxed on every TLB hit (h61 in docs/decisions.md).
   */
  private translateSlow(v: Vcpu, access: number): void {
    const va = this.slowVa;
    const c = this.counts;
    const tlb = this.slowTlbOf(v);
    // `=== true`: a plain truth test of a field is V8's generic ToBoolean (false, "",
    // undetectable, heap number and BigInt tests); this is one compare.
    if (this.slowSkip !== true && tlb.lookup(va, 0) === true) {
      const g = this.grantMasks[tlb.hitPerms & 0x4e]; // & GRANT_PERMS
      const mfn = tlb.hitMfn;
      // va % 4096 for a VA >= 0 (a TLB holds no negative VA), without a float modulo.
      const off = va - Math.floor(va * 2 ** -12) * 4096;
      this.remember(v, tlb, va - off, mfn * 4096, g);
      if (((g >> access) & 1) !== 0) {
        c.tlbHits++;
        this.slowResult = mfn * 4096 + off;
        return;
      }
    }
    c.tlbMisses++;
    // The walk and, when it succeeds, the fill.
    const out = this.out;
    this.fastBase = Fast.NONE; // NO_FAST as an immediate (see Fast)
    if (v.cr3Mfn < 0) {
      this.fault.va = va;
      this.fault.errorCode = access & 0x16;
      c.faults++;
      this.slowResult = -1;
      return;
    }
    c.walks++;
    const r0 = out.totalReads;
    const w0 = out.totalWrites;
    const ok = walk(this.ram, v.cr3Mfn, va, access, this.mode, out, tlb.pwc);
    if (this.walkRefSink !== null) this.emitWalkRefs(out);
    c.walkReads += out.totalReads - r0;
    c.walkWrites += out.totalWrites - w0;
    if (!ok) {
      this.fault.va = va;
      this.fault.errorCode = out.errorCode;
      c.faults++;
      this.slowResult = -1;
      return;
    }
    tlb.insertWalk(out, 0);
    // The walk succeeded, so va is a whole number >= 0 and maddr's offset is va's.
    const off = out.vaLo & 4095;
    const ma = out.maddr;
    this.remember(v, tlb, va - off, ma - off, this.grantMasks[out.perms & 0x4e]);
    this.slowResult = ma;
  }

  /**
   * The vCPU's TLB for translateSlow (made on first use): the last one it used when the vCPU
   * is the same, a compare instead of `byCpu`'s load with its bounds, hole and undefined
   * checks (translate has already made that load once for this translation). CpuTlbs gives
   * a CPU the same Tlb object for good, so the one kept stays right.
   */
  private slowTlbOf(v: Vcpu): Tlb {
    const uid = v.uid;
    if (uid === this.slowUid) return this.slowTlb as Tlb;
    const tlb = this.tlbs.byCpu[uid] ?? this.tlbs.get(uid);
    this.slowUid = uid;
    this.slowTlb = tlb;
    return tlb;
  }

  /**
   * Makes the fast path describe the 4 KiB page at `base` (a multiple of 4096), whose frame
   * starts at machine address `ma` and whose rights grant the accesses in `grants` (a
   * grantMasks entry).
   */
  private remember(v: Vcpu, tlb: Tlb, base: number, ma: number, grants: number): void {
    this.fastUid = v.uid;
    this.fastBase = base;
    this.fastMa = ma;
    this.fastGrants = grants;
    // Stored only when it changes: storing an object into a field is a write barrier in
    // V8's code, comparing it is not (one vCPU's TLB keeps the same counters).
    const counters = tlb.counters;
    if (this.fastCounters !== counters) this.fastCounters = counters;
    this.fastAccess = -1;
  }

  /** Hands the entries the last walk read to walkRefSink (from the walk's first level down). */
  private emitWalkRefs(out: WalkResult): void {
    const sink = this.walkRefSink;
    if (sink === null) return;
    const top = out.pwcLevel > 0 ? out.pwcLevel - 1 : this.mode.levels;
    for (let i = 0; i < out.reads; i++) sink(out.entryMaddr[top - i]);
  }

  flushLocal(v: Vcpu): void {
    this.fastBase = NO_FAST;
    this.counts.flushes++;
    this.tlbOf(v).flushNonGlobal();
  }

  flushOne(v: Vcpu, va: number): void {
    this.fastBase = NO_FAST;
    this.counts.invlpgs++;
    this.tlbOf(v).invlpg(va, 0);
  }
}
