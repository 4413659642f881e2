/*
 * C reference of @hyperlab/pv-mmu's measured paths, for the side-by-side rates of
 * `pnpm bench` and the checksum test (test/c-reference.test.ts). The same algorithms over the
 * same data layouts as the TypeScript: the frame table's three arrays (owner, count_info,
 * type_info in core's 32-bit encoding) plus pv-mmu's writable epochs and linear_pt_count,
 * and RAM as a flat array of 32-bit words.
 *
 * - do_mmu_update (src/mmu-update.ts) through a hypercall table: the batch prologue, one
 *   request at a time copied from the guest's buffer, MMU_NORMAL_PT_UPDATE / PRESERVE_AD /
 *   NO_TRANSLATE on L1 tables (mod_l1_entry: adjust_guest_l1e, the fast path,
 *   get_page_from_l1e before put_page_from_l1e), on L2..L4 tables (mod_lN_entry with
 *   get_page_from_lNe, linear page tables and the linear flush), on writable and untyped
 *   frames (a plain write), MMU_MACHPHYS_UPDATE (the M2P's RAM copy) and unknown commands;
 *   get_page_type / put_page_type with promotion and demotion of L1..L4 tables (src/pv-mmu.ts,
 *   core's frame-table.ts), the type-change flush by epoch included.
 * - do_mmuext_op's PIN_L1..L4_TABLE and UNPIN_TABLE (src/mmuext.ts), for the pin bench.
 * - The PV vCPU's guest read (src/service.ts's read and translate): the most-recent-page fast
 *   path, the TLB lookup with tag 0 (guest kernel), else a user-mode walk through the TLB's
 *   page-walk caches (paging-ref.c's walk) and a fill without the global bit.
 *
 * What the bench never reaches is left out, and refused where a fixture could ask for it:
 * foreigndom other than DOMID_SELF or the caller's own domid, I/O memory (no iomem provider:
 * a frame beyond RAM is -EPERM, as in the TypeScript without one), MMIO reads, other mmuext
 * commands, privileged callers (xsm checks are all "self" here).
 *
 * Its input is a TypeScript world's steady state, written by bench/fixture.ts.
 *
 * Usage: pv-ref FIXTURE bench N     rates, one "name<TAB>wall M/s<TAB>cpu M/s" line each
 *        pv-ref FIXTURE turns N     one timed run per loop name read on stdin (paging-ref.c)
 *        pv-ref FIXTURE check N     results, checksums and counters, one "name<TAB>..." each
 *        pv-ref FIXTURE pin N       pin and unpin of the fixture's L4: best wall / cpu ms
 *        pv-ref FIXTURE pinturns N  one timed pv-pin or pv-unpin per name read on stdin
 *        pv-ref FIXTURE pincheck N  the same once, with checksums and counters
 */
#define PAGING_REF_LIBRARY
#include "../../../paging/bench/c/paging-ref.c"

/* Xen's errno values (@hyperlab/abi's errno.ts). */
#define EPERM 1
#define ESRCH 3
#define EACCES 13
#define EFAULT 14
#define EBUSY 16
#define EINVAL 22
#define ENOSYS 38

#define DOMID_SELF 0x7ff0u
#define DOMID_IO 0x7ff1u
#define DOMID_XEN 0x7ff2u
#define HYPERVISOR_mmu_update 1
#define HYPERVISOR_mmuext_op 26
#define MMU_NORMAL_PT_UPDATE 0
#define MMU_MACHPHYS_UPDATE 1
#define MMU_PT_UPDATE_PRESERVE_AD 2
#define MMU_PT_UPDATE_NO_TRANSLATE 3
#define MMU_UPDATE_PREEMPTED 0x80000000u
#define MMUEXT_PIN_L1_TABLE 0
#define MMUEXT_PIN_L4_TABLE 3
#define MMUEXT_UNPIN_TABLE 4

/* core's frame table encoding (frame-table.ts). */
#define FRAME_FREE (-1)
#define PGT_l1_page_table (1u << 29)
#define PGT_l2_page_table (2u << 29)
#define PGT_l4_page_table (4u << 29)
#define PGT_writable_page (7u << 29)
#define PGT_type_mask (7u << 29)
#define PGT_pinned (1u << 28)
#define PGT_validated (1u << 27)
#define PGT_count_mask ((1u << 26) - 1)
#define PGC_xen_heap (1u << 30)
#define PGC_count_mask ((1u << 28) - 1)

/* Entry bits (src/pte.ts). */
#define PAGE_RW 0x2u
#define PAGE_USER 0x4u
#define PAGE_PWT 0x8u
#define PAGE_PCD 0x10u
#define PAGE_PAT 0x80u
#define PAGE_CACHE_ATTRS (PAGE_PAT | PAGE_PCD | PAGE_PWT)
#define PAGE_AVAIL 0xe00u
#define PAGE_GUEST_KERNEL_HI 0x00100000u
#define PAGE_GNTTAB_HI 0x40000000u
#define PAGE_AVAIL_HIGH_HI 0x7ff00000u
#define PTE_MFN_HI_MASK 0x000fffffu
#define BASE_DISALLOW_LO (PAGE_PWT | PAGE_PCD | PAGE_PSE | PAGE_GLOBAL)
#define LN_DISALLOW_LO BASE_DISALLOW_LO
#define L1_DISALLOW_HI PAGE_GNTTAB_HI
#define FASTPATH_LO (PAGE_AVAIL | PAGE_GLOBAL | PAGE_DIRTY | PAGE_ACCESSED | PAGE_USER)
#define FASTPATH_HI (PAGE_NX_HI | PAGE_AVAIL_HIGH_HI)
#define INVALID_MFN_IN_PTE ((1ull << 40) - 1)
#define LINEAR_MAX 0x7fff
#define ROOT_FIRST_XEN_SLOT 256
#define ROOT_LAST_XEN_SLOT 271
#define RO_MPT_SLOT 256

