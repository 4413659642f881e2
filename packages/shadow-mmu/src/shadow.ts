/*
 * Shadow paging as KVM's shadow MMU does it (arch/x86/kvm/mmu/mmu.c, paging_tmpl.h): the
 * guest writes its own page tables in its memory; the host keeps shadow tables, in host
 * frames, that map guest virtual addresses straight to machine frames, and the hardware walks
 * only those. A guest frame that some shadow page shadows is write-protected, so every guest
 * store to it traps and is propagated.
 *
 * Guest-physical memory: a guest frame number is the number of a machine frame its domain
 * owns (as the native baseline sees memory), so a guest entry's frame is the shadow entry's
 * frame. A frame the domain does not own is never mapped: the access faults to the guest.
 *
 * Invariants:
 * - A shadow page is keyed by (domain, guest frame, level, direct, access), as KVM's role;
 *   direct pages shadow the inside of a guest large page and protect nothing.
 * - A guest frame with a non-direct shadow page (wpCount > 0) is mapped read-only by every
 *   shadow leaf: writable leaves are listed in the frame's rmap and lose RW when it becomes
 *   protected. Hence every change to a shadowed guest entry goes through the host (guestStore
 *   emulates it and zaps the shadow entries of that slot; translate for a write unprotects
 *   the frame by zapping its shadow pages), and a present shadow entry always agrees with
 *   the guest entries on its path, except in an out-of-sync page (below).
 * - Out of sync (KVM's unsync shadow pages): a guest frame whose shadow pages are all level-1
 *   pages may go unsync on the first write fault; its pages are then all unsync (wpCount 0,
 *   listed in unsyncPages) and the guest writes the table without exits. Its shadow entries
 *   may be stale, as a TLB may be, until the guest flushes: a CR3 load syncs every unsync
 *   page of the domain and write-protects its frame again; INVLPG syncs the one entry. A
 *   frame's non-direct shadow pages are either all in sync or all unsync.
 * - Write flooding: an emulated store to a shadow page above level 1 counts against it; a
 *   page written FLOOD_WRITES times without a fault walking through it is zapped.
 * - A shadow leaf is writable only if the guest leaf is dirty (the host sets D on the first
 *   write, as the hardware would), the guest path allows writes, and the frame is not
 *   protected.
 * - Every shadow entry that points at a shadow page is listed among that page's parents, so
 *   zapping a page unlinks it everywhere; a vCPU whose root is zapped reloads it.
 * - Any zap or protection change of a present shadow entry flushes the TLBs of the domain's
 *   vCPUs. Guest-controlled input never throws; the hit path allocates nothing.
 */
import { DOMID_XEN, EFAULT, EINVAL } from "@hyperlab/abi";
import {
  type Domain,
  type Hypervisor,
  type MmuBackend,
  type MmuFault,
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_reserved_bit,
  PFEC_user_mode,
  PFEC_write_access,
  type Vcpu,
} from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import {
  ACCESS_FETCH,
  ACCESS_USER,
  ACCESS_WRITE,
  CpuTlbs,
  PAGING_4LEVEL,
  PERM_DIRTY,
  PERM_NX,
  PERM_RW,
  PERM_USER,
  pteReserved,
  STEP_LEAF,
  STEP_TABLE,
  type Tlb,
  type TlbConfig,
  tlbGrants,
  WalkResult,
  walk,
  walkBegin,
  walkFinish,
  walkStep,
} from "@hyperlab/paging";
import { shadowMmuError } from "./errors";
import {
  EXIT_REASON_CR_ACCESS,
  EXIT_REASON_EXCEPTION_NMI,
  EXIT_REASON_INVLPG,
  VMX_EXIT_REASONS_MAX,
} from "./vmx";

const _PAGE_PRESENT = 0x1;
const _PAGE_RW = 0x2;
const _PAGE_USER = 0x4;
const _PAGE_ACCESSED = 0x20;
const _PAGE_DIRTY = 0x40;
const _PAGE_GLOBAL = 0x100;
const _PAGE_NX_HI = 0x8000_0000 | 0;
const ADDR_HI_MASK = 0x000f_ffff;
const TWO_20 = 0x10_0000;
const ACCESS_MASK = PFEC_write_access | PFEC_user_mode | PFEC_insn_fetch;
const LEVELS = 4;
const VA_LIMIT = 2 ** 48;
/**
 * 1 / 4096: Math.floor(va * PAGE_SCALE) is va's page number, exact and cheaper than a division.
 * translate and walkShadow write it (and VA_LIMIT) as literals: V8 loads and checks a
 * module constant at every use in optimised code, a literal folds.
 */
const PAGE_SCALE = 2 ** -12;
const POW = [1, 512, 512 ** 2, 512 ** 3, 512 ** 4];
/**
 * paging's tlbGrants(perms, access, PAGING_4LEVEL), the rights check of every TLB hit, for
 * every combination of the bits it reads, at index grantIndex(perms, access): filled by
 * calling tlbGrants itself, so it is that rule and cannot disagree with it. translate reads
 * it instead of calling tlbGrants: inlined, tlbGrants loads and checks each of paging's
 * constants it names (module bindings, not literals, in V8's optimised code) on every hit.
 */
const GRANT_PERMS = PERM_RW | PERM_USER | PERM_NX | PERM_DIRTY;
const GRANT_ACCESS = ACCESS_WRITE | ACCESS_USER | ACCESS_FETCH;
if (GRANT_PERMS !== 0x4e || GRANT_ACCESS !== 0x16) {
  throw new Error("paging's PERM_* or ACCESS_* bits changed; update translate's grant index");
}
/** The index of TLB_GRANTS for `perms` and `access` (translate writes it with literals). */
export const grantIndex = (perms: number, access: number): number =>
  ((perms & GRANT_PERMS) << 4) | (access & GRANT_ACCESS);
/** 1 where tlbGrants answers true. Exported for its test only (index.ts does not). */
export const TLB_GRANTS = new Uint8Array(grantIndex(GRANT_PERMS, GRANT_ACCESS) + 1);
for (let perms = 0; perms <= GRANT_PERMS; perms++) {
  if ((perms & ~GRANT_PERMS) !== 0) continue;
  for (let access = 0; access <= GRANT_ACCESS; access++) {
    if ((access & ~GRANT_ACCESS) !== 0) continue;
    TLB_GRANTS[grantIndex(perms, access)] = tlbGrants(perms, access, PAGING_4LEVEL) ? 1 : 0;
  }
}

/** A shadow entry that links a shadow table: present, writable, user, accessed. */
const SPTE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED;

