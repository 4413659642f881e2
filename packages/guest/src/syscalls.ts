/*
 * The memory system calls (Linux's mm/mmap.c do_mmap and __do_munmap, mm/mprotect.c
 * do_mprotect_pkey): the argument checks and the order of their steps. A Process enters
 * them (process.ts) with its own mm.
 *
 * Invariants: bad arguments answer -errno (EINVAL, ENOMEM as Linux does), never a throw; a
 * range that cuts a huge page splits it before the areas change; an unmapped range leaves no
 * entry, page or empty PTE page behind; a hypercall failure on the way is the call's answer.
 */
import { EINVAL, ENOMEM } from "@hyperlab/abi";
import { KernelTasks } from "./fork";
import { HPAGE_SIZE, PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, USER_VA_END } from "./layout";
import { type Mm, pageAlignUp } from "./mm";

/** The kernel with its memory system calls. */
export class KernelSyscalls extends KernelTasks {
  sysMmap(mm: Mm, addr: number, length: number, prot: number, fixed: boolean): number {
    if (!Number.isSafeInteger(length) || length <= 0 || length > USER_VA_END) return -EINVAL;
    if (!Number.isInteger(prot) || (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0)
      return -EINVAL;
    const len = pageAlignUp(length);
    let start: number;
    if (fixed) {
      if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE !== 0 || addr < 0) return -EINVAL;
      if (addr + len > USER_VA_END) return -ENOMEM;
      start = addr;
      const rc = this.sysMunmap(mm, start, len);
      if (rc < 0) return rc;
    } else {
      // THP: an area that can hold a huge page starts on a 2 MiB boundary (thp_get_unmapped_area).
      start = mm.unmappedArea(len, this.hugePages && len >= HPAGE_SIZE ? HPAGE_SIZE : PAGE_SIZE);
      if (start < 0) return -ENOMEM;
    }
    mm.insert({ start, end: start + len, prot });
    return start;
  }

  sysMunmap(mm: Mm, addr: number, length: number): number {
    if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE !== 0 || addr < 0) return -EINVAL;
    if (!Number.isSafeInteger(length) || length <= 0) return -EINVAL;
    const end = addr + pageAlignUp(length);
    if (end > USER_VA_END) return -EINVAL;
    if (!mm.intersects(addr, end)) return 0;
    if (!this.splitHugeAt(mm, addr) || !this.splitHugeAt(mm, end)) return -ENOMEM;
    mm.removeRange(addr, end);
    this.zapRange(mm, addr, end);
    this.flushRange(mm, addr, end);
    this.freeEmptyPtePages(mm, addr, end);
    return this.takeError();
  }

  sysMprotect(mm: Mm, addr: number, length: number, prot: number): number {
    if (!Number.isSafeInteger(addr) || addr % PAGE_SIZE !== 0 || addr < 0) return -EINVAL;
    if (!Number.isInteger(prot) || (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0)
      return -EINVAL;
    if (!Number.isSafeInteger(length) || length < 0) return -EINVAL;
    if (length === 0) return 0;
    const end = addr + pageAlignUp(length);
    if (end > USER_VA_END) return -ENOMEM;
    if (!mm.covers(addr, end)) return -ENOMEM;
    if (!this.splitHugeAt(mm, addr) || !this.splitHugeAt(mm, end)) return -ENOMEM;
    mm.protect(addr, end, prot);
    const rc = this.changeProtection(mm, addr, end, prot);
    const err = this.takeError();
    return err !== 0 ? err : rc;
  }
}
