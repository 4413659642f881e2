/*
 * One domain's grant table: its shared (and, in version 2, status) frames, the active
 * entries that shadow the grants other domains use, and the maptrack of the grants it maps.
 *
 * Invariants (Xen's, xen/common/grant_table.c):
 * - Grant entries are bytes in the granter's shared frames, laid out as grant_entry_v1 (8
 *   bytes) or grant_entry_v2 (16 bytes); the guest writes them, Xen only sets and clears
 *   GTF_reading / GTF_writing (v1: in the entry's flags; v2: in the status frames).
 * - An active entry's `pin` counts its mappings and in-flight copies in four 8-bit fields
 *   (host writable, host read-only, device writable, device read-only); while pin is nonzero
 *   `actDomid` and `actMfn` name the grantee and the frame, and GTF_reading is set, and
 *   GTF_writing is set while a writable field is nonzero.
 * - A maptrack handle is in use exactly when its flags hold GNTMAP_host_map or
 *   GNTMAP_device_map; free handles form one FIFO list that always keeps one entry.
 * - Shared and status frames are Xen heap pages shared with the guest: owned by it, one
 *   allocation reference, a permanent writable type reference, not counted in tot_pages.
 */
import { grant_entry_v1, grant_entry_v2 } from "@hyperlab/abi";
import type { Ram } from "@hyperlab/machine";

export const GNTPIN_hstw_inc = 1;
export const GNTPIN_hstr_inc = 1 << 8;
export const GNTPIN_devw_inc = 1 << 16;
export const GNTPIN_devr_inc = (1 << 24) >>> 0;
export const GNTPIN_hstw_mask = 0xff;
export const GNTPIN_hstr_mask = 0xff << 8;
export const GNTPIN_devw_mask = 0xff << 16;
export const GNTPIN_devr_mask = (0xff << 24) >>> 0;
/** The top bit of each counter an increment touches: set means one more could overflow it. */
export function pinOverflowMask(incr: number): number {
  return (incr << 7) >>> 0;
}

/** Xen x86's INITIAL_NR_GRANT_FRAMES. */
export const INITIAL_NR_GRANT_FRAMES = 1;
/** grant_mapping entries per maptrack frame (4096 / 16). */
export const MAPTRACK_PER_PAGE = 256;
export const INVALID_MAPTRACK_HANDLE = 0xffff_ffff;

const V1_SIZE = grant_entry_v1.sizeof;
const V2_SIZE = grant_entry_v2.sizeof;
const V1_PER_PAGE = 4096 / V1_SIZE;
const V2_PER_PAGE = 4096 / V2_SIZE;
const STATUS_PER_PAGE = 2048;
const F_FLAGS = grant_entry_v1.fields.flags.offset;
const F_DOMID = grant_entry_v1.fields.domid.offset;
const F_FRAME_V1 = grant_entry_v1.fields.frame.offset;
const F_FRAME_V2 = grant_entry_v2.fields["full_page.frame"].offset;
const F_PAGE_OFF = grant_entry_v2.fields["sub_page.page_off"].offset;
const F_LENGTH = grant_entry_v2.fields["sub_page.length"].offset;
const TWO_32 = 0x1_0000_0000;

/** Status frames a version 2 table of `frames` shared frames needs (grant_to_status_frames). */
export function statusFramesFor(frames: number): number {
  return Math.ceil((frames * V2_PER_PAGE) / STATUS_PER_PAGE);
}

export class GrantTable {
  readonly domid: number;
  readonly maxFrames: number;
  readonly maxMaptrackFrames: number;
  /** 1 or 2. */
  version = 1;
  /** Machine frames of the shared entries, in order. */
  readonly shared: number[] = [];
  /** Machine frames of the v2 status words, in order. */
  readonly status: number[] = [];
  /** Frames given back at domain destruction: no entry is read or written after this. */
  released = false;

  // Active entries, indexed by grant reference (sized for v1's count, as Xen sizes them).
  readonly pin: Uint32Array;
  readonly actDomid: Uint16Array;
  readonly actMfn: Float64Array;
  readonly actStart: Uint16Array;
  readonly actLength: Uint16Array;
  readonly actSubPage: Uint8Array;

  // Maptrack: this domain's mappings of other domains' grants (Xen's struct grant_mapping).
  mtRef = new Uint32Array(0);
  mtFlags = new Uint16Array(0);
  mtDomid = new Uint16Array(0);
  /** The granter's table of each handle (kept even after that domain is gone). */
  mtTable: (GrantTable | undefined)[] = [];
  private mtNext = new Int32Array(0);
  /** Handles that exist (Xen's maptrack_limit). */
  mtLimit = 0;
  private mtHead = -1;
  private mtTail = -1;
  /** Handles in use. */
  mtInUse = 0;

  private readonly ram: Ram;

