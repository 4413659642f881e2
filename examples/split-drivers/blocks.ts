// The example's checksummed blocks: 4064 PRNG bytes, then their sha256 in the last 32 bytes.
import { createHash } from "node:crypto";
import { createPrng } from "@hyperlab/machine";

export const BLOCKS = 16;
export const BLOCK = 4096;
const SUM = 32;

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest();

/** Block `i` of a run seeded with `seed`. */
export function block(seed: number, i: number): Uint8Array {
  const b = new Uint8Array(BLOCK);
  const rng = createPrng(seed * 1000 + i);
  for (let j = 0; j < BLOCK - SUM; j++) b[j] = rng.nextU32() & 0xff;
  b.set(sha(b.subarray(0, BLOCK - SUM)), BLOCK - SUM);
  return b;
}

/** Whether a block read back still carries the sha256 of its data. */
export function checksumOk(b: Uint8Array): boolean {
  return Buffer.from(sha(b.subarray(0, BLOCK - SUM))).equals(Buffer.from(b.subarray(BLOCK - SUM)));
}

export const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2));
