/*
 * A translation lookaside buffer model (Intel SDM vol. 3, §4.10): one or more levels (an L1
 * dTLB, an L2 STLB, ...), each with a set-associative array per page size (4 KiB, 2 MiB,
 * 1 GiB), entries tagged by one number (PCID for PV and native, VPID/ASID for nested),
 * global entries, the INVLPG / INVPCID / CR3 / CR4.PGE flushes, and the page-walk caches.
 *
 * Invariants: an entry holds what a successful walk allowed (the frame of its page, its
 * PERM_* rights) and is never more permissive than that walk; a global entry matches every
 * tag and survives every flush but INVLPG of its address and a flush of everything; INVLPG
 * and the flushes also drop the page-walk-cache entries they must (INVLPG: every entry of
 * the tag, as the SDM allows); a lookup that misses a level and hits a lower one refills the
 * missed levels; every lookup, hit, miss, insert, eviction and flush is counted; lookups,
 * inserts and INVLPG allocate nothing.
 */

import { PERM_GLOBAL } from "./access";
import { AssocArray, type AssocConfig } from "./assoc";
import { PagingError } from "./errors";
import { DEFAULT_PWC_CONFIG, PageWalkCache, type PwcConfig, type PwcStats, pwcStats } from "./pwc";
import type { WalkResult } from "./walker";

/** One TLB level: an array per page size; leave a size out (or null) for none. */
export interface TlbLevelConfig {
  name?: string;
  size4k?: AssocConfig | null;
  size2m?: AssocConfig | null;
  size1g?: AssocConfig | null;
}

export interface TlbConfig {
  /** Levels, nearest the core first (e.g. [dTLB, STLB]). */
  levels?: TlbLevelConfig[];
  /** Page-walk caches; false for none. Default DEFAULT_PWC_CONFIG. */
  pwc?: PwcConfig | false;
  /** Source of u32s for "random" replacement: a seeded PRNG, e.g. () => prng.nextU32(). */
  random?: () => number;
}

/** Loosely after a Skylake core: a 64-entry dTLB (4 KiB), 32 (2 MiB), 4 (1 GiB); a
 * 1536-entry STLB (4 KiB), 1024 (2 MiB) and 16 (1 GiB), all LRU. */
export const DEFAULT_TLB_LEVELS: readonly TlbLevelConfig[] = [
  {
    name: "dtlb",
    size4k: { sets: 16, ways: 4 },
    size2m: { sets: 8, ways: 4 },
    size1g: { sets: 1, ways: 4 },
  },
  {
    name: "stlb",
    size4k: { sets: 128, ways: 12 },
    size2m: { sets: 128, ways: 8 },
    size1g: { sets: 4, ways: 4 },
  },
];

/** Counter indices of Tlb.counters. Per level l (0-based) at l * TLB_LEVEL_STRIDE + ...: */
export const TLB_LOOKUPS = 0;
export const TLB_HITS = 1;
export const TLB_MISSES = 2;
export const TLB_INSERTS = 3;
export const TLB_EVICTIONS = 4;
export const TLB_LEVEL_STRIDE = 5;
export const MAX_TLB_LEVELS = 4;
/** Whole-TLB counters after the per-level ones. */
export const TLB_INVLPG = MAX_TLB_LEVELS * TLB_LEVEL_STRIDE;
export const TLB_INVPCID_ADDR = TLB_INVLPG + 1;
export const TLB_FLUSH_TAG = TLB_INVLPG + 2;
export const TLB_FLUSH_NONGLOBAL = TLB_INVLPG + 3;
export const TLB_FLUSH_ALL = TLB_INVLPG + 4;
export const TLB_ENTRIES_FLUSHED = TLB_INVLPG + 5;
const NR_COUNTERS = TLB_ENTRIES_FLUSHED + 1;

const SIZE_SHIFT = [12, 21, 30];
/** 1 / the page size (2^12, 2^21, 2^30): a key is Math.floor(va * scale), exact (a power of two) and cheaper than a
 * division on the lookup path. */
