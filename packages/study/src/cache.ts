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

/**
 * The access path's constants as a const enum: the build writes each use as a number
 * literal, where a module-level `const` would be a `var` in the bundle, loaded and checked at
 * every use (and `va / LINE_BYTES` a division by a loaded value). Kept equal by the check.
 */
const enum C {
  LINE_BYTES = 64,
}
if (C.LINE_BYTES !== LINE_BYTES) throw new Error("cache.ts: C.LINE_BYTES is not LINE_BYTES.");

const isPow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

/**
 * One level: per set its ways' lines in recency order, the most recently used first (an
 * empty way holds -1 and sorts last), the sets one after another. Keeping the order instead
 * of a last-use stamp per way is the same LRU (the victim is the last line, which is the one
 * a stamp would name) in half the host memory: 8 bytes a way, the 8 MiB LLC a 1 MiB array.
 */
interface Level {
  ways: Float64Array;
  /** sets - 1 (sets is a power of two). */
  mask: number;
  /** Ways per set. */
  span: number;
}

function makeLevel(l: CacheLevelConfig): Level {
  const slots = l.bytes / LINE_BYTES;
  return { ways: new Float64Array(slots).fill(-1), mask: slots / l.ways - 1, span: l.ways };
}

/**
 * Looks the line up in the set at [base, end) and leaves it the most recently used: a hit
 * moves it to the front, a miss inserts it there and drops the last (least recently used)
 * line. One pass serves both, shifting the lines it passes by one. Returns whether it hit.
 */
function touch(a: Float64Array, base: number, end: number, line: number): boolean {
  let prev = a[base];
  if (prev === line) return true;
  a[base] = line;
  for (let w = base + 1; w < end; w++) {
    const t = a[w];
    a[w] = prev;
    if (t === line) return true;
    prev = t;
  }
  return false;
}

/** A set-associative cache hierarchy of three levels with LRU replacement. */
export class CacheHierarchy {
  readonly levels: readonly CacheLevelConfig[];
  /** Accesses served by L1d, L2, the LLC and DRAM, in that order. */
  readonly hits = new Float64Array(4);
  private readonly l1: Level;
  private readonly l2: Level;
  private readonly l3: Level;

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
    const lineInSpace = Math.floor(va / C.LINE_BYTES);
    const line = space * 2 ** 42 + lineInSpace;
    // Set index bits: the low bits of the line number (every level has fewer than 2^32 sets).
    const set = lineInSpace >>> 0;
    // Every level looked at ends holding the line (a miss fills it on the way back), so each
    // level is touched once, in order, until one holds it.
    const l1 = this.l1;
    const b1 = (set & l1.mask) * l1.span;
    let served = 3;
    if (touch(l1.ways, b1, b1 + l1.span, line)) served = 0;
    else {
      const l2 = this.l2;
      const b2 = (set & l2.mask) * l2.span;
      if (touch(l2.ways, b2, b2 + l2.span, line)) served = 1;
      else {
        const l3 = this.l3;
        const b3 = (set & l3.mask) * l3.span;
        if (touch(l3.ways, b3, b3 + l3.span, line)) served = 2;
      }
    }
    this.hits[served]++;
    return served;
  }
}
