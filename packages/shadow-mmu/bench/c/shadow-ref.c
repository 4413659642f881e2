/*
 * C reference of @hyperlab/shadow-mmu's translate (src/shadow.ts) once the shadows are built,
 * for the side-by-side rates of `pnpm bench` and the checksum test
 * (test/c-reference.test.ts). In that steady state a translation is what the hardware does
 * with the shadow tables: a TLB hit (the vCPU's CR3 against the one it last loaded, its TLB
 * by uid, lookup, rights), or a 4-level walk of the shadow tables from the vCPU's shadow
 * root. Per vCPU as translate is (until stop 23 the C kept one CR3 and one TLB, and so did
 * less on a hit than the TypeScript). Both come from paging's C reference, included
 * here, with its fixture loader (the TypeScript world's RAM, written as paging's fixture);
 * this file adds ShadowMmu's counters and the loops of bench/index.ts:
 * - shadow-walk: options { tlb: false }, 256 pages round robin, each a walk (4 references);
 * - shadow-hit: default options, 32 pages round robin, each a TLB hit (C fills its TLB by
 *   walks of the hot pages first).
 *
 * Usage: shadow-ref FIXTURE bench N      rates, one "name<TAB>wall M/s<TAB>cpu M/s" line each
 *        shadow-ref FIXTURE turns N      one timed run per loop name read on stdin (paging-ref.c)
 *        shadow-ref FIXTURE check N      checksums and counters, one "name<TAB>..." line each
 */
#define PAGING_REF_LIBRARY
#include "../../../paging/bench/c/paging-ref.c"

static struct {
  u64 tlb_hits, tlb_misses, walks, shadow_refs, faults;
} sc;

/* The fixture is paging's (bench/fixture.ts writes it with paging's writeFixture; paging-ref.c's
 * load reads it): root is the vCPU's shadow root, the dense VAs are the walk loop's pages
 * (BASE + p * 4096), hot is the pages of the TLB-hit loop. Copied here after load. */
static u64 shadow_root, base_va;
static u32 n_pages, n_hot;

/* paging's tlbGrants */
static inline int tlb_grants(int perms, int access) {
  if (access & ACCESS_WRITE) {
    if (!(perms & PERM_DIRTY)) return 0;
    if (!(perms & PERM_RW) && ((access & ACCESS_USER) || mode_wp)) return 0;
  }
  if ((access & ACCESS_USER) && !(perms & PERM_USER)) return 0;
  return !(access & ACCESS_FETCH) || !(perms & PERM_NX);
}

static walk_result sout;

/* A vCPU as translate sees it: its uid and its guest CR3. */
typedef struct {
  u32 uid;
  int64_t cr3;
} vcpu_t;

/* One ShadowMmu's per-vCPU state, as src/shadow.ts keeps it: the guest CR3 each vCPU last
 * loaded (guestCr3, -2 for none), its shadow root (root) and its TLB (tlbs.byCpu; NULL until
 * made), indexed by uid below `cap`; has_tlbs is 0 for { tlb: false }. */
#define NR_UIDS 16
typedef struct {
  u32 cap;
  int has_tlbs;
  int64_t guest_cr3[NR_UIDS];
  int64_t root[NR_UIDS];
  tlb_t *by_cpu[NR_UIDS];
  tlb_t tlb0; /* uid 0's TLB, the only vCPU of the loops */
} smmu_t;

/* ShadowMmu's fault record, reset by every walk. */
static struct {
  int exit_reason, emulate;
} fault;

static void smmu_init(smmu_t *m, int has_tlbs, int64_t shadow_root0) {
  memset(m, 0, sizeof *m);
  m->cap = NR_UIDS;
  m->has_tlbs = has_tlbs;
  for (u32 i = 0; i < NR_UIDS; i++) {
    m->guest_cr3[i] = -2;
    m->root[i] = -1;
  }
  m->root[0] = shadow_root0;
}

/* walkShadow once the shadows are built: the hardware walk of the vCPU's shadow root, and
 * the TLB fill. -1 where TypeScript would take a shadow page fault (not expected in these
 * loops). */
static int64_t shadow_walk(smmu_t *m, const vcpu_t *v, tlb_t *t, u64 va, int access) {
  sc.tlb_misses++;
  fault.exit_reason = -1;
  fault.emulate = 0;
  int64_t root = m->root[v->uid];
  if (va >= (1ull << 48) || root < 0) {
    sc.faults++;
    return -1;
  }
  sc.walks++;
  int ok = walk((u64)root, va, access & (ACCESS_WRITE | ACCESS_USER | ACCESS_FETCH), &sout,
                t ? &t->pwc : NULL, 0);
  sc.shadow_refs += (u64)sout.reads;
  if (ok) {
    if (t) tlb_insert_walk(t, &sout, 0);
    return (int64_t)sout.maddr;
  }
  sc.faults++;
  return -1;
}