const SIZE_SCALE = [2 ** -12, 2 ** -21, 2 ** -30];

export class Tlb {
  // `declare`d fields: see AssocArray (a field first defined as undefined stays tagged).
  declare readonly nrLevels: number;
  declare readonly levelNames: readonly string[];
  /** The arrays in lookup order (level by level, 4K then 2M then 1G), and per array its
   * level and page-size index (0 = 4K, 1 = 2M, 2 = 1G). */
  declare private readonly arrays: AssocArray[];
  declare private readonly arrayLevel: Int32Array;
  declare private readonly arraySize: Int32Array;
  declare private readonly arrayScale: Float64Array;
  /** arrays[0], its page-size index and its scale, for lookup's first probe. */
  declare private readonly first: AssocArray;
  declare private readonly firstSize: number;
  declare private readonly firstScale: number;
  /** Per level and page size, the array or null (index level * 3 + size). */
  declare private readonly grid: (AssocArray | null)[];
  /** lookupRest's shortcut to level 1's 4 KiB array (null when the TLB has no such array
   * or its first array is not level 0's 4 KiB one): that array, its index in `arrays`, and
   * level 0's 2 MiB and 1 GiB arrays (or null), which the lookup probes before it. */
  declare private readonly stlb4k: AssocArray | null;
  declare private readonly stlb4kIndex: number;
  declare private readonly dtlb2m: AssocArray | null;
  declare private readonly dtlb1g: AssocArray | null;
  /** With the shortcut, in a TLB of two levels: level 1's 2 MiB and 1 GiB arrays (or null),
   * the only arrays the loop would probe after level 1's 4 KiB one. */
  declare private readonly stlb2m: AssocArray | null;
  declare private readonly stlb1g: AssocArray | null;
  declare private readonly twoLevels: boolean;
  /** Page-walk caches, or null. Pass it to `walk`. */
  declare readonly pwc: PageWalkCache | null;
  readonly counters = new Float64Array(NR_COUNTERS);
  /** After a lookup hit: the level that hit (0-based), the page's first frame, the frame
   * holding the VA, the page shift and the PERM_* rights. */
  hitLevel = -1;
  hitPageMfn = 0;
  hitMfn = 0;
  hitPageShift = 12;
  hitPerms = 0;
  /** lookup's VA, for lookupRest (see lookup). */
  private restVa = 0.5;
  /** lookupRest's hit, for refill (see lookupRest). */
  private refillKey = 0.5;
  private refillMfn = 0.5;
  /** The VA insertAtVa inserts. */
  insertVa = 0.5;

  constructor(config: TlbConfig = {}) {
    const levels = config.levels ?? DEFAULT_TLB_LEVELS;
    if (!Array.isArray(levels) || levels.length < 1 || levels.length > MAX_TLB_LEVELS) {
      throw new PagingError(
        "TLB_BAD_CONFIG",
        `a TLB has 1 to ${MAX_TLB_LEVELS} levels, got ${Array.isArray(levels) ? levels.length : String(levels)}; pass e.g. { levels: [{ size4k: { sets: 16, ways: 4 } }] }`,
      );
    }
    const random = config.random ?? null;
    if (random !== null && typeof random !== "function") {
      throw new PagingError("TLB_BAD_CONFIG", "`random` must be a function returning u32s");
    }
    this.nrLevels = levels.length;
    this.levelNames = levels.map((l, i) => l.name ?? `L${i + 1}`);
    this.arrays = [];
    const lv: number[] = [];
    const sz: number[] = [];
    this.grid = [];
    levels.forEach((l, i) => {
      const sizes = [l.size4k, l.size2m, l.size1g];
      const names = ["size4k", "size2m", "size1g"];
      let any = false;
      for (let s = 0; s < 3; s++) {
        const c = sizes[s];
        if (c == null) {
          this.grid.push(null);
          continue;
        }
        const a = new AssocArray(`TLB ${this.levelNames[i]} ${names[s]}`, c, random);
        this.arrays.push(a);
        lv.push(i);
        sz.push(s);
        this.grid.push(a);
        any = true;
      }
      if (!any) {
        throw new PagingError(
          "TLB_BAD_CONFIG",
          `TLB level ${this.levelNames[i]} has no array: give it size4k, size2m or size1g`,
        );
      }
    });
    this.arrayLevel = Int32Array.from(lv);
    this.arraySize = Int32Array.from(sz);
    this.arrayScale = Float64Array.from(sz, (x) => SIZE_SCALE[x]);
    this.first = this.arrays[0];
    this.firstSize = sz[0];
    this.firstScale = SIZE_SCALE[sz[0]];
    const s4 = this.nrLevels > 1 && lv[0] === 0 && sz[0] === 0 ? this.grid[3] : null;
    this.stlb4k = s4;
    this.stlb4kIndex = s4 === null ? -1 : this.arrays.indexOf(s4);
    this.dtlb2m = this.grid[1];
    this.dtlb1g = this.grid[2];
    this.stlb2m = this.grid[4] ?? null;
    this.stlb1g = this.grid[5] ?? null;
    this.twoLevels = this.nrLevels === 2;
    this.pwc =
      config.pwc === false
        ? null
        : new PageWalkCache({ random: config.random, ...(config.pwc ?? DEFAULT_PWC_CONFIG) });
  }

