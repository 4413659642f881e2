/*
 * C reference of @hyperlab/npt-mmu's translate (src/npt.ts), for the side-by-side rates of
 * `pnpm bench` and the checksum test (test/c-reference.test.ts). It includes paging's C
 * reference (guest entry checks, walk_finish with A/D, the two-level LRU TLB and timing) and
 * adds the nested dimension: the two-dimensional walk, one guest level at a time with the
 * guest table's gfn translated through the EPT table first (EPT entry checks: RWX, the
 * write-without-read and memory-type misconfigurations, large leaves), then the final gfn.
 *
 * Two loops, as bench/index.ts:
 * - npt-cold: every translation a cold 2D walk (no TLB, no guest or nested structure caches,
 *   no nested TLB: 4 x 4 + 4 + 4 = 24 references with 4 KiB host pages);
 * - npt-hit: the combined TLB hit (CR3 check, TLB lookup, rights check). The TLB is filled by
 *   2D walks of the hot pages before the loop.
 * Its input is the steady-state RAM of the TypeScript world (guest tables and the EPT table
 * it built on EPT violations), written by bench/fixture.ts.
 *
 * Usage: npt-ref FIXTURE bench N      rates, one "name<TAB>wall M/s<TAB>cpu M/s" line each
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

/* NptCounts fields the loops move. */
static struct {
  u64 tlb_hits, tlb_misses, walks, guest_refs, guest_ad_writes, nested_refs, guest_faults;
} nc;

static u64 npt_cr3, ept_root, base_va;
static u32 n_pages, n_hot;
static int64_t last_cr3 = -2;

/* Fixture: 32 u32 header words (magic "RFPN", RAM frames, dumped frames, guest CR3, EPT root,
 * pages, hot pages, base VA lo / hi, NXE, WP), 24 reserved-bit mask words, the dumped frame
 * numbers, then their contents. */
static void npt_load(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(2);
  }
  u32 *h = read_exact(f, 4 * 32);
  if (h[0] != 0x4e504652u) {
    fprintf(stderr, "npt-ref: %s is not a fixture\n", path);
    exit(2);
  }
  nr_frames = h[1];
  u32 dumped = h[2];
  npt_cr3 = h[3];
  ept_root = h[4];
  n_pages = h[5];
  n_hot = h[6];
  base_va = (u64)h[7] | ((u64)h[8] << 32);
  mode_nxe = (int)h[9];
  mode_wp = (int)h[10];
  free(h);
  u32 *r = read_exact(f, 4 * 24);
  memcpy(rsvd_lo, r, 48);
  memcpy(rsvd_hi, r + 12, 48);
  free(r);
  ram = calloc(nr_frames, 4096);
  if (!ram) {
    fprintf(stderr, "npt-ref: out of memory\n");
    exit(2);
  }
  u32 *mfns = read_exact(f, 4 * (size_t)dumped);
  for (u32 i = 0; i < dumped; i++) {
    if (mfns[i] >= nr_frames || fread(ram + ((u64)mfns[i] << 10), 4096, 1, f) != 1) {
      fprintf(stderr, "npt-ref: short fixture\n");
      exit(2);
    }
  }
  free(mfns);
  fclose(f);
}

