/*
 * The frame table: per machine frame, its owner, reference count and type, in typed arrays.
 *
 * Invariants (Xen's, from xen/arch/x86/mm.c and asm/mm.h, in a 32-bit encoding):
 * - The owner is stored as its key, `~domid` (ownerKey): ownerKeys[mfn] === ~owner. A free
 *   frame's owner is FRAME_FREE (-1), so its key is 0 and a new, zero-filled Int32Array is a
 *   table of free frames: nothing is written at construction, and the host leaves the pages
 *   of frames never used unbacked. Readers get the owner itself from ownerOf (FRAME_FREE for
 *   a free frame); hot paths compare ownerKeys[mfn] with their domain's key, computed once.
 * - A frame is free exactly when ownerKeys[mfn] === 0; then countInfo and typeInfo are 0.
 * - Populate on demand (Xen's PoD, xen/arch/x86/mm/p2m-pod.c): podKeys[b], per aligned 2 MiB
 *   block b of machine frames (512 frames), is 0 or the key of the one domain the block is
 *   reserved for. A reserved block is out of the source's free pool and all its frames are
 *   free here (owner key 0, no per-frame write); populating it assigns its 512 frames to that
 *   domain, as assign does, and clears podKeys[b]. So a frame is in a PoD block only while
 *   free, and a block is wholly PoD or not at all. ownedBy and getPage, asked whether the
 *   domain owns a frame of its PoD block, populate the block first and answer yes (if the
 *   onPopulate hook agrees); ownerOf, isFree and ownerKeys never populate.
 * - An allocated frame holds one general reference for PGC_allocated; it returns to the
 *   allocator when its general count reaches zero, never before.
 * - A frame changes type only while its type count is zero.
 * - A page-table type (L1..L4) counts as validated only after its validator accepted every
 *   entry; when its type count drops to zero it is devalidated, releasing what its entries held.
 * - The type count never exceeds the general count's use: callers take a general reference
 *   (getPage) before a type reference (getPageType) and drop them in the other order.
 */
import { EINVAL } from "@hyperlab/abi";
import { HyperlabError } from "./errors";

/** Owner value of a frame in the free pool (ownerOf's answer; its stored key is 0). */
export const FRAME_FREE = -1;

/**
 * The stored form of an owner in FrameTable.ownerKeys: `~domid`. `~` rather than `domid + 1`:
 * it is its own inverse (one operation both ways, no direction to get wrong), it maps every
 * int32 to an int32 (no domid overflows the Int32Array), and FRAME_FREE's key is 0.
 */
export function ownerKey(domid: number): number {
  return ~domid;
}

// type_info: type in bits 31..29, flags below, count in the low 26 bits.
export const PGT_TYPE_SHIFT = 29;
export const PGT_none = 0;
export const PGT_l1_page_table = (1 << PGT_TYPE_SHIFT) >>> 0;
export const PGT_l2_page_table = (2 << PGT_TYPE_SHIFT) >>> 0;
export const PGT_l3_page_table = (3 << PGT_TYPE_SHIFT) >>> 0;
export const PGT_l4_page_table = (4 << PGT_TYPE_SHIFT) >>> 0;
export const PGT_seg_desc_page = (5 << PGT_TYPE_SHIFT) >>> 0;
export const PGT_shared_page = (6 << PGT_TYPE_SHIFT) >>> 0;
export const PGT_writable_page = (7 << PGT_TYPE_SHIFT) >>> 0;
export const PGT_type_mask = (7 << PGT_TYPE_SHIFT) >>> 0;
export const PGT_pinned = 1 << 28;
export const PGT_validated = 1 << 27;
export const PGT_count_mask = (1 << 26) - 1;

// count_info: flags in the top bits, count in the low 28 bits.
export const PGC_allocated = (1 << 31) >>> 0;
export const PGC_xen_heap = 1 << 30;
export const PGC_count_mask = (1 << 28) - 1;

/**
 * The same constants as a const enum, for the accessors below: the build writes each use as
 * a number literal. In the bundle (dist/) a module-level `const` is a `var`, which V8 loads
 * and checks at every use instead of folding it, here and in every package these accessors
 * inline into. A load-time check keeps the two equal.
 */
