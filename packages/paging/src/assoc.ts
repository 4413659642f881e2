/*
 * A set-associative array of translations in typed arrays: the storage of every TLB array
 * and page-walk cache.
 *
 * Invariants: an entry is valid iff its `flags` has ASSOC_VALID; at most one valid entry
 * holds a given (key, tag) pair, and a global entry is stored once whatever its tag; an
 * entry lives in set `key mod sets` (sets is a power of two); lookups, inserts and
 * invalidations allocate nothing. A global entry matches every tag. `used` is the number of
 * valid entries (insert into a free way adds one, an invalidation subtracts what it drops),
 * so a lookup may skip an array whose `used` is 0. `keyLo[i]` is `key[i] | 0` (the key's low
 * 32 bits) for every way, valid or not: findWide and place compare it first, and the full
 * key only where it matches.
 */

import { PagingError } from "./errors";

export const ASSOC_VALID = 1;
export const ASSOC_GLOBAL = 2;

export const REPLACE_LRU = 0;
export const REPLACE_PLRU = 1;
export const REPLACE_RANDOM = 2;

/** Replacement policy of a TLB array or page-walk cache. */
export type Replacement = "lru" | "plru" | "random";

/** Geometry of one set-associative array. */
export interface AssocConfig {
  /** Number of sets: a power of two (1 = fully associative). */
  sets: number;
  /** Ways per set (entries = sets * ways); at most 32 for "plru". */
  ways: number;
  /** Default "lru". "random" needs the config's `random` source. */
  replacement?: Replacement;
}

export class AssocArray {
  // Fields the constructor sets are `declare`d: with ES2022 class fields a plain declaration
  // first defines the field as undefined, and V8 then keeps a number field tagged (checked
  // on every read) and forgets an array field's map (a map check on every read).
  declare readonly sets: number;
  declare readonly ways: number;
  declare readonly setMask: number;
  declare readonly policy: number;
  declare private readonly random: (() => number) | null;
  declare private readonly depth: number;
  /** Per way: key (a VPN or a VA prefix), tag, flags, value (a frame number), perms. */
  declare readonly key: Float64Array;
  /** Per way: the key's low 32 bits (`key | 0`). findWide and place compare these int32s,
   * 4 bytes a way (a 12-way set in one or two cache lines, half the doubles' footprint),
   * and read the double key only where they match: an int32 compare is a cmp where a
   * double's is a vucomisd and a jump on its parity flag as well. */
  declare readonly keyLo: Int32Array;
  declare readonly tag: Uint32Array;
  declare readonly flags: Uint8Array;
  declare readonly value: Float64Array;
  declare readonly perms: Uint16Array;
  /** LRU: last-use stamp per way. PLRU: tree bits per set. */
  declare private readonly stamp: Float64Array;
  declare private readonly plru: Uint32Array;
  private clock = 0;
  /** Set by insert: 1 if it evicted a valid entry, else 0 (see `evicted`). A number, not a
   * boolean, for V8: the callers' test of a boolean field is a generic truthiness check
   * (false, "", undetectable, heap number and BigInt compares) and its store a map check,
   * where a Smi 0/1 is one compare. */
  evict = 0;
  /** Valid entries now (see the invariant): 0 means every find misses. */
  used = 0;
  /** The key `place` inserts. */
  placeKey = 0.5;

  constructor(what: string, config: AssocConfig, random: (() => number) | null) {
    const { sets, ways } = config;
    const replacement = config.replacement ?? "lru";
    const bad = (msg: string): never => {
      throw new PagingError("TLB_BAD_CONFIG", `${what}: ${msg}`);
    };
    if (!Number.isInteger(sets) || sets < 1 || sets > 1 << 20 || (sets & (sets - 1)) !== 0) {
      bad(`sets must be a power of two from 1 to 2^20, got ${sets}`);
    }
    if (!Number.isInteger(ways) || ways < 1 || ways > 1024) {
      bad(`ways must be a whole number from 1 to 1024, got ${ways}`);
    }
    if (replacement === "lru") this.policy = REPLACE_LRU;
    else if (replacement === "plru") {
      if ((ways & (ways - 1)) !== 0 || ways > 32) {
        bad(`pseudo-LRU needs a power-of-two number of ways up to 32, got ${ways}; use "lru"`);
      }
      this.policy = REPLACE_PLRU;
    } else if (replacement === "random") {
      if (random === null) {
        bad("random replacement needs a seeded source: pass `random: () => u32` in the config");
      }
      this.policy = REPLACE_RANDOM;
    } else {
      this.policy = bad(
        `replacement must be "lru", "plru" or "random", got ${String(replacement)}`,
      );
    }
    this.sets = sets;
    this.ways = ways;
    this.setMask = sets - 1;
    this.random = random;
    this.depth = Math.round(Math.log2(ways));
    const n = sets * ways;
    this.key = new Float64Array(n);
    this.keyLo = new Int32Array(n);
    this.tag = new Uint32Array(n);
    this.flags = new Uint8Array(n);
    this.value = new Float64Array(n);
    this.perms = new Uint16Array(n);
    this.stamp = new Float64Array(this.policy === REPLACE_LRU ? n : 0);
    this.plru = new Uint32Array(this.policy === REPLACE_PLRU ? sets : 0);
  }

