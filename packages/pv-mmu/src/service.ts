/*
 * The PV MMU service: Xen's PV memory hypercalls, the vCPU's view of memory (translate,
 * guest reads and writes), writable page-table emulation, and per-domain lifecycle.
 *
 * Invariants: every handler checks every guest-supplied field and answers with Xen's
 * negative errno (or, for the reservation ops, the count of extents done, as Xen does);
 * nothing here throws on guest input. A vCPU's cr3Mfn / userCr3Mfn each hold one general and
 * one L4 type reference; a pin holds one of each; both are dropped by the one cleanup path,
 * `domainDestroyed`. After any call that changes a mapping a guest may still cache, the
 * guest's own flush is what makes the change visible, as on hardware, except where Xen
 * flushes for safety (type changes, linear page-table updates, frames reused).
 */
import {
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_RW,
  DOMID_IO,
  DOMID_SELF,
  DOMID_XEN,
  EACCES,
  EFAULT,
  EINVAL,
  ENOMEM,
  ENOSYS,
  ENXIO,
  EOPNOTSUPP,
  EPERM,
  ESRCH,
  MACH2PHYS_NR_ENTRIES,
  MMU_MACHPHYS_UPDATE,
  MMU_NORMAL_PT_UPDATE,
  MMU_PT_UPDATE_NO_TRANSLATE,
  MMU_PT_UPDATE_PRESERVE_AD,
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
  UVMF_ALL,
  UVMF_FLUSHTYPE_MASK,
  UVMF_INVLPG,
  UVMF_LOCAL,
  UVMF_TLB_FLUSH,
  VMASST_TYPE_m2p_strict,
  VMASST_TYPE_writable_pagetables,
  XENMEMF_populate_on_demand,
} from "@hyperlab/abi";
import {
  type Domain,
  type FrameTable,
  type Hypervisor,
  type MmuBackend,
  type MmuFault,
  PFEC_insn_fetch,
  PFEC_page_present,
  PFEC_reserved_bit,
  PFEC_user_mode,
  PFEC_write_access,
  PGC_allocated,
  PGC_count_mask,
  PGC_xen_heap,
  PGT_count_mask,
  PGT_l1_page_table,
  PGT_l2_page_table,
  PGT_l4_page_table,
  PGT_pinned,
  PGT_type_mask,
  PGT_validated,
  PGT_writable_page,
  type Vcpu,
} from "@hyperlab/core";
import type { Ram } from "@hyperlab/machine";
import {
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
  walk,
} from "@hyperlab/paging";
import { exchangeAddressLimit } from "./exchange";
import { M2p } from "./m2p";
import { PTE_MFN_HI_MASK, splitU64 } from "./pte";
import { PvPageTables, xsmTarget } from "./pv-mmu";
import {
  HYPERVISOR_VIRT_END_48,
  HYPERVISOR_VIRT_START_48,
  MMU_UPDATE_PREEMPTED,
  RO_MPT_VIRT_START_48,
  VA_LIMIT,
} from "./xen";

const TWO_20 = 0x10_0000;

/** One mmu_update request (struct mmu_update): `ptr` with the MMU_* command in bits 0..1, `val`. */
export interface MmuUpdate {
  ptr: number | bigint;
  val: number | bigint;
}

/** Arguments of HYPERVISOR_mmu_update. `ureqs` is an array, or 4 words per request (ptr lo, hi, val lo, hi). */
export interface MmuUpdateArgs {
  ureqs: readonly MmuUpdate[] | Uint32Array;
  count: number;
  /** Output: requests done (Xen's *pdone). */
  pdone?: number;
  foreigndom: number;
}

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

/** update_va_mapping: `flags` is UVMF_*; for a vCPU subset (UVMF_MULTI) pass `vcpumask`. */
export interface UpdateVaMappingArgs {
  va: number;
  val: number | bigint;
  flags: number;
  vcpumask?: readonly number[] | Uint32Array;
  /** update_va_mapping_otherdomain only. */
  domid?: number;
}

/** struct xen_memory_reservation. `extent_start` is read and written in place. */
export interface MemoryReservation {
  extent_start?: number[] | null;
  nr_extents: number;
  extent_order: number;
  mem_flags?: number;
  domid: number;
}

export interface MemoryOpArgs extends Partial<MemoryReservation> {
  cmd: number;
  in?: MemoryReservation;
  out?: MemoryReservation;
  nr_exchanged?: number;
}

/** TLB tags: a 64-bit PV vCPU's kernel and user page tables (Xen's PCIDs for each). */
const TAG_KERNEL = 0;
const TAG_USER = 1;

/** Per-vCPU PV state this package keeps. */
interface PvVcpu {
  tlb: Tlb;
  /** The root each tag's entries were filled from (-2: none yet). */
  roots: Float64Array;
  /** Flushes of this vCPU's TLB (local, all, CR3 loads). */
  flushes: number;
  /** Xen's arch.pv.ldt_base / ldt_ents. */
  ldtBase: number;
  ldtEnts: number;
}

/** Options of the PV MMU. */
export interface PvMmuOptions {
  /** TLB shape per vCPU (paging's Tlb config); the default is paging's Skylake-like TLB. */
  tlb?: TlbConfig;
}

/** Whether TLB rights `p` (PERM_*) allow `access` (PFEC_* bits); a write needs D already set. */
function allows(p: number, access: number): boolean {
  if ((access & PFEC_write_access) !== 0 && (p & (PERM_RW | PERM_DIRTY)) !== (PERM_RW | PERM_DIRTY))
    return false;
  if ((access & PFEC_user_mode) !== 0 && (p & PERM_USER) === 0) return false;
  if ((access & PFEC_insn_fetch) !== 0 && (p & PERM_NX) !== 0) return false;
  return true;
}

const scratch = { lo: 0, hi: 0 };
const scratch2 = { lo: 0, hi: 0 };

/** Stat counters the service bumps (filled by the plugin from ctx.stats). */
export interface PvMmuCounters {
  mmuUpdates: { value: number };
  ptwrEmulations: { value: number };
  tlbFlushes: { value: number };
  pageFaults: { value: number };
}

