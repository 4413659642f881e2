/*
 * C reference of @hyperlab/paging's hot paths, for the side-by-side rates of `pnpm bench`
 * and the checksum test (test/c-reference.test.ts). The same algorithms and data layouts as
 * src/walker.ts, src/assoc.ts, src/pwc.ts and src/tlb.ts: a 4-level walk over a flat RAM
 * array of 8-byte entries (reserved-bit checks from the mode's masks, rights accumulated
 * per level, A/D written only on success), set-associative LRU arrays keyed by VA prefix
 * and tag, the default page-walk caches (PDE 8x4, PDPTE 1x4, PML4E 1x2, PML5E 1x2) and the
 * default two-level TLB (dTLB 16x4 / 8x4 / 1x4, STLB 128x12 / 128x8 / 4x4) with refill of
 * the levels that missed. Its input (page tables, VAs, access orders, mode) is written by
 * bench/fixture.ts from the same seeded PRNG as the TypeScript bench, so both run the same
 * walks in the same order.
 *
 * Usage: paging-ref FIXTURE bench N      rates, one "name<TAB>wall M/s<TAB>cpu M/s" line each
 *        paging-ref FIXTURE turns N      one timed run per loop name read on stdin (MEASURE)
 *        paging-ref FIXTURE check N      checksums and counters, one "name<TAB>..." line each
 *
 * Other packages' C references (native-mmu, ...) include this file with PAGING_REF_LIBRARY
 * defined: they get the walk, caches, TLB, fixture loader and timing without this main.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef uint64_t u64;
typedef uint32_t u32;

/* ---- machine memory: a flat array of 32-bit words, 1024 per 4 KiB frame. */
static u32 *ram;
static u64 nr_frames;

/* ---- paging mode */
static u32 rsvd_lo[12], rsvd_hi[12];
static int mode_nxe, mode_wp;

#define PAGE_PRESENT 0x1u
#define PAGE_ACCESSED 0x20u
#define PAGE_DIRTY 0x40u
#define PAGE_PSE 0x80u
#define PAGE_GLOBAL 0x100u
#define PAGE_NX_HI 0x80000000u
#define ACCESS_WRITE 0x2
#define ACCESS_USER 0x4
#define ACCESS_FETCH 0x10
#define PERM_RW 0x02
#define PERM_USER 0x04
#define PERM_NX 0x08
#define PERM_DIRTY 0x40
#define PERM_GLOBAL 0x100
#define RW_US (PERM_RW | PERM_USER)

/* ---- set-associative LRU array (src/assoc.ts) */
typedef struct {
  u32 sets, ways, mask;
  u64 *key;
  u32 *klo; /* per way the key's low 32 bits (src/assoc.ts's keyLo): scans compare these */
  u32 *tag;
  uint8_t *flags;
  u64 *value;
  uint16_t *perms;
  u64 *stamp;
  u64 clock;
  int evicted;
  u32 used; /* valid entries (src/assoc.ts's `used`): tlb_lookup skips an empty array */
} assoc;

static void assoc_init(assoc *a, u32 sets, u32 ways) {
  u32 n = sets * ways;
  a->sets = sets;
  a->ways = ways;
  a->mask = sets - 1;
  a->key = calloc(n, sizeof(u64));
  a->klo = calloc(n, sizeof(u32));
  a->tag = calloc(n, sizeof(u32));
  a->flags = calloc(n, 1);
  a->value = calloc(n, sizeof(u64));
  a->perms = calloc(n, sizeof(uint16_t));
  a->stamp = calloc(n, sizeof(u64));
  a->clock = 0;
  a->evicted = 0;
  a->used = 0;
}

static inline int assoc_find(assoc *a, u64 key, u32 tag) {
  u32 base = ((u32)key & a->mask) * a->ways, end = base + a->ways;
  for (u32 i = base; i < end; i++) {
    if (a->key[i] != key) continue;
    uint8_t f = a->flags[i];
    if (f != 0 && (a->tag[i] == tag || (f & 2) != 0)) {
      a->stamp[i] = ++a->clock;
      return (int)i;
    }
  }
  return -1;
}