/* ---- the world (fixture) */
/* Owner keys, as core's ownerKeys: ~domid, 0 for a free frame (FRAME_FREE's key). */
static int32_t *owner_key;
static u32 *count_info, *type_info, *writable_epoch;
static int16_t *linear;
static u32 flush_epoch;
static int32_t dom_id, other_id;
static u32 vcpus_system, vcpus_domain;
static u32 l1_disallow_lo;
static u64 cr3, virt_base, span;
static u32 n_batches;
static u32 *batch_words, **batch_at;
static u32 n_m2p, *m2p_frames;
static int64_t ro_mpt_l3;
static int m2p_strict, hash_all;
static u64 pin_l4;
static u32 n_dumped, *dumped;

/* Counters the TypeScript keeps (pt.counts, PvMmuCounters, the allocator's frees). */
static struct {
  u64 mmu_updates, validated_l1e, promotions, demotions, type_change_flushes, tlb_flushes, frees,
      page_faults;
} pc;

/* ---- the vCPU (one, uid 0, in guest kernel mode) */
static struct {
  tlb_t tlb;
  walk_result out;
  int64_t roots[2];
  int64_t fast_vpn, fast_root;
  int fast_uid, fast_tag, fast_perms;
  u64 fast_mfn;
  u64 walks, walk_reads, walk_writes;
} cpu;

static void die(const char *what) {
  fprintf(stderr, "pv-ref: %s\n", what);
  exit(2);
}

/* ---- TLB flushes (paging's flushNonGlobal: every entry, as none is global here, and the
 * page-walk caches) */
static void assoc_clear(assoc *a) {
  memset(a->flags, 0, (size_t)a->sets * a->ways);
  a->used = 0;
}

static void flush_local(void) {
  cpu.fast_vpn = -1;
  for (int i = 0; i < cpu.tlb.n; i++) assoc_clear(&cpu.tlb.arrays[i]);
  for (int l = 2; l <= 4; l++) assoc_clear(&cpu.tlb.pwc.a[l]);
}

/* flushEverything: every vCPU of the system (only this one has a TLB modelled). */
static void flush_all(void) {
  pc.tlb_flushes += vcpus_system;
  flush_local();
  flush_epoch++;
}

static void flush_domain(int32_t domid) {
  if (domid != dom_id) return;
  pc.tlb_flushes += vcpus_domain;
  flush_local();
}

/* ---- the frame table (core's frame-table.ts) */
static int known_domain(int32_t id) { return id == dom_id || (other_id >= 0 && id == other_id); }

static inline int get_page(u64 mfn, int32_t domid) {
  if (mfn >= nr_frames || owner_key[mfn] != ~domid) return 0;
  u32 c = count_info[mfn], n = c & PGC_count_mask;
  if (n == 0 || n >= PGC_count_mask - 1) return 0;
  count_info[mfn] = c + 1;
  return 1;
}

static void free_frame(u64 mfn) {
  if (type_info[mfn] & PGT_count_mask) die("freeing a frame that still has type references");
  owner_key[mfn] = 0;
  count_info[mfn] = 0;
  type_info[mfn] = 0;
  pc.frees++;
}

static inline void put_page(u64 mfn) {
  u32 c = count_info[mfn];
  if ((c & PGC_count_mask) == 0) die("put_page on a frame with no references");
  u32 n = c - 1;
  count_info[mfn] = n;
  if ((n & PGC_count_mask) == 0) free_frame(mfn);
}

static int validate(u64 mfn, u32 type);
static void devalidate(u64 mfn, u32 type);

static int get_page_type(u64 mfn, u32 type) {
  u32 x = type_info[mfn], count = x & PGT_count_mask;
  if (count == PGT_count_mask) return -EINVAL;
  if (count != 0) {
    if ((x & PGT_type_mask) != type) return -EINVAL;
    if (!(x & PGT_validated)) return -EINVAL;
    type_info[mfn] = x + 1;
    return 0;
  }
  u32 level = type >> 29;
  if (level < 1 || level > 4) {
    type_info[mfn] = type | PGT_validated | 1;
    return 0;
  }
  type_info[mfn] = type | 1;
  int rc = validate(mfn, type);
  if (rc != 0) {
    type_info[mfn] = 0;
    return rc;
  }
  type_info[mfn] |= PGT_validated;
  return 0;
}

static void put_page_type(u64 mfn) {
  u32 x = type_info[mfn], count = x & PGT_count_mask;
  if (count == 0) die("put_page_type on a frame with no type references");
  if (count == 1) {
    u32 type = x & PGT_type_mask, level = type >> 29;
    if (level >= 1 && level <= 4 && (x & PGT_validated)) {
      type_info[mfn] = x & ~PGT_validated;
      devalidate(mfn, type);
      type_info[mfn] = type;
      return;
    }
    type_info[mfn] = (x & ~PGT_validated & ~PGT_pinned) - 1;
    return;
  }
  type_info[mfn] = x - 1;
}