const enum F {
  FRAME_FREE = -1,
  PGT_TYPE_SHIFT = 29,
  PGT_type_mask = 0xe000_0000,
  PGT_pinned = 0x1000_0000,
  PGT_validated = 0x0800_0000,
  PGT_count_mask = 0x03ff_ffff,
  PGC_allocated = 0x8000_0000,
  PGC_count_mask = 0x0fff_ffff,
}
if (
  F.FRAME_FREE !== FRAME_FREE ||
  F.PGT_TYPE_SHIFT !== PGT_TYPE_SHIFT ||
  F.PGT_type_mask !== PGT_type_mask ||
  F.PGT_pinned !== PGT_pinned ||
  F.PGT_validated !== PGT_validated ||
  F.PGT_count_mask !== PGT_count_mask ||
  F.PGC_allocated !== PGC_allocated ||
  F.PGC_count_mask !== PGC_count_mask
) {
  throw new Error("frame-table.ts: the const enum F disagrees with the exported constants.");
}

/** The page-table level of a type (1..4), or 0 for other types. */
export function pgtLevel(type: number): number {
  const t = type >>> F.PGT_TYPE_SHIFT;
  return t >= 1 && t <= 4 ? t : 0;
}

export function pgtName(type: number): string {
  return (
    ["none", "l1", "l2", "l3", "l4", "seg_desc", "shared", "writable"][type >>> F.PGT_TYPE_SHIFT] ??
    "?"
  );
}

/** Validation hooks for a frame type, registered by the MMU backend that owns the type. */
export interface TypeHooks {
  /** Validates every entry of the frame as `type`, taking the references entries hold. 0 or -errno. */
  validate(mfn: number, type: number): number;
  /** Releases the references that the frame's entries hold as `type`. */
  devalidate(mfn: number, type: number): void;
}

/** Where frames come from: the machine's allocator, seen through the operations core needs. */
export interface FrameSource {
  /** 2^order contiguous frames aligned to their size, all below machine address `below` if given; -1 if none. */
  alloc(order: number, below?: number): number;
  /** Returns one frame to the pool. */
  free(mfn: number): void;
}

/** Called when a frame of a domain is freed, so the domain's accounting follows. */
export type FrameFreedHook = (domid: number, mfn: number) => void;

/**
 * Asked before a PoD block reserved for `domid` is populated (its first frame `mfn`, 512
 * frames): false refuses (a dying domain's blocks stay as they are); true lets it happen, and
 * the domain's accounting follows (tot_pages up 512, PoD entries down 512).
 */
export type PodPopulateHook = (domid: number, mfn: number, count: number) => boolean;

/** Frames in a populate-on-demand block: 2 MiB (Xen's SUPERPAGE_PAGES, PAGE_ORDER_2M). */
export const POD_BLOCK_FRAMES = 512;
/** Its order (log2 of POD_BLOCK_FRAMES). */
export const POD_BLOCK_ORDER = 9;

export class FrameTable {
  readonly nrFrames: number;
  /**
   * Each frame's owner key, `~domid` (ownerKey); 0 for a free frame. Hot paths compare it with
   * their domain's key; anything else reads ownerOf / isFree / ownedBy.
   */
  readonly ownerKeys: Int32Array;
  /** PGC_* flags and the general reference count. */
  readonly countInfo: Uint32Array;
  /** PGT_* type, flags and the type reference count. */
  readonly typeInfo: Uint32Array;
  private readonly hooks: (TypeHooks | undefined)[] = new Array(8).fill(undefined);
  /**
   * Per aligned 2 MiB block of frames: the key of the domain it is reserved for as a
   * populate-on-demand block, or 0 (4 bytes per 512 frames, zero-filled as ownerKeys).
   */
  readonly podKeys: Int32Array;
  /** Frames in PoD blocks now (the sum over domains of their PoD entries). */
  podFrames = 0;
  private readonly source: FrameSource;
  private readonly onFreed: FrameFreedHook;
  private readonly onPopulate: PodPopulateHook;

  constructor(
    nrFrames: number,
    source: FrameSource,
    onFreed: FrameFreedHook,
    onPopulate: PodPopulateHook = () => true,
  ) {
    this.nrFrames = nrFrames;
    // Zero-filled: every frame free (key 0), and no page of it written until a frame is used.
    this.ownerKeys = new Int32Array(nrFrames);
    this.podKeys = new Int32Array(Math.ceil(nrFrames / POD_BLOCK_FRAMES));
    this.countInfo = new Uint32Array(nrFrames);
    this.typeInfo = new Uint32Array(nrFrames);
    this.source = source;
    this.onFreed = onFreed;
    this.onPopulate = onPopulate;
  }

  /** The frame's owner, or FRAME_FREE (also for a number that is not a frame of this machine). */
  ownerOf(mfn: number): number {
    // ~undefined is -1: a number outside the table reads as free.
    return ~this.ownerKeys[mfn];
  }