/* assoc_find for a wide set (src/assoc.ts's findWide, tlb_lookup's arrays after the first):
 * first four ways a step, comparing the low key bits, up to the first group of four with a
 * match of them, then way by way as assoc_find. */
static inline int assoc_find_wide(assoc *a, u64 key, u32 tag) {
  u32 lo = (u32)key, base = (lo & a->mask) * a->ways, end = base + a->ways, i = base;
  for (; i + 3 < end; i += 4)
    if (a->klo[i] == lo || a->klo[i + 1] == lo || a->klo[i + 2] == lo || a->klo[i + 3] == lo)
      break;
  for (; i < end; i++) {
    if (a->klo[i] != lo || a->key[i] != key) continue;
    uint8_t f = a->flags[i];
    if (f != 0 && (a->tag[i] == tag || (f & 2) != 0)) {
      a->stamp[i] = ++a->clock;
      return (int)i;
    }
  }
  return -1;
}

static inline u32 assoc_insert(assoc *a, u64 key, u32 tag, int global, u64 value, u32 perms) {
  u32 lo = (u32)key, base = (lo & a->mask) * a->ways, end = base + a->ways;
  int idx = -1, free_ = -1, victim = -1;
  if (a->used == a->sets * a->ways) {
    /* Every way valid: no free way to look for, and the scan for a match keeps the LRU way
     * (the first with the smallest stamp) as it goes (src/assoc.ts's place does the same). */
    u32 best = base, i = base;
    /* Four ways a step while none has the low key bits (src/assoc.ts's place and findWide). */
    for (; i + 3 < end; i += 4) {
      if (a->klo[i] == lo || a->klo[i + 1] == lo || a->klo[i + 2] == lo || a->klo[i + 3] == lo)
        break;
      for (u32 j = i; j < i + 4; j++)
        if (a->stamp[j] < a->stamp[best]) best = j;
    }
    for (; i < end; i++) {
      if (a->klo[i] == lo && a->key[i] == key &&
          (a->tag[i] == tag || (global && (a->flags[i] & 2) != 0))) {
        idx = (int)i;
        break;
      }
      if (a->stamp[i] < a->stamp[best]) best = i;
    }
    victim = (int)best;
  } else
    for (u32 i = base; i < end; i++) {
      uint8_t f = a->flags[i];
      if (f == 0) {
        if (free_ < 0) free_ = (int)i;
      } else if (a->klo[i] == lo && a->key[i] == key &&
                 (a->tag[i] == tag || (global && (f & 2) != 0))) {
        idx = (int)i;
        break;
      }
    }
  a->evicted = 0;
  if (idx < 0) {
    if (free_ >= 0) {
      idx = free_;
      a->used++;
    } else {
      if (victim < 0) { /* a full set in an array with free ways elsewhere */
        u32 best = base;
        for (u32 i = base + 1; i < end; i++)
          if (a->stamp[i] < a->stamp[best]) best = i;
        victim = (int)best;
      }
      idx = victim;
      a->evicted = 1;
    }
  }
  a->key[idx] = key;
  a->klo[idx] = (u32)key;
  a->tag[idx] = tag;
  a->flags[idx] = global ? 3 : 1;
  a->value[idx] = value;
  a->perms[idx] = (uint16_t)perms;
  a->stamp[idx] = ++a->clock;
  return (u32)idx;
}

/* assoc_insert when the caller knows no valid entry matches (key, tag): the first free way,
 * else the LRU victim (src/assoc.ts's insertAbsent). */
static inline u32 assoc_insert_absent(assoc *a, u64 key, u32 tag, int global, u64 value,
                                      u32 perms) {
  u32 base = ((u32)key & a->mask) * a->ways, end = base + a->ways;
  int idx = -1;
  if (a->used != a->sets * a->ways)
    for (u32 i = base; i < end; i++)
      if (a->flags[i] == 0) {
        idx = (int)i;
        break;
      }
  if (idx >= 0) {
    a->used++;
    a->evicted = 0;
  } else {
    u32 best = base;
    for (u32 i = base + 1; i < end; i++)
      if (a->stamp[i] < a->stamp[best]) best = i;
    idx = (int)best;
    a->evicted = 1;
  }
  a->key[idx] = key;
  a->klo[idx] = (u32)key;
  a->tag[idx] = tag;
  a->flags[idx] = global ? 3 : 1;
  a->value[idx] = value;
  a->perms[idx] = (uint16_t)perms;
  a->stamp[idx] = ++a->clock;
  return (u32)idx;
}