/* ---- L1 entries (src/pv-mmu.ts) */
static inline u64 pte_frame(u32 lo, u32 hi) { return ((u64)(hi & PTE_MFN_HI_MASK) << 20) + (lo >> 12); }
static inline u32 *entry(u64 mfn, u32 i) { return ram + (mfn << 10) + (i & 511) * 2; }

/* page_get_owner_and_reference: the owner, or FRAME_FREE when no reference can be taken. */
static inline int32_t get_ref(u64 mfn) {
  int32_t o = ~owner_key[mfn];
  if (o == FRAME_FREE) return FRAME_FREE;
  u32 c = count_info[mfn], n = c & PGC_count_mask;
  if (n == 0 || n >= PGC_count_mask - 1) return FRAME_FREE;
  count_info[mfn] = c + 1;
  return o;
}

/*
 * get_page_from_l1e: 0 or -errno. Every caller here passes the table's owner as the page
 * owner (DOMID_SELF, or a promotion), so another owner's frame is -EBUSY whoever owns it, as
 * the TypeScript's pgOwner === l1eOwner case.
 */
static inline int get_page_from_l1e(u32 lo, u32 hi, int32_t pg_owner) {
  if ((lo & l1_disallow_lo) || (hi & L1_DISALLOW_HI)) return -EINVAL;
  u64 mfn = pte_frame(lo, hi);
  if (mfn >= nr_frames) return mfn == INVALID_MFN_IN_PTE ? -EINVAL : -EPERM;
  int32_t real = get_ref(mfn);
  if (real == FRAME_FREE) return -EBUSY;
  if (real != pg_owner) {
    put_page(mfn);
    return -EBUSY;
  }
  if ((lo & PAGE_RW) && get_page_type(mfn, PGT_writable_page) != 0) {
    put_page(mfn);
    return -EBUSY;
  }
  if ((lo & PAGE_CACHE_ATTRS) && (count_info[mfn] & PGC_xen_heap)) {
    if (lo & PAGE_RW) put_page_type(mfn);
    put_page(mfn);
    return -EACCES;
  }
  return 0;
}

static inline void put_page_from_l1e(u32 lo, u32 hi) {
  if (!(lo & PAGE_PRESENT)) return;
  u64 mfn = pte_frame(lo, hi);
  if (mfn >= nr_frames) return;
  if (lo & PAGE_RW) {
    writable_epoch[mfn] = flush_epoch;
    put_page_type(mfn);
  }
  put_page(mfn);
}

/* ---- L2..L4 entries */
static int get_linear_pagetable(u32 level, u32 lo, u64 mfn, u64 table, int32_t d) {
  if (lo & PAGE_RW) return 0;
  if (mfn == table) return 1;
  if (owner_key[table] != ~d) return 0;
  if (!get_page(mfn, d)) return 0;
  if (linear[table] < 0 || linear[table] >= LINEAR_MAX) {
    put_page(mfn);
    return 0;
  }
  if (linear[mfn] > 0 || linear[mfn] <= -LINEAR_MAX) {
    put_page(mfn);
    return 0;
  }
  u32 x = type_info[mfn], want = (level << 29) | PGT_validated;
  if ((x & PGT_count_mask) == PGT_count_mask || (x & (PGT_type_mask | PGT_validated)) != want) {
    put_page(mfn);
    return 0;
  }
  linear[table]++;
  linear[mfn]--;
  type_info[mfn] = x + 1;
  return 1;
}

static int get_page_from_lne(u32 level, u32 lo, u32 hi, u64 table, int32_t d) {
  if (lo & LN_DISALLOW_LO) return -EINVAL;
  u64 mfn = pte_frame(lo, hi);
  int rc;
  if (!get_page(mfn, d)) rc = -EINVAL;
  else {
    rc = get_page_type(mfn, (level - 1) << 29);
    if (rc != 0) put_page(mfn);
  }
  if (rc == -EINVAL && get_linear_pagetable(level, lo, mfn, table, d)) rc = 0;
  return rc;
}

static void put_page_from_lne(u32 lo, u32 hi, u64 table) {
  if (!(lo & PAGE_PRESENT)) return;
  u64 mfn = pte_frame(lo, hi);
  if (mfn == table) return;
  if (((type_info[mfn] ^ type_info[table]) & PGT_type_mask) == 0) {
    linear[mfn]++;
    linear[table]--;
  }
  put_page_type(mfn);
  put_page(mfn);
}

static inline int is_guest_l4_slot(u32 i) { return i < ROOT_FIRST_XEN_SLOT || i > ROOT_LAST_XEN_SLOT; }

/* ---- promotion and demotion */
static void adjust_l1(u64 mfn, u32 i, u32 lo, u32 hi) {
  u32 nlo = lo, nhi = hi;
  if (!(nlo & PAGE_USER)) {
    nlo |= PAGE_USER;
    nhi |= PAGE_GUEST_KERNEL_HI;
  }
  if (!(nhi & PAGE_GUEST_KERNEL_HI)) nlo |= PAGE_GLOBAL | PAGE_USER;
  if (nlo != lo || nhi != hi) {
    u32 *e = entry(mfn, i);
    e[0] = nlo;
    e[1] = nhi;
  }
}