export class PvMmu implements MmuBackend {
  readonly kind = "pv";
  readonly hv: Hypervisor;
  readonly frames: FrameTable;
  readonly ram: Ram;
  readonly pt: PvPageTables;
  readonly m2p: M2p;
  readonly fault: MmuFault = { errorCode: 0, va: 0 };
  /** The paging mode of a 64-bit PV vCPU: 4 levels, NX, WP. */
  readonly mode: PagingMode = createPagingMode({ levels: 4 });
  /** Walks made, and the entries they read and wrote (A/D), for studies. */
  readonly walkCounts = { walks: 0, reads: 0, writes: 0 };
  private readonly out = new WalkResult();
  private readonly tlbConfig: TlbConfig;
  /*
   * Fast path (as native-mmu's): the most recent translation, of any vCPU. The same vCPU
   * touching the same page in the same mode again would hit that entry in the first TLB level,
   * where it is already most recently used, so it is counted as exactly that hit (a level-0
   * lookup and hit) without searching. Every other translation and every flush clears it.
   */
  private fastUid = -1;
  private fastTag = -1;
  private fastRoot = -1;
  private fastVpn = -1;
  private fastMfn = 0;
  private fastPerms = 0;
  private fastCounters: Float64Array = new Float64Array(2);
  private readonly vcpuState: (PvVcpu | undefined)[] = [];
  private lastFrees = 0;
  counters: PvMmuCounters = {
    mmuUpdates: { value: 0 },
    ptwrEmulations: { value: 0 },
    tlbFlushes: { value: 0 },
    pageFaults: { value: 0 },
  };

  constructor(hv: Hypervisor, options: PvMmuOptions = {}) {
    this.hv = hv;
    this.frames = hv.frames;
    this.ram = hv.machine.ram;
    this.pt = new PvPageTables(hv, {
      flushDomain: (domid) => this.flushDomain(domid),
      flushEverything: () => this.flushEverything(),
    });
    this.m2p = new M2p(this.frames, this.ram);
    this.pt.roMptL3 = this.m2p.l3;
    const prng = hv.machine.prng.fork("pv-mmu");
    this.tlbConfig = { random: () => prng.nextU32(), ...(options.tlb ?? {}) };
    this.lastFrees = hv.machine.frames.nrFrees;
  }

  // ---- vCPU state and TLB ----

  private pv(v: Vcpu): PvVcpu {
    let s = this.vcpuState[v.uid];
    if (s === undefined) {
      s = {
        tlb: new Tlb(this.tlbConfig),
        roots: new Float64Array([-2, -2]),
        flushes: 0,
        ldtBase: 0,
        ldtEnts: 0,
      };
      this.vcpuState[v.uid] = s;
    }
    return s;
  }

  /** The vCPU's TLB (paging's Tlb; tags 0 and 1 are the kernel and user tables). */
  tlbOf(v: Vcpu): Tlb {
    return this.pv(v).tlb;
  }

  /** How many times the vCPU's TLB was flushed (locally, by a CR3 load, or by a remote flush). */
  tlbFlushCount(v: Vcpu): number {
    return this.pv(v).flushes;
  }

  flushLocal(v: Vcpu): void {
    this.fastVpn = -1;
    this.counters.tlbFlushes.value++;
    const s = this.pv(v);
    s.flushes++;
    s.tlb.flushNonGlobal();
  }

  flushOne(v: Vcpu, va: number): void {
    this.fastVpn = -1;
    const t = this.pv(v).tlb;
    t.invlpg(va, TAG_KERNEL);
    t.invlpg(va, TAG_USER);
  }

  /** Flushes every vCPU of a domain (Xen's flush_tlb_mask(d->dirty_cpumask)). */
  flushAll(d: Domain): void {
    for (const v of d.vcpus) this.flushLocal(v);
  }

  private flushDomain(domid: number): void {
    const d = this.hv.domain(domid);
    if (d !== undefined) for (const v of d.vcpus) this.flushLocal(v);
  }

  private flushEverything(): void {
    for (const v of this.hv.vcpus) this.flushLocal(v);
    this.lastFrees = this.hv.machine.frames.nrFrees;
  }

  /**
   * Before frames are handed to a guest: if any frame was freed since the last full flush,
   * some TLB may still map it; flush (Xen's filtered flush on allocation, without timestamps).
   */
  flushIfFramesReused(): void {
    if (this.hv.machine.frames.nrFrees !== this.lastFrees) this.pt.flushAll();
  }

  // ---- translation (the mmu slot) ----

  /**
   * Translates `va` for `v` as the hardware does for a 64-bit PV guest: kernel and user run in
   * ring 3 on their own L4 (cr3Mfn / userCr3Mfn), so every walk is a user-mode walk; a fault
   * reports the error code Xen gives the guest (U clear in guest kernel mode).
   */
  translate(v: Vcpu, va: number, access: number): number {
    const tag = v.inKernel ? TAG_KERNEL : TAG_USER;
    const root = v.inKernel ? v.cr3Mfn : v.userCr3Mfn;
    const acc = access | PFEC_user_mode;
    const vpn = Math.floor(va / 4096);
    if (
      vpn === this.fastVpn &&
      v.uid === this.fastUid &&
      tag === this.fastTag &&
      root === this.fastRoot &&
      allows(this.fastPerms, acc)
    ) {
      const c = this.fastCounters;
      c[0]++; // level-0 lookups
      c[1]++; // level-0 hits
      return this.fastMfn * 4096 + (va - vpn * 4096);
    }
    this.fastVpn = -1;
    const s = this.vcpuState[v.uid] ?? this.pv(v);
    const tlb = s.tlb;
    if (s.roots[tag] !== root) {
      // A new base pointer for this mode: a CR3 load under this tag's PCID.
      tlb.flushTag(tag);
      s.roots[tag] = root;
    }
    if (tlb.lookup(va, tag)) {
      const p = tlb.hitPerms;
      this.fastUid = v.uid;
      this.fastTag = tag;
      this.fastRoot = root;
      this.fastVpn = vpn;
      this.fastMfn = tlb.hitMfn;
      this.fastPerms = p;
      this.fastCounters = tlb.counters;
      if (allows(p, acc)) return tlb.hitMfn * 4096 + (va % 4096);
    }
    let errorCode = acc & (PFEC_write_access | PFEC_user_mode | PFEC_insn_fetch);
    if (root >= 0) {
      const out = this.out;
      const c = this.walkCounts;
      const r0 = out.totalReads;
      const w0 = out.totalWrites;
      c.walks++;
      const ok = walk(this.ram, root, va, acc, this.mode, out, tlb.pwc, tag);
      c.reads += out.totalReads - r0;
      c.writes += out.totalWrites - w0;
      if (ok && out.maddr < this.ram.bytes) {
        // Guest global pages are not modelled as global (see README): every entry is per tag.
        tlb.insert(va, tag, out.pageMfn, out.pageShift, out.perms & ~PERM_GLOBAL);
        this.fastVpn = -1;
        return out.maddr;
      }
      if (!ok && out.errorCode !== 0) errorCode = out.errorCode;
      else if (ok) errorCode |= PFEC_page_present | PFEC_reserved_bit;
    }
    this.fault.va = va;
    this.fault.errorCode = v.inKernel ? errorCode & ~PFEC_user_mode : errorCode;
    this.counters.pageFaults.value++;
    return -1;
  }