/* gfn -> mfn through the EPT table, no caches (nestedPwcEntries 0, nestedTlbEntries 0). */
static inline int64_t nested(u64 gfn, u32 need) {
  int level = 4;
  u64 table = ept_root;
  if (gfn >= (1ull << 40)) return N_VIOLATION;
  u32 perm = EPT_RWX;
  int64_t mfn = -1;
  for (; level >= 1; level--) {
    u32 idx = (u32)(gfn >> (9 * (level - 1))) & 511;
    const u32 *w = ram + (table << 10) + idx * 2;
    u32 lo = w[0], hi = w[1];
    nc.nested_refs++;
    u32 rwx = lo & EPT_RWX;
    if (rwx == 0) return N_VIOLATION;
    if ((rwx & EPT_W) && !(rwx & EPT_R)) return N_MISCONFIG;
    perm &= rwx;
    u64 next = pte_mfn(lo, hi);
    int large = level > 1 && (lo & EPT_PAGE_SIZE);
    if (large || level == 1) {
      u32 mt = (lo & EPT_MT_MASK) >> 3;
      if (mt == 2 || mt == 3 || mt == 7 || level > 3) return N_MISCONFIG;
      u64 span = 1ull << (9 * (level - 1));
      mfn = (int64_t)(large ? (next & ~(span - 1)) + (gfn & (span - 1)) : next);
      break;
    }
    if (next >= nr_frames) return N_MISCONFIG;
    table = next;
  }
  if (mfn < 0 || (u64)mfn >= nr_frames) return N_MISCONFIG;
  if ((perm & need) != need) return N_VIOLATION;
  return mfn;
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

/* One cold 2D walk (walk2d without TLB or caches); the machine address or -1. */
static int64_t walk2d(u64 va, int access) {
  nc.walks++;
  int acc = access & (ACCESS_WRITE | ACCESS_USER | ACCESS_FETCH);
  walk_result *out = &nout;
  int level = 4;
  u64 table = npt_cr3;
  out->va = va;
  out->va_lo = (u32)va;
  out->access = acc;
  out->ok = 0;
  out->fault = 0;
  out->error_code = 0;
  out->fault_level = 0;
  out->start_level = level;
  out->pwc_level = 0;
  out->perms = RW_US;
  out->reads = 0;
  out->writes = 0;
  out->leaf_level = 0;
  out->total_walks++;
  for (;;) {
    int64_t tmfn = nested(table, EPT_R);
    if (tmfn < 0) {
      nc.guest_refs += out->reads;
      nc.guest_faults++;
      return -1;
    }
    u64 next = 0;
    int r = walk_step((u64)tmfn, (u32)(va >> (12 + 9 * (level - 1))) & 511, level, out, &next);
    if (r == 1) {
      table = next;
      level--;
    } else if (r == 2) {
      break;
    } else {
      nc.guest_refs += out->reads;
      nc.guest_faults++;
      return -1;
    }
  }
  nc.guest_refs += out->reads;
  int ok = walk_finish(out);
  nc.guest_ad_writes += out->writes;
  if (!ok) {
    nc.guest_faults++;
    return -1;
  }
  u32 need = EPT_R | ((access & ACCESS_WRITE) ? EPT_W : 0) | ((access & ACCESS_FETCH) ? EPT_X : 0);
  int64_t mfn = nested(out->maddr >> 12, need);
  if (mfn < 0) {
    nc.guest_faults++;
    return -1;
  }
  return mfn * 4096 + (int64_t)(va & 4095);
}

static const u64 VA_LIMIT = 1ull << 48;

/* translate without a TLB (tlb: false) */
static inline int64_t translate_cold(u64 va, int access) {
  nc.tlb_misses++;
  if (va >= VA_LIMIT) {
    nc.guest_faults++;
    return -1;
  }
  return walk2d(va, access);
}

/* paging's tlbGrants */
static inline int tlb_grants_npt(int perms, int access) {
  if (access & ACCESS_WRITE) {
    if (!(perms & PERM_DIRTY)) return 0;
    if (!(perms & PERM_RW) && ((access & ACCESS_USER) || mode_wp)) return 0;
  }
  if ((access & ACCESS_USER) && !(perms & PERM_USER)) return 0;
  return !(access & ACCESS_FETCH) || !(perms & PERM_NX);
}

/* translate's hit path with the combined TLB (tag 0); a miss is not expected here. */
static inline int64_t translate_hit(tlb_t *t, u64 va, int access, int64_t cr3) {
  if (cr3 != last_cr3) last_cr3 = cr3;
  if (tlb_lookup(t, va, 0) && tlb_grants_npt(t->hit_perms, access)) {
    nc.tlb_hits++;
    return (int64_t)(t->hit_mfn * 4096 + (va & 4095));
  }
  nc.tlb_misses++;
  return -1;
}

static void print_check(const char *name, u32 h) {
  printf("%s\t%08x\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\n", name, h,
         (unsigned long long)nc.tlb_hits, (unsigned long long)nc.tlb_misses,
         (unsigned long long)nc.walks, (unsigned long long)nc.guest_refs,
         (unsigned long long)nc.nested_refs, (unsigned long long)nc.guest_ad_writes);
}

/* The loops' VAs, as bench/fixture.ts's coldVa and hitVa. */
#define COLD_VA(i) (base_va + ((i) % n_pages) * 4096)
#define HIT_VA(i) (base_va + ((i) & (n_hot - 1)) * 4096 + 8)

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s FIXTURE bench|check N\n", argv[0]);
    return 2;
  }
  npt_load(argv[1]);
  int check = strcmp(argv[2], "check") == 0;
  const u64 N = strtoull(argv[3], 0, 10);
  memset(&nout, 0, sizeof nout);
  static tlb_t tlb;
  tlb_init(&tlb);
  for (u32 p = 0; p < n_hot; p++) {
    u64 va = base_va + (u64)p * 4096;
    if (walk2d(va, 0) < 0) {
      fprintf(stderr, "npt-ref: hot page %u does not translate\n", p);
      return 3;
    }
    for (int l = 0; l < 2; l++) tlb_insert_at(&tlb, l, 0, va >> 12, 0, 0, nout.page_mfn, nout.perms);
  }
  memset(&nc, 0, sizeof nc);
  if (check) {
    u32 h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)translate_cold(COLD_VA(i), 0));
    print_check("npt-cold", h);
    memset(&nc, 0, sizeof nc);
    h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)translate_hit(&tlb, HIT_VA(i), 0, (int64_t)npt_cr3));
    print_check("npt-hit", h);
    return 0;
  }
  MEASURE("npt-cold", N, {
    u64 s = 0;
    for (u64 i = 0; i < N; i++) s += (u64)translate_cold(COLD_VA(i), 0);
    sink += s;
  });
  MEASURE("npt-hit", N * 5, {
    u64 s = 0;
    for (u64 i = 0; i < N * 5; i++) s += (u64)translate_hit(&tlb, HIT_VA(i), 0, (int64_t)npt_cr3);
    sink += s;
  });
  return 0;
}
