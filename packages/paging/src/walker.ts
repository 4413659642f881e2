/*
 * The x86-64 page walker over machine memory (Intel SDM vol. 3, §4.5 "4-level and 5-level
 * paging", §4.6 "access rights", §4.7 "page-fault exceptions", §4.8 "accessed and dirty
 * flags").
 *
 * Invariants:
 * - A walk reads one entry per level it visits, top down, and stops at the first entry that
 *   is not present (#PF, P clear) or has a reserved bit set (#PF, P and RSVD set). Access
 *   rights are checked once the leaf is reached, against the rights accumulated over every
 *   level: writable only if RW at every level, user only if US at every level, no-execute if
 *   XD at any level (with EFER.NXE).
 * - Accessed and dirty flags are written only when the whole access succeeds, as Xen's
 *   guest_walk_tables does: A on every entry the walk read, D on the leaf of a write. A
 *   faulting walk writes nothing.
 * - Every memory reference is counted in the result: `reads` (one per entry read, an 8-byte
 *   reference) and `writes` (one per entry whose A/D flags were set). A table frame outside
 *   RAM reads as zeros (a not-present entry) and is still counted; a walk never throws on
 *   guest-controlled entries.
 * - A walk reads only the entry its index names inside the table frame: indices are masked
 *   to 0..511 (the walker reads the RAM's chunk view for speed), so no index reaches another
 *   frame.
 * - A walk allocates nothing: it fills a caller-owned WalkResult.
 */

import { _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_GLOBAL, _PAGE_NX_HI, _PAGE_PSE } from "@hyperlab/abi";
import { CHUNK_FRAMES, type Ram } from "@hyperlab/machine";
import {
  ACCESS_FETCH,
  ACCESS_USER,
  ACCESS_WRITE,
  accessDenied,
  faultCode,
  PERM_DIRTY,
  PERM_GLOBAL,
  PERM_NX,
  PERM_RW,
  PERM_USER,
  PFEC_page_present,
  PFEC_reserved_bit,
} from "./access";
import { PAGING_4LEVEL, PAGING_5LEVEL, type PagingLevels, type PagingMode, pteMfn } from "./entry";
import type { PageWalkCache } from "./pwc";

/** Why a walk failed (WalkResult.fault). */
export const FAULT_NONE = 0;
/** An entry had P clear: #PF with PFEC_page_present clear. */
export const FAULT_NOT_PRESENT = 1;
/** A present entry had a reserved bit set: #PF with P and RSVD. */
export const FAULT_RESERVED = 2;
/** The accumulated rights forbid the access: #PF with P set. */
export const FAULT_PROTECTION = 3;
/** The VA is not a VA of this mode (not canonical): #GP on x86, no walk made. */
export const FAULT_NONCANONICAL = 4;

/** What walkStep found. */
export const STEP_FAULT = -1;
export const STEP_LEAF = 0;
export const STEP_TABLE = 1;

const RW_US = PERM_RW | PERM_USER;
const EMPTY_WORDS = new Uint32Array(0);
// walk's chunk arithmetic (frame >>> 9, frame & 511) assumes machine's 512-frame chunks.
if (CHUNK_FRAMES !== 512) {
  throw new Error("@hyperlab/machine's RAM chunks changed size; update walk's chunk arithmetic");
}
// walk's hot block writes these as literals (see there); entry.ts checks the _PAGE_* bits.
if (
  ACCESS_WRITE !== 2 ||
  ACCESS_USER !== 4 ||
  ACCESS_FETCH !== 0x10 ||
  PERM_RW !== 2 ||
  PERM_USER !== 4 ||
  PERM_NX !== 8 ||
  RW_US !== 6 ||
  PERM_DIRTY !== _PAGE_DIRTY ||
  PERM_GLOBAL !== _PAGE_GLOBAL ||
  FAULT_NOT_PRESENT !== 1 ||
  FAULT_RESERVED !== 2
) {
  throw new Error("paging's access or fault constants changed; update walk's literals");
}

/**
 * accessDenied (access.ts, SDM §4.6) with its bits as literals, for the walk's hot path:
 * module bindings are cell loads with a hole check at every use in optimised code, and only
 * a write, user or fetch access can be denied. 2 is ACCESS_WRITE and PERM_RW, 4 ACCESS_USER
 * and PERM_USER, 0x10 ACCESS_FETCH, 8 PERM_NX (checked at load above).
 */
function denied(perms: number, access: number, mode: PagingMode): boolean {
  if ((access & 0x16) === 0) return false;
  if ((access & 4) !== 0) {
    if ((perms & 4) === 0) return true;
    if ((access & 2) !== 0 && (perms & 2) === 0) return true;
  } else if ((access & 2) !== 0 && (perms & 2) === 0 && mode.wp === true) {
    return true;
  }
  return (access & 0x10) !== 0 && (perms & 8) !== 0;
}

/**
 * The outcome of one walk, reused from walk to walk. Fields after `walkFinish` (or `walk`):
 * `ok` and either the translation (`maddr`, `pageMfn`, `pageShift`, `perms`, `leafLevel`,
 * `leafLo`/`leafHi`) or the fault (`fault`, `errorCode`, `faultLevel`). `reads`/`writes`
 * count this walk's memory references; the `total*` fields accumulate over every walk that
 * used this object until `resetTotals`.
 */