  /** Whether the last insert evicted a valid entry. */
  get evicted(): boolean {
    return this.evict !== 0;
  }

  get entries(): number {
    return this.sets * this.ways;
  }

  /** Valid entries now. */
  occupancy(): number {
    let n = 0;
    for (let i = 0; i < this.flags.length; i++) if ((this.flags[i] & ASSOC_VALID) !== 0) n++;
    return n;
  }

  /** Index of the valid entry for `key` matching `tag` (or global), or -1. Marks it used. */
  find(key: number, tag: number): number {
    const ways = this.ways;
    const base = ((key >>> 0) & this.setMask) * ways;
    const end = base + ways;
    const keys = this.key;
    // Literals, not the module's constants (ASSOC_GLOBAL, REPLACE_LRU): V8 loads a module
    // binding from its context and checks it on every use. The double keys, not keyLo (as
    // findWide): find is inlined into every backend's translate for the dTLB probe, where
    // a hit is one compare on its way rather than two, and a 4-way set gains little.
    for (let i = base; i < end; i++) {
      if (keys[i] !== key) continue;
      const f = this.flags[i];
      if (f !== 0 && (this.tag[i] === tag || (f & 2) !== 0)) {
        if (this.policy === 0) this.stamp[i] = ++this.clock;
        else this.touch(i);
        return i;
      }
    }
    return -1;
  }

  /**
   * find for a wide set (lookupRest's arrays: the STLB's 12 ways): the same answer, but the
   * scan first steps over the set four ways at a time, comparing only the low key bits,
   * up to the first group of four that holds a match of them; the way-by-way scan of find
   * goes on from there. Why, for V8: each pass of a loop carries an interrupt check, the
   * index's increment with its overflow check, the compare with the end and often a spill
   * of the index, and reloads the typed array's map, data pointer and length; four ways a
   * pass pay that once for four (the four reads share one load of the array), about a
   * third of the instructions of a 12-way miss. A way the first loop steps over has no
   * match of its low key bits, so it could not have matched: the way found is find's.
   */
  findWide(key: number, tag: number): number {
    const ways = this.ways;
    const lo = key | 0;
    const base = (lo & this.setMask) * ways;
    const end = (base + ways) | 0;
    const los = this.keyLo;
    let i = base;
    for (; i + 3 < end; i += 4) {
      if (los[i] === lo || los[i + 1] === lo || los[i + 2] === lo || los[i + 3] === lo) break;
    }
    for (; i < end; i++) {
      if (los[i] !== lo || this.key[i] !== key) continue;
      const f = this.flags[i];
      if (f !== 0 && (this.tag[i] === tag || (f & 2) !== 0)) {
        if (this.policy === 0) this.stamp[i] = ++this.clock;
        else this.touch(i);
        return i;
      }
    }
    return -1;
  }

  /** Marks entry `i` most recently used. */
  touch(i: number): void {
    if (this.policy === REPLACE_LRU) this.stamp[i] = ++this.clock;
    else if (this.policy === REPLACE_PLRU) {
      const set = (i / this.ways) | 0;
      const way = i - set * this.ways;
      let bits = this.plru[set];
      let node = 1;
      for (let d = this.depth - 1; d >= 0; d--) {
        const dir = (way >>> d) & 1;
        // A node's bit names the half to evict next: the half not just used.
        if (dir === 1) bits &= ~(1 << node);
        else bits |= 1 << node;
        node = node * 2 + dir;
      }
      this.plru[set] = bits;
    }
  }