  /** Whether the frame is free (in the allocator's pool). */
  isFree(mfn: number): boolean {
    return this.ownerKeys[mfn] === 0;
  }

  /**
   * Whether domain `domid` owns frame `mfn` (false for a number that is not a frame). A
   * frame of one of its PoD blocks is populated (the whole block) and then owned.
   */
  ownedBy(mfn: number, domid: number): boolean {
    // The compare first; the PoD test only when it misses, so owned frames pay nothing.
    return this.ownerKeys[mfn] === ~domid || this.populateFor(mfn, domid);
  }

  /**
   * The miss path of every "does `domid` own `mfn`" check: if `mfn` is a frame in one of
   * `domid`'s PoD blocks, populates that block (Xen's p2m_pod_demand_populate, a whole
   * superpage) and returns true; otherwise false, changing nothing. Any number is safe here.
   */
  populateFor(mfn: number, domid: number): boolean {
    if (this.podFrames === 0 || !this.validMfn(mfn)) return false;
    const b = Math.floor(mfn / POD_BLOCK_FRAMES);
    if (this.podKeys[b] !== ~domid || domid === F.FRAME_FREE) return false;
    return this.populateBlock(b);
  }

  /** Whether `mfn` is a frame in a PoD block reserved for `domid` (no populate). */
  isPod(mfn: number, domid: number): boolean {
    return (
      this.podFrames !== 0 &&
      this.validMfn(mfn) &&
      domid !== F.FRAME_FREE &&
      this.podKeys[Math.floor(mfn / POD_BLOCK_FRAMES)] === ~domid
    );
  }

  /** The domain a frame's PoD block is reserved for, or FRAME_FREE (not in a PoD block). */
  podOwnerOf(mfn: number): number {
    if (this.podFrames === 0 || !this.validMfn(mfn)) return F.FRAME_FREE;
    return ~this.podKeys[Math.floor(mfn / POD_BLOCK_FRAMES)];
  }

  /**
   * Takes 2^order frames (order POD_BLOCK_ORDER or more: whole 2 MiB blocks) from the source,
   * the run `allocate` would take, and reserves them for `domid` as PoD blocks: no frame is
   * assigned or written. Returns the first frame, or -1 when the source has no such run.
   */
  reserve(domid: number, order: number, below?: number): number {
    if (!(Number.isInteger(order) && order >= POD_BLOCK_ORDER) || domid === F.FRAME_FREE) {
      throw new HyperlabError(
        "FRAME_POD_ORDER",
        `Populate-on-demand reserves whole 2 MiB blocks: order ${order} is below ${POD_BLOCK_ORDER} (or the domid is FRAME_FREE). Reserve order 9 or more, or allocate.`,
      );
    }
    const mfn = this.source.alloc(order, below);
    if (mfn < 0) return -1;
    const n = 2 ** order;
    const first = mfn / POD_BLOCK_FRAMES;
    for (let b = first; b < first + n / POD_BLOCK_FRAMES; b++) this.podKeys[b] = ~domid;
    this.podFrames += n;
    return mfn;
  }

  /**
   * Populates every PoD block of `domid` that meets frames [base, base + count): for a
   * caller about to map the whole run (a 2 MiB or 1 GiB host page). False, changing nothing,
   * unless every frame of the run is the domain's or in one of its PoD blocks.
   */
  populateRun(base: number, count: number, domid: number): boolean {
    if (!(this.validMfn(base) && count >= 0 && base + count <= this.nrFrames)) return false;
    const keys = this.ownerKeys;
    const key = ~domid;
    let pod = false;
    for (let i = base; i < base + count; i++) {
      if (keys[i] === key) continue;
      if (!this.isPod(i, domid)) return false;
      pod = true;
    }
    if (!pod) return true;
    for (let i = base; i < base + count; i++) {
      if (keys[i] !== key && !this.populateFor(i, domid)) return false;
    }
    return true;
  }

  /**
   * Gives back every PoD block of `domid` to the source, frame by frame as put_page would
   * free them (Xen's p2m_pod_empty_cache at teardown). Returns the number of frames.
   */
  releasePod(domid: number): number {
    if (this.podFrames === 0) return 0;
    const pk = this.podKeys;
    const key = ~domid;
    let n = 0;
    for (let b = 0; b < pk.length; b++) {
      if (pk[b] !== key) continue;
      pk[b] = 0;
      const base = b * POD_BLOCK_FRAMES;
      for (let i = 0; i < POD_BLOCK_FRAMES; i++) this.source.free(base + i);
      n += POD_BLOCK_FRAMES;
    }
    this.podFrames -= n;
    return n;
  }