export class WalkResult {
  va = 0;
  /** The low 32 bits of `va` (set by walkBegin; for offsets and indices without BigInt). */
  vaLo = 0;
  access = 0;
  ok = false;
  /** FAULT_* (FAULT_NONE after a successful walk). */
  fault = FAULT_NONE;
  /** x86 page-fault error code (PFEC_* bits) when the walk faulted. */
  errorCode = 0;
  /** Level of the entry that stopped the walk, or for a protection fault the highest level
   * whose entry denied the access. 0 when no level applies. */
  faultLevel = 0;
  /** Machine address of the translated byte. */
  maddr = 0;
  /** First 4 KiB frame of the page (a 2 MiB or 1 GiB page spans 512 or 262144 frames). */
  pageMfn = 0;
  /** 12, 21 or 30. */
  pageShift = 12;
  /** Level of the leaf entry: 1 (4 KiB), 2 (2 MiB) or 3 (1 GiB). */
  leafLevel = 0;
  /** PERM_* bits of the translation. */
  perms = 0;
  /** The leaf entry, as it is in memory after the walk (A/D set). */
  leafLo = 0;
  leafHi = 0;
  /** Level the walk read first: the root level, or lower after a page-walk-cache hit. */
  startLevel = 0;
  /** Level of the page-walk-cache entry that let the walk skip levels, or 0. */
  pwcLevel = 0;
  /** Entries read by this walk. */
  reads = 0;
  /** Entries written by this walk (A/D updates). */
  writes = 0;
  /** Table frame for the next step after walkStep answered STEP_TABLE. */
  nextMfn = 0;
  totalWalks = 0;
  totalFaults = 0;
  totalReads = 0;
  totalWrites = 0;
  /** Per level (index 1-5): the machine address and the value of the entry read. */
  readonly entryMaddr = new Float64Array(6);
  readonly entryLo = new Uint32Array(6);
  readonly entryHi = new Uint32Array(6);
  /** Per level: rights accumulated from the start level down to and including it. */
  readonly levelPerms = new Uint16Array(6);

  resetTotals(): void {
    this.totalWalks = 0;
    this.totalFaults = 0;
    this.totalReads = 0;
    this.totalWrites = 0;
  }
}

/**
 * Starts a walk of `va` for `access` (ACCESS_* bits): clears the per-walk fields. `perms` is
 * the rights the levels above the first step allowed (RW|USER for a walk from the root; a
 * page-walk-cache entry's rights after a hit).
 */
export function walkBegin(
  out: WalkResult,
  va: number,
  access: number,
  startLevel: number,
  perms: number,
): void {
  out.va = va;
  out.vaLo = va >>> 0; // ToUint32: the low 32 bits of an integer VA
  out.access = access;
  out.ok = false;
  out.fault = FAULT_NONE;
  out.errorCode = 0;
  out.faultLevel = 0;
  out.startLevel = startLevel;
  out.pwcLevel = 0;
  out.perms = perms;
  out.reads = 0;
  out.writes = 0;
  out.leafLevel = 0;
  out.totalWalks++;
}

/**
 * One level of a walk: reads entry `index` of the paging structure at machine frame
 * `tableMfn`, which is a level-`level` structure (5 = PML5 .. 1 = PT), checks it and
 * accumulates its rights into `out.perms`. Answers STEP_TABLE (the next structure's frame is
 * `out.nextMfn`), STEP_LEAF (a 4 KiB, 2 MiB or 1 GiB leaf: call walkFinish) or STEP_FAULT
 * (`out` holds the fault). The frame in an entry is whatever the entry holds: for a
 * two-dimensional (nested) walk it is a guest-physical frame, which the caller translates
 * through the second dimension before the next step.
 */
export function walkStep(
  ram: Ram,
  tableMfn: number,
  index: number,
  level: number,
  mode: PagingMode,
  out: WalkResult,
): number {
  let lo = 0;
  let hi = 0;
  out.reads++;
  out.totalReads++;
  if (tableMfn < ram.nrFrames) {
    // The chunk view (the walker's hot path) with the index masked to the table's 512
    // entries by construction: no index a caller computes from guest input reads past it.
    const words = ram.chunkWordsForRead(tableMfn);
    const w = ram.chunkWordBase(tableMfn) + (index & 511) * 2;
    lo = words[w];
    hi = words[w + 1];
  }
  out.entryMaddr[level] = tableMfn * 4096 + (index & 511) * 8;
  out.entryLo[level] = lo;
  out.entryHi[level] = hi;
  if ((lo & 1) === 0) {
    out.fault = FAULT_NOT_PRESENT;
    out.errorCode = faultCode(out.access, mode);
    out.faultLevel = level;
    out.totalFaults++;
    return STEP_FAULT;
  }
  const ps = level > 1 && (lo & _PAGE_PSE) !== 0 ? 1 : 0;
  const r = level * 2 + ps;
  if ((lo & mode.rsvdLo[r]) !== 0 || (hi & mode.rsvdHi[r]) !== 0) {
    out.fault = FAULT_RESERVED;
    out.errorCode = faultCode(out.access, mode) | PFEC_page_present | PFEC_reserved_bit;
    out.faultLevel = level;
    out.totalFaults++;
    return STEP_FAULT;
  }
  let p = out.perms & (lo | ~RW_US);
  if ((hi & _PAGE_NX_HI) !== 0 && mode.nxe) p |= PERM_NX;
  out.perms = p;
  out.levelPerms[level] = p;
  if (level === 1 || ps === 1) {
    out.leafLevel = level;
    return STEP_LEAF;
  }
  out.nextMfn = (hi & 0xfffff) * 0x10_0000 + (lo >>> 12);
  return STEP_TABLE;
}