  constructor(domid: number, ram: Ram, maxFrames: number, maxMaptrackFrames: number) {
    this.domid = domid;
    this.ram = ram;
    this.maxFrames = maxFrames;
    this.maxMaptrackFrames = maxMaptrackFrames;
    const n = maxFrames * V1_PER_PAGE;
    this.pin = new Uint32Array(n);
    this.actDomid = new Uint16Array(n);
    this.actMfn = new Float64Array(n);
    this.actStart = new Uint16Array(n);
    this.actLength = new Uint16Array(n);
    this.actSubPage = new Uint8Array(n);
  }

  /** Grant entries the table holds now (nr_grant_entries). */
  get nrEntries(): number {
    return this.shared.length * (this.version === 1 ? V1_PER_PAGE : V2_PER_PAGE);
  }

  // ---- entries in guest memory ----

  /** Machine address of entry `ref`'s header (flags, domid). */
  entryAddr(ref: number): number {
    if (this.version === 1)
      return this.shared[(ref / V1_PER_PAGE) | 0] * 4096 + (ref % V1_PER_PAGE) * V1_SIZE;
    return this.shared[(ref / V2_PER_PAGE) | 0] * 4096 + (ref % V2_PER_PAGE) * V2_SIZE;
  }

  /** Machine address of the u16 that holds GTF_reading / GTF_writing for `ref`. */
  statusAddr(ref: number): number {
    if (this.version === 1) return this.entryAddr(ref) + F_FLAGS;
    return this.status[(ref / STATUS_PER_PAGE) | 0] * 4096 + (ref % STATUS_PER_PAGE) * 2;
  }

  flags(ref: number): number {
    return this.ram.read16(this.entryAddr(ref) + F_FLAGS);
  }

  grantee(ref: number): number {
    return this.ram.read16(this.entryAddr(ref) + F_DOMID);
  }

  /** The granted frame: v1's u32 frame, v2's u64 full_page.frame (or sub_page.frame). */
  frame(ref: number): number {
    const a = this.entryAddr(ref);
    if (this.version === 1) return this.ram.read32(a + F_FRAME_V1);
    return this.ram.read32(a + F_FRAME_V2 + 4) * TWO_32 + this.ram.read32(a + F_FRAME_V2);
  }

  subPageOffset(ref: number): number {
    return this.ram.read16(this.entryAddr(ref) + F_PAGE_OFF);
  }

  subPageLength(ref: number): number {
    return this.ram.read16(this.entryAddr(ref) + F_LENGTH);
  }

  /** The status bits (v1: the entry's flags; v2: the status word). */
  statusBits(ref: number): number {
    return this.ram.read16(this.statusAddr(ref));
  }

  setStatusBits(ref: number, bits: number): void {
    const a = this.statusAddr(ref);
    this.ram.write16(a, this.ram.read16(a) | bits);
  }

  clearStatusBits(ref: number, bits: number): void {
    if (this.released) return;
    const a = this.statusAddr(ref);
    this.ram.write16(a, this.ram.read16(a) & ~bits);
  }

  // ---- maptrack ----

  /** get_maptrack_handle: a free handle, or INVALID_MAPTRACK_HANDLE (GNTST_no_space). */
  getMaptrackHandle(): number {
    const head = this.mtHead;
    if (head !== -1 && this.mtNext[head] !== -1) {
      this.mtHead = this.mtNext[head];
      this.mtInUse++;
      return head;
    }
    if (this.mtLimit / MAPTRACK_PER_PAGE >= this.maxMaptrackFrames) return INVALID_MAPTRACK_HANDLE;
    const first = this.mtLimit;
    this.growMaptrack(first + MAPTRACK_PER_PAGE);
    // The first new handle is the answer; the rest go to the head of the free list.
    for (let i = 1; i < MAPTRACK_PER_PAGE - 1; i++) this.mtNext[first + i] = first + i + 1;
    const last = first + MAPTRACK_PER_PAGE - 1;
    this.mtNext[last] = this.mtHead;
    if (this.mtTail === -1) this.mtTail = last;
    this.mtHead = first + 1;
    this.mtInUse++;
    return first;
  }

  /** put_maptrack_handle: back to the tail of the free list. */
  putMaptrackHandle(h: number): void {
    this.mtFlags[h] = 0;
    this.mtTable[h] = undefined;
    this.mtNext[h] = -1;
    if (this.mtTail === -1) this.mtHead = h;
    else this.mtNext[this.mtTail] = h;
    this.mtTail = h;
    this.mtInUse--;
  }

  private growMaptrack(n: number): void {
    const grow = <T extends Uint32Array | Uint16Array | Int32Array>(
      a: T,
      make: (n: number) => T,
    ) => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.mtRef = grow(this.mtRef, (k) => new Uint32Array(k));
    this.mtFlags = grow(this.mtFlags, (k) => new Uint16Array(k));
    this.mtDomid = grow(this.mtDomid, (k) => new Uint16Array(k));
    this.mtNext = grow(this.mtNext, (k) => new Int32Array(k));
    this.mtTable.length = n;
    this.mtLimit = n;
  }
}