static int promote_l1(u64 mfn, int32_t d) {
  u32 *w = ram + (mfn << 10);
  int i = 0;
  for (; i < 512; i++) {
    u32 lo = w[i * 2];
    if (!(lo & PAGE_PRESENT)) continue;
    u32 hi = w[i * 2 + 1];
    int rc = get_page_from_l1e(lo, hi, d);
    if (rc < 0) {
      while (i-- > 0) put_page_from_l1e(w[i * 2], w[i * 2 + 1]);
      return rc;
    }
    adjust_l1(mfn, (u32)i, lo, hi);
  }
  pc.validated_l1e += 512;
  return 0;
}

static void init_xen_l4_slots(u64 mfn) {
  u32 *w = ram + (mfn << 10);
  for (int i = ROOT_FIRST_XEN_SLOT; i <= ROOT_LAST_XEN_SLOT; i++) w[i * 2] = w[i * 2 + 1] = 0;
  if (m2p_strict && ro_mpt_l3 >= 0) {
    u64 m = (u64)ro_mpt_l3;
    w[RO_MPT_SLOT * 2] = (u32)((m & 0xfffff) << 12) | PAGE_PRESENT | PAGE_USER | PAGE_ACCESSED;
    w[RO_MPT_SLOT * 2 + 1] = (u32)(m >> 20);
  }
}

static int promote_ln(u32 level, u64 mfn, int32_t d) {
  u32 *w = ram + (mfn << 10);
  for (int i = 0; i < 512; i++) {
    if (level == 4 && !is_guest_l4_slot((u32)i)) continue;
    u32 lo = w[i * 2];
    if (!(lo & PAGE_PRESENT)) continue;
    u32 hi = w[i * 2 + 1];
    int rc = get_page_from_lne(level, lo, hi, mfn, d);
    if (rc != 0) {
      for (int j = i - 1; j >= 0; j--) {
        if (level == 4 && !is_guest_l4_slot((u32)j)) continue;
        put_page_from_lne(w[j * 2], w[j * 2 + 1], mfn);
      }
      return rc;
    }
    u32 add = level == 4 ? PAGE_USER | PAGE_ACCESSED : PAGE_USER;
    if ((lo & add) != add) w[i * 2] = lo | add;
  }
  if (level == 4) init_xen_l4_slots(mfn);
  return 0;
}

static int validate(u64 mfn, u32 type) {
  int32_t d = ~owner_key[mfn];
  if (d == FRAME_FREE || !known_domain(d)) return -EINVAL;
  if (writable_epoch[mfn] == flush_epoch) {
    pc.type_change_flushes++;
    flush_all();
  }
  linear[mfn] = 0;
  pc.promotions++;
  if (type == PGT_l1_page_table) return promote_l1(mfn, d);
  return promote_ln(type >> 29, mfn, d);
}

static void devalidate(u64 mfn, u32 type) {
  pc.demotions++;
  u32 *w = ram + (mfn << 10);
  if (type == PGT_l1_page_table) {
    for (int i = 0; i < 512; i++)
      if (w[i * 2] & PAGE_PRESENT) put_page_from_l1e(w[i * 2], w[i * 2 + 1]);
    return;
  }
  int is_l4 = type == PGT_l4_page_table;
  for (int i = 511; i >= 0; i--) {
    if (is_l4 && !is_guest_l4_slot((u32)i)) continue;
    if (w[i * 2] & PAGE_PRESENT) put_page_from_lne(w[i * 2], w[i * 2 + 1], mfn);
  }
}

/* ---- entry updates */
static inline int mod_l1_entry(u64 l1mfn, u32 i, u32 nlo, u32 nhi, u32 cmd, int32_t d) {
  u32 *e = entry(l1mfn, i);
  u32 olo = e[0], ohi = e[1];
  if (nlo & PAGE_PRESENT) {
    if ((nlo & l1_disallow_lo) || (nhi & L1_DISALLOW_HI)) return -EINVAL;
    if (!(nlo & PAGE_USER)) {
      nlo |= PAGE_USER;
      nhi |= PAGE_GUEST_KERNEL_HI;
    }
    if (!(nhi & PAGE_GUEST_KERNEL_HI)) nlo |= PAGE_GLOBAL | PAGE_USER;
    if (cmd == MMU_PT_UPDATE_PRESERVE_AD) nlo |= olo & (PAGE_ACCESSED | PAGE_DIRTY);
    if (((olo ^ nlo) & ~FASTPATH_LO) == 0 && ((ohi ^ nhi) & ~FASTPATH_HI) == 0) {
      e[0] = nlo;
      e[1] = nhi;
      return 0;
    }
    int rc = get_page_from_l1e(nlo, nhi, d);
    if (rc < 0) return rc;
    pc.validated_l1e++;
  } else if (cmd == MMU_PT_UPDATE_PRESERVE_AD) {
    nlo |= olo & (PAGE_ACCESSED | PAGE_DIRTY);
  }
  e[0] = nlo;
  e[1] = nhi;
  if (olo & PAGE_PRESENT) put_page_from_l1e(olo, ohi);
  return 0;
}

