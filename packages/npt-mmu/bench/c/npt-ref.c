/*
 * C reference of @hyperlab/npt-mmu's translate (src/npt.ts), for the side-by-side rates of
 * `pnpm bench` and the checksum test (test/c-reference.test.ts). It includes paging's C
 * reference (guest entry checks, walk_finish with A/D, the two-level LRU TLB and timing) and
 * adds the nested dimension: the two-dimensional walk, one guest level at a time with the
 * guest table's gfn translated through the EPT table first (EPT entry checks: RWX, the
 * write-without-read and memory-type misconfigurations, large leaves), then the final gfn.
 *
 * Three loops, as bench/index.ts:
 * - npt-cold: every translation a cold 2D walk (no TLB, no guest or nested structure caches,
 *   no nested TLB: 4 x 4 + 4 + 4 = 24 references with 4 KiB host pages);
 * - npt-hit: the combined TLB hit (the vCPU's TLB by uid, its CR3 and VPID checks, TLB lookup,
 *   rights check). The TLB is filled by 2D walks of the hot pages before the loop.
 * All three go through translate() as NptMmu's translate does: the vCPU's TLB by uid, the
 * CR3 it last ran under and the VPID test, then the hit path or translate_slow.
 * - npt-warm: a combined-TLB miss (the TLB holds only one 1 GiB entry) and a warm 2D walk:
 *   the guest paging-structure caches (paging's PageWalkCache, default geometry) skip to the
 *   last guest level, and the nested TLB (gfn -> mfn, direct-mapped, 1024 entries) and the
 *   nested paging-structure caches (gfn prefix -> next EPT table, 16 per level) stand in for
 *   the nested walks, with NptMmu's slot hashing, tags and fills. One untimed pass over the
 *   pages warms them first, as the TypeScript world's own first pass does.
 * Its input is the steady-state RAM of the TypeScript world (guest tables and the EPT table
 * it built on EPT violations), written by bench/fixture.ts and read with paging-ref.c's
 * fixture loader.
 *
 * Usage: npt-ref FIXTURE bench N      rates, one "name<TAB>wall M/s<TAB>cpu M/s" line each
 *        npt-ref FIXTURE turns N      one timed run per loop name read on stdin (paging-ref.c)
 *        npt-ref FIXTURE check N      checksums and counters, one "name<TAB>..." line each
 */
#define PAGING_REF_LIBRARY
#include "../../../paging/bench/c/paging-ref.c"

#define EPT_R 0x1u
#define EPT_W 0x2u
#define EPT_X 0x4u
#define EPT_RWX 0x7u
#define EPT_MT_MASK 0x38u
#define EPT_PAGE_SIZE 0x80u
#define N_VIOLATION (-1)
#define N_MISCONFIG (-2)
#define PFEC_PRESENT 0x1
#define PFEC_RSVD 0x8

/* NptCounts fields the loops move. */
static struct {
  u64 tlb_hits, tlb_misses, walks, guest_refs, guest_ad_writes, nested_refs, guest_faults;
  u64 guest_pwc_hits, nested_pwc_hits, nested_tlb_hits, nested_tlb_misses;
} nc;

static u64 npt_cr3, ept_root, base_va;
static u32 n_pages, n_hot, dom;

/* Fixture: paging-ref.c's head (magic "RFPN"; header words: RAM frames, dumped frames, guest
 * CR3, EPT root, pages, hot pages, base VA lo / hi, NXE, WP, domain id), then the dumped
 * frames listed by number. */
static void npt_load(const char *path) {
  u32 h[32];
  FILE *f = fixture_open(path, 0x4e504652u, "npt-ref", h);
  npt_cr3 = h[3];
  ept_root = h[4];
  n_pages = h[5];
  n_hot = h[6];
  base_va = (u64)h[7] | ((u64)h[8] << 32);
  mode_nxe = (int)h[9];
  mode_wp = (int)h[10];
  dom = h[11];
  fixture_frames(f, h[2], 1, "npt-ref");
  fclose(f);
}

/* The nested structure caches and nested TLB of one pCPU (NptMmu's npwc* and ntlb* arrays
 * for p = 0), their sizes 0 for none: nestedPwcEntries per level 1..3 and nestedTlbEntries. */
