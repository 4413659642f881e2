/*
 * Nested paging (Intel EPT / AMD NPT) as KVM runs it: the guest owns its page tables in
 * guest-physical memory, the host keeps one nested table per domain (guest-physical ->
 * machine) in host frames, and a TLB miss walks both dimensions.
 *
 * Guest-physical memory: a guest frame number is the number of a machine frame its domain
 * owns (as the native baseline sees memory); the nested table maps each such gfn to the same
 * mfn, entry by entry, created lazily when an access exits with EPT_VIOLATION. A gfn the
 * domain does not own is never mapped to memory: it gets KVM's misconfigured "MMIO" entry
 * and the access faults to the guest.
 *
 * The guest dimension is @hyperlab/paging's walk rule (walkStep's checks per level, then
 * walkFinish's rights and A/D), written out in translateSlow with each level's table address
 * translated through the nested dimension first (test/differential.test.ts holds it to
 * paging's walk); the combined TLB and
 * the guest paging-structure caches are paging's Tlb and PageWalkCache, one per vCPU (what
 * VPID tagging gives: a vCPU's entries survive other vCPUs running on its pCPU). The nested
 * dimension reads EPT entries, a different format, with its own walk below.
 *
 * Invariants:
 * - Every cache holds only what a completed walk read: the combined TLB holds gVA -> mfn
 *   with the rights of both dimensions; the guest structure caches hold gVA prefix -> gfn of a
 *   guest table; the nested structure caches and the nested TLB (tagged by EPTP, here the
 *   domain) hold gfn -> mfn.
 * - A guest CR3 change drops the vCPU's non-global entries and its structure caches; INVLPG
 *   drops the address (global too) and the structure caches; INVVPID drops what its extent
 *   names; INVEPT drops everything derived from a domain's nested table. The host issues
 *   INVEPT whenever it removes a nested entry (zapGfn, domain teardown).
 * - Nested-table frames belong to DOMID_XEN, are listed per domain, and are released when
 *   the domain is destroyed.
 * - A translation never throws on guest-controlled state (tables, CR3, addresses): a bad
 *   entry is a guest page fault or a counted VM exit.
 * - The hit path allocates nothing; walks allocate nothing; only backing a page (host frames
 *   for the nested table) and a vCPU's first translation (its TLB) allocate.
 */
import { DOMID_FIRST_RESERVED, DOMID_XEN, EFAULT, EINVAL } from "@hyperlab/abi";
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
  CpuTlbs,
  createPagingMode,
  type PagingMode,
  PERM_DIRTY,
  PERM_GLOBAL,
  PERM_NX,
  PERM_RW,
  PERM_USER,
  Tlb,
  type TlbConfig,
  WalkResult,
} from "@hyperlab/paging";
import { nptMmuError } from "./errors";
import {
  EXIT_REASON_EPT_MISCONFIG,
  EXIT_REASON_EPT_VIOLATION,
  MTRR_TYPE_WRBACK,
  PT_PAGE_SIZE_MASK,
  VMX_EPT_EXECUTABLE_MASK,
  VMX_EPT_EXTENT_CONTEXT,
  VMX_EPT_EXTENT_GLOBAL,
  VMX_EPT_MISCONFIG_WX_VALUE,
  VMX_EPT_MT_EPTE_SHIFT,
  VMX_EPT_READABLE_MASK,
  VMX_EPT_RWX_MASK,
  VMX_EPT_WRITABLE_MASK,
  VMX_EXIT_REASONS_MAX,
  VMX_VPID_EXTENT_ALL_CONTEXT,
  VMX_VPID_EXTENT_INDIVIDUAL_ADDR,
  VMX_VPID_EXTENT_SINGLE_CONTEXT,
  VMX_VPID_EXTENT_SINGLE_NON_GLOBAL,
} from "./vmx";

const ADDR_HI_MASK = 0x000f_ffff;
const TWO_20 = 0x10_0000;
const ACCESS_MASK = PFEC_write_access | PFEC_user_mode | PFEC_insn_fetch;
const RW_US = PERM_RW | PERM_USER;
const EMPTY_WORDS = new Uint32Array(0);
/** VAs are plain numbers: exact below 2^53, which bounds 5-level VAs here. */
const NUMBER_VA_LIMIT = 2 ** 53;

// Results of one walk attempt besides a machine address.
const FAULT = -1;
const RETRY = -2;
// Results of a nested walk besides an mfn.
const N_VIOLATION = -1;
const N_MISCONFIG = -2;
/** 2^-12: x * PAGE_SCALE is x / 4096 exactly, without a division. */
const PAGE_SCALE = 2 ** -12;
/** Page shift of a nested leaf by level. */
const LEAF_SHIFT = [0, 12, 21, 30];
/** 2^-9k: `(gfn * SCALE9[k]) & 511` is gfn's k-th 9-bit index group, Math.floor of the product gfn >> 9k. */
const SCALE9 = [1, 2 ** -9, 2 ** -18, 2 ** -27, 2 ** -36, 2 ** -45];
/** 2^-(12 + 9(L-1)) by guest level L: `(va * VA_SCALE[L]) & 511` is the VA's index at level L. */
const VA_SCALE = [1, 2 ** -12, 2 ** -21, 2 ** -30, 2 ** -39, 2 ** -48];

// The bits the hot paths test, as this module's own constants (npt-ref.c's names): V8 folds
// a module's `const` into optimised code, where an imported binding is a cell load and a
// check at every use.
const WRITE = PFEC_write_access;
const USER = PFEC_user_mode;
const FETCH = PFEC_insn_fetch;
const PRESENT = PFEC_page_present;
const RSVD = PFEC_reserved_bit;
const P_RW = PERM_RW;
const P_USER = PERM_USER;
const P_NX = PERM_NX;
const P_DIRTY = PERM_DIRTY;
const P_GLOBAL = PERM_GLOBAL;
const EPT_R = VMX_EPT_READABLE_MASK;
const EPT_W = VMX_EPT_WRITABLE_MASK;
const EPT_X = VMX_EPT_EXECUTABLE_MASK;

/**
 * paging's tlbGrants (may a TLB hit's rights serve the access; CR0.WP from `mode`), the same
 * rule on this module's constants; test/differential.test.ts holds the two equal.
 */
export function grants(perms: number, access: number, mode: PagingMode): boolean {
  if ((access & WRITE) !== 0) {
    if ((perms & P_DIRTY) === 0) return false;
    if ((perms & P_RW) === 0 && ((access & USER) !== 0 || mode.wp)) return false;
  }
  if ((access & USER) !== 0 && (perms & P_USER) === 0) return false;
  return (access & FETCH) === 0 || (perms & P_NX) === 0;
}

/** paging's accessDenied (walkFinish's rights check), the same way; held equal the same way. */
export function denied(perms: number, access: number, mode: PagingMode): boolean {
  if ((access & USER) !== 0) {
    if ((perms & P_USER) === 0) return true;
    if ((access & WRITE) !== 0 && (perms & P_RW) === 0) return true;
  } else if ((access & WRITE) !== 0 && (perms & P_RW) === 0 && mode.wp) {
    return true;
  }
  return (access & FETCH) !== 0 && (perms & P_NX) !== 0;
}

/** Bytes of a host page size. */
export type HostPageSize = "4K" | "2M" | "1G";

export interface NptMmuOptions {
  /** Guest paging levels: 4 (48-bit VAs) or 5 (LA57; VAs below 2^53 here). Default 4. */
  guestLevels?: 4 | 5;
  /** Nested (EPT) levels: 4 or 5. Default 4. */
  nestedLevels?: 4 | 5;
  /** Largest host page the nested table may map: "4K" (default), "2M" or "1G". */
  hostPageSize?: HostPageSize;
  /**
   * The combined TLB and guest paging-structure caches of each vCPU, as @hyperlab/paging's
   * TlbConfig (default: paging's Skylake-like TLB with its page-walk caches; `pwc: false`
   * for none), or false for no TLB and no structure caches at all.
   */
  tlb?: TlbConfig | false;
  /** Nested paging-structure cache entries per level per pCPU (power of two or 0). Default 16. */
  nestedPwcEntries?: number;
  /** Nested TLB (gfn -> mfn) entries per pCPU (power of two or 0). Default 32. */
  nestedTlbEntries?: number;
  /** Tag TLB entries by VPID (default true). Without it, every switch of vCPU on a pCPU flushes. */
  vpid?: boolean;
}

/** A fault reported by translate. `exitReason` is -1 for the guest's own page faults. */
export interface NptFault extends MmuFault {
  /** Guest-physical address whose nested translation failed, or -1. */
  gpa: number;
  /** The VM exit that ended the translation (EXIT_REASON_*), or -1. */
  exitReason: number;
}

/** Event counts of a nested-paging MMU. Counts are facts; they never reset by themselves. */
export interface NptCounts {
  tlbHits: number;
  tlbMisses: number;
  /** 2D walks started (a walk aborted by an exit and retried counts twice). */
  walks: number;
  /** Guest page-table entries read by walks. */
  guestRefs: number;
  /** Guest page-table entries whose A/D flags walks set. */
  guestAdWrites: number;
  /** Nested (EPT) entries read by walks. */
  nestedRefs: number;
  guestPwcHits: number;
  nestedPwcHits: number;
  nestedTlbHits: number;
  nestedTlbMisses: number;
  /** Translations that faulted to the guest. */
  guestFaults: number;
  /** Accesses to guest-physical addresses the domain has no RAM at. */
  unbackedAccesses: number;
  backed4k: number;
  backed2m: number;
  backed1g: number;
  /**
   * TLB fills whose guest page was larger than its host page (a guest 2 MiB page over 4 KiB
   * host pages): the combined entry covers only the host page, so one guest page takes
   * many TLB entries (TLB splintering).
   */
  splinteredFills: number;
  /** Host frames holding nested tables now. */
  nestedTableFrames: number;
  /** Host frames a nested table needed and the machine did not have. */
  nestedAllocFailures: number;
  invept: number;
  invvpid: number;
  /** TLB flushes on VM entry for lack of VPID. */
  vmentryFlushes: number;
  /** Guest CR3 loads seen (they flush the vCPU's non-global entries). */
  guestCr3Loads: number;
  guestInvlpg: number;
  /** Page-table stores done through guestStore. */
  guestStores: number;
}

