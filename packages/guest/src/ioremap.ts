/*
 * Device memory in the guest kernel: ioremap, remap_pfn_range with an I/O protection, a BAR
 * mmap and I/O fixmaps, after Linux's arch/x86/mm/ioremap.c and, under Xen PV, the two ways
 * arch/x86/xen has built such entries: 2.6.30's _PAGE_IOMAP (xen_make_pte keeps the frame of
 * an entry carrying the software bit untranslated) and today's identity P2M for I/O holes (the
 * entry carries no special bit; the P2M answers pfn == mfn for frames outside the domain's RAM).
 * The strategy is a guest plugin option; both install the same machine frame.
 *
 * Invariants: an I/O entry names the device frame it was asked for, never a RAM page of this
 * kernel (ioremap refuses RAM pfns, as Linux's ioremap does); a RAM pfn mapped without the
 * I/O protection goes through the P2M (pv_ops.mmu.makePte). A refusal by Xen is returned as
 * its errno, never thrown; only a caller's misuse (unaligned or empty sizes) is an -EINVAL.
 */
import { EINVAL, ENOMEM } from "@hyperlab/abi";
import type { GuestKernel } from "./kernel";
import type { Mm } from "./mm";
import { defineGuestPlugin, type GuestPlugin } from "./plugins";
import { E_IOMAP, PAGE_KERNEL_IO } from "./pte";

const PAGE = 4096;

/** Where ioremap places its mappings (Linux's vmalloc/ioremap space, 48-bit form). */
export const IOREMAP_START = 0xc900_0000_0000;
export const IOREMAP_END = 0xe900_0000_0000;
/** The top of the fixmap area (Linux's FIXADDR_TOP, 48-bit form); index i maps below it. */
export const FIXADDR_TOP = 0xffff_ff5f_f000;

/** How a Xen PV kernel builds entries for device frames. */
export type IoremapStrategy = "iomap-bit" | "identity-p2m";

/** pv_ops.ioremap: how an entry for a device frame is made on this platform. */
export interface PvIoremapOps {
  /** "native", or the Xen strategy. */
  readonly strategy: "native" | IoremapStrategy;
  /** The entry for device frame `frame` with protection `prot` (an I/O protection). */
  ioPte(frame: number, prot: number): number;
}

declare module "./pv-ops" {
  interface PvOps {
    ioremap: PvIoremapOps;
  }
}

/** Native: the frame is the physical frame; the software bit is not in __supported_pte_mask. */
function nativeIoremap(): PvIoremapOps {
  return { strategy: "native", ioPte: (frame, prot) => frame * PAGE + (prot & ~E_IOMAP) };
}

/**
 * Linux's identity P2M (set_phys_range_identity over the I/O holes): a frame beyond the
 * domain's pfns is its own mfn; the entry carries no _PAGE_IOMAP. Below that, a pfn is RAM
 * and goes through the P2M.
 */
function identityP2m(k: GuestKernel): PvIoremapOps {
  const p2m = k.xen!.p2m;
  return {
    strategy: "identity-p2m",
    ioPte: (frame, prot) => (frame < k.nrPfns ? p2m[frame] : frame) * PAGE + (prot & ~E_IOMAP),
  };
}

/** 2.6.30's way: the entry keeps _PAGE_IOMAP and xen_make_pte leaves the frame as it is. */
function iomapBit(k: GuestKernel): PvIoremapOps {
  return {
    strategy: "iomap-bit",
    ioPte: (frame, prot) => k.ops.mmu.makeIoPte(frame, prot | E_IOMAP),
  };
}

/**
 * The guest plugin choosing how device entries are made: on a Xen PV kernel, `strategy`
 * (default "iomap-bit"); on bare metal the native default applies whatever the option.
 */
export function ioremapOps(options: { strategy?: IoremapStrategy } = {}): GuestPlugin {
  return defineGuestPlugin({
    name: "ioremap",
    description:
      "ioremap, remap_pfn_range and fixmaps of device memory (_PAGE_IOMAP or identity P2M)",
    defines: { ioremap: () => nativeIoremap() },
    provides: ["ioremap"],
    setup(ctx) {
      const k = ctx.kernel;
      if (k.xen === null) return;
      ctx.provide("ioremap", options.strategy === "identity-p2m" ? identityP2m(k) : iomapBit(k));
    },
  });
}

/** The entry for a device frame: pv_ops.ioremap when composed, else the mmu group's makeIoPte. */
function ioPte(k: GuestKernel, frame: number, prot: number): number {
  const ops = (k.ops as Partial<typeof k.ops>).ioremap;
  return ops !== undefined ? ops.ioPte(frame, prot) : k.ops.mmu.makeIoPte(frame, prot | E_IOMAP);
}

