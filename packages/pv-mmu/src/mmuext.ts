/*
 * HYPERVISOR_mmuext_op (Xen's do_mmuext_op in arch/x86/mm.c): pinning and unpinning page
 * tables, new base pointers, TLB and cache flushes, LDT, page copy and clear, superpage marks.
 *
 * Invariant: a pin holds one general and one type reference and an unpin drops exactly
 * those; a new base pointer takes its references before the old one's are dropped; every op
 * is checked and answers Xen's negative errno; `pdone` counts the ops done.
 */

import {
  EACCES,
  EFAULT,
  EINVAL,
  ENOSYS,
  EOPNOTSUPP,
  EPERM,
  ESRCH,
  MMUEXT_CLEAR_PAGE,
  MMUEXT_COPY_PAGE,
  MMUEXT_FLUSH_CACHE,
  MMUEXT_FLUSH_CACHE_GLOBAL,
  MMUEXT_INVLPG_ALL,
  MMUEXT_INVLPG_LOCAL,
  MMUEXT_INVLPG_MULTI,
  MMUEXT_MARK_SUPER,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_NEW_USER_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L2_TABLE,
  MMUEXT_PIN_L3_TABLE,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_SET_LDT,
  MMUEXT_TLB_FLUSH_ALL,
  MMUEXT_TLB_FLUSH_LOCAL,
  MMUEXT_TLB_FLUSH_MULTI,
  MMUEXT_UNMARK_SUPER,
  MMUEXT_UNPIN_TABLE,
  VMASST_TYPE_m2p_strict,
} from "@hyperlab/abi";
import {
  type Domain,
  PGT_l4_page_table,
  PGT_pinned,
  PGT_writable_page,
  type Vcpu,
} from "@hyperlab/core";
import { type Batch, type PvMmuContext, readBatch } from "./context";

const batch: Batch = { count: 0, foreigndom: 0, done: 0 };

import { addrOk, getPgOwner, MAX_LDT_ENTS, vcpusOf } from "./context";
import { xsmTarget } from "./pv-mmu";

/** struct mmuext_op. `vcpumask` is a bitmap in 32-bit words (bit i of word j = vCPU 32j+i). */
export interface MmuextOp {
  cmd: number;
  arg1?: { mfn?: number; linear_addr?: number };
  arg2?: { nr_ents?: number; vcpumask?: readonly number[] | Uint32Array; src_mfn?: number };
}

export interface MmuextOpArgs {
  uops: readonly MmuextOp[];
  count: number;
  pdone?: number;
  foreigndom: number;
}

/** HYPERVISOR_mmuext_op (Xen's do_mmuext_op). */
export function mmuextOp(ctx: PvMmuContext, v: Vcpu, a: MmuextOpArgs): number {
  if (!readBatch(a, batch)) return -EFAULT;
  const count = batch.count;
  const foreigndom = batch.foreigndom;
  const done = batch.done;
  const uops = a.uops;
  if (!Array.isArray(uops) || uops.length < count) return -EFAULT;
  const currd = v.domain;
  const pgOwner = getPgOwner(ctx, v, foreigndom & 0xffff);
  if (pgOwner === undefined) return -ESRCH;
  if (pgOwner !== currd && !xsmTarget(currd, pgOwner)) return -EPERM;
  let rc = 0;
  let i = 0;
  for (; i < count; i++) {
    const op = uops[i];
    if (typeof op !== "object" || op === null || typeof op.cmd !== "number") {
      rc = -EFAULT;
      break;
    }
    rc = mmuextOne(ctx, v, op, pgOwner);
    if (rc !== 0) break;
  }
  a.pdone = done + i;
  return rc;
}