/* ---- page-walk caches (src/pwc.ts) */
enum { PWC_LOOKUPS, PWC_MISSES, PWC_NR = 4 + 4 * 3 };
typedef struct {
  assoc *caches[6];
  assoc a[6];
  u64 counters[PWC_NR];
  int hit_level;
  u64 hit_mfn;
  u32 hit_perms;
} pwc_t;

static void pwc_init(pwc_t *p) {
  memset(p, 0, sizeof *p);
  assoc_init(&p->a[2], 8, 4);
  assoc_init(&p->a[3], 1, 4);
  assoc_init(&p->a[4], 1, 2);
  assoc_init(&p->a[5], 1, 2);
  for (int l = 2; l <= 5; l++) p->caches[l] = &p->a[l];
}

static const int level_shift[6] = {0, 12, 21, 30, 39, 48};

static inline int pwc_probe(pwc_t *p, int level, u64 va, u32 tag) {
  assoc *a = p->caches[level];
  int i = assoc_find(a, va >> level_shift[level], tag);
  if (i < 0) return 0;
  p->hit_level = level;
  p->hit_mfn = a->value[i];
  p->hit_perms = a->perms[i];
  p->counters[4 + (level - 2) * 3]++;
  return 1;
}

static inline int pwc_lookup(pwc_t *p, u64 va, u32 tag, int levels) {
  p->counters[PWC_LOOKUPS]++;
  if (pwc_probe(p, 2, va, tag)) return 1;
  if (pwc_probe(p, 3, va, tag)) return 1;
  if (pwc_probe(p, 4, va, tag)) return 1;
  if (levels == 5 && pwc_probe(p, 5, va, tag)) return 1;
  p->counters[PWC_MISSES]++;
  return 0;
}

/* ---- the walk (src/walker.ts) */
typedef struct {
  u64 va;
  u32 va_lo;
  int access, ok, fault, error_code, fault_level;
  u64 maddr, page_mfn;
  int page_shift, leaf_level, perms;
  u32 leaf_lo, leaf_hi;
  int start_level, pwc_level, reads, writes;
  u64 total_walks, total_faults, total_reads, total_writes;
  u64 entry_maddr[6];
  u32 entry_lo[6], entry_hi[6];
  uint16_t level_perms[6];
} walk_result;

static inline u64 pte_mfn(u32 lo, u32 hi) { return ((u64)(hi & 0xfffff) << 20) | (lo >> 12); }

static inline int access_denied(int perms, int access) {
  if (access & ACCESS_USER) {
    if (!(perms & PERM_USER)) return 1;
    if ((access & ACCESS_WRITE) && !(perms & PERM_RW)) return 1;
  } else if ((access & ACCESS_WRITE) && !(perms & PERM_RW) && mode_wp) {
    return 1;
  }
  return (access & ACCESS_FETCH) && (perms & PERM_NX);
}
static inline int fault_code(int access) { return access & (mode_nxe ? 0x16 : 0x06); }

static inline void pwc_fill(pwc_t *p, u64 va, u32 tag, walk_result *out) {
  for (int level = out->start_level; level > out->leaf_level; level--) {
    assoc *a = p->caches[level];
    assoc_insert(a, va >> level_shift[level], tag, 0,
                 pte_mfn(out->entry_lo[level], out->entry_hi[level]), out->level_perms[level]);
    int b = 4 + (level - 2) * 3;
    p->counters[b + 1]++;
    if (a->evicted) p->counters[b + 2]++;
  }
}

/* `accessed`: the AND of every entry the walk read, masked to A (0: some entry lacks A, or
 * not known: walk_finish, as src/walker.ts's walkFinish, always checks every level). */