/** Installs `entry` for `va` in `mm`; 0 or -errno (Xen's refusal, or -ENOMEM for a table). */
function installPte(k: GuestKernel, mm: Mm, va: number, entry: number): number {
  const pte = k.ptePage(mm, va, true);
  if (pte < 0) return -ENOMEM;
  k.takeError();
  k.ops.mmu.setPte(mm, pte, Math.floor(va / PAGE) % 512, entry);
  k.counts.ptUpdates++;
  return k.takeError();
}

/** Per-kernel ioremap state: the next free address of the ioremap area. */
const nextVa = new WeakMap<GuestKernel, number>();

/**
 * Linux's ioremap (uncached): maps [phys, phys + size) of device memory into the kernel's
 * ioremap area and returns the virtual address of `phys`, or -errno: -EINVAL for an empty
 * range or one that names a RAM page of this kernel, -ENOMEM when the area or a table runs
 * out, Xen's errno (-EPERM without I/O memory permission) when it refuses an entry.
 */
export function ioremap(k: GuestKernel, phys: number, size: number): number {
  if (!(Number.isSafeInteger(phys) && Number.isSafeInteger(size) && phys >= 0 && size > 0)) {
    return -EINVAL;
  }
  const first = Math.floor(phys / PAGE);
  const last = Math.floor((phys + size - 1) / PAGE);
  // ioremap refuses RAM: a pfn of this kernel's memory is not device memory.
  if (first < k.nrPfns) return -EINVAL;
  const base = nextVa.get(k) ?? IOREMAP_START;
  const pages = last - first + 1;
  // One guard page after each mapping, as vmalloc leaves.
  if (base + (pages + 1) * PAGE > IOREMAP_END) return -ENOMEM;
  nextVa.set(k, base + (pages + 1) * PAGE);
  for (let i = 0; i < pages; i++) {
    const rc = installPte(k, k.initMm, base + i * PAGE, ioPte(k, first + i, PAGE_KERNEL_IO));
    if (rc < 0) {
      iounmap(k, base, i * PAGE);
      return rc;
    }
  }
  return base + (phys % PAGE);
}

/** Clears the entries of [va, va + size) in the kernel's tables (iounmap) and flushes them. */
export function iounmap(k: GuestKernel, va: number, size: number): void {
  const start = Math.floor(va / PAGE) * PAGE;
  for (let a = start; a < va + size; a += PAGE) {
    const pte = k.ptePage(k.initMm, a, false);
    if (pte >= 0) k.ops.mmu.setPte(k.initMm, pte, Math.floor(a / PAGE) % 512, 0);
  }
  k.ops.mmu.flushTlbKernel(0);
}

/**
 * Linux's remap_pfn_range into `mm` at `va`: `size` bytes from frame `pfn`. With an I/O
 * protection (_PAGE_IOMAP in `prot`, as a BAR mmap passes) each entry is a device entry;
 * without it each pfn is RAM and goes through the P2M. 0 or -errno.
 */
export function remapPfnRange(
  k: GuestKernel,
  mm: Mm,
  va: number,
  pfn: number,
  size: number,
  prot: number,
): number {
  if (va % PAGE !== 0 || size <= 0 || size % PAGE !== 0 || !Number.isSafeInteger(pfn) || pfn < 0) {
    return -EINVAL;
  }
  const io = (prot & E_IOMAP) !== 0;
  for (let i = 0; i < size / PAGE; i++) {
    if (!io && pfn + i >= k.nrPfns) return -EINVAL;
    const entry = io ? ioPte(k, pfn + i, prot) : k.ops.mmu.makePte(pfn + i, prot);
    const rc = installPte(k, mm, va + i * PAGE, entry);
    if (rc < 0) return rc;
  }
  return 0;
}

/** A BAR mmap (pci_mmap_resource): remap_pfn_range of the BAR with an I/O protection. */
export function mmapBar(
  k: GuestKernel,
  mm: Mm,
  va: number,
  barBase: number,
  size: number,
  prot: number,
): number {
  if (barBase % PAGE !== 0) return -EINVAL;
  return remapPfnRange(k, mm, va, barBase / PAGE, size, prot | E_IOMAP);
}

/** Linux's set_fixmap_io (__set_fixmap with PAGE_KERNEL_IO): fixmap slot `idx` maps `phys`. */
export function setFixmapIo(k: GuestKernel, idx: number, phys: number): number {
  if (!(Number.isSafeInteger(idx) && idx >= 0 && idx < 512) || phys % PAGE !== 0) return -EINVAL;
  return installPte(k, k.initMm, fixToVirt(idx), ioPte(k, phys / PAGE, PAGE_KERNEL_IO));
}

/** Linux's fix_to_virt. */
export function fixToVirt(idx: number): number {
  return FIXADDR_TOP - idx * PAGE;
}