  /** The way to replace in a full set (every way valid). */
  private victimFull(base: number, set: number): number {
    const ways = this.ways;
    if (this.policy === 0) {
      // REPLACE_LRU (a literal, as in find). The least recently used way: the first with the
      // smallest stamp (stamps are unique), compared per way in way order as the C, and
      // without a branch, as gcc compiles the C's loop (a cmov): which way is older is data,
      // and a branch on it mispredicts about twice a 12-way scan. While the clock is below
      // 2^31 every stamp is too, so as int32s the difference of two stamps cannot overflow
      // and its sign (`d >> 31`: -1 when stamp[i] is older, else 0) picks both the way and
      // the oldest stamp so far, kept in a register (no reload of stamp[best] per way).
      const stamp = this.stamp;
      let best = base;
      if (this.clock < 2147483648) {
        let oldest = stamp[base] | 0;
        for (let i = base + 1; i < base + ways; i++) {
          const d = (stamp[i] | 0) - oldest;
          const m = d >> 31;
          oldest += d & m;
          best ^= (i ^ best) & m;
        }
        return best;
      }
      return this.victimLruWide(base);
    }
    if (this.policy === REPLACE_PLRU) {
      const bits = this.plru[set];
      let node = 1;
      let way = 0;
      for (let d = 0; d < this.depth; d++) {
        const dir = (bits >>> node) & 1;
        way = way * 2 + dir;
        node = node * 2 + dir;
      }
      return base + way;
    }
    return base + ((this.random!() >>> 0) % ways);
  }

  /** victimFull's LRU way once the clock has passed 2^31: the same choice on the doubles
   * (`+(a < b)` is 1 or 0, so `(i ^ best) & -lt` makes `best` i or leaves it). */
  private victimLruWide(base: number): number {
    const stamp = this.stamp;
    let best = base;
    for (let i = base + 1; i < base + this.ways; i++) {
      const lt = +(stamp[i] < stamp[best]);
      best ^= (i ^ best) & -lt;
    }
    return best;
  }

  /**
   * Inserts or refreshes the entry for (key, tag): an entry with the same key and the same
   * tag (or, for a global insert, any global entry with the key) is overwritten; otherwise
   * the first free way, or when the set is full the policy's victim, is used. Sets
   * `evict`. Returns the index.
   */
  insert(key: number, tag: number, global: boolean, value: number, perms: number): number {
    this.placeKey = key;
    return this.place(tag, global, value, perms);
  }

  /**
   * insert for the key in `placeKey`, for a hot caller: the key (a VPN, above 2^31 for a
   * high VA) goes through a double field written in place, where as an argument of a call
   * V8 does not inline it is boxed, a heap number per insert (and V8 made that box ahead
   * of Tlb.insert's test for an array of the page's size at all).
   */
  place(tag: number, global: boolean, value: number, perms: number): number {
    const key = this.placeKey;
    const lo = key | 0;
    const set = lo & this.setMask;
    const base = set * this.ways;
    const end = (base + this.ways) | 0;
    const keys = this.key;
    const los = this.keyLo;
    const flags = this.flags;
    const tags = this.tag;
    let idx = -1;
    let free = -1;
    let victim = -1;
    if (this.used === los.length) {
      // Every way valid (a warm TLB's usual case): there is no free way to look for, so the
      // scan reads only the low key bits, and a way's flags only where its key matches.
      if (this.policy === 0 && this.clock < 2147483648) {
        // LRU: the scan for a match also keeps the oldest way so far, victimFull's choice
        // (the first way with the smallest stamp, by the same branch-free int32 step), so
        // a full set is read once, not a second time by victimFull.
        const stamp = this.stamp;
        let best = base;
        let oldest = stamp[base] | 0;
        let i = base;
        // Four ways a pass while none of them has the low key bits (see findWide): their
        // four LRU steps, in way order; from a group with such a way on, way by way.
        for (; i + 3 < end; i += 4) {
          if (los[i] === lo || los[i + 1] === lo || los[i + 2] === lo || los[i + 3] === lo) break;
          let d = (stamp[i] | 0) - oldest;
          let m = d >> 31;
          oldest = (oldest + (d & m)) | 0;
          best ^= (i ^ best) & m;
          d = (stamp[i + 1] | 0) - oldest;
          m = d >> 31;
          oldest = (oldest + (d & m)) | 0;
          best ^= ((i + 1) ^ best) & m;
          d = (stamp[i + 2] | 0) - oldest;
          m = d >> 31;
          oldest = (oldest + (d & m)) | 0;
          best ^= ((i + 2) ^ best) & m;
          d = (stamp[i + 3] | 0) - oldest;
          m = d >> 31;
          oldest = (oldest + (d & m)) | 0;
          best ^= ((i + 3) ^ best) & m;
        }
        for (; i < end; i++) {
          if (
            los[i] === lo &&
            keys[i] === key &&
            (tags[i] === tag || (global && (flags[i] & 2) !== 0))
          ) {
            idx = i;
            break;
          }
          const d = (stamp[i] | 0) - oldest;
          const m = d >> 31;
          // `| 0`: oldest stays an int32 without an overflow check (it cannot overflow).
          oldest = (oldest + (d & m)) | 0;
          best ^= (i ^ best) & m;
        }
        victim = best;
      } else {
        for (let i = base; i < end; i++) {
          if (los[i] !== lo || keys[i] !== key) continue;
          if (tags[i] === tag || (global && (flags[i] & 2) !== 0)) {
            idx = i;
            break;
          }
        }
      }
    } else {
      for (let i = base; i < end; i++) {
        const f = flags[i];
        if (f === 0) {
          if (free < 0) free = i;
        } else if (
          los[i] === lo &&
          keys[i] === key &&
          (tags[i] === tag || (global && (f & 2) !== 0))
        ) {
          idx = i;
          break;
        }
      }
    }
    this.evict = 0;
    if (idx < 0) {
      if (free >= 0) {
        idx = free;
        this.used++;
      } else {
        idx = victim >= 0 ? victim : this.victimFull(base, set);
        this.evict = 1;
      }
    }
    keys[idx] = key;
    los[idx] = lo;
    tags[idx] = tag >>> 0;
    // Literals as in find: ASSOC_VALID | ASSOC_GLOBAL, ASSOC_VALID, REPLACE_LRU.
    flags[idx] = global ? 3 : 1;
    this.value[idx] = value;
    // `& 0xffff` is what the Uint16Array store does to an integer anyway; written out, V8
    // truncates the (Smi) argument as an int32 instead of converting it to a double and back.
    this.perms[idx] = perms & 0xffff;
    if (this.policy === 0) this.stamp[idx] = ++this.clock;
    else this.touch(idx);
    return idx;
  }