// Role bits of a shadow page (spRole): level in bits 0..2, direct bit 3, access bits 4..6.
const ROLE_VALID = 0x80;
const ROLE_DIRECT = 0x8;
const ACC_W = 1;
const ACC_U = 2;
const ACC_NX = 4;
/** Emulated writes without use after which a shadow page is zapped (KVM's detect_write_flooding). */
export const FLOOD_WRITES = 3;

export interface ShadowMmuOptions {
  /**
   * Each vCPU's TLB and page-walk caches over the shadow tables, as @hyperlab/paging's
   * TlbConfig (default: paging's Skylake-like TLB), or false for none.
   */
  tlb?: TlbConfig | false;
  /**
   * Most shadow pages per domain; past it the host zaps all of the domain's shadow pages
   * and starts again (KVM's kvm_mmu_zap_all under memory pressure). Default 16384.
   */
  maxShadowPages?: number;
  /**
   * Let level-1 shadow pages go out of sync on a write fault and resync them at CR3 loads
   * and INVLPG, as KVM does (default true). With false every store to a shadowed table
   * traps and is emulated.
   */
  outOfSync?: boolean;
  /**
   * Zap a shadow page above level 1 after FLOOD_WRITES emulated writes without use, as
   * KVM's detect_write_flooding (default true).
   */
  writeFlooding?: boolean;
}

/** A fault reported by translate. */
export interface ShadowFault extends MmuFault {
  /** The VM exit that led to the fault (EXIT_REASON_*), or -1 when none did. */
  exitReason: number;
  /**
   * True when a write hit a page table that the current address space needs (a table
   * mapping itself): the guest must make that store with guestStore, which the host
   * emulates.
   */
  emulate: boolean;
}

/** Event counts of a shadow-paging MMU. Counts are facts; they never reset by themselves. */
export interface ShadowCounts {
  tlbHits: number;
  tlbMisses: number;
  /** Hardware walks of the shadow tables (a retry after a fixed fault counts again). */
  walks: number;
  /** Shadow entries read by hardware walks. */
  shadowRefs: number;
  /** Guest entries read by the host's software walks of the guest tables. */
  hostGuestRefs: number;
  /** Shadow page faults the host fixed by filling shadow entries. */
  shadowFaultsFixed: number;
  /** Page faults injected into the guest (its own faults). */
  injectedFaults: number;
  /** Guest stores to write-protected page tables, trapped and emulated. */
  emulatedWrites: number;
  /** Guest stores through guestStore to frames that were not write-protected. */
  plainStores: number;
  /** Guest frames whose level-1 shadow pages went out of sync on a write fault. */
  unsyncs: number;
  /** Out-of-sync shadow pages brought back in sync (CR3 loads, reuse), frame re-protected. */
  syncs: number;
  /** Shadow entries dropped by a sync because the guest entry had changed. */
  syncDropped: number;
  /** Shadow pages zapped because they were written FLOOD_WRITES times without use. */
  floodZaps: number;
  /** Present shadow entries zapped because the guest entry they shadow changed. */
  sptesZapped: number;
  shadowPagesCreated: number;
  shadowPagesZapped: number;
  /** Shadow pages that exist now. */
  shadowPages: number;
  /** Guest frames that became write-protected. */
  writeProtects: number;
  /** Guest frames unprotected because the guest wrote them as data. */
  unprotects: number;
  /** Roots (re)loaded for a vCPU. */
  rootLoads: number;
  /** Guest CR3 writes (each a CR_ACCESS exit). */
  cr3Writes: number;
  invlpg: number;
  /** TLB flushes of a whole vCPU (CR3 writes, zaps). */
  tlbFlushes: number;
  /** Accesses to frames the domain does not own. */
  unbackedAccesses: number;
  /** Times a domain reached maxShadowPages and lost all its shadow pages. */
  shadowResets: number;
  /** Host frames a shadow page needed and the machine did not have. */
  allocFailures: number;
}

function newCounts(): ShadowCounts {
  return {
    tlbHits: 0,
    tlbMisses: 0,
    walks: 0,
    shadowRefs: 0,
    hostGuestRefs: 0,
    shadowFaultsFixed: 0,
    injectedFaults: 0,
    emulatedWrites: 0,
    plainStores: 0,
    unsyncs: 0,
    syncs: 0,
    syncDropped: 0,
    floodZaps: 0,
    sptesZapped: 0,
    shadowPagesCreated: 0,
    shadowPagesZapped: 0,
    shadowPages: 0,
    writeProtects: 0,
    unprotects: 0,
    rootLoads: 0,
    cr3Writes: 0,
    invlpg: 0,
    tlbFlushes: 0,
    unbackedAccesses: 0,
    shadowResets: 0,
    allocFailures: 0,
  };
}

/** The frame an entry points at. */
function entryFrame(lo: number, hi: number): number {
  return (hi & ADDR_HI_MASK) * TWO_20 + (lo >>> 12);
}

/**
 * Whether a level-1 shadow entry (slo, shi) still agrees with the guest entry (glo, ghi) it
 * shadows, under the access bits `acc` of the upper levels (the page's role): the guest
 * entry is present, accessed, free of reserved bits, names the same frame with the same
 * user, NX and global bits, and allows a write wherever the shadow does (and is dirty).
 */
function spteAgrees(slo: number, shi: number, glo: number, ghi: number, acc: number): boolean {
  if ((glo & (_PAGE_PRESENT | _PAGE_ACCESSED)) !== (_PAGE_PRESENT | _PAGE_ACCESSED)) return false;
  if (pteReserved(glo, ghi, 1, PAGING_4LEVEL)) return false;
  if (entryFrame(glo, ghi) !== entryFrame(slo, shi)) return false;
  const user = (acc & ACC_U) !== 0 && (glo & _PAGE_USER) !== 0;
  if (((slo & _PAGE_USER) !== 0) !== user) return false;
  const nx = (acc & ACC_NX) !== 0 || (ghi & _PAGE_NX_HI) !== 0;
  if (((shi & _PAGE_NX_HI) !== 0) !== nx) return false;
  if ((slo & _PAGE_GLOBAL) !== (glo & _PAGE_GLOBAL)) return false;
  const gw = (acc & ACC_W) !== 0 && (glo & (_PAGE_RW | _PAGE_DIRTY)) === (_PAGE_RW | _PAGE_DIRTY);
  return (slo & _PAGE_RW) === 0 || gw;
}

/** The shadow-paging MMU backend: fills core's `mmu` slot. */
export class ShadowMmu implements MmuBackend {
  readonly kind = "shadow";
  readonly fault: ShadowFault = { errorCode: 0, va: 0, exitReason: -1, emulate: false };
  readonly counts: ShadowCounts = newCounts();
  /** VM exits by basic exit reason (index EXIT_REASON_*). */
  readonly exits = new Float64Array(VMX_EXIT_REASONS_MAX);
  // Fields the constructor sets are `declare`d: a plain declaration (ES2022 class fields)
  // first defines them as undefined, and V8 then checks their maps on every read.
  declare readonly maxShadowPages: number;
  declare readonly outOfSync: boolean;
  declare readonly writeFlooding: boolean;