#define NPWC_MAX 16
#define NTLB_MAX 1024
static u32 npwc_n, ntlb_q;
static u64 npwc_tag[4 * NPWC_MAX], npwc_mfn[4 * NPWC_MAX];
static int32_t npwc_dom[4 * NPWC_MAX];
static u64 ntlb_gfn[NTLB_MAX];
/* u32, as NptMmu's Uint32Array: every mfn stored is below nr_frames <= 2^32. */
static u32 ntlb_mfn[NTLB_MAX];
static int32_t ntlb_dom[NTLB_MAX];
static uint8_t ntlb_perm[NTLB_MAX];
static const int nleaf_shift[4] = {0, 12, 21, 30};
static int n_shift = 12;

/* Empties the caches (every slot tagged with no domain). */
static void nested_caches_flush(void) {
  for (u32 i = 0; i < 4 * NPWC_MAX; i++) npwc_dom[i] = -1;
  for (u32 i = 0; i < NTLB_MAX; i++) ntlb_dom[i] = -1;
}

/* Which caches nested() uses from now on; their contents stay. */
static void nested_caches(u32 n, u32 q) {
  npwc_n = n;
  ntlb_q = q;
}

/* gfn -> mfn of domain `dom` through the nested TLB, the nested structure caches, then the
 * EPT table. */
static inline int64_t nested(u32 dom, u64 gfn, u32 need) {
  u32 qs = 0;
  if (ntlb_q) {
    qs = (u32)(gfn + dom * 5) & (ntlb_q - 1);
    if (ntlb_dom[qs] == (int32_t)dom && ntlb_gfn[qs] == gfn) {
      u32 np = ntlb_perm[qs];
      if ((np & need) == need) {
        nc.nested_tlb_hits++;
        n_shift = nleaf_shift[np >> 3];
        return (int64_t)ntlb_mfn[qs];
      }
    }
    nc.nested_tlb_misses++;
  }
  int level = 4;
  u64 table = ept_root;
  if (gfn >= (1ull << 40)) return N_VIOLATION;
  if (npwc_n) {
    for (int L = 1; L < 4; L++) {
      u64 key = gfn >> (9 * L);
      u32 s = (u32)L * npwc_n + ((u32)(key + dom) & (npwc_n - 1));
      if (npwc_dom[s] == (int32_t)dom && npwc_tag[s] == key) {
        nc.nested_pwc_hits++;
        level = L;
        table = npwc_mfn[s];
        break;
      }
    }
  }
  u32 perm = EPT_RWX;
  for (;; level--) {
    u32 idx = (u32)(gfn >> (9 * (level - 1))) & 511;
    const u32 *w = ram + (table << 10) + idx * 2;
    u32 lo = w[0], hi = w[1];
    nc.nested_refs++;
    u32 rwx = lo & EPT_RWX;
    if (rwx == 0) return N_VIOLATION;
    if ((rwx & EPT_W) && !(rwx & EPT_R)) return N_MISCONFIG;
    perm &= rwx;
    u64 next = pte_mfn(lo, hi);
    if (level == 1 || (lo & EPT_PAGE_SIZE)) {
      int large = level > 1;
      u32 mt = (lo & EPT_MT_MASK) >> 3;
      if (mt == 2 || mt == 3 || mt == 7 || level > 3) return N_MISCONFIG;
      u64 span = 1ull << (9 * (level - 1));
      u64 mfn = large ? (next & ~(span - 1)) + (gfn & (span - 1)) : next;
      if (mfn >= nr_frames) return N_MISCONFIG;
      if ((perm & need) != need) return N_VIOLATION;
      if (ntlb_q) {
        ntlb_dom[qs] = (int32_t)dom;
        ntlb_gfn[qs] = gfn;
        ntlb_mfn[qs] = (u32)mfn;
        ntlb_perm[qs] = (uint8_t)(perm | (u32)(level << 3));
      }
      n_shift = nleaf_shift[level];
      return (int64_t)mfn;
    }
    if (next >= nr_frames) return N_MISCONFIG;
    if (npwc_n) {
      int L = level - 1;
      u64 key = gfn >> (9 * L);
      u32 s = (u32)L * npwc_n + ((u32)(key + dom) & (npwc_n - 1));
      npwc_tag[s] = key;
      npwc_mfn[s] = next;
      npwc_dom[s] = (int32_t)dom;
    }
    table = next;
  }
}