  /** insert when the caller knows no valid entry matches (key, tag): the first free way,
   * else the victim. */
  insertAbsent(key: number, tag: number, global: boolean, value: number, perms: number): number {
    const set = (key >>> 0) & this.setMask;
    const base = set * this.ways;
    let idx = -1;
    if (this.used !== this.keyLo.length) {
      const flags = this.flags;
      for (let i = base; i < base + this.ways; i++) {
        if (flags[i] === 0) {
          idx = i;
          break;
        }
      }
    }
    if (idx >= 0) {
      this.used++;
      this.evict = 0;
    } else {
      idx = this.victimFull(base, set);
      this.evict = 1;
    }
    this.key[idx] = key;
    this.keyLo[idx] = key | 0;
    this.tag[idx] = tag >>> 0;
    this.flags[idx] = global ? 3 : 1;
    this.value[idx] = value;
    this.perms[idx] = perms & 0xffff;
    if (this.policy === 0) this.stamp[idx] = ++this.clock;
    else this.touch(idx);
    return idx;
  }

  /**
   * Invalidates the entries for `key` whose tag is `tag` (and the global ones when
   * `withGlobal`). Returns how many.
   */
  invalidateKey(key: number, tag: number, withGlobal: boolean): number {
    const base = ((key >>> 0) & this.setMask) * this.ways;
    let n = 0;
    for (let i = base; i < base + this.ways; i++) {
      const f = this.flags[i];
      if (f === 0 || this.key[i] !== key) continue;
      if ((f & ASSOC_GLOBAL) !== 0 ? withGlobal : this.tag[i] === tag) {
        this.flags[i] = 0;
        n++;
      }
    }
    this.used -= n;
    return n;
  }

  /**
   * Invalidates entries by tag and globalness: `tag` < 0 means every tag; global entries go
   * only when `withGlobal`. Returns how many.
   */
  invalidate(tag: number, withGlobal: boolean): number {
    let n = 0;
    const flags = this.flags;
    for (let i = 0; i < flags.length; i++) {
      const f = flags[i];
      if (f === 0) continue;
      if ((f & ASSOC_GLOBAL) !== 0) {
        if (!withGlobal) continue;
      } else if (tag >= 0 && this.tag[i] !== tag) continue;
      flags[i] = 0;
      n++;
    }
    this.used -= n;
    return n;
  }
}