  /** The array of a level (0-based) and page size (12, 21 or 30), or null. */
  array(level: number, pageShift: number): AssocArray | null {
    const s = SIZE_SHIFT.indexOf(pageShift);
    return this.grid[level * 3 + s] ?? null;
  }

  /**
   * Looks `va` up for `tag`, level by level. On a hit fills hitLevel, hitPageMfn, hitMfn,
   * hitPageShift and hitPerms, refills the levels that missed, and returns true.
   */
  lookup(va: number, tag: number): boolean {
    // The first array (level 0's first page size) by itself: the hit every backend's hot
    // path hopes for, without the loop's level bookkeeping.
    const a = this.first;
    const idx = a.find(Math.floor(va * this.firstScale), tag);
    if (idx >= 0) {
      // Counter indices as literals (TLB_LOOKUPS 0, TLB_HITS 1, TLB_MISSES 2, TLB_INSERTS 3,
      // TLB_EVICTIONS 4, TLB_LEVEL_STRIDE 5) here and below: V8 loads a module binding from
      // its context and checks it on every use. Level 0's lookup is counted here on a hit
      // and in lookupRest on a miss: both increments after find, so the counters' typed
      // array is loaded and checked once on a hit.
      const c = this.counters;
      c[0]++;
      c[1]++;
      const pageMfn = a.value[idx];
      this.hitLevel = 0;
      this.hitPageMfn = pageMfn;
      this.hitPerms = a.perms[idx];
      const s = this.firstSize;
      if (s === 0) {
        this.hitPageShift = 12;
        this.hitMfn = pageMfn;
      } else {
        this.hitPageShift = SIZE_SHIFT[s];
        this.hitMfn = pageMfn + (((va * 2 ** -12) >>> 0) & ((1 << (9 * s)) - 1));
      }
      return true;
    }
    // The VA goes through a double field, written in place: passed to a call that is not
    // inlined, a number above 2^31 would be boxed (a heap allocation per miss).
    this.restVa = va;
    return this.lookupRest(tag);
  }