  private populateBlock(b: number): boolean {
    const domid = ~this.podKeys[b];
    const base = b * POD_BLOCK_FRAMES;
    if (!this.onPopulate(domid, base, POD_BLOCK_FRAMES)) return false;
    this.podKeys[b] = 0;
    this.podFrames -= POD_BLOCK_FRAMES;
    for (let i = 0; i < POD_BLOCK_FRAMES; i++) this.assign(base + i, domid);
    return true;
  }

  /**
   * Gives an owned frame to another owner as it is (Xen's page_set_owner; counts and type
   * stay). For frames Xen takes back (grant tables' shared frames go to DOMID_XEN).
   */
  setOwner(mfn: number, domid: number): void {
    if (this.ownerKeys[mfn] === 0) {
      throw new Error(`frame table: setting the owner of free frame ${mfn}`);
    }
    this.ownerKeys[mfn] = ~domid;
  }

  /** Whether `mfn` is a frame number of this machine (guest-supplied numbers need this first). */
  validMfn(mfn: number): boolean {
    return Number.isInteger(mfn) && mfn >= 0 && mfn < this.nrFrames;
  }

  setTypeHooks(type: number, hooks: TypeHooks): void {
    const t = type >>> F.PGT_TYPE_SHIFT;
    if (this.hooks[t] !== undefined) {
      throw new HyperlabError(
        "FRAME_TYPE_HOOKS_TAKEN",
        `Type hooks for page type ${pgtName(type)} are registered twice. Only one MMU backend may own page-table types; compose one.`,
      );
    }
    this.hooks[t] = hooks;
  }

  /** Takes frames for domain `domid`: owner set, PGC_allocated and one reference, type none. */
  assign(mfn: number, domid: number, flags = 0): void {
    if (this.ownerKeys[mfn] !== 0) {
      throw new Error(`frame table: assigning frame ${mfn} that is already owned`);
    }
    this.ownerKeys[mfn] = ~domid;
    this.countInfo[mfn] = (F.PGC_allocated | flags | 1) >>> 0;
    // typeInfo is 0 already (a free frame's is): not storing it keeps the host page of a
    // populated frame's type untouched until the frame gets a type (h10).
  }

  /** Allocates 2^order frames for `domid` (below machine address `below` if given); -1 when none are free. */
  allocate(domid: number, order: number, below?: number): number {
    const mfn = this.source.alloc(order, below);
    if (mfn < 0) return -1;
    const n = 2 ** order;
    for (let i = 0; i < n; i++) this.assign(mfn + i, domid);
    return mfn;
  }

  /**
   * Drops the allocation reference (Xen: test_and_clear PGC_allocated, then put_page).
   * Returns false if the frame was not allocated.
   */
  release(mfn: number): boolean {
    const c = this.countInfo[mfn];
    if ((c & F.PGC_allocated) === 0) return false;
    this.countInfo[mfn] = (c & ~F.PGC_allocated) >>> 0;
    this.putPage(mfn);
    return true;
  }

  /** Xen's get_page: a general reference on a frame `domid` owns. */
  getPage(mfn: number, domid: number): boolean {
    if (!this.validMfn(mfn)) return false;
    // The compare first; the PoD populate only when it misses.
    if (this.ownerKeys[mfn] !== ~domid && !this.populateFor(mfn, domid)) return false;
    const c = this.countInfo[mfn];
    const count = c & F.PGC_count_mask;
    // As page_get_owner_and_reference: count 0 is unallocated, and the top two counts are
    // refused (the last one is kept for get_page_light), so a count never wraps.
    if (count === 0 || count >= F.PGC_count_mask - 1) return false;
    this.countInfo[mfn] = c + 1;
    return true;
  }

  /** Xen's put_page: drops a general reference; the frame is freed when the count reaches zero. */
  putPage(mfn: number): void {
    const c = this.countInfo[mfn];
    if ((c & F.PGC_count_mask) === 0) {
      throw new Error(`frame table: put_page on frame ${mfn} with no references`);
    }
    const n = c - 1;
    this.countInfo[mfn] = n;
    if ((n & F.PGC_count_mask) === 0) this.free(mfn);
  }