  /** Reads `size` (1, 2 or 4) bytes at `va`; the value, or -1 after a fault (details in `fault`). */
  read(v: Vcpu, va: number, size: 1 | 2 | 4): number {
    if (Math.floor(va / 4096) !== Math.floor((va + size - 1) / 4096)) {
      let x = 0;
      for (let i = size - 1; i >= 0; i--) {
        const b = this.read(v, va + i, 1);
        if (b < 0) return -1;
        x = x * 256 + b;
      }
      return x;
    }
    const ma = this.translate(v, va, 0);
    if (ma < 0) return -1;
    return size === 4 ? this.ram.read32(ma) : size === 2 ? this.ram.read16(ma) : this.ram.read8(ma);
  }

  /** Reads the u64 at `va` into `out`; false after a fault. */
  read64(v: Vcpu, va: number, out: { lo: number; hi: number }): boolean {
    const lo = this.read(v, va, 4);
    if (lo < 0) return false;
    const hi = this.read(v, va + 4, 4);
    if (hi < 0) return false;
    out.lo = lo;
    out.hi = hi;
    return true;
  }

  /**
   * Writes `size` bytes at `va`. A write that faults on a present read-only page in guest
   * kernel mode, with VMASST_TYPE_writable_pagetables on, goes to the ptwr emulation; true if
   * the write happened (directly or emulated), false after a fault.
   */
  write(v: Vcpu, va: number, size: 1 | 2 | 4, value: number): boolean {
    if (Math.floor(va / 4096) !== Math.floor((va + size - 1) / 4096)) {
      for (let i = 0; i < size; i++)
        if (!this.write(v, va + i, 1, (value >>> (8 * i)) & 0xff)) return false;
      return true;
    }
    const ma = this.translate(v, va, PFEC_write_access);
    if (ma < 0) {
      return this.tryPtwr(v, va, size, value >>> 0, 0);
    }
    if (size === 4) this.ram.write32(ma, value >>> 0);
    else if (size === 2) this.ram.write16(ma, value & 0xffff);
    else this.ram.write8(ma, value & 0xff);
    return true;
  }

  /** Writes the u64 (lo, hi) at `va` (naturally aligned writes reach ptwr whole). */
  write64(v: Vcpu, va: number, lo: number, hi: number): boolean {
    if (va % 8 === 0) {
      const ma = this.translate(v, va, PFEC_write_access);
      if (ma < 0) return this.tryPtwr(v, va, 8, lo >>> 0, hi >>> 0);
      this.ram.write64(ma, lo, hi);
      return true;
    }
    return this.write(v, va, 4, lo) && this.write(v, va + 4, 4, hi);
  }

  private tryPtwr(v: Vcpu, va: number, size: number, lo: number, hi: number): boolean {
    const ec = this.fault.errorCode;
    if (
      v.inKernel &&
      v.domain.vmAssist.has(VMASST_TYPE_writable_pagetables) &&
      (ec & (PFEC_page_present | PFEC_write_access | PFEC_reserved_bit | PFEC_insn_fetch)) ===
        (PFEC_page_present | PFEC_write_access) &&
      this.ptwrEmulate(v, va, size, lo, hi)
    ) {
      this.counters.pageFaults.value--; // fixed up by Xen: the guest never sees it
      return true;
    }
    return false;
  }

  /**
   * Xen's ptwr_emulated_update: the guest wrote `size` bytes at `va`, which its kernel L1
   * maps read-only onto one of its own validated L1 page tables. The write becomes a
   * validated update of the entry it covers. True if handled.
   */
  ptwrEmulate(v: Vcpu, va: number, size: number, lo: number, hi: number): boolean {
    const d = v.domain;
    // guest_get_eff_kern_l1e: the kernel L1 entry that maps va.
    const loc = this.guestL1Slot(v.cr3Mfn, va);
    if (loc < 0) return false;
    const l1mfn = Math.floor(loc / 512);
    const slot = loc % 512;
    const plo = this.pt.readLo(l1mfn, slot);
    const phi = this.pt.readHi(l1mfn, slot);
    if ((plo & (_PAGE_PRESENT | _PAGE_RW)) !== _PAGE_PRESENT) return false;
    const mfn = (phi & PTE_MFN_HI_MASK) * TWO_20 + (plo >>> 12);
    if (!this.frames.getPage(mfn, d.domid)) return false;
    let ok = false;
    if (
      this.pt.lockable(mfn) &&
      (this.frames.typeInfo[mfn] & PGT_type_mask) >>> 0 === PGT_l1_page_table
    ) {
      // Only naturally aligned stores of 1, 2, 4 or 8 bytes.
      if ((size === 1 || size === 2 || size === 4 || size === 8) && va % size === 0) {
        const off = va % 4096;
        const entry = off >>> 3;
        let nlo = lo;
        let nhi = hi;
        if (size !== 8) {
          // A sub-word store: merge into the full entry.
          let olo = this.pt.readLo(mfn, entry);
          let ohi = this.pt.readHi(mfn, entry);
          const bit = (off % 8) * 8;
          const mask = size === 4 ? 0xffff_ffff : (1 << (size * 8)) - 1;
          if (bit < 32) {
            olo = ((olo & ~(mask << bit)) | ((lo & mask) << bit)) >>> 0;
          } else {
            ohi = ((ohi & ~(mask << (bit - 32))) | ((lo & mask) << (bit - 32))) >>> 0;
          }
          nlo = olo;
          nhi = ohi;
        }
        ok = this.pt.modL1Entry(mfn, entry, nlo, nhi, MMU_NORMAL_PT_UPDATE, d, d) === 0;
        if (ok) this.counters.ptwrEmulations.value++;
      }
    }
    this.frames.putPage(mfn);
    return ok;
  }

