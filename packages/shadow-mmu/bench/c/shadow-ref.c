/*
 * C reference of @hyperlab/shadow-mmu's translate (src/shadow.ts) once the shadows are built,
 * for the side-by-side rates of `pnpm bench` and the checksum test
 * (test/c-reference.test.ts). In that steady state a translation is what the hardware does
 * with the shadow tables: a TLB hit (CR3 check, lookup, rights), or a 4-level walk of the
 * shadow tables from the vCPU's shadow root. Both come from paging's C reference, included
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

static int64_t last_cr3 = -2;

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

/* translate with the shadows built; t NULL is { tlb: false }. -1 where TypeScript would
 * take a shadow page fault (not expected in these loops). */
static inline int64_t shadow_translate(tlb_t *t, u64 va, int access, int64_t cr3) {
  if (cr3 != last_cr3) last_cr3 = cr3;
  if (t && tlb_lookup(t, va, 0) && tlb_grants(t->hit_perms, access)) {
    sc.tlb_hits++;
    return (int64_t)(t->hit_mfn * 4096 + (va & 4095));
  }
  sc.tlb_misses++;
  if (va >= (1ull << 48)) {
    sc.faults++;
    return -1;
  }
  sc.walks++;
  int ok = walk(shadow_root, va, access & (ACCESS_WRITE | ACCESS_USER | ACCESS_FETCH), &sout,
                t ? &t->pwc : NULL, 0);
  sc.shadow_refs += (u64)sout.reads;
  if (ok) {
    if (t) tlb_insert_walk(t, &sout, 0);
    return (int64_t)sout.maddr;
  }
  sc.faults++;
  return -1;
}

static void print_check(const char *name, u32 h) {
  printf("%s\t%08x\t%llu\t%llu\t%llu\t%llu\n", name, h, (unsigned long long)sc.tlb_hits,
         (unsigned long long)sc.tlb_misses, (unsigned long long)sc.walks,
         (unsigned long long)sc.shadow_refs);
}

/* The loops' VAs, as bench/fixture.ts's walkVa and hitVa. */
#define WALK_VA(i) (base_va + ((i) % n_pages) * 4096)
#define HIT_VA(i) (base_va + ((i) & (n_hot - 1)) * 4096 + 8)

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s FIXTURE bench|turns|check N\n", argv[0]);
    return 2;
  }
  load(argv[1]);
  if (n_dense == 0 || hot == 0 || (hot & (hot - 1)) != 0 || hot > n_dense) {
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
  const int64_t cr3 = 1;
  memset(&sout, 0, sizeof sout);
  static tlb_t tlb;
  tlb_init(&tlb);
  for (u32 p = 0; p < n_hot; p++) {
    if (shadow_translate(&tlb, base_va + (u64)p * 4096, 0, cr3) < 0) {
      fprintf(stderr, "shadow-ref: hot page %u does not translate\n", p);
      return 3;
    }
  }
  memset(&sc, 0, sizeof sc);
  if (check) {
    u32 h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)shadow_translate(NULL, WALK_VA(i), 0, cr3));
    print_check("shadow-walk", h);
    memset(&sc, 0, sizeof sc);
    h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) h = mix(h, (u64)shadow_translate(&tlb, HIT_VA(i), 0, cr3));
    print_check("shadow-hit", h);
    return 0;
  }
  MEASURE("shadow-walk", N, {
    u64 s = 0;
    for (u64 i = 0; i < N; i++) s += (u64)shadow_translate(NULL, WALK_VA(i), 0, cr3);
    sink += s;
  });
  MEASURE("shadow-hit", N * 5, {
    u64 s = 0;
    for (u64 i = 0; i < N * 5; i++) s += (u64)shadow_translate(&tlb, HIT_VA(i), 0, cr3);
    sink += s;
  });
  return 0;
}