function mmuextOne(ctx: PvMmuContext, v: Vcpu, op: MmuextOp, pgOwner: Domain): number {
  const f = ctx.frames;
  const currd = v.domain;
  const mfnArg = op.arg1?.mfn;
  const mfn =
    typeof mfnArg === "number" && Number.isSafeInteger(mfnArg) && mfnArg >= 0 ? mfnArg : -1;
  switch (op.cmd) {
    case MMUEXT_PIN_L1_TABLE:
    case MMUEXT_PIN_L2_TABLE:
    case MMUEXT_PIN_L3_TABLE:
    case MMUEXT_PIN_L4_TABLE: {
      if (op.cmd === MMUEXT_PIN_L4_TABLE && pgOwner.addressSize === 32) return 0;
      const type = ((op.cmd - MMUEXT_PIN_L1_TABLE + 1) << 29) >>> 0;
      if (!f.getPage(mfn, pgOwner.domid)) return -EINVAL;
      const rc = f.getPageType(mfn, type);
      if (rc !== 0) {
        f.putPage(mfn);
        return rc;
      }
      if ((f.typeInfo[mfn] & PGT_pinned) !== 0) {
        f.putPageAndType(mfn);
        return -EINVAL;
      }
      f.setPinned(mfn, true);
      if (pgOwner !== currd && (pgOwner.state === "dying" || pgOwner.state === "dead")) {
        f.setPinned(mfn, false);
        f.putPageAndType(mfn);
      }
      return 0;
    }
    case MMUEXT_UNPIN_TABLE: {
      if (!f.getPage(mfn, pgOwner.domid)) return -EINVAL;
      if ((f.typeInfo[mfn] & PGT_pinned) === 0) {
        f.putPage(mfn);
        return -EINVAL;
      }
      f.setPinned(mfn, false);
      f.putPageAndType(mfn);
      f.putPage(mfn);
      return 0;
    }
    case MMUEXT_NEW_BASEPTR:
      if (currd !== pgOwner) return -EPERM;
      return newGuestCr3(ctx, v, mfn);
    case MMUEXT_NEW_USER_BASEPTR: {
      if (currd !== pgOwner) return -EPERM;
      // Xen's guest_table_user holds mfn 0 for "none"; here -1 is none and 0 asks for none.
      const old = v.userCr3Mfn;
      const want = mfnArg === 0 ? -1 : mfn;
      if (want === old) return 0;
      if (mfnArg !== 0) {
        const rc = getL4(ctx, mfn, currd);
        if (rc !== 0) return rc;
        if (currd.vmAssist.has(VMASST_TYPE_m2p_strict)) ctx.pt.zapRoMpt(mfn);
      }
      v.userCr3Mfn = want;
      if (old >= 0) f.putPageAndType(old);
      return 0;
    }
    case MMUEXT_TLB_FLUSH_LOCAL:
      if (currd !== pgOwner) return -EPERM;
      ctx.flushLocal(v);
      return 0;
    case MMUEXT_INVLPG_LOCAL: {
      if (currd !== pgOwner) return -EPERM;
      const va = op.arg1?.linear_addr;
      if (typeof va === "number" && addrOk(va)) ctx.flushOne(v, va);
      return 0;
    }
    case MMUEXT_TLB_FLUSH_MULTI:
    case MMUEXT_INVLPG_MULTI: {
      if (currd !== pgOwner) return -EPERM;
      const targets = vcpusOf(currd, op.arg2?.vcpumask);
      if (targets === undefined) return -EINVAL;
      const va = op.arg1?.linear_addr;
      for (const t of targets) {
        if (op.cmd === MMUEXT_TLB_FLUSH_MULTI) ctx.flushLocal(t);
        else if (typeof va === "number" && addrOk(va)) ctx.flushOne(t, va);
        else continue;
        if (t !== v) ctx.counters.remoteFlushes.value++;
      }
      return 0;
    }
    case MMUEXT_TLB_FLUSH_ALL:
      if (currd !== pgOwner) return -EPERM;
      ctx.flushDomain(currd.domid);
      ctx.counters.remoteFlushes.value += currd.vcpus.length - 1;
      return 0;
    case MMUEXT_INVLPG_ALL: {
      if (currd !== pgOwner) return -EPERM;
      const va = op.arg1?.linear_addr;
      if (typeof va === "number" && addrOk(va)) {
        for (const t of currd.vcpus) ctx.flushOne(t, va);
        ctx.counters.remoteFlushes.value += currd.vcpus.length - 1;
      }
      return 0;
    }
    case MMUEXT_FLUSH_CACHE:
      if (currd !== pgOwner) return -EPERM;
      return currd.isPrivileged ? 0 : -EACCES;
    case MMUEXT_FLUSH_CACHE_GLOBAL:
      if (currd !== pgOwner) return -EPERM;
      return currd.isPrivileged ? 0 : -EINVAL;
    case MMUEXT_SET_LDT: {
      // Xen 4.17's checks, in its order: the caller's own domain, then nr_ents <= 8192 and,
      // for a non-empty LDT, a page-aligned base that __addr_ok accepts (below 2^47 or above
      // the hypervisor's hole). Only the base is checked: an LDT running past the guest area
      // faults when a selector reaches it (pv_map_ldt_shadow_page), as in Xen. With no entries
      // the base is ignored (Xen stores ZERO_BLOCK_PTR; reported as 0 here).
      if (currd !== pgOwner) return -EPERM;
      const ents = op.arg2?.nr_ents;
      const ptr = op.arg1?.linear_addr;
      if (typeof ents !== "number" || ents >>> 0 !== ents) return -EINVAL;
      if (ents > MAX_LDT_ENTS) return -EINVAL;
      if (ents !== 0 && (typeof ptr !== "number" || ptr % 4096 !== 0 || !addrOk(ptr)))
        return -EINVAL;
      const s = ctx.pvVcpu(v);
      const base = ents === 0 ? 0 : (ptr as number);
      if (s.ldtEnts !== ents || s.ldtBase !== base) {
        // pv_destroy_ldt flushes only when it dropped LDT shadow mappings; this model maps
        // none (no LDT selector is ever loaded through them), so nothing is flushed.
        s.ldtBase = base;
        s.ldtEnts = ents;
        s.ldtLoads++;
      }
      return 0;
    }
    case MMUEXT_CLEAR_PAGE: {
      if (!f.getPage(mfn, pgOwner.domid)) return -EINVAL;
      if (ctx.pt.getPageType(mfn, PGT_writable_page) !== 0) {
        f.putPage(mfn);
        return -EINVAL;
      }
      ctx.ram.clearFrame(mfn);
      f.putPageAndType(mfn);
      return 0;
    }
    case MMUEXT_COPY_PAGE: {
      const srcArg = op.arg2?.src_mfn;
      const src =
        typeof srcArg === "number" && Number.isSafeInteger(srcArg) && srcArg >= 0 ? srcArg : -1;
      if (!f.getPage(src, pgOwner.domid)) return -EINVAL;
      if (!f.getPage(mfn, pgOwner.domid)) {
        f.putPage(src);
        return -EINVAL;
      }
      if (ctx.pt.getPageType(mfn, PGT_writable_page) !== 0) {
        f.putPage(src);
        f.putPage(mfn);
        return -EINVAL;
      }
      ctx.ram.copyFrame(mfn, src);
      f.putPageAndType(mfn);
      f.putPage(src);
      return 0;
    }
    case MMUEXT_MARK_SUPER:
    case MMUEXT_UNMARK_SUPER:
      return -EOPNOTSUPP;
    default:
      return -ENOSYS;
  }
}

/** get_page_and_type_from_mfn(mfn, PGT_root_page_table, d). */
function getL4(ctx: PvMmuContext, mfn: number, d: Domain): number {
  if (!ctx.frames.getPage(mfn, d.domid)) return -EINVAL;
  const rc = ctx.frames.getPageType(mfn, PGT_l4_page_table);
  if (rc !== 0) ctx.frames.putPage(mfn);
  return rc;
}

/** Xen's new_guest_cr3 for a 64-bit PV vCPU. */
export function newGuestCr3(ctx: PvMmuContext, v: Vcpu, mfn: number): number {
  const d = v.domain;
  const old = v.cr3Mfn;
  if (old === mfn && mfn >= 0) {
    ctx.flushLocal(v);
    return 0;
  }
  const rc = getL4(ctx, mfn, d);
  if (rc !== 0) return rc;
  // The LDT's shadow mappings go with the old tables (pv_destroy_ldt); flushed below.
  if (!d.vmAssist.has(VMASST_TYPE_m2p_strict)) ctx.pt.fillRoMpt(mfn);
  v.cr3Mfn = mfn;
  ctx.flushLocal(v);
  if (old >= 0) ctx.frames.putPageAndType(old);
  return 0;
}
