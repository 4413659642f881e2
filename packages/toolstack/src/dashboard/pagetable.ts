/*
 * The page-table tree the dashboard draws for a domain: an x86-64 4-level walk (L4 -> L1, as
 * Xen's and Linux's PV page tables are) from a root frame, reading entries through a
 * callback, so any MMU backend can show its tables. Only present entries appear; an L3 or L2
 * entry with _PAGE_PSE is a 1 GiB or 2 MiB leaf. Labels name the slot, the virtual address
 * it maps, the frame and the access bits.
 *
 * Invariant: the walk visits at most `maxNodes` entries (then one "... N more" node says how
 * many it left out), so a hostile guest's tables cannot make the page unbounded; frames are
 * read as the callback answers, never followed in a cycle twice on one path.
 */
import {
  _PAGE_NX_HI,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_USER,
  PTE_PFN_MASK_HI,
  PTE_PFN_MASK_LO,
} from "@hyperlab/abi";
import type { PageTableNode } from "./source";

/** One 64-bit entry as its low and high 32-bit halves. */
export interface PteHalves {
  lo: number;
  hi: number;
}

export interface PageTableWalkOptions {
  /** Most entries to show (default 2,000). */
  maxNodes?: number;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** The frame number an entry names (bits 12..51). */
function frameOf(e: PteHalves): number {
  return (e.hi & PTE_PFN_MASK_HI) * 2 ** 20 + ((e.lo & PTE_PFN_MASK_LO) >>> 12);
}

function bits(e: PteHalves): string {
  return `${e.lo & _PAGE_RW ? "rw" : "ro"}${e.lo & _PAGE_USER ? " user" : ""}${e.hi & _PAGE_NX_HI ? " nx" : ""}`;
}

/** Sign-extends a 48-bit virtual address for display, as the CPU does. */
function vaddr(va: number): string {
  if (va < 2 ** 47) return hex(va);
  return `0xffff${va.toString(16).padStart(12, "0")}`;
}

/**
 * The tree under the L4 table at `rootMfn`; `read(mfn, index)` answers entry `index` (0..511)
 * of the table in frame `mfn`.
 */
export function pageTableTree(
  rootMfn: number,
  read: (mfn: number, index: number) => PteHalves,
  opts: PageTableWalkOptions = {},
): PageTableNode {
  const max = opts.maxNodes ?? 2000;
  let shown = 0;
  let skipped = 0;
  const SHIFT = [0, 12, 21, 30, 39];
  const SIZE = ["", "4 KiB", "2 MiB", "1 GiB"];

  function walk(level: number, mfn: number, base: number, path: Set<number>): PageTableNode[] {
    const out: PageTableNode[] = [];
    for (let i = 0; i < 512; i++) {
      const e = read(mfn, i);
      if (!(e.lo & _PAGE_PRESENT)) continue;
      if (shown >= max) {
        skipped++;
        continue;
      }
      shown++;
      const va = base + i * 2 ** SHIFT[level];
      const f = frameOf(e);
      const leaf = level === 1 || ((level === 2 || level === 3) && (e.lo & _PAGE_PSE) !== 0);
      if (leaf) {
        out.push({
          label: `L${level}[${i}] ${vaddr(va)} -> mfn ${hex(f)} ${bits(e)} (${SIZE[level]})`,
        });
      } else if (path.has(f)) {
        out.push({
          label: `L${level}[${i}] -> L${level - 1} mfn ${hex(f)} (already on this path: a loop)`,
        });
      } else {
        path.add(f);
        const children = walk(level - 1, f, va, path);
        path.delete(f);
        out.push({
          label: `L${level}[${i}] ${vaddr(va)} -> L${level - 1} mfn ${hex(f)} ${bits(e)}`,
          children,
        });
      }
    }
    return out;
  }

  const children = walk(4, rootMfn, 0, new Set([rootMfn]));
  if (skipped > 0) {
    children.push({ label: `... ${skipped} more present entries (and what they map) not shown` });
  }
  return { label: `L4 mfn ${hex(rootMfn)}`, children };
}