  /**
   * The L1 slot that maps `va` under the L4 `l4` (Xen's map_guest_l1e / linear L1 lookup):
   * l1mfn * 512 + index, or -1 if an upper level is not present or is a superpage.
   */
  guestL1Slot(l4: number, va: number): number {
    if (
      l4 < 0 ||
      !(va >= 0 && va < VA_LIMIT) ||
      (va >= HYPERVISOR_VIRT_START_48 && va < HYPERVISOR_VIRT_END_48)
    )
      return -1;
    let table = l4;
    for (let level = 4; level >= 2; level--) {
      const shift = 12 + 9 * (level - 1);
      const idx = Math.floor(va / 2 ** shift) % 512;
      const lo = this.pt.readLo(table, idx);
      if ((lo & _PAGE_PRESENT) === 0 || (level < 4 && (lo & _PAGE_PSE) !== 0)) return -1;
      const next = (this.pt.readHi(table, idx) & PTE_MFN_HI_MASK) * TWO_20 + (lo >>> 12);
      if (next >= this.frames.nrFrames) return -1;
      table = next;
    }
    return table * 512 + (Math.floor(va / 4096) % 512);
  }

  // ---- domains ----

  /** get_pg_owner: DOMID_SELF is the caller; naming oneself by number is refused, as in Xen. */
  private getPgOwner(v: Vcpu, domid: number): Domain | undefined {
    const curr = v.domain;
    if (domid === curr.domid) return undefined;
    if (domid === DOMID_SELF) return curr;
    if (domid === DOMID_IO || domid === DOMID_XEN) return undefined; // not modelled (README)
    return this.hv.domain(domid);
  }

  /** rcu_lock_domain_by_any_id: DOMID_SELF or any existing domid. */
  private anyDomain(v: Vcpu, domid: unknown): Domain | undefined {
    if (typeof domid !== "number") return undefined;
    if (domid === DOMID_SELF) return v.domain;
    const d = this.hv.domain(domid);
    return d === undefined || d.state === "dead" ? undefined : d;
  }

  /** At domain creation: shared_info keeps a writable type for life (share_xen_page_with_guest). */
  domainCreated(d: Domain): void {
    this.flushIfFramesReused();
    const si = d.sharedInfoMfn;
    if (
      si >= 0 &&
      this.frames.owner[si] === d.domid &&
      (this.frames.typeInfo[si] & PGT_count_mask) === 0
    ) {
      this.frames.typeInfo[si] = (PGT_writable_page | PGT_validated | 1) >>> 0;
    }
    this.m2p.set(si, 0xffff_ffff, 0xffff_ffff);
  }

  /**
   * Xen's domain_relinquish_resources for the MMU: drop each vCPU's base tables, unpin every
   * pinned table, then force-devalidate the page tables left (which breaks reference cycles
   * through linear entries), and drop shared_info's permanent type reference.
   */
  domainDestroyed(d: Domain): void {
    const f = this.frames;
    for (const v of d.vcpus) {
      if (v.cr3Mfn >= 0) {
        const m = v.cr3Mfn;
        v.cr3Mfn = -1;
        f.putPageAndType(m);
      }
      if (v.userCr3Mfn >= 0) {
        const m = v.userCr3Mfn;
        v.userCr3Mfn = -1;
        f.putPageAndType(m);
      }
      this.flushLocal(v);
    }
    const mine = f.framesOf(d.domid);
    for (const mfn of mine) {
      if ((f.typeInfo[mfn] & PGT_pinned) !== 0 && f.owner[mfn] === d.domid) {
        f.setPinned(mfn, false);
        f.putPageAndType(mfn);
      }
    }
    for (const mfn of mine) {
      if (f.owner[mfn] !== d.domid) continue;
      const x = f.typeInfo[mfn];
      const type = (x & PGT_type_mask) >>> 0;
      if (
        type >= PGT_l1_page_table &&
        type <= PGT_l4_page_table &&
        (x & PGT_validated) !== 0 &&
        (x & PGT_count_mask) !== 0
      ) {
        f.typeInfo[mfn] = (x & ~PGT_validated) >>> 0;
        this.pt.devalidateForTeardown(mfn, type);
      }
    }
    const si = d.sharedInfoMfn;
    if (
      si >= 0 &&
      f.owner[si] === d.domid &&
      (f.typeInfo[si] & PGT_count_mask) !== 0 &&
      (f.typeInfo[si] & PGT_type_mask) >>> 0 === PGT_writable_page
    ) {
      f.putPageType(si);
    }
    this.pt.flushAll();
  }

  // ---- mmu_update ----