/* paging's walkStep over a table at machine frame tmfn: 0 fault, 1 table, 2 leaf. */
static inline int walk_step(u64 tmfn, u32 index, int level, walk_result *out, u64 *next) {
  u32 lo = 0, hi = 0;
  out->reads++;
  out->total_reads++;
  if (tmfn < nr_frames) {
    const u32 *w = ram + (tmfn << 10) + (index & 511) * 2;
    lo = w[0];
    hi = w[1];
  }
  out->entry_maddr[level] = tmfn * 4096 + (index & 511) * 8;
  out->entry_lo[level] = lo;
  out->entry_hi[level] = hi;
  if (!(lo & 1)) {
    out->fault = 1;
    out->error_code = fault_code(out->access);
    out->fault_level = level;
    out->total_faults++;
    return 0;
  }
  int ps = level > 1 && (lo & PAGE_PSE) ? 1 : 0;
  int r = level * 2 + ps;
  if ((lo & rsvd_lo[r]) || (hi & rsvd_hi[r])) {
    out->fault = 2;
    out->error_code = fault_code(out->access) | 1 | 8;
    out->fault_level = level;
    out->total_faults++;
    return 0;
  }
  int p = out->perms & (int)(lo | ~(u32)RW_US);
  if ((hi & PAGE_NX_HI) && mode_nxe) p |= PERM_NX;
  out->perms = p;
  out->level_perms[level] = (uint16_t)p;
  if (level == 1 || ps) {
    out->leaf_level = level;
    return 2;
  }
  *next = pte_mfn(lo, hi);
  return 1;
}

static walk_result nout;

/* The vCPU the loops translate for (core's Vcpu: uid, pCPU, guest CR3, domain) and what
 * NptMmu's translate checks before it asks a TLB: the TLB of each vCPU by uid (CpuTlbs.byCpu:
 * none past its length, and none at all for `tlb: false`), the CR3 each vCPU last ran under
 * (lastCr3, 64 to start with), the vCPU last entered on each pCPU (lastOnPcpu, looked at
 * only without VPID) and whether VPID is on; and NptMmu's `fault`, which every TLB miss
 * resets and a guest fault fills. */
typedef struct {
  u32 uid, processor;
  int64_t cr3;
  u32 domid;
} vcpu_t;
#define NR_UIDS 64
static tlb_t *tlb_by_cpu[NR_UIDS];
static u32 tlb_by_cpu_len;
static int64_t last_cr3[NR_UIDS];
static u32 last_cr3_len = NR_UIDS;
static int32_t last_on_pcpu[1] = {-1};
/* Not static: a runtime option, as NptMmu's `vpid` field (gcc may not fold it away). */
int npt_vpid = 1;
static struct {
  u64 va;
  int error_code;
  int64_t gpa;
  int exit_reason;
} npt_fault;
static u64 guest_cr3_loads, vmentry_flushes;

/* NptMmu's guestFault: the fault's VA and error code, counted. */
static inline int64_t guest_fault(u64 va, int error_code) {
  npt_fault.va = va;
  npt_fault.error_code = error_code;
  nc.guest_faults++;
  return -1;
}

/* NptMmu's fillSizes: the page sizes (bit 12, 21, 30) some level of the vCPUs' TLB
 * configuration has an array of; walk2d makes no insert for a page size none has. Set by
 * npt_tlb_config for the TLB the next loop's vCPU uses (the TypeScript worlds' NptMmus each
 * have their one configuration). */
static u32 npt_fill_sizes;

static void npt_tlb_config(const tlb_t *t) {
  npt_fill_sizes = 0;
  for (int l = 0; l < 2; l++)
    for (int s = 0; s < 3; s++)
      if (t->grid[l * 3 + s]) npt_fill_sizes |= 1u << size_shift[s];
}

/* Tlb.insert: every level that has an array of the page's size. */
static inline void npt_tlb_insert(tlb_t *t, u64 va, u64 mfn, int shift, u32 perms) {
  int s = shift == 12 ? 0 : shift == 21 ? 1 : 2;
  u64 key = va >> size_shift[s];
  int global = (perms & PERM_GLOBAL) != 0;
  int levels = t->array_level[t->n - 1] + 1;
  for (int l = 0; l < levels; l++)
    if (t->grid[l * 3 + s]) tlb_insert_at(t, l, s, key, 0, global, mfn, perms);
}