static int walk_finish_accessed(walk_result *out, u32 accessed) {
  int access = out->access, p = out->perms, leaf = out->leaf_level;
  if (access_denied(p, access)) {
    out->fault = 3;
    out->error_code = fault_code(access) | 1;
    out->fault_level = leaf; /* the bench's walks never fault; see deniedLevel in TS */
    out->total_faults++;
    return 0;
  }
  if (!accessed) {
    for (int level = out->start_level; level > leaf; level--) {
      u32 v = out->entry_lo[level];
      if (!(v & PAGE_ACCESSED)) {
        out->entry_lo[level] = v | PAGE_ACCESSED;
        ram[out->entry_maddr[level] >> 2] = v | PAGE_ACCESSED;
        out->writes++;
        out->total_writes++;
      }
    }
  }
  u32 leaf_lo = out->entry_lo[leaf];
  u32 want = (access & ACCESS_WRITE) ? PAGE_ACCESSED | PAGE_DIRTY : PAGE_ACCESSED;
  if ((leaf_lo & want) != want) {
    leaf_lo |= want;
    out->entry_lo[leaf] = leaf_lo;
    ram[out->entry_maddr[leaf] >> 2] = leaf_lo;
    out->writes++;
    out->total_writes++;
  }
  u32 leaf_hi = out->entry_hi[leaf];
  out->leaf_lo = leaf_lo;
  out->leaf_hi = leaf_hi;
  int perms = p;
  if (leaf_lo & PAGE_DIRTY) perms |= PERM_DIRTY;
  if (leaf_lo & PAGE_GLOBAL) perms |= PERM_GLOBAL;
  out->perms = perms;
  u64 mfn = pte_mfn(leaf_lo, leaf_hi);
  u32 offset;
  if (leaf == 1) {
    out->page_shift = 12;
    offset = out->va_lo & 0xfff;
  } else if (leaf == 2) {
    out->page_shift = 21;
    mfn -= (leaf_lo >> 12) & 0x1ff;
    offset = out->va_lo & 0x1fffff;
  } else {
    out->page_shift = 30;
    mfn -= (leaf_lo >> 12) & 0x3ffff;
    offset = out->va_lo & 0x3fffffff;
  }
  out->page_mfn = mfn;
  out->maddr = mfn * 4096 + offset;
  out->ok = 1;
  return 1;
}

static inline int walk_finish(walk_result *out) { return walk_finish_accessed(out, 0); }

static const u64 VA_LIMIT_4 = 1ull << 48;

static int walk(u64 root, u64 va, int access, walk_result *out, pwc_t *pwc, u32 tag) {
  int level = 4;
  u64 table = root;
  int perms = RW_US, pwc_level = 0;
  if (va >= VA_LIMIT_4) {
    out->va = va;
    out->fault = 4;
    out->ok = 0;
    out->total_walks++;
    out->total_faults++;
    return 0;
  }
  if (pwc && pwc_lookup(pwc, va, tag, 4)) {
    pwc_level = pwc->hit_level;
    level = pwc_level - 1;
    table = pwc->hit_mfn;
    perms = (int)pwc->hit_perms;
  }
  out->va = va;
  out->va_lo = (u32)va;
  out->access = access;
  out->ok = 0;
  out->fault = 0;
  out->error_code = 0;
  out->fault_level = 0;
  out->start_level = level;
  out->pwc_level = pwc_level;
  out->reads = 0;
  out->writes = 0;
  out->leaf_level = 0;
  out->total_walks++;
  int reads = 0;
  u32 nx = mode_nxe ? PAGE_NX_HI : 0;
  u32 accessed = PAGE_ACCESSED;
  for (;;) {
    u32 index = (u32)(va >> (3 + 9 * level)) & 511;
    u32 lo = 0, hi = 0;
    reads++;
    if (table < nr_frames) {
      const u32 *w = ram + (table << 10) + index * 2;
      lo = w[0];
      hi = w[1];
    }
    out->entry_maddr[level] = table * 4096 + index * 8;
    out->entry_lo[level] = lo;
    out->entry_hi[level] = hi;
    if (!(lo & 1)) {
      out->fault = 1;
      out->error_code = fault_code(access);
      break;
    }
    int ps = level > 1 && (lo & PAGE_PSE) ? 1 : 0;
    int r = level * 2 + ps;
    if ((lo & rsvd_lo[r]) || (hi & rsvd_hi[r])) {
      out->fault = 2;
      out->error_code = fault_code(access) | 1 | 8;
      break;
    }
    perms &= (int)(lo | ~(u32)RW_US);
    if (hi & nx) perms |= PERM_NX;
    out->level_perms[level] = (uint16_t)perms;
    accessed &= lo;
    if (level == 1 || ps) break;
    table = pte_mfn(lo, hi);
    level--;
  }
  out->reads = reads;
  out->total_reads += reads;
  if (out->fault) {
    out->fault_level = level;
    out->total_faults++;
    return 0;
  }
  out->perms = perms;
  out->leaf_level = level;
  if (!walk_finish_accessed(out, accessed)) return 0;
  if (pwc) pwc_fill(pwc, va, tag, out);
  return 1;
}