  /** HYPERVISOR_mmu_update (Xen's do_mmu_update). */
  mmuUpdate(v: Vcpu, a: MmuUpdateArgs): number {
    let count = a.count;
    if (!isU32(count) || !isU32(a.foreigndom)) return -EFAULT;
    count >>>= 0;
    const foreigndom = a.foreigndom >>> 0;
    let done = 0;
    if ((count & MMU_UPDATE_PREEMPTED) !== 0) {
      count = (count & ~MMU_UPDATE_PREEMPTED) >>> 0;
      if (typeof a.pdone === "number" && a.pdone >>> 0 === a.pdone) done = a.pdone;
    }
    const ureqs = a.ureqs;
    const packed = ureqs instanceof Uint32Array;
    if (packed ? ureqs.length < count * 4 : !Array.isArray(ureqs) || ureqs.length < count)
      return -EFAULT;
    const d = v.domain;
    let ptOwner = d;
    const ptDom = foreigndom >>> 16;
    if (ptDom !== 0) {
      const o = this.hv.domain(ptDom - 1);
      if (o === undefined || o.state === "dead") return -ESRCH;
      if (o !== d && o.vcpus.length === 0) {
        a.pdone = done;
        return -EINVAL;
      }
      ptOwner = o;
    }
    const pgOwner = this.getPgOwner(v, foreigndom & 0xffff);
    if (pgOwner === undefined) {
      a.pdone = done;
      return -ESRCH;
    }
    const pt = this.pt;
    const f = this.frames;
    let rc = 0;
    let flushLinear = false;
    let i = 0;
    for (; i < count; i++) {
      let plo: number;
      let phi: number;
      let vlo: number;
      let vhi: number;
      if (packed) {
        const u = ureqs as Uint32Array;
        plo = u[i * 4];
        phi = u[i * 4 + 1];
        vlo = u[i * 4 + 2];
        vhi = u[i * 4 + 3];
      } else {
        const r = (ureqs as readonly MmuUpdate[])[i];
        if (
          typeof r !== "object" ||
          r === null ||
          !splitU64(r.ptr, scratch) ||
          !splitU64(r.val, scratch2)
        ) {
          rc = -EFAULT;
          break;
        }
        plo = scratch.lo;
        phi = scratch.hi;
        vlo = scratch2.lo;
        vhi = scratch2.hi;
      }
      // The command is ptr's low three bits (sizeof(l1_pgentry_t) - 1); 4..7 are unknown.
      const cmd = plo & 7;
      if (
        cmd === MMU_NORMAL_PT_UPDATE ||
        cmd === MMU_PT_UPDATE_PRESERVE_AD ||
        cmd === MMU_PT_UPDATE_NO_TRANSLATE
      ) {
        if (
          (ptOwner !== d && !xsmTarget(d, ptOwner)) ||
          (pgOwner !== d && !xsmTarget(d, pgOwner))
        ) {
          rc = -EPERM;
          break;
        }
        rc = -EINVAL;
        const gmfn = phi * TWO_20 + (plo >>> 12);
        if (!f.getPage(gmfn, ptOwner.domid)) break;
        const slot = (plo & 0xfff) >>> 3;
        const x = f.typeInfo[gmfn];
        if ((x & PGT_validated) !== 0 && (x & PGT_count_mask) !== 0) {
          const type = (x & PGT_type_mask) >>> 0;
          if (type === PGT_l1_page_table) {
            rc = pt.modL1Entry(gmfn, slot, vlo, vhi, cmd, ptOwner, pgOwner);
          } else if (type >= PGT_l2_page_table && type <= PGT_l4_page_table) {
            if (pgOwner === ptOwner) {
              rc = pt.modLnEntry(
                type >>> 29,
                gmfn,
                slot,
                vlo,
                vhi,
                cmd === MMU_PT_UPDATE_PRESERVE_AD,
                ptOwner,
              );
              if (rc === 0) flushLinear = true;
            }
          } else if (type === PGT_writable_page) {
            this.writeRaw(gmfn, plo & 0xff8, vlo, vhi);
            rc = 0;
          }
        } else if (pt.getPageType(gmfn, PGT_writable_page) === 0) {
          this.writeRaw(gmfn, plo & 0xff8, vlo, vhi);
          f.putPageType(gmfn);
          rc = 0;
        }
        f.putPage(gmfn);
      } else if (cmd !== MMU_MACHPHYS_UPDATE) {
        rc = -ENOSYS;
        break;
      } else {
        if (ptOwner !== d) {
          rc = -EPERM;
          break;
        }
        if (pgOwner !== d && !xsmTarget(d, pgOwner)) {
          rc = -EPERM;
          break;
        }
        const mfn = phi * TWO_20 + (plo >>> 12);
        if (!f.getPage(mfn, pgOwner.domid)) {
          rc = -EINVAL;
          break;
        }
        this.m2p.set(mfn, vlo, vhi);
        f.putPage(mfn);
        rc = 0;
      }
      if (rc !== 0) break;
    }
    this.counters.mmuUpdates.value += i;
    if (flushLinear) this.flushDomain(ptOwner.domid);
    a.pdone = done + i;
    return rc;
  }

  private writeRaw(mfn: number, off: number, lo: number, hi: number): void {
    const w = this.ram.frameWords(mfn, true);
    const b = this.ram.frameWordBase(mfn) + (off >>> 2);
    w[b] = lo;
    w[b + 1] = hi;
  }

  // ---- mmuext_op ----

