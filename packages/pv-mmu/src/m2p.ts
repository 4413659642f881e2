/*
 * The machine-to-phys table (M2P): for each machine frame, the guest pfn its owner gave it.
 *
 * Invariants: `entries` (two 32-bit halves per frame, lo then hi) is the truth; every write
 * goes through `set`, which also stores the value in the Xen-owned RAM frames that guests
 * read through slot 256 of their L4 (RO_MPT_VIRT_START), laid out as Xen lays it out: an
 * array of 64-bit entries indexed by mfn. Those frames are mapped read-only to guests by
 * Xen-owned L3/L2/L1 tables built once at boot; no guest ever holds a reference on them.
 */

import { _PAGE_ACCESSED, _PAGE_NX_HI, _PAGE_PRESENT, _PAGE_USER, DOMID_XEN } from "@hyperlab/abi";
import type { FrameTable } from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import { pvMmuError } from "./errors";

const TWO_20 = 0x10_0000;
const TWO_32 = 0x1_0000_0000;
const INVALID = 0xffff_ffff;

export class M2p {
  /** Two words per machine frame: lo, hi. All ones = INVALID_M2P_ENTRY. */
  readonly entries: Uint32Array;
  /** The RAM frames that hold the guest-visible copy, in order. */
  readonly dataFrames: Int32Array;
  /** The L3 that slot 256 of a guest L4 points at. */
  readonly l3: number;
  private readonly ram: Ram;

  constructor(frames: FrameTable, ram: Ram) {
    this.ram = ram;
    const n = frames.nrFrames;
    this.entries = new Uint32Array(n * 2).fill(INVALID);
    const nData = Math.ceil((n * 8) / 4096);
    const nL1 = Math.ceil(nData / 512);
    const nL2 = Math.ceil(nL1 / 512);
    const take = (): number => {
      const mfn = frames.allocate(DOMID_XEN, 0);
      if (mfn < 0) {
        throw pvMmuError(
          "PV_MMU_NO_MEMORY_FOR_M2P",
          `The machine has no free frame left for Xen's M2P table (${nData} data frames needed). Give the machine more RAM.`,
        );
      }
      ram.clearFrame(mfn);
      return mfn;
    };
    this.dataFrames = new Int32Array(nData);
    const allOnes = new Uint32Array(1024).fill(INVALID);
    for (let i = 0; i < nData; i++) {
      const mfn = take();
      this.dataFrames[i] = mfn;
      ram.frameWords(mfn, true).set(allOnes);
    }
    // Read-only, user-readable, non-executable: as Xen maps RO_MPT for PV guests.
    const ro = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
    const put = (table: number, i: number, target: number): void => {
      const w = ram.frameWords(table, true);
      const b = i * 2;
      w[b] = ((target % TWO_20) * 4096 + ro) >>> 0;
      w[b + 1] = (Math.floor(target / TWO_20) | _PAGE_NX_HI) >>> 0;
    };
    this.l3 = take();
    for (let k = 0; k < nL2; k++) {
      const l2 = take();
      put(this.l3, k, l2);
      for (let j = 0; j < 512 && k * 512 + j < nL1; j++) {
        const l1 = take();
        put(l2, j, l1);
        const first = (k * 512 + j) * 512;
        for (let i = 0; i < 512 && first + i < nData; i++) put(l1, i, this.dataFrames[first + i]);
      }
    }
  }

  /** Sets M2P[mfn] to the 64-bit value (lo, hi). */
  set(mfn: number, lo: number, hi: number): void {
    this.entries[mfn * 2] = lo;
    this.entries[mfn * 2 + 1] = hi;
    const byte = mfn * 8;
    const frame = this.dataFrames[(byte / 4096) | 0];
    const w = this.ram.frameWords(frame, true);
    const b = (byte % 4096) >>> 2;
    w[b] = lo;
    w[b + 1] = hi;
  }

  /** Sets M2P[mfn] = pfn (a number below 2^53). */
  setPfn(mfn: number, pfn: number): void {
    this.set(mfn, (pfn % TWO_32) >>> 0, Math.floor(pfn / TWO_32) >>> 0);
  }

  /** M2P[mfn] as a number, or -1 for INVALID_M2P_ENTRY (and any value of 2^53 or more). */
  get(mfn: number): number {
    const lo = this.entries[mfn * 2];
    const hi = this.entries[mfn * 2 + 1];
    if (hi >= 0x20_0000) return -1;
    return hi * TWO_32 + lo;
  }
}
