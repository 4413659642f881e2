/*
 * C reference of @hyperlab/native-mmu's translate (src/native-mmu.ts), for the side-by-side
 * rates of `pnpm bench` and the checksum test (test/c-reference.test.ts). It includes
 * paging's C reference (the walk, page-walk caches, two-level TLB, fixture loader and timing)
 * and adds what NativeMmu adds on top: the fast path (the most recent translation's page,
 * vCPU and rights, counted as a first-level TLB hit without a search), then a TLB lookup with
 * the rights check, then on a miss a walk through the TLB's page-walk caches (tag 0) and a
 * fill of both TLB levels, with NativeMmu's counters. One vCPU (uid 0), CR3 = the fixture's
 * root, every access a user read, as the TypeScript bench.
 *
 * Usage: native-ref FIXTURE bench N      rates, one "name<TAB>wall M/s<TAB>cpu M/s" line each
 *        native-ref FIXTURE turns N      one timed run per loop name read on stdin (paging-ref.c)
 *        native-ref FIXTURE check N      checksums and counters, one "name<TAB>..." line each
 */
#define PAGING_REF_LIBRARY
#include "../../../paging/bench/c/paging-ref.c"

/* fast_base when the fast path describes no page: far below 0, so that va - NO_FAST is never
 * below 4096 (with -1, VAs 0..4094 would hit a forgotten page). */
#define NO_FAST (-(1LL << 62))

/* NativeMmuCounts, in its field order. */
typedef struct {
  u64 translations, tlb_hits, tlb_misses, walks, walk_reads, walk_writes, faults;
} native_counts;

/* vCPU uids with a TLB slot (the loops' vCPU is uid 0). */
#define NR_UIDS 16

typedef struct {
  native_counts c;
  tlb_t tlb;                /* uid 0's TLB */
  tlb_t *by_cpu[NR_UIDS];   /* each vCPU's TLB by uid, as src/native-mmu.ts's tlbs.byCpu */
  walk_result out;
  int64_t cr3;
  int fast_uid;
  int64_t fast_base; /* NO_FAST: none */
  u64 fast_ma;
  int fast_perms;
  u64 *fast_counters;
  u32 fault_va_lo, fault_error_code;
} native_mmu;

static void native_init(native_mmu *m, int64_t cr3) {
  memset(m, 0, sizeof *m);
  tlb_init(&m->tlb);
  /* uid 0's TLB from the start: the TypeScript world has made it before any loop runs. */
  m->by_cpu[0] = &m->tlb;
  m->cr3 = cr3;
  m->fast_uid = -1;
  m->fast_base = NO_FAST;
  m->fast_counters = m->tlb.counters;
}

/* paging's tlbGrants: what a cached entry's rights allow without a walk. */
static inline int tlb_grants(int perms, int access) {
  if (access & ACCESS_WRITE) {
    if (!(perms & PERM_DIRTY)) return 0;
    if (!(perms & PERM_RW) && ((access & ACCESS_USER) || mode_wp)) return 0;
  }
  if ((access & ACCESS_USER) && !(perms & PERM_USER)) return 0;
  return !(access & ACCESS_FETCH) || !(perms & PERM_NX);
}

static inline void native_remember(native_mmu *m, tlb_t *t, int uid, u64 va, u64 mfn,
                                   int perms) {
  m->fast_uid = uid;
  m->fast_base = (int64_t)(va & ~4095ull);
  m->fast_ma = mfn * 4096;
  m->fast_perms = perms;
  m->fast_counters = t->counters;
}

static int64_t native_walk_and_fill(native_mmu *m, tlb_t *t, int uid, u64 va, int access) {
  walk_result *out = &m->out;
  m->fast_base = NO_FAST;
  if (m->cr3 < 0) {
    m->fault_va_lo = (u32)va;
    m->fault_error_code = access & 0x16;
    m->c.faults++;
    return -1;
  }
  m->c.walks++;
  u64 r0 = out->total_reads, w0 = out->total_writes;
  int ok = walk((u64)m->cr3, va, access, out, &t->pwc, 0);
  m->c.walk_reads += out->total_reads - r0;
  m->c.walk_writes += out->total_writes - w0;
  if (!ok) {
    m->fault_va_lo = (u32)va;
    m->fault_error_code = out->error_code;
    m->c.faults++;
    return -1;
  }
  tlb_insert_walk(t, out, 0);
  native_remember(m, t, uid, va, out->maddr >> 12, out->perms);
  return (int64_t)out->maddr;
}

