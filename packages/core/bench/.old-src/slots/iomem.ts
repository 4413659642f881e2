/*
 * The `iomem` slot (provided by @hyperlab/iomap): Xen's I/O memory
 * permission, d->iomem_caps, a rangeset of machine frames per domain (xen/common/rangeset.c,
 * XEN_DOMCTL_iomem_permission), and the machine's map of what each frame is: RAM, MMIO, or
 * MMIO that must stay read-only (Xen's mmio_ro_ranges). pv-mmu asks it from
 * get_page_from_l1e when a guest PTE names a frame that is not RAM, instead of answering
 * -EPERM for every such frame.
 *
 * Contract (what every provider keeps):
 * - `iomemAccessPermitted(d, s, e)` is true only if every frame of [s, e] is in d's
 *   iomem_caps; permits and denies are range operations that merge and split as a rangeset
 *   does, and a query never changes anything.
 * - RAM is never I/O: `isRam` frames are never reported as MMIO, and a PTE naming RAM is
 *   validated as RAM whatever its software bits say; the answer for a frame is fixed by the
 *   machine, not by any domain.
 * - `mmioAccess` answers what a PTE to a non-RAM frame may have: -EPERM without permission,
 *   read-only for frames in an mmio_ro range, and always uncached.
 * - Every guest-chosen frame number is checked against the machine's limits; nothing throws on
 *   one. Permission is granted only by the toolstack or a privileged domain on another's
 *   behalf, and a dying domain's iomem_caps are dropped with it.
 */
import type { Domain } from "../domain";

/** What a PTE to an I/O frame may hold, from `mmioAccess`. */
export const IOMEM_ACCESS_RW = 2;
export const IOMEM_ACCESS_RO = 1;

/** An inclusive range of machine frames. */
export interface FrameRange {
  start: number;
  end: number;
}

/** The `iomem` slot: per-domain I/O memory permission and the machine's RAM/MMIO map. */
export interface IomemService {
  /** Xen's iomem_permit_access (XEN_DOMCTL_iomem_permission, allow) for frames [s, e]. */
  iomemPermitAccess(d: Domain, s: number, e: number): void;
  /** Xen's iomem_deny_access for frames [s, e]. */
  iomemDenyAccess(d: Domain, s: number, e: number): void;
  /** Xen's iomem_access_permitted: every frame of [s, e] is in d's iomem_caps. */
  iomemAccessPermitted(d: Domain, s: number, e: number): boolean;
  /** The ranges in d's iomem_caps, in order (for tools and checkers). */
  iomemRanges(d: Domain): readonly FrameRange[];
  /** Whether `mfn` is RAM (a frame the frame table owns), as Xen's mfn_valid + page_is_ram_type. */
  isRam(mfn: number): boolean;
  /** Whether `mfn` is device memory (a BAR or another MMIO range of the machine). */
  isMmio(mfn: number): boolean;
  /** Whether `mfn` lies in a read-only MMIO range (Xen's mmio_ro_ranges). */
  isMmioReadOnly(mfn: number): boolean;
  /**
   * What a PTE of `d` naming the non-RAM frame `mfn` may do: IOMEM_ACCESS_RW, IOMEM_ACCESS_RO,
   * or -EPERM without permission (and -EINVAL for a frame that is RAM or beyond the machine).
   */
  mmioAccess(d: Domain, mfn: number): number;
}
