import * as abi from "@hyperlab/abi";
import * as core from "@hyperlab/core";
import { createPagingMode, tlbGrants } from "@hyperlab/paging";
import { describe, expect, it } from "vitest";
import { U } from "../src/mmu-update";
import * as pte from "../src/pte";
import { K } from "../src/pv-mmu";
import { grants } from "../src/service";

// pv-mmu.ts and mmu-update.ts keep their hot paths' constants as number literals (const enums
// K and U); each must equal the constant it stands for.
describe("the hot paths' constants", () => {
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
      ["L1_VALIDATED", K.L1_VALIDATED, (core.PGT_l1_page_table | core.PGT_validated) >>> 0],
      ["MMU_PT_UPDATE_NO_TRANSLATE", K.MMU_PT_UPDATE_NO_TRANSLATE, abi.MMU_PT_UPDATE_NO_TRANSLATE],
      // promoteL1's and modL1Run's int32 frame numbers: below 2^30 from a high word below 2^10.
      ["INNER_MFN_LIMIT", K.INNER_MFN_LIMIT, K.INNER_HI_LIMIT * K.TWO_20],
      ["INNER_MFN_LIMIT is 2^30", K.INNER_MFN_LIMIT, 2 ** 30],
      ["U.MMU_NORMAL_PT_UPDATE", U.MMU_NORMAL_PT_UPDATE, abi.MMU_NORMAL_PT_UPDATE],
      ["U.MMU_MACHPHYS_UPDATE", U.MMU_MACHPHYS_UPDATE, abi.MMU_MACHPHYS_UPDATE],
      ["U.MMU_PT_UPDATE_PRESERVE_AD", U.MMU_PT_UPDATE_PRESERVE_AD, abi.MMU_PT_UPDATE_PRESERVE_AD],
      [
        "U.MMU_PT_UPDATE_NO_TRANSLATE",
        U.MMU_PT_UPDATE_NO_TRANSLATE,
        abi.MMU_PT_UPDATE_NO_TRANSLATE,
      ],
      ["U.EPERM", U.EPERM, abi.EPERM],
      ["U.ESRCH", U.ESRCH, abi.ESRCH],
      ["U.EFAULT", U.EFAULT, abi.EFAULT],
      ["U.EINVAL", U.EINVAL, abi.EINVAL],
      ["U.ENOSYS", U.ENOSYS, abi.ENOSYS],
      ["U.PGC_count_mask", U.PGC_count_mask, core.PGC_count_mask],
      ["U.PGT_count_mask", U.PGT_count_mask, core.PGT_count_mask],
      ["U.PGT_validated", U.PGT_validated, core.PGT_validated],
      ["U.PGT_l1_page_table", U.PGT_l1_page_table, core.PGT_l1_page_table],
      ["U.PGT_l2_page_table", U.PGT_l2_page_table, core.PGT_l2_page_table],
      ["U.PGT_l4_page_table", U.PGT_l4_page_table, core.PGT_l4_page_table],
      ["U.PGT_writable_page", U.PGT_writable_page, core.PGT_writable_page],
      ["U.PGT_type_mask", U.PGT_type_mask, core.PGT_type_mask],
      ["U.TWO_20", U.TWO_20, 2 ** 20],
      [
        "U.TYPE_AND_VALIDATED",
        U.TYPE_AND_VALIDATED,
        (core.PGT_type_mask | core.PGT_validated) >>> 0,
      ],
      ["U.L1_VALIDATED", U.L1_VALIDATED, (core.PGT_l1_page_table | core.PGT_validated) >>> 0],
    ];
    for (const [name, value, source] of pairs) expect([name, value]).toEqual([name, source]);
  });

  it("service.ts's grants answers as paging's tlbGrants for every rights and access bit", () => {
    for (const wp of [false, true]) {
      const mode = { ...createPagingMode({ levels: 4 }), wp };
      for (let perms = 0; perms < 0x200; perms++) {
        for (let access = 0; access < 0x20; access++) {
          expect(grants(perms, access, mode)).toBe(tlbGrants(perms, access, mode));
        }
      }
    }
  });
});