  private free(mfn: number): void {
    const domid = ~this.ownerKeys[mfn];
    if ((this.typeInfo[mfn] & F.PGT_count_mask) !== 0) {
      throw new Error(`frame table: freeing frame ${mfn} that still has type references`);
    }
    this.ownerKeys[mfn] = 0;
    this.countInfo[mfn] = 0;
    this.typeInfo[mfn] = 0;
    this.source.free(mfn);
    this.onFreed(domid, mfn);
  }

  /**
   * Xen's get_page_type: a type reference. Returns 0, or -EINVAL when the frame has another
   * type in use or its type count would overflow (as _get_page_type), or the validator's errno.
   */
  getPageType(mfn: number, type: number): number {
    const x = this.typeInfo[mfn];
    const count = x & F.PGT_count_mask;
    if (count === F.PGT_count_mask) return -EINVAL;
    if (count !== 0) {
      if ((x & F.PGT_type_mask) >>> 0 !== type) return -EINVAL;
      // In use but not yet validated: only during this frame's own validation.
      if ((x & F.PGT_validated) === 0) return -EINVAL;
      this.typeInfo[mfn] = x + 1;
      return 0;
    }
    // Count zero: the type may change; page-table types validate on first use.
    const level = pgtLevel(type);
    if (level === 0) {
      this.typeInfo[mfn] = (type | F.PGT_validated | 1) >>> 0;
      return 0;
    }
    const hooks = this.hooks[type >>> F.PGT_TYPE_SHIFT];
    if (hooks === undefined) return -EINVAL;
    this.typeInfo[mfn] = (type | 1) >>> 0;
    const rc = hooks.validate(mfn, type);
    if (rc !== 0) {
      this.typeInfo[mfn] = 0;
      return rc;
    }
    this.typeInfo[mfn] = (this.typeInfo[mfn] | F.PGT_validated) >>> 0;
    return 0;
  }

  /** Xen's put_page_type: drops a type reference; a page table is devalidated at zero. */
  putPageType(mfn: number): void {
    const x = this.typeInfo[mfn];
    const count = x & F.PGT_count_mask;
    if (count === 0) {
      throw new Error(`frame table: put_page_type on frame ${mfn} with no type references`);
    }
    if (count === 1) {
      const type = (x & F.PGT_type_mask) >>> 0;
      if (pgtLevel(type) !== 0 && (x & F.PGT_validated) !== 0) {
        // Keep the count while entries are released, so nothing re-enters this frame's type.
        this.typeInfo[mfn] = (x & ~F.PGT_validated) >>> 0;
        this.hooks[type >>> F.PGT_TYPE_SHIFT]?.devalidate(mfn, type);
        this.typeInfo[mfn] = type;
        return;
      }
      this.typeInfo[mfn] = ((x & ~F.PGT_validated & ~F.PGT_pinned) - 1) >>> 0;
      return;
    }
    this.typeInfo[mfn] = x - 1;
  }

  /** Xen's get_page_and_type. Returns 0 or -errno (-EINVAL if the frame is not the domain's). */
  getPageAndType(mfn: number, domid: number, type: number): number {
    if (!this.getPage(mfn, domid)) return -EINVAL;
    const rc = this.getPageType(mfn, type);
    if (rc !== 0) this.putPage(mfn);
    return rc;
  }

  putPageAndType(mfn: number): void {
    this.putPageType(mfn);
    this.putPage(mfn);
  }

  /** The frame's type (PGT_* value without flags and count). */
  typeOf(mfn: number): number {
    return (this.typeInfo[mfn] & F.PGT_type_mask) >>> 0;
  }

  typeCount(mfn: number): number {
    return this.typeInfo[mfn] & F.PGT_count_mask;
  }

  refCount(mfn: number): number {
    return this.countInfo[mfn] & F.PGC_count_mask;
  }

  isPinned(mfn: number): boolean {
    return (this.typeInfo[mfn] & F.PGT_pinned) !== 0;
  }

  isValidated(mfn: number): boolean {
    return (this.typeInfo[mfn] & F.PGT_validated) !== 0;
  }

  /** Sets or clears PGT_pinned (the pin's type and general references are the caller's). */
  setPinned(mfn: number, pinned: boolean): void {
    const x = this.typeInfo[mfn];
    this.typeInfo[mfn] = (pinned ? x | F.PGT_pinned : x & ~F.PGT_pinned) >>> 0;
  }

  /** Frames owned by `domid`, in ascending order (a scan; for teardown and checkers). */
  framesOf(domid: number): number[] {
    const out: number[] = [];
    const keys = this.ownerKeys;
    const key = ~domid;
    for (let mfn = 0; mfn < keys.length; mfn++) if (keys[mfn] === key) out.push(mfn);
    return out;
  }
}
