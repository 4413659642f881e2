/*
 * Paging-structure caches (Intel SDM vol. 3, §4.10.3): the PML5E, PML4E, PDPTE and PDE
 * caches. An entry of the level-L cache is keyed by the VA bits above level L's page size
 * (VA >> 48, 39, 30 or 21) and a tag (PCID, VPID or ASID), and holds the frame of the
 * level-(L-1) structure with the rights accumulated from the root down to level L.
 *
 * Invariants: an entry is made only from a successful walk, after its A flags were set, so a
 * walk that starts below it needs no A/D write above it; entries are never made more
 * permissive than the walk that filled them; the caches are not tagged by the root frame,
 * so whoever loads another root under the same tag flushes that tag (as MOV to CR3 does
 * without PCIDs). Lookups and fills allocate nothing.
 */

import { AssocArray, type AssocConfig } from "./assoc";
import { pteMfn } from "./entry";

/** 1 / the page size of a level's entry: keys are Math.floor(va * scale), exact (a power of
 * two) and cheaper than a division on the walk path. */
const LEVEL_SCALE = [0, 2 ** -12, 2 ** -21, 2 ** -30, 2 ** -39, 2 ** -48];

/**
 * What `fill` reads of a successful walk (a WalkResult has it): the levels it read and, per
 * level, the entry and the rights accumulated down to it. Declared here, not imported from
 * the walker, so that the walker may use the caches without an import circle.
 */
export interface PwcFillSource {
  readonly startLevel: number;
  readonly leafLevel: number;
  readonly entryLo: Uint32Array;
  readonly entryHi: Uint32Array;
  readonly levelPerms: Uint16Array;
}

/** Geometry of the page-walk caches; leave a level out (or null) to have no cache there. */
export interface PwcConfig {
  pml5e?: AssocConfig | null;
  pml4e?: AssocConfig | null;
  pdpte?: AssocConfig | null;
  pde?: AssocConfig | null;
  /** Source of u32s for "random" replacement (a seeded PRNG). */
  random?: () => number;
}

/** Loosely after recent Intel cores: 32 PDE, 4 PDPTE, 2 PML4E and 2 PML5E entries. */
export const DEFAULT_PWC_CONFIG: PwcConfig = {
  pml5e: { sets: 1, ways: 2 },
  pml4e: { sets: 1, ways: 2 },
  pdpte: { sets: 1, ways: 4 },
  pde: { sets: 8, ways: 4 },
};

/** Counter indices of PageWalkCache.counters. */
export const PWC_LOOKUPS = 0;
export const PWC_MISSES = 1;
export const PWC_FLUSHES = 2;
export const PWC_ENTRIES_FLUSHED = 3;
/** Per cached level L (2 = PDE .. 5 = PML5E): hits at 4 + (L-2)*3, inserts +1, evictions +2. */
export const PWC_LEVEL_BASE = 4;
export const PWC_HITS = 0;
export const PWC_INSERTS = 1;
export const PWC_EVICTIONS = 2;
const NR_COUNTERS = PWC_LEVEL_BASE + 4 * 3;
// lookup and probe use these indices as literals.
if (PWC_LOOKUPS !== 0 || PWC_MISSES !== 1 || PWC_LEVEL_BASE !== 4 || PWC_HITS !== 0) {
  throw new Error("page-walk cache counter indices changed; update lookup and probe");
}

export class PageWalkCache {
  /** The cache of level L's entries at index L (2-5); null where there is none. */
  readonly caches: (AssocArray | null)[];
  readonly counters = new Float64Array(NR_COUNTERS);
  /** After a lookup hit: the level of the cached entry, the next table, the rights. */
  hitLevel = 0;
  hitMfn = 0;
  hitPerms = 0;
  private readonly pde: AssocArray | null;
  private readonly pdpte: AssocArray | null;
  private readonly pml4e: AssocArray | null;
  private readonly pml5e: AssocArray | null;

  constructor(config: PwcConfig = DEFAULT_PWC_CONFIG) {
    const random = config.random ?? null;
    const make = (name: string, c: AssocConfig | null | undefined) =>
      c == null ? null : new AssocArray(`page-walk cache ${name}`, c, random);
    this.pde = make("pde", config.pde);
    this.pdpte = make("pdpte", config.pdpte);
    this.pml4e = make("pml4e", config.pml4e);
    this.pml5e = make("pml5e", config.pml5e);
    this.caches = [null, null, this.pde, this.pdpte, this.pml4e, this.pml5e];
  }

