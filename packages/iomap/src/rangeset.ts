/*
 * A rangeset of frame numbers, as Xen's xen/common/rangeset.c keeps one: inclusive ranges
 * [s, e], kept sorted, disjoint and never adjacent (an add merges with its neighbours, a
 * remove splits the range it cuts), in two parallel number arrays. Queries never change it and
 * never allocate; `ranges()` hands out a cached snapshot rebuilt only after a change.
 */
import type { FrameRange } from "@hyperlab/core";

export class Rangeset {
  private starts: number[] = [];
  private ends: number[] = [];
  private snapshot: readonly FrameRange[] | null = null;

  get isEmpty(): boolean {
    return this.starts.length === 0;
  }

  /** Index of the first range whose end is >= x (binary search). */
  private firstEndingAtOrAfter(x: number): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ends[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** rangeset_add_range: [s, e] joins the set, merging with overlapping or adjacent ranges. */
  add(s: number, e: number): void {
    const i = this.firstEndingAtOrAfter(s - 1);
    let ns = s;
    let ne = e;
    let j = i;
    while (j < this.starts.length && this.starts[j] <= e + 1) {
      ns = Math.min(ns, this.starts[j]);
      ne = Math.max(ne, this.ends[j]);
      j++;
    }
    this.starts.splice(i, j - i, ns);
    this.ends.splice(i, j - i, ne);
    this.snapshot = null;
  }

  /** rangeset_remove_range: [s, e] leaves the set, splitting a range it cuts through. */
  remove(s: number, e: number): void {
    const i = this.firstEndingAtOrAfter(s);
    const keepS: number[] = [];
    const keepE: number[] = [];
    let j = i;
    while (j < this.starts.length && this.starts[j] <= e) {
      if (this.starts[j] < s) {
        keepS.push(this.starts[j]);
        keepE.push(s - 1);
      }
      if (this.ends[j] > e) {
        keepS.push(e + 1);
        keepE.push(this.ends[j]);
      }
      j++;
    }
    if (j === i) return;
    this.starts.splice(i, j - i, ...keepS);
    this.ends.splice(i, j - i, ...keepE);
    this.snapshot = null;
  }

  /** rangeset_contains_range: every number of [s, e] is in the set. */
  contains(s: number, e: number): boolean {
    const i = this.firstEndingAtOrAfter(s);
    return i < this.starts.length && this.starts[i] <= s && this.ends[i] >= e;
  }

  /** rangeset_overlaps_range: some number of [s, e] is in the set. */
  overlaps(s: number, e: number): boolean {
    const i = this.firstEndingAtOrAfter(s);
    return i < this.starts.length && this.starts[i] <= e;
  }

  /** The ranges, in order. */
  ranges(): readonly FrameRange[] {
    if (this.snapshot === null) {
      this.snapshot = Object.freeze(
        this.starts.map((start, k) => Object.freeze({ start, end: this.ends[k] })),
      );
    }
    return this.snapshot;
  }

  clear(): void {
    this.starts = [];
    this.ends = [];
    this.snapshot = null;
  }
}