/* One 2D walk (the walk in NptMmu's translateSlow): from the guest structure caches of `t`
 * when there is a TLB, each guest table's gfn through nested() before its entry is read,
 * then the data gfn; a walk with a TLB fills the structure caches and the TLB. The machine
 * address or -1. */
static int64_t walk2d(tlb_t *t, const vcpu_t *v, u64 va, int access) {
  const u32 dom = v->domid;
  const int64_t cr3 = v->cr3;
  nc.walks++;
  int acc = access & (ACCESS_WRITE | ACCESS_USER | ACCESS_FETCH);
  if (!(cr3 >= 0)) return guest_fault(va, acc);
  walk_result *out = &nout;
  int level = 4, perms = RW_US, pwc_level = 0;
  u64 table = (u64)cr3;
  if (t && pwc_lookup(&t->pwc, va, 0, level)) {
    nc.guest_pwc_hits++;
    pwc_level = t->pwc.hit_level;
    level = pwc_level - 1;
    table = t->pwc.hit_mfn;
    perms = (int)t->pwc.hit_perms;
  }
  out->va = va;
  out->va_lo = (u32)va;
  out->access = acc;
  out->ok = 0;
  out->fault = 0;
  out->error_code = 0;
  out->fault_level = 0;
  out->start_level = level;
  out->pwc_level = pwc_level;
  out->perms = perms;
  out->reads = 0;
  out->writes = 0;
  out->leaf_level = 0;
  out->total_walks++;
  /* The AND of every guest entry read: its A bit says whether walk_finish's A loop can be
   * skipped (no entry needs A), as NptMmu's translateSlow does. */
  u32 accessed = PAGE_ACCESSED;
  for (;;) {
    int64_t tmfn = nested(dom, table, EPT_R);
    if (tmfn < 0) {
      nc.guest_refs += out->reads;
      return guest_fault(va, PFEC_PRESENT | PFEC_RSVD | acc);
    }
    u64 next = 0;
    int r = walk_step((u64)tmfn, (u32)(va >> (12 + 9 * (level - 1))) & 511, level, out, &next);
    accessed &= out->entry_lo[level];
    if (r == 1) {
      table = next;
      level--;
    } else if (r == 2) {
      break;
    } else {
      nc.guest_refs += out->reads;
      return guest_fault(va, out->error_code);
    }
  }
  nc.guest_refs += out->reads;
  int ok = walk_finish_accessed(out, accessed & PAGE_ACCESSED);
  nc.guest_ad_writes += out->writes;
  if (!ok) return guest_fault(va, out->error_code);
  u32 need = EPT_R | ((access & ACCESS_WRITE) ? EPT_W : 0) | ((access & ACCESS_FETCH) ? EPT_X : 0);
  int64_t mfn = nested(dom, out->maddr >> 12, need);
  if (mfn < 0) return guest_fault(va, PFEC_PRESENT | PFEC_RSVD | acc);
  if (t) {
    if (out->start_level > out->leaf_level) pwc_fill(&t->pwc, va, 0, out);
    /* The combined page is the smaller of the guest's page and the host's. */
    int shift = out->page_shift < n_shift ? out->page_shift : n_shift;
    u64 vpn = va >> 12;
    if (npt_fill_sizes & (1u << shift))
      npt_tlb_insert(t, va, (u64)mfn - (vpn & ((1ull << (shift - 12)) - 1)), shift,
                     (u32)out->perms);
  }
  return mfn * 4096 + (int64_t)(va & 4095);
}

static const u64 VA_LIMIT = 1ull << 48;

/* paging's tlbGrants */
static inline int tlb_grants_npt(int perms, int access) {
  if (access & ACCESS_WRITE) {
    if (!(perms & PERM_DIRTY)) return 0;
    if (!(perms & PERM_RW) && ((access & ACCESS_USER) || mode_wp)) return 0;
  }
  if ((access & ACCESS_USER) && !(perms & PERM_USER)) return 0;
  return !(access & ACCESS_FETCH) || !(perms & PERM_NX);
}

