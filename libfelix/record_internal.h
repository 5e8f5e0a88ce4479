/* Shared by the recording writer and reader: constants of the format and a
 * small CBOR encoder over libcbor's encoding functions. */
#ifndef FX_RECORD_INTERNAL_H
#define FX_RECORD_INTERNAL_H

#include <cbor.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem, the _advanced constructors */
#include <zstd.h>
#include <zstd_errors.h>
#include <stdlib.h>

#include "felix/felix.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

/* Frames' window: the writer uses 2^20 bytes; readers accept up to 2^21. */
#define FX_WINDOW_LOG 20
#define FX_WINDOW_LOG_MAX 21

/* zstd contexts allocate through fx_malloc/fx_free too. */
ZSTD_customMem fx_zstd_mem(void);

#define FX_REC_FORMAT_NAME "felix-recording"
#define FX_MAGIC_INDEX 0x184D2A5Fu     /* skippable frame: our CBOR index */
#define FX_MAGIC_SEEKTABLE 0x184D2A5Eu /* skippable frame: seekable-format seek table */
#define FX_MAGIC_SEEKABLE_FOOTER 0x8F92EAB1u

enum { FX_ITEM_HEADER = 0, FX_ITEM_SAMPLE = 1, FX_ITEM_EVENT = 2, FX_ITEM_END = 3, FX_ITEM_INDEX = 4 };

#define FX_NAME_LEN 32 /* thread names kept per thread (Linux: 15 + NUL) */

/* A growable output buffer; enc_* append one CBOR head or value. */
typedef struct fx_buf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} fx_buf;

static inline int fx_buf_reserve(fx_buf *b, size_t more)
{
    if (more > SIZE_MAX - b->len || (b->len + more > b->cap && fx_grow((void **)&b->p, &b->cap, b->len + more, 1) < 0)) {
        b->oom = 1;
        return -1;
    }
    return 0;
}

static inline void enc_uint(fx_buf *b, uint64_t v)
{
    if (fx_buf_reserve(b, 9) == 0)
        b->len += cbor_encode_uint(v, b->p + b->len, b->cap - b->len);
}

static inline void enc_int(fx_buf *b, int64_t v)
{
    if (v >= 0)
        enc_uint(b, (uint64_t)v);
    else if (fx_buf_reserve(b, 9) == 0)
        b->len += cbor_encode_negint((uint64_t)(-(v + 1)), b->p + b->len, b->cap - b->len);
}

static inline void enc_map(fx_buf *b, size_t n)
{
    if (fx_buf_reserve(b, 9) == 0)
        b->len += cbor_encode_map_start(n, b->p + b->len, b->cap - b->len);
}

static inline void enc_arr(fx_buf *b, size_t n)
{
    if (fx_buf_reserve(b, 9) == 0)
        b->len += cbor_encode_array_start(n, b->p + b->len, b->cap - b->len);
}

static inline void enc_bool(fx_buf *b, int v)
{
    if (fx_buf_reserve(b, 1) == 0)
        b->len += cbor_encode_bool(v != 0, b->p + b->len, b->cap - b->len);
}