  /** HYPERVISOR_mmuext_op (Xen's do_mmuext_op). */
  mmuextOp(v: Vcpu, a: MmuextOpArgs): number {
    let count = a.count;
    if (!isU32(count) || !isU32(a.foreigndom)) return -EFAULT;
    count >>>= 0;
    const foreigndom = a.foreigndom >>> 0;
    let done = 0;
    if ((count & MMU_UPDATE_PREEMPTED) !== 0) {
      count = (count & ~MMU_UPDATE_PREEMPTED) >>> 0;
      if (typeof a.pdone === "number" && a.pdone >>> 0 === a.pdone) done = a.pdone;
    }
    const uops = a.uops;
    if (!Array.isArray(uops) || uops.length < count) return -EFAULT;
    const currd = v.domain;
    const pgOwner = this.getPgOwner(v, foreigndom & 0xffff);
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
      rc = this.mmuextOne(v, op, pgOwner);
      if (rc !== 0) break;
    }
    a.pdone = done + i;
    return rc;
  }

  private mmuextOne(v: Vcpu, op: MmuextOp, pgOwner: Domain): number {
    const f = this.frames;
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
        return this.newGuestCr3(v, mfn);
      case MMUEXT_NEW_USER_BASEPTR: {
        if (currd !== pgOwner) return -EPERM;
        // Xen's guest_table_user holds mfn 0 for "none"; here -1 is none and 0 asks for none.
        const old = v.userCr3Mfn;
        const want = mfnArg === 0 ? -1 : mfn;
        if (want === old) return 0;
        if (mfnArg !== 0) {
          const rc = this.getL4(mfn, currd);
          if (rc !== 0) return rc;
          if (currd.vmAssist.has(VMASST_TYPE_m2p_strict)) this.pt.zapRoMpt(mfn);
        }
        v.userCr3Mfn = want;
        if (old >= 0) f.putPageAndType(old);
        return 0;
      }
      case MMUEXT_TLB_FLUSH_LOCAL:
        if (currd !== pgOwner) return -EPERM;
        this.flushLocal(v);
        return 0;
      case MMUEXT_INVLPG_LOCAL: {
        if (currd !== pgOwner) return -EPERM;
        const va = op.arg1?.linear_addr;
        if (typeof va === "number" && addrOk(va)) this.flushOne(v, va);
        return 0;
      }
      case MMUEXT_TLB_FLUSH_MULTI:
      case MMUEXT_INVLPG_MULTI: {
        if (currd !== pgOwner) return -EPERM;
        const targets = vcpusOf(currd, op.arg2?.vcpumask);
        if (targets === undefined) return -EINVAL;
        const va = op.arg1?.linear_addr;
        for (const t of targets) {
          if (op.cmd === MMUEXT_TLB_FLUSH_MULTI) this.flushLocal(t);
          else if (typeof va === "number" && addrOk(va)) this.flushOne(t, va);
        }
        return 0;
      }
      case MMUEXT_TLB_FLUSH_ALL:
        if (currd !== pgOwner) return -EPERM;
        this.flushDomain(currd.domid);
        return 0;
      case MMUEXT_INVLPG_ALL: {
        if (currd !== pgOwner) return -EPERM;
        const va = op.arg1?.linear_addr;
        if (typeof va === "number" && addrOk(va)) for (const t of currd.vcpus) this.flushOne(t, va);
        return 0;
      }
      case MMUEXT_FLUSH_CACHE:
        if (currd !== pgOwner) return -EPERM;
        return currd.isPrivileged ? 0 : -EACCES;
      case MMUEXT_FLUSH_CACHE_GLOBAL:
        if (currd !== pgOwner) return -EPERM;
        return currd.isPrivileged ? 0 : -EINVAL;
      case MMUEXT_SET_LDT: {
        if (currd !== pgOwner) return -EPERM;
        const ents = op.arg2?.nr_ents;
        const ptr = op.arg1?.linear_addr;
        if (typeof ents !== "number" || ents >>> 0 !== ents) return -EINVAL;
        if (ents > 8192) return -EINVAL;
        if (ents !== 0 && (typeof ptr !== "number" || ptr % 4096 !== 0 || !addrOk(ptr)))
          return -EINVAL;
        const s = this.pv(v);
        const base = ents === 0 ? 0 : (ptr as number);
        if (s.ldtEnts !== ents || s.ldtBase !== base) {
          s.ldtBase = base;
          s.ldtEnts = ents;
          this.flushLocal(v);
        }
        return 0;
      }
      case MMUEXT_CLEAR_PAGE: {
        if (!f.getPage(mfn, pgOwner.domid)) return -EINVAL;
        if (this.pt.getPageType(mfn, PGT_writable_page) !== 0) {
          f.putPage(mfn);
          return -EINVAL;
        }
        this.ram.clearFrame(mfn);
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
        if (this.pt.getPageType(mfn, PGT_writable_page) !== 0) {
          f.putPage(src);
          f.putPage(mfn);
          return -EINVAL;
        }
        this.ram.copyFrame(mfn, src);
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
  private getL4(mfn: number, d: Domain): number {
    if (!this.frames.getPage(mfn, d.domid)) return -EINVAL;
    const rc = this.frames.getPageType(mfn, PGT_l4_page_table);
    if (rc !== 0) this.frames.putPage(mfn);
    return rc;
  }

  /** Xen's new_guest_cr3 for a 64-bit PV vCPU. */
  newGuestCr3(v: Vcpu, mfn: number): number {
    const d = v.domain;
    const old = v.cr3Mfn;
    if (old === mfn && mfn >= 0) {
      this.flushLocal(v);
      return 0;
    }
    const rc = this.getL4(mfn, d);
    if (rc !== 0) return rc;
    // The LDT's shadow mappings go with the old tables (pv_destroy_ldt); flushed below.
    if (!d.vmAssist.has(VMASST_TYPE_m2p_strict)) this.pt.fillRoMpt(mfn);
    v.cr3Mfn = mfn;
    this.flushLocal(v);
    if (old >= 0) this.frames.putPageAndType(old);
    return 0;
  }

  // ---- update_va_mapping ----

  /** HYPERVISOR_update_va_mapping. */
  updateVaMapping(v: Vcpu, a: UpdateVaMappingArgs): number {
    return this.doUpdateVaMapping(v, a, v.domain);
  }

  /** HYPERVISOR_update_va_mapping_otherdomain. */
  updateVaMappingOtherdomain(v: Vcpu, a: UpdateVaMappingArgs): number {
    if (typeof a.domid !== "number") return -EFAULT;
    const pgOwner = this.getPgOwner(v, a.domid);
    if (pgOwner === undefined) return -ESRCH;
    return this.doUpdateVaMapping(v, a, pgOwner);
  }

  private doUpdateVaMapping(v: Vcpu, a: UpdateVaMappingArgs, pgOwner: Domain): number {
    const d = v.domain;
    const { va, flags } = a;
    if (
      typeof va !== "number" ||
      typeof flags !== "number" ||
      !Number.isSafeInteger(flags) ||
      flags < 0
    )
      return -EFAULT;
    if (!splitU64(a.val, scratch)) return -EFAULT;
    // xsm_update_va_mapping: only a present entry needs rights over the page owner.
    if ((scratch.lo & _PAGE_PRESENT) !== 0 && pgOwner !== d && !xsmTarget(d, pgOwner))
      return -EPERM;
    const loc = this.guestL1Slot(v.cr3Mfn, va);
    if (loc < 0) return -EINVAL;
    const l1 = Math.floor(loc / 512);
    if (!this.frames.getPage(l1, d.domid)) return -EINVAL;
    let rc = -EINVAL;
    if (
      this.pt.lockable(l1) &&
      (this.frames.typeInfo[l1] & PGT_type_mask) >>> 0 === PGT_l1_page_table
    ) {
      rc = this.pt.modL1Entry(
        l1,
        loc % 512,
        scratch.lo,
        scratch.hi,
        MMU_NORMAL_PT_UPDATE,
        d,
        pgOwner,
      );
    }
    this.frames.putPage(l1);
    if (rc !== 0) return rc;
    const sel = flags & ~UVMF_FLUSHTYPE_MASK;
    const type = flags & UVMF_FLUSHTYPE_MASK;
    if (type === UVMF_TLB_FLUSH || type === UVMF_INVLPG) {
      let targets: readonly Vcpu[] | undefined;
      if (sel === UVMF_LOCAL) targets = [v];
      else if (sel === UVMF_ALL) targets = d.vcpus;
      else {
        targets = vcpusOf(d, a.vcpumask);
        if (targets === undefined) return -EFAULT;
      }
      for (const t of targets) {
        if (type === UVMF_TLB_FLUSH) this.flushLocal(t);
        else this.flushOne(t, va);
      }
    }
    return 0;
  }

  // ---- memory_op ----

  /** Xen's max_order(d) for memory_op: 9 for a domU, MAX_ORDER for a control domain. */
  private maxOrder(d: Domain): number {
    return d.isPrivileged ? 20 : 9;
  }

  /** Parses a reservation into the domain and allocation bound; undefined if Xen would stop at once. */
  private reservation(
    v: Vcpu,
    r: Partial<MemoryReservation>,
  ): { d: Domain; below: number | undefined } | undefined {
    const { nr_extents, extent_order } = r;
    if (
      typeof nr_extents !== "number" ||
      nr_extents >>> 0 !== nr_extents ||
      nr_extents > 0xffff_ffff >>> 6
    )
      return undefined;
    if (typeof extent_order !== "number" || extent_order >>> 0 !== extent_order) return undefined;
    const memFlags = r.mem_flags ?? 0;
    if (typeof memFlags !== "number" || memFlags >>> 0 !== memFlags) return undefined;
    const d = this.anyDomain(v, r.domid);
    if (d === undefined) return undefined;
    let below: number | undefined;
    const bits = memFlags & 0xff;
    const maxBits = Math.ceil(Math.log2(this.frames.nrFrames)) + 12;
    if (bits !== 0 && bits < maxBits) {
      if (bits <= 12) return undefined;
      below = 2 ** bits; // a machine address, as allocDomainPages takes it
    }
    // One NUMA node (node 0); asking for another fails as an offline node does.
    const node = ((memFlags >>> 8) & 0xff) - 1;
    if (node > 0) return undefined;
    if (!xsmTarget(v.domain, d)) return undefined;
    return { d, below };
  }

  /** XENMEM_increase_reservation: returns extents done. */
  increaseReservation(v: Vcpu, a: MemoryOpArgs): number {
    const r = this.reservation(v, a);
    if (r === undefined) return 0;
    const list = a.extent_start;
    const n = a.nr_extents as number;
    const order = a.extent_order as number;
    if (list !== undefined && list !== null && (!Array.isArray(list) || list.length < n)) return 0;
    if (order > this.maxOrder(v.domain)) return 0;
    this.flushIfFramesReused();
    let i = 0;
    for (; i < n; i++) {
      const mfn = this.hv.allocDomainPages(r.d, order, r.below);
      if (mfn < 0) break;
      if (Array.isArray(list)) list[i] = mfn;
    }
    return i;
  }

  /** XENMEM_populate_physmap: extents done; each gpfn's M2P entry is set (PV guests). */
  populatePhysmap(v: Vcpu, a: MemoryOpArgs): number {
    const r = this.reservation(v, a);
    if (r === undefined) return 0;
    const list = a.extent_start;
    const n = a.nr_extents as number;
    const order = a.extent_order as number;
    if (!Array.isArray(list) || list.length < n) return 0;
    const pod = ((a.mem_flags ?? 0) & XENMEMF_populate_on_demand) !== 0;
    if (order > (pod ? 20 : this.maxOrder(v.domain))) return 0;
    this.flushIfFramesReused();
    let i = 0;
    for (; i < n; i++) {
      const gpfn = list[i];
      if (typeof gpfn !== "number" || !Number.isSafeInteger(gpfn) || gpfn < 0) break;
      if (pod) {
        if (r.d === v.domain) break;
        continue; // populate-on-demand is an HVM feature: nothing to do for a PV guest
      }
      const mfn = this.hv.allocDomainPages(r.d, order, r.below);
      if (mfn < 0) break;
      for (let j = 0; j < 2 ** order; j++) this.m2p.setPfn(mfn + j, gpfn + j);
      list[i] = mfn;
    }
    return i;
  }

  /** XENMEM_decrease_reservation: extents done. */
  decreaseReservation(v: Vcpu, a: MemoryOpArgs): number {
    const r = this.reservation(v, a);
    if (r === undefined) return 0;
    const list = a.extent_start;
    const n = a.nr_extents as number;
    const order = a.extent_order as number;
    if (!Array.isArray(list) || list.length < n || order > this.maxOrder(v.domain)) return 0;
    let i = 0;
    outer: for (; i < n; i++) {
      const gmfn = list[i];
      if (typeof gmfn !== "number" || !Number.isSafeInteger(gmfn) || gmfn < 0) break;
      for (let j = 0; j < 2 ** order; j++) {
        if (this.guestRemovePage(r.d, gmfn + j) !== 0) break outer;
      }
    }
    return i;
  }

  /** Xen's guest_remove_page for a PV domain (gmfn is an mfn). 0 or -errno. */
  private guestRemovePage(d: Domain, mfn: number): number {
    const f = this.frames;
    if (mfn >= f.nrFrames) return -EINVAL;
    if (!f.getPage(mfn, d.domid)) return -ENXIO;
    if ((f.countInfo[mfn] & PGC_xen_heap) === 0) f.release(mfn); // put_page_alloc_ref
    f.putPage(mfn);
    return 0;
  }

  /** XENMEM_exchange. 0 or -errno; `nr_exchanged` is written back. */
  exchange(v: Vcpu, a: MemoryOpArgs): number {
    const ein = a.in;
    const eout = a.out;
    if (typeof ein !== "object" || ein === null || typeof eout !== "object" || eout === null)
      return -EFAULT;
    const nrExchanged = a.nr_exchanged ?? 0;
    const u32 = (x: unknown): x is number => typeof x === "number" && x >>> 0 === x;
    if (
      !u32(ein.nr_extents) ||
      !u32(ein.extent_order) ||
      !u32(eout.nr_extents) ||
      !u32(eout.extent_order) ||
      !u32(nrExchanged)
    ) {
      return -EFAULT;
    }
    if (Math.max(ein.extent_order, eout.extent_order) > this.maxOrder(v.domain)) return -EPERM;
    if (
      nrExchanged > ein.nr_extents ||
      ein.domid !== eout.domid ||
      ein.nr_extents * 2 ** ein.extent_order !== eout.nr_extents * 2 ** eout.extent_order
    ) {
      return -EINVAL;
    }
    if (nrExchanged === ein.nr_extents) return 0;
    const inList = ein.extent_start;
    const outList = eout.extent_start;
    if (
      !Array.isArray(inList) ||
      inList.length < ein.nr_extents ||
      !Array.isArray(outList) ||
      outList.length < eout.nr_extents
    ) {
      return -EFAULT;
    }
    const outFlags = eout.mem_flags ?? 0;
    if (!u32(outFlags) || ((outFlags >>> 8) & 0xff) - 1 > 0) return -EINVAL;
    const d = this.anyDomain(v, ein.domid);
    if (d === undefined) return -ESRCH;
    if (!xsmTarget(v.domain, d)) return -EPERM;
    const below = exchangeAddressLimit(outFlags);
    const inChunkOrder =
      ein.extent_order <= eout.extent_order ? eout.extent_order - ein.extent_order : 0;
    const outChunkOrder =
      ein.extent_order <= eout.extent_order ? 0 : ein.extent_order - eout.extent_order;
    const f = this.frames;
    this.flushIfFramesReused();
    let i = nrExchanged >>> inChunkOrder;
    const end = ein.nr_extents >>> inChunkOrder;
    let rc = 0;
    for (; i < end; i++) {
      // Check the whole chunk can be stolen: each page owned by d with only its allocation reference.
      const stolen: number[] = [];
      for (let j = 0; j < 2 ** inChunkOrder && rc === 0; j++) {
        const gmfn = inList[i * 2 ** inChunkOrder + j];
        if (typeof gmfn !== "number" || !Number.isSafeInteger(gmfn) || gmfn < 0) {
          rc = -EFAULT;
          break;
        }
        for (let k = 0; k < 2 ** ein.extent_order; k++) {
          const mfn = gmfn + k;
          if (mfn >= f.nrFrames) {
            rc = -EINVAL;
            break;
          }
          const c = f.countInfo[mfn];
          if (
            f.owner[mfn] !== d.domid ||
            (c & PGC_xen_heap) !== 0 ||
            (c & (PGC_count_mask | PGC_allocated)) >>> 0 !== (PGC_allocated | 1) >>> 0 ||
            stolen.includes(mfn)
          ) {
            rc = -EINVAL;
            break;
          }
          stolen.push(mfn);
        }
      }
      if (rc !== 0) break;
      // Allocate the chunk's output extents (outside max_pages: the input pages pay for them).
      const got: number[] = [];
      for (let j = 0; j < 2 ** outChunkOrder; j++) {
        const m = f.allocate(d.domid, eout.extent_order, below);
        if (m < 0) break;
        d.totPages += 2 ** eout.extent_order;
        got.push(m);
      }
      if (got.length < 2 ** outChunkOrder) {
        for (const m of got) for (let k = 0; k < 2 ** eout.extent_order; k++) f.release(m + k);
        rc = -ENOMEM;
        break;
      }
      for (const mfn of stolen) f.release(mfn);
      for (let j = 0; j < got.length; j++) {
        const idx = i * 2 ** outChunkOrder + j;
        const gpfn = outList[idx];
        if (typeof gpfn === "number" && Number.isSafeInteger(gpfn) && gpfn >= 0) {
          for (let k = 0; k < 2 ** eout.extent_order; k++) this.m2p.setPfn(got[j] + k, gpfn + k);
          outList[idx] = got[j];
        } else {
          rc = -EFAULT; // Xen's chunk is then not counted in nr_exchanged
        }
      }
      if (rc !== 0) break;
    }
    a.nr_exchanged = rc === 0 ? ein.nr_extents : i << inChunkOrder;
    return rc;
  }

  /**
   * XENMEM_machphys_mapping: where the guest finds the read-only M2P (v_start, v_end as
   * 48-bit addresses) and the largest mfn it may look up there (the real one for a hardware
   * domain, the table's capacity otherwise), as Xen's arch_memory_op answers.
   */
  machphysMapping(
    v: Vcpu,
    a: MemoryOpArgs & { v_start?: number; v_end?: number; max_mfn?: number },
  ): number {
    a.v_start = RO_MPT_VIRT_START_48;
    a.v_end = RO_MPT_VIRT_START_48 + MACH2PHYS_NR_ENTRIES * 8;
    a.max_mfn = v.domain.isPrivileged ? this.frames.nrFrames - 1 : MACH2PHYS_NR_ENTRIES - 1;
    return 0;
  }

  /** XENMEM_maximum_ram_page. */
  maximumRamPage(): number {
    return this.frames.nrFrames;
  }

  /** XENMEM_current_reservation / XENMEM_maximum_reservation. */
  reservationOf(v: Vcpu, a: MemoryOpArgs, max: boolean): number {
    if (typeof a.domid !== "number") return -EFAULT;
    const d = this.anyDomain(v, a.domid);
    if (d === undefined) return -ESRCH;
    if (!xsmTarget(v.domain, d)) return -EPERM;
    return max ? d.maxPages : d.totPages;
  }
}

/** A C unsigned int as a guest may pass it: any 32-bit integer, signed or not. */
function isU32(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x) && x >= -0x8000_0000 && x <= 0xffff_ffff;
}

/** __addr_ok for a 64-bit guest: a 48-bit address outside Xen's range. */
function addrOk(va: number): boolean {
  return (
    va >= 0 && va < VA_LIMIT && !(va >= HYPERVISOR_VIRT_START_48 && va < HYPERVISOR_VIRT_END_48)
  );
}

/** vcpumask_to_pcpumask, on vCPUs: the domain's vCPUs named in a bitmap; undefined if unreadable. */
function vcpusOf(d: Domain, mask: readonly number[] | Uint32Array | undefined): Vcpu[] | undefined {
  if (mask === undefined || (!Array.isArray(mask) && !(mask instanceof Uint32Array)))
    return undefined;
  const out: Vcpu[] = [];
  for (let w = 0; w * 32 < d.vcpus.length; w++) {
    if (w >= mask.length) return undefined;
    const bits = mask[w];
    if (!isU32(bits)) return undefined;
    for (let b = 0; b < 32; b++) {
      if ((bits >>> b) & 1 && w * 32 + b < d.vcpus.length) out.push(d.vcpus[w * 32 + b]);
    }
  }
  return out;
}