/* Tlb.flushAll and flushNonGlobal (with the page-walk caches): every entry, or every entry
 * without ASSOC_GLOBAL. Not reached in the loops (VPID on, one CR3 throughout). */
static void assoc_drop(assoc *a, int keep_global) {
  for (u32 i = 0; i < a->sets * a->ways; i++) {
    if (a->flags[i] != 0 && !(keep_global && (a->flags[i] & 2))) {
      a->flags[i] = 0;
      a->used--;
    }
  }
}
static void tlb_flush(tlb_t *t, int keep_global) {
  for (int i = 0; i < t->n; i++) assoc_drop(&t->arrays[i], keep_global);
  for (int l = 2; l <= 5; l++)
    if (t->pwc.caches[l]) assoc_drop(t->pwc.caches[l], 0);
}

/* NptMmu's translateSlow before the walk: a first translation, a CR3 change, a VM entry's
 * flush (no VPID) and the lookup they come before, or after translate's TLB miss
 * (`looked`) only the miss; then the VA's check and the 2D walk. */
static int64_t translate_slow(const vcpu_t *v, u64 va, int access, int looked) {
  const u32 uid = v->uid;
  tlb_t *t;
  if (looked) {
    t = tlb_by_cpu[uid];
  } else {
    /* (uid < last_cr3_len here: the loops' vCPU is uid 0, so lastCr3 never grows.) */
    t = uid < tlb_by_cpu_len ? tlb_by_cpu[uid] : NULL;
    if (!npt_vpid && last_on_pcpu[v->processor] != (int32_t)uid) {
      last_on_pcpu[v->processor] = (int32_t)uid;
      vmentry_flushes++;
      if (t) tlb_flush(t, 0);
    }
    if (v->cr3 != last_cr3[uid]) {
      last_cr3[uid] = v->cr3;
      guest_cr3_loads++;
      if (t) tlb_flush(t, 1);
    }
    if (t && tlb_lookup(t, va, 0) && tlb_grants_npt(t->hit_perms, access)) {
      nc.tlb_hits++;
      return (int64_t)(t->hit_mfn * 4096 + (va & 4095));
    }
  }
  nc.tlb_misses++;
  npt_fault.exit_reason = -1;
  npt_fault.gpa = -1;
  if (va >= VA_LIMIT) return guest_fault(va, access & (ACCESS_WRITE | ACCESS_USER | ACCESS_FETCH));
  return walk2d(t, v, va, access);
}

/* NptMmu's translate: the hit path for a vCPU that has its TLB, runs under the CR3 last seen
 * and needs no flush on VM entry (VPID, or it ran last on its pCPU); anything else, and a
 * miss, is translate_slow's. The three loops run it over one vCPU whose TLB is, in turn,
 * none (npt-cold: tlb false), paging's default TLB (npt-hit) and the one-entry 1 GiB TLB
 * (npt-warm). */
static inline int64_t translate(const vcpu_t *v, u64 va, int access) {
  const u32 uid = v->uid;
  tlb_t *t = uid < tlb_by_cpu_len ? tlb_by_cpu[uid] : NULL;
  if (t == NULL || uid >= last_cr3_len || v->cr3 != last_cr3[uid] ||
      !(npt_vpid || last_on_pcpu[v->processor] == (int32_t)uid))
    return translate_slow(v, va, access, 0);
  if (tlb_lookup(t, va, 0) && tlb_grants_npt(t->hit_perms, access)) {
    nc.tlb_hits++;
    return (int64_t)(t->hit_mfn * 4096 + (va & 4095));
  }
  return translate_slow(v, va, access, 1);
}

/* The warm loop's TLB: one level with only a one-entry 1 GiB array (every 4 KiB translation
 * misses it), with paging's default page-walk caches. */
static void tlb_init_1g(tlb_t *t) {
  memset(t, 0, sizeof *t);
  t->n = 1;
  assoc_init(&t->arrays[0], 1, 1);
  t->grid[2] = &t->arrays[0];
  t->array_level[0] = 0;
  t->array_size[0] = 2;
  pwc_init(&t->pwc);
}

