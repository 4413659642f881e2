/*
 * ring-ref: the reference implementation of `hyperlab ring replay` and `hyperlab ring
 * layout`, built on Xen's own public headers (libxen-dev's /usr/include/xen), so the test
 * can compare the TypeScript ring code with the C macros byte for byte.
 *
 * Invariant: every ring step goes through the header's macro for it (SHARED_RING_INIT,
 * FRONT/BACK_RING_INIT and _ATTACH, RING_FREE_REQUESTS, RING_FULL, RING_PUSH_*,
 * RING_HAS_UNCONSUMED_*, RING_FINAL_CHECK_FOR_*, RING_COPY_*, RING_*_OVERFLOW,
 * MASK_XENCONS_IDX); every offset and size comes from offsetof/sizeof on the header's
 * types. The script language, the output and the error messages are those of
 * /work/shared/reference/ring-replay.md. Our own code, written from that reference.
 *
 * Usage: ring-ref layout | ring-ref replay SCRIPT
 */
#define __XEN_TOOLS__ 1
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/ring.h>
#include <xen/io/blkif.h>
#include <xen/io/netif.h>
#include <xen/io/console.h>

#ifndef xen_mb
#define xen_mb() __sync_synchronize()
#endif
#ifndef xen_wmb
#define xen_wmb() __sync_synchronize()
#endif
#ifndef xen_rmb
#define xen_rmb() __sync_synchronize()
#endif

/* ---- field tables ---- */

struct fld {
  const char *name;
  size_t off, size;
  int sgn;
};