function newCounts(): NptCounts {
  return {
    tlbHits: 0,
    tlbMisses: 0,
    walks: 0,
    guestRefs: 0,
    guestAdWrites: 0,
    nestedRefs: 0,
    guestPwcHits: 0,
    nestedPwcHits: 0,
    nestedTlbHits: 0,
    nestedTlbMisses: 0,
    guestFaults: 0,
    unbackedAccesses: 0,
    backed4k: 0,
    backed2m: 0,
    backed1g: 0,
    splinteredFills: 0,
    nestedTableFrames: 0,
    nestedAllocFailures: 0,
    invept: 0,
    invvpid: 0,
    vmentryFlushes: 0,
    guestCr3Loads: 0,
    guestInvlpg: 0,
    guestStores: 0,
  };
}

function cacheSize(name: string, v: number | undefined, dflt: number): number {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n < 0 || n > 1 << 16 || (n & (n - 1)) !== 0) {
    throw nptMmuError(
      "NPT_BAD_OPTION",
      `nptMmu option ${name} must be 0 or a power of two up to 65536, got ${v}.`,
    );
  }
  return n;
}

function levels(name: string, v: number | undefined): number {
  const n = v ?? 4;
  if (n !== 4 && n !== 5) {
    throw nptMmuError("NPT_BAD_OPTION", `nptMmu option ${name} must be 4 or 5, got ${v}.`);
  }
  return n;
}

/** The nested-paging MMU backend: fills core's `mmu` slot. */
export class NptMmu implements MmuBackend {
  readonly kind = "nested";
  readonly fault: NptFault = { errorCode: 0, va: 0, gpa: -1, exitReason: -1 };
  readonly counts: NptCounts = newCounts();
  /** VM exits by basic exit reason (index EXIT_REASON_*). */
  readonly exits = new Float64Array(VMX_EXIT_REASONS_MAX);
  // Fields the constructor sets are `declare`d: a plain declaration (ES2022 class fields)
  // first defines them as undefined, and V8 then checks their maps on every read.
  declare readonly guestLevels: number;
  declare readonly nestedLevels: number;
  declare readonly hostPageSize: HostPageSize;
  declare readonly vpid: boolean;
  /** The guest's paging mode (levels, MAXPHYADDR 46, NXE, WP, 1 GiB pages). */
  declare readonly mode: PagingMode;

  declare private readonly hv: Hypervisor;
  declare private readonly ram: Ram;
  /** The frame table's owner keys (core's ownerKey: ~domid; compare with ~dom). */
  declare private readonly ownerKeys: Int32Array;
  /** 512^k for k = 0..5. */
  private readonly pow = [1, 512, 512 ** 2, 512 ** 3, 512 ** 4, 512 ** 5];
  declare private readonly vaLimit: number;
  private readonly out = new WalkResult();
  /** translate's VA for translateSlow, and translateSlow's result (see translate). */
  private slowVa = 0.5;
  private slowMa = 0.5;
  /**
   * The VA guestFault reports, written by its callers just before: a double field written in
   * place, where a VA (above 2^31) passed to a call V8 does not inline is boxed, and one such
   * use in translateSlow made V8 box the VA at its entry on every walk (see translateSlow).
   */
  private faultVa = 0.5;
  /**
   * The RAM chunk (machine's 512-frame chunks) of the guest leaf table the warm walk's
   * straight line last read a present entry from, and that chunk's view; -1 for none yet. A
   * chunk's view never changes once the chunk exists, and a present entry never comes from an
   * unbacked chunk (those read as the shared zero view), so the view stays good for the
   * chunk across walks (see translateSlow).
   */
  declare private leafChunk: number;
  declare private leafWords: Uint32Array;
  /**
   * Told the machine address of every entry a 2D walk reads, guest and nested, in the order
   * read (for a data-cache model such as the study's); null for none.
   */
  walkRefSink: ((maddr: number) => void) | null = null;

  // Combined TLB and guest structure caches: paging's Tlb, one per vCPU (by uid).
  declare private readonly tlbs: CpuTlbs;
  /** tlbs.byCpu (the same array for the table's life), one load fewer on translate's hit. */
  declare private readonly tlbByCpu: readonly (Tlb | undefined)[];
  /** Whether the vCPUs have no TLBs (`tlb: false`): translateSlow then asks tlbs nothing. */
  declare private readonly noTlbs: boolean;
  /**
   * The page sizes some level of the vCPUs' TLBs has an array of, as bits 12, 21 and 30 (bit
   * `pageShift`): Tlb.insert puts an entry only into such arrays, so a walk whose combined
   * page has no array (the warm bench's TLB holds only 1 GiB pages) makes no insert call.
   */
  declare private readonly fillSizes: number;
  // Nested paging-structure caches: per pCPU, per nested level 1..m-1.
  declare private readonly npwcSize: number;
  declare private readonly npwcTag: Float64Array;
  declare private readonly npwcMfn: Float64Array;
  declare private readonly npwcDom: Int32Array;
  // Nested TLB: per pCPU, gfn -> mfn.
  declare private readonly ntlbSize: number;
  declare private readonly ntlbGfn: Float64Array;
  /**
   * The mfns: a Uint32Array, since every mfn stored is below nrFrames <= 2^32 (the walks check
   * it first), so that a hit's mfn is read as an integer, without a double's conversion.
   */
  declare private readonly ntlbMfn: Uint32Array;
  /** RWX rights in bits 0..2, the leaf's level in bits 3..4. */
  declare private readonly ntlbPerm: Uint8Array;
  declare private readonly ntlbDom: Int32Array;

  /** Nested-table root per domain id, or -1. */
  private readonly eptRoots = new Int32Array(DOMID_FIRST_RESERVED).fill(-1);
  private readonly tableFrames = new Map<number, number[]>();
  private lastCr3 = new Float64Array(64).fill(-2);
  declare private readonly lastOnPcpu: Int32Array;

  constructor(hv: Hypervisor, options: NptMmuOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw nptMmuError(
        "NPT_BAD_OPTION",
        "nptMmu takes an options object, e.g. nptMmu({ hostPageSize: '2M' }).",
      );
    }
    this.hv = hv;
    this.ram = hv.machine.ram;
    this.ownerKeys = hv.frames.ownerKeys;
    this.guestLevels = levels("guestLevels", options.guestLevels);
    this.nestedLevels = levels("nestedLevels", options.nestedLevels);
    const hps = options.hostPageSize ?? "4K";
    if (hps !== "4K" && hps !== "2M" && hps !== "1G") {
      throw nptMmuError(
        "NPT_BAD_OPTION",
        `nptMmu option hostPageSize must be "4K", "2M" or "1G", got ${String(hps)}.`,
      );
    }
    this.hostPageSize = hps;
    // A boolean whatever the option's value was (translate tests `=== true`).
    this.vpid = Boolean(options.vpid ?? true);
    this.mode = createPagingMode({ levels: this.guestLevels as 4 | 5 });
    this.vaLimit = Math.min(this.mode.vaLimit, NUMBER_VA_LIMIT);
    const prng = hv.machine.prng.fork("npt-mmu");
    const tlbs = CpuTlbs.fromOption(options.tlb, () => prng.nextU32());
    if (tlbs === undefined) {
      throw nptMmuError(
        "NPT_BAD_OPTION",
        `nptMmu option tlb must be a TlbConfig from @hyperlab/paging or false, got ${String(options.tlb)}.`,
      );
    }
    this.tlbs = tlbs;
    this.tlbByCpu = tlbs.byCpu;
    this.noTlbs = tlbs.config === null;
    let fillSizes = 0;
    if (tlbs.config !== null) {
      // A TLB of the same configuration, asked which arrays it has (as CpuTlbs makes one to
      // check the configuration): every vCPU's TLB is made from this configuration.
      const t = new Tlb(tlbs.config);
      for (let l = 0; l < t.nrLevels; l++) {
        for (const shift of [12, 21, 30]) if (t.array(l, shift) !== null) fillSizes |= 1 << shift;
      }
    }
    const np = Math.max(1, hv.machine.cpus.length);
    this.lastOnPcpu = new Int32Array(np).fill(-1);
    const m = this.nestedLevels;

    const N = cacheSize("nestedPwcEntries", options.nestedPwcEntries, 16);
    this.npwcSize = N;
    this.npwcTag = new Float64Array(np * m * N);
    this.npwcMfn = new Float64Array(np * m * N);
    this.npwcDom = new Int32Array(np * m * N).fill(-1);