static inline int64_t native_translate(native_mmu *m, int uid, u64 va, int access) {
  m->c.translations++;
  int64_t off = (int64_t)va - m->fast_base;
  if (off >= 0 && off < 4096 && uid == m->fast_uid && tlb_grants(m->fast_perms, access)) {
    u64 *tc = m->fast_counters;
    tc[0]++;
    tc[1]++;
    m->c.tlb_hits++;
    return (int64_t)m->fast_ma + off;
  }
  /* The vCPU's TLB by uid; NULL would be translateSlow's first translation, which makes it
   * (not in these loops, whose vCPU's TLB exists before they run). */
  tlb_t *t = m->by_cpu[uid];
  if (t != NULL && tlb_lookup(t, va, 0)) {
    int p = t->hit_perms;
    native_remember(m, t, uid, va, t->hit_mfn, p);
    if (tlb_grants(p, access)) {
      m->c.tlb_hits++;
      return (int64_t)(t->hit_mfn * 4096 + (va & 4095));
    }
  }
  m->c.tlb_misses++;
  return native_walk_and_fill(m, t, uid, va, access);
}

static void print_check(const char *name, u32 h, native_mmu *m) {
  native_counts *c = &m->c;
  printf("%s\t%08x\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\n", name, h,
         (unsigned long long)c->translations, (unsigned long long)c->tlb_hits,
         (unsigned long long)c->tlb_misses, (unsigned long long)c->walks,
         (unsigned long long)c->walk_reads, (unsigned long long)c->walk_writes,
         (unsigned long long)m->tlb.counters[0], (unsigned long long)m->tlb.counters[1]);
}

/* The loops of bench/index.ts; VA choices there and here must stay the same. */
#define FAST_VA(i) (vas[((i) >> 10) & H] + ((i) & 511) * 8)
#define RR_VA(i) (vas[(i) & 15] + 8)
#define MISS_VA(i) (order[(i) & R])

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s FIXTURE bench|turns|check N\n", argv[0]);
    return 2;
  }
  load(argv[1]);
  int check = strcmp(argv[2], "check") == 0;
  measure_mode(argv[2]);
  const u64 N = strtoull(argv[3], 0, 10);
  const u32 R = n_order - 1, H = hot - 1;
  static native_mmu m;
  native_init(&m, (int64_t)root);
  if (check) {
    u32 h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)native_translate(&m, 0, FAST_VA(i), ACCESS_USER));
    print_check("native-fast", h, &m);
    h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)native_translate(&m, 0, RR_VA(i), ACCESS_USER));
    print_check("native-rr", h, &m);
    h = 0x811c9dc5u;
    for (u64 i = 0; i < N / 2; i++)
      h = mix(h, (u64)native_translate(&m, 0, MISS_VA(i), ACCESS_USER));
    print_check("native-miss", h, &m);
    return 0;
  }
  MEASURE("native-fast", N * 5, {
    u64 s = 0;
    for (u64 i = 0; i < N * 5; i++) s += (u64)native_translate(&m, 0, FAST_VA(i), ACCESS_USER);
    sink += s;
  });
  MEASURE("native-rr", N, {
    u64 s = 0;
    for (u64 i = 0; i < N; i++) s += (u64)native_translate(&m, 0, RR_VA(i), ACCESS_USER);
    sink += s;
  });
  MEASURE("native-miss", N / 2, {
    u64 s = 0;
    for (u64 i = 0; i < N / 2; i++) s += (u64)native_translate(&m, 0, MISS_VA(i), ACCESS_USER);
    sink += s;
  });
  return 0;
}