  /**
   * Finds the deepest cached entry for `va` and `tag` below the root level `levels` (a
   * PML5E cache is used only under 5-level paging). On a hit sets hitLevel, hitMfn and
   * hitPerms and returns true.
   */
  lookup(va: number, tag: number, levels: number): boolean {
    this.counters[0]++; // PWC_LOOKUPS
    // Keys are Math.floor(va / the level's page size) (LEVEL_SCALE), written as literals:
    // module bindings are cell loads with a hole check in optimised code. The PDE cache's
    // probe is here and the rest in lookupAbove, so that lookup stays small enough for V8
    // to inline into the walk.
    const pde = this.pde;
    if (pde !== null && this.probe(pde, 2, Math.floor(va * 2 ** -21), tag)) return true;
    // The VA's bits from 30 up (below 2^27: a small integer, passed without a heap number).
    return this.lookupAbove(Math.floor(va * 2 ** -30), tag, levels);
  }

  /**
   * lookup's probes of the PDPTE, PML4E and PML5E caches, after a PDE-cache miss; `va30` is
   * Math.floor(va / 2^30), the PDPTE cache's key.
   */
  private lookupAbove(va30: number, tag: number, levels: number): boolean {
    const pdpte = this.pdpte;
    if (pdpte !== null && this.probe(pdpte, 3, va30, tag)) return true;
    const pml4e = this.pml4e;
    if (pml4e !== null && this.probe(pml4e, 4, Math.floor(va30 * 2 ** -9), tag)) return true;
    const pml5e = this.pml5e;
    if (levels === 5 && pml5e !== null && this.probe(pml5e, 5, Math.floor(va30 * 2 ** -18), tag)) {
      return true;
    }
    this.counters[1]++; // PWC_MISSES
    return false;
  }

  /**
   * One cache's probe: AssocArray.find (its match rule, and it marks the hit used), then the
   * hit's fields. find rather than a copy of its scan: its LRU stamp is inline and a
   * non-LRU policy's `touch` is a call V8 does not inline while it is never taken, so the
   * probe stays small enough for V8 to inline lookup, the probe and walkPte (src/walker.ts)
   * into the walk within its inlining budget.
   */
  private probe(a: AssocArray, level: number, key: number, tag: number): boolean {
    const i = a.find(key, tag);
    if (i < 0) return false;
    this.hitLevel = level;
    this.hitMfn = a.value[i];
    this.hitPerms = a.perms[i];
    this.counters[4 + (level - 2) * 3]++; // PWC_LEVEL_BASE + ... + PWC_HITS
    return true;
  }

  /** Caches the non-leaf entries a successful walk read (called by `walk`). */
  fill(va: number, tag: number, out: PwcFillSource): void {
    for (let level = out.startLevel; level > out.leafLevel; level--) {
      const a = this.caches[level];
      if (a === null) continue;
      a.insert(
        Math.floor(va * LEVEL_SCALE[level]),
        tag,
        false,
        pteMfn(out.entryLo[level], out.entryHi[level]),
        out.levelPerms[level],
      );
      const b = PWC_LEVEL_BASE + (level - 2) * 3;
      this.counters[b + PWC_INSERTS]++;
      if (a.evict !== 0) this.counters[b + PWC_EVICTIONS]++;
    }
  }

  /** Drops the entries of `tag` (every tag when `tag` < 0). */
  flush(tag: number): void {
    this.counters[PWC_FLUSHES]++;
    let n = 0;
    for (let level = 2; level <= 5; level++) {
      const a = this.caches[level];
      if (a !== null) n += a.invalidate(tag, true);
    }
    this.counters[PWC_ENTRIES_FLUSHED] += n;
  }
}

/** A PageWalkCache's counters by name. */
export interface PwcStats {
  lookups: number;
  misses: number;
  flushes: number;
  entriesFlushed: number;
  /** Per cache: hits, inserts, evictions. */
  pml5e: { hits: number; inserts: number; evictions: number };
  pml4e: { hits: number; inserts: number; evictions: number };
  pdpte: { hits: number; inserts: number; evictions: number };
  pde: { hits: number; inserts: number; evictions: number };
}

/** A snapshot of a PageWalkCache's counters. */
export function pwcStats(pwc: PageWalkCache): PwcStats {
  const c = pwc.counters;
  const lv = (level: number) => {
    const b = PWC_LEVEL_BASE + (level - 2) * 3;
    return { hits: c[b + PWC_HITS], inserts: c[b + PWC_INSERTS], evictions: c[b + PWC_EVICTIONS] };
  };
  return {
    lookups: c[PWC_LOOKUPS],
    misses: c[PWC_MISSES],
    flushes: c[PWC_FLUSHES],
    entriesFlushed: c[PWC_ENTRIES_FLUSHED],
    pml5e: lv(5),
    pml4e: lv(4),
    pdpte: lv(3),
    pde: lv(2),
  };
}
