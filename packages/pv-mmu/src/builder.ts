/*
 * The PV domain builder: Xen's start state for a 64-bit PV guest, laid out as
 * xen/arch/x86/pv/dom0_build.c lays out dom0's (libxc's builder for a domU follows the same
 * order), then pinned through the same validation a guest's MMUEXT_PIN_L4_TABLE gets.
 *
 * Invariants: the bootstrap region [virtBase, vEnd) maps pfn (va - virtBase) / 4096 for
 * every page in it; page-table pages are mapped read-only, everything else read-write; the
 * P2M list holds every pfn's mfn and the M2P the reverse; the L4 is pinned and in vCPU 0's
 * CR3, so the frame table's counts equal what the built tables hold.
 */
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PRESENT,
  _PAGE_RW,
  SIF_INITDOMAIN,
  SIF_PRIVILEGED,
  start_info_x86_64,
} from "@hyperlab/abi";
import { type Domain, type Hypervisor, PGT_l4_page_table } from "@hyperlab/core";
import { pvMmuError } from "./errors";
import { _PAGE_GUEST_KERNEL_HI } from "./pte";
import type { PvMmu } from "./service";
import { HYPERVISOR_VIRT_END_48, HYPERVISOR_VIRT_START_48, VA_LIMIT } from "./xen";

const TWO_20 = 0x10_0000;
const TWO_32 = 0x1_0000_0000;
const MB4 = 1 << 22;
const BASE_PROT = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED;
const L1_PROT = BASE_PROT; // plus _PAGE_GUEST_KERNEL in the high half
const LN_PROT = BASE_PROT | _PAGE_DIRTY;

export interface PvBuildOptions {
  /** The domain to build (created, with no memory yet). */
  domain: Domain;
  /** Pages of RAM to give it (Xen's nr_pages); at most domain.maxPages. */
  nrPages: number;
  /** Kernel image copied to virtBase (its length in pages is the kernel's size); 1 empty page if omitted. */
  kernel?: Uint8Array;
  /** Guest virtual base (48-bit form); Linux's __START_KERNEL_map 0xffffffff80000000 by default. */
  virtBase?: number;
  /** Kernel entry point; virtBase by default. */
  entry?: number;
  /** start_info.cmd_line. */
  cmdline?: string;
  /** start_info.store_mfn / store_evtchn / console (domU) fields. */
  storeMfn?: number;
  storeEvtchn?: number;
  consoleMfn?: number;
  consoleEvtchn?: number;
}

export interface PvBuildResult {
  /** Machine frame of the pinned L4, in vCPU 0's CR3. */
  l4Mfn: number;
  /** pfn -> mfn, the same list the guest finds at `p2mVa`. */
  p2m: Float64Array;
  virtBase: number;
  /** End of the bootstrap region (4 MiB aligned, with at least 512 KiB of padding). */
  vEnd: number;
  kernelVa: number;
  p2mVa: number;
  startInfoVa: number;
  startInfoMfn: number;
  /** First page-table page and their number (start_info.pt_base / nr_pt_frames). */
  ptBaseVa: number;
  nrPtFrames: number;
  /** Top of the boot stack (the initial rsp). */
  stackTop: number;
  /** Where shared_info is mapped: the page at vEnd (Xen leaves this to the guest; see README). */
  sharedInfoVa: number;
  /** Initial rip and rsi, as Xen sets them. */
  entry: number;
  rsi: number;
}

function pages(bytes: number): number {
  return Math.ceil(bytes / 4096);
}

/** Page tables needed to map [vStart, vEnd): 1 L4 plus L3s, L2s and L1s (dom0_build's count). */
function tablesFor(vStart: number, vEnd: number): number {
  const nr = (shift: number) =>
    Math.floor((vEnd - 1) / 2 ** shift) - Math.floor(vStart / 2 ** shift) + 1;
  return 1 + nr(39) + nr(30) + nr(21);
}

/** A 48-bit address as the 64-bit canonical value's halves (for fields the guest reads). */
function canonicalHalves(va: number): [number, number] {
  const lo = (va % TWO_32) >>> 0;
  let hi = Math.floor(va / TWO_32) >>> 0;
  if (va >= 2 ** 47) hi = (hi | 0xffff_0000) >>> 0;
  return [lo, hi];
}

/**
 * Builds a 64-bit PV domain's start state. Throws HyperlabError when the request cannot fit
 * (too few pages, a base inside Xen's range, the machine out of memory).
 */