  declare private readonly hv: Hypervisor;
  declare private readonly ram: Ram;
  /** The frame table's owner keys (core's ownerKey: ~domid; compare with ~dom). */
  declare private readonly ownerKeys: Int32Array;
  declare private readonly tlbs: CpuTlbs;
  /** TLB_GRANTS, in a field: a module binding is loaded and checked at every use. */
  declare private readonly grants: Uint8Array;
  private readonly out = new WalkResult();
  /**
   * Told the machine address of every paging-structure entry a hardware walk reads, in the
   * order read (for a data-cache model such as the study's); null for none.
   */
  walkRefSink: ((maddr: number) => void) | null = null;
  private readonly gout = new WalkResult();

  // Per shadow frame (indexed by mfn).
  declare private readonly spGfn: Float64Array;
  declare private readonly spRole: Uint8Array;
  declare private readonly spDom: Int32Array;
  /** 1 while the shadow page is out of sync. */
  declare private readonly spUnsync: Uint8Array;
  /** Emulated writes since a fault last walked through the shadow page. */
  declare private readonly spFlood: Uint8Array;
  /** Per domain: its out-of-sync shadow pages. */
  private readonly unsyncPages = new Map<number, Set<number>>();
  /** Per guest frame: in-sync non-direct shadow pages of it. */
  declare private readonly wpCount: Uint32Array;
  private readonly parents = new Map<number, number[]>();
  private readonly hash = new Map<number, Map<number, number>>();
  private readonly byGfn = new Map<number, number[]>();
  private readonly rmap = new Map<number, number[]>();

  // Per vCPU (indexed by uid), grown as vCPUs appear.
  private cap = 0;
  private guestCr3 = new Float64Array(0);
  private root = new Int32Array(0);

  // Outputs of the host's guest walk.
  private readonly wTable = new Float64Array(LEVELS + 1);
  private readonly wAcc = new Uint8Array(LEVELS + 1);
  private wLeaf = 0;
  private wLeafLo = 0;
  private wPageGfn = 0;
  private lastLeafRw = false;
  /** Guest-physical address of the last write that needs emulation (fault.emulate). */
  private emulateGpa = -1;
  /**
   * translate's VA for its slow paths, and their result (see translate). Not small integers
   * at first, so V8 gives both fields a double representation and stores into them without
   * allocating.
   */
  private argVa = Number.NaN;
  private retMa = Number.NaN;

