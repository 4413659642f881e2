/*
 * The x86 access-rights check (Intel SDM vol. 3, §4.6 "access rights", §4.7 "page-fault
 * exceptions"): what a set of rights allows, for the walker and for every TLB hit of every
 * MMU backend. There is one copy of it, here, so that a TLB hit and a walk cannot disagree.
 *
 * Invariants: a user access needs US; a write needs RW when it is a user write or CR0.WP is
 * set; an instruction fetch needs XD clear (PERM_NX is only ever set with EFER.NXE, by the
 * walker); a TLB entry serves a write only when its leaf is already dirty, otherwise the
 * CPU walks again to set D. Nothing here allocates.
 */
import type { PagingMode } from "./entry";

/** Page-fault error code bits (SDM §4.7; Xen's PFEC_* in asm-x86/processor.h). */
export const PFEC_page_present = 0x01;
export const PFEC_write_access = 0x02;
export const PFEC_user_mode = 0x04;
export const PFEC_reserved_bit = 0x08;
export const PFEC_insn_fetch = 0x10;

/** Access kinds for `walk`: the same bits as the error code, OR them together. */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = PFEC_write_access;
export const ACCESS_USER = PFEC_user_mode;
export const ACCESS_FETCH = PFEC_insn_fetch;

/** Effective permissions of a translation (WalkResult.perms, TLB entries). */
export const PERM_RW = 0x02;
export const PERM_USER = 0x04;
export const PERM_NX = 0x08;
/** The leaf's D flag is set (a TLB entry without it must walk again on a write). */
export const PERM_DIRTY = 0x40;
/** The leaf's G flag is set. */
export const PERM_GLOBAL = 0x100;

/** checkAccess's answer for a write through a translation whose leaf is not yet dirty. */
export const ACCESS_NEEDS_WALK = -1;

/**
 * Whether rights `perms` (PERM_* bits accumulated over a walk, or cached in a TLB entry)
 * forbid `access` (ACCESS_* bits) under `mode` (CR0.WP): the protection check of §4.6.
 */
export function accessDenied(perms: number, access: number, mode: PagingMode): boolean {
  if ((access & ACCESS_USER) !== 0) {
    if ((perms & PERM_USER) === 0) return true;
    if ((access & ACCESS_WRITE) !== 0 && (perms & PERM_RW) === 0) return true;
  } else if ((access & ACCESS_WRITE) !== 0 && (perms & PERM_RW) === 0 && mode.wp) {
    return true;
  }
  return (access & ACCESS_FETCH) !== 0 && (perms & PERM_NX) !== 0;
}

/**
 * Whether a TLB entry with rights `perms` serves `access` without a walk: the access is
 * allowed and, for a write, the leaf is already dirty. Every MMU backend's TLB-hit path asks
 * this and walks when it answers false (the walk then faults or sets D).
 */
export function tlbGrants(perms: number, access: number, mode: PagingMode): boolean {
  // accessDenied's rule, flat (no call) so that it inlines into every backend's hit path.
  if ((access & ACCESS_WRITE) !== 0) {
    if ((perms & PERM_DIRTY) === 0) return false;
    if ((perms & PERM_RW) === 0 && ((access & ACCESS_USER) !== 0 || mode.wp)) return false;
  }
  if ((access & ACCESS_USER) !== 0 && (perms & PERM_USER) === 0) return false;
  return (access & ACCESS_FETCH) === 0 || (perms & PERM_NX) === 0;
}

/** The error-code bits of `access` a #PF reports (I/D only with EFER.NXE; SMEP is not modelled). */
export function faultCode(access: number, mode: PagingMode): number {
  return access & (mode.nxe ? 0x16 : 0x06);
}

/**
 * What the CPU does with cached rights (a TLB hit's `hitPerms`, or WalkResult.perms) for
 * `access` under `mode`: 0 when the access may proceed; ACCESS_NEEDS_WALK for an allowed
 * write whose leaf is not dirty (walk again so the walk sets D, as hardware does); otherwise
 * the #PF error code of the protection fault (PFEC_page_present set). Allocates nothing.
 */
export function checkAccess(perms: number, access: number, mode: PagingMode): number {
  if (accessDenied(perms, access, mode)) return faultCode(access, mode) | PFEC_page_present;
  if ((access & ACCESS_WRITE) !== 0 && (perms & PERM_DIRTY) === 0) return ACCESS_NEEDS_WALK;
  return 0;
}