#define MEMBER(T, m) (((T *)0)->m)
#define ISSIGNED(T, m) ((__typeof__(MEMBER(T, m)))-1 < 0)
#define F(T, m, nm) {nm, offsetof(T, m), sizeof(MEMBER(T, m)), ISSIGNED(T, m)}
#define SEG(i)                                                                   \
  F(struct blkif_request, seg[i].gref, "seg" #i ".gref"),                        \
      F(struct blkif_request, seg[i].first_sect, "seg" #i ".first_sect"),        \
      F(struct blkif_request, seg[i].last_sect, "seg" #i ".last_sect")
#define IG(i) F(struct blkif_request_indirect, indirect_grefs[i], "indirect_grefs" #i)

static const struct fld blk_req[] = {
    F(struct blkif_request, operation, "operation"),
    F(struct blkif_request, nr_segments, "nr_segments"),
    F(struct blkif_request, handle, "handle"),
    F(struct blkif_request, id, "id"),
    F(struct blkif_request, sector_number, "sector_number"),
    SEG(0), SEG(1), SEG(2), SEG(3), SEG(4), SEG(5), SEG(6), SEG(7), SEG(8), SEG(9), SEG(10),
};
static const struct fld blk_discard[] = {
    F(struct blkif_request_discard, operation, "operation"),
    F(struct blkif_request_discard, flag, "flag"),
    F(struct blkif_request_discard, handle, "handle"),
    F(struct blkif_request_discard, id, "id"),
    F(struct blkif_request_discard, sector_number, "sector_number"),
    F(struct blkif_request_discard, nr_sectors, "nr_sectors"),
};
static const struct fld blk_indirect[] = {
    F(struct blkif_request_indirect, operation, "operation"),
    F(struct blkif_request_indirect, indirect_op, "indirect_op"),
    F(struct blkif_request_indirect, nr_segments, "nr_segments"),
    F(struct blkif_request_indirect, id, "id"),
    F(struct blkif_request_indirect, sector_number, "sector_number"),
    F(struct blkif_request_indirect, handle, "handle"),
    IG(0), IG(1), IG(2), IG(3), IG(4), IG(5), IG(6), IG(7),
};
static const struct fld blk_rsp[] = {
    F(struct blkif_response, id, "id"),
    F(struct blkif_response, operation, "operation"),
    F(struct blkif_response, status, "status"),
};
static const struct fld extra[] = {
    F(struct netif_extra_info, type, "type"),
    F(struct netif_extra_info, flags, "flags"),
    F(struct netif_extra_info, u.gso.size, "gso.size"),
    F(struct netif_extra_info, u.gso.type, "gso.type"),
    F(struct netif_extra_info, u.gso.pad, "gso.pad"),
    F(struct netif_extra_info, u.gso.features, "gso.features"),
};
static const struct fld tx_req[] = {
    F(struct netif_tx_request, gref, "gref"),     F(struct netif_tx_request, offset, "offset"),
    F(struct netif_tx_request, flags, "flags"),   F(struct netif_tx_request, id, "id"),
    F(struct netif_tx_request, size, "size"),
};
static const struct fld tx_rsp[] = {
    F(struct netif_tx_response, id, "id"),
    F(struct netif_tx_response, status, "status"),
};
static const struct fld rx_req[] = {
    F(struct netif_rx_request, id, "id"),
    F(struct netif_rx_request, pad, "pad"),
    F(struct netif_rx_request, gref, "gref"),
};
static const struct fld rx_rsp[] = {
    F(struct netif_rx_response, id, "id"),
    F(struct netif_rx_response, offset, "offset"),
    F(struct netif_rx_response, flags, "flags"),
    F(struct netif_rx_response, status, "status"),
};

struct view {
  const char *name; /* "" for the default */
  const struct fld *f;
  int n;
  size_t bytes;
};
#define V(nm, arr, T) {nm, arr, (int)(sizeof(arr) / sizeof(arr[0])), sizeof(T)}

enum { BLK, TX, RX };
static const struct view req_views[3][4] = {
    {V("", blk_req, struct blkif_request), V("discard", blk_discard, struct blkif_request_discard),
     V("indirect", blk_indirect, struct blkif_request_indirect)},
    {V("", tx_req, struct netif_tx_request), V("extra", extra, struct netif_extra_info)},
    {V("", rx_req, struct netif_rx_request)},
};
static const struct view rsp_views[3][4] = {
    {V("", blk_rsp, struct blkif_response)},
    {V("", tx_rsp, struct netif_tx_response)},
    {V("", rx_rsp, struct netif_rx_response), V("extra", extra, struct netif_extra_info)},
};

static const struct view *find_view(const struct view *vs, const char *name) {
  for (int i = 0; i < 4 && vs[i].name; i++)
    if (strcmp(vs[i].name, name) == 0) return &vs[i];
  return NULL;
}

static uint64_t get_field(const unsigned char *base, const struct fld *f) {
  uint64_t v = 0;
  memcpy(&v, base + f->off, f->size); /* little-endian host */
  if (f->sgn && f->size < 8 && (v >> (f->size * 8 - 1)) & 1) v |= ~0ULL << (f->size * 8);
  return v;
}

static void put_field(unsigned char *base, const struct fld *f, uint64_t v) {
  memcpy(base + f->off, &v, f->size);
}

static void print_fields(const unsigned char *base, const struct fld *f, int n) {
  for (int i = 0; i < n; i++) {
    uint64_t v = get_field(base, &f[i]);
    if (f[i].sgn)
      printf(" %s=%lld", f[i].name, (long long)v);
    else
      printf(" %s=%llu", f[i].name, (unsigned long long)v);
  }
}

/* ---- numbers, data ---- */

/* strtoull, or strtoll for a negative number, base 0, over the whole token. */
static int parse_num(const char *t, uint64_t *out) {
  char *end;
  if (!(isdigit((unsigned char)t[0]) || t[0] == '+' || t[0] == '-')) return -1;
  errno = 0;
  if (t[0] == '-') {
    long long v = strtoll(t, &end, 0);
    if (errno || end == t || *end) return -1;
    *out = (uint64_t)v;
  } else {
    unsigned long long v = strtoull(t, &end, 0);
    if (errno || end == t || *end) return -1;
    *out = v;
  }
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static size_t unescape(const char *t, unsigned char *out) {
  size_t n = 0, len = strlen(t);
  for (size_t i = 0; i < len; i++) {
    if (t[i] != '\\' || i + 1 >= len) {
      out[n++] = (unsigned char)t[i];
      continue;
    }
    char e = t[++i];
    if (e == 'n')
      out[n++] = '\n';
    else if (e == 't')
      out[n++] = '\t';
    else if (e == 's')
      out[n++] = ' ';
    else if (e == 'x' && hexval(t[i + 1]) >= 0) {
      int v = hexval(t[++i]);
      if (hexval(t[i + 1]) >= 0) v = v * 16 + hexval(t[++i]);
      out[n++] = (unsigned char)v;
    } else
      out[n++] = (unsigned char)e;
  }
  return n;
}

static void print_escaped(const unsigned char *b, size_t n) {
  if (n == 0) {
    fputs("-", stdout);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = b[i];
    if (c == '\\')
      fputs("\\\\", stdout);
    else if (c == ' ')
      fputs("\\s", stdout);
    else if (c == '\n')
      fputs("\\n", stdout);
    else if (c >= 0x21 && c <= 0x7e)
      putchar(c);
    else
      printf("\\x%02x", c);
  }
}

/* ---- state ---- */

static int have_ring, rtype;
static unsigned char *page;
static size_t page_bytes;
static struct blkif_front_ring blkif_f;
static struct blkif_back_ring blkif_b;
static struct netif_tx_front_ring netif_tx_f;
static struct netif_tx_back_ring netif_tx_b;
static struct netif_rx_front_ring netif_rx_f;
static struct netif_rx_back_ring netif_rx_b;
static struct xencons_interface cons;

#define SR(T) ((struct T##_sring *)page)
/* Run STMT(T) with T the current ring's name. */
#define DISPATCH(STMT)        \
  do {                        \
    switch (rtype) {          \
    case BLK:                 \
      STMT(blkif);            \
      break;                  \
    case TX:                  \
      STMT(netif_tx);         \
      break;                  \
    default:                  \
      STMT(netif_rx);         \
      break;                  \
    }                         \
  } while (0)

static RING_IDX s_req_prod, s_req_event, s_rsp_prod, s_rsp_event, f_pvt, f_cons, b_pvt, b_cons;
#define SNAP(T)                                                                               \
  s_req_prod = SR(T)->req_prod, s_req_event = SR(T)->req_event, s_rsp_prod = SR(T)->rsp_prod, \
  s_rsp_event = SR(T)->rsp_event, f_pvt = T##_f.req_prod_pvt, f_cons = T##_f.rsp_cons,        \
  b_pvt = T##_b.rsp_prod_pvt, b_cons = T##_b.req_cons

static void ring_state(void) {
  DISPATCH(SNAP);
  printf(" | req_prod=%u req_event=%u rsp_prod=%u rsp_event=%u | f.req_prod_pvt=%u f.rsp_cons=%u"
         " | b.rsp_prod_pvt=%u b.req_cons=%u",
         s_req_prod, s_req_event, s_rsp_prod, s_rsp_event, f_pvt, f_cons, b_pvt, b_cons);
}

static void cons_state(void) {
  printf(" | in_cons=%u in_prod=%u out_cons=%u out_prod=%u", cons.in_cons, cons.in_prod,
         cons.out_cons, cons.out_prod);
}

/* ---- commands ---- */

static const char *err;
static char errbuf[8400];
#define FAIL(...)                                      \
  do {                                                 \
    snprintf(errbuf, sizeof(errbuf), __VA_ARGS__);     \
    err = errbuf;                                      \
    return;                                            \
  } while (0)

struct assign {
  const struct fld *f;
  uint64_t v;
};

/* Parse k=v tokens against a view; 0 on success (err set otherwise). */
static int parse_assigns(const struct view *v, char **tok, int n, struct assign *out) {
  for (int i = 0; i < n; i++) {
    char *eq = strchr(tok[i], '=');
    if (!eq) {
      snprintf(errbuf, sizeof(errbuf), "expected name=value, got '%s'", tok[i]);
      err = errbuf;
      return -1;
    }
    *eq = 0;
    const struct fld *f = NULL;
    for (int j = 0; j < v->n; j++)
      if (strcmp(v->f[j].name, tok[i]) == 0) f = &v->f[j];
    if (!f) {
      snprintf(errbuf, sizeof(errbuf), "unknown field '%s'", tok[i]);
      err = errbuf;
      return -1;
    }
    if (parse_num(eq + 1, &out[i].v)) {
      snprintf(errbuf, sizeof(errbuf), "bad number '%s'", eq + 1);
      err = errbuf;
      return -1;
    }
    out[i].f = f;
  }
  return 0;
}

static const char *USAGE_RING = "usage: ring blkif|netif_tx|netif_rx [order=0..4] [start=N]";

static void cmd_ring(char **a, int n) {
  int t, order = 0, use_start = 0;
  uint64_t start = 0, v;
  if (n < 1) FAIL("%s", USAGE_RING);
  if (strcmp(a[0], "blkif") == 0)
    t = BLK;
  else if (strcmp(a[0], "netif_tx") == 0)
    t = TX;
  else if (strcmp(a[0], "netif_rx") == 0)
    t = RX;
  else
    FAIL("%s", USAGE_RING);
  for (int i = 1; i < n; i++) {
    if (strncmp(a[i], "order=", 6) == 0 && !parse_num(a[i] + 6, &v) && v <= 4)
      order = (int)v;
    else if (strncmp(a[i], "start=", 6) == 0 && !parse_num(a[i] + 6, &v))
      start = v, use_start = 1;
    else
      FAIL("%s", USAGE_RING);
  }
  free(page);
  page_bytes = (size_t)4096 << order;
  page = aligned_alloc(4096, page_bytes);
  memset(page, 0, page_bytes);
  rtype = t;
  have_ring = 1;
  RING_IDX s = (RING_IDX)start;
#define INIT(T)                                                      \
  do {                                                               \
    if (!use_start) {                                                \
      SHARED_RING_INIT(SR(T));                                       \
      FRONT_RING_INIT(&T##_f, SR(T), page_bytes);                    \
      BACK_RING_INIT(&T##_b, SR(T), page_bytes);                     \
    } else {                                                         \
      SR(T)->req_prod = SR(T)->rsp_prod = s;                         \
      SR(T)->req_event = SR(T)->rsp_event = s + 1;                   \
      FRONT_RING_ATTACH(&T##_f, SR(T), s, page_bytes);               \
      BACK_RING_ATTACH(&T##_b, SR(T), s, page_bytes);                \
    }                                                                \
    printf(" size=%u entry=%zu", RING_SIZE(&T##_f), sizeof(SR(T)->ring[0])); \
  } while (0)
  DISPATCH(INIT);
  ring_state();
}

static void cmd_ring_op(const char *op, char **a, int n) {
  char out[1024];
  out[0] = 0;
  struct assign as[70];
  if (strcmp(op, "f.req") == 0) {
    const struct view *v = &req_views[rtype][0];
    if (n > 0 && a[0][0] && !strchr(a[0], '=')) {
      const struct view *w = find_view(req_views[rtype], a[0]);
      if (w && w->name[0]) v = w, a++, n--;
    }
    if (parse_assigns(v, a, n, as)) return;
    unsigned int free_before = 0;
    RING_IDX idx = 0, slot = 0;
#define FREQ(T)                                                        \
  do {                                                                 \
    free_before = RING_FREE_REQUESTS(&T##_f);                          \
    idx = T##_f.req_prod_pvt;                                          \
    unsigned char *p = (unsigned char *)RING_GET_REQUEST(&T##_f, idx); \
    memset(p, 0, sizeof(SR(T)->ring[0]));                              \
    for (int i = 0; i < n; i++) put_field(p, as[i].f, as[i].v);        \
    T##_f.req_prod_pvt++;                                              \
    slot = idx & (RING_SIZE(&T##_f) - 1);                              \
  } while (0)
    DISPATCH(FREQ);
    printf(" idx=%u slot=%u free_before=%u", idx, slot, free_before);
  } else if (strcmp(op, "b.rsp") == 0) {
    const struct view *v = &rsp_views[rtype][0];
    if (n > 0 && a[0][0] && !strchr(a[0], '=')) {
      const struct view *w = find_view(rsp_views[rtype], a[0]);
      if (w && w->name[0]) v = w, a++, n--;
    }
    if (parse_assigns(v, a, n, as)) return;
    RING_IDX idx = 0, slot = 0;
#define BRSP(T)                                                         \
  do {                                                                  \
    idx = T##_b.rsp_prod_pvt;                                           \
    unsigned char *p = (unsigned char *)RING_GET_RESPONSE(&T##_b, idx); \
    memset(p, 0, v->bytes);                                             \
    for (int i = 0; i < n; i++) put_field(p, as[i].f, as[i].v);         \
    T##_b.rsp_prod_pvt++;                                               \
    slot = idx & (RING_SIZE(&T##_b) - 1);                               \
  } while (0)
    DISPATCH(BRSP);
    printf(" idx=%u slot=%u", idx, slot);
  } else if (strcmp(op, "f.get_rsp") == 0 || strcmp(op, "b.get_req") == 0) {
    int isreq = op[0] == 'b';
    const struct view *vs = isreq ? req_views[rtype] : rsp_views[rtype];
    const struct view *v = &vs[0];
    if (n > 1) FAIL("bad value");
    if (n == 1) {
      v = find_view(vs, a[0]);
      if (!v || !a[0][0]) FAIL("bad value");
    }
    unsigned char buf[128];
    memset(buf, 0, sizeof(buf));
    RING_IDX idx = 0;
    int ovf = 0;
    if (isreq) {
#define GETREQ(T)                                                    \
  do {                                                               \
    T##_request_t r;                                                 \
    idx = T##_b.req_cons;                                            \
    ovf = RING_REQUEST_CONS_OVERFLOW(&T##_b, T##_b.req_cons);        \
    RING_COPY_REQUEST(&T##_b, T##_b.req_cons, &r);                   \
    T##_b.req_cons++;                                                \
    memcpy(buf, &r, sizeof(r));                                      \
  } while (0)
      DISPATCH(GETREQ);
      int nf = v->n;
      if (rtype == BLK && n == 0) {
        if (buf[0] == BLKIF_OP_DISCARD)
          v = find_view(vs, "discard"), nf = v->n;
        else if (buf[0] == BLKIF_OP_INDIRECT)
          v = find_view(vs, "indirect"), nf = v->n;
        else
          nf = 5 + 3 * (buf[1] < BLKIF_MAX_SEGMENTS_PER_REQUEST ? buf[1] : BLKIF_MAX_SEGMENTS_PER_REQUEST);
      }
      printf(" idx=%u cons_overflow=%d", idx, ovf);
      print_fields(buf, v->f, nf);
    } else {
#define GETRSP(T)                                                       \
  do {                                                                  \
    T##_response_t r;                                                   \
    idx = T##_f.rsp_cons;                                               \
    RING_COPY_RESPONSE(&T##_f, T##_f.rsp_cons, &r);                     \
    T##_f.rsp_cons++;                                                   \
    ovf = RING_RESPONSE_PROD_OVERFLOW(&T##_f, SR(T)->rsp_prod);         \
    memcpy(buf, &r, sizeof(r));                                         \
  } while (0)
      DISPATCH(GETRSP);
      printf(" idx=%u", idx);
      print_fields(buf, v->f, v->n);
      printf(" rsp_prod_overflow=%d", ovf);
    }
  } else if (strcmp(op, "s.set") == 0) {
    uint64_t v;
    if (n != 2) FAIL("bad value");
    int w = strcmp(a[0], "req_prod") == 0    ? 0
            : strcmp(a[0], "req_event") == 0 ? 1
            : strcmp(a[0], "rsp_prod") == 0  ? 2
            : strcmp(a[0], "rsp_event") == 0 ? 3
                                             : -1;
    if (w < 0) FAIL("unknown shared index '%s'", a[0]);
    if (parse_num(a[1], &v)) FAIL("bad number '%s'", a[1]);
    RING_IDX x = (RING_IDX)v;
#define SSET(T)                     \
  do {                              \
    if (w == 0)                     \
      SR(T)->req_prod = x;          \
    else if (w == 1)                \
      SR(T)->req_event = x;         \
    else if (w == 2)                \
      SR(T)->rsp_prod = x;          \
    else                            \
      SR(T)->rsp_event = x;         \
  } while (0)
    DISPATCH(SSET);
  } else if (strcmp(op, "hexdump") == 0) {
    uint64_t from = 0, to = page_bytes;
    if (n > 2) FAIL("bad value");
    if (n >= 1 && parse_num(a[0], &from)) FAIL("bad number '%s'", a[0]);
    if (n >= 2 && parse_num(a[1], &to)) FAIL("bad number '%s'", a[1]);
    if (to > page_bytes) to = page_bytes;
    if (from > to) FAIL("bad value");
    ring_state();
    for (uint64_t row = from & ~(uint64_t)15; row < to; row += 16) {
      int any = 0;
      for (int i = 0; i < 16; i++) any |= page[row + i];
      if (!any) continue;
      printf("\n  %06llx:", (unsigned long long)row);
      for (int i = 0; i < 16; i++) printf(" %02x", page[row + i]);
    }
    return;
  } else {
    if (n != 0) FAIL("bad value");
    if (strcmp(op, "f.push") == 0) {
#define FPUSH(T) RING_PUSH_REQUESTS(&T##_f)
      DISPATCH(FPUSH);
    } else if (strcmp(op, "f.push_notify") == 0) {
      int notify = 0;
#define FPUSHN(T) RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&T##_f, notify)
      DISPATCH(FPUSHN);
      printf(" notify=%d", notify);
    } else if (strcmp(op, "f.free") == 0) {
      unsigned int fr = 0;
      int full = 0;
#define FFREE(T) fr = RING_FREE_REQUESTS(&T##_f), full = RING_FULL(&T##_f)
      DISPATCH(FFREE);
      printf(" free=%u full=%d", fr, full);
    } else if (strcmp(op, "f.has_rsp") == 0) {
      unsigned int u = 0;
#define FHAS(T) u = RING_HAS_UNCONSUMED_RESPONSES(&T##_f)
      DISPATCH(FHAS);
      printf(" unconsumed=%u", u);
    } else if (strcmp(op, "f.final_check") == 0) {
      unsigned int work = 0;
#define FFIN(T) RING_FINAL_CHECK_FOR_RESPONSES(&T##_f, work)
      DISPATCH(FFIN);
      printf(" work=%u", work);
    } else if (strcmp(op, "b.has_req") == 0) {
      unsigned int u = 0;
#define BHAS(T) u = RING_HAS_UNCONSUMED_REQUESTS(&T##_b)
      DISPATCH(BHAS);
      printf(" unconsumed=%u", u);
    } else if (strcmp(op, "b.final_check") == 0) {
      unsigned int work = 0;
#define BFIN(T) RING_FINAL_CHECK_FOR_REQUESTS(&T##_b, work)
      DISPATCH(BFIN);
      printf(" work=%u", work);
    } else if (strcmp(op, "b.prod_overflow") == 0) {
      int o = 0;
#define BPO(T) o = RING_REQUEST_PROD_OVERFLOW(&T##_b, SR(T)->req_prod)
      DISPATCH(BPO);
      printf(" overflow=%d", o);
    } else if (strcmp(op, "b.push") == 0) {
#define BPUSH(T) RING_PUSH_RESPONSES(&T##_b)
      DISPATCH(BPUSH);
    } else if (strcmp(op, "b.push_notify") == 0) {
      int notify = 0;
#define BPUSHN(T) RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&T##_b, notify)
      DISPATCH(BPUSHN);
      printf(" notify=%d", notify);
    } /* else: state */
  }
  (void)out;
  ring_state();
}

/* Producer loop: copy while (prod - cons) < sizeof(ring), then publish prod. */
#define WRITE_LOOP(ring, cons_i, prod_i, data, len, sent)                \
  do {                                                                   \
    XENCONS_RING_IDX c_ = cons.cons_i, p_ = cons.prod_i;                 \
    (sent) = 0;                                                          \
    while ((sent) < (len) && (XENCONS_RING_IDX)(p_ - c_) < sizeof(cons.ring)) \
      cons.ring[MASK_XENCONS_IDX(p_++, cons.ring)] = (char)(data)[(sent)++]; \
    xen_wmb();                                                           \
    cons.prod_i = p_;                                                    \
  } while (0)

/* Consumer loop: copy up to max bytes while cons != prod, then publish cons. */
#define READ_LOOP(ring, cons_i, prod_i, buf, max, got)                   \
  do {                                                                   \
    XENCONS_RING_IDX c_ = cons.cons_i, p_ = cons.prod_i;                 \
    (got) = 0;                                                           \
    while ((uint64_t)(got) < (max) && c_ != p_)                          \
      (buf)[(got)++] = (unsigned char)cons.ring[MASK_XENCONS_IDX(c_++, cons.ring)]; \
    xen_mb();                                                            \
    cons.cons_i = c_;                                                    \
  } while (0)

static void cmd_cons(const char *op, char **a, int n) {
  if (strcmp(op, "cons.init") == 0) {
    if (n != 0) FAIL("bad value");
    memset(&cons, 0, sizeof(cons));
  } else if (strcmp(op, "cons.set") == 0) {
    uint64_t v;
    if (n != 2) FAIL("bad value");
    XENCONS_RING_IDX *p = strcmp(a[0], "in_cons") == 0    ? &cons.in_cons
                          : strcmp(a[0], "in_prod") == 0  ? &cons.in_prod
                          : strcmp(a[0], "out_cons") == 0 ? &cons.out_cons
                          : strcmp(a[0], "out_prod") == 0 ? &cons.out_prod
                                                          : NULL;
    if (!p) FAIL("unknown index '%s'", a[0]);
    if (parse_num(a[1], &v)) FAIL("bad number '%s'", a[1]);
    *p = (XENCONS_RING_IDX)v;
  } else if (strcmp(op, "cons.write_out") == 0 || strcmp(op, "cons.write_in") == 0) {
    if (n != 1) FAIL("bad value");
    unsigned char *data = malloc(strlen(a[0]) + 1);
    size_t len = unescape(a[0], data), sent;
    if (strcmp(op, "cons.write_out") == 0)
      WRITE_LOOP(out, out_cons, out_prod, data, len, sent);
    else
      WRITE_LOOP(in, in_cons, in_prod, data, len, sent);
    free(data);
    printf(" written=%zu of=%zu", sent, len);
  } else if (strcmp(op, "cons.read_out") == 0 || strcmp(op, "cons.read_in") == 0) {
    uint64_t max = UINT64_MAX;
    if (n > 1) FAIL("bad value");
    if (n == 1 && parse_num(a[0], &max)) FAIL("bad number '%s'", a[0]);
    int out = strcmp(op, "cons.read_out") == 0;
    XENCONS_RING_IDX pend = out ? cons.out_prod - cons.out_cons : cons.in_prod - cons.in_cons;
    unsigned char *buf = malloc((size_t)pend + 1);
    size_t got;
    if (out)
      READ_LOOP(out, out_cons, out_prod, buf, max, got);
    else
      READ_LOOP(in, in_cons, in_prod, buf, max, got);
    printf(" read=%zu data=", got);
    print_escaped(buf, got);
    free(buf);
  } else
    FAIL("unknown console op");
  cons_state();
}

static const char *RING_OPS[] = {"f.req",       "f.push",          "f.push_notify", "f.free",
                                 "f.has_rsp",   "f.final_check",   "f.get_rsp",     "b.has_req",
                                 "b.final_check", "b.prod_overflow", "b.get_req",   "b.rsp",
                                 "b.push",      "b.push_notify",   "s.set",         "hexdump",
                                 "state",       NULL};

static int replay(const char *path) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    fprintf(stderr, "ring-ref: cannot open %s\n", path);
    return 2;
  }
  size_t cap = 1 << 16, len = 0;
  char *text = malloc(cap);
  size_t got;
  while ((got = fread(text + len, 1, cap - len, fp)) > 0) {
    len += got;
    if (len == cap) text = realloc(text, cap *= 2);
  }
  fclose(fp);
  int status = 0, lineno = 0;
  size_t pos = 0;
  while (pos < len) {
    char *nl = memchr(text + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - text) : len;
    size_t rawlen = end - pos;
    char *line = malloc(rawlen + 1);
    memcpy(line, text + pos, rawlen);
    line[rawlen] = 0;
    /* A NUL inside a line ends C's view of it; scripts are text. */
    pos = end + 1;
    lineno++;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    int ntok = 0;
    char **tok = malloc(sizeof(char *) * (rawlen / 2 + 2));
    for (char *p = line; *p;) {
      while (*p == ' ' || *p == '\t') p++;
      if (!*p) break;
      tok[ntok++] = p;
      while (*p && *p != ' ' && *p != '\t') p++;
      if (*p) *p++ = 0;
    }
    if (ntok > 0) {
      const char *op = tok[0];
      err = NULL;
      printf("%d %s", lineno, op);
      if (rawlen > 8191 || ntok > 64)
        err = "bad value";
      else if (strcmp(op, "ring") == 0)
        cmd_ring(tok + 1, ntok - 1);
      else if (strncmp(op, "cons.", 5) == 0)
        cmd_cons(op, tok + 1, ntok - 1);
      else {
        int known = 0;
        for (int i = 0; RING_OPS[i]; i++) known |= strcmp(RING_OPS[i], op) == 0;
        if (!known)
          err = "unknown op";
        else if (!have_ring)
          err = "no ring: start the script with 'ring TYPE'";
        else
          cmd_ring_op(op, tok + 1, ntok - 1);
      }
      if (err) {
        printf(" ERROR %s", err);
        status = 1;
      }
      putchar('\n');
    }
    free(tok);
    free(line);
  }
  free(text);
  return status;
}

#define SZ(T) printf("sizeof(" #T ") %zu\n", sizeof(T))
#define OFF(T, m) printf("offsetof(" #T "," #m ") %zu\n", offsetof(T, m))
#define K(x) printf(#x " %lld\n", (long long)(x))
#define SRING(T)                                                                   \
  do {                                                                             \
    SZ(struct T##_sring);                                                          \
    OFF(struct T##_sring, req_prod);                                               \
    OFF(struct T##_sring, req_event);                                              \
    OFF(struct T##_sring, rsp_prod);                                               \
    OFF(struct T##_sring, rsp_event);                                              \
    OFF(struct T##_sring, pvt);                                                    \
    OFF(struct T##_sring, __pad);                                                  \
    OFF(struct T##_sring, ring);                                                   \
    SZ(union T##_sring_entry);                                                     \
    for (int o = 0; o <= 4; o++)                                                   \
      printf("RING_SIZE(" #T ",order=%d) %u\n", o,                                 \
             (unsigned)__CONST_RING_SIZE(T, (size_t)4096 << o));                   \
  } while (0)

static void layout(void) {
  SRING(blkif);
  SRING(netif_tx);
  SRING(netif_rx);
  SZ(struct blkif_request_segment);
  OFF(struct blkif_request_segment, gref);
  OFF(struct blkif_request_segment, first_sect);
  OFF(struct blkif_request_segment, last_sect);
  SZ(struct blkif_request);
  OFF(struct blkif_request, operation);
  OFF(struct blkif_request, nr_segments);
  OFF(struct blkif_request, handle);
  OFF(struct blkif_request, id);
  OFF(struct blkif_request, sector_number);
  OFF(struct blkif_request, seg);
  SZ(struct blkif_request_discard);
  OFF(struct blkif_request_discard, operation);
  OFF(struct blkif_request_discard, flag);
  OFF(struct blkif_request_discard, handle);
  OFF(struct blkif_request_discard, id);
  OFF(struct blkif_request_discard, sector_number);
  OFF(struct blkif_request_discard, nr_sectors);
  SZ(struct blkif_request_indirect);
  OFF(struct blkif_request_indirect, operation);
  OFF(struct blkif_request_indirect, indirect_op);
  OFF(struct blkif_request_indirect, nr_segments);
  OFF(struct blkif_request_indirect, id);
  OFF(struct blkif_request_indirect, sector_number);
  OFF(struct blkif_request_indirect, handle);
  OFF(struct blkif_request_indirect, indirect_grefs);
  SZ(struct blkif_response);
  OFF(struct blkif_response, id);
  OFF(struct blkif_response, operation);
  OFF(struct blkif_response, status);
  SZ(struct netif_tx_request);
  OFF(struct netif_tx_request, gref);
  OFF(struct netif_tx_request, offset);
  OFF(struct netif_tx_request, flags);
  OFF(struct netif_tx_request, id);
  OFF(struct netif_tx_request, size);
  SZ(struct netif_tx_response);
  OFF(struct netif_tx_response, id);
  OFF(struct netif_tx_response, status);
  SZ(struct netif_extra_info);
  OFF(struct netif_extra_info, type);
  OFF(struct netif_extra_info, flags);
  OFF(struct netif_extra_info, u);
  OFF(struct netif_extra_info, u.gso.size);
  OFF(struct netif_extra_info, u.gso.type);
  OFF(struct netif_extra_info, u.gso.pad);
  OFF(struct netif_extra_info, u.gso.features);
  OFF(struct netif_extra_info, u.mcast.addr);
  OFF(struct netif_extra_info, u.hash.type);
  OFF(struct netif_extra_info, u.hash.algorithm);
  OFF(struct netif_extra_info, u.hash.value);
  SZ(struct netif_rx_request);
  OFF(struct netif_rx_request, id);
  OFF(struct netif_rx_request, pad);
  OFF(struct netif_rx_request, gref);
  SZ(struct netif_rx_response);
  OFF(struct netif_rx_response, id);
  OFF(struct netif_rx_response, offset);
  OFF(struct netif_rx_response, flags);
  OFF(struct netif_rx_response, status);
  SZ(struct xencons_interface);
  OFF(struct xencons_interface, in);
  OFF(struct xencons_interface, out);
  OFF(struct xencons_interface, in_cons);
  OFF(struct xencons_interface, in_prod);
  OFF(struct xencons_interface, out_cons);
  OFF(struct xencons_interface, out_prod);
  K(XEN_PAGE_SHIFT);
  K(BLKIF_OP_READ);
  K(BLKIF_OP_WRITE);
  K(BLKIF_OP_WRITE_BARRIER);
  K(BLKIF_OP_FLUSH_DISKCACHE);
  K(BLKIF_OP_RESERVED_1);
  K(BLKIF_OP_DISCARD);
  K(BLKIF_OP_INDIRECT);
  K(BLKIF_MAX_SEGMENTS_PER_REQUEST);
  K(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
  K(BLKIF_DISCARD_SECURE);
  K(BLKIF_RSP_EOPNOTSUPP);
  K(BLKIF_RSP_ERROR);
  K(BLKIF_RSP_OKAY);
  K(NETTXF_csum_blank);
  K(NETTXF_data_validated);
  K(NETTXF_more_data);
  K(NETTXF_extra_info);
  K(NETRXF_data_validated);
  K(NETRXF_csum_blank);
  K(NETRXF_more_data);
  K(NETRXF_extra_info);
  K(NETRXF_gso_prefix);
  K(XEN_NETIF_EXTRA_TYPE_NONE);
  K(XEN_NETIF_EXTRA_TYPE_GSO);
  K(XEN_NETIF_EXTRA_TYPE_MCAST_ADD);
  K(XEN_NETIF_EXTRA_TYPE_MCAST_DEL);
  K(XEN_NETIF_EXTRA_TYPE_HASH);
  K(XEN_NETIF_EXTRA_FLAG_MORE);
  K(XEN_NETIF_GSO_TYPE_NONE);
  K(XEN_NETIF_GSO_TYPE_TCPV4);
  K(XEN_NETIF_GSO_TYPE_TCPV6);
  K(NETIF_RSP_DROPPED);
  K(NETIF_RSP_ERROR);
  K(NETIF_RSP_OKAY);
  K(NETIF_RSP_NULL);
  K(XEN_NETIF_NR_SLOTS_MIN);
  K(XEN_NETIF_MAX_TX_SIZE);
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "layout") == 0) {
    layout();
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "replay") == 0) return replay(argv[2]);
  fprintf(stderr, "usage: ring-ref layout | ring-ref replay SCRIPT\n");
  return 2;
}