static int mod_ln_entry(u32 level, u64 mfn, u32 i, u32 nlo, u32 nhi, int preserve_ad, int32_t d) {
  if (level == 4 && !is_guest_l4_slot(i)) return -EINVAL;
  u32 *e = entry(mfn, i);
  u32 olo = e[0], ohi = e[1];
  if (preserve_ad) nlo |= olo & (PAGE_ACCESSED | PAGE_DIRTY);
  if (nlo & PAGE_PRESENT) {
    if (nlo & LN_DISALLOW_LO) return -EINVAL;
    nlo |= level == 4 ? PAGE_USER | PAGE_ACCESSED : PAGE_USER;
    if (((olo ^ nlo) & ~FASTPATH_LO) == 0 && ((ohi ^ nhi) & ~FASTPATH_HI) == 0) {
      e[0] = nlo;
      e[1] = nhi;
      return 0;
    }
    int rc = get_page_from_lne(level, nlo, nhi, mfn, d);
    if (rc != 0) return rc;
  }
  e[0] = nlo;
  e[1] = nhi;
  if (olo & PAGE_PRESENT) put_page_from_lne(olo, ohi, mfn);
  return 0;
}

/* ---- the hypercalls */
typedef struct {
  const u32 *ureqs; /* the guest's buffer: 4 words a request */
  u32 count, foreigndom, pdone;
} mmu_update_args;

typedef struct {
  u32 cmd;
  u64 mfn;
} mmuext_one;

typedef struct {
  const mmuext_one *uops;
  u32 count, foreigndom, pdone;
} mmuext_args;

static inline void m2p_set(u64 mfn, u32 lo, u32 hi) {
  u64 byte = mfn * 8;
  u32 *w = ram + ((u64)m2p_frames[byte / 4096] << 10) + (byte % 4096) / 4;
  w[0] = lo;
  w[1] = hi;
}

/* The part of get_pg_owner this reference models; exits on foreign domains. */
static int pg_owner(u32 foreigndom, int32_t *out) {
  u32 domid = foreigndom & 0xffff;
  if ((int32_t)domid == dom_id) return 0;
  if (domid == DOMID_SELF) {
    *out = dom_id;
    return 1;
  }
  if (domid == DOMID_IO || domid == DOMID_XEN) return 0;
  die("foreign page owners are not modelled");
  return 0;
}

static int do_mmu_update(void *argp) {
  mmu_update_args *a = argp;
  u32 count = a->count, done = 0;
  if (count & MMU_UPDATE_PREEMPTED) {
    count &= ~MMU_UPDATE_PREEMPTED;
    done = a->pdone;
  }
  u32 foreigndom = a->foreigndom;
  if (foreigndom >> 16) die("a page-table owner in foreigndom is not modelled");
  int32_t d = dom_id, pg;
  if (!pg_owner(foreigndom, &pg)) {
    a->pdone = done;
    return -ESRCH;
  }
  int rc = 0, flush_linear = 0;
  u32 i = 0;
  for (; i < count; i++) {
    /* copy_from_guest of one struct mmu_update */
    const u32 *q = a->ureqs + (size_t)i * 4;
    u32 plo = q[0], phi = q[1], vlo = q[2], vhi = q[3];
    u32 cmd = plo & 7;
    if (cmd == MMU_NORMAL_PT_UPDATE || cmd == MMU_PT_UPDATE_PRESERVE_AD ||
        cmd == MMU_PT_UPDATE_NO_TRANSLATE) {
      rc = -EINVAL;
      u64 gmfn = ((u64)phi << 20) + (plo >> 12);
      if (!get_page(gmfn, d)) break;
      u32 slot = (plo & 0xfff) >> 3;
      u32 x = type_info[gmfn];
      if ((x & PGT_validated) && (x & PGT_count_mask)) {
        u32 type = x & PGT_type_mask;
        if (type == PGT_l1_page_table) {
          rc = mod_l1_entry(gmfn, slot, vlo, vhi, cmd, d);
        } else if (type >= PGT_l2_page_table && type <= PGT_l4_page_table) {
          rc = mod_ln_entry(type >> 29, gmfn, slot, vlo, vhi, cmd == MMU_PT_UPDATE_PRESERVE_AD, d);
          if (rc == 0) flush_linear = 1;
        } else if (type == PGT_writable_page) {
          u32 *e = entry(gmfn, slot);
          e[0] = vlo;
          e[1] = vhi;
          rc = 0;
        }
      } else if (get_page_type(gmfn, PGT_writable_page) == 0) {
        u32 *e = entry(gmfn, slot);
        e[0] = vlo;
        e[1] = vhi;
        put_page_type(gmfn);
        rc = 0;
      }
      put_page(gmfn);
    } else if (cmd != MMU_MACHPHYS_UPDATE) {
      rc = -ENOSYS;
      break;
    } else {
      u64 mfn = ((u64)phi << 20) + (plo >> 12);
      if (!get_page(mfn, pg)) {
        rc = -EINVAL;
        break;
      }
      m2p_set(mfn, vlo, vhi);
      put_page(mfn);
      rc = 0;
    }
    if (rc != 0) break;
  }
  pc.mmu_updates += i;
  if (flush_linear) flush_domain(d);
  a->pdone = done + i;
  return rc;
}