export function buildPvDomain(hv: Hypervisor, pv: PvMmu, options: PvBuildOptions): PvBuildResult {
  const d = options.domain;
  const nrPages = options.nrPages;
  if (d.addressSize !== 64) {
    throw pvMmuError(
      "PV_BUILD_32BIT",
      `Domain ${d.domid} is 32-bit; this builder makes 64-bit PV guests. Create it with addressSize: 64.`,
    );
  }
  if (!Number.isInteger(nrPages) || nrPages < 1 || nrPages > d.maxPages - d.totPages) {
    throw pvMmuError(
      "PV_BUILD_BAD_SIZE",
      `nrPages must be a whole number from 1 to the domain's free allowance (${d.maxPages - d.totPages}), got ${nrPages}. Raise maxPages or ask for fewer pages.`,
    );
  }
  if (d.vcpus[0].cr3Mfn >= 0) {
    throw pvMmuError(
      "PV_BUILD_TWICE",
      `Domain ${d.domid} already has page tables. Build a domain once, right after creating it.`,
    );
  }
  const vStart = options.virtBase ?? 0xffff_8000_0000;
  if (!(Number.isInteger(vStart) && vStart % 4096 === 0 && vStart >= 0 && vStart < VA_LIMIT)) {
    throw pvMmuError(
      "PV_BUILD_BAD_BASE",
      `virtBase must be a page-aligned 48-bit address, got ${vStart}.`,
    );
  }
  const kernel = options.kernel ?? new Uint8Array(4096);
  // Layout, in dom0_build.c's order: kernel, phys-to-mach list, start info, page tables, stack.
  const vKernEnd = vStart + pages(kernel.length) * 4096;
  const vPhysmap = vKernEnd;
  const vStartInfo = vPhysmap + pages(nrPages * 8) * 4096;
  const vPt = vStartInfo + 4096;
  let nrPt = 2;
  let vStack = 0;
  let vEnd = 0;
  for (; ; nrPt++) {
    vStack = vPt + nrPt * 4096;
    const vStackEnd = vStack + 4096;
    vEnd = Math.ceil(vStackEnd / MB4) * MB4;
    if (vEnd - vStackEnd < 512 * 1024) vEnd += MB4;
    // One more page than Xen maps: shared_info at vEnd.
    if (tablesFor(vStart, vEnd + 4096) <= nrPt) break;
  }
  if (
    vEnd + 4096 > VA_LIMIT ||
    (vStart < HYPERVISOR_VIRT_END_48 && vEnd + 4096 > HYPERVISOR_VIRT_START_48)
  ) {
    throw pvMmuError(
      "PV_BUILD_OVERLAPS_XEN",
      "The guest image overlaps Xen's private area (L4 slots 256..271). Choose another virtBase.",
    );
  }
  const nrMapped = (vEnd - vStart) / 4096;
  if (nrMapped > nrPages) {
    throw pvMmuError(
      "PV_BUILD_TOO_SMALL",
      `The bootstrap region needs ${nrMapped} pages but the domain gets ${nrPages}. Give it at least ${nrMapped} pages.`,
    );
  }

  // Populate: pfn -> mfn, M2P back (no TLB may still reach a reused frame).
  pv.flushIfFramesReused();
  const p2m = new Float64Array(nrPages);
  const ram = hv.machine.ram;
  for (let pfn = 0; pfn < nrPages; pfn++) {
    const mfn = hv.allocDomainPages(d, 0);
    if (mfn < 0) {
      throw pvMmuError(
        "PV_BUILD_NO_MEMORY",
        `The machine ran out of frames after ${pfn} of ${nrPages} pages. Give the machine more RAM.`,
      );
    }
    p2m[pfn] = mfn;
    ram.clearFrame(mfn);
    pv.m2p.setPfn(mfn, pfn);
  }
  const mfnOfVa = (va: number) => p2m[(va - vStart) / 4096];

  // Kernel image.
  for (let off = 0; off < kernel.length; off += 4096) {
    ram.writeBytes(
      mfnOfVa(vStart + off) * 4096,
      kernel.subarray(off, Math.min(off + 4096, kernel.length)),
    );
  }
  // The P2M list, in the guest's own memory.
  for (let pfn = 0; pfn < nrPages; pfn++) {
    const va = vPhysmap + pfn * 8;
    const ma = mfnOfVa(va - (va % 4096)) * 4096 + (va % 4096);
    ram.write64(ma, p2m[pfn] % TWO_32, Math.floor(p2m[pfn] / TWO_32));
  }

  // Page tables, allocated from the page-table area in the order dom0_build uses.
  let nextPt = vPt;
  const takePt = (): number => {
    const mfn = mfnOfVa(nextPt);
    nextPt += 4096;
    return mfn;
  };
  const entry = (lo: number, mfn: number, hiFlags = 0): [number, number] => [
    ((mfn % TWO_20) * 4096 + lo) >>> 0,
    (Math.floor(mfn / TWO_20) | hiFlags) >>> 0,
  ];
  const l4 = takePt();
  let l3 = -1;
  let l2 = -1;
  let l1 = -1;
  const setE = (table: number, i: number, e: [number, number]) =>
    ram.write64(table * 4096 + i * 8, e[0], e[1]);
  const mapPage = (va: number, mfn: number, rw: boolean) => {
    const i4 = Math.floor(va / 2 ** 39) % 512;
    const i3 = Math.floor(va / 2 ** 30) % 512;
    const i2 = Math.floor(va / 2 ** 21) % 512;
    const i1 = Math.floor(va / 4096) % 512;
    if (l1 < 0 || i1 === 0) {
      l1 = takePt();
      if (l2 < 0 || i2 === 0) {
        l2 = takePt();
        if (l3 < 0 || i3 === 0) {
          l3 = takePt();
          setE(l4, i4, entry(LN_PROT, l3));
        }
        setE(l3, i3, entry(LN_PROT, l2));
      }
      setE(l2, i2, entry(LN_PROT, l1));
    }
    setE(l1, i1, entry(rw ? L1_PROT : L1_PROT & ~_PAGE_RW, mfn, _PAGE_GUEST_KERNEL_HI));
  };
  const vPtEnd = vPt + nrPt * 4096;
  for (let va = vStart; va < vEnd; va += 4096) {
    mapPage(va, mfnOfVa(va), !(va >= vPt && va < vPtEnd));
  }
  mapPage(vEnd, d.sharedInfoMfn, true);

  // start_info, in the guest's memory.
  const si = mfnOfVa(vStartInfo);
  const f = start_info_x86_64.fields;
  const siBase = si * 4096;
  const put64 = (off: number, v: number) =>
    ram.write64(siBase + off, v % TWO_32, Math.floor(v / TWO_32));
  const putVa = (off: number, va: number) => {
    const [lo, hi] = canonicalHalves(va);
    ram.write64(siBase + off, lo, hi);
  };
  const magic = new TextEncoder().encode("xen-3.0-x86_64");
  ram.writeBytes(siBase + f.magic.offset, magic);
  put64(f.nr_pages.offset, nrPages);
  put64(f.shared_info.offset, d.sharedInfoMfn * 4096);
  ram.write32(siBase + f.flags.offset, d.isPrivileged ? SIF_PRIVILEGED | SIF_INITDOMAIN : 0);
  put64(f.store_mfn.offset, options.storeMfn ?? 0);
  ram.write32(siBase + f.store_evtchn.offset, options.storeEvtchn ?? 0);
  put64(f["console.domU.mfn"].offset, options.consoleMfn ?? 0);
  ram.write32(siBase + f["console.domU.evtchn"].offset, options.consoleEvtchn ?? 0);
  putVa(f.pt_base.offset, vPt);
  put64(f.nr_pt_frames.offset, nrPt);
  putVa(f.mfn_list.offset, vPhysmap);
  put64(f.mod_start.offset, 0);
  put64(f.mod_len.offset, 0);
  if (options.cmdline !== undefined) {
    const bytes = new TextEncoder().encode(options.cmdline).subarray(0, f.cmd_line.count! - 1);
    ram.writeBytes(siBase + f.cmd_line.offset, bytes);
  }
  put64(f.first_p2m_pfn.offset, nrPages);
  put64(f.nr_p2m_frames.offset, 0);

  // Pin the L4 (validating the whole tree) and load it into vCPU 0's CR3.
  const frames = hv.frames;
  if (!frames.getPage(l4, d.domid))
    throw new Error("pv-mmu builder: the new L4 is not the domain's");
  const rc = frames.getPageType(l4, PGT_l4_page_table);
  if (rc !== 0) throw new Error(`pv-mmu builder: the built tables failed validation (${rc})`);
  frames.setPinned(l4, true);
  const v0 = d.vcpus[0];
  const rc2 = pv.newGuestCr3(v0, l4);
  if (rc2 !== 0) throw new Error(`pv-mmu builder: loading CR3 failed (${rc2})`);
  v0.inKernel = true;

  return {
    l4Mfn: l4,
    p2m,
    virtBase: vStart,
    vEnd,
    kernelVa: vStart,
    p2mVa: vPhysmap,
    startInfoVa: vStartInfo,
    startInfoMfn: si,
    ptBaseVa: vPt,
    nrPtFrames: nrPt,
    stackTop: vStack + 4096,
    sharedInfoVa: vEnd,
    entry: options.entry ?? vStart,
    rsi: vStartInfo,
  };
}
