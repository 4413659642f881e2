/*
 * The data-cache hierarchy user accesses go through: set-associative levels with LRU
 * replacement over 64-byte lines, looked up in order (L1, L2, LLC), DRAM behind the last.
 * A line missing at a level is filled into it and every level above on the way back, as a
 * load brings a line into L1 (no back-invalidation: the levels are not kept inclusive).
 *
 * Invariants: `hits[i]` counts the accesses served by level i (`hits[3]` by DRAM), so
 * their sum is the number of accesses; a lookup allocates nothing; the same sequence of
 * lines gives the same counts (no randomness).
 *
 * Lines are named by process and virtual address (the study's workloads have no shared
 * writable memory after copy on write, and a line's set index comes from address bits
 * below the page offset for L1, so virtual and physical indexing agree there); the larger
 * levels are indexed by the same bits, which models capacity and associativity, not the
 * page colouring of a physically indexed cache.
 */
import { studyError } from "./errors";

/** One level of the hierarchy. */
export interface CacheLevelConfig {
  /** Level name, e.g. "L1d". */
  name: string;
  /** Capacity in bytes (a power of two). */
  bytes: number;
  /** Ways per set (a power of two, at most 32). */
  ways: number;
}

/**
 * Skylake client's data caches, the _Intel 64 and IA-32 Architectures Optimization
 * Reference Manual_, table "Cache parameters of the Skylake microarchitecture": L1 data
 * 32 KiB 8-way, L2 256 KiB 4-way; an LLC of 8 MiB 16-way (four cores' 2 MiB slices).
 */
export const DEFAULT_CACHE_LEVELS: readonly CacheLevelConfig[] = Object.freeze([
  { name: "L1d", bytes: 32 * 1024, ways: 8 },
  { name: "L2", bytes: 256 * 1024, ways: 4 },
  { name: "LLC", bytes: 8 * 1024 * 1024, ways: 16 },
]);

export const LINE_BYTES = 64;

const isPow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

/**
 * One level: per way a tag and a last-use stamp side by side (slot 2w and 2w + 1), the ways
 * of a set consecutive, so a set's lookup and its LRU choice touch the same host lines.
 */
interface Level {
  ways: Float64Array;
  /** sets - 1 (sets is a power of two). */
  mask: number;
  /** Slots of one set: 2 x ways. */
  span: number;
}

function makeLevel(l: CacheLevelConfig): Level {
  const slots = l.bytes / LINE_BYTES;
  const ways = new Float64Array(slots * 2);
  for (let i = 0; i < ways.length; i += 2) ways[i] = -1;
  return { ways, mask: slots / l.ways - 1, span: l.ways * 2 };
}

/**
 * Looks the line up in one level. On a hit stamps the way and returns -1; on a miss returns
 * the slot of the least recently used way (the first of equals), which the caller fills. One
 * pass serves both: a miss at a level is then filled without scanning its set again (nothing
 * touches the level between its lookup and its fill).
 */
function probe(a: Float64Array, base: number, end: number, line: number, now: number): number {
  let victim = base;
  let oldest = a[base + 1];
  for (let w = base; w < end; w += 2) {
    if (a[w] === line) {
      a[w + 1] = now;
      return -1;
    }
    const t = a[w + 1];
    if (t < oldest) {
      oldest = t;
      victim = w;
    }
  }
  return victim;
}

/** A set-associative cache hierarchy of three levels with LRU replacement. */
export class CacheHierarchy {
  readonly levels: readonly CacheLevelConfig[];
  /** Accesses served by L1d, L2, the LLC and DRAM, in that order. */
  readonly hits = new Float64Array(4);
  private readonly l1: Level;
  private readonly l2: Level;
  private readonly l3: Level;
  private clock = 0;

  constructor(levels: readonly CacheLevelConfig[] = DEFAULT_CACHE_LEVELS) {
    if (!Array.isArray(levels) || levels.length !== 3) {
      throw studyError(
        "STUDY_BAD_CACHE",
        "A cache hierarchy is a list of 3 levels (L1d, L2, LLC; the counts l2Hits, llcHits and dramAccesses name them), e.g. [{ name: 'L1d', bytes: 32768, ways: 8 }, ...].",
      );
    }
    for (const l of levels) {
      if (
        l === null ||
        typeof l !== "object" ||
        !isPow2(l.bytes) ||
        !isPow2(l.ways) ||
        l.ways > 32 ||
        l.bytes < l.ways * LINE_BYTES
      ) {
        throw studyError(
          "STUDY_BAD_CACHE",
          `Cache level ${JSON.stringify(l)}: bytes and ways must be powers of two, ways at most 32, and bytes at least ways x ${LINE_BYTES}.`,
        );
      }
    }
    this.levels = levels.map((l) => ({ ...l }));
    this.l1 = makeLevel(levels[0]);
    this.l2 = makeLevel(levels[1]);
    this.l3 = makeLevel(levels[2]);
  }

  /**
   * One access to the line of `va` in address space `space` (a whole number below 2^11, the
   * process). Returns the level that served it: 0 L1d, 1 L2, 2 LLC, 3 DRAM.
   */
  access(space: number, va: number): number {
    const lineInSpace = Math.floor(va / LINE_BYTES);
    const line = space * 2 ** 42 + lineInSpace;
    // Set index bits: the low bits of the line number (every level has fewer than 2^32 sets).
    const set = lineInSpace >>> 0;
    const now = ++this.clock;
    const l1 = this.l1;
    const b1 = (set & l1.mask) * l1.span;
    const v1 = probe(l1.ways, b1, b1 + l1.span, line, now);
    if (v1 < 0) {
      this.hits[0]++;
      return 0;
    }
    let served = 3;
    const l2 = this.l2;
    const b2 = (set & l2.mask) * l2.span;
    const v2 = probe(l2.ways, b2, b2 + l2.span, line, now);
    if (v2 < 0) served = 1;
    else {
      const l3 = this.l3;
      const b3 = (set & l3.mask) * l3.span;
      const v3 = probe(l3.ways, b3, b3 + l3.span, line, now);
      if (v3 < 0) served = 2;
      else {
        l3.ways[v3] = line;
        l3.ways[v3 + 1] = now;
      }
      l2.ways[v2] = line;
      l2.ways[v2 + 1] = now;
    }
    l1.ways[v1] = line;
    l1.ways[v1 + 1] = now;
    this.hits[served]++;
    return served;
  }
}