  /**
   * lookup past a miss in the first array, for `restVa`: the other arrays, level by level.
   * The lookups and misses of the levels it passes are counted where it ends (literal
   * indices for a level-1 hit, else countDown), not as the scan moves from level to level:
   * the same counts, but the loop over the arrays carries no level and loads no array's level
   * on the way, about a tenth of the instructions of pv-mmu's new-page read (h82).
   * paging-ref.c's tlb_lookup still counts as it goes (the same counts; h82 in decisions.md
   * says why it was left so). Level 1's 4 KiB array has a shortcut of its own ahead of the
   * loop (h89): the same probes in the same order, see below.
   */
  private lookupRest(tag: number): boolean {
    const va = this.restVa;
    const c = this.counters;
    let i = 1;
    const s4 = this.stlb4k;
    if (s4 !== null) {
      // The usual case written out: level 0's 2 MiB and 1 GiB arrays are empty (a guest of
      // 4 KiB pages), so the next array the loop below would probe is level 1's 4 KiB one,
      // and a hit there is the STLB hit with its refill of the first array. The same probes
      // in the same order as the loop, with the level, page size and array known here: for
      // V8, the loop's per-array loads (the JS array's element with its map checks, the
      // scale, level and size typed arrays) and `grid`'s lookup are gone from the path of
      // an STLB hit and of a TLB miss. On a miss the loop goes on after this array.
      const d2 = this.dtlb2m;
      const d1 = this.dtlb1g;
      if ((d2 === null || d2.used === 0) && (d1 === null || d1.used === 0)) {
        if (s4.used !== 0) {
          const key = Math.floor(va * 2 ** -12);
          const idx = s4.findWide(key, tag);
          if (idx >= 0) {
            const pageMfn = s4.value[idx];
            const perms = s4.perms[idx];
            this.hitLevel = 1;
            this.hitPageMfn = pageMfn;
            this.hitPerms = perms;
            this.hitPageShift = 12;
            this.hitMfn = pageMfn;
            // Level 0 looked up and missed, level 1 looked up and hit; then the refill of the
            // first array (level 0's 4 KiB one), as the loop's STLB hit below.
            c[0]++;
            c[2]++;
            c[5]++;
            c[6]++;
            const d = this.first;
            if ((s4.flags[idx] & 2) === 0) d.insertAbsent(key, tag, false, pageMfn, perms);
            else d.insert(key, s4.tag[idx], true, pageMfn, perms);
            c[3]++;
            if (d.evict !== 0) c[4]++;
            return true;
          }
        }
        if (this.twoLevels) {
          const e2 = this.stlb2m;
          const e1 = this.stlb1g;
          if ((e2 === null || e2.used === 0) && (e1 === null || e1.used === 0)) {
            // The loop below would skip both (empty) and end in a miss of the whole TLB:
            // counted here as it would (countDown(1) and level 1's miss), for V8 without the
            // loop's per-array loads and countDown's call and loop (paging-ref.c's
            // tlb_lookup checks and counts the same).
            c[0]++;
            c[2]++;
            c[5]++;
            c[7]++;
            this.hitLevel = -1;
            return false;
          }
        }
        i = this.stlb4kIndex + 1;
      }
    }
    const arrays = this.arrays;
    const n = arrays.length;
    for (; i < n; i++) {
      const a = arrays[i];
      // An empty array (e.g. the 2 MiB and 1 GiB arrays of a guest without huge pages)
      // misses without a scan; paging-ref.c's tlb_lookup does the same.
      if (a.used === 0) continue;
      const key = Math.floor(va * this.arrayScale[i]);
      const idx = a.findWide(key, tag);
      if (idx < 0) continue;
      const l = this.arrayLevel[i];
      const s = this.arraySize[i];
      const pageMfn = a.value[idx];
      this.hitLevel = l;
      this.hitPageMfn = pageMfn;
      this.hitPerms = a.perms[idx];
      if (s === 0) {
        this.hitPageShift = 12;
        this.hitMfn = pageMfn;
      } else {
        this.hitPageShift = SIZE_SHIFT[s];
        this.hitMfn = pageMfn + (((va * 2 ** -12) >>> 0) & ((1 << (9 * s)) - 1));
      }
      if (l === 0) {
        c[0]++;
        c[1]++;
      } else if (l === 1) {
        // The STLB hit: level 0 looked up and missed, level 1 looked up and hit.
        c[0]++;
        c[2]++;
        c[5]++;
        c[6]++;
        const d = this.grid[s];
        // Refilling the array `lookup` probed first for this key and tag, which missed:
        // with a non-global entry (its tag is `tag`) insert would find no entry to
        // refresh, so its scan for one is skipped (paging-ref.c does the same).
        if (d === this.first && (a.flags[idx] & 2) === 0) {
          d.insertAbsent(key, tag, false, pageMfn, a.perms[idx]);
          c[3]++;
          if (d.evict !== 0) c[4]++;
        } else if (d !== null) {
          d.insert(key, a.tag[idx], (a.flags[idx] & 2) !== 0, pageMfn, a.perms[idx]);
          c[3]++;
          if (d.evict !== 0) c[4]++;
        }
      } else {
        this.countDown(l);
        c[l * 5 + 1]++;
        // The key (a VPN, above 2^31 for a high VA) and the frame go through double
        // fields written in place: as arguments of a call that is not inlined they would
        // be boxed (a heap number per STLB hit).
        this.refillKey = key;
        this.refillMfn = pageMfn;
        this.refill(l, s, a.tag[idx], (a.flags[idx] & 2) !== 0, a.perms[idx]);
      }
      return true;
    }
    this.countDown(this.nrLevels - 1);
    c[(this.nrLevels - 1) * 5 + 2]++;
    this.hitLevel = -1;
    return false;
  }