/* ---- the TLB (src/tlb.ts), default geometry */
#define TLB_STRIDE 5
typedef struct {
  int n;
  assoc arrays[6];
  assoc *grid[6];
  int array_level[6], array_size[6];
  u64 counters[4 * TLB_STRIDE];
  pwc_t pwc;
  int hit_level, hit_page_shift, hit_perms;
  u64 hit_page_mfn, hit_mfn;
} tlb_t;

static const int size_shift[3] = {12, 21, 30};

static void tlb_init(tlb_t *t) {
  static const u32 geo[6][2] = {{16, 4}, {8, 4}, {1, 4}, {128, 12}, {128, 8}, {4, 4}};
  memset(t, 0, sizeof *t);
  t->n = 6;
  for (int i = 0; i < 6; i++) {
    assoc_init(&t->arrays[i], geo[i][0], geo[i][1]);
    t->grid[i] = &t->arrays[i];
    t->array_level[i] = i / 3;
    t->array_size[i] = i % 3;
  }
  pwc_init(&t->pwc);
}

static inline void tlb_insert_at(tlb_t *t, int l, int s, u64 key, u32 tag, int global, u64 mfn,
                                 u32 perms) {
  assoc *a = t->grid[l * 3 + s];
  assoc_insert(a, key, tag, global, mfn, perms);
  t->counters[l * TLB_STRIDE + 3]++;
  if (a->evicted) t->counters[l * TLB_STRIDE + 4]++;
}

static inline int tlb_lookup(tlb_t *t, u64 va, u32 tag) {
  u64 *c = t->counters;
  int level = 0;
  c[0]++;
  for (int i = 0; i < t->n; i++) {
    int l = t->array_level[i];
    if (l != level) {
      c[level * TLB_STRIDE + 2]++;
      level = l;
      c[l * TLB_STRIDE + 0]++;
    }
    assoc *a = &t->arrays[i];
    if (i > 0 && a->used == 0) continue;
    int s = t->array_size[i];
    u64 key = va >> size_shift[s];
    int idx = i == 0 ? assoc_find(a, key, tag) : assoc_find_wide(a, key, tag);
    if (idx >= 0) {
      c[l * TLB_STRIDE + 1]++;
      u64 page_mfn = a->value[idx];
      t->hit_level = l;
      t->hit_page_mfn = page_mfn;
      t->hit_perms = a->perms[idx];
      t->hit_page_shift = size_shift[s];
      t->hit_mfn = s == 0 ? page_mfn : page_mfn + ((u32)(va >> 12) & ((1u << (9 * s)) - 1));
      if (l == 1 && t->grid[s] == &t->arrays[0] && (a->flags[idx] & 2) == 0) {
        /* The dTLB array probed first, for this key and tag, missed: no match to look for
         * (src/tlb.ts's lookupRest does the same). */
        assoc *d = &t->arrays[0];
        assoc_insert_absent(d, key, tag, 0, page_mfn, a->perms[idx]);
        c[3]++;
        if (d->evicted) c[4]++;
      } else if (l > 0)
        for (int k = 0; k < l; k++)
          tlb_insert_at(t, k, s, key, a->tag[idx], (a->flags[idx] & 2) != 0, page_mfn,
                        a->perms[idx]);
      return 1;
    }
  }
  c[level * TLB_STRIDE + 2]++;
  t->hit_level = -1;
  return 0;
}