static int mmuext_one_op(const mmuext_one *op, int32_t pg) {
  u64 mfn = op->mfn;
  if (op->cmd <= MMUEXT_PIN_L4_TABLE) { /* PIN_L1_TABLE is 0 */
    u32 type = (op->cmd - MMUEXT_PIN_L1_TABLE + 1) << 29;
    if (!get_page(mfn, pg)) return -EINVAL;
    int rc = get_page_type(mfn, type);
    if (rc != 0) {
      put_page(mfn);
      return rc;
    }
    if (type_info[mfn] & PGT_pinned) {
      put_page_type(mfn);
      put_page(mfn);
      return -EINVAL;
    }
    type_info[mfn] |= PGT_pinned;
    return 0;
  }
  if (op->cmd == MMUEXT_UNPIN_TABLE) {
    if (!get_page(mfn, pg)) return -EINVAL;
    if (!(type_info[mfn] & PGT_pinned)) {
      put_page(mfn);
      return -EINVAL;
    }
    type_info[mfn] &= ~PGT_pinned;
    put_page_type(mfn);
    put_page(mfn);
    put_page(mfn);
    return 0;
  }
  die("mmuext commands other than pin and unpin are not modelled");
  return 0;
}

static int do_mmuext_op(void *argp) {
  mmuext_args *a = argp;
  u32 count = a->count, done = 0;
  if (count & MMU_UPDATE_PREEMPTED) {
    count &= ~MMU_UPDATE_PREEMPTED;
    done = a->pdone;
  }
  int32_t pg;
  if (!pg_owner(a->foreigndom, &pg)) return -ESRCH;
  int rc = 0;
  u32 i = 0;
  for (; i < count; i++) {
    rc = mmuext_one_op(&a->uops[i], pg);
    if (rc != 0) break;
  }
  a->pdone = done + i;
  return rc;
}

/* The hypercall table (core's dispatch: route by number, count, call). */
typedef int (*hypercall_fn)(void *);
static hypercall_fn hypercall_table[64];
static u64 hypercall_counts[64];

static inline int hypercall(u32 op, void *args) {
  hypercall_fn fn = op < 64 ? hypercall_table[op] : 0;
  if (!fn) return -ENOSYS;
  hypercall_counts[op]++;
  return fn(args);
}

/* ---- the guest's reads (src/service.ts translate and read) */
static inline int pv_grants(int perms, int access) {
  if (access & ACCESS_WRITE) {
    if (!(perms & PERM_DIRTY)) return 0;
    if (!(perms & PERM_RW) && ((access & ACCESS_USER) || mode_wp)) return 0;
  }
  if ((access & ACCESS_USER) && !(perms & PERM_USER)) return 0;
  return !(access & ACCESS_FETCH) || !(perms & PERM_NX);
}

static const u32 TAG_KERNEL = 0;

static inline int64_t pv_translate(u64 va, int access) {
  const int uid = 0;
  const u32 tag = TAG_KERNEL;
  const int64_t root = (int64_t)cr3;
  int acc = access | ACCESS_USER;
  int64_t vpn = (int64_t)(va >> 12);
  if (vpn == cpu.fast_vpn && uid == cpu.fast_uid && (int)tag == cpu.fast_tag &&
      root == cpu.fast_root && pv_grants(cpu.fast_perms, acc)) {
    cpu.tlb.counters[0]++;
    cpu.tlb.counters[1]++;
    return (int64_t)(cpu.fast_mfn * 4096 + (va & 4095));
  }
  cpu.fast_vpn = -1;
  tlb_t *t = &cpu.tlb;
  if (cpu.roots[tag] != root) {
    flush_local();
    cpu.roots[tag] = root;
  }
  if (tlb_lookup(t, va, tag)) {
    int p = t->hit_perms;
    cpu.fast_uid = uid;
    cpu.fast_tag = (int)tag;
    cpu.fast_root = root;
    cpu.fast_vpn = vpn;
    cpu.fast_mfn = t->hit_mfn;
    cpu.fast_perms = p;
    if (pv_grants(p, acc)) return (int64_t)(t->hit_mfn * 4096 + (va & 4095));
  }
  /* service.ts's translateWalk: a walk clears the fast path (a TLB hit that did not grant
   * the access set it); the TLB's next hit on it counts the same. */
  cpu.fast_vpn = -1;
  if (root >= 0) {
    walk_result *out = &cpu.out;
    u64 r0 = out->total_reads, w0 = out->total_writes;
    cpu.walks++;
    int ok = walk((u64)root, va, acc, out, &t->pwc, tag);
    cpu.walk_reads += out->total_reads - r0;
    cpu.walk_writes += out->total_writes - w0;
    if (ok && out->maddr < nr_frames * 4096) {
      int s = out->page_shift == 12 ? 0 : out->page_shift == 21 ? 1 : 2;
      u64 key = va >> size_shift[s];
      for (int l = 0; l < 2; l++)
        tlb_insert_at(t, l, s, key, tag, 0, out->page_mfn, (u32)(out->perms & ~PERM_GLOBAL));
      cpu.fast_vpn = -1;
      return (int64_t)out->maddr;
    }
    if (ok) die("MMIO is not modelled");
  }
  pc.page_faults++;
  return -1;
}

static inline int64_t pv_read32(u64 va) {
  if ((va >> 12) != ((va + 3) >> 12)) die("page-crossing reads are not modelled");
  int64_t ma = pv_translate(va, 0);
  if (ma < 0) return -1;
  u32 x;
  memcpy(&x, (const char *)ram + ma, 4);
  return x;
}