  /** Counts a lookup that reached level `l` (0-based): a lookup and a miss at each level
   * above it, and a lookup at `l` (its hit or miss is the caller's to count). */
  private countDown(l: number): void {
    const c = this.counters;
    c[0]++;
    for (let k = 0; k < l; k++) {
      c[k * 5 + 2]++;
      c[(k + 1) * 5]++;
    }
  }

  /** Inserts the entry lookupRest hit at level `below` (its key and frame in `refillKey`
   * and `refillMfn`) into the levels above it. */
  private refill(below: number, s: number, tag: number, global: boolean, perms: number): void {
    const key = this.refillKey;
    const mfn = this.refillMfn;
    for (let l = 0; l < below; l++) this.insertAt(l, s, key, tag, global, mfn, perms);
  }

  private insertAt(
    l: number,
    s: number,
    key: number,
    tag: number,
    global: boolean,
    mfn: number,
    perms: number,
  ): void {
    const a = this.grid[l * 3 + s];
    if (a === null) return;
    // AssocArray.insert with the key through a field (see `place`).
    a.placeKey = key;
    a.place(tag, global, mfn, perms);
    const c = this.counters;
    c[l * 5 + 3]++;
    if (a.evict !== 0) c[l * 5 + 4]++;
  }

  /**
   * Inserts the translation of `va` for `tag` into every level with an array of that page
   * size: `pageMfn` is the page's first frame, `pageShift` 12, 21 or 30, `perms` PERM_*
   * bits (PERM_GLOBAL makes a global entry). Throws PagingError on a bad page shift.
   */
  insert(va: number, tag: number, pageMfn: number, pageShift: number, perms: number): void {
    this.insertVa = va;
    this.insertAtVa(tag, pageMfn, pageShift, perms);
  }

  /**
   * insert for the VA in `insertVa`, for a hot caller: a VA above 2^31 passed to a call V8
   * does not inline is boxed (a heap number per insert), where a double field is written in
   * place (AssocArray.place does the same for its key).
   */
  insertAtVa(tag: number, pageMfn: number, pageShift: number, perms: number): void {
    const va = this.insertVa;
    const s = pageShift === 12 ? 0 : pageShift === 21 ? 1 : pageShift === 30 ? 2 : -1;
    if (s < 0) {
      throw new PagingError(
        "PAGING_BAD_PAGE_SIZE",
        `page shift must be 12 (4 KiB), 21 (2 MiB) or 30 (1 GiB), got ${pageShift}`,
      );
    }
    const key = Math.floor(va * SIZE_SCALE[s]);
    const global = (perms & PERM_GLOBAL) !== 0;
    for (let l = 0; l < this.nrLevels; l++) this.insertAt(l, s, key, tag, global, pageMfn, perms);
  }

  /** Inserts what a successful walk found (its leaf's G makes a global entry). */
  insertWalk(out: WalkResult, tag: number): void {
    this.insert(out.va, tag, out.pageMfn, out.pageShift, out.perms);
  }