static inline void tlb_insert_walk(tlb_t *t, walk_result *out, u32 tag) {
  int s = out->page_shift == 12 ? 0 : out->page_shift == 21 ? 1 : 2;
  u64 key = out->va >> size_shift[s];
  int global = (out->perms & PERM_GLOBAL) != 0;
  for (int l = 0; l < 2; l++) tlb_insert_at(t, l, s, key, tag, global, out->page_mfn, out->perms);
}

/* ---- fixture (bench/fixture.ts writes it) */
static u64 root;
static u32 n_dense, n_sparse, n_order, hot;
static u64 *vas, *sparse, *order;

static void *read_exact(FILE *f, size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p || fread(p, 1, n, f) != n) {
    fprintf(stderr, "paging-ref: short fixture\n");
    exit(2);
  }
  return p;
}

/* The head every fixture shares (this file's and the other packages' references'): 32 u32
 * header words into h (word 0 the magic, word 1 the RAM frames; the rest each writer's own),
 * then the paging mode's 12 reserved-bit masks lo then hi. Sets nr_frames and the masks and
 * allocates RAM as zero frames; the caller reads its own words from h (NXE and WP among them),
 * then the frames (fixture_frames), then anything after them. Exits with a message naming
 * `who` when the file is missing, short or not a fixture with this magic. */
static FILE *fixture_open(const char *path, u32 magic, const char *who, u32 h[32]) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(2);
  }
  if (fread(h, 4, 32, f) != 32 || h[0] != magic) {
    fprintf(stderr, "%s: %s is not a fixture\n", who, path);
    exit(2);
  }
  nr_frames = h[1];
  u32 *r = read_exact(f, 4 * 24);
  memcpy(rsvd_lo, r, 48);
  memcpy(rsvd_hi, r + 12, 48);
  free(r);
  /* calloc of the whole RAM: pages never written stay unmapped zeros, as Ram's chunks. */
  ram = calloc(nr_frames, 4096);
  if (!ram) {
    fprintf(stderr, "%s: out of memory\n", who);
    exit(2);
  }
  return f;
}

/* `dumped` frames of RAM: with `listed`, their `dumped` frame numbers (u32) and then their
 * contents in that order (a dump of the frames a TypeScript world wrote, wherever they are);
 * otherwise frames 0 .. dumped-1 in order. */
static void fixture_frames(FILE *f, u32 dumped, int listed, const char *who) {
  if (!listed) {
    if (dumped > nr_frames || fread(ram, 4096, dumped, f) != dumped) {
      fprintf(stderr, "%s: short fixture\n", who);
      exit(2);
    }
    return;
  }
  u32 *mfns = read_exact(f, 4 * (size_t)dumped);
  for (u32 i = 0; i < dumped; i++) {
    if (mfns[i] >= nr_frames || fread(ram + ((u64)mfns[i] << 10), 4096, 1, f) != 1) {
      fprintf(stderr, "%s: short fixture\n", who);
      exit(2);
    }
  }
  free(mfns);
}

static void load(const char *path) {
  u32 h[32];
  FILE *f = fixture_open(path, 0x50474652u, "paging-ref", h);
  u32 dumped = h[2];
  root = h[3];
  n_dense = h[4];
  n_sparse = h[5];
  n_order = h[6];
  hot = h[7];
  mode_nxe = (int)h[8];
  mode_wp = (int)h[9];
  fixture_frames(f, dumped, 0, "paging-ref");
  double *d = read_exact(f, 8 * (size_t)(n_dense + n_sparse + n_order));
  vas = malloc(8 * (size_t)n_dense);
  sparse = malloc(8 * (size_t)n_sparse);
  order = malloc(8 * (size_t)n_order);
  for (u32 i = 0; i < n_dense; i++) vas[i] = (u64)d[i];
  for (u32 i = 0; i < n_sparse; i++) sparse[i] = (u64)d[n_dense + i];
  for (u32 i = 0; i < n_order; i++) order[i] = (u64)d[n_dense + n_sparse + i];
  free(d);
  fclose(f);
}