/* ---- the fixture (bench/fixture.ts writes it) */
static void pv_load(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(2);
  }
  u32 *h = read_exact(f, 4 * 64);
  if (h[0] != 0x50564652u) {
    fprintf(stderr, "pv-ref: %s is not a fixture\n", path);
    exit(2);
  }
  nr_frames = h[1];
  n_dumped = h[2];
  dom_id = (int32_t)h[3];
  other_id = (int32_t)h[4];
  vcpus_system = h[5];
  vcpus_domain = h[6];
  l1_disallow_lo = h[7];
  flush_epoch = h[8];
  cr3 = h[9];
  virt_base = (u64)h[10] | ((u64)h[11] << 32);
  span = h[12];
  n_batches = h[13];
  u32 words = h[14];
  n_m2p = h[15];
  ro_mpt_l3 = (int32_t)h[16];
  m2p_strict = (int)h[17];
  pin_l4 = h[18];
  mode_nxe = (int)h[19];
  mode_wp = (int)h[20];
  hash_all = (int)h[21];
  free(h);
  u32 *r = read_exact(f, 4 * 24);
  memcpy(rsvd_lo, r, 48);
  memcpy(rsvd_hi, r + 12, 48);
  free(r);
  owner_key = read_exact(f, 4 * nr_frames);
  count_info = read_exact(f, 4 * nr_frames);
  type_info = read_exact(f, 4 * nr_frames);
  writable_epoch = read_exact(f, 4 * nr_frames);
  linear = read_exact(f, 2 * (nr_frames + (nr_frames & 1)));
  m2p_frames = read_exact(f, 4 * (size_t)n_m2p);
  batch_words = read_exact(f, 4 * (size_t)words);
  batch_at = malloc(sizeof(u32 *) * (n_batches ? n_batches : 1));
  for (u32 b = 0, at = 0; b < n_batches; b++) {
    if (at + 2 > words) die("short fixture");
    batch_at[b] = batch_words + at;
    at += 2 + batch_words[at] * 4;
  }
  ram = calloc(nr_frames, 4096);
  if (!ram) die("out of memory");
  dumped = read_exact(f, 4 * (size_t)n_dumped);
  for (u32 i = 0; i < n_dumped; i++) {
    if (dumped[i] >= nr_frames || fread(ram + ((u64)dumped[i] << 10), 4096, 1, f) != 1)
      die("short fixture");
  }
  fclose(f);
}

/* ---- checksums, in bench/fixture.ts's hashWords order */
static u32 hash(u32 h, const u32 *a, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ a[i]) * 0x01000193u;
  return h;
}

static void print_state(const char *name) {
  u32 hr = 0x811c9dc5u;
  if (hash_all) hr = hash(hr, ram, (size_t)nr_frames * 1024);
  else
    for (u32 i = 0; i < n_dumped; i++) hr = hash(hr, ram + ((u64)dumped[i] << 10), 1024);
  u32 hl = 0x811c9dc5u;
  for (u64 i = 0; i < nr_frames; i++) hl = (hl ^ (u32)(int32_t)linear[i]) * 0x01000193u;
  printf("%s\t%08x\t%08x\t%08x\t%08x\t%08x\t%08x\t%u\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\n",
         name, hr, hash(0x811c9dc5u, (u32 *)owner_key, nr_frames),
         hash(0x811c9dc5u, count_info, nr_frames), hash(0x811c9dc5u, type_info, nr_frames),
         hash(0x811c9dc5u, writable_epoch, nr_frames), hl, flush_epoch,
         (unsigned long long)pc.mmu_updates, (unsigned long long)pc.validated_l1e,
         (unsigned long long)pc.promotions, (unsigned long long)pc.demotions,
         (unsigned long long)pc.type_change_flushes, (unsigned long long)pc.tlb_flushes,
         (unsigned long long)pc.frees);
}

static void print_reads(const char *name, u32 h) {
  u64 *c = cpu.tlb.counters;
  printf("%s\t%08x\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\n", name, h,
         (unsigned long long)cpu.walks, (unsigned long long)cpu.walk_reads,
         (unsigned long long)cpu.walk_writes, (unsigned long long)c[0], (unsigned long long)c[1],
         (unsigned long long)c[TLB_STRIDE], (unsigned long long)c[TLB_STRIDE + 1],
         (unsigned long long)pc.page_faults);
}

static void reset_read_counters(void) {
  cpu.walks = cpu.walk_reads = cpu.walk_writes = 0;
  memset(cpu.tlb.counters, 0, sizeof cpu.tlb.counters);
  pc.page_faults = 0;
}

/* The read loops' VAs, as bench/fixture.ts's newVa and seqVa. */
#define NEW_VA(i) (virt_base + ((i) * 4104) % span)
#define SEQ_VA(i) (virt_base + ((i) * 4) % span)