  /**
   * INVLPG: drops the translations of `va` for `tag` in every page size, global ones
   * included, and every page-walk-cache entry of `tag`.
   */
  invlpg(va: number, tag: number): void {
    this.counters[TLB_INVLPG]++;
    this.dropVa(va, tag, true);
    if (this.pwc !== null) this.pwc.flush(tag);
  }

  /** INVPCID type 0 (individual address): like INVLPG but global translations stay. */
  invpcidAddress(va: number, tag: number): void {
    this.counters[TLB_INVPCID_ADDR]++;
    this.dropVa(va, tag, false);
    if (this.pwc !== null) this.pwc.flush(tag);
  }

  private dropVa(va: number, tag: number, withGlobal: boolean): void {
    let n = 0;
    const arrays = this.arrays;
    for (let i = 0; i < arrays.length; i++) {
      n += arrays[i].invalidateKey(Math.floor(va * this.arrayScale[i]), tag, withGlobal);
    }
    this.counters[TLB_ENTRIES_FLUSHED] += n;
  }

  /** INVPCID type 1 (single context), or MOV to CR3 under a PCID: drops the non-global
   * entries of `tag` and its page-walk-cache entries. */
  flushTag(tag: number): void {
    this.counters[TLB_FLUSH_TAG]++;
    this.dropAll(tag, false);
  }

  /** INVPCID type 3, or MOV to CR3 without PCIDs: drops every non-global entry of every
   * tag and the page-walk caches. */
  flushNonGlobal(): void {
    this.counters[TLB_FLUSH_NONGLOBAL]++;
    this.dropAll(-1, false);
  }

  /** INVPCID type 2, or toggling CR4.PGE: drops everything, global entries included. */
  flushAll(): void {
    this.counters[TLB_FLUSH_ALL]++;
    this.dropAll(-1, true);
  }

  private dropAll(tag: number, withGlobal: boolean): void {
    let n = 0;
    for (const a of this.arrays) n += a.invalidate(tag, withGlobal);
    this.counters[TLB_ENTRIES_FLUSHED] += n;
    if (this.pwc !== null) this.pwc.flush(tag);
  }

  /** Valid entries of a level (0-based), all page sizes. */
  occupancy(level: number): number {
    let n = 0;
    for (let s = 0; s < 3; s++) n += this.grid[level * 3 + s]?.occupancy() ?? 0;
    return n;
  }
}

/** One TLB level's counters. */
export interface TlbLevelStats {
  name: string;
  lookups: number;
  hits: number;
  misses: number;
  inserts: number;
  evictions: number;
}

/** A snapshot of a Tlb's counters (and its page-walk caches'). */
export interface TlbStats {
  levels: TlbLevelStats[];
  invlpg: number;
  invpcidAddress: number;
  flushTag: number;
  flushNonGlobal: number;
  flushAll: number;
  entriesFlushed: number;
  pwc: PwcStats | null;
}

export function tlbStats(tlb: Tlb): TlbStats {
  const c = tlb.counters;
  const levels: TlbLevelStats[] = [];
  for (let l = 0; l < tlb.nrLevels; l++) {
    const b = l * TLB_LEVEL_STRIDE;
    levels.push({
      name: tlb.levelNames[l],
      lookups: c[b + TLB_LOOKUPS],
      hits: c[b + TLB_HITS],
      misses: c[b + TLB_MISSES],
      inserts: c[b + TLB_INSERTS],
      evictions: c[b + TLB_EVICTIONS],
    });
  }
  return {
    levels,
    invlpg: c[TLB_INVLPG],
    invpcidAddress: c[TLB_INVPCID_ADDR],
    flushTag: c[TLB_FLUSH_TAG],
    flushNonGlobal: c[TLB_FLUSH_NONGLOBAL],
    flushAll: c[TLB_FLUSH_ALL],
    entriesFlushed: c[TLB_ENTRIES_FLUSHED],
    pwc: tlb.pwc === null ? null : pwcStats(tlb.pwc),
  };
}