/* ---- timing. Mode "bench": each MEASURE runs its loop once untimed, then five timed runs,
 * and prints the best ("name<TAB>wall M/s<TAB>cpu M/s"). Mode "turns" (set by
 * measure_mode): the bench's harness (bench/harness.ts) drives the loops one run at a time,
 * in turns with the TypeScript's; it writes a loop's name on stdin, the MEASURE of that name
 * runs its body once and answers "name<TAB>wall ns<TAB>cpu ns". Names come in the order of
 * the MEASUREs in main (a MEASURE runs as long as its name is asked, then main goes on to
 * the next), so each loop's state evolves as in "bench" mode; at end of input the remaining
 * MEASUREs are skipped. */
static double now(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}
static volatile u64 sink;

static int turns_mode;     /* 1: loops run when stdin asks for them */
static char turn_name[64]; /* the name asked for and not yet run */
static int turn_state;     /* 0: read the next line, 1: turn_name pending, 2: end of input */

static void turns_left(void) {
  if (turn_state == 1) fprintf(stderr, "no loop named %s left to run\n", turn_name);
}
/* Sets the timing mode from main's mode argument. */
static void measure_mode(const char *mode) {
  turns_mode = strcmp(mode, "turns") == 0;
  if (turns_mode) atexit(turns_left);
}
/* Whether stdin asks for the loop `name` now (consumes the request if so). */
static int turn_for(const char *name) {
  if (turn_state == 0) {
    if (!fgets(turn_name, sizeof turn_name, stdin)) {
      turn_state = 2;
      return 0;
    }
    turn_name[strcspn(turn_name, "\r\n")] = 0;
    turn_state = 1;
  }
  if (turn_state == 1 && strcmp(turn_name, name) == 0) {
    turn_state = 0;
    return 1;
  }
  return 0;
}

/* One copy of the body for both modes, so that gcc compiles the loop as before. */
#define MEASURE(name, ops, body)                                                      \
  do {                                                                                \
    double best = 1e300, best_cpu = 1e300;                                            \
    for (int run = 0; turns_mode ? turn_for(name) : run < 6; run++) {                 \
      double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);           \
      body;                                                                           \
      double t = now(CLOCK_MONOTONIC) - t0, c = now(CLOCK_PROCESS_CPUTIME_ID) - c0;    \
      if (turns_mode) {                                                               \
        printf("%s\t%.0f\t%.0f\n", name, t, c);                                        \
        fflush(stdout);                                                               \
      }                                                                               \
      if (run > 0 && t < best) best = t;                                              \
      if (run > 0 && c < best_cpu) best_cpu = c;                                      \
    }                                                                                 \
    if (!turns_mode) {                                                                \
      printf("%s\t%.1f\t%.1f\n", name, (ops) / (best / 1e3), (ops) / (best_cpu / 1e3)); \
      fflush(stdout);                                                                 \
    }                                                                                 \
  } while (0)

/* FNV-1a-style over both 32-bit halves: the checksum test/c-reference.test.ts also computes. */
static inline u32 mix(u32 h, u64 x) {
  h = (h ^ (u32)x) * 0x01000193u;
  return (h ^ (u32)(x >> 32)) * 0x01000193u;
}

