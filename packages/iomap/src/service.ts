/*
 * Xen's I/O memory permission (d->iomem_caps, xen/common/rangeset.c and iocap.h) and the
 * machine's map of what a frame is: RAM (a frame the frame table owns), MMIO (a frame some
 * device of the machine's MMIO map answers for, or any other frame above RAM inside the
 * physical address width), and read-only MMIO (Xen's mmio_ro_ranges).
 *
 * Invariants:
 * - A frame below the frame table's size is RAM and is never reported as MMIO nor accepted by
 *   mmioAccess, whatever a domain's iomem_caps say; permissions are about frames, not RAM.
 * - A domain's iomem_caps change only through iomemPermitAccess / iomemDenyAccess /
 *   iomemPermission (the toolstack or a privileged domain acting on another), and are dropped
 *   when the domain is destroyed; queries never change anything and never allocate.
 * - Nothing here throws on a guest-chosen frame: mmioAccess answers -EINVAL for a frame that
 *   is not a whole number below the machine's limit or is RAM, -EPERM without permission.
 */
import { EINVAL, EPERM, ESRCH } from "@hyperlab/abi";
import {
  type Domain,
  type FrameRange,
  HyperlabError,
  type Hypervisor,
  IOMEM_ACCESS_RO,
  IOMEM_ACCESS_RW,
  type IomemService,
} from "@hyperlab/core";
import { MMIO_ADDRESS_LIMIT } from "@hyperlab/machine";
import type { IomapErrorCode } from "./errors";
import { Rangeset } from "./rangeset";

/** One past the highest machine frame (52 physical address bits, as x86-64). */
export const IOMEM_FRAME_LIMIT = MMIO_ADDRESS_LIMIT / 4096;

export interface IomapOptions {
  /**
   * Frame ranges that stay read-only for every domain (Xen's mmio_ro_ranges: MSI-X tables,
   * an HPET Xen uses, ...). A writable PTE to one of them is installed without write access.
   */
  readOnly?: readonly FrameRange[];
  /**
   * Whether the hardware domain gets every non-RAM frame at creation, as Xen's dom0 does
   * (default true). Set false to grant dom0's I/O memory explicitly.
   */
  hardwareDomainGetsAll?: boolean;
}

function isFrame(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0 && x < IOMEM_FRAME_LIMIT;
}

export class Iomap implements IomemService {
  readonly hv: Hypervisor;
  private readonly caps = new Map<number, Rangeset>();
  private readonly ro = new Rangeset();
  private readonly giveAll: boolean;
  /** Counters for stats: permission changes and refused mmioAccess queries. */
  readonly counts = { permits: 0, denies: 0, refused: 0 };

  constructor(hv: Hypervisor, options: IomapOptions = {}) {
    this.hv = hv;
    this.giveAll = options.hardwareDomainGetsAll ?? true;
    for (const r of options.readOnly ?? []) {
      if (!(isFrame(r?.start) && isFrame(r?.end) && r.start <= r.end)) {
        throw new HyperlabError<IomapErrorCode>(
          "IOMAP_BAD_OPTION",
          `iomap option readOnly holds ${JSON.stringify(r)}, which is not { start, end } of machine frames with start <= end below 2^40; fix that range`,
        );
      }
      this.ro.add(r.start, r.end);
    }
  }

  /** The first frame that is not RAM (the frame table's size). */
  get ramFrames(): number {
    return this.hv.frames.nrFrames;
  }

  domainCreated(d: Domain): void {
    const set = new Rangeset();
    // Xen's dom0 setup: the hardware domain may map all I/O memory (RAM is never I/O).
    if (d.isPrivileged && this.giveAll) set.add(this.ramFrames, IOMEM_FRAME_LIMIT - 1);
    this.caps.set(d.domid, set);
  }

  domainDestroyed(d: Domain): void {
    this.caps.delete(d.domid);
  }

  private setOf(d: Domain, what: string): Rangeset {
    const s = this.caps.get(d.domid);
    if (s === undefined || d.state === "dead" || this.hv.domain(d.domid) !== d) {
      throw new HyperlabError<IomapErrorCode>(
        "IOMAP_BAD_DOMAIN",
        `iomap: cannot ${what} for domain ${d.domid}: it is dead or not a domain of this hypervisor; create it first`,
      );
    }
    return s;
  }