  constructor(hv: Hypervisor, options: ShadowMmuOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw shadowMmuError(
        "SHADOW_BAD_OPTION",
        "shadowMmu takes an options object, e.g. shadowMmu({ tlbEntries: 64 }).",
      );
    }
    const prng = hv.machine.prng.fork("shadow-mmu");
    const tlbs = CpuTlbs.fromOption(options.tlb, () => prng.nextU32());
    if (tlbs === undefined) {
      throw shadowMmuError(
        "SHADOW_BAD_OPTION",
        `shadowMmu option tlb must be a TlbConfig from @hyperlab/paging or false, got ${String(options.tlb)}.`,
      );
    }
    this.tlbs = tlbs;
    this.translate = tlbs.config === null ? this.translateNoTlb : this.translateTlb;
    this.grants = TLB_GRANTS;
    const max = options.maxShadowPages ?? 16384;
    if (!Number.isInteger(max) || max < 8) {
      throw shadowMmuError(
        "SHADOW_BAD_OPTION",
        `shadowMmu option maxShadowPages must be a whole number >= 8, got ${options.maxShadowPages}.`,
      );
    }
    this.maxShadowPages = max;
    for (const k of ["outOfSync", "writeFlooding"] as const) {
      if (options[k] !== undefined && typeof options[k] !== "boolean") {
        throw shadowMmuError(
          "SHADOW_BAD_OPTION",
          `shadowMmu option ${k} must be true or false, got ${String(options[k])}.`,
        );
      }
    }
    this.outOfSync = options.outOfSync ?? true;
    this.writeFlooding = options.writeFlooding ?? true;
    this.hv = hv;
    this.ram = hv.machine.ram;
    this.ownerKeys = hv.frames.ownerKeys;
    const n = this.ram.nrFrames;
    this.spGfn = new Float64Array(n);
    this.spRole = new Uint8Array(n);
    this.spDom = new Int32Array(n);
    this.spUnsync = new Uint8Array(n);
    this.spFlood = new Uint8Array(n);
    this.wpCount = new Uint32Array(n);
  }

  /** Count of VM exits with one basic reason (EXIT_REASON_*). */
  exitCount(reason: number): number {
    return this.exits[reason] ?? 0;
  }

  /** The vCPU's TLB (paging's Tlb, its page-walk caches over the shadow tables), or null without one. */
  tlbOf(vcpu: Vcpu): Tlb | null {
    return this.tlbs.of(vcpu.uid);
  }

  // ---------------------------------------------------------------------------------------
  // Translation

  /**
   * The guest's translation of `va` for `access`: the machine address, or -1 after a fault
   * (in `fault`). One of two methods, chosen once by the constructor, in an own field: with
   * TLBs translateTlb, for { tlb: false } translateNoTlb. Each is small enough for V8 to
   * inline into the caller's loop with what it inlines itself: translateTlb the TLB hit
   * (paging's lookup and find), translateNoTlb the shadow walk (paging's walk wrapper, down
   * to the call of walkVa). In one method the walk's inlined bytecode would leave the hit
   * out of the caller's inlining budget (h54, h70 and h80 in docs/decisions.md: the hit
   * then fell by a third), and the walk paid a call layer (walkShadow) of its own.
   */
  declare readonly translate: (vcpu: Vcpu, va: number, access: number) => number;

  /**
   * translate with TLBs: the TLB hit, kept small enough for V8 to inline into the caller's
   * loop: a known vCPU, an unchanged CR3 and a TLB that grants the access. A miss walks the
   * shadow tables (walkShadow); a new vCPU, a CR3 write or a TLB not made yet goes through
   * translateSlow first. The slow paths take the VA and give the address back through the
   * number fields argVa and retMa, not as an argument and a return value: a call's number
   * argument and result are boxed heap numbers when they are not small integers, and V8
   * would box the VA before the hit/miss branch (and the result after the merge), one
   * allocation per hit.
   */
  private translateTlb(vcpu: Vcpu, va: number, access: number): number {
    const uid = vcpu.uid;
    if (uid < this.cap && vcpu.cr3Mfn === this.guestCr3[uid]) {
      const tlb = this.tlbs.byCpu[uid];
      if (tlb !== undefined) {
        // The TLB's rights check (tlbGrants) as a table read: grantIndex written out.
        if (
          tlb.lookup(va, 0) === true &&
          this.grants[((tlb.hitPerms & 0x4e) << 4) | (access & 0x16)] !== 0
        ) {
          this.counts.tlbHits++;
          return tlb.hitMfn * 4096 + (va - Math.floor(va * 2 ** -12) * 4096);
        }
        this.argVa = va;
        this.walkShadow(vcpu, access, tlb, false);
        return this.retMa;
      }
    }
    this.argVa = va;
    this.translateSlow(vcpu, access);
    return this.retMa;
  }

  /**
   * translate without TLBs ({ tlb: false }): every translation is a walk of the shadow
   * tables. The usual one (a known vCPU, an unchanged CR3, its shadow root loaded, a
   * canonical VA, no walkRefSink) is walkShadow's first attempt written out here, the same
   * counters and fault fields in the same order, so that V8 inlines it into the caller's
   * loop down to paging's walkVa; a walk that fails goes on in walkShadow (told the first
   * walk is done), anything else goes to walkShadow or translateSlow before any of it.
   */
  private translateNoTlb(vcpu: Vcpu, va: number, access: number): number {
    const uid = vcpu.uid;
    if (uid < this.cap && vcpu.cr3Mfn === this.guestCr3[uid]) {
      const root = this.root[uid];
      // walkShadow's range check without its third term (the page number's address is at
      // most the VA), which holds for every VA that passes these two.
      if (root >= 0 && va >= 0 && va < 2 ** 48 && this.walkRefSink === null) {
        const c = this.counts;
        c.tlbMisses++;
        const fault = this.fault;
        fault.exitReason = -1;
        fault.emulate = false;
        c.walks++;
        const out = this.out;
        const ok = walk(this.ram, root, va, access & ACCESS_MASK, PAGING_4LEVEL, out, null, 0);
        c.shadowRefs += out.reads;
        if (ok === true) return out.maddr;
        this.argVa = va;
        this.walkShadow(vcpu, access, null, true);
        return this.retMa;
      }
      this.argVa = va;
      this.walkShadow(vcpu, access, null, false);
      return this.retMa;
    }
    this.argVa = va;
    this.translateSlow(vcpu, access);
    return this.retMa;
  }

  /**
   * translate for a vCPU seen first, after a CR3 change or before its TLB is made (with or
   * without TLBs): the VA in argVa, the result in retMa.
   */
  private translateSlow(vcpu: Vcpu, access: number): void {
    const va = this.argVa;
    const uid = vcpu.uid;
    if (uid >= this.cap) this.grow(uid);
    if (vcpu.cr3Mfn !== this.guestCr3[uid]) this.cr3Write(vcpu);
    const tlb = this.tlbs.byCpu[uid] ?? this.tlbs.of(uid);
    if (tlb?.lookup(va, 0) && tlbGrants(tlb.hitPerms, access, PAGING_4LEVEL)) {
      this.counts.tlbHits++;
      this.retMa = tlb.hitMfn * 4096 + (va - Math.floor(va * PAGE_SCALE) * 4096);
      return;
    }
    this.argVa = va;
    this.walkShadow(vcpu, access, tlb, false);
  }

  /**
   * A TLB miss (or a hit whose rights do not serve the access, or any translation without
   * TLBs), the VA in argVa, the result in retMa: the hardware walks the shadow tables; a
   * shadow page fault exits to the host, which fills the path and retries (up to four
   * walks). `walked`: translateNoTlb already made the first walk (its counters and fault
   * fields included) and it failed; this goes on from that walk's exit.
   *
   * Kept in one piece, too large for V8 to inline (over 460 bytes of bytecode): inlined into
   * translateTlb, it would use up the caller's inlining budget wherever misses are frequent,
   * and then paging's Tlb.lookup, the hit path, would be called instead. Moving the exit's
   * handling into a method of its own brings it under the limit: check
   * --trace-turbo-inlining after any change here.
   */
  private walkShadow(vcpu: Vcpu, access: number, tlb: Tlb | null, walked: boolean): void {
    const va = this.argVa;
    const uid = vcpu.uid;
    const c = this.counts;
    const vpn = Math.floor(va * 2 ** -12);
    const acc = access & ACCESS_MASK;
    if (!walked) {
      c.tlbMisses++;
      const fault = this.fault;
      fault.exitReason = -1;
      fault.emulate = false;
      if (!(va >= 0 && va < 2 ** 48 && vpn * 4096 <= va)) {
        this.retMa = this.inject(va, acc);
        return;
      }
    }
    const out = this.out;
    const pwc = tlb === null ? null : tlb.pwc;
    for (let attempt = 0; attempt < 4; attempt++) {
      if (walked) {
        walked = false;
      } else {
        let root = this.root[uid];
        if (root < 0) {
          root = this.loadRoot(vcpu);
          if (root < 0) {
            this.retMa = this.inject(va, acc);
            return;
          }
        }
        // The hardware walks the shadow tables (paging's walker, through the vCPU's PWC).
        c.walks++;
        const ok = walk(this.ram, root, va, acc, PAGING_4LEVEL, out, pwc, 0);
        c.shadowRefs += out.reads;
        const sink = this.walkRefSink;
        if (sink !== null) {
          const top = out.pwcLevel > 0 ? out.pwcLevel - 1 : LEVELS;
          for (let i = 0; i < out.reads; i++) sink(out.entryMaddr[top - i]);
        }
        if (ok === true) {
          if (tlb !== null) tlb.insertWalk(out, 0);
          this.retMa = out.maddr;
          return;
        }
      }
      // The shadow said no: a #PF exit, and the host decides.
      this.exits[EXIT_REASON_EXCEPTION_NMI]++;
      if (this.hv.tracing) {
        this.hv.trace({
          kind: "vmexit",
          domid: vcpu.domain.domid,
          reason: EXIT_REASON_EXCEPTION_NMI,
          va,
        });
      }
      if (this.shadowPageFault(vcpu, va, vpn, access) < 0) {
        this.retMa = -1;
        return;
      }
    }
    this.retMa = this.inject(va, acc);
  }

  /** A page fault for the guest: its error code and address (the VM exit, if any, is in fault.exitReason). */
  private inject(va: number, errorCode: number): number {
    this.fault.va = va;
    this.fault.errorCode = errorCode;
    this.counts.injectedFaults++;
    return -1;
  }

  /**
   * The host's #PF handler (KVM's FNAME(page_fault)): walks the guest tables; a guest fault
   * is injected; otherwise the shadow path is filled. Returns 0 to retry, -1 after a fault.
   */
  private shadowPageFault(vcpu: Vcpu, va: number, vpn: number, access: number): number {
    const acc = access & ACCESS_MASK;
    const d = vcpu.domain;
    const dom = d.domid;
    const uid = vcpu.uid;
    this.fault.exitReason = EXIT_REASON_EXCEPTION_NMI;
    const g = this.guestWalk(dom, this.guestCr3[uid], va, vpn, access);
    if (g !== 0) return this.inject(va, g === -1 ? acc : g);
    const pageGfn = this.wPageGfn;
    // The compare first; populate on demand (a PoD block of the domain) only when it misses.
    if (
      !(
        pageGfn < this.ram.nrFrames &&
        (this.ownerKeys[pageGfn] === ~dom || this.hv.frames.populateFor(pageGfn, dom))
      )
    ) {
      this.counts.unbackedAccesses++;
      return this.inject(va, PFEC_page_present | PFEC_reserved_bit | acc);
    }
    if ((this.hash.get(dom)?.size ?? 0) + LEVELS + 1 > this.maxShadowPages) {
      this.counts.shadowResets++;
      this.zapAll(dom);
    }
    const write = (access & PFEC_write_access) !== 0;
    if (write && this.wpCount[pageGfn] > 0 && !this.tryUnsync(pageGfn, dom)) {
      // The guest writes a frame it once used as a page table: stop shadowing it.
      this.counts.unprotects++;
      this.unprotect(pageGfn);
    }
    if (this.root[uid] < 0 && this.loadRoot(vcpu) < 0) {
      return this.inject(va, PFEC_page_present | PFEC_reserved_bit | acc);
    }
    if (!this.fetch(this.root[uid], dom, vpn, write)) {
      return this.inject(va, PFEC_page_present | PFEC_reserved_bit | acc);
    }
    if (write && !this.lastLeafRw) {
      // The page is a table the current address space needs: only emulation can write it.
      this.fault.emulate = true;
      this.emulateGpa = pageGfn * 4096 + (va - vpn * 4096);
      return this.inject(va, PFEC_page_present | acc);
    }
    this.counts.shadowFaultsFixed++;
    return 0;
  }

  /**
   * Walks the guest's tables in software (gfn = mfn the domain owns) with paging's walkStep,
   * refusing any table frame the domain does not own. Returns 0 with the walk's outputs set,
   * -1 for a not-present fault, or the error code of any other fault. On success walkFinish
   * sets A on every guest entry used and D on the leaf of a write, as the hardware would.
   */
  private guestWalk(dom: number, cr3: number, va: number, vpn: number, access: number): number {
    const ram = this.ram;
    const acc = access & ACCESS_MASK;
    const out = this.gout;
    const keys = this.ownerKeys;
    const key = ~dom;
    let table = cr3;
    let level = LEVELS;
    walkBegin(out, va, acc, level, PERM_RW | PERM_USER);
    for (;;) {
      if (
        !(
          table >= 0 &&
          table < ram.nrFrames &&
          (keys[table] === key || this.hv.frames.populateFor(table, dom))
        )
      ) {
        this.counts.hostGuestRefs += out.reads;
        this.counts.unbackedAccesses++;
        return PFEC_page_present | PFEC_reserved_bit | acc;
      }
      this.wTable[level] = table;
      const r = walkStep(
        ram,
        table,
        Math.floor(vpn / POW[level - 1]) % 512,
        level,
        PAGING_4LEVEL,
        out,
      );
      if (r === STEP_TABLE) {
        table = out.nextMfn;
        level--;
      } else if (r === STEP_LEAF) {
        break;
      } else {
        this.counts.hostGuestRefs += out.reads;
        return out.errorCode === acc ? -1 : out.errorCode;
      }
    }
    this.counts.hostGuestRefs += out.reads;
    if (!walkFinish(ram, PAGING_4LEVEL, out)) return out.errorCode;
    for (let L = LEVELS; L >= out.leafLevel; L--) {
      const pm = out.levelPerms[L];
      this.wAcc[L] =
        (pm & PERM_RW ? ACC_W : 0) | (pm & PERM_USER ? ACC_U : 0) | (pm & PERM_NX ? ACC_NX : 0);
    }
    this.wLeaf = out.leafLevel;
    this.wLeafLo = out.leafLo;
    this.wPageGfn = Math.floor(out.maddr / 4096);
    return 0;
  }

  /**
   * Fills the shadow path of vpn from `root` with the last guest walk's results (KVM's
   * FNAME(fetch)), creating shadow pages as needed. Returns false when a host frame was not
   * available.
   */
  private fetch(root: number, dom: number, vpn: number, write: boolean): boolean {
    const ram = this.ram;
    const pageGfn = this.wPageGfn;
    const leaf = this.wLeaf;
    let sp = root;
    for (let level = LEVELS; level >= 2; level--) {
      // The fault walked through this page: it is in use, not flooded.
      this.spFlood[sp] = 0;
      const a = sp * 4096 + (Math.floor(vpn / POW[level - 1]) % 512) * 8;
      const lo = ram.read64lo(a);
      if ((lo & _PAGE_PRESENT) !== 0) {
        sp = entryFrame(lo, ram.read64hi(a));
        continue;
      }
      let child: number;
      if (level > leaf) {
        child = this.getShadowPage(dom, this.wTable[level - 1], level - 1, false, this.wAcc[level]);
      } else {
        // Inside a guest large page: a direct shadow page for the covered range.
        const span = POW[level - 1];
        child = this.getShadowPage(
          dom,
          pageGfn - (pageGfn % span),
          level - 1,
          true,
          this.wAcc[leaf],
        );
      }
      if (child < 0) return false;
      ram.write64(a, ((child % TWO_20) * 4096 + SPTE_TABLE) >>> 0, Math.floor(child / TWO_20));
      this.addParent(child, a);
      sp = child;
    }
    this.spFlood[sp] = 0;
    const a = sp * 4096 + (vpn % 512) * 8;
    const acc = this.wAcc[leaf];
    const leafLo = this.wLeafLo;
    const rw =
      (acc & ACC_W) !== 0 && (write || (leafLo & _PAGE_DIRTY) !== 0) && this.wpCount[pageGfn] === 0;
    const lo =
      (pageGfn % TWO_20) * 4096 +
      (_PAGE_PRESENT |
        _PAGE_ACCESSED |
        (rw ? _PAGE_RW | _PAGE_DIRTY : 0) |
        (acc & ACC_U ? _PAGE_USER : 0) |
        (leafLo & _PAGE_GLOBAL));
    const hi = Math.floor(pageGfn / TWO_20) | (acc & ACC_NX ? _PAGE_NX_HI : 0);
    ram.write64(a, lo >>> 0, hi >>> 0);
    if (rw) this.rmapAdd(pageGfn, a);
    this.lastLeafRw = rw;
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Shadow pages

  private getShadowPage(
    dom: number,
    gfn: number,
    level: number,
    direct: boolean,
    acc: number,
  ): number {
    const role = ROLE_VALID | (acc << 4) | (direct ? ROLE_DIRECT : 0) | level;
    const key = gfn * 256 + role;
    let h = this.hash.get(dom);
    if (h === undefined) {
      h = new Map();
      this.hash.set(dom, h);
    }
    const found = h.get(key);
    if (found !== undefined) {
      // A stale page about to be linked again is synced first (KVM's kvm_sync_page on reuse).
      if (this.spUnsync[found] !== 0) this.syncPage(found);
      this.spFlood[found] = 0;
      return found;
    }
    if (!direct && this.wpCount[gfn] === 0 && this.byGfn.has(gfn)) {
      // The frame's pages are out of sync. A new level-1 page syncs them (a frame is all in
      // sync or all unsync); a table above level 1 zaps them, as KVM's get_shadow_page does.
      for (const old of [...(this.byGfn.get(gfn) ?? [])]) {
        if (level > 1) this.zapShadowPage(old);
        else this.syncPage(old);
      }
    }
    const sm = this.hv.frames.allocate(DOMID_XEN, 0);
    if (sm < 0) {
      this.counts.allocFailures++;
      return -1;
    }
    this.ram.clearFrame(sm);
    this.spGfn[sm] = gfn;
    this.spRole[sm] = role;
    this.spDom[sm] = dom;
    this.spUnsync[sm] = 0;
    this.spFlood[sm] = 0;
    h.set(key, sm);
    this.counts.shadowPagesCreated++;
    this.counts.shadowPages++;
    if (!direct) {
      let list = this.byGfn.get(gfn);
      if (list === undefined) {
        list = [];
        this.byGfn.set(gfn, list);
      }
      list.push(sm);
      if (this.wpCount[gfn]++ === 0) this.writeProtect(gfn, dom);
    }
    return sm;
  }

  /** The guest frame became a shadowed page table: every writable shadow leaf of it loses RW. */
  private writeProtect(gfn: number, dom: number): void {
    this.counts.writeProtects++;
    const list = this.rmap.get(gfn);
    if (list === undefined) return;
    this.rmap.delete(gfn);
    const ram = this.ram;
    let changed = false;
    for (const a of list) {
      const sm = Math.floor(a / 4096);
      if ((this.spRole[sm] & 7) !== 1) continue;
      const lo = ram.read64lo(a);
      if ((lo & _PAGE_PRESENT) === 0 || (lo & _PAGE_RW) === 0) continue;
      if (entryFrame(lo, ram.read64hi(a)) !== gfn) continue;
      ram.write32(a, (lo & ~_PAGE_RW) >>> 0);
      changed = true;
    }
    if (changed) this.flushDomain(dom);
  }

  private rmapAdd(gfn: number, a: number): void {
    let list = this.rmap.get(gfn);
    if (list === undefined) {
      list = [];
      this.rmap.set(gfn, list);
    }
    if (list.length > 64) {
      // Drop entries that no longer map this frame writable, to keep the list short.
      list = list.filter((x) => {
        const lo = this.ram.read64lo(x);
        return (
          (lo & (_PAGE_PRESENT | _PAGE_RW)) === (_PAGE_PRESENT | _PAGE_RW) &&
          entryFrame(lo, this.ram.read64hi(x)) === gfn
        );
      });
      this.rmap.set(gfn, list);
    }
    list.push(a);
  }

  private addParent(child: number, a: number): void {
    let list = this.parents.get(child);
    if (list === undefined) {
      list = [];
      this.parents.set(child, list);
    }
    list.push(a);
  }

  private removeParent(child: number, a: number): void {
    const list = this.parents.get(child);
    if (list === undefined) return;
    const i = list.indexOf(a);
    if (i >= 0) list.splice(i, 1);
  }

  /** Zaps every shadow page of a guest frame (KVM's kvm_mmu_unprotect_page). */
  private unprotect(gfn: number): void {
    const list = this.byGfn.get(gfn);
    if (list === undefined) return;
    for (const sm of [...list]) this.zapShadowPage(sm);
  }

  /** Removes a shadow page: unlinks its children and its parents, drops it as a root, frees it. */
  private zapShadowPage(sm: number): void {
    const role = this.spRole[sm];
    if (role === 0) return;
    const ram = this.ram;
    const level = role & 7;
    const dom = this.spDom[sm];
    if (level > 1) {
      for (let i = 0; i < 512; i++) {
        const a = sm * 4096 + i * 8;
        const lo = ram.read64lo(a);
        if ((lo & _PAGE_PRESENT) !== 0) this.removeParent(entryFrame(lo, ram.read64hi(a)), a);
      }
    }
    const ps = this.parents.get(sm);
    if (ps !== undefined) {
      for (const a of ps) ram.write64(a, 0, 0);
      this.parents.delete(sm);
    }
    const d = this.hv.domain(dom);
    if (d !== undefined) {
      for (const v of d.vcpus)
        if (v.uid < this.cap && this.root[v.uid] === sm) this.root[v.uid] = -1;
    }
    const gfn = this.spGfn[sm];
    this.hash.get(dom)?.delete(gfn * 256 + role);
    if ((role & ROLE_DIRECT) === 0) {
      const list = this.byGfn.get(gfn);
      if (list !== undefined) {
        const i = list.indexOf(sm);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.byGfn.delete(gfn);
      }
      if (this.spUnsync[sm] !== 0) {
        this.spUnsync[sm] = 0;
        this.unsyncPages.get(dom)?.delete(sm);
      } else this.wpCount[gfn]--;
    }
    this.spRole[sm] = 0;
    this.hv.frames.release(sm);
    this.counts.shadowPagesZapped++;
    this.counts.shadowPages--;
    this.flushDomain(dom);
  }

  private zapAll(dom: number): void {
    const h = this.hash.get(dom);
    if (h === undefined) return;
    for (const sm of [...h.values()]) this.zapShadowPage(sm);
  }

  private loadRoot(vcpu: Vcpu): number {
    const uid = vcpu.uid;
    const dom = vcpu.domain.domid;
    const cr3 = this.guestCr3[uid];
    if (
      !(
        cr3 >= 0 &&
        cr3 < this.ram.nrFrames &&
        (this.ownerKeys[cr3] === ~dom || this.hv.frames.populateFor(cr3, dom))
      )
    )
      return -1;
    const sm = this.getShadowPage(dom, cr3, LEVELS, false, ACC_W | ACC_U);
    if (sm < 0) return -1;
    this.root[uid] = sm;
    this.counts.rootLoads++;
    return sm;
  }

  // ---------------------------------------------------------------------------------------
  // Guest stores, CR3, INVLPG

  /**
   * A guest store of a 64-bit value at guest-physical address `gpa`: the entry point for
   * every page-table store of a guest kernel (Linux's set_pte and friends). A store to a
   * write-protected page table traps (an EXCEPTION_NMI exit), is emulated and propagated:
   * the shadow entries of that slot are zapped and refilled on the next fault. Returns 0,
   * -EINVAL for a misaligned address or -EFAULT for a frame the domain does not own.
   */
  guestStore(vcpu: Vcpu, gpa: number, lo: number, hi: number): number {
    if (!(Number.isInteger(gpa) && gpa >= 0 && gpa % 8 === 0)) return -EINVAL;
    const gfn = Math.floor(gpa / 4096);
    const dom = vcpu.domain.domid;
    if (
      !(
        gfn < this.ram.nrFrames &&
        (this.ownerKeys[gfn] === ~dom || this.hv.frames.populateFor(gfn, dom))
      )
    )
      return -EFAULT;
    const ram = this.ram;
    if (this.wpCount[gfn] === 0) {
      ram.write64(gpa, lo >>> 0, hi >>> 0);
      this.counts.plainStores++;
      return 0;
    }
    this.exits[EXIT_REASON_EXCEPTION_NMI]++;
    if (this.tryUnsync(gfn, dom)) {
      // The #PF exit made the frame's level-1 shadows unsync and the mapping writable: the
      // store re-executes as a plain store, and so do the ones after it until the next sync.
      ram.write64(gpa, lo >>> 0, hi >>> 0);
      this.counts.plainStores++;
      return 0;
    }
    this.emulatedStore(dom, gpa, lo, hi);
    return 0;
  }

  /**
   * A guest store through a virtual address, as `*ptep = val` compiles to (the same entry
   * point as pv-mmu's): the write goes through translate; when it hits a page table the
   * address space needs, the #PF exit already taken is followed by emulation and
   * propagation, as KVM emulates the faulting instruction. Returns false when the store
   * faulted to the guest (details in `fault`) or `va` is not 8-byte aligned.
   */
  write64(vcpu: Vcpu, va: number, lo: number, hi: number): boolean {
    if (!(Number.isInteger(va) && va % 8 === 0)) return false;
    const ma = this.translate(vcpu, va, PFEC_write_access);
    if (ma >= 0) {
      this.ram.write64(ma, lo >>> 0, hi >>> 0);
      return true;
    }
    if (!this.fault.emulate) return false;
    this.fault.emulate = false;
    this.emulatedStore(vcpu.domain.domid, this.emulateGpa, lo, hi);
    return true;
  }

  /** Writes a protected guest entry and zaps the shadow entries of that slot (KVM's kvm_mmu_track_write). */
  private emulatedStore(dom: number, gpa: number, lo: number, hi: number): void {
    const ram = this.ram;
    const gfn = Math.floor(gpa / 4096);
    this.counts.emulatedWrites++;
    ram.write64(gpa, lo >>> 0, hi >>> 0);
    const list = this.byGfn.get(gfn);
    let changed = false;
    if (list !== undefined) {
      const off = gpa % 4096;
      for (const sm of [...list]) {
        if (this.writeFlooding && (this.spRole[sm] & 7) > 1 && ++this.spFlood[sm] >= FLOOD_WRITES) {
          // Written again and again, never used: the guest is not using it as a table any
          // more (KVM's detect_write_flooding); unshadow it so later stores do not trap.
          this.counts.floodZaps++;
          this.zapShadowPage(sm);
          continue;
        }
        const a = sm * 4096 + off;
        const slo = ram.read64lo(a);
        if ((slo & _PAGE_PRESENT) === 0) continue;
        if ((this.spRole[sm] & 7) > 1) this.removeParent(entryFrame(slo, ram.read64hi(a)), a);
        ram.write64(a, 0, 0);
        this.counts.sptesZapped++;
        changed = true;
      }
    }
    if (changed) this.flushDomain(dom);
  }

  /** MOV to CR3 by the guest: sets its page-table root (a gfn); the host switches shadow roots. */
  writeCr3(vcpu: Vcpu, gfn: number): void {
    vcpu.cr3Mfn = gfn;
    this.flushLocal(vcpu);
  }

  /** A guest CR3 load (a CR_ACCESS exit): switches to the shadow root of vcpu.cr3Mfn. */
  flushLocal(vcpu: Vcpu): void {
    if (vcpu.uid >= this.cap) this.grow(vcpu.uid);
    this.cr3Write(vcpu);
  }

  private cr3Write(vcpu: Vcpu): void {
    const uid = vcpu.uid;
    this.exits[EXIT_REASON_CR_ACCESS]++;
    this.counts.cr3Writes++;
    if (this.guestCr3[uid] !== vcpu.cr3Mfn) {
      this.guestCr3[uid] = vcpu.cr3Mfn;
      this.root[uid] = -1;
    }
    this.counts.tlbFlushes++;
    // A root switch also changes what the page-walk caches would find: they go too.
    this.tlbs.peek(uid)?.flushNonGlobal();
    // A CR3 load is where the guest expects its table changes to be seen (kvm_mmu_sync_roots).
    this.syncAll(vcpu.domain.domid);
  }

  /** A guest INVLPG (an INVLPG exit): the address's TLB entry goes, global or not. */
  flushOne(vcpu: Vcpu, va: number): void {
    if (vcpu.uid >= this.cap) this.grow(vcpu.uid);
    this.exits[EXIT_REASON_INVLPG]++;
    this.counts.invlpg++;
    if (!Number.isFinite(va)) return;
    this.tlbs.peek(vcpu.uid)?.invlpg(va, 0);
    if ((this.unsyncPages.get(vcpu.domain.domid)?.size ?? 0) > 0) this.syncOne(vcpu, va);
  }

  // ---------------------------------------------------------------------------------------
  // Out-of-sync shadow pages (KVM's unsync pages) and their resync

  /**
   * A write fault on a protected guest frame (KVM's mmu_try_to_unsync_pages): when every
   * shadow page of it is a level-1 page, they all go out of sync and the frame is no longer
   * protected. Returns false (nothing changed) when out-of-sync is off or the frame is also
   * shadowed above level 1.
   */
  private tryUnsync(gfn: number, dom: number): boolean {
    if (!this.outOfSync) return false;
    const list = this.byGfn.get(gfn);
    if (list === undefined) return false;
    for (const sm of list) if ((this.spRole[sm] & 7) !== 1) return false;
    let set = this.unsyncPages.get(dom);
    if (set === undefined) {
      set = new Set();
      this.unsyncPages.set(dom, set);
    }
    for (const sm of list) {
      this.spUnsync[sm] = 1;
      set.add(sm);
    }
    this.wpCount[gfn] = 0;
    this.counts.unsyncs++;
    return true;
  }

  /** Syncs every out-of-sync shadow page of a domain. */
  private syncAll(dom: number): void {
    const set = this.unsyncPages.get(dom);
    if (set === undefined || set.size === 0) return;
    for (const sm of [...set]) this.syncPage(sm);
  }

  /**
   * Brings an out-of-sync level-1 shadow page back in sync (KVM's kvm_sync_page): its frame
   * is write-protected again, then every shadow entry whose guest entry changed is dropped
   * (it refills on the next fault).
   */
  private syncPage(sm: number): void {
    const dom = this.spDom[sm];
    const gfn = this.spGfn[sm];
    this.spUnsync[sm] = 0;
    this.unsyncPages.get(dom)?.delete(sm);
    this.counts.syncs++;
    if (this.wpCount[gfn]++ === 0) this.writeProtect(gfn, dom);
    let dropped = false;
    for (let i = 0; i < 512; i++) if (this.syncEntry(sm, i)) dropped = true;
    if (dropped) this.flushDomain(dom);
  }

  /** INVLPG in an out-of-sync page: the entry for va is synced, the page stays unsync. */
  private syncOne(vcpu: Vcpu, va: number): void {
    const root = vcpu.uid < this.cap ? this.root[vcpu.uid] : -1;
    if (root < 0 || !(va >= 0 && va < VA_LIMIT)) return;
    const vpn = Math.floor(va / 4096);
    const ram = this.ram;
    let sp = root;
    for (let level = LEVELS; level >= 2; level--) {
      const lo = ram.read64lo(sp * 4096 + (Math.floor(vpn / POW[level - 1]) % 512) * 8);
      if ((lo & _PAGE_PRESENT) === 0) return;
      sp = entryFrame(lo, ram.read64hi(sp * 4096 + (Math.floor(vpn / POW[level - 1]) % 512) * 8));
    }
    if (this.spUnsync[sp] !== 0 && (this.spRole[sp] & 7) === 1) this.syncEntry(sp, vpn % 512);
  }

  /**
   * Drops the shadow entry i of level-1 shadow page sm if it no longer agrees with the guest
   * entry it shadows (KVM's FNAME(sync_spte)). Returns whether it dropped one.
   */
  private syncEntry(sm: number, i: number): boolean {
    const ram = this.ram;
    const a = sm * 4096 + i * 8;
    const slo = ram.read64lo(a);
    if ((slo & _PAGE_PRESENT) === 0) return false;
    const g = this.spGfn[sm] * 4096 + i * 8;
    if (!spteAgrees(slo, ram.read64hi(a), ram.read64lo(g), ram.read64hi(g), this.spRole[sm] >> 4)) {
      ram.write64(a, 0, 0);
      this.counts.syncDropped++;
      return true;
    }
    return false;
  }

  private flushDomain(dom: number): void {
    const d = this.hv.domain(dom);
    if (d === undefined) return;
    for (const v of d.vcpus) {
      const t = this.tlbs.peek(v.uid);
      if (t === undefined) continue;
      t.flushAll();
      this.counts.tlbFlushes++;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Introspection and teardown

  /** The shadow root a vCPU runs on now (a host frame), or -1 until its next translation loads one. */
  shadowRoot(vcpu: Vcpu): number {
    return vcpu.uid < this.cap ? this.root[vcpu.uid] : -1;
  }

  /** Whether a guest frame is write-protected because a shadow page shadows it. */
  isWriteProtected(gfn: number): boolean {
    return Number.isInteger(gfn) && gfn >= 0 && gfn < this.wpCount.length && this.wpCount[gfn] > 0;
  }

  /** Shadow pages a domain has now. */
  shadowPageCount(d: Domain): number {
    return this.hash.get(d.domid)?.size ?? 0;
  }

  /**
   * What the shadow tables (not the TLB) map va to for a vCPU now: the machine address and
   * whether it is writable, or null. For tests and tools.
   */
  shadowLookup(vcpu: Vcpu, va: number): { maddr: number; writable: boolean; user: boolean } | null {
    const root = this.shadowRoot(vcpu);
    if (root < 0 || !(Number.isInteger(va) && va >= 0 && va < VA_LIMIT)) return null;
    const vpn = Math.floor(va / 4096);
    let table = root;
    for (let level = LEVELS; level >= 1; level--) {
      const a = table * 4096 + (Math.floor(vpn / POW[level - 1]) % 512) * 8;
      const lo = this.ram.read64lo(a);
      if ((lo & _PAGE_PRESENT) === 0) return null;
      const frame = entryFrame(lo, this.ram.read64hi(a));
      if (level === 1) {
        return {
          maddr: frame * 4096 + (va % 4096),
          writable: (lo & _PAGE_RW) !== 0,
          user: (lo & _PAGE_USER) !== 0,
        };
      }
      table = frame;
    }
    return null;
  }

  /** Whether a shadow page (a host frame) is out of sync now. For tests and tools. */
  isUnsync(sm: number): boolean {
    return Number.isInteger(sm) && sm >= 0 && sm < this.spUnsync.length && this.spUnsync[sm] !== 0;
  }

  /** Called by the plugin when a domain is destroyed: frees its shadow pages. */
  domainDestroyed(d: Domain): void {
    this.zapAll(d.domid);
    this.hash.delete(d.domid);
    this.unsyncPages.delete(d.domid);
    for (const v of d.vcpus) {
      if (v.uid < this.cap) {
        this.root[v.uid] = -1;
        this.guestCr3[v.uid] = -2;
      }
    }
    for (const [gfn, list] of this.rmap) {
      if (gfn < this.ownerKeys.length && this.ownerKeys[gfn] === ~d.domid) {
        list.length = 0;
        this.rmap.delete(gfn);
      }
    }
  }

  private grow(uid: number): void {
    let cap = Math.max(16, this.cap);
    while (cap <= uid) cap *= 2;
    const guestCr3 = new Float64Array(cap).fill(-2);
    guestCr3.set(this.guestCr3);
    const root = new Int32Array(cap).fill(-1);
    root.set(this.root);
    this.guestCr3 = guestCr3;
    this.root = root;
    this.cap = cap;
  }
}
