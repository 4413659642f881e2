import * as abi from "@hyperlab/abi";
import * as core from "@hyperlab/core";
import { describe, expect, it } from "vitest";
import * as pte from "../src/pte";
import { K } from "../src/pv-mmu";

// pv-mmu.ts keeps its validation paths' constants as number literals (a const enum); each must
// equal the constant it stands for.
describe("pv-mmu.ts's constants", () => {
  it("equal their sources in @hyperlab/abi, @hyperlab/core and pte.ts", () => {
    const pairs: [string, number, number][] = [
      ["_PAGE_PRESENT", K._PAGE_PRESENT, abi._PAGE_PRESENT],
      ["_PAGE_RW", K._PAGE_RW, abi._PAGE_RW],
      ["_PAGE_USER", K._PAGE_USER, abi._PAGE_USER],
      ["_PAGE_PWT", K._PAGE_PWT, abi._PAGE_PWT],
      ["_PAGE_PCD", K._PAGE_PCD, abi._PAGE_PCD],
      ["_PAGE_ACCESSED", K._PAGE_ACCESSED, abi._PAGE_ACCESSED],
      ["_PAGE_DIRTY", K._PAGE_DIRTY, abi._PAGE_DIRTY],
      ["_PAGE_PAT", K._PAGE_PAT, abi._PAGE_PAT],
      ["_PAGE_GLOBAL", K._PAGE_GLOBAL, abi._PAGE_GLOBAL],
      ["EPERM", K.EPERM, abi.EPERM],
      ["EACCES", K.EACCES, abi.EACCES],
      ["EBUSY", K.EBUSY, abi.EBUSY],
      ["EINVAL", K.EINVAL, abi.EINVAL],
      ["MMU_PT_UPDATE_PRESERVE_AD", K.MMU_PT_UPDATE_PRESERVE_AD, abi.MMU_PT_UPDATE_PRESERVE_AD],
      ["FRAME_FREE", K.FRAME_FREE, core.FRAME_FREE],
      ["IOMEM_ACCESS_RO", K.IOMEM_ACCESS_RO, core.IOMEM_ACCESS_RO],
      ["PGC_count_mask", K.PGC_count_mask, core.PGC_count_mask],
      ["PGC_xen_heap", K.PGC_xen_heap, core.PGC_xen_heap],
      ["PGT_count_mask", K.PGT_count_mask, core.PGT_count_mask],
      ["PGT_validated", K.PGT_validated, core.PGT_validated],
      ["PGT_pinned", K.PGT_pinned, core.PGT_pinned],
      ["PGT_l1_page_table", K.PGT_l1_page_table, core.PGT_l1_page_table],
      ["PGT_l2_page_table", K.PGT_l2_page_table, core.PGT_l2_page_table],
      ["PGT_l3_page_table", K.PGT_l3_page_table, core.PGT_l3_page_table],
      ["PGT_l4_page_table", K.PGT_l4_page_table, core.PGT_l4_page_table],
      ["PGT_writable_page", K.PGT_writable_page, core.PGT_writable_page],
      ["PGT_type_mask", K.PGT_type_mask, core.PGT_type_mask],
      ["_PAGE_GUEST_KERNEL_HI", K._PAGE_GUEST_KERNEL_HI, pte._PAGE_GUEST_KERNEL_HI],
      ["PTE_MFN_HI_MASK", K.PTE_MFN_HI_MASK, pte.PTE_MFN_HI_MASK],
      ["PAGE_CACHE_ATTRS", K.PAGE_CACHE_ATTRS, pte.PAGE_CACHE_ATTRS],
      ["L1_DISALLOW_LO", K.L1_DISALLOW_LO, pte.L1_DISALLOW_LO],
      ["L1_DISALLOW_HI", K.L1_DISALLOW_HI, pte.L1_DISALLOW_HI],
      ["L1_DISALLOW_IO_LO", K.L1_DISALLOW_IO_LO, pte.L1_DISALLOW_IO_LO],
      ["L2_DISALLOW_LO", K.L2_DISALLOW_LO, pte.L2_DISALLOW_LO],
      ["L3_DISALLOW_LO", K.L3_DISALLOW_LO, pte.L3_DISALLOW_LO],
      ["L4_DISALLOW_LO", K.L4_DISALLOW_LO, pte.L4_DISALLOW_LO],
      ["FASTPATH_LO", K.FASTPATH_LO, pte.FASTPATH_LO],
      ["FASTPATH_HI", K.FASTPATH_HI, pte.FASTPATH_HI],
      ["FASTPATH_PDE_LO", K.FASTPATH_PDE_LO, pte.FASTPATH_PDE_LO],
      ["FASTPATH_PDE_HI", K.FASTPATH_PDE_HI, pte.FASTPATH_PDE_HI],
      ["TWO_20", K.TWO_20, 2 ** 20],
      ["INVALID_MFN_IN_PTE", K.INVALID_MFN_IN_PTE, 2 ** 40 - 1],
      ["WRITABLE_ONE", K.WRITABLE_ONE, (core.PGT_writable_page | core.PGT_validated | 1) >>> 0],
      ["TYPE_AND_VALIDATED", K.TYPE_AND_VALIDATED, (core.PGT_type_mask | core.PGT_validated) >>> 0],
      [
        "WRITABLE_VALIDATED",
        K.WRITABLE_VALIDATED,
        (core.PGT_writable_page | core.PGT_validated) >>> 0,
      ],
    ];
    for (const [name, value, source] of pairs) expect([name, value]).toEqual([name, source]);
  });
});