  private checkRange(s: number, e: number, what: string): void {
    if (!(isFrame(s) && isFrame(e) && s <= e)) {
      throw new HyperlabError<IomapErrorCode>(
        "IOMAP_BAD_RANGE",
        `iomap: ${what} needs frames s <= e below 2^40, got [${s}, ${e}]; pass machine frame numbers (address / 4096)`,
      );
    }
  }

  iomemPermitAccess(d: Domain, s: number, e: number): void {
    this.checkRange(s, e, "iomemPermitAccess");
    this.setOf(d, "permit I/O memory").add(s, e);
    this.counts.permits++;
  }

  iomemDenyAccess(d: Domain, s: number, e: number): void {
    this.checkRange(s, e, "iomemDenyAccess");
    this.setOf(d, "deny I/O memory").remove(s, e);
    this.counts.denies++;
  }

  iomemAccessPermitted(d: Domain, s: number, e: number): boolean {
    if (!(isFrame(s) && isFrame(e) && s <= e)) return false;
    const set = this.caps.get(d.domid);
    return set?.contains(s, e) === true;
  }

  iomemRanges(d: Domain): readonly FrameRange[] {
    return this.caps.get(d.domid)?.ranges() ?? [];
  }

  /** Whether d's iomem_caps are empty (Xen's l1_disallow_mask looks at this). */
  hasIomem(d: Domain): boolean {
    const set = this.caps.get(d.domid);
    return set !== undefined && !set.isEmpty;
  }

  /**
   * XEN_DOMCTL_iomem_permission as the toolstack issues it for a passthrough device: `caller`
   * (a privileged domain, or null for the host toolstack itself) gives `d` frames
   * [firstMfn, firstMfn + nrMfns) or takes them back. 0 or Xen's errno: -EINVAL for a range
   * that wraps or leaves the address width, -EPERM if the caller may not (it must hold the
   * frames itself, as Xen checks iomem_access_permitted(current->domain, ...)), -ESRCH for a
   * dead domain.
   */
  iomemPermission(
    caller: Domain | null,
    d: Domain,
    firstMfn: number,
    nrMfns: number,
    allow: boolean,
  ): number {
    if (!isFrame(firstMfn) || !Number.isSafeInteger(nrMfns) || nrMfns < 0) return -EINVAL;
    const last = firstMfn + nrMfns - 1;
    if (nrMfns === 0 || last >= IOMEM_FRAME_LIMIT) return -EINVAL;
    if (caller !== null) {
      if (!caller.isPrivileged) return -EPERM;
      if (!this.iomemAccessPermitted(caller, firstMfn, last)) return -EPERM;
    }
    const set = this.caps.get(d.domid);
    if (set === undefined || d.state === "dead") return -ESRCH;
    if (allow) {
      set.add(firstMfn, last);
      this.counts.permits++;
    } else {
      set.remove(firstMfn, last);
      this.counts.denies++;
    }
    return 0;
  }

  isRam(mfn: number): boolean {
    return typeof mfn === "number" && Number.isSafeInteger(mfn) && mfn >= 0 && mfn < this.ramFrames;
  }

  isMmio(mfn: number): boolean {
    return isFrame(mfn) && mfn >= this.ramFrames;
  }

  isMmioReadOnly(mfn: number): boolean {
    return this.isMmio(mfn) && this.ro.contains(mfn, mfn);
  }

  /** Whether a device of the machine's MMIO map answers for some byte of frame `mfn`. */
  hasDevice(mfn: number): boolean {
    if (!this.isMmio(mfn)) return false;
    const base = mfn * 4096;
    for (const r of this.hv.machine.mmio.list()) {
      if (r.base < base + 4096 && r.base + r.len > base) return true;
    }
    return false;
  }

  mmioAccess(d: Domain, mfn: number): number {
    if (!this.isMmio(mfn)) {
      this.counts.refused++;
      return -EINVAL;
    }
    const set = this.caps.get(d.domid);
    if (set === undefined || !set.contains(mfn, mfn)) {
      this.counts.refused++;
      return -EPERM;
    }
    return this.ro.contains(mfn, mfn) ? IOMEM_ACCESS_RO : IOMEM_ACCESS_RW;
  }
}