#ifndef PAGING_REF_LIBRARY
int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s FIXTURE bench|turns|check N\n", argv[0]);
    return 2;
  }
  load(argv[1]);
  int check = strcmp(argv[2], "check") == 0;
  measure_mode(argv[2]);
  const u64 N = strtoull(argv[3], 0, 10);
  const u32 R = n_order - 1, M = n_sparse - 1;
  walk_result out;
  memset(&out, 0, sizeof out);

  if (check) {
    u32 h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) {
      walk(root, order[i & R], 0, &out, NULL, 0);
      h = mix(h, out.maddr);
    }
    printf("walk-dense\t%08x\t%llu\t%llu\n", h, (unsigned long long)out.total_reads,
           (unsigned long long)out.total_writes);
    h = 0x811c9dc5u;
    for (u64 i = 0; i < N / 10; i++) {
      walk(root, sparse[i & M], 0, &out, NULL, 0);
      h = mix(h, out.maddr);
    }
    printf("walk-sparse\t%08x\t%llu\t%llu\n", h, (unsigned long long)out.total_reads,
           (unsigned long long)out.total_writes);
  } else {
    MEASURE("walk-dense", N, {
      u64 s = 0;
      for (u64 i = 0; i < N; i++) {
        walk(root, order[i & R], 0, &out, NULL, 0);
        s += out.maddr;
      }
      sink += s;
    });
    MEASURE("walk-sparse", N / 10, {
      u64 s = 0;
      for (u64 i = 0; i < N / 10; i++) {
        walk(root, sparse[i & M], 0, &out, NULL, 0);
        s += out.maddr;
      }
      sink += s;
    });
  }

  pwc_t pwc;
  pwc_init(&pwc);
  if (check) {
    u32 h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) {
      walk(root, order[i & R], 0, &out, &pwc, 0);
      h = mix(h, out.maddr);
      h = mix(h, (u64)out.reads);
    }
    printf("walk-pwc\t%08x\t%llu\t%llu\t%llu\n", h, (unsigned long long)pwc.counters[PWC_MISSES],
           (unsigned long long)pwc.counters[4], (unsigned long long)pwc.counters[4 + 3]);
  } else {
    MEASURE("walk-pwc", N, {
      u64 s = 0;
      for (u64 i = 0; i < N; i++) {
        walk(root, order[i & R], 0, &out, &pwc, 0);
        s += out.maddr;
      }
      sink += s;
    });
  }

  tlb_t tlb;
  tlb_init(&tlb);
  for (u32 i = 0; i < hot; i++) {
    walk(root, vas[i], ACCESS_WRITE, &out, NULL, 0);
    tlb_insert_walk(&tlb, &out, 1);
  }
  const u32 H = hot - 1;
  if (check) {
    u32 h = 0x811c9dc5u;
    for (u64 i = 0; i < N; i++) {
      if (tlb_lookup(&tlb, vas[i & H] + 8, 1)) h = mix(h, tlb.hit_mfn);
      else h = mix(h, 1);
    }
    printf("tlb-hit\t%08x\t%llu\t%llu\n", h, (unsigned long long)tlb.counters[1],
           (unsigned long long)tlb.counters[2]);
  } else {
    MEASURE("tlb-hit", N * 5, {
      u64 s = 0;
      for (u64 i = 0; i < N * 5; i++)
        if (tlb_lookup(&tlb, vas[i & H] + 8, 1)) s += tlb.hit_mfn;
      sink += s;
    });
  }

  tlb_t tlb2;
  tlb_init(&tlb2);
  if (check) {
    u32 h = 0x811c9dc5u;
    for (u64 i = 0; i < N / 2; i++) {
      u64 va = order[i & R];
      if (tlb_lookup(&tlb2, va, 1)) h = mix(h, tlb2.hit_mfn);
      else if (walk(root, va, 0, &out, &tlb2.pwc, 1)) {
        tlb_insert_walk(&tlb2, &out, 1);
        h = mix(h, out.page_mfn * 2 + 1);
      }
    }
    printf("tlb-miss\t%08x\t%llu\t%llu\t%llu\t%llu\n", h, (unsigned long long)tlb2.counters[1],
           (unsigned long long)tlb2.counters[TLB_STRIDE + 1],
           (unsigned long long)tlb2.counters[TLB_STRIDE + 4],
           (unsigned long long)tlb2.pwc.counters[PWC_MISSES]);
  } else {
    MEASURE("tlb-miss", N / 2, {
      u64 s = 0;
      for (u64 i = 0; i < N / 2; i++) {
        u64 va = order[i & R];
        if (tlb_lookup(&tlb2, va, 1)) s += tlb2.hit_mfn;
        else if (walk(root, va, 0, &out, &tlb2.pwc, 1)) {
          tlb_insert_walk(&tlb2, &out, 1);
          s += out.page_mfn & PERM_RW;
        }
      }
      sink += s;
    });
  }
  return 0;
}
#endif /* PAGING_REF_LIBRARY */