    const Q = cacheSize("nestedTlbEntries", options.nestedTlbEntries, 32);
    this.ntlbSize = Q;
    this.ntlbGfn = new Float64Array(np * Q);
    this.ntlbMfn = new Uint32Array(np * Q);
    this.ntlbPerm = new Uint8Array(np * Q);
    this.ntlbDom = new Int32Array(np * Q).fill(-1);
    // Assigned last, so that the fields translate's hit reads keep their places in the object.
    this.fillSizes = fillSizes;
    this.leafChunk = -1;
    this.leafWords = EMPTY_WORDS;
  }

  /** Count of VM exits with one basic reason (EXIT_REASON_*). */
  exitCount(reason: number): number {
    return this.exits[reason] ?? 0;
  }

  /** The VPID a vCPU's entries are tagged with (0 when VPID is off, as for the host). */
  vpidOf(vcpu: Vcpu): number {
    return this.vpid ? vcpu.uid + 1 : 0;
  }

  /** The vCPU's combined TLB (paging's Tlb, with the guest structure caches as its pwc), or null without one. */
  tlbOf(vcpu: Vcpu): Tlb | null {
    return this.tlbs.of(vcpu.uid);
  }

  // ---------------------------------------------------------------------------------------
  // Translation

  translate(vcpu: Vcpu, va: number, access: number): number {
    // The hot path, small enough to inline into the caller's loop: a vCPU that has its TLB,
    // runs under the CR3 last seen and needs no entry flush (VPID, or it ran last on its
    // pCPU) asks its TLB, and a hit is answered here. Anything else takes translateSlow,
    // which does the same in order (`looked` says whether this lookup was already made). The
    // VA goes to translateSlow and its result comes back through double fields: as an
    // argument of a call that is not inlined a VA above 2^31 is boxed (a heap number per
    // miss), and a call's tagged result merged with the hit's would make V8 tag the hit's.
    const uid = vcpu.uid;
    const tlb = this.tlbByCpu[uid];
    if (
      tlb === undefined ||
      uid >= this.lastCr3.length ||
      vcpu.cr3Mfn !== this.lastCr3[uid] ||
      // `=== true`: a truth test of the boolean field is a full ToBoolean in V8's code.
      !(this.vpid === true || this.lastOnPcpu[vcpu.processor] === uid)
    ) {
      this.slowVa = va;
      this.translateSlow(vcpu, access, false);
      return this.slowMa;
    }
    // `=== true`: lookup's result merges its out-of-line lookupRest's (a tagged value), and
    // a plain truth test of it costs V8 a full ToBoolean.
    if (tlb.lookup(va, 0) === true && grants(tlb.hitPerms, access, this.mode)) {
      this.counts.tlbHits++;
      return tlb.hitMfn * 4096 + (va - Math.floor(va * PAGE_SCALE) * 4096);
    }
    this.slowVa = va;
    this.translateSlow(vcpu, access, true);
    return this.slowMa;
  }

  /**
   * Everything translate does not, for the VA in `slowVa`, its result in `slowMa`: a first
   * translation, a CR3 change, a VM entry's flush, a vCPU without a TLB (then the lookup),
   * and after a TLB miss or a denied hit (`looked`: translate already looked up) the miss's
   * counts, the VA's check and the two-dimensional walk, retried after each exit that
   * backed one more guest-physical page. Before each guest level's entry is read, the guest
   * table's gfn goes through the nested table; after the leaf, so does the final
   * guest-physical address. One method on purpose, far over V8's 460-byte bytecode limit
   * for inlining: V8 never pulls it into the caller's loop, translate's hit path (with the
   * TLB's lookup) always fits the caller's inlining budget (h61's shape for native-mmu), and
   * a miss costs translate one call.
   *
   * The guest levels are paging's walkBegin, walkStep per level and walkFinish written out
   * here with locals (as paging's `walk` does for one dimension), and so is the nested
   * dimension (nested() and nestedWalk's levels, written out once at the top of the loop):
   * each guest table's gfn and, in one more pass after the leaf, the data page's go through
   * that one nested step, so a cold 2D walk makes no call per nested translation (the data
   * page's nested TLB probe is made after the leaf, so that a hit needs no second pass).
   * The same checks in the same order, the same entries read and A/D bits written, the same
   * counts, the same walkRefSink order (each guest entry after its table's nested walk) and
   * the same exits and faults.
   * Bits are literals in the loop (test/differential.test.ts checks them): 1 is
   * _PAGE_PRESENT, 0x80 _PAGE_PSE, 0x20 _PAGE_ACCESSED, 0x40 _PAGE_DIRTY, 0x100
   * _PAGE_GLOBAL, 0x80000000 _PAGE_NX_HI in the high word; VMX_EPT_READABLE_MASK is 1.
   * `out` keeps what the guest structure caches' fill reads (start and leaf level, each
   * level's entry and rights).
   */
  private translateSlow(vcpu: Vcpu, access: number, looked: boolean): void {
    // Read once: a walkRefSink or a host callback that translated again would change it.
    const va = this.slowVa;
    const c = this.counts;
    const uid = vcpu.uid;
    const p = vcpu.processor;
    let tlb: Tlb | null;
    // `=== true`: a plain truth test of a parameter costs V8 a full ToBoolean.
    if (looked === true) {
      tlb = this.tlbByCpu[uid] as Tlb;
    } else {
      if (uid >= this.lastCr3.length) this.growVcpus(uid);
      tlb = this.tlbByCpu[uid] ?? (this.noTlbs === true ? null : this.tlbs.of(uid));
      if (this.vpid !== true && this.lastOnPcpu[p] !== uid) {
        // Without VPID, entering another vCPU on this pCPU left nothing of ours behind.
        this.lastOnPcpu[p] = uid;
        c.vmentryFlushes++;
        if (tlb !== null) tlb.flushAll();
      }
      if (vcpu.cr3Mfn !== this.lastCr3[uid]) this.cr3Loaded(vcpu);
      if (tlb !== null && tlb.lookup(va, 0) === true && grants(tlb.hitPerms, access, this.mode)) {
        c.tlbHits++;
        this.slowMa = tlb.hitMfn * 4096 + (va - Math.floor(va * PAGE_SCALE) * 4096);
        return;
      }
    }
    c.tlbMisses++;
    this.fault.exitReason = -1;
    this.fault.gpa = -1;
    const acc = access & ACCESS_MASK;
    const vpn = Math.floor(va * PAGE_SCALE);
    if (!(va >= 0 && va < this.vaLimit && vpn * 4096 <= va)) {
      this.faultVa = va;
      this.slowMa = this.guestFault(acc);
      return;
    }
    // The structure caches and the TLB are given the VA's page, not `va`: their keys are the
    // VA's bits from 12 up, the same for both. V8 boxes a VA (above 2^31) passed to a call
    // it does not inline (paging's insert and fill, often its PWC lookup), and makes the box
    // where all of that number's boxed uses meet: for `va` that was translateSlow's entry,
    // a heap number on every walk. `page` is a number of its own, boxed (if at all) where
    // those calls are; `va` is passed to no call but the first translation's TLB lookup.
    const page = vpn * 4096;
    // Each retry follows an exit that backed one more guest-physical page.
    attempts: for (let attempt = 0; attempt <= this.guestLevels + 2; attempt++) {
      const dom = vcpu.domain.domid;
      const cr3 = vcpu.cr3Mfn;
      c.walks++;
      if (!(cr3 >= 0)) {
        this.faultVa = va;
        this.slowMa = this.guestFault(acc);
        return;
      }
      const mode = this.mode;
      const out = this.out;
      const sink = this.walkRefSink;
      let level: number = mode.levels;
      let table = cr3;
      let perms = RW_US;
      const pwc = tlb === null ? null : tlb.pwc;
      // `=== true` (as translate's): lookup's result merges lookupAbove's (a tagged value),
      // and a plain truth test of it costs V8 a full ToBoolean.
      if (pwc !== null && pwc.lookup(page, 0, level) === true) {
        c.guestPwcHits++;
        level = pwc.hitLevel - 1;
        table = pwc.hitMfn;
        perms = pwc.hitPerms;
      }
      const startLevel = level;
      const vaLo = va >>> 0; // ToUint32: the low 32 bits of an integer VA
      const ram = this.ram;
      const nrFrames = ram.nrFrames;
      const Q = this.ntlbSize;
      const qBase = p * Q;
      const qMask = Q - 1;
      const qDom = dom * 5;
      const ntlbDom = this.ntlbDom;
      const ntlbGfn = this.ntlbGfn;
      let lo = 0;
      let hi = 0;
      let reads = 0;
      // The AND of every entry read: its A bit says whether any of them still needs A set.
      let accessed = 0x20;
      // The gfn the nested step below translates next (a guest table's, after the leaf the
      // data page's), the EPT rights it needs, and whether it is the data page.
      let gfn = table;
      let need = EPT_R;
      let data = false;
      let pageShift = 12;
      // The nested step's answer: the mfn (a uint32) and its leaf's shift, or in nres
      // N_VIOLATION / N_MISCONFIG (the mfn and the codes apart, so that tmfn stays an integer).
      let tmfn = 0;
      let nres = 0;
      let nShift = 12;
      // The RAM chunk views (machine's 512-frame chunks) of the last EPT table and the last
      // guest table read, kept for the whole attempt: a chunk's view never changes once the
      // chunk exists, and a read from a chunk not yet backed (the shared zero view) gives an
      // entry that is not present, which ends the attempt (an exit, then a new attempt with
      // no view kept, or a fault), so that view is never read twice.
      let nChunk = -1;
      let nWords: Uint32Array = EMPTY_WORDS;
      let gChunk = -1;
      let gWords: Uint32Array = EMPTY_WORDS;
      // biome-ignore lint/suspicious/noConfusingLabels: the fast case below leaves the whole walk
      walk: {
        // -- The warm walk's usual case, written out ahead of the loop: the guest structure
        // caches gave the last level's table (level 1), the nested TLB has that table's gfn,
        // and (mostly) the data page's. The loop's statements for that case in the loop's
        // order, on the loop's variables: a data page the nested TLB lacks continues in the
        // loop's nested step (`data` set, its probe made and counted here), and a table gfn
        // it lacks takes the loop from the start (nothing done or counted here yet). Why:
        // V8 compiles the loop, which carries the nested walk's state, with most of its
        // locals on the stack; this straight line has far fewer live values (warm walk
        // +12-15 % in the bench, cold about -5 %: docs/decisions.md h81). As a method of
        // its own it was slower. It writes nothing to `out`: the walk starts at the leaf, so
        // the structure caches' fill (the only reader of `out`) is not made (h87).
        if (level === 1 && Q !== 0) {
          const qt = qBase + ((gfn + qDom) & qMask);
          if (ntlbDom[qt] === dom && ntlbGfn[qt] === gfn && (this.ntlbPerm[qt] & 1) !== 0) {
            c.nestedTlbHits++;
            tmfn = this.ntlbMfn[qt] >>> 0;
            // walkStep at level 1 (a leaf: no PS, reserved bits r = 2).
            const index = (vaLo >>> 12) & 511;
            reads = 1;
            if (tmfn < nrFrames) {
              // The view of the leaf table's chunk from the last walk when it is the same chunk
              // (the leaf tables of a guest's pages are mostly in one): a field the CPU loads
              // without waiting for tmfn, where chunkWordsForRead's lookup (the chunk array,
              // its element, the view's data pointer) is a chain of loads after tmfn, on the
              // path to the entry (warm walk +7 %: docs/decisions.md h91).
              gChunk = tmfn >>> 9;
              gWords = gChunk === this.leafChunk ? this.leafWords : ram.chunkWordsForRead(tmfn);
              const w = ((tmfn & 511) << 10) | (index << 1);
              lo = gWords[w];
              hi = gWords[w | 1];
            }
            if (sink !== null) sink(tmfn * 4096 + index * 8);
            if ((lo & 1) === 0) {
              this.faultVa = va;
              this.slowMa = this.walk2dFault(reads, faultCode(acc, mode));
              return;
            }
            // A present entry: gWords is a backed chunk's view (see leafChunk), kept.
            if (gChunk !== this.leafChunk) {
              this.leafChunk = gChunk;
              this.leafWords = gWords;
            }
            if ((lo & mode.rsvdLo[2]) !== 0 || (hi & mode.rsvdHi[2]) !== 0) {
              this.faultVa = va;
              this.slowMa = this.walk2dFault(reads, faultCode(acc, mode) | PRESENT | RSVD);
              return;
            }
            perms &= lo | ~RW_US;
            if ((hi & 0x8000_0000) !== 0 && mode.nxe === true) perms |= P_NX;
            c.guestRefs += reads;
            // walkFinish: the rights; A on no level above the leaf (the walk started at the
            // leaf); A and D on the leaf.
            if (denied(perms, acc, mode)) {
              this.faultVa = va;
              this.slowMa = this.guestFault(faultCode(acc, mode) | PRESENT);
              return;
            }
            const want = (acc & WRITE) !== 0 ? 0x60 : 0x20;
            if ((lo & want) !== want) {
              lo = (lo | want) >>> 0;
              ram.write32(tmfn * 4096 + index * 8, lo);
              c.guestAdWrites += 1;
            }
            if ((lo & 0x40) !== 0) perms |= P_DIRTY;
            if ((lo & 0x100) !== 0) perms |= P_GLOBAL;
            gfn = (hi & 0xfffff) * 0x10_0000 + (lo >>> 12);
            need =
              EPT_R | ((access & WRITE) !== 0 ? EPT_W : 0) | ((access & FETCH) !== 0 ? EPT_X : 0);
            // The slot of gfn + qDom from the entry's low word alone: Q divides 2^20, so gfn's
            // bits from 20 up ((hi & 0xfffff) * 2^20) drop out of `& qMask`; no double sum.
            const qd = qBase + (((lo >>> 12) + qDom) & qMask);
            if (ntlbDom[qd] === dom && ntlbGfn[qd] === gfn) {
              const np = this.ntlbPerm[qd];
              if ((np & need) === need) {
                c.nestedTlbHits++;
                nShift = LEAF_SHIFT[np >>> 3];
                tmfn = this.ntlbMfn[qd] >>> 0;
                break walk;
              }
            }
            c.nestedTlbMisses++;
            data = true;
          }
        }
        // The loop's own state, loaded here rather than ahead of the straight line above
        // (which writes nothing to `out`: the walk read no level above the leaf, so the
        // structure caches' fill is not made), so that the warm walk does not load it.
        const rsvdLo = mode.rsvdLo;
        const rsvdHi = mode.rsvdHi;
        // A boolean local: a truth test of the field at each level was a full ToBoolean.
        const nxe = mode.nxe === true;
        const eMaddr = out.entryMaddr;
        const eLo = out.entryLo;
        const eHi = out.entryHi;
        const lPerms = out.levelPerms;
        const N = this.npwcSize;
        const m = this.nestedLevels;
        for (;;) {
          // -- The nested step (nested(), then nestedWalk's levels, written out once here for
          // every guest table and the data page alike: a cold 2D walk makes no call per
          // nested translation). The same reads, checks, counts and cache fills in the same
          // order as nested(); nestedWalk below stays for guestStore.
          // biome-ignore lint/suspicious/noConfusingLabels: one block left with tmfn set
          nestedStep: {
            let qs = 0;
            if (Q !== 0) {
              qs = qBase + ((gfn + qDom) & qMask);
              // The data page's probe was made after the leaf (below): here only on a miss.
              if (!data) {
                if (ntlbDom[qs] === dom && ntlbGfn[qs] === gfn && (this.ntlbPerm[qs] & 1) !== 0) {
                  c.nestedTlbHits++;
                  tmfn = this.ntlbMfn[qs] >>> 0;
                  break nestedStep;
                }
                c.nestedTlbMisses++;
              }
            }
            let nl = m;
            let ntable = this.eptRoots[dom];
            if (ntable < 0 || !(gfn >= 0 && gfn < 2 ** 40)) {
              nres = N_VIOLATION;
              break nestedStep;
            }
            if (N !== 0) {
              for (let L = 1; L < m; L++) {
                const key = Math.floor(gfn * SCALE9[L]);
                const s = (p * m + L) * N + ((key + dom) & (N - 1));
                if (this.npwcDom[s] === dom && this.npwcTag[s] === key) {
                  c.nestedPwcHits++;
                  nl = L;
                  ntable = this.npwcMfn[s];
                  break;
                }
              }
            }
            // As in nestedWalk: gfn's low 32 bits and the 8 above, the table frame a uint32,
            // the RAM chunk view reused while the next table is in the same chunk, EPT bits
            // as literals (R 1, W 2, RWX 7, page size 0x80, the memory type in bits 3..5).
            const gLo = gfn >>> 0;
            // gHi without float arithmetic on gfn below 2^32 (every gfn of RAM): the subtraction
            // made V8 keep gfn a double through the walk (cold TS/C 1.84-1.89 -> 1.65-1.69).
            const gHi = gfn < 0x1_0000_0000 ? 0 : ((gfn - gLo) * 2 ** -32) | 0;
            let tableU = ntable >>> 0;
            let perm = 7;
            let refs = 0;
            let nlo = 0;
            let nhi = 0;
            let idx = 0;
            let result = 0;
            // biome-ignore lint/suspicious/noConfusingLabels: one block left at the level that ends the walk
            descend: {
              if (nl >= 5) {
                nl = 5;
                idx = (gHi >>> 4) & 511;
                const ch = tableU >>> 9;
                if (ch !== nChunk) {
                  nWords = ram.chunkWordsForRead(tableU);
                  nChunk = ch;
                }
                const w = ((tableU & 511) << 10) | (idx << 1);
                nlo = nWords[w];
                nhi = nWords[w | 1];
                refs++;
                if (sink !== null) sink(tableU * 4096 + idx * 8);
                const rwx = nlo & 7;
                if (rwx === 0) {
                  result = N_VIOLATION;
                  break descend;
                }
                if ((rwx & 2) !== 0 && (rwx & 1) === 0) {
                  result = N_MISCONFIG;
                  break descend;
                }
                perm &= rwx;
                if ((nlo & 0x80) !== 0) {
                  result = N_MISCONFIG;
                  break descend;
                }
                const th = nhi & ADDR_HI_MASK;
                const next = ((th << 20) | (nlo >>> 12)) >>> 0;
                if (th >= 0x1000 || next >= nrFrames) {
                  result = N_MISCONFIG;
                  break descend;
                }
                if (N !== 0) this.npwcFill(p, dom, gfn, 4, next);
                tableU = next;
              }
              if (nl >= 4) {
                nl = 4;
                idx = ((gLo >>> 27) | (gHi << 5)) & 511;
                const ch = tableU >>> 9;
                if (ch !== nChunk) {
                  nWords = ram.chunkWordsForRead(tableU);
                  nChunk = ch;
                }
                const w = ((tableU & 511) << 10) | (idx << 1);
                nlo = nWords[w];
                nhi = nWords[w | 1];
                refs++;
                if (sink !== null) sink(tableU * 4096 + idx * 8);
                const rwx = nlo & 7;
                if (rwx === 0) {
                  result = N_VIOLATION;
                  break descend;
                }
                if ((rwx & 2) !== 0 && (rwx & 1) === 0) {
                  result = N_MISCONFIG;
                  break descend;
                }
                perm &= rwx;
                if ((nlo & 0x80) !== 0) {
                  result = N_MISCONFIG;
                  break descend;
                }
                const th = nhi & ADDR_HI_MASK;
                const next = ((th << 20) | (nlo >>> 12)) >>> 0;
                if (th >= 0x1000 || next >= nrFrames) {
                  result = N_MISCONFIG;
                  break descend;
                }
                if (N !== 0) this.npwcFill(p, dom, gfn, 3, next);
                tableU = next;
              }
              if (nl >= 3) {
                nl = 3;
                idx = (gLo >>> 18) & 511;
                const ch = tableU >>> 9;
                if (ch !== nChunk) {
                  nWords = ram.chunkWordsForRead(tableU);
                  nChunk = ch;
                }
                const w = ((tableU & 511) << 10) | (idx << 1);
                nlo = nWords[w];
                nhi = nWords[w | 1];
                refs++;
                if (sink !== null) sink(tableU * 4096 + idx * 8);
                const rwx = nlo & 7;
                if (rwx === 0) {
                  result = N_VIOLATION;
                  break descend;
                }
                if ((rwx & 2) !== 0 && (rwx & 1) === 0) {
                  result = N_MISCONFIG;
                  break descend;
                }
                perm &= rwx;
                if ((nlo & 0x80) !== 0) break descend;
                const th = nhi & ADDR_HI_MASK;
                const next = ((th << 20) | (nlo >>> 12)) >>> 0;
                if (th >= 0x1000 || next >= nrFrames) {
                  result = N_MISCONFIG;
                  break descend;
                }
                if (N !== 0) this.npwcFill(p, dom, gfn, 2, next);
                tableU = next;
              }
              if (nl >= 2) {
                nl = 2;
                idx = (gLo >>> 9) & 511;
                const ch = tableU >>> 9;
                if (ch !== nChunk) {
                  nWords = ram.chunkWordsForRead(tableU);
                  nChunk = ch;
                }
                const w = ((tableU & 511) << 10) | (idx << 1);
                nlo = nWords[w];
                nhi = nWords[w | 1];
                refs++;
                if (sink !== null) sink(tableU * 4096 + idx * 8);
                const rwx = nlo & 7;
                if (rwx === 0) {
                  result = N_VIOLATION;
                  break descend;
                }
                if ((rwx & 2) !== 0 && (rwx & 1) === 0) {
                  result = N_MISCONFIG;
                  break descend;
                }
                perm &= rwx;
                if ((nlo & 0x80) !== 0) break descend;
                const th = nhi & ADDR_HI_MASK;
                const next = ((th << 20) | (nlo >>> 12)) >>> 0;
                if (th >= 0x1000 || next >= nrFrames) {
                  result = N_MISCONFIG;
                  break descend;
                }
                if (N !== 0) this.npwcFill(p, dom, gfn, 1, next);
                tableU = next;
              }
              nl = 1;
              idx = gLo & 511;
              const ch = tableU >>> 9;
              if (ch !== nChunk) {
                nWords = ram.chunkWordsForRead(tableU);
                nChunk = ch;
              }
              const w = ((tableU & 511) << 10) | (idx << 1);
              nlo = nWords[w];
              nhi = nWords[w | 1];
              refs++;
              if (sink !== null) sink(tableU * 4096 + idx * 8);
              const rwx = nlo & 7;
              if (rwx === 0) {
                result = N_VIOLATION;
                break descend;
              }
              if ((rwx & 2) !== 0 && (rwx & 1) === 0) {
                result = N_MISCONFIG;
                break descend;
              }
              perm &= rwx;
            }
            c.nestedRefs += refs;
            if (result !== 0) {
              nres = result;
              break nestedStep;
            }
            // The leaf at nl (1, 2 or 3): its memory type, its frame (a large leaf's aligned
            // down to its span, plus gfn's frame inside it), the rights.
            const mt = (nlo & 0x38) >>> 3;
            if (mt === 2 || mt === 3 || mt === 7) {
              nres = N_MISCONFIG;
              break nestedStep;
            }
            // An mfn is below nrFrames <= 2^32: a leaf frame of 2^32 or more (and every frame
            // of its span) is past RAM, so the mfn is a uint32 (as is tmfn on both paths).
            const th = nhi & ADDR_HI_MASK;
            if (th >= 0x1000) {
              nres = N_MISCONFIG;
              break nestedStep;
            }
            let nmfn = ((th << 20) | (nlo >>> 12)) >>> 0;
            if (nl === 2) nmfn = ((nmfn & ~0x1ff) | (gLo & 0x1ff)) >>> 0;
            else if (nl === 3) nmfn = ((nmfn & ~0x3_ffff) | (gLo & 0x3_ffff)) >>> 0;
            if (nmfn >= nrFrames) {
              nres = N_MISCONFIG;
              break nestedStep;
            }
            if ((perm & need) !== need) {
              nres = N_VIOLATION;
              break nestedStep;
            }
            if (Q !== 0) {
              ntlbDom[qs] = dom;
              ntlbGfn[qs] = gfn;
              this.ntlbMfn[qs] = nmfn;
              this.ntlbPerm[qs] = perm | (nl << 3);
            }
            nShift = LEAF_SHIFT[nl];
            tmfn = nmfn;
          }
          if (nres !== 0) {
            if (!data) c.guestRefs += reads;
            this.faultVa = va;
            const x = this.nestedExit(nres, dom, gfn, acc);
            if (x === RETRY) continue attempts;
            this.slowMa = x;
            return;
          }
          if (data) break;
          // -- walkStep: entry `index` of the level-`level` guest table at machine frame tmfn.
          const index = (va * VA_SCALE[level]) & 511;
          reads++;
          if (tmfn < nrFrames) {
            const ch = tmfn >>> 9;
            if (ch !== gChunk) {
              gWords = ram.chunkWordsForRead(tmfn);
              gChunk = ch;
            }
            const w = ((tmfn & 511) << 10) | (index << 1);
            lo = gWords[w];
            hi = gWords[w | 1];
          } else {
            lo = 0;
            hi = 0;
          }
          const maddr = tmfn * 4096 + index * 8;
          eMaddr[level] = maddr;
          eLo[level] = lo;
          eHi[level] = hi;
          if (sink !== null) sink(maddr);
          if ((lo & 1) === 0) {
            this.faultVa = va;
            this.slowMa = this.walk2dFault(reads, faultCode(acc, mode));
            return;
          }
          const ps = level > 1 && (lo & 0x80) !== 0;
          const r = ps ? level * 2 + 1 : level * 2;
          if ((lo & rsvdLo[r]) !== 0 || (hi & rsvdHi[r]) !== 0) {
            this.faultVa = va;
            this.slowMa = this.walk2dFault(reads, faultCode(acc, mode) | PRESENT | RSVD);
            return;
          }
          perms &= lo | ~RW_US;
          if ((hi & 0x8000_0000) !== 0 && nxe) perms |= P_NX;
          lPerms[level] = perms;
          accessed &= lo;
          if (level !== 1 && !ps) {
            gfn = (hi & 0xfffff) * 0x10_0000 + (lo >>> 12);
            level--;
            continue;
          }
          out.leafLevel = level;
          c.guestRefs += reads;
          // -- walkFinish: the rights, then A on every level read (none needs it when every
          // entry read has A) and D on the leaf of a write.
          if (denied(perms, acc, mode)) {
            this.faultVa = va;
            this.slowMa = this.guestFault(faultCode(acc, mode) | PRESENT);
            return;
          }
          let writes = 0;
          if (accessed === 0) {
            for (let l = startLevel; l > level; l--) {
              const v = eLo[l];
              if ((v & 0x20) === 0) {
                eLo[l] = v | 0x20;
                ram.write32(eMaddr[l], (v | 0x20) >>> 0);
                writes++;
              }
            }
          }
          const want = (acc & WRITE) !== 0 ? 0x60 : 0x20;
          if ((lo & want) !== want) {
            lo = (lo | want) >>> 0;
            eLo[level] = lo;
            ram.write32(eMaddr[level], lo);
            writes++;
          }
          if (writes !== 0) c.guestAdWrites += writes;
          if ((lo & 0x40) !== 0) perms |= P_DIRTY;
          if ((lo & 0x100) !== 0) perms |= P_GLOBAL;
          // The data page's gfn (the leaf's frame, plus the VA's frame inside a large page),
          // through the nested step once more with the access's EPT rights.
          gfn = (hi & 0xfffff) * 0x10_0000 + (lo >>> 12);
          if (level === 2) {
            pageShift = 21;
            gfn += ((vaLo >>> 12) & 0x1ff) - ((lo >>> 12) & 0x1ff);
          } else if (level !== 1) {
            pageShift = 30;
            gfn += ((vaLo >>> 12) & 0x3_ffff) - ((lo >>> 12) & 0x3_ffff);
          }
          need =
            EPT_R | ((access & WRITE) !== 0 ? EPT_W : 0) | ((access & FETCH) !== 0 ? EPT_X : 0);
          // The data page's nested TLB probe here (a hit ends the walk without another pass
          // through the loop); on a miss the nested step above walks, without probing again.
          if (Q !== 0) {
            const qs = qBase + ((gfn + qDom) & qMask);
            if (ntlbDom[qs] === dom && ntlbGfn[qs] === gfn) {
              const np = this.ntlbPerm[qs];
              if ((np & need) === need) {
                c.nestedTlbHits++;
                nShift = LEAF_SHIFT[np >>> 3];
                tmfn = this.ntlbMfn[qs] >>> 0;
                break;
              }
            }
            c.nestedTlbMisses++;
          }
          data = true;
        }
      }
      const mfn = tmfn;
      if (tlb !== null) {
        if (pwc !== null && startLevel > level) {
          // Of walkBegin's fields, what the fill reads besides the loop's (nothing else reads `out`).
          out.startLevel = startLevel;
          pwc.fill(page, 0, out);
        }
        // The combined page is the smaller of the guest's page and the host's.
        const shift = Math.min(pageShift, nShift);
        if (shift < pageShift) c.splinteredFills++;
        // The frame the combined page starts at: mfn less the VA's frame inside the page.
        const first =
          shift === 12
            ? mfn
            : shift === 21
              ? mfn - ((vaLo >>> 12) & 0x1ff)
              : mfn - ((vaLo >>> 12) & 0x3_ffff);
        // Tlb.insert with the VA's page through the TLB's double field (see insertAtVa): an
        // argument of the call, V8 boxed it on every walk where it did not inline insert.
        // Not made when no level has an array of the page's size: insert would put it nowhere.
        if ((this.fillSizes & (1 << shift)) !== 0) {
          tlb.insertVa = page;
          tlb.insertAtVa(0, first, shift, perms);
        }
      }
      this.slowMa = mfn * 4096 + (va - vpn * 4096);
      return;
    }
    this.faultVa = va;
    this.slowMa = this.guestFault(acc);
  }

  /** A guest page fault at `faultVa`. */
  private guestFault(errorCode: number): number {
    this.fault.va = this.faultVa;
    this.fault.errorCode = errorCode;
    this.counts.guestFaults++;
    return FAULT;
  }

  /** A guest page fault at `faultVa` that ends a walk after `reads` guest entries (walkStep's fault). */
  private walk2dFault(reads: number, errorCode: number): number {
    this.counts.guestRefs += reads;
    return this.guestFault(errorCode);
  }

  /**
   * gfn -> mfn through the domain's nested table (nested TLB, then the nested structure
   * caches, then the walk). `need` holds VMX_EPT_* permission bits. Returns the mfn, or
   * N_VIOLATION / N_MISCONFIG. For guestStore; translateSlow has the same steps written out
   * (keep the two alike: test/differential.test.ts and the c-reference test hold the walk).
   */
  private nested(p: number, dom: number, gfn: number, need: number): number {
    const Q = this.ntlbSize;
    if (Q === 0) return this.nestedWalk(p, dom, gfn, need, 0);
    const qs = p * Q + ((gfn + dom * 5) & (Q - 1));
    if (this.ntlbDom[qs] === dom && this.ntlbGfn[qs] === gfn) {
      const np = this.ntlbPerm[qs];
      if ((np & need) === need) {
        this.counts.nestedTlbHits++;
        return this.ntlbMfn[qs];
      }
    }
    this.counts.nestedTlbMisses++;
    return this.nestedWalk(p, dom, gfn, need, qs);
  }

  /**
   * nested() after a nested TLB miss (`qs` the nested TLB slot to fill): the nested structure
   * caches, then the walk of the nested table from the deepest level they give.
   */
  private nestedWalk(p: number, dom: number, gfn: number, need: number, qs: number): number {
    const c = this.counts;
    const Q = this.ntlbSize;
    const m = this.nestedLevels;
    let level = m;
    let table = this.eptRoots[dom];
    if (table < 0 || !(gfn >= 0 && gfn < 2 ** 40)) return N_VIOLATION;
    const N = this.npwcSize;
    if (N !== 0) {
      for (let L = 1; L < m; L++) {
        const key = Math.floor(gfn * SCALE9[L]);
        const s = (p * m + L) * N + ((key + dom) & (N - 1));
        if (this.npwcDom[s] === dom && this.npwcTag[s] === key) {
          c.nestedPwcHits++;
          level = L;
          table = this.npwcMfn[s];
          break;
        }
      }
    }
    const ram = this.ram;
    const nrFrames = ram.nrFrames;
    const sink = this.walkRefSink;
    // EPT bits as literals (an imported binding is a cell load and a hole check at each
    // use; test/differential.test.ts checks them against ./vmx): R 1, W 2, RWX 7, page size
    // 0x80, the memory type in bits 3..5.
    const R = 1;
    const W = 2;
    const RWX = 7;
    const PS = 0x80;
    // gfn (a whole number below 2^40) as its low 32 bits and the 8 above, so that each
    // level's index is 32-bit shifts; the table frame as a uint32 (a table is in RAM, and
    // RAM has at most 2^32 frames), with the RAM chunk view of the previous table reused
    // when the next is in the same chunk (frame >>> 9: machine's 512-frame chunks).
    const gLo = gfn >>> 0;
    const gHi = gfn < 0x1_0000_0000 ? 0 : ((gfn - gLo) * 2 ** -32) | 0;
    let tableU = table >>> 0;
    let chunk = -1;
    let words: Uint32Array = EMPTY_WORDS;
    let perm = RWX;
    let refs = 0;
    let lo = 0;
    let hi = 0;
    let idx = 0;
    let result = 0;
    // The levels written out, 5 (entered only with 5-level EPT) down to 1, entered at
    // `level`; each index is gfn's bits 9(level-1) .. 9level-1. A block breaks out with
    // `result` set on a violation or misconfiguration, or at a leaf with `result` 0.
    // biome-ignore lint/suspicious/noConfusingLabels: one block left at the level that ends the walk
    descend: {
      if (level >= 5) {
        level = 5;
        idx = (gHi >>> 4) & 511;
        const ch = tableU >>> 9;
        if (ch !== chunk) {
          words = ram.chunkWordsForRead(tableU);
          chunk = ch;
        }
        const w = ((tableU & 511) << 10) | (idx << 1);
        lo = words[w];
        hi = words[w | 1];
        refs++;
        if (sink !== null) sink(tableU * 4096 + idx * 8);
        const rwx = lo & RWX;
        if (rwx === 0) {
          result = N_VIOLATION;
          break descend;
        }
        if ((rwx & W) !== 0 && (rwx & R) === 0) {
          result = N_MISCONFIG;
          break descend;
        }
        perm &= rwx;
        // A large leaf at level 5 is a misconfiguration.
        if ((lo & PS) !== 0) {
          result = N_MISCONFIG;
          break descend;
        }
        // The next table: past RAM (a frame of 2^32 or more included) is a misconfiguration.
        const th = hi & ADDR_HI_MASK;
        const next = ((th << 20) | (lo >>> 12)) >>> 0;
        if (th >= 0x1000 || next >= nrFrames) {
          result = N_MISCONFIG;
          break descend;
        }
        if (N !== 0) this.npwcFill(p, dom, gfn, 4, next);
        tableU = next;
      }
      if (level >= 4) {
        level = 4;
        idx = ((gLo >>> 27) | (gHi << 5)) & 511;
        const ch = tableU >>> 9;
        if (ch !== chunk) {
          words = ram.chunkWordsForRead(tableU);
          chunk = ch;
        }
        const w = ((tableU & 511) << 10) | (idx << 1);
        lo = words[w];
        hi = words[w | 1];
        refs++;
        if (sink !== null) sink(tableU * 4096 + idx * 8);
        const rwx = lo & RWX;
        if (rwx === 0) {
          result = N_VIOLATION;
          break descend;
        }
        if ((rwx & W) !== 0 && (rwx & R) === 0) {
          result = N_MISCONFIG;
          break descend;
        }
        perm &= rwx;
        // A large leaf at level 4 is a misconfiguration.
        if ((lo & PS) !== 0) {
          result = N_MISCONFIG;
          break descend;
        }
        // The next table: past RAM (a frame of 2^32 or more included) is a misconfiguration.
        const th = hi & ADDR_HI_MASK;
        const next = ((th << 20) | (lo >>> 12)) >>> 0;
        if (th >= 0x1000 || next >= nrFrames) {
          result = N_MISCONFIG;
          break descend;
        }
        if (N !== 0) this.npwcFill(p, dom, gfn, 3, next);
        tableU = next;
      }
      if (level >= 3) {
        level = 3;
        idx = (gLo >>> 18) & 511;
        const ch = tableU >>> 9;
        if (ch !== chunk) {
          words = ram.chunkWordsForRead(tableU);
          chunk = ch;
        }
        const w = ((tableU & 511) << 10) | (idx << 1);
        lo = words[w];
        hi = words[w | 1];
        refs++;
        if (sink !== null) sink(tableU * 4096 + idx * 8);
        const rwx = lo & RWX;
        if (rwx === 0) {
          result = N_VIOLATION;
          break descend;
        }
        if ((rwx & W) !== 0 && (rwx & R) === 0) {
          result = N_MISCONFIG;
          break descend;
        }
        perm &= rwx;
        if ((lo & PS) !== 0) break descend;
        // The next table: past RAM (a frame of 2^32 or more included) is a misconfiguration.
        const th = hi & ADDR_HI_MASK;
        const next = ((th << 20) | (lo >>> 12)) >>> 0;
        if (th >= 0x1000 || next >= nrFrames) {
          result = N_MISCONFIG;
          break descend;
        }
        if (N !== 0) this.npwcFill(p, dom, gfn, 2, next);
        tableU = next;
      }
      if (level >= 2) {
        level = 2;
        idx = (gLo >>> 9) & 511;
        const ch = tableU >>> 9;
        if (ch !== chunk) {
          words = ram.chunkWordsForRead(tableU);
          chunk = ch;
        }
        const w = ((tableU & 511) << 10) | (idx << 1);
        lo = words[w];
        hi = words[w | 1];
        refs++;
        if (sink !== null) sink(tableU * 4096 + idx * 8);
        const rwx = lo & RWX;
        if (rwx === 0) {
          result = N_VIOLATION;
          break descend;
        }
        if ((rwx & W) !== 0 && (rwx & R) === 0) {
          result = N_MISCONFIG;
          break descend;
        }
        perm &= rwx;
        if ((lo & PS) !== 0) break descend;
        // The next table: past RAM (a frame of 2^32 or more included) is a misconfiguration.
        const th = hi & ADDR_HI_MASK;
        const next = ((th << 20) | (lo >>> 12)) >>> 0;
        if (th >= 0x1000 || next >= nrFrames) {
          result = N_MISCONFIG;
          break descend;
        }
        if (N !== 0) this.npwcFill(p, dom, gfn, 1, next);
        tableU = next;
      }
      if (level >= 1) {
        level = 1;
        idx = gLo & 511;
        const ch = tableU >>> 9;
        if (ch !== chunk) {
          words = ram.chunkWordsForRead(tableU);
          chunk = ch;
        }
        const w = ((tableU & 511) << 10) | (idx << 1);
        lo = words[w];
        hi = words[w | 1];
        refs++;
        if (sink !== null) sink(tableU * 4096 + idx * 8);
        const rwx = lo & RWX;
        if (rwx === 0) {
          result = N_VIOLATION;
          break descend;
        }
        if ((rwx & W) !== 0 && (rwx & R) === 0) {
          result = N_MISCONFIG;
          break descend;
        }
        perm &= rwx;
        break descend;
      }
    }
    c.nestedRefs += refs;
    if (result !== 0) return result;
    // The leaf at `level` (1, 2 or 3).
    const mt = (lo & 0x38) >>> 3;
    if (mt === 2 || mt === 3 || mt === 7) return N_MISCONFIG;
    // A large leaf's frame is aligned down to its span (2^20, a multiple of every span,
    // drops out of the low bits), plus gfn's frame inside the span.
    let mfn = (hi & ADDR_HI_MASK) * TWO_20 + (lo >>> 12);
    if (level === 2) mfn += (gLo & 0x1ff) - ((lo >>> 12) & 0x1ff);
    else if (level === 3) mfn += (gLo & 0x3_ffff) - ((lo >>> 12) & 0x3_ffff);
    if (mfn >= nrFrames) return N_MISCONFIG;
    if ((perm & need) !== need) return N_VIOLATION;
    if (Q !== 0) {
      this.ntlbDom[qs] = dom;
      this.ntlbGfn[qs] = gfn;
      this.ntlbMfn[qs] = mfn;
      this.ntlbPerm[qs] = perm | (level << 3);
    }
    return mfn;
  }

  /** Caches a nested table a walk went through: gfn's prefix above level L + 1 -> its frame. */
  private npwcFill(p: number, dom: number, gfn: number, L: number, next: number): void {
    const m = this.nestedLevels;
    const N = this.npwcSize;
    const key = Math.floor(gfn * SCALE9[L]);
    const s = (p * m + L) * N + ((key + dom) & (N - 1));
    this.npwcTag[s] = key;
    this.npwcMfn[s] = next;
    this.npwcDom[s] = dom;
  }

  /**
   * A VM exit from a nested walk of the translation of `faultVa`: the host handles it; the
   * walk restarts or the guest faults.
   */
  private nestedExit(code: number, dom: number, gfn: number, acc: number): number {
    const va = this.faultVa;
    const reason = code === N_VIOLATION ? EXIT_REASON_EPT_VIOLATION : EXIT_REASON_EPT_MISCONFIG;
    this.exits[reason]++;
    if (this.hv.tracing) this.hv.trace({ kind: "vmexit", domid: dom, reason, gpa: gfn * 4096 });
    if (this.handleNestedExit(reason, dom, gfn)) return RETRY;
    this.counts.unbackedAccesses++;
    this.faultVa = va;
    this.guestFault(PFEC_page_present | PFEC_reserved_bit | acc);
    this.fault.gpa = Number.isFinite(gfn) ? gfn * 4096 : -1;
    this.fault.exitReason = reason;
    return FAULT;
  }

  /**
   * The host's EPT_VIOLATION / EPT_MISCONFIG handler: backs a gfn the domain owns (with the
   * largest host page that fits), or marks one it does not own with the MMIO value.
   * Returns whether the access can be retried.
   */
  private handleNestedExit(reason: number, dom: number, gfn: number): boolean {
    // Any gfn below MAXPHYADDR may be marked: KVM installs an MMIO spte for every gfn without
    // a memslot, device windows above RAM included, so later accesses exit as misconfigs.
    if (!(Number.isInteger(gfn) && gfn >= 0 && gfn < 2 ** 40)) return false;
    const d = this.hv.domain(dom);
    if (d === undefined || d.state === "dying" || d.state === "dead") return false;
    // The compare first; populate on demand (a PoD block of the domain) only when it misses.
    const owned =
      gfn < this.ram.nrFrames &&
      (this.ownerKeys[gfn] === ~dom || this.hv.frames.populateFor(gfn, dom));
    const leaf = this.findLeaf(dom, gfn);
    if (reason === EXIT_REASON_EPT_MISCONFIG) {
      // Only KVM's MMIO marker is ours to fix; any other misconfiguration stays.
      if (leaf < 0 || (this.ram.read64lo(leaf) & VMX_EPT_RWX_MASK) !== VMX_EPT_MISCONFIG_WX_VALUE)
        return false;
      if (!owned) return false;
      this.ram.write64(leaf, 0, 0);
      return this.backGfn(d, gfn);
    }
    if (leaf >= 0 && (this.ram.read64lo(leaf) & VMX_EPT_RWX_MASK) !== 0) return false;
    if (!owned) {
      this.setLeaf4k(d, gfn, VMX_EPT_MISCONFIG_WX_VALUE, 0);
      return false;
    }
    return this.backGfn(d, gfn);
  }

  // ---------------------------------------------------------------------------------------
  // The host's nested table

  /**
   * Whether frames [base, base + count) all belong to `dom`, populating any of its PoD
   * blocks in the run (the run is about to be mapped whole) only if they all do.
   */
  private ownsRun(dom: number, base: number, count: number): boolean {
    if (base + count > this.ram.nrFrames) return false;
    const keys = this.ownerKeys;
    const key = ~dom;
    for (let i = base; i < base + count; i++)
      if (keys[i] !== key) return this.hv.frames.populateRun(base, count, dom);
    return true;
  }

  private allocTable(d: Domain): number {
    const mfn = this.hv.frames.allocate(DOMID_XEN, 0);
    if (mfn < 0) {
      this.counts.nestedAllocFailures++;
      return -1;
    }
    this.ram.clearFrame(mfn);
    let list = this.tableFrames.get(d.domid);
    if (list === undefined) {
      list = [];
      this.tableFrames.set(d.domid, list);
    }
    list.push(mfn);
    this.counts.nestedTableFrames++;
    return mfn;
  }

  /**
   * The machine address of the entry at `level` on gfn's path, creating missing tables
   * above it; -1 if a table could not be allocated or a larger leaf covers gfn.
   */
  private entryAt(d: Domain, gfn: number, level: number): number {
    let root = this.eptRoots[d.domid];
    if (root < 0) {
      root = this.allocTable(d);
      if (root < 0) return -1;
      this.eptRoots[d.domid] = root;
    }
    const ram = this.ram;
    let table = root;
    for (let L = this.nestedLevels; L > level; L--) {
      const a = table * 4096 + (Math.floor(gfn / this.pow[L - 1]) % 512) * 8;
      const lo = ram.read64lo(a);
      if ((lo & VMX_EPT_RWX_MASK) === 0) {
        const t = this.allocTable(d);
        if (t < 0) return -1;
        ram.write64(a, eptLo(t, VMX_EPT_RWX_MASK), eptHi(t));
        table = t;
      } else {
        if ((lo & PT_PAGE_SIZE_MASK) !== 0) return -1;
        table = (ram.read64hi(a) & ADDR_HI_MASK) * TWO_20 + (lo >>> 12);
      }
    }
    return table * 4096 + (Math.floor(gfn / this.pow[level - 1]) % 512) * 8;
  }

  /** The machine address of the entry that maps gfn (a leaf at any level, or the empty slot where the walk stops), or -1. */
  private findLeaf(dom: number, gfn: number): number {
    let table = this.eptRoots[dom];
    if (table < 0) return -1;
    const ram = this.ram;
    for (let L = this.nestedLevels; L >= 1; L--) {
      const a = table * 4096 + (Math.floor(gfn / this.pow[L - 1]) % 512) * 8;
      const lo = ram.read64lo(a);
      if (L === 1 || (lo & VMX_EPT_RWX_MASK) === 0 || (lo & PT_PAGE_SIZE_MASK) !== 0) return a;
      if ((lo & VMX_EPT_READABLE_MASK) === 0) return a;
      table = (ram.read64hi(a) & ADDR_HI_MASK) * TWO_20 + (lo >>> 12);
      if (table >= ram.nrFrames) return -1;
    }
    return -1;
  }

  private setLeaf4k(d: Domain, gfn: number, lo: number, hi: number): boolean {
    const a = this.entryAt(d, gfn, 1);
    if (a < 0) return false;
    this.ram.write64(a, lo >>> 0, hi);
    return true;
  }

  /** Maps gfn (which `d` owns) to the same mfn with the largest host page that fits. */
  private backGfn(d: Domain, gfn: number): boolean {
    const dom = d.domid;
    const ram = this.ram;
    const leafFlags = VMX_EPT_RWX_MASK | (MTRR_TYPE_WRBACK << VMX_EPT_MT_EPTE_SHIFT);
    for (const level of this.hostPageSize === "1G"
      ? [3, 2]
      : this.hostPageSize === "2M"
        ? [2]
        : []) {
      const span = this.pow[level - 1];
      const base = gfn - (gfn % span);
      if (!this.ownsRun(dom, base, span)) continue;
      const a = this.entryAt(d, gfn, level);
      if (a < 0 || (ram.read64lo(a) & VMX_EPT_RWX_MASK) !== 0) continue;
      ram.write64(a, eptLo(base, leafFlags | PT_PAGE_SIZE_MASK), eptHi(base));
      if (level === 3) this.counts.backed1g++;
      else this.counts.backed2m++;
      return true;
    }
    if (!this.setLeaf4k(d, gfn, eptLo(gfn, leafFlags), eptHi(gfn))) return false;
    this.counts.backed4k++;
    return true;
  }

  /** The nested table's root frame for a domain, or -1 before its first EPT violation. */
  eptRoot(d: Domain): number {
    return this.eptRoots[d.domid] ?? -1;
  }

  /** How the nested table maps gfn now: the mfn and host page size, or null. */
  nestedMapping(d: Domain, gfn: number): { mfn: number; pageSize: HostPageSize } | null {
    if (!Number.isInteger(gfn) || gfn < 0 || gfn >= 2 ** 40) return null;
    let table = this.eptRoots[d.domid];
    if (table < 0) return null;
    const ram = this.ram;
    for (let L = this.nestedLevels; L >= 1; L--) {
      const a = table * 4096 + (Math.floor(gfn / this.pow[L - 1]) % 512) * 8;
      const lo = ram.read64lo(a);
      if ((lo & VMX_EPT_READABLE_MASK) === 0) return null;
      const next = (ram.read64hi(a) & ADDR_HI_MASK) * TWO_20 + (lo >>> 12);
      if (L === 1 || (lo & PT_PAGE_SIZE_MASK) !== 0) {
        const span = this.pow[L - 1];
        return {
          mfn: next - (next % span) + (gfn % span),
          pageSize: L === 3 ? "1G" : L === 2 ? "2M" : "4K",
        };
      }
      table = next;
    }
    return null;
  }

  /**
   * Removes the nested mapping of gfn (a whole large page if one covers it) and issues
   * INVEPT for the domain: what KVM's MMU notifier does when the host takes a page away.
   * Returns whether a mapping was removed.
   */
  zapGfn(d: Domain, gfn: number): boolean {
    if (!Number.isInteger(gfn) || gfn < 0 || gfn >= 2 ** 40) {
      throw nptMmuError("NPT_BAD_GFN", `zapGfn needs a whole gfn below 2^40, got ${gfn}.`);
    }
    const a = this.findLeaf(d.domid, gfn);
    if (a < 0 || (this.ram.read64lo(a) & VMX_EPT_RWX_MASK) === 0) return false;
    this.ram.write64(a, 0, 0);
    this.invept(VMX_EPT_EXTENT_CONTEXT, d);
    return true;
  }

  /** Called by the plugin when a domain is destroyed: frees its nested table. */
  domainDestroyed(d: Domain): void {
    const list = this.tableFrames.get(d.domid);
    if (list !== undefined) {
      for (const mfn of list) this.hv.frames.release(mfn);
      this.counts.nestedTableFrames -= list.length;
      this.tableFrames.delete(d.domid);
    }
    this.eptRoots[d.domid] = -1;
    this.invept(VMX_EPT_EXTENT_CONTEXT, d);
  }

  // ---------------------------------------------------------------------------------------
  // Guest stores

  /**
   * A guest store of a 64-bit value at guest-physical address `gpa` (a page-table entry, or
   * any other word). The store goes through the nested table (an unbacked page exits and is
   * backed first). Returns 0, -EINVAL for a misaligned or out-of-range address, or -EFAULT
   * when the domain has no RAM there. The same entry point exists on every MMU backend that
   * lets the guest write its own page tables.
   */
  guestStore(vcpu: Vcpu, gpa: number, lo: number, hi: number): number {
    if (!(Number.isInteger(gpa) && gpa >= 0 && gpa < 2 ** 52 && gpa % 8 === 0)) return -EINVAL;
    const gfn = Math.floor(gpa / 4096);
    const dom = vcpu.domain.domid;
    for (let attempt = 0; attempt < 3; attempt++) {
      const mfn = this.nested(
        vcpu.processor,
        dom,
        gfn,
        VMX_EPT_READABLE_MASK | VMX_EPT_WRITABLE_MASK,
      );
      if (mfn >= 0) {
        this.ram.write64(mfn * 4096 + (gpa % 4096), lo >>> 0, hi >>> 0);
        this.counts.guestStores++;
        return 0;
      }
      const reason = mfn === N_VIOLATION ? EXIT_REASON_EPT_VIOLATION : EXIT_REASON_EPT_MISCONFIG;
      this.exits[reason]++;
      if (!this.handleNestedExit(reason, dom, gfn)) {
        this.counts.unbackedAccesses++;
        return -EFAULT;
      }
    }
    return -EFAULT;
  }

  /**
   * A guest store through a virtual address, as `*ptep = val` compiles to (the entry point
   * pv-mmu and shadow-mmu share): translate for a write, then store. Returns false when the
   * store faulted (details in `fault`) or `va` is not 8-byte aligned.
   */
  write64(vcpu: Vcpu, va: number, lo: number, hi: number): boolean {
    if (!(Number.isInteger(va) && va % 8 === 0)) return false;
    const ma = this.translate(vcpu, va, PFEC_write_access);
    if (ma < 0) return false;
    this.ram.write64(ma, lo >>> 0, hi >>> 0);
    return true;
  }

  /** MOV to CR3 by the guest: sets its page-table root (a gfn) and flushes its non-global entries. */
  writeCr3(vcpu: Vcpu, gfn: number): void {
    vcpu.cr3Mfn = gfn;
    this.flushLocal(vcpu);
  }

  // ---------------------------------------------------------------------------------------
  // Flushes

  /** A guest CR3 reload: no exit with EPT; the vCPU's non-global entries and structure caches go. */
  flushLocal(vcpu: Vcpu): void {
    if (vcpu.uid >= this.lastCr3.length) this.growVcpus(vcpu.uid);
    this.cr3Loaded(vcpu);
  }

  private cr3Loaded(vcpu: Vcpu): void {
    this.lastCr3[vcpu.uid] = vcpu.cr3Mfn;
    this.counts.guestCr3Loads++;
    this.tlbs.peek(vcpu.uid)?.flushNonGlobal();
  }

  /** A guest INVLPG: no exit with EPT and VPID; the address's entries (global too) go. */
  flushOne(vcpu: Vcpu, va: number): void {
    this.counts.guestInvlpg++;
    if (Number.isFinite(va)) this.tlbs.peek(vcpu.uid)?.invlpg(va, 0);
  }

  /**
   * INVEPT by the host: VMX_EPT_EXTENT_CONTEXT drops everything derived from domain `d`'s
   * nested table (combined TLB entries and structure caches of all its vCPUs, nested
   * structure caches, nested TLB); VMX_EPT_EXTENT_GLOBAL drops everything of every domain.
   */
  invept(type: number, d?: Domain): void {
    if (type === VMX_EPT_EXTENT_GLOBAL) {
      this.counts.invept++;
      this.tlbs.flushAll();
      this.npwcDom.fill(-1);
      this.ntlbDom.fill(-1);
      return;
    }
    if (type !== VMX_EPT_EXTENT_CONTEXT || d === undefined) {
      throw nptMmuError(
        "NPT_BAD_INVEPT",
        `invept takes VMX_EPT_EXTENT_CONTEXT with a domain or VMX_EPT_EXTENT_GLOBAL, got type ${type}${d === undefined ? " without a domain" : ""}.`,
      );
    }
    this.counts.invept++;
    const dom = d.domid;
    for (const v of d.vcpus) this.tlbs.peek(v.uid)?.flushAll();
    for (let i = 0; i < this.npwcDom.length; i++) if (this.npwcDom[i] === dom) this.npwcDom[i] = -1;
    for (let i = 0; i < this.ntlbDom.length; i++) if (this.ntlbDom[i] === dom) this.ntlbDom[i] = -1;
  }

  /**
   * INVVPID by the host: individual-address (vcpu and va), single-context (vcpu),
   * all-context, or single-context-retaining-globals (vcpu). It drops combined TLB and guest
   * structure-cache entries of the VPID; nested-only (guest-physical) entries stay.
   */
  invvpid(type: number, vcpu?: Vcpu, va?: number): void {
    if (type === VMX_VPID_EXTENT_ALL_CONTEXT) {
      this.counts.invvpid++;
      this.tlbs.flushAll();
      return;
    }
    if (vcpu === undefined) {
      throw nptMmuError(
        "NPT_BAD_INVVPID",
        `invvpid type ${type} needs the vCPU whose VPID to flush.`,
      );
    }
    const tlb = this.tlbs.peek(vcpu.uid);
    if (type === VMX_VPID_EXTENT_INDIVIDUAL_ADDR) {
      if (typeof va !== "number" || !Number.isInteger(va) || va < 0) {
        throw nptMmuError(
          "NPT_BAD_INVVPID",
          `invvpid individual-address needs a whole va >= 0, got ${va}.`,
        );
      }
      this.counts.invvpid++;
      tlb?.invlpg(va, 0);
      return;
    }
    if (type === VMX_VPID_EXTENT_SINGLE_CONTEXT) {
      this.counts.invvpid++;
      tlb?.flushAll();
      return;
    }
    if (type === VMX_VPID_EXTENT_SINGLE_NON_GLOBAL) {
      this.counts.invvpid++;
      tlb?.flushNonGlobal();
      return;
    }
    throw nptMmuError(
      "NPT_BAD_INVVPID",
      `invvpid type must be one of VMX_VPID_EXTENT_* (0..3), got ${type}.`,
    );
  }

  private growVcpus(uid: number): void {
    let len = this.lastCr3.length;
    while (len <= uid) len *= 2;
    const next = new Float64Array(len).fill(-2);
    next.set(this.lastCr3);
    this.lastCr3 = next;
  }
}

function eptLo(mfn: number, flags: number): number {
  return ((mfn % TWO_20) * 4096 + flags) >>> 0;
}

function eptHi(mfn: number): number {
  return Math.floor(mfn / TWO_20);
}

/** The error-code bits of an access a #PF reports (paging's rule: I/D only with EFER.NXE). */
function faultCode(access: number, mode: PagingMode): number {
  return access & (mode.nxe ? 0x16 : 0x06);
}
