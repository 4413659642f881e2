/*
 * The machine's seeded PRNG: xoshiro128** (Blackman and Vigna) on four 32-bit words,
 * seeded through a splitmix32-style mixer. Everything random in Hyperlab draws from one of
 * these, so the same seed gives the same run, byte for byte.
 *
 * Invariants: the state is never all zero. A stream depends only on its seed (or on its
 * parent's seed and its fork label), never on the host or on how much other streams drew.
 */

import { MachineError } from "./errors";

const GOLDEN = 0x9e3779b9;
const TWO_32 = 0x1_0000_0000;
const TWO_53 = 2 ** 53;

/** A 32-bit finaliser (the splitmix32 / murmur3 fmix32 mixer). */
function mix32(x: number): number {
  let z = x | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the string's UTF-16 code units, then mixed. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  }
  return mix32(h ^ label.length);
}

/** Four key words from a 64-bit seed (lo, hi) by a splitmix32 sequence. */
function keyFrom(lo: number, hi: number): Uint32Array {
  const key = new Uint32Array(4);
  let x = (lo ^ mix32(hi + GOLDEN)) >>> 0;
  for (let i = 0; i < 4; i++) {
    x = (x + GOLDEN) >>> 0;
    key[i] = mix32(x);
  }
  return key;
}

export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** What forks derive from: the words this stream was seeded with. */
  private readonly key: Uint32Array;

  private constructor(key: Uint32Array) {
    this.key = key;
    this.s0 = key[0];
    this.s1 = key[1];
    this.s2 = key[2];
    this.s3 = key[3];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A generator seeded from any safe integer (negative seeds are fine). */
  static fromSeed(seed: number): Prng {
    if (!Number.isSafeInteger(seed)) {
      throw new MachineError(
        "PRNG_BAD_SEED",
        `a PRNG seed must be a safe integer, got ${seed}; pass e.g. seed: 42`,
      );
    }
    return new Prng(keyFrom(seed >>> 0, Math.floor(seed / TWO_32) >>> 0));
  }

  /**
   * A generator with this exact xoshiro128** state (four 32-bit words, not all zero), for
   * restoring a saved run (see state()) and for checking against the reference code.
   */
  static fromState(state: readonly number[]): Prng {
    if (
      state.length !== 4 ||
      !state.every((w) => w >>> 0 === w) ||
      (state[0] | state[1] | state[2] | state[3]) === 0
    ) {
      throw new MachineError(
        "PRNG_BAD_SEED",
        "a PRNG state is four unsigned 32-bit words, not all zero; pass what state() returned",
      );
    }
    return new Prng(Uint32Array.from(state));
  }

  /** The current xoshiro128** state words (forks of a restored generator follow that state). */
  state(): number[] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  /** Next unsigned 32-bit value. */
  nextU32(): number {
    const s1 = this.s1;
    const r = Math.imul(s1, 5);
    const result = Math.imul((r << 7) | (r >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 = s1 ^ this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** Uniform in [0, 1), in steps of 2^-32. */
  nextFloat(): number {
    return this.nextU32() / TWO_32;
  }

  /** Uniform integer in [0, n) without modulo bias; n a whole number from 1 to 2^53. */
  nextInt(n: number): number {
    if (!(Number.isInteger(n) && n >= 1 && n <= TWO_53)) {
      throw new MachineError(
        "PRNG_BAD_BOUND",
        `nextInt bound ${n} must be a whole number from 1 to 2^53`,
      );
    }
    if (n <= TWO_32) {
      // Accept only the largest multiple of n below 2^32, then reduce.
      const limit = TWO_32 - (TWO_32 % n);
      let x = this.nextU32();
      while (x >= limit) x = this.nextU32();
      return x % n;
    }
    const limit = TWO_53 - (TWO_53 % n);
    let x = (this.nextU32() >>> 11) * TWO_32 + this.nextU32();
    while (x >= limit) x = (this.nextU32() >>> 11) * TWO_32 + this.nextU32();
    return x % n;
  }

  /**
   * An independent stream named `label`, derived from this stream's seed and the label only:
   * it does not consume from this stream, and forking the same label again gives the same
   * stream again (a named stream, e.g. fork("vcpu3") or fork("disk-latency")).
   */
  fork(label: string): Prng {
    if (typeof label !== "string") {
      throw new MachineError("PRNG_BAD_SEED", 'fork needs a string label, e.g. fork("net")');
    }
    const h = hashLabel(label);
    const key = new Uint32Array(4);
    for (let i = 0; i < 4; i++) {
      key[i] = mix32(this.key[i] ^ mix32(h + Math.imul(i + 1, GOLDEN)));
    }
    return new Prng(key);
  }
}

/** A PRNG seeded from `seed`. */
export function createPrng(seed: number): Prng {
  return Prng.fromSeed(seed);
}