static inline void enc_str(fx_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (fx_buf_reserve(b, 9 + n) == 0) {
        b->len += cbor_encode_string_start(n, b->p + b->len, b->cap - b->len);
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

/* Every item is a map whose last pair is key 23: a CRC-32 of the item's
 * bytes before that key, as a 5-byte CBOR unsigned integer (0x1a + 4 bytes).
 * enc_item starts an item's map of n pairs (the check added); enc_check ends it. */
#define FX_KEY_CHECK 23 /* the largest one-byte key */
static inline void enc_item(fx_buf *b, size_t n)
{
    b->len = 0;
    enc_map(b, n + 1);
}

static inline void enc_check(fx_buf *b)
{
    uint32_t crc = fx_crc32(b->p, b->len);
    enc_uint(b, FX_KEY_CHECK);
    if (fx_buf_reserve(b, 5) == 0)
        b->len += cbor_encode_uint32(crc, b->p + b->len, b->cap - b->len);
}

static inline void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Write all of buf to fd; a closed pipe gives FELIX_EPIPE, never SIGPIPE. */
int fx_write_all(int fd, const void *buf, size_t n, const char *what);

/* A thread's slot words (known counters then extras) from a snapshot. */
static inline size_t fx_thread_words(const felix_snapshot *s, size_t i, uint64_t *words)
{
    const felix_snapshot_info *si = felix_snapshot_get_info(s);
    const felix_thread *t = felix_snapshot_thread(s, i);
    size_t n = si->nknown;
    memcpy(words, t->c, n * sizeof *words);
    const uint64_t *e = felix_snapshot_extra(s, i);
    for (size_t k = 0; e && k < si->nextra; k++)
        words[n++] = e[k];
    return n;
}

#define FX_MAX_WORDS (0x10000 / 8)

/* A sample holds at most 32,768 threads and 4 MiB of thread slots (threads x
 * slot size; FEX's cap on its segment). Readers rely on both to bound their
 * memory: a reader and a delta over 32,768 threads take about 30 MiB. */
#define FX_MAX_SAMPLE_SLOTS FELIX_SHM_FEX_MAX_SIZE
#define FX_MAX_SAMPLE_THREADS 32768u

/*
 * Each thread's last word deltas (cur - prev), aligned to a snapshot's
 * thread order: "prev" arrays belong to the previous sample, "next" ones are
 * filled for the sample being coded; swapped after each sample. A word is
 * written as the difference of its delta from the last delta (second order)
 * when the thread has one, so steady rates code as zeros.
 */
typedef struct fx_deltas {
    uint64_t *d, *next;          /* nthreads * nwords each */
    unsigned char *has, *next_has;
    size_t cap, nwords;          /* threads all four hold */
    size_t cap_d, cap_next, cap_has, cap_next_has;
} fx_deltas;

static inline void fx_deltas_free(fx_deltas *x)
{
    fx_free(x->d), fx_free(x->next), fx_free(x->has), fx_free(x->next_has);
}

static inline int fx_grow_deltas(fx_deltas *x, size_t n, size_t nwords)
{
    if (nwords != x->nwords && x->cap) { /* a layout change: start over */
        fx_deltas_free(x);
        memset(x, 0, sizeof *x);
    }
    x->nwords = nwords;
    if (n <= x->cap)
        return 0;
    size_t w = (nwords ? nwords : 1) * 8, had = x->cap_has;
    int rc;
    if ((rc = fx_grow((void **)&x->d, &x->cap_d, n, w)) < 0 || (rc = fx_grow((void **)&x->next, &x->cap_next, n, w)) < 0 ||
        (rc = fx_grow((void **)&x->has, &x->cap_has, n, 1)) < 0 ||
        (rc = fx_grow((void **)&x->next_has, &x->cap_next_has, n, 1)) < 0)
        return rc;
    memset(x->has + had, 0, x->cap_has - had);
    x->cap = n;
    return 0;
}

static inline uint64_t *fx_delta_prev(fx_deltas *x, size_t i) { return x->d + i * x->nwords; }
static inline uint64_t *fx_delta_next(fx_deltas *x, size_t i) { return x->next + i * x->nwords; }

static inline void fx_deltas_swap(fx_deltas *x)
{
    uint64_t *t = x->d;
    x->d = x->next;
    x->next = t;
    unsigned char *h = x->has;
    x->has = x->next_has;
    x->next_has = h;
    size_t c = x->cap_d;
    x->cap_d = x->cap_next, x->cap_next = c;
    c = x->cap_has;
    x->cap_has = x->cap_next_has, x->cap_next_has = c;
}

/*
 * Each thread's name and last CPU time, double-buffered like fx_deltas:
 * "cur" is aligned to the previous sample's threads, "next" is filled for
 * the sample being coded; swapped after each sample.
 */
struct thread_extra {
    char name[FX_NAME_LEN];
    int has_cpu;
    uint64_t cpu;
};

typedef struct fx_extras {
    struct thread_extra *cur, *next;
    size_t cap, cap_cur, cap_next;
} fx_extras;

static inline int fx_grow_extras(fx_extras *x, size_t n)
{
    if (n <= x->cap)
        return 0;
    int rc;
    if ((rc = fx_grow((void **)&x->cur, &x->cap_cur, n, sizeof *x->cur)) < 0 ||
        (rc = fx_grow((void **)&x->next, &x->cap_next, n, sizeof *x->next)) < 0)
        return rc;
    x->cap = n;
    return 0;
}

static inline void fx_extras_swap(fx_extras *x)
{
    struct thread_extra *t = x->cur;
    x->cur = x->next;
    x->next = t;
    size_t c = x->cap_cur;
    x->cap_cur = x->cap_next, x->cap_next = c;
}

static inline void fx_extras_free(fx_extras *x)
{
    fx_free(x->cur), fx_free(x->next);
}

#endif