/**
 * Ends a walk whose last step answered STEP_LEAF: checks the accumulated rights against the
 * access (SDM §4.6, CR0.WP from `mode`), and when they allow it sets A on every entry read
 * from `out.startLevel` down and D on the leaf of a write, then fills the translation.
 * Returns `out.ok`.
 */
export function walkFinish(ram: Ram, mode: PagingMode, out: WalkResult): boolean {
  const access = out.access;
  const p = out.perms;
  const leaf = out.leafLevel;
  if (accessDenied(p, access, mode)) {
    out.fault = FAULT_PROTECTION;
    out.errorCode = faultCode(access, mode) | PFEC_page_present;
    out.faultLevel = deniedLevel(out, mode);
    out.totalFaults++;
    return false;
  }
  // Accessed on every level read; dirty on the leaf of a write.
  const lo = out.entryLo;
  for (let level = out.startLevel; level > leaf; level--) {
    const v = lo[level];
    if ((v & _PAGE_ACCESSED) === 0) {
      lo[level] = v | _PAGE_ACCESSED;
      ram.write32(out.entryMaddr[level], (v | _PAGE_ACCESSED) >>> 0);
      out.writes++;
      out.totalWrites++;
    }
  }
  let leafLo = lo[leaf];
  const want = (access & ACCESS_WRITE) !== 0 ? _PAGE_ACCESSED | _PAGE_DIRTY : _PAGE_ACCESSED;
  if ((leafLo & want) !== want) {
    leafLo = (leafLo | want) >>> 0;
    lo[leaf] = leafLo;
    ram.write32(out.entryMaddr[leaf], leafLo);
    out.writes++;
    out.totalWrites++;
  }
  const leafHi = out.entryHi[leaf];
  out.leafLo = leafLo;
  out.leafHi = leafHi;
  let perms = p;
  if ((leafLo & _PAGE_DIRTY) !== 0) perms |= PERM_DIRTY;
  if ((leafLo & _PAGE_GLOBAL) !== 0) perms |= PERM_GLOBAL;
  out.perms = perms;
  const vaLo = out.vaLo;
  let mfn = (leafHi & 0xfffff) * 0x10_0000 + (leafLo >>> 12);
  let offset: number;
  if (leaf === 1) {
    out.pageShift = 12;
    offset = vaLo & 0xfff;
  } else if (leaf === 2) {
    out.pageShift = 21;
    mfn -= (leafLo >>> 12) & 0x1ff;
    offset = vaLo & 0x1f_ffff;
  } else {
    out.pageShift = 30;
    mfn -= (leafLo >>> 12) & 0x3_ffff;
    offset = vaLo & 0x3fff_ffff;
  }
  out.pageMfn = mfn;
  out.maddr = mfn * 4096 + offset;
  out.ok = true;
  return true;
}

/** The highest level (from the start level down) whose own entry forbids the access. */
function deniedLevel(out: WalkResult, mode: PagingMode): number {
  const access = out.access;
  for (let level = out.startLevel; level >= out.leafLevel; level--) {
    const lo = out.entryLo[level];
    const hi = out.entryHi[level];
    const own = (lo & RW_US) | (mode.nxe && (hi & _PAGE_NX_HI) !== 0 ? PERM_NX : 0);
    if (accessDenied(own, access, mode)) return level;
  }
  // Denied by rights above the start level (a page-walk-cache entry's).
  return out.pwcLevel;
}

/**
 * Walks `va` (a VA of the mode: see canonicalVa) under the root paging structure at machine
 * frame `rootMfn` (CR3's frame) for `access` (ACCESS_* bits), filling `out`. `levels` is 4,
 * 5 or a PagingMode (MAXPHYADDR, NXE, WP, 1 GiB pages). With `pwc`, the walk starts below the
 * deepest page-walk-cache entry that matches `va` and `tag`, and a successful walk fills the
 * caches for the levels it read. Returns `out.ok`; never throws on guest-controlled entries.
 */
export function walk(
  ram: Ram,
  rootMfn: number,
  va: number,
  access: number,
  levels: PagingLevels | PagingMode,
  out: WalkResult,
  pwc?: PageWalkCache | null,
  tag = 0,
): boolean {
  // The VA goes through `out.va` (a double field, written in place), not as an argument:
  // this wrapper is small enough for V8 to inline into the caller, and a VA above 2^30 passed
  // to a call that is not inlined (walkVa is too big) is boxed in a new heap number per walk.
  out.va = va;
  // `=== true`: the result of a call V8 does not inline is converted to a boolean
  // generically otherwise, here and in every caller's `if (walk(...))`.
  const ok = walkVa(ram, rootMfn, access, levels, out, pwc, tag) === true;
  // A successful walk fills the page-walk caches for the levels it read above the leaf.
  // Here rather than in walkVa, so that walkVa has no call taking the VA (see above). With
  // the VA read back from `out.va` (walkVa leaves it as it is), not `va`: fill is a call
  // taking the VA, and V8 boxes `va` once for all of its uses as an argument, at their first
  // common point; with `va` here that is just after walkVa returns, in every caller that
  // inlines walk with a page-walk cache that may be null (shadow-mmu's walkShadow): one heap
  // number per walk, PWC or not. The load after the call is a value of its own, boxed only
  // on the way into fill.
  if (ok && pwc != null && out.startLevel > out.leafLevel) pwc.fill(out.va, tag, out);
  return ok;
}