static int pin_once(int cmd) {
  mmuext_one op = {(u32)cmd, pin_l4};
  mmuext_args a = {&op, 1, DOMID_SELF, 0};
  return hypercall(HYPERVISOR_mmuext_op, &a);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s FIXTURE bench|turns|check|pin|pinturns|pincheck N\n", argv[0]);
    return 2;
  }
  pv_load(argv[1]);
  const char *mode = argv[2];
  const u64 N = strtoull(argv[3], 0, 10);
  hypercall_table[HYPERVISOR_mmu_update] = do_mmu_update;
  hypercall_table[HYPERVISOR_mmuext_op] = do_mmuext_op;
  tlb_init(&cpu.tlb);
  memset(&cpu.out, 0, sizeof cpu.out);
  cpu.roots[0] = cpu.roots[1] = (int64_t)cr3; /* the world's warm-up loaded CR3 already */
  cpu.fast_vpn = -1;
  cpu.fast_uid = -1;

  if (!strcmp(mode, "pin") || !strcmp(mode, "pincheck") || !strcmp(mode, "pinturns")) {
    if (!pin_l4) die("the fixture has no table to pin");
    if (!strcmp(mode, "pinturns")) {
      /* stdin asks for pv-pin and pv-unpin in turns (paging-ref.c's MEASURE). */
      measure_mode("turns");
      do {
        MEASURE("pv-pin", 1, {
          if (pin_once(MMUEXT_PIN_L4_TABLE) != 0) die("pin failed");
        });
        MEASURE("pv-unpin", 1, {
          if (pin_once(MMUEXT_UNPIN_TABLE) != 0) die("unpin failed");
        });
      } while (turn_state == 1 && !strcmp(turn_name, "pv-pin"));
      return 0;
    }
    if (!strcmp(mode, "pincheck")) {
      printf("pv-pin-rc\t%d\n", pin_once(MMUEXT_PIN_L4_TABLE));
      print_state("pv-pin");
      printf("pv-unpin-rc\t%d\n", pin_once(MMUEXT_UNPIN_TABLE));
      print_state("pv-unpin");
      return 0;
    }
    double bp = 1e300, bpc = 1e300, bu = 1e300, buc = 1e300;
    for (u64 run = 0; run <= N; run++) {
      double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
      if (pin_once(MMUEXT_PIN_L4_TABLE) != 0) die("pin failed");
      double t1 = now(CLOCK_MONOTONIC), c1 = now(CLOCK_PROCESS_CPUTIME_ID);
      if (pin_once(MMUEXT_UNPIN_TABLE) != 0) die("unpin failed");
      double t2 = now(CLOCK_MONOTONIC), c2 = now(CLOCK_PROCESS_CPUTIME_ID);
      if (run == 0) continue; /* warm-up */
      if (t1 - t0 < bp) bp = t1 - t0;
      if (c1 - c0 < bpc) bpc = c1 - c0;
      if (t2 - t1 < bu) bu = t2 - t1;
      if (c2 - c1 < buc) buc = c2 - c1;
    }
    printf("pv-pin\t%.2f\t%.2f\n", bp / 1e6, bpc / 1e6);
    printf("pv-unpin\t%.2f\t%.2f\n", bu / 1e6, buc / 1e6);
    return 0;
  }

  if (n_batches < 2 || batch_at[0][0] == 0 || batch_at[1][0] == 0) die("the fixture has no update batches");
  mmu_update_args args = {batch_at[0] + 2, batch_at[0][0], DOMID_SELF, 0};
  if (!strcmp(mode, "check")) {
    u32 h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)pv_read32(NEW_VA(i)));
    print_reads("pv-read-new", h);
    reset_read_counters();
    h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)pv_read32(SEQ_VA(i)));
    print_reads("pv-read-seq", h);
    u64 failed = 0;
    for (u64 r = 0; r < N / 1000; r++) {
      const u32 *b = batch_at[r & 1];
      args.ureqs = b + 2;
      if (hypercall(HYPERVISOR_mmu_update, &args) != 0) failed++;
    }
    printf("pv-update-failed\t%llu\n", (unsigned long long)failed);
    print_state("pv-update");
    printf("pv-hostile");
    for (u32 k = 2; k < n_batches; k++) {
      const u32 *b = batch_at[k];
      mmu_update_args a = {b + 2, b[0], b[1], 0};
      int rc = hypercall(HYPERVISOR_mmu_update, &a);
      printf("%s%d:%u", k == 2 ? "\t" : ",", rc, a.pdone);
    }
    printf("\n");
    print_state("pv-hostile-state");
    return 0;
  }
  if (strcmp(mode, "bench") != 0 && strcmp(mode, "turns") != 0)
    die("mode is bench, turns, check, pin, pinturns or pincheck");
  measure_mode(mode);
  const u64 rounds = (N / 1000) * 2; /* even: every run starts from batch 1 mapped */
  MEASURE("pv-update", rounds * 512, {
    for (u64 r = 0; r < rounds; r++) {
      args.ureqs = batch_at[r & 1] + 2;
      if (hypercall(HYPERVISOR_mmu_update, &args) != 0) die("mmu_update failed");
    }
  });
  /* NEW_VA and SEQ_VA as a running offset (an add and a compare, no division), as
   * bench/index.ts's loops. */
  MEASURE("pv-read-new", N, {
    int64_t x = 0;
    u64 off = 0;
    for (u64 i = 0; i < N; i++) {
      x ^= pv_read32(virt_base + off);
      off += 4104;
      if (off >= span) off -= span;
    }
    sink += (u64)x;
  });
  MEASURE("pv-read-seq", N * 4, {
    int64_t x = 0;
    u64 off = 0;
    for (u64 i = 0; i < N * 4; i++) {
      x ^= pv_read32(virt_base + off);
      off += 4;
      if (off >= span) off -= span;
    }
    sink += (u64)x;
  });
  return 0;
}