/* translateSlow: a vCPU whose CR3 is new (a CR3 write) or whose TLB is not made yet. */
static int64_t shadow_translate_slow(smmu_t *m, const vcpu_t *v, u64 va, int access) {
  u32 uid = v->uid; /* below cap: the loops' vCPU is uid 0 */
  if (v->cr3 != m->guest_cr3[uid]) m->guest_cr3[uid] = v->cr3;
  tlb_t *t = m->by_cpu[uid];
  if (t == NULL && m->has_tlbs) {
    tlb_init(&m->tlb0);
    t = m->by_cpu[uid] = &m->tlb0;
  }
  if (t && tlb_lookup(t, va, 0) && tlb_grants(t->hit_perms, access)) {
    sc.tlb_hits++;
    return (int64_t)(t->hit_mfn * 4096 + (va & 4095));
  }
  return shadow_walk(m, v, t, va, access);
}

/* translateTlb (src/shadow.ts): the vCPU's CR3 against the one it last loaded, its TLB by
 * uid, the lookup and the rights; else a walk of the shadow tables (or translateSlow first). */
static inline int64_t shadow_translate_tlb(smmu_t *m, const vcpu_t *v, u64 va, int access) {
  u32 uid = v->uid;
  if (uid < m->cap && v->cr3 == m->guest_cr3[uid]) {
    tlb_t *t = m->by_cpu[uid];
    if (t != NULL) {
      if (tlb_lookup(t, va, 0) && tlb_grants(t->hit_perms, access)) {
        sc.tlb_hits++;
        return (int64_t)(t->hit_mfn * 4096 + (va & 4095));
      }
      return shadow_walk(m, v, t, va, access);
    }
  }
  return shadow_translate_slow(m, v, va, access);
}

/* translateNoTlb ({ tlb: false }): the vCPU's CR3 against the one it last loaded, then the
 * walk (translateSlow first for a new vCPU or CR3). */
static inline int64_t shadow_translate_no_tlb(smmu_t *m, const vcpu_t *v, u64 va, int access) {
  u32 uid = v->uid;
  if (uid < m->cap && v->cr3 == m->guest_cr3[uid]) return shadow_walk(m, v, NULL, va, access);
  return shadow_translate_slow(m, v, va, access);
}

/* translate: ShadowMmu's constructor picks translateTlb or translateNoTlb once, into a field
 * the caller loads at each call; has_tlbs is that choice here. */
static inline int64_t shadow_translate(smmu_t *m, const vcpu_t *v, u64 va, int access) {
  return m->has_tlbs ? shadow_translate_tlb(m, v, va, access)
                     : shadow_translate_no_tlb(m, v, va, access);
}

static void print_check(const char *name, u32 h) {
  printf("%s\t%08x\t%llu\t%llu\t%llu\t%llu\n", name, h, (unsigned long long)sc.tlb_hits,
         (unsigned long long)sc.tlb_misses, (unsigned long long)sc.walks,
         (unsigned long long)sc.shadow_refs);
}

/* The loops' VAs, as bench/fixture.ts's walkVa and hitVa. The page count is a power of two
 * (checked in main), so i % n_pages is a mask, as it is in the TypeScript loop, where V8
 * folds the row's constant PAGES and turns the modulo into an and. */
#define WALK_VA(i) (base_va + ((i) & (n_pages - 1)) * 4096)
#define HIT_VA(i) (base_va + ((i) & (n_hot - 1)) * 4096 + 8)

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s FIXTURE bench|turns|check N\n", argv[0]);
    return 2;
  }
  load(argv[1]);
  if (n_dense == 0 || (n_dense & (n_dense - 1)) != 0 || hot == 0 || (hot & (hot - 1)) != 0 ||
      hot > n_dense) {
    fprintf(stderr, "shadow-ref: %s holds no shadow world (pages %u, hot %u)\n", argv[1], n_dense,
            hot);
    return 2;
  }
  shadow_root = root;
  base_va = vas[0];
  n_pages = n_dense;
  n_hot = hot;
  int check = strcmp(argv[2], "check") == 0;
  measure_mode(argv[2]);
  const u64 N = strtoull(argv[3], 0, 10);
  const vcpu_t vc = {0, 1};
  memset(&sout, 0, sizeof sout);
  /* Two ShadowMmus, as bench/fixture.ts's two worlds: { tlb: false } for the walk loop, the
   * default for the hit loop. */
  static smmu_t no_tlb, with_tlb;
  smmu_init(&no_tlb, 0, (int64_t)shadow_root);
  smmu_init(&with_tlb, 1, (int64_t)shadow_root);
  for (u32 p = 0; p < n_hot; p++) {
    if (shadow_translate(&with_tlb, &vc, base_va + (u64)p * 4096, 0) < 0) {
      fprintf(stderr, "shadow-ref: hot page %u does not translate\n", p);
      return 3;
    }
  }
  memset(&sc, 0, sizeof sc);
  if (check) {
    u32 h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)shadow_translate(&no_tlb, &vc, WALK_VA(i), 0));
    print_check("shadow-walk", h);
    memset(&sc, 0, sizeof sc);
    h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)shadow_translate(&with_tlb, &vc, HIT_VA(i), 0));
    print_check("shadow-hit", h);
    return 0;
  }
  MEASURE("shadow-walk", N, {
    u64 s = 0;
    for (u64 i = 0; i < N; i++) s += (u64)shadow_translate(&no_tlb, &vc, WALK_VA(i), 0);
    sink += s;
  });
  MEASURE("shadow-hit", N * 5, {
    u64 s = 0;
    for (u64 i = 0; i < N * 5; i++) s += (u64)shadow_translate(&with_tlb, &vc, HIT_VA(i), 0);
    sink += s;
  });
  return 0;
}
