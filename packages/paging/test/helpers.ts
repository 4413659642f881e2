import type { Ram } from "@hyperlab/machine";
import { expect } from "vitest";
import { PagingError } from "../src/index";

/** fast-check settings: fixed seed; HYPERLAB_LONG raises the run count. */
export function fcParams(runs = 100): { seed: number; numRuns: number } {
  return { seed: 0x5eed, numRuns: process.env.HYPERLAB_LONG ? runs * 20 : runs };
}

/** Runs `fn`, expects a PagingError with `code`, and returns it. */
export function expectPagingError(fn: () => unknown, code: string): PagingError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(PagingError);
  const err = caught as PagingError;
  expect(err.code).toBe(code);
  expect(err.name).toBe("PagingError");
  expect(err.message.length).toBeGreaterThan(20);
  return err;
}

/**
 * A small page-table builder for tests, written with BigInt entries so that it shares no
 * code with the walker: tables are taken from consecutive frames starting at `firstFrame`.
 */
export class TableBuilder {
  readonly root: number;
  private next: number;

  constructor(
    readonly ram: Ram,
    firstFrame: number,
    readonly levels: 4 | 5 = 4,
  ) {
    this.root = firstFrame;
    this.next = firstFrame + 1;
  }

  /** Frames used so far for tables. */
  get framesUsed(): number {
    return this.next - this.root;
  }

  /** Machine address of the entry for `va` at `level` (creating tables above it with `upper` flags). */
  entryAddr(va: number, level: number, upper = 0x7n): number {
    let table = this.root;
    for (let l = this.levels; l > level; l--) {
      const ma = table * 4096 + idx(va, l) * 8;
      let e = this.ram.readU64(ma);
      if ((e & 1n) === 0n) {
        const t = this.next++;
        e = (BigInt(t) << 12n) | upper;
        this.ram.writeU64(ma, e);
      }
      table = Number((e >> 12n) & 0xff_ffff_ffffn);
    }
    return table * 4096 + idx(va, level) * 8;
  }

  /** Sets the entry for `va` at `level` to `value`, creating tables above it. */
  set(va: number, level: number, value: bigint, upper = 0x7n): number {
    const ma = this.entryAddr(va, level, upper);
    this.ram.writeU64(ma, value);
    return ma;
  }

  /** Maps a 4 KiB page (P|RW|US plus `extra`). */
  map4k(va: number, mfn: number, flags = 0x7n): number {
    return this.set(va, 1, (BigInt(mfn) << 12n) | flags);
  }
}

function idx(va: number, level: number): number {
  return Number((BigInt(va) >> BigInt(12 + 9 * (level - 1))) & 511n);
}