/** walkBegin for the VA already in `out.va`. */
function walkBeginVa(out: WalkResult, access: number, startLevel: number, perms: number): void {
  out.vaLo = out.va >>> 0;
  out.access = access;
  out.ok = false;
  out.fault = FAULT_NONE;
  out.errorCode = 0;
  out.faultLevel = 0;
  out.startLevel = startLevel;
  out.pwcLevel = 0;
  out.perms = perms;
  out.reads = 0;
  out.writes = 0;
  out.leafLevel = 0;
  out.totalWalks++;
}

/**
 * walk, with the VA in `out.va` (without the page-walk caches' fill). No call here takes the
 * VA as an argument: V8 would box it in a heap number (a VA above 2^30 is not a small
 * integer) once per walk, at the first point common to every such call.
 */
function walkVa(
  ram: Ram,
  rootMfn: number,
  access: number,
  levels: PagingLevels | PagingMode,
  out: WalkResult,
  pwc: PageWalkCache | null | undefined,
  tag: number,
): boolean {
  const va = out.va;
  const mode = typeof levels === "number" ? (levels === 5 ? PAGING_5LEVEL : PAGING_4LEVEL) : levels;
  let level: number = mode.levels;
  let table = rootMfn;
  // Literal 6 (RW_US) and `hitPerms | 0` below: the rights stay an int32 in every level and
  // at the join after the descent; from a module binding or a tagged field V8 keeps them
  // tagged there and converts them again for each per-level store.
  let perms = 6;
  let pwcLevel = 0;
  if (!(va >= 0 && va < mode.vaLimit && Math.floor(va) === va)) {
    walkBeginVa(out, access, level, perms);
    out.fault = FAULT_NONCANONICAL;
    out.totalFaults++;
    return false;
  }
  // `=== true`: lookup's result merges a call V8 does not inline (lookupAbove), so a plain
  // `if` would convert it to a boolean generically on every walk.
  if (pwc != null && pwc.lookup(va, tag, level) === true) {
    pwcLevel = pwc.hitLevel;
    level = pwcLevel - 1;
    table = pwc.hitMfn;
    perms = pwc.hitPerms | 0;
    // After a PDE-cache hit, the usual rest of the walk, finished here: the PTE is present,
    // has no reserved bit set, allows the access under the cached rights and already has A
    // (and D for a write), so the walk writes no A/D flag. This block then writes exactly
    // what the path from the PTE below writes (the same fields, arrays and totals; start
    // level 1, one read, no write) and returns. Otherwise (a fault, a denied access, an A/D
    // write, a cached frame this RAM does not hold) it has written nothing and the path
    // below reads the PTE again and faults or sets A/D in the usual order. In walkVa's own
    // body rather than a function: V8 would not inline one this size within its budget,
    // and none of the general path's setup (the VA's upper indices, the per-level locals)
    // runs for it. Literals as below: 0x21 is _PAGE_PRESENT | _PAGE_ACCESSED, 0x61 with
    // _PAGE_DIRTY, 0x140 _PAGE_DIRTY | _PAGE_GLOBAL (PERM_DIRTY | PERM_GLOBAL).
    const t = table >>> 0;
    if (pwcLevel === 2 && t === table && t < ram.nrFrames) {
      const vaLo = va >>> 0;
      const i = (vaLo >>> 12) & 511;
      const words = ram.chunkWordsForRead(t);
      const w = ((t & 511) << 10) | (i << 1);
      const lo = words[w];
      const hi = words[w | 1];
      const want = (access & 2) !== 0 ? 0x61 : 0x21;
      if ((lo & want) === want && (hi & (mode.rsvdHiAll | 0)) === 0) {
        let p = perms & (lo | -7); // ~RW_US
        if (mode.nxe === true && hi >>> 31 !== 0) p |= 8; // _PAGE_NX_HI: PERM_NX
        if (!denied(p, access, mode)) {
          out.vaLo = vaLo;
          out.access = access;
          out.startLevel = 1;
          out.pwcLevel = 2;
          out.writes = 0;
          out.totalWalks++;
          out.entryMaddr[1] = t * 4096 + i * 8;
          out.entryLo[1] = lo;
          out.entryHi[1] = hi;
          out.levelPerms[1] = p;
          out.reads = 1;
          out.totalReads++;
          out.leafLevel = 1;
          out.leafLo = lo;
          out.leafHi = hi;
          out.perms = p | (lo & 0x140);
          const mfn = (hi & 0xfffff) * 0x10_0000 + (lo >>> 12);
          out.pageShift = 12;
          out.pageMfn = mfn;
          out.maddr = mfn * 4096 + (vaLo & 0xfff);
          out.ok = true;
          out.fault = 0;
          out.errorCode = 0;
          out.faultLevel = 0;
          return true;
        }
      }
    }
  }
  const perms0 = perms;
  // Word32 (mode.levels is a tagged field): the level tests below compare integers.
  const startLevel = level | 0;
  level = startLevel;
  // walkBegin, one walkStep per level and walkFinish, inlined with locals: the hot path of
  // every backend. The same checks in the same order and the same fields written; the
  // levels are written out one by one (5 = PML5E .. 1 = PTE, entered at the start level)
  // so that each level's index, reserved-bit mask and per-level slot is a constant. Bits
  // are literals here (entry.ts checks @hyperlab/abi's values): 1 is _PAGE_PRESENT, 0x80
  // _PAGE_PSE. Indices come from the VA's halves with 32-bit operations.
  const vaLo = va >>> 0; // ToUint32: the low 32 bits of an integer VA
  // The high half without vaLo: va * 2^-32 is exact (a power of two) and truncates to
  // floor(va / 2^32), below 2^25 since va < 2^57. Not through `va - vaLo`, so the first
  // entry's index does not wait for vaLo's conversion, its conversion back and a subtraction.
  const vaHi = (va * 2 ** -32) | 0;
  out.vaLo = vaLo;
  out.access = access;
  out.startLevel = startLevel;
  out.pwcLevel = pwcLevel;
  out.writes = 0;
  out.totalWalks++;
  const nrFrames = ram.nrFrames;
  // The last frame as a uint32 (nrFrames is at most 2^32): `tableU > lastFrame` is a 32-bit
  // compare. Used only once the root is known to be inside RAM, so nrFrames >= 1 there.
  const lastFrame = (nrFrames - 1) >>> 0;
  const rsvdLo = mode.rsvdLo;
  // Word32 locals, converted once: `hi & nx` with _PAGE_NX_HI (2^31, a heap number) or a
  // tagged mask would convert on every level. -0x80000000 is bit 31 as a signed int32.
  const rsvdHiAll = mode.rsvdHiAll | 0;
  const nx = mode.nxe === true ? -0x80000000 : 0;
  // The table's frame as a uint32 (RAM has at most 2^32 frames), so that the chain from one
  // level's entry to the next level's read is integer operations. A table outside RAM reads
  // as zeros, a not-present entry, so it always ends the walk: `outside` marks that case and
  // `outsideF` keeps its frame as a plain number for the entry's machine address. `chunk` is
  // the RAM chunk (frame >>> 9, machine's CHUNK_FRAMES) the previous table was in: a walk's
  // tables are usually in one chunk, and reusing its view saves dependent loads. The view is
  // indexed with the entry's index masked to 511: inside the table by construction.
  // Each level's entry, table frame and rights are kept in locals and stored into the
  // WalkResult's per-level arrays after the descent, in straight-line code where V8 loads
  // each array's length and data pointer once rather than at every store.
  let tableU = table >>> 0;
  let outside = !(table < nrFrames);
  let outsideF = table;
  // A fractional or negative root below nrFrames is the caller's bug: ask RAM, which throws.
  if (!outside && tableU !== table) ram.chunkWordsForRead(table);
  const i5 = (vaHi >>> 16) & 511;
  const i4 = (vaHi >>> 7) & 511;
  const i3 = ((vaLo >>> 30) | (vaHi << 2)) & 511;
  const i2 = (vaLo >>> 21) & 511;
  const i1 = (vaLo >>> 12) & 511;
  let t5 = 0,
    t4 = 0,
    t3 = 0,
    t2 = 0;
  let lo5 = 0,
    lo4 = 0,
    lo3 = 0,
    lo2 = 0;
  let hi5 = 0,
    hi4 = 0,
    hi3 = 0,
    hi2 = 0;
  let p5 = 0,
    p4 = 0,
    p3 = 0,
    p2 = 0;
  let chunk = -1;
  let words: Uint32Array = EMPTY_WORDS;
  let lo = 0;
  let hi = 0;
  // FAULT_* and _PAGE_ACCESSED as literals in the hot block: module bindings are cell loads
  // with a hole check at every use in optimised code. 0 is FAULT_NONE, 1 FAULT_NOT_PRESENT,
  // 2 FAULT_RESERVED, 0x20 _PAGE_ACCESSED.
  let fault = outside ? 1 : 0;
  // The AND of every entry read: its A bit says whether any of them still needs A set.
  let accessed = 0x20;
  // biome-ignore lint/suspicious/noConfusingLabels: one block left at the level that ends the walk
  descend: {
    if (outside) break descend;
    if (level === 4) {
      // The cold walk from a 4-level root (CR3): the levels below written out once more in
      // one straight chain, without the joins the chain below has at each level for walks
      // that start lower (after a page-walk-cache hit) or at a 5-level root.
      {
        // PML4E
        level = 4;
        const c = tableU >>> 9;
        if (c !== chunk) {
          words = ram.chunkWordsForRead(tableU);
          chunk = c;
        }
        const w = ((tableU & 511) << 10) | (i4 << 1);
        lo = words[w];
        hi = words[w | 1];
        t4 = tableU;
        lo4 = lo;
        hi4 = hi;
        if ((lo & 1) === 0) {
          fault = 1;
          break descend;
        }
        const ps = (lo & 0x80) !== 0;
        if ((hi & rsvdHiAll) !== 0 || (ps && (lo & rsvdLo[9]) !== 0)) {
          fault = 2;
          break descend;
        }
        perms &= lo | -7; // ~RW_US
        if ((hi & nx) !== 0) perms |= 8; // PERM_NX
        p4 = perms;
        accessed &= lo;
        const th = hi & 0xfffff;
        tableU = ((th << 20) | (lo >>> 12)) >>> 0;
        if (th >= 0x1000 || tableU > lastFrame) {
          // The next table is outside RAM: its entry reads as zeros (not present).
          outside = true;
          outsideF = th * 0x10_0000 + (lo >>> 12);
          level = 3;
          lo = 0;
          hi = 0;
          fault = 1;
          break descend;
        }
      }
      {
        // PDPTE
        level = 3;
        const c = tableU >>> 9;
        if (c !== chunk) {
          words = ram.chunkWordsForRead(tableU);
          chunk = c;
        }
        const w = ((tableU & 511) << 10) | (i3 << 1);
        lo = words[w];
        hi = words[w | 1];
        t3 = tableU;
        lo3 = lo;
        hi3 = hi;
        if ((lo & 1) === 0) {
          fault = 1;
          break descend;
        }
        const ps = (lo & 0x80) !== 0;
        if ((hi & rsvdHiAll) !== 0 || (ps && (lo & rsvdLo[7]) !== 0)) {
          fault = 2;
          break descend;
        }
        perms &= lo | -7; // ~RW_US
        if ((hi & nx) !== 0) perms |= 8; // PERM_NX
        p3 = perms;
        accessed &= lo;
        if (ps) break descend;
        const th = hi & 0xfffff;
        tableU = ((th << 20) | (lo >>> 12)) >>> 0;
        if (th >= 0x1000 || tableU > lastFrame) {
          // The next table is outside RAM: its entry reads as zeros (not present).
          outside = true;
          outsideF = th * 0x10_0000 + (lo >>> 12);
          level = 2;
          lo = 0;
          hi = 0;
          fault = 1;
          break descend;
        }
      }
      {
        // PDE
        level = 2;
        const c = tableU >>> 9;
        if (c !== chunk) {
          words = ram.chunkWordsForRead(tableU);
          chunk = c;
        }
        const w = ((tableU & 511) << 10) | (i2 << 1);
        lo = words[w];
        hi = words[w | 1];
        t2 = tableU;
        lo2 = lo;
        hi2 = hi;
        if ((lo & 1) === 0) {
          fault = 1;
          break descend;
        }
        const ps = (lo & 0x80) !== 0;
        if ((hi & rsvdHiAll) !== 0 || (ps && (lo & rsvdLo[5]) !== 0)) {
          fault = 2;
          break descend;
        }
        perms &= lo | -7; // ~RW_US
        if ((hi & nx) !== 0) perms |= 8; // PERM_NX
        p2 = perms;
        accessed &= lo;
        if (ps) break descend;
        const th = hi & 0xfffff;
        tableU = ((th << 20) | (lo >>> 12)) >>> 0;
        if (th >= 0x1000 || tableU > lastFrame) {
          // The next table is outside RAM: its entry reads as zeros (not present).
          outside = true;
          outsideF = th * 0x10_0000 + (lo >>> 12);
          level = 1;
          lo = 0;
          hi = 0;
          fault = 1;
          break descend;
        }
      }
      {
        // PTE
        level = 1;
        const c = tableU >>> 9;
        if (c !== chunk) {
          words = ram.chunkWordsForRead(tableU);
          chunk = c;
        }
        const w = ((tableU & 511) << 10) | (i1 << 1);
        lo = words[w];
        hi = words[w | 1];
        if ((lo & 1) === 0) {
          fault = 1;
          break descend;
        }
        if ((hi & rsvdHiAll) !== 0) {
          fault = 2;
          break descend;
        }
        perms &= lo | -7; // ~RW_US
        if ((hi & nx) !== 0) perms |= 8; // PERM_NX
        accessed &= lo;
      }
      break descend;
    }
    if (level === 1) {
      // A walk that starts at the PTE, after a PDE-cache hit: the PTE alone, without the joins.
      // PTE
      level = 1;
      const c = tableU >>> 9;
      if (c !== chunk) {
        words = ram.chunkWordsForRead(tableU);
        chunk = c;
      }
      const w = ((tableU & 511) << 10) | (i1 << 1);
      lo = words[w];
      hi = words[w | 1];
      if ((lo & 1) === 0) {
        fault = 1;
        break descend;
      }
      if ((hi & rsvdHiAll) !== 0) {
        fault = 2;
        break descend;
      }
      perms &= lo | -7; // ~RW_US
      if ((hi & nx) !== 0) perms |= 8; // PERM_NX
      accessed &= lo;
      break descend;
    }
    if (level === 5) {
      // PML5E
      level = 5;
      const c = tableU >>> 9;
      if (c !== chunk) {
        words = ram.chunkWordsForRead(tableU);
        chunk = c;
      }
      const w = ((tableU & 511) << 10) | (i5 << 1);
      lo = words[w];
      hi = words[w | 1];
      t5 = tableU;
      lo5 = lo;
      hi5 = hi;
      if ((lo & 1) === 0) {
        fault = 1;
        break descend;
      }
      const ps = (lo & 0x80) !== 0;
      if ((hi & rsvdHiAll) !== 0 || (ps && (lo & rsvdLo[11]) !== 0)) {
        fault = 2;
        break descend;
      }
      perms &= lo | -7; // ~RW_US
      if ((hi & nx) !== 0) perms |= 8; // PERM_NX
      p5 = perms;
      accessed &= lo;
      const th = hi & 0xfffff;
      tableU = ((th << 20) | (lo >>> 12)) >>> 0;
      if (th >= 0x1000 || tableU > lastFrame) {
        // The next table is outside RAM: its entry reads as zeros (not present).
        outside = true;
        outsideF = th * 0x10_0000 + (lo >>> 12);
        level = 4;
        lo = 0;
        hi = 0;
        fault = 1;
        break descend;
      }
    }
    if (level >= 4) {
      // PML4E
      level = 4;
      const c = tableU >>> 9;
      if (c !== chunk) {
        words = ram.chunkWordsForRead(tableU);
        chunk = c;
      }
      const w = ((tableU & 511) << 10) | (i4 << 1);
      lo = words[w];
      hi = words[w | 1];
      t4 = tableU;
      lo4 = lo;
      hi4 = hi;
      if ((lo & 1) === 0) {
        fault = 1;
        break descend;
      }
      const ps = (lo & 0x80) !== 0;
      if ((hi & rsvdHiAll) !== 0 || (ps && (lo & rsvdLo[9]) !== 0)) {
        fault = 2;
        break descend;
      }
      perms &= lo | -7; // ~RW_US
      if ((hi & nx) !== 0) perms |= 8; // PERM_NX
      p4 = perms;
      accessed &= lo;
      const th = hi & 0xfffff;
      tableU = ((th << 20) | (lo >>> 12)) >>> 0;
      if (th >= 0x1000 || tableU > lastFrame) {
        // The next table is outside RAM: its entry reads as zeros (not present).
        outside = true;
        outsideF = th * 0x10_0000 + (lo >>> 12);
        level = 3;
        lo = 0;
        hi = 0;
        fault = 1;
        break descend;
      }
    }
    if (level >= 3) {
      // PDPTE
      level = 3;
      const c = tableU >>> 9;
      if (c !== chunk) {
        words = ram.chunkWordsForRead(tableU);
        chunk = c;
      }
      const w = ((tableU & 511) << 10) | (i3 << 1);
      lo = words[w];
      hi = words[w | 1];
      t3 = tableU;
      lo3 = lo;
      hi3 = hi;
      if ((lo & 1) === 0) {
        fault = 1;
        break descend;
      }
      const ps = (lo & 0x80) !== 0;
      if ((hi & rsvdHiAll) !== 0 || (ps && (lo & rsvdLo[7]) !== 0)) {
        fault = 2;
        break descend;
      }
      perms &= lo | -7; // ~RW_US
      if ((hi & nx) !== 0) perms |= 8; // PERM_NX
      p3 = perms;
      accessed &= lo;
      if (ps) break descend;
      const th = hi & 0xfffff;
      tableU = ((th << 20) | (lo >>> 12)) >>> 0;
      if (th >= 0x1000 || tableU > lastFrame) {
        // The next table is outside RAM: its entry reads as zeros (not present).
        outside = true;
        outsideF = th * 0x10_0000 + (lo >>> 12);
        level = 2;
        lo = 0;
        hi = 0;
        fault = 1;
        break descend;
      }
    }
    if (level >= 2) {
      // PDE
      level = 2;
      const c = tableU >>> 9;
      if (c !== chunk) {
        words = ram.chunkWordsForRead(tableU);
        chunk = c;
      }
      const w = ((tableU & 511) << 10) | (i2 << 1);
      lo = words[w];
      hi = words[w | 1];
      t2 = tableU;
      lo2 = lo;
      hi2 = hi;
      if ((lo & 1) === 0) {
        fault = 1;
        break descend;
      }
      const ps = (lo & 0x80) !== 0;
      if ((hi & rsvdHiAll) !== 0 || (ps && (lo & rsvdLo[5]) !== 0)) {
        fault = 2;
        break descend;
      }
      perms &= lo | -7; // ~RW_US
      if ((hi & nx) !== 0) perms |= 8; // PERM_NX
      p2 = perms;
      accessed &= lo;
      if (ps) break descend;
      const th = hi & 0xfffff;
      tableU = ((th << 20) | (lo >>> 12)) >>> 0;
      if (th >= 0x1000 || tableU > lastFrame) {
        // The next table is outside RAM: its entry reads as zeros (not present).
        outside = true;
        outsideF = th * 0x10_0000 + (lo >>> 12);
        level = 1;
        lo = 0;
        hi = 0;
        fault = 1;
        break descend;
      }
    }
    if (level >= 1) {
      // PTE
      level = 1;
      const c = tableU >>> 9;
      if (c !== chunk) {
        words = ram.chunkWordsForRead(tableU);
        chunk = c;
      }
      const w = ((tableU & 511) << 10) | (i1 << 1);
      lo = words[w];
      hi = words[w | 1];
      if ((lo & 1) === 0) {
        fault = 1;
        break descend;
      }
      if ((hi & rsvdHiAll) !== 0) {
        fault = 2;
        break descend;
      }
      perms &= lo | -7; // ~RW_US
      if ((hi & nx) !== 0) perms |= 8; // PERM_NX
      accessed &= lo;
    }
  }
  // The per-level arrays: the entry and machine address of every level read (startLevel
  // down to `level`), the rights of every level whose checks passed. `tableU` is still the
  // frame of the last level's table (a walk leaves the descent before updating it).
  const eMaddr = out.entryMaddr;
  const eLo = out.entryLo;
  const eHi = out.entryHi;
  const lPerms = out.levelPerms;
  eLo[level] = lo;
  eHi[level] = hi;
  const il = level === 1 ? i1 : level === 2 ? i2 : level === 3 ? i3 : level === 4 ? i4 : i5;
  eMaddr[level] = outside ? outsideF * 4096 + il * 8 : tableU * 4096 + il * 8;
  if (fault === 0) lPerms[level] = perms;
  if (startLevel > level) {
    if (level < 2) {
      eMaddr[2] = t2 * 4096 + i2 * 8;
      eLo[2] = lo2;
      eHi[2] = hi2;
      lPerms[2] = p2;
    }
    if (level < 3 && startLevel >= 3) {
      eMaddr[3] = t3 * 4096 + i3 * 8;
      eLo[3] = lo3;
      eHi[3] = hi3;
      lPerms[3] = p3;
    }
    if (level < 4 && startLevel >= 4) {
      eMaddr[4] = t4 * 4096 + i4 * 8;
      eLo[4] = lo4;
      eHi[4] = hi4;
      lPerms[4] = p4;
    }
    if (level < 5 && startLevel >= 5) {
      eMaddr[5] = t5 * 4096 + i5 * 8;
      eLo[5] = lo5;
      eHi[5] = hi5;
      lPerms[5] = p5;
    }
  }
  const reads = startLevel - level + 1;
  out.reads = reads;
  out.totalReads += reads;
  if (fault !== 0) {
    out.ok = false;
    out.fault = fault;
    out.errorCode =
      fault === FAULT_NOT_PRESENT
        ? faultCode(access, mode)
        : faultCode(access, mode) | PFEC_page_present | PFEC_reserved_bit;
    out.faultLevel = level;
    out.perms = perms0; // as walkBegin left it: a fault caches no rights
    out.leafLevel = 0;
    out.totalFaults++;
    return false;
  }
  out.leafLevel = level;
  if (denied(perms, access, mode)) {
    out.ok = false;
    out.perms = perms;
    out.fault = FAULT_PROTECTION;
    out.errorCode = faultCode(access, mode) | PFEC_page_present;
    out.faultLevel = deniedLevel(out, mode);
    out.totalFaults++;
    return false;
  }
  // walkFinish's A/D rule: A on every level read, D on the leaf of a write. When every
  // entry read already has A, no level above the leaf needs a write.
  let writes = 0;
  if (accessed === 0) {
    for (let l = startLevel; l > level; l--) {
      const v = eLo[l];
      if ((v & _PAGE_ACCESSED) === 0) {
        eLo[l] = v | _PAGE_ACCESSED;
        ram.write32(eMaddr[l], (v | _PAGE_ACCESSED) >>> 0);
        writes++;
      }
    }
  }
  // Literals as above: 2 is ACCESS_WRITE, 0x20 _PAGE_ACCESSED, 0x40 _PAGE_DIRTY and
  // PERM_DIRTY, 0x100 _PAGE_GLOBAL and PERM_GLOBAL.
  const want = (access & 2) !== 0 ? 0x60 : 0x20;
  if ((lo & want) !== want) {
    lo = (lo | want) >>> 0;
    eLo[level] = lo;
    ram.write32(eMaddr[level], lo);
    writes++;
  }
  if (writes !== 0) {
    out.writes = writes;
    out.totalWrites += writes;
  }
  out.leafLo = lo;
  out.leafHi = hi;
  perms |= lo & 0x140;
  out.perms = perms;
  let mfn = (hi & 0xfffff) * 0x10_0000 + (lo >>> 12);
  let offset: number;
  if (level === 1) {
    out.pageShift = 12;
    offset = vaLo & 0xfff;
  } else if (level === 2) {
    out.pageShift = 21;
    mfn -= (lo >>> 12) & 0x1ff;
    offset = vaLo & 0x1f_ffff;
  } else {
    out.pageShift = 30;
    mfn -= (lo >>> 12) & 0x3_ffff;
    offset = vaLo & 0x3fff_ffff;
  }
  out.pageMfn = mfn;
  out.maddr = mfn * 4096 + offset;
  out.ok = true;
  out.fault = 0;
  out.errorCode = 0;
  out.faultLevel = 0;
  return true;
}

/** The frame number an entry read during the last walk points to (level 1-5). */
export function walkEntryMfn(out: WalkResult, level: number): number {
  return pteMfn(out.entryLo[level], out.entryHi[level]);
}