static void print_check(const char *name, u32 h) {
  printf("%s\t%08x\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\n", name, h,
         (unsigned long long)nc.tlb_hits, (unsigned long long)nc.tlb_misses,
         (unsigned long long)nc.walks, (unsigned long long)nc.guest_refs,
         (unsigned long long)nc.nested_refs, (unsigned long long)nc.guest_ad_writes,
         (unsigned long long)nc.guest_pwc_hits, (unsigned long long)nc.nested_pwc_hits,
         (unsigned long long)nc.nested_tlb_hits, (unsigned long long)nc.nested_tlb_misses);
}

/* The loops' VAs, as bench/fixture.ts's coldVa and hitVa. */
#define COLD_VA(i) (base_va + ((i) % n_pages) * 4096)
#define HIT_VA(i) (base_va + ((i) & (n_hot - 1)) * 4096 + 8)

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s FIXTURE bench|turns|check N\n", argv[0]);
    return 2;
  }
  npt_load(argv[1]);
  int check = strcmp(argv[2], "check") == 0;
  measure_mode(argv[2]);
  const u64 N = strtoull(argv[3], 0, 10);
  memset(&nout, 0, sizeof nout);
  /* The vCPU (uid 0 on pCPU 0), which has run under its CR3 since the world's first
   * translation (cr3Loaded). */
  const vcpu_t vc = {0, 0, (int64_t)npt_cr3, dom};
  for (u32 i = 0; i < NR_UIDS; i++) last_cr3[i] = -2;
  last_cr3[0] = vc.cr3;
  /* The hit loop's TLB (paging's default geometry), filled by 2D walks of the hot pages. */
  static tlb_t tlb;
  tlb_init(&tlb);
  npt_tlb_config(&tlb);
  nested_caches_flush();
  nested_caches(0, 0);
  for (u32 p = 0; p < n_hot; p++) {
    if (walk2d(&tlb, &vc, base_va + (u64)p * 4096, 0) < 0) {
      fprintf(stderr, "npt-ref: hot page %u does not translate\n", p);
      return 3;
    }
  }
  /* The warm loop's TLB and nested caches (nestedPwcEntries 16, nestedTlbEntries 1024),
   * warmed by one pass over the pages. */
  static tlb_t wtlb;
  tlb_init_1g(&wtlb);
  npt_tlb_config(&wtlb);
  nested_caches(16, 1024);
  tlb_by_cpu[0] = &wtlb;
  tlb_by_cpu_len = 1;
  for (u32 p = 0; p < n_pages; p++) translate(&vc, COLD_VA(p), 0);
  memset(&nc, 0, sizeof nc);
  if (check) {
    u32 h = 0x811c9dc5u;
    nested_caches(0, 0);
    tlb_by_cpu_len = 0;
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)translate(&vc, COLD_VA(i), 0));
    print_check("npt-cold", h);
    memset(&nc, 0, sizeof nc);
    h = 0x811c9dc5u;
    tlb_by_cpu[0] = &tlb;
    tlb_by_cpu_len = 1;
    npt_tlb_config(&tlb);
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)translate(&vc, HIT_VA(i), 0));
    print_check("npt-hit", h);
    memset(&nc, 0, sizeof nc);
    h = 0x811c9dc5u;
    nested_caches(16, 1024);
    tlb_by_cpu[0] = &wtlb;
    npt_tlb_config(&wtlb);
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)translate(&vc, COLD_VA(i), 0));
    print_check("npt-warm", h);
    return 0;
  }
  nested_caches(0, 0);
  tlb_by_cpu_len = 0;
  MEASURE("npt-cold", N, {
    u64 s = 0;
    for (u64 i = 0; i < N; i++) s += (u64)translate(&vc, COLD_VA(i), 0);
    sink += s;
  });
  tlb_by_cpu[0] = &tlb;
  tlb_by_cpu_len = 1;
  npt_tlb_config(&tlb);
  MEASURE("npt-hit", N * 5, {
    u64 s = 0;
    for (u64 i = 0; i < N * 5; i++) s += (u64)translate(&vc, HIT_VA(i), 0);
    sink += s;
  });
  nested_caches(16, 1024);
  tlb_by_cpu[0] = &wtlb;
  npt_tlb_config(&wtlb);
  MEASURE("npt-warm", N, {
    u64 s = 0;
    for (u64 i = 0; i < N; i++) s += (u64)translate(&vc, COLD_VA(i), 0);
    sink += s;
  });
  return 0;
}
