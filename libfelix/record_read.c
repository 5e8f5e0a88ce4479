/*
 * Recording reader. Invariants:
 *  - d[d_pos..d_len) holds decompressed bytes not yet parsed; an item is
 *    parsed only when complete, so a cut file yields every whole item first.
 *  - in[in_pos..in_len) holds compressed bytes not yet decompressed; in[0] is
 *    at file offset in_off.
 *  - prev is the last sample read (the base for delta-coded words) with
 *    ex (names, CPU times) aligned to its threads; in_chunk says it belongs to the chunk being
 *    read. Memory does not depend on the recording's length: only on the
 *    largest item and the thread count (and, once seeking, the chunk index).
 */
#include "felix/felix.h"
#include "felix/record.h"
#include "record_format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* Limits on what a file may make the reader hold (docs/recording-format.md,
 * "Limits"): checked before anything is allocated, so memory stays bounded
 * whatever a file declares. */
#define MAX_ITEM (8u << 20)        /* an item, decompressed */
#define MAX_DEPTH 8                /* nesting (ours is at most 3) */

struct chunk {
    uint64_t offset, first_sample, samples;
    int64_t first_t;
};

struct frame_mark {
    uint64_t dpos;   /* absolute decompressed offset where the frame's output begins */
    uint64_t offset; /* the frame's file offset */
};

/* Where finding the current item's end has got to (items arrive in pieces). */
struct framing {
    size_t pos;                /* bytes of the item walked */
    size_t last_key;           /* offset of the top-level map's last key */
    uint64_t left[MAX_DEPTH];  /* children still to come in each open container */
    unsigned sp;
    int top_map, started;
    int done;                  /* found: the item is [0, pos) */
};

struct felix_rec_reader {
    felix_rec_header hdr;
    int fd, own_fd, seekable, eof, ended;
    int checked;               /* the header carried its check: every item must */
    int last_key;              /* the last sample read was a key sample */
    int scan_ended;            /* the last scan met the end item */
    int index_rebuilt;         /* the index was found wrong and rebuilt */
    uint64_t data_end;         /* where the last scan met the end item */
    int last_check;            /* check_item() of the last item framed */
    int crc_kind;              /* which CRC items carry (CRC_EITHER until the header is read) */
    char warning[320];         /* damage worked around (felix_rec_reader_warning) */
    int64_t last_mono;         /* the last sample's time, for order */
    ZSTD_DCtx *dctx;           /* static: in dctx_mem, so it never allocates */
    void *dctx_mem;
    unsigned char *in;
    size_t in_cap, in_pos, in_len;
    uint64_t in_off;
    unsigned char *d;
    size_t d_cap, d_pos, d_len;
    uint64_t d_base;           /* absolute decompressed offset of d[0] */
    int in_frame;
    size_t zerr;               /* a zstd error met after some output */
    size_t hint;               /* input the decoder wants next */
    uint64_t frame_start;
    struct frame_mark marks[8];
    unsigned nmarks;
    struct framing fr;
    /* state */
    unsigned slot, nwords;
    felix_snapshot *prev, *cur;
    int in_chunk, have_prev;
    int have_pending;          /* prev, read already, is the next sample to hand out */
    fx_extras ex;               /* names and CPU times, aligned to prev */
    long *link;                 /* per thread of cur: its index in prev, or -1 */
    fx_row_id *ids;             /* per thread of a thread block */
    uint32_t *kept;             /* per thread of cur: its row in the block */
    unsigned *colhdr, *colhdr_next; /* per word: its column's last header in the chunk */
    size_t colhdr_cap, colhdr_next_cap;
    int colhdr_valid;           /* colhdr holds the last sample's (a format-2 block was read) */
    uint32_t new_tid, new_off;  /* the chunk's last new thread's TID and slot offset */
    uint64_t *slotmap;          /* slots held, for free-slot offsets */
    size_t slotmap_cap;
    char recent[FX_RECENT_NAMES][FX_NAME_LEN], recent_next[FX_RECENT_NAMES][FX_NAME_LEN];
    unsigned nrecent;           /* the chunk's recent thread names, most recent first */
    unsigned char *used;        /* per thread of prev: linked to */
    struct { int kind; uint32_t tid; } *evq; /* thread events the last sample's links say */
    size_t link_cap, ids_cap, kept_cap, used_cap, evq_cap, nev, evpos;
    fx_deltas dl;              /* last word deltas, aligned to prev */
    int64_t key_wall, key_t;
    int have_key_wall;
    int64_t last_t, last_dt;   /* the last sample's time (key 1, decoded) and interval */
    int have_dt;
    uint32_t seg_head, seg_size, seg_real;
    int64_t sample_no;
    uint64_t item_frame;       /* file offset of the frame holding the last item */
    /* index */
    int index_state;           /* 0 not tried, 1 loaded */
    struct chunk *chunks;
    size_t nchunks, chunks_cap;
    uint64_t total_samples;
    char (*regions)[48];
    size_t nregions;
    const char *region_ptrs[FELIX_MEM_MAX_REGIONS];
};

/* Format 2's signed varints are zigzag-coded. */
static inline uint64_t fx_unzigzag(uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }

static inline uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- CBOR, decoded in place ----
 * Nothing is built per item: framing walks an item's heads once to find its
 * end (and bounds its nesting and counts); parsing then reads the values it
 * needs straight from the bytes, a head at a time. */

enum { M_UINT, M_NEG, M_BYTES, M_STR, M_ARR, M_MAP, M_TAG, M_SIMPLE, M_BAD = 0xff };

struct head {
    unsigned major;
    uint64_t v;              /* value, length or count (simple: 20 false, 21 true) */
    const unsigned char *s;  /* strings: their bytes */
};

enum { H_OK = 1, H_MORE = 0, H_BAD = -1 };

/* The head at *pp (bytes up to end): H_OK with *pp past it (and past a
 * string's bytes), H_MORE when the bytes end first, H_BAD when malformed. */
static int get_head(const unsigned char **pp, const unsigned char *end, struct head *h)
{
    const unsigned char *p = *pp;
    if (p >= end)
        return H_MORE;
    unsigned ib = *p++, ai = ib & 31;
    uint64_t v = ai;
    if (ai >= 24) {
        if (ai > 27)
            return H_BAD; /* reserved, or an indefinite length: never written */
        size_t n = (size_t)1 << (ai - 24);
        if ((size_t)(end - p) < n)
            return H_MORE;
        for (v = 0; n--; p++)
            v = v << 8 | *p;
    }
    h->major = ib >> 5;
    h->v = v;
    h->s = NULL;
    if (h->major == M_BYTES || h->major == M_STR) {
        if (v > MAX_ITEM)
            return H_BAD;
        if (v > (uint64_t)(end - p))
            return H_MORE;
        h->s = p;
        p += v;
    }
    *pp = p;
    return H_OK;
}

enum { TK_DONE, TK_MORE, TK_BAD };

/* Continue finding the end of the item at buf (len bytes there so far).
 * TK_DONE sets *used; TK_MORE: call again with more bytes. */
static int frame_item(struct framing *f, const unsigned char *buf, size_t len, size_t *used)
{
    const unsigned char *end = buf + (len < MAX_ITEM ? len : MAX_ITEM);
    const unsigned char *p = buf + f->pos;
    if (f->done) { /* asked again (the last call on it failed) */
        *used = f->pos;
        return TK_DONE;
    }
    for (;;) {
        if (f->sp == 1 && f->top_map && f->left[0] % 2 == 0)
            f->last_key = (size_t)(p - buf);
        struct head h;
        int k = get_head(&p, end, &h);
        if (k == H_BAD)
            return TK_BAD;
        if (k == H_MORE)
            return len >= MAX_ITEM ? TK_BAD : TK_MORE; /* an item larger than MAX_ITEM */
        f->pos = (size_t)(p - buf);
        if (!f->started) {
            f->started = 1;
            f->top_map = h.major == M_MAP;
        }
        if (h.major == M_TAG)
            continue; /* a tag prefixes the next item */
        if ((h.major == M_ARR || h.major == M_MAP) && h.v > 0) {
            /* Every child takes a byte at least. */
            if (f->sp == MAX_DEPTH || h.v > MAX_ITEM)
                return TK_BAD;
            f->left[f->sp++] = h.major == M_MAP ? h.v * 2 : h.v;
            continue;
        }
        while (f->sp > 0 && --f->left[f->sp - 1] == 0)
            f->sp--;
        if (f->sp == 0) {
            *used = f->pos;
            f->done = 1;
            return TK_DONE;
        }
    }
}

/* A cursor over a framed item: reading past its end, or a malformed head,
 * sets bad and yields M_BAD heads from then on. */
struct cur {
    const unsigned char *p, *end;
    int bad;
};

static struct head next_head(struct cur *c)
{
    struct head h;
    if (c->bad || get_head(&c->p, c->end, &h) != H_OK) {
        c->bad = 1;
        h.major = M_BAD;
        h.v = 0;
        h.s = NULL;
    }
    return h;
}

/* Skip one whole value (tags, containers and all). */
static void skip_value(struct cur *c)
{
    uint64_t todo = 1;
    while (todo && !c->bad) {
        struct head h = next_head(c);
        todo--;
        if (h.major == M_ARR)
            todo += h.v;
        else if (h.major == M_MAP)
            todo += h.v * 2;
        else if (h.major == M_TAG)
            todo++;
        if (todo > (uint64_t)(c->end - c->p)) /* more children than bytes */
            c->bad = 1;
    }
}

/* The head of the value at c when its major type is one of mask (bits
 * 1 << M_*): 0 with c past the head. Otherwise -1 with the value skipped. */
static int take(struct cur *c, unsigned mask, struct head *h)
{
    const unsigned char *at = c->p;
    *h = next_head(c);
    if (h->major != M_BAD && (mask >> h->major & 1))
        return 0;
    c->p = at;
    if (!c->bad)
        skip_value(c);
    return -1;
}

#define INTS (1u << M_UINT | 1u << M_NEG)

/* The value at c as an integer: unsigned, signed, or taken modulo 2^64
 * (delta-coded words). Each consumes the value; -1 when it is not one. */
static int get_uint(struct cur *c, uint64_t *v)
{
    struct head h;
    if (take(c, 1u << M_UINT, &h) < 0)
        return -1;
    *v = h.v;
    return 0;
}

static int get_word(struct cur *c, uint64_t *v)
{
    struct head h;
    if (take(c, INTS, &h) < 0)
        return -1;
    *v = h.major == M_UINT ? h.v : ~h.v;
    return 0;
}

static int get_int(struct cur *c, int64_t *v)
{
    struct head h;
    if (take(c, INTS, &h) < 0 || h.v > (uint64_t)INT64_MAX)
        return -1;
    *v = h.major == M_UINT ? (int64_t)h.v : -1 - (int64_t)h.v;
    return 0;
}

/* A string into buf (cut to fit, NUL-terminated, control bytes made '?'):
 * a byte string (format 2) or a text string (format 1, where it may not be
 * UTF-8 either); -1 and buf untouched when the value is neither. */
static int get_str(struct cur *c, char *buf, size_t cap)
{
    struct head h;
    if (take(c, 1u << M_STR | 1u << M_BYTES, &h) < 0 || cap == 0)
        return -1;
    size_t n = h.v < cap - 1 ? (size_t)h.v : cap - 1;
    memcpy(buf, h.s, n);
    buf[n] = '\0';
    for (size_t k = 0; k < n; k++) /* no control bytes reach callers */
        if ((unsigned char)buf[k] < 0x20)
            buf[k] = '?';
    return 0;
}

/* An array's head: its length, or -1 (and the value skipped) when the
 * value is not an array. */
static int get_arr(struct cur *c, uint64_t *n)
{
    struct head h;
    if (take(c, 1u << M_ARR, &h) < 0)
        return -1;
    *n = h.v;
    return 0;
}

/* An item's top-level keys: where the value of each key below nkeys starts
 * (NULL: absent; a repeated key's last value counts). -1 when the item is
 * not a map with integer keys. */
#define NKEYS 24
static int item_keys(const unsigned char *item, size_t used, const unsigned char *at[NKEYS])
{
    memset(at, 0, NKEYS * sizeof *at);
    struct cur c = {item, item + used, 0};
    struct head h = next_head(&c);
    if (h.major != M_MAP)
        return -1;
    for (uint64_t k = 0; k < h.v && !c.bad; k++) {
        uint64_t key;
        if (get_uint(&c, &key) < 0)
            return -1;
        if (key < NKEYS)
            at[key] = c.p;
        skip_value(&c);
    }
    return c.bad ? -1 : 0;
}

/* A cursor at key's value (absent keys: an empty cursor, where every read fails). */
static struct cur at_key(const unsigned char *const at[NKEYS], unsigned key, const unsigned char *item, size_t used)
{
    struct cur c = {at[key] ? at[key] : item + used, item + used, at[key] == NULL};
    return c;
}

/* ---- input ---- */

static uint64_t item_offset_hint(const felix_rec_reader *r) { return r->item_frame; }

static int corrupt(felix_rec_reader *r, const char *what)
{
    return fx_fail(FELIX_ECORRUPT, "recording corrupt at byte %llu (in the frame starting at byte %llu): %s",
                   (unsigned long long)(r->in_off + r->in_pos), (unsigned long long)item_offset_hint(r), what);
}

/* Decompress more into d. Returns 0 on progress, FELIX_EEOF at the end of
 * input, FELIX_EAGAIN when a non-blocking input has nothing yet. */
static int pump(felix_rec_reader *r)
{
    if (r->zerr) {
        r->item_frame = r->frame_start;
        return corrupt(r, ZSTD_getErrorName(r->zerr));
    }
    if (r->d_pos > 0) {
        memmove(r->d, r->d + r->d_pos, r->d_len - r->d_pos);
        r->d_base += r->d_pos;
        r->d_len -= r->d_pos;
        r->d_pos = 0;
    }
    if (r->d_len == r->d_cap) {
        if (r->d_cap >= MAX_ITEM)
            return corrupt(r, "an item larger than 8 MiB");
        int rc = fx_grow((void **)&r->d, &r->d_cap, r->d_cap + 1, 1);
        if (rc < 0)
            return rc;
    }
    for (;;) {
        if (r->in_pos == r->in_len) {
            /* Not sticky: a file still being written may have grown. */
            ssize_t n = read(r->fd, r->in, r->in_cap);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return FELIX_EAGAIN;
            if (n < 0)
                return fx_fail(FELIX_EIO, "cannot read the recording: %s", strerror(errno));
            r->in_off += r->in_len;
            r->in_len = (size_t)n;
            r->in_pos = 0;
            if (n == 0) {
                r->eof = 1;
                return FELIX_EEOF;
            }
        }
        if (!r->in_frame)
            r->frame_start = r->in_off + r->in_pos;
        /* Feed at most what the decoder asked for (the next block), so each
         * block's output arrives before a later damaged block's error. */
        size_t end = r->in_len - r->in_pos > r->hint ? r->in_pos + r->hint : r->in_len;
        ZSTD_inBuffer in = {r->in, end, r->in_pos};
        ZSTD_outBuffer out = {r->d + r->d_len, r->d_cap - r->d_len, 0};
        size_t ret = ZSTD_decompressStream(r->dctx, &out, &in);
        if (ZSTD_isError(ret)) {
            /* Keep what decoded before the damage; report it next time. */
            r->zerr = ret;
            r->d_len += out.pos;
            if (out.pos > 0)
                return 0;
            r->item_frame = r->frame_start;
            return corrupt(r, ZSTD_getErrorName(ret));
        }
        if (!r->in_frame && (in.pos > r->in_pos || out.pos > 0)) {
            struct frame_mark *m = &r->marks[r->nmarks++ % 8];
            m->dpos = r->d_base + r->d_len;
            m->offset = r->frame_start;
        }
        r->in_frame = ret != 0;
        r->hint = ret ? ret : 32; /* after a frame: the next one's header */
        r->in_pos = in.pos;
        r->d_len += out.pos;
        if (out.pos > 0)
            return 0;
    }
}

/* The file offset of the frame holding decompressed offset abs. */
static uint64_t frame_of(const felix_rec_reader *r, uint64_t abs)
{
    uint64_t best = r->frame_start;
    uint64_t best_pos = 0;
    int found = 0;
    for (unsigned i = 0; i < 8 && i < r->nmarks; i++) {
        const struct frame_mark *m = &r->marks[i];
        if (m->dpos <= abs && (!found || m->dpos >= best_pos)) {
            best = m->offset;
            best_pos = m->dpos;
            found = 1;
        }
    }
    return best;
}

/* The item's check (key 23 as the map's last pair, a 5-byte unsigned):
 * CHECK_GOOD, CHECK_ABSENT, or CHECK_BAD (a mismatch). kind: the format's
 * CRC (CRC_IEEE in format 1, CRC_C in 2), or CRC_EITHER for the header,
 * read before the format version is known. */
enum { CHECK_BAD = 0, CHECK_ABSENT = 1, CHECK_GOOD = 2 };
enum { CRC_EITHER = 0, CRC_IEEE = 1, CRC_C = 2 };
static int check_item(const struct framing *f, const unsigned char *buf, size_t used, int kind)
{
    if (!f->top_map || used < 7 || f->last_key != used - 6 || buf[used - 6] != FX_KEY_CHECK || buf[used - 5] != 0x1a)
        return CHECK_ABSENT;
    uint32_t want = (uint32_t)buf[used - 4] << 24 | (uint32_t)buf[used - 3] << 16 | (uint32_t)buf[used - 2] << 8 |
                    buf[used - 1];
    if (kind != CRC_IEEE && fx_crc32c(buf, used - 6) == want)
        return CHECK_GOOD;
    return kind != CRC_C && fx_crc32(buf, used - 6) == want ? CHECK_GOOD : CHECK_BAD;
}

/* Frame a whole item held in buf (an index). */
static int frame_whole(const unsigned char *buf, size_t len, size_t *used, int *check, int kind)
{
    struct framing f;
    memset(&f, 0, sizeof f);
    if (frame_item(&f, buf, len, used) != TK_DONE)
        return -1;
    *check = check_item(&f, buf, *used, kind);
    return 0;
}

/* The next whole item, checked: *item and *used; it stays in place until
 * consume(), so a call that fails (out of memory) can be tried again.
 * Returns 0, FELIX_EEOF, or an error. */
static int next_item(felix_rec_reader *r, const unsigned char **item, size_t *used)
{
    for (;;) {
        int tk = r->d_pos < r->d_len ? frame_item(&r->fr, r->d + r->d_pos, r->d_len - r->d_pos, used) : TK_MORE;
        if (tk == TK_DONE) {
            r->item_frame = frame_of(r, r->d_base + r->d_pos);
            /* A writer that checks its header checks every item: then a
             * missing check is damage too (a flipped bit in key 23). */
            int ck = check_item(&r->fr, r->d + r->d_pos, *used, r->crc_kind);
            if (ck == CHECK_BAD || (ck == CHECK_ABSENT && r->checked))
                return fx_fail(FELIX_ECORRUPT,
                               "recording corrupt: item check %s at decompressed byte %llu (in the frame starting at byte %llu)",
                               ck == CHECK_BAD ? "failed" : "missing", (unsigned long long)(r->d_base + r->d_pos),
                               (unsigned long long)r->item_frame);
            r->last_check = ck;
            *item = r->d + r->d_pos;
            return 0;
        }
        if (tk == TK_BAD) {
            r->item_frame = frame_of(r, r->d_base + r->d_pos);
            return fx_fail(FELIX_ECORRUPT,
                           "recording corrupt: malformed CBOR item at decompressed byte %llu (in the frame starting at byte %llu)",
                           (unsigned long long)(r->d_base + r->d_pos), (unsigned long long)r->item_frame);
        }
        int rc = pump(r);
        if (rc == FELIX_EEOF) {
            /* Cut before its end item: never closed (a killed recorder, a
             * full disk, a copy taken while recording). Every whole item
             * before the cut was read. */
            if (!r->ended || r->d_pos < r->d_len || r->in_frame)
                return fx_fail(FELIX_ETRUNC,
                               "recording ends at byte %llu without its end item (it was not closed: the recorder was "
                               "killed, the disk filled, or it is still being written); everything before was read",
                               (unsigned long long)(r->in_off + r->in_len));
            return FELIX_EEOF;
        }
        if (rc < 0)
            return rc;
    }
}

/* Done with the item next_item() gave. */
static void consume(felix_rec_reader *r, size_t used)
{
    r->d_pos += used;
    memset(&r->fr, 0, sizeof r->fr);
}

/* ---- items ---- */

/* An item's type (key 0, which items we write put first); -1 for a CBOR
 * item that is not one of ours (skipped). */
static int64_t item_type(const unsigned char *item, size_t used)
{
    struct cur c = {item, item + used, 0};
    struct head h = next_head(&c);
    uint64_t key, type;
    if (h.major != M_MAP || h.v == 0 || get_uint(&c, &key) < 0 || key != 0 || get_uint(&c, &type) < 0 ||
        type > INT32_MAX)
        return -1;
    return (int64_t)type;
}

static int parse_header(felix_rec_reader *r, const unsigned char *item, size_t used)
{
    const unsigned char *at[NKEYS];
    if (item_keys(item, used, at) < 0)
        return fx_fail(FELIX_ECORRUPT, "not a felix recording: the first item is not a header");
    felix_rec_header *h = &r->hdr;
    memset(h, 0, sizeof *h);
    h->version = FELIX_REC_HEADER_VERSION;
    uint64_t type = 99, v;
    int64_t sv;
    char name[32] = "";
    struct cur c;
#define KEY(k) (c = at_key(at, k, item, used), &c)
    if (get_uint(KEY(FX_KEY_TYPE), &type) < 0)
        type = 99;
    get_str(KEY(FX_H_FORMAT), name, sizeof name);
    if (get_uint(KEY(FX_H_VERSION), &v) == 0)
        h->format_version = (uint32_t)(v > UINT32_MAX ? UINT32_MAX : v);
    get_str(KEY(FX_H_LIBFELIX), h->felix_version, sizeof h->felix_version);
    get_str(KEY(FX_H_HOST), h->host, sizeof h->host);
    if (get_uint(KEY(FX_H_NCPUS), &v) == 0)
        h->ncpus = (uint32_t)v;
    if (get_uint(KEY(FX_H_FREQ), &v) == 0)
        h->freq_hz = v;
    get_str(KEY(FX_H_FREQ_SOURCE), h->freq_source, sizeof h->freq_source);
    if (get_uint(KEY(FX_H_PAGE_SIZE), &v) == 0)
        h->page_size = (uint32_t)v;
    if (get_uint(KEY(FX_H_PID), &v) == 0)
        h->pid = (int32_t)v;
    get_str(KEY(FX_H_CMDLINE), h->cmdline, sizeof h->cmdline);
    get_str(KEY(FX_H_FEX_VERSION), h->fex_version, sizeof h->fex_version);
    if (get_uint(KEY(FX_H_APP_TYPE), &v) == 0)
        h->app_type = (uint8_t)v;
    if (get_uint(KEY(FX_H_STATS_VERSION), &v) == 0)
        h->stats_version = (uint8_t)v;
    if (get_uint(KEY(FX_H_TSS), &v) == 0)
        h->thread_stats_size = (uint16_t)(v > 0xffff ? 1 : v); /* 1: invalid */
    if (get_int(KEY(FX_H_START_WALL), &sv) == 0)
        h->start_wall_ns = sv;
    if (get_int(KEY(FX_H_START_MONO), &sv) == 0)
        h->start_mono_ns = sv;
    if (get_uint(KEY(FX_H_INTERVAL), &v) == 0)
        h->interval_ns = (int64_t)(v > INT64_MAX ? 0 : v);
    get_str(KEY(FX_H_NAME), h->name, sizeof h->name);
    if (get_int(KEY(FX_H_START_BOOT), &sv) == 0 && sv > 0)
        h->start_boot_ns = sv;
#undef KEY
    if (type != FX_ITEM_HEADER || strcmp(name, FX_REC_FORMAT_NAME) != 0)
        return fx_fail(FELIX_ECORRUPT, "not a felix recording (no felix-recording header)");
    if (h->format_version > FELIX_REC_FORMAT_VERSION)
        return fx_fail(FELIX_EVERSION, "recording format version %u; this libfelix reads up to version %d",
                       h->format_version, FELIX_REC_FORMAT_VERSION);
    r->slot = felix_slot_size_valid(h->thread_stats_size);
    if (!r->slot)
        return fx_fail(FELIX_ECORRUPT, "recording header: ThreadStatsSize %u is invalid", h->thread_stats_size);
    if (h->freq_hz == 0)
        return fx_fail(FELIX_ECORRUPT, "recording header: cycle-counter frequency is 0");
    r->nwords = r->slot / 8 - 1;
    r->crc_kind = h->format_version >= 2 ? CRC_C : CRC_IEEE;
    return 0;
}

static int bad_item(felix_rec_reader *r, const char *what)
{
    return fx_fail(FELIX_ECORRUPT, "recording corrupt: %s in sample %lld (in the frame starting at byte %llu)", what,
                   (long long)(r->sample_no + 1), (unsigned long long)r->item_frame);
}

/* What a parsed sample changes in the reader, applied by commit_sample(). */
struct sample_state {
    int key;
    int64_t mono, wall, t;
    uint32_t seg_head, seg_size, seg_real;
    size_t nev;                /* thread events the sample's links say (format 2) */
    int in_order;              /* format 2: every thread is the previous sample's, in its place */
    int64_t t_rel, dt;         /* its time (key 1, decoded) and the interval before it */
    unsigned ncolhdr;          /* format 2: words whose column headers were parsed */
    uint32_t new_tid, new_off; /* format 2: the chunk's last new thread's TID and slot offset */
    int names;                 /* format 2: a names block was read (recent_next holds the new list) */
    unsigned nrecent;
};

/* A varint of format 2's thread block (unsigned LEB128, at most 10 bytes). */
static inline int get_varint(const unsigned char **pp, const unsigned char *end, uint64_t *v)
{
    const unsigned char *p = *pp;
    if (p < end && *p < 0x80) {
        *v = *p;
        *pp = p + 1;
        return 0;
    }
    uint64_t x = 0;
    for (unsigned sh = 0; sh < 70 && p < end; sh += 7) {
        unsigned byte = *p++;
        if (sh == 63 && byte > 1)
            return -1;
        x |= (uint64_t)(byte & 0x7f) << sh;
        if (!(byte & 0x80)) {
            *v = x;
            *pp = p;
            return 0;
        }
    }
    return -1;
}

/* Version 1's thread list: [* [tid, * word]], each word absolute, a delta
 * or a second difference, found by TID in prev. */
static int parse_threads_v1(felix_rec_reader *r, felix_snapshot *s, struct cur *threads, uint64_t nthr,
                            unsigned nwords, int delta)
{
    int rc;
    for (uint64_t n = 0; n < nthr; n++) {
        uint64_t m, tid;
        if (get_arr(threads, &m) < 0 || m < 1)
            return bad_item(r, "a thread that is not an array");
        if (get_uint(threads, &tid) < 0 || tid == 0 || tid > UINT32_MAX)
            return bad_item(r, "a bad thread id");
        m--;
        long pj = delta ? felix_snapshot_index(r->prev, (uint32_t)tid) : -1;
        size_t at = felix_snapshot_get_info(s)->nthreads;
        const uint64_t *pd = pj >= 0 && r->dl.has[pj] ? fx_delta_prev(&r->dl, (size_t)pj) : NULL;
        const uint64_t *pa = pj >= 0 ? r->dl.a + (size_t)pj * nwords : NULL;
        uint64_t *nd = fx_delta_next(&r->dl, at), *w = r->dl.anext + at * nwords;
        for (uint64_t k = 0; k < nwords || k < m; k++) {
            uint64_t v = 0;
            if (k < m && get_word(threads, &v) < 0)
                return bad_item(r, "a counter that is not an integer");
            if (k >= nwords)
                continue; /* more words than the layout: ignored */
            if (pa) {
                nd[k] = pd ? pd[k] + v : v; /* this sample's delta */
                w[k] = pa[k] + nd[k];
            } else {
                w[k] = v;
            }
        }
        if ((rc = felix_snapshot_append(s, (uint32_t)tid, 0, w, nwords)) < 0)
            return rc;
        if (felix_snapshot_get_info(s)->nthreads > at) { /* not a dropped duplicate */
            r->dl.next_has[at] = pj >= 0;
            r->link[at] = -1; /* names and CPU times are found by TID */
        }
    }
    if (threads->bad)
        return bad_item(r, "a malformed thread list");
    return 0;
}

/* Format 2's bit columns, read LSB first at bit position pos of a block of
 * len bytes: peek gives at least 57 bits there (bits past the end read as
 * 0, and pos > 8 * len afterwards says the block was short: damage). */
static inline uint64_t peek_bits(const unsigned char *b, size_t len, uint64_t pos)
{
    size_t at = (size_t)(pos >> 3);
    uint64_t v = 0;
    if (at + 8 <= len)
        memcpy(&v, b + at, 8); /* little-endian hosts (as fx_crc32) */
    else if (at < len)
        memcpy(&v, b + at, len - at);
    return v >> (pos & 7);
}

static inline uint64_t get_bits(const unsigned char *b, size_t len, uint64_t *pos, unsigned n) /* n <= 64 */
{
    if (n == 0)
        return 0;
    uint64_t v = peek_bits(b, len, *pos);
    if (n > 56) {
        v &= (1ull << 32) - 1;
        *pos += 32;
        return v | get_bits(b, len, pos, n - 32) << 32;
    }
    *pos += n;
    return v & (~0ull >> (64 - n));
}

/* One Rice-coded value with parameter p (docs: "Bit columns"). */
__attribute__((always_inline)) static inline uint64_t rice_get(const unsigned char *b, size_t len, uint64_t *pos, unsigned p)
{
    uint64_t v = peek_bits(b, len, *pos);
    if ((v & ((1u << FX_RICE_MAXQ) - 1)) == 0) { /* escape: a length, then the bits */
        *pos += FX_RICE_MAXQ;
        unsigned L = (unsigned)get_bits(b, len, pos, 6) + 1;
        return get_bits(b, len, pos, L);
    }
    unsigned q = (unsigned)__builtin_ctzll(v);
    if (q + 1 + p <= 57) { /* the common case: one peek */
        *pos += q + 1 + p;
        return (uint64_t)q << p | ((v >> (q + 1)) & ~(~0ull << p));
    }
    *pos += q + 1;
    return (uint64_t)q << p | get_bits(b, len, pos, p);
}

/* Version 2's thread block (docs/recording-format.md, "Thread block"):
 * how threads link to prev's, the new threads' TIDs, offsets and words,
 * then per word the Rice-coded bit columns of the linked threads' second
 * differences and first deltas. Also lists the thread events the links say. */
static int parse_threads_v2(felix_rec_reader *r, felix_snapshot *s, const unsigned char *p, const unsigned char *end,
                            unsigned slot, unsigned nwords, int delta, int restart, struct sample_state *st)
{
    uint64_t n, mode;
    if (get_varint(&p, end, &n) < 0 || get_varint(&p, end, &mode) < 0 || mode > FX_LINKS_LISTED)
        return bad_item(r, "a thread block without a count");
    /* Never more threads than the block can name: a bit each (a link, or a
     * new thread's TID, which cannot be 0), or the previous sample's count. */
    size_t nprev = delta ? felix_snapshot_get_info(r->prev)->nthreads : 0;
    uint64_t room = (uint64_t)(end - p);
    if (mode == FX_LINKS_IN_ORDER ? n != nprev : n > room * 8)
        return bad_item(r, "a thread count larger than the item");
    if (n * slot > FX_MAX_SAMPLE_SLOTS || n > FX_MAX_SAMPLE_THREADS)
        return bad_item(r, "more threads than a statistics segment holds");
    if (mode != FX_LINKS_NONE && !delta)
        return bad_item(r, "links in a sample that is not delta-coded");
    int rc;
    if ((rc = fx_grow_deltas(&r->dl, (size_t)n, nwords)) < 0 ||
        (rc = fx_grow((void **)&r->link, &r->link_cap, n ? n : 1, sizeof *r->link)) < 0 ||
        (rc = fx_grow((void **)&r->ids, &r->ids_cap, n ? n : 1, sizeof *r->ids)) < 0 ||
        (rc = fx_grow((void **)&r->kept, &r->kept_cap, n ? n : 1, sizeof *r->kept)) < 0 ||
        (rc = fx_grow((void **)&r->colhdr, &r->colhdr_cap, FX_NCOLUMNS(nwords), sizeof *r->colhdr)) < 0 ||
        (rc = fx_grow((void **)&r->colhdr_next, &r->colhdr_next_cap, FX_NCOLUMNS(nwords), sizeof *r->colhdr_next)) <
            0 ||
        (rc = fx_grow((void **)&r->used, &r->used_cap, nprev ? nprev : 1, 1)) < 0 ||
        (rc = fx_grow((void **)&r->slotmap, &r->slotmap_cap, FX_SLOTMAP_WORDS(slot), sizeof *r->slotmap)) < 0 ||
        (rc = fx_grow((void **)&r->evq, &r->evq_cap, nprev + n + 1, sizeof *r->evq)) < 0)
        return rc;
    memset(r->used, mode == FX_LINKS_IN_ORDER, nprev);
    long *link = r->link;
    fx_deltas *dl = &r->dl;
    const unsigned char *const has = dl->has;
    const size_t blen = (size_t)(end - p);
    uint64_t pos = 0, cursor = 0, nlinked = 0, nfirst = 0;
    /* Links: 1 (prev's thread after the last one linked), 01 (new), or 00
     * and a Rice-coded distance. */
    for (uint64_t i = 0; i < n; i++) {
        if (mode != FX_LINKS_LISTED) {
            link[i] = mode == FX_LINKS_IN_ORDER ? (long)i : -1;
            continue;
        }
        uint64_t j = cursor;
        if (!get_bits(p, blen, &pos, 1)) {
            if (get_bits(p, blen, &pos, 1)) {
                link[i] = -1;
                continue;
            }
            j = cursor + fx_unzigzag(rice_get(p, blen, &pos, FX_LINK_RICE) + 1); /* modulo 2^64: checked below */
        }
        if (j >= nprev || r->used[j] || pos > (uint64_t)blen * 8)
            return bad_item(r, "a thread linked to no thread, or twice");
        r->used[j] = 1;
        link[i] = (long)j;
        cursor = j + 1;
    }
    const felix_thread *pt = nprev ? fx_snapshot_threads(r->prev) : NULL;
    for (uint64_t i = 0; i < n; i++) {
        if (link[i] >= 0) {
            const felix_thread *t = &pt[link[i]];
            r->ids[i].tid = t->tid;
            r->ids[i].offset = t->offset;
            nlinked++;
            nfirst += !has[link[i]];
        }
    }
    /* Each column's header of the last sample: parsed into colhdr_next,
     * which commit_sample makes the reader's (the order of FX_NCOLUMNS). */
    unsigned *colhdr = r->colhdr_next;
    for (size_t k = 0; k < FX_NCOLUMNS(nwords); k++)
        colhdr[k] = (mode == FX_LINKS_NONE && !delta) || !r->colhdr_valid ? FX_COL_NONE : r->colhdr[k];
#define COLUMN_HEADER(slot)                                                                                           \
    unsigned hdr = get_bits(p, blen, &pos, 1) ? colhdr[slot] : (unsigned)get_bits(p, blen, &pos, 8), rp = hdr & 63; \
    if (hdr == FX_COL_NONE)                                                                                          \
        return bad_item(r, "a column that repeats a header it does not have");                                      \
    colhdr[slot] = hdr;                                                                                              \
    const int zf = (hdr & FX_COL_ZEROS) != 0
#define COLUMN_VALUE(d)                                                                                                \
    do {                                                                                                               \
        uint64_t z_ = 0;                                                                                               \
        if (rp != FX_RICE_ZERO && !(zf && get_bits(p, blen, &pos, 1)))                                                 \
            z_ = rice_get(p, blen, &pos, rp) + (uint64_t)zf;                                                           \
        (d) += z_;                                                                                                     \
    } while (0)
    /* New threads: TIDs and offsets as differences from the chunk's last
     * new thread's, then their words, absolute or as differences. */
    uint32_t new_id[2] = {restart ? 0 : r->new_tid, restart ? 0 : r->new_off};
    for (unsigned c = 0; nlinked < n && c < nwords + 2; c++) {
        COLUMN_HEADER(nwords + c);
        const int across = (hdr & FX_COL_FIRST) != 0;
        if (c == 0 && across)
            return bad_item(r, "a thread id column in a mode it does not have");
        uint64_t last = c < 2 ? new_id[c] : 0;
        if (c == 1 && across) { /* free-slot mode: ranks among the slots no thread holds */
            uint64_t *map = r->slotmap;
            const uint32_t nidx = FX_SLOT_INDEXES(slot);
            memset(map, 0, FX_SLOTMAP_WORDS(slot) * sizeof *map);
            for (uint64_t i = 0; i < n; i++) {
                uint32_t x;
                if (link[i] >= 0 && fx_slot_index(r->ids[i].offset, slot, &x))
                    fx_slot_hold(map, x);
            }
            uint32_t lowest = 0;
            for (uint64_t i = 0; i < n; i++) {
                if (link[i] >= 0)
                    continue;
                uint64_t v = 0;
                COLUMN_VALUE(v);
                while (lowest < nidx && fx_slot_held(map, lowest))
                    lowest++;
                uint32_t x = lowest;
                while (x < nidx && (v || fx_slot_held(map, x))) { /* the v-th free slot */
                    if (x % 64 == 0 && map[x / 64] == 0 && v >= 64 && x + 64 <= nidx)
                        v -= 64, x += 64;
                    else
                        v -= !fx_slot_held(map, x), x++;
                }
                if (x >= nidx || pos > (uint64_t)blen * 8)
                    return bad_item(r, "a slot offset past the segment");
                fx_slot_hold(map, x);
                r->ids[i].offset = last = 64 + x * slot;
            }
            new_id[1] = (uint32_t)last;
            continue;
        }
        for (uint64_t i = 0; i < n; i++) {
            if (link[i] >= 0)
                continue;
            uint64_t val = 0;
            COLUMN_VALUE(val);
            if (c >= 2) {
                last = dl->anext[i * nwords + c - 2] = across ? last + fx_unzigzag(val) : val;
                continue;
            }
            last += fx_unzigzag(val);
            if (c == 0 ? last == 0 || last > UINT32_MAX : last > UINT32_MAX)
                return bad_item(r, "a bad thread id or slot offset");
            if (c == 0)
                r->ids[i].tid = (uint32_t)last;
            else
                r->ids[i].offset = (uint32_t)last;
        }
        if (c < 2)
            new_id[c] = (uint32_t)last;
        if (pos > (uint64_t)blen * 8)
            return bad_item(r, "a truncated thread block");
    }
    st->new_tid = new_id[0], st->new_off = new_id[1];
    const uint64_t *const D = dl->d, *const A = dl->a;
    uint64_t *const W = dl->anext, *const ND = dl->next;
    for (unsigned k = 0; nlinked && k < nwords; k++) {
        if (nfirst < nlinked) { /* threads whose previous sample had a delta */
            COLUMN_HEADER(k);
            const int second = !(hdr & FX_COL_FIRST);
            if (mode == FX_LINKS_IN_ORDER && !nfirst && rp == FX_RICE_ZERO) { /* the steady state */
                for (size_t i = 0, at = k; i < n; i++, at += nwords) {
                    uint64_t d = D[at] & (0 - (uint64_t)second);
                    ND[at] = d;
                    W[at] = A[at] + d;
                }
            } else if (mode == FX_LINKS_IN_ORDER && !nfirst && !zf) { /* thread i is prev's i; plain Rice */
                for (size_t i = 0, at = k; i < n; i++, at += nwords) {
                    uint64_t d = fx_unzigzag(rice_get(p, blen, &pos, rp)) + (D[at] & (0 - (uint64_t)second));
                    ND[at] = d;
                    W[at] = A[at] + d;
                }
            } else {
                for (size_t i = 0, at = k; i < n; i++, at += nwords) {
                    long j = link[i];
                    if (j < 0 || !has[j])
                        continue;
                    size_t pj = (size_t)j * nwords + k;
                    uint64_t d = 0;
                    COLUMN_VALUE(d);
                    d = fx_unzigzag(d) + (second ? D[pj] : 0);
                    ND[at] = d;
                    W[at] = A[pj] + d;
                }
            }
            if (pos > (uint64_t)blen * 8)
                return bad_item(r, "a truncated thread block");
        }
        if (nfirst) { /* the others: their first deltas */
            COLUMN_HEADER(2 * nwords + 2 + k);
            const int across = (hdr & FX_COL_FIRST) != 0;
            uint64_t last = 0;
            for (size_t i = 0, at = k; i < n; i++, at += nwords) {
                long j = link[i];
                if (j < 0 || has[j])
                    continue;
                uint64_t d = 0;
                COLUMN_VALUE(d);
                d = fx_unzigzag(d) + (across ? last : 0);
                last = d;
                ND[at] = d;
                W[at] = A[(size_t)j * nwords + k] + d;
            }
            if (pos > (uint64_t)blen * 8)
                return bad_item(r, "a truncated thread block");
        }
    }
#undef COLUMN_HEADER
#undef COLUMN_VALUE
    /* Bytes after the last column are reserved: ignored. */
    if ((rc = fx_snapshot_append_rows(s, r->ids, dl->anext, (size_t)n, nwords, r->kept)) < 0)
        return rc;
    size_t m = felix_snapshot_get_info(s)->nthreads, nev = 0;
    for (size_t k = 0; k < m; k++) {
        size_t i = r->kept[k];
        if (i != k) { /* a duplicate TID (damage) was dropped: keep the arrays aligned */
            memmove(dl->anext + k * nwords, dl->anext + i * nwords, nwords * sizeof *dl->anext);
            memmove(dl->next + k * nwords, dl->next + i * nwords, nwords * sizeof *dl->next);
            link[k] = link[i];
        }
        dl->next_has[k] = link[k] >= 0;
        if (link[k] < 0 && delta)
            r->evq[nev].kind = FELIX_EV_THREAD_STARTED, r->evq[nev++].tid = r->ids[i].tid;
    }
    /* Threads of prev that no thread links to have exited: first, as a
     * writer of events would put them. */
    size_t nstart = nev, nexit = 0;
    for (size_t j = 0; j < nprev; j++)
        nexit += !r->used[j];
    if (nexit) {
        memmove(r->evq + nexit, r->evq, nstart * sizeof *r->evq);
        for (size_t j = 0, e = 0; j < nprev; j++)
            if (!r->used[j]) {
                r->evq[e].kind = FELIX_EV_THREAD_EXITED;
                r->evq[e++].tid = pt[j].tid;
            }
    }
    st->nev = nstart + nexit;
    st->ncolhdr = nwords;
    st->in_order = mode == FX_LINKS_IN_ORDER && m == n;
    return 0;
}

/* Parse a sample item into cur, ex.next and dl.next. Nothing the reader
 * keeps is changed (commit_sample does that), so a failure leaves it as it
 * was: a call that ran out of memory can be made again. */
static int parse_sample(felix_rec_reader *r, const unsigned char *item, size_t used, struct sample_state *st)
{
    const unsigned char *at[NKEYS];
    if (item_keys(item, used, at) < 0)
        return bad_item(r, "a key that is not an integer");
    struct cur c;
#define KEY(k) (c = at_key(at, k, item, used), &c)
    int64_t t;
    uint64_t nthr = 0;
    struct head th = next_head(KEY(FX_S_THREADS));
    struct cur threads = c;
    if (get_int(KEY(FX_S_TIME), &t) < 0 || (th.major != M_ARR && th.major != M_BYTES))
        return bad_item(r, "no time or thread list");
    int block = th.major == M_BYTES; /* format 2 */
    nthr = block ? 0 : th.v;
    struct head kh = next_head(KEY(FX_S_KEY));
    int key = kh.major == M_SIMPLE && kh.v == 21;
    /* Wall clock: absolute in key samples, else the difference from the
     * time predicted by the chunk's key sample. */
    int64_t wall, sv = 0;
    if (at[FX_S_WALL] && get_int(KEY(FX_S_WALL), &sv) < 0)
        return bad_item(r, "a wall-clock time that is not an integer");
    if (!key && !r->have_key_wall) /* no key sample yet: a damaged chunk start */
        return bad_item(r, "a chunk that does not start with a key sample");
    /* Format 2: a sample that is not a key sample holds its interval, as
     * the difference from the interval before it when there is one. */
    int64_t dt = 0;
    if (r->hdr.format_version >= 2 && !key) {
        if (!r->in_chunk || !r->have_prev)
            return bad_item(r, "a chunk that does not start with a key sample");
        if ((r->have_dt ? __builtin_add_overflow(r->last_dt, t, &dt) : (dt = t, 0)) || dt < 0 ||
            __builtin_add_overflow(r->last_t, dt, &t))
            return bad_item(r, dt < 0 ? "a sample time before the previous sample's" : "a time out of range");
    }
    int64_t key_wall = key ? sv : r->key_wall, key_t = key ? t : r->key_t;
    /* Times that cannot be represented are damage, never a wrapped value. */
    int64_t mono, since_key;
    if (__builtin_add_overflow(r->hdr.start_mono_ns, t, &mono) || __builtin_sub_overflow(t, key_t, &since_key) ||
        (key ? 0 : __builtin_add_overflow(key_wall, since_key, &wall) || __builtin_add_overflow(wall, sv, &wall)))
        return bad_item(r, "a time out of range");
    if (key)
        wall = sv;
    if (r->have_prev && mono < r->last_mono)
        return bad_item(r, "a sample time before the previous sample's");
    /* The image (key 10, absent: 1) and, after an exec, the layout and app
     * type (key 11, absent: the header's). */
    uint64_t image = 1, slot = r->slot, app = r->hdr.app_type, n2;
    if (at[FX_S_IMAGE] && (get_uint(KEY(FX_S_IMAGE), &image) < 0 || image == 0 || image > UINT32_MAX))
        return bad_item(r, "a bad image number");
    if (at[FX_S_LAYOUT] && (get_arr(KEY(FX_S_LAYOUT), &n2) < 0 || n2 < 2 || get_uint(&c, &slot) < 0 || slot < 48 ||
                            felix_slot_size_valid((unsigned)slot) != slot || get_uint(&c, &app) < 0 || app > 255))
        return bad_item(r, "a bad slot layout");
    unsigned nwords = (unsigned)slot / 8 - 1;
    /* What any FEX segment can hold, and never more threads than bytes. */
    if (nthr > (uint64_t)(threads.end - threads.p))
        return bad_item(r, "a thread count larger than the item");
    if (nthr * slot > FX_MAX_SAMPLE_SLOTS || nthr > FX_MAX_SAMPLE_THREADS)
        return bad_item(r, "more threads than a statistics segment holds");
    felix_snapshot *s = r->cur;
    int rc = felix_snapshot_begin(s, mono, wall, (uint16_t)slot);
    if (rc < 0)
        return rc;
    /* Delta-coded against the previous sample only within a chunk and one
     * layout (a hostile file could change it mid-chunk). */
    int delta = !key && r->in_chunk && r->have_prev && felix_snapshot_get_info(r->prev)->slot_size == slot;
    st->nev = 0;
    st->in_order = 0;
    if (block) {
        rc = parse_threads_v2(r, s, th.s, th.s + th.v, (unsigned)slot, nwords, delta, key || !r->colhdr_valid, st);
    } else if ((rc = fx_grow_deltas(&r->dl, (size_t)nthr, nwords)) == 0 &&
               (rc = fx_grow((void **)&r->link, &r->link_cap, nthr ? nthr : 1, sizeof *r->link)) == 0) {
        rc = parse_threads_v1(r, s, &threads, nthr, nwords, delta);
    }
    if (rc < 0)
        return rc;
    size_t n = felix_snapshot_get_info(s)->nthreads;
    if ((rc = fx_grow_extras(&r->ex, n ? n : 1)) < 0)
        return rc;
    const felix_thread *st_threads = fx_snapshot_threads(s);
    size_t x0 = 0;
    if (st->in_order && delta) { /* the same threads in the same places: one copy */
        memcpy(r->ex.next, r->ex.cur, n * sizeof *r->ex.next);
        for (; x0 < n; x0++)
            r->ex.next[x0].has_cpu = r->ex.next[x0].has_cpu != 0;
    }
    for (size_t x = x0; x < n; x++) { /* names and CPU carry over */
        long pj = r->link[x];
        if (pj == (long)x && delta) { /* the same thread at the same place */
            r->ex.next[x] = r->ex.cur[x];
            r->ex.next[x].has_cpu = r->ex.next[x].has_cpu != 0;
            continue;
        }
        if (pj < 0 && r->have_prev)
            pj = felix_snapshot_index(r->prev, st_threads[x].tid);
        if (pj >= 0)
            r->ex.next[x] = r->ex.cur[pj];
        else
            memset(&r->ex.next[x], 0, sizeof r->ex.next[x]);
        if (!delta || pj < 0)
            r->ex.next[x].has_cpu = 0;
        else if (r->ex.next[x].has_cpu)
            r->ex.next[x].has_cpu = 1; /* known, but not measured in this sample */
    }
    uint64_t ne;
    struct head names = next_head(KEY(FX_S_NAMES));
    if (at[FX_S_NAMES] && names.major == M_BYTES) { /* format 2's names block */
        const unsigned char *p = names.s, *end = names.s + names.v;
        const char *prev = "";
        uint64_t idx = 0, skip, code, shared, len;
        /* The chunk's recent names, changed in a copy that commit_sample keeps. */
        unsigned nrecent = key ? 0 : r->nrecent;
        memcpy(r->recent_next, r->recent, (size_t)nrecent * FX_NAME_LEN);
        size_t x = 0, target; /* first a code per new thread, then entries of linked ones */
        while (p < end) {
            while (x < n && r->link[x] >= 0)
                x++;
            int entry = x >= n;
            if (!entry) { /* the next new thread's code */
                target = x++;
                if (get_varint(&p, end, &code) < 0 || code > (uint64_t)nrecent + 1)
                    return bad_item(r, "a bad thread-name block");
                if (code == 0)
                    continue;
            } else {
                if (get_varint(&p, end, &skip) < 0 || get_varint(&p, end, &code) < 0 || skip >= n - idx ||
                    code == 0 || code > (uint64_t)nrecent + 1)
                    return bad_item(r, "a bad thread-name block");
                target = (size_t)(idx += skip);
                idx++;
            }
            char *name = r->ex.next[target].name;
            unsigned place = nrecent;
            if (code >= 2) { /* one of the recent names */
                place = (unsigned)code - 2;
                memcpy(name, r->recent_next[place], FX_NAME_LEN);
            } else {
                if (get_varint(&p, end, &shared) < 0 || get_varint(&p, end, &len) < 0 || shared > strlen(prev) ||
                    len > (uint64_t)(end - p))
                    return bad_item(r, "a bad thread-name block");
                size_t keep = shared < FX_NAME_LEN - 1 ? (size_t)shared : FX_NAME_LEN - 1;
                size_t add = len < FX_NAME_LEN - 1 - keep ? (size_t)len : FX_NAME_LEN - 1 - keep;
                memmove(name, prev, keep);
                memcpy(name + keep, p, add);
                name[keep + add] = '\0';
                for (size_t k = keep; k < keep + add; k++) /* no control bytes reach callers */
                    if ((unsigned char)name[k] < 0x20)
                        name[k] = '?';
                p += len;
            }
            fx_recent_to_front(r->recent_next, &nrecent, place, name);
            prev = name;
        }
        st->names = 1;
        st->nrecent = nrecent;
    } else if (at[FX_S_NAMES] && get_arr(KEY(FX_S_NAMES), &ne) == 0) { /* names: [tid, name] */
        for (uint64_t e = 0; e < ne && !c.bad; e++) {
            uint64_t len, tid;
            long x;
            struct cur one = c;
            skip_value(&c);
            if (get_arr(&one, &len) == 0 && len == 2 && get_uint(&one, &tid) == 0 && tid <= UINT32_MAX &&
                (x = felix_snapshot_index(s, (uint32_t)tid)) >= 0)
                get_str(&one, r->ex.next[x].name, FX_NAME_LEN);
        }
    }
    struct head cpu = next_head(KEY(FX_S_CPU));
    if (at[FX_S_CPU] && cpu.major == M_BYTES) { /* format 2's CPU block */
        const unsigned char *p = cpu.s, *end = cpu.s + cpu.v;
        uint64_t e, code;
        if (get_varint(&p, end, &e) < 0 || e > FX_CPU_MAX_EXP)
            return bad_item(r, "a bad CPU-time block");
        for (size_t x = 0; x < n && get_varint(&p, end, &code) == 0; x++) {
            if (code == 0)
                continue;
            struct thread_extra *ex = &r->ex.next[x];
            uint64_t v = fx_unzigzag(code - 1) * fx_pow10[e];
            ex->cpu = ex->has_cpu ? ex->cpu + v : v;
            ex->has_cpu = 2; /* measured in this sample */
        }
    } else if (at[FX_S_CPU] && get_arr(KEY(FX_S_CPU), &ne) == 0) { /* CPU times: [tid, ns or its difference] */
        for (uint64_t e = 0; e < ne && !c.bad; e++) {
            uint64_t len, tid, v;
            long x;
            struct cur one = c;
            skip_value(&c);
            if (get_arr(&one, &len) == 0 && len == 2 && get_uint(&one, &tid) == 0 && tid <= UINT32_MAX &&
                get_word(&one, &v) == 0 && (x = felix_snapshot_index(s, (uint32_t)tid)) >= 0) {
                struct thread_extra *ex = &r->ex.next[x];
                ex->cpu = ex->has_cpu ? ex->cpu + v : v;
                ex->has_cpu = 2; /* measured in this sample */
            }
        }
    }
    if (at[FX_S_CPU]) /* what was measured in this sample goes with it */
        for (size_t x = 0; x < n; x++)
            if (r->ex.next[x].has_cpu == 2 && (rc = felix_snapshot_set_thread_cpu_ns(s, x, r->ex.next[x].cpu)) < 0)
                return rc;
    felix_mem *mem = felix_snapshot_mem_mut(s);
    if (at[FX_S_REGIONS] && get_arr(KEY(FX_S_REGIONS), &ne) == 0) { /* regions: [name, rss, size, maps, largest] */
        felix_mem_clear(mem);
        for (uint64_t e = 0; e < ne && !c.bad; e++) {
            char name[48];
            uint64_t len, rss, size, maps, largest;
            struct cur one = c;
            skip_value(&c);
            if (get_arr(&one, &len) == 0 && len >= 5 && get_str(&one, name, sizeof name) == 0 &&
                get_uint(&one, &rss) == 0 && get_uint(&one, &size) == 0 && get_uint(&one, &maps) == 0 &&
                get_uint(&one, &largest) == 0 && name[0] &&
                (rc = felix_mem_set(mem, name, rss, size, (uint32_t)maps, largest)) < 0 && rc == FELIX_ENOMEM)
                return rc;
        }
        uint64_t prss, pmaps; /* the whole process's (key 12) */
        if (at[FX_S_PROCESS_MEM] && get_arr(KEY(FX_S_PROCESS_MEM), &ne) == 0 && ne >= 2 && get_uint(&c, &prss) == 0 && get_uint(&c, &pmaps) == 0)
            felix_mem_set_process(mem, prss, (uint32_t)(pmaps > UINT32_MAX ? UINT32_MAX : pmaps));
        felix_snapshot_set_has_mem(s, 1);
    }
    st->seg_head = r->seg_head, st->seg_size = r->seg_size, st->seg_real = r->seg_real;
    uint64_t v[5];
    if (at[FX_S_SEGMENT] && get_arr(KEY(FX_S_SEGMENT), &ne) == 0 && ne >= 3 && get_uint(&c, &v[0]) == 0 && get_uint(&c, &v[1]) == 0 &&
        get_uint(&c, &v[2]) == 0) {
        st->seg_head = (uint32_t)v[0];
        st->seg_size = (uint32_t)v[1];
        st->seg_real = (uint32_t)v[2];
    }
    felix_snapshot_info *si = felix_snapshot_info_mut(s);
    si->version = r->hdr.stats_version;
    si->app_type = (uint8_t)app;
    si->image = (uint32_t)image;
    si->head = st->seg_head;
    si->size = st->seg_size;
    si->real_size = st->seg_real;
    if (at[FX_S_ANOMALIES] && get_arr(KEY(FX_S_ANOMALIES), &ne) == 0 && ne >= 5) {
        int ok = 1;
        for (int k = 0; k < 5; k++)
            ok &= get_uint(&c, &v[k]) == 0;
        if (ok) {
            si->anomaly_cycle = (uint32_t)v[0];
            si->anomaly_bad_offset = (uint32_t)v[1];
            si->anomaly_dup_tid = (uint32_t)v[2];
            si->skipped_free = (uint32_t)v[3];
            si->skipped_racing = (uint32_t)v[4];
        }
    }
#undef KEY
    st->key = key;
    st->t_rel = t;
    st->dt = dt;
    st->mono = mono;
    st->wall = key_wall;
    st->t = key_t;
    return 0;
}

/* The parsed sample (in cur) becomes the reader's: prev. */
static void commit_sample(felix_rec_reader *r, const struct sample_state *st)
{
    felix_snapshot *s = r->cur;
    r->cur = r->prev;
    r->prev = s;
    fx_extras_swap(&r->ex);
    fx_deltas_swap(&r->dl);
    if (st->key) {
        r->key_wall = st->wall;
        r->key_t = st->t;
        r->have_key_wall = 1;
    }
    r->seg_head = st->seg_head, r->seg_size = st->seg_size, r->seg_real = st->seg_real;
    r->have_prev = 1;
    r->in_chunk = 1;
    r->sample_no++;
    r->last_mono = st->mono;
    r->last_key = st->key;
    r->last_t = st->t_rel;
    r->last_dt = st->dt;
    r->colhdr_valid = st->ncolhdr != 0; /* the last sample left column headers (a thread block) */
    if (st->ncolhdr) { /* format 2: the columns' headers and the last new thread go on */
        r->new_tid = st->new_tid, r->new_off = st->new_off;
        unsigned *t = r->colhdr;
        r->colhdr = r->colhdr_next, r->colhdr_next = t;
        size_t c = r->colhdr_cap;
        r->colhdr_cap = r->colhdr_next_cap, r->colhdr_next_cap = c;
    }
    r->have_dt = !st->key;
    if (st->names) { /* format 2: the recent names go on */
        memcpy(r->recent, r->recent_next, (size_t)st->nrecent * FX_NAME_LEN);
        r->nrecent = st->nrecent;
    } else if (st->key) {
        r->nrecent = 0;
    }
}

static int parse_event(felix_rec_reader *r, const unsigned char *item, size_t used, felix_rec_event *ev)
{
    const unsigned char *at[NKEYS];
    if (item_keys(item, used, at) < 0)
        return bad_item(r, "an event key that is not an integer");
    felix_rec_event e;
    memset(&e, 0, sizeof e);
    e.version = FELIX_REC_EVENT_VERSION;
    uint64_t v;
    int64_t sv;
    struct cur c;
#define KEY(k) (c = at_key(at, k, item, used), &c)
    if (get_int(KEY(FX_E_TIME), &sv) == 0 && __builtin_add_overflow(r->hdr.start_mono_ns, sv, &e.mono_ns))
        return bad_item(r, "an event time out of range");
    if (get_uint(KEY(FX_E_KIND), &v) == 0)
        e.kind = (int)(v > 1000 ? 0 : v);
    if (get_uint(KEY(FX_E_TID), &v) == 0)
        e.tid = (uint32_t)v;
    if (get_int(KEY(FX_E_STATUS), &sv) == 0 && sv >= INT32_MIN && sv <= INT32_MAX) {
        e.status = (int)sv;
        e.has_status = 1;
    }
    get_str(KEY(FX_E_REASON), e.reason, sizeof e.reason);
    if (get_uint(KEY(FX_E_INTERVAL), &v) == 0)
        e.interval_ns = (int64_t)(v > INT64_MAX ? 0 : v);
    if (get_uint(KEY(FX_E_MISSED), &v) == 0)
        e.count = v;
    if (get_uint(KEY(FX_E_IMAGE), &v) == 0)
        e.count = v;
#undef KEY
    if (ev)
        *ev = e;
    return 0;
}

/* ---- open / close ---- */

static int reader_init(felix_rec_reader **out, int fd, int own)
{
    felix_rec_reader *r = fx_calloc(1, sizeof *r);
    if (!r) {
        if (own)
            close(fd);
        return fx_fail(FELIX_ENOMEM, "out of memory creating a recording reader");
    }
    r->fd = fd;
    r->own_fd = own;
    r->sample_no = -1;
    struct stat st;
    r->seekable = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) >= 0;
    r->in_cap = ZSTD_DStreamInSize();
    r->hint = 32;
    r->d_cap = 64 * 1024;
    r->in = fx_malloc(r->in_cap);
    r->d = fx_malloc(r->d_cap);
    /* All the decoder will ever need, now: frames with larger windows are
     * refused, and reading never runs out of memory inside zstd. */
    size_t dsize = ZSTD_estimateDStreamSize((size_t)1 << FX_WINDOW_LOG_MAX);
    r->dctx_mem = fx_malloc(dsize);
    r->dctx = r->dctx_mem ? ZSTD_initStaticDCtx(r->dctx_mem, dsize) : NULL;
    int rc = 0;
    if (!r->in || !r->d || !r->dctx || felix_snapshot_new(&r->prev) < 0 || felix_snapshot_new(&r->cur) < 0)
        rc = fx_fail(FELIX_ENOMEM, "out of memory creating a recording reader");
    if (rc == 0)
        ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, FX_WINDOW_LOG_MAX);
    if (rc == 0) {
        const unsigned char *item;
        size_t used;
        rc = next_item(r, &item, &used);
        if (rc == FELIX_EEOF)
            rc = fx_fail(FELIX_ETRUNC, "recording is empty");
        else if (rc == 0 && (rc = parse_header(r, item, used)) == 0)
            consume(r, used);
        r->checked = r->last_check == CHECK_GOOD;
    }
    if (rc < 0) {
        felix_rec_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

int felix_rec_reader_open_fd(felix_rec_reader **out, int fd)
{
    if (!out || fd < 0)
        return fx_fail(FELIX_EINVAL, "felix_rec_reader_open_fd: bad descriptor");
    return reader_init(out, fd, 0);
}

int felix_rec_reader_open_path(felix_rec_reader **out, const char *path)
{
    if (!out || !path)
        return fx_fail(FELIX_EINVAL, "felix_rec_reader_open_path: NULL argument");
    if (strcmp(path, "-") == 0)
        return reader_init(out, 0, 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fx_fail(fx_errno_code(errno), "cannot open %s: %s", path, strerror(errno));
    int rc = reader_init(out, fd, 1);
    if (rc < 0) {
        char why[400];
        snprintf(why, sizeof why, "%s", felix_error_detail());
        return fx_fail(rc, "%s: %s", path, why);
    }
    return 0;
}

void felix_rec_reader_close(felix_rec_reader *r)
{
    if (!r)
        return;
    if (r->own_fd)
        close(r->fd);
    fx_free(r->dctx_mem);
    fx_free(r->in);
    fx_free(r->d);
    felix_snapshot_free(r->prev);
    felix_snapshot_free(r->cur);
    fx_extras_free(&r->ex);
    fx_free(r->link);
    fx_free(r->ids);
    fx_free(r->kept);
    fx_free(r->colhdr);
    fx_free(r->colhdr_next);
    fx_free(r->slotmap);
    fx_free(r->used);
    fx_free(r->evq);
    fx_deltas_free(&r->dl);
    fx_free(r->chunks);
    fx_free(r->regions);
    fx_free(r);
}

const felix_rec_header *felix_rec_reader_header(const felix_rec_reader *r) { return r ? &r->hdr : NULL; }

const felix_snapshot *fx_rec_reader_last(const felix_rec_reader *r) { return r && r->have_prev ? r->prev : NULL; }
int64_t felix_rec_sample_number(const felix_rec_reader *r) { return r ? r->sample_no : -1; }
uint64_t felix_rec_offset(const felix_rec_reader *r) { return r ? r->in_off + r->in_pos : 0; }

const char *felix_rec_thread_name(const felix_rec_reader *r, uint32_t tid)
{
    long i = r && r->have_prev ? felix_snapshot_index(r->prev, tid) : -1;
    return i >= 0 && r->ex.cur[i].name[0] ? r->ex.cur[i].name : NULL;
}

int felix_rec_thread_cpu_ns(const felix_rec_reader *r, uint32_t tid, uint64_t *out)
{
    long i = r && r->have_prev ? felix_snapshot_index(r->prev, tid) : -1;
    if (i < 0 || r->ex.cur[i].has_cpu != 2 || !out)
        return FELIX_EINVAL;
    *out = r->ex.cur[i].cpu;
    return 0;
}

/* The next item; with want_events, the thread events a format-2 sample's
 * links say come first (as event items would), then the sample. */
static int read_next(felix_rec_reader *r, felix_snapshot *snap, felix_rec_event *ev, int *out_item, int want_events)
{
    if (!r)
        return fx_fail(FELIX_EINVAL, "felix_rec_next: NULL reader");
    if (ev && !FX_VERSION_OK(ev, FELIX_REC_EVENT_VERSION))
        return fx_fail(FELIX_EINVAL, "felix_rec_next: event version %u (start from FELIX_REC_EVENT_INIT)", ev->version);
    if (r->evpos < r->nev) {
        if (ev) {
            memset(ev, 0, sizeof *ev);
            ev->version = FELIX_REC_EVENT_VERSION;
            ev->kind = r->evq[r->evpos].kind;
            ev->tid = r->evq[r->evpos].tid;
            ev->mono_ns = r->last_mono;
        }
        r->evpos++;
        if (out_item)
            *out_item = FELIX_REC_EVENT;
        return 0;
    }
    if (r->have_pending) { /* the last sample read (prev) waits: after its events, or a seek by time */
        int rc = snap ? felix_snapshot_copy(snap, r->prev) : 0;
        if (rc < 0)
            return rc;
        r->have_pending = 0;
        r->nev = r->evpos = 0;
        if (out_item)
            *out_item = FELIX_REC_SAMPLE;
        return 0;
    }
    for (;;) {
        const unsigned char *item;
        size_t used;
        int rc = next_item(r, &item, &used);
        if (rc < 0)
            return rc;
        int64_t type = item_type(item, used);
        if (type == FX_ITEM_SAMPLE) {
            /* Parsed and handed out before it counts as read: a failure
             * (out of memory) leaves the reader where it was. */
            struct sample_state st = {0};
            if ((rc = parse_sample(r, item, used, &st)) < 0)
                return rc;
            int events = want_events && st.nev;
            if (!events && snap && (rc = felix_snapshot_copy(snap, r->cur)) < 0)
                return rc;
            commit_sample(r, &st);
            consume(r, used);
            if (events) {
                r->nev = st.nev;
                r->evpos = 0;
                r->have_pending = 1;
                return read_next(r, snap, ev, out_item, want_events);
            }
            if (out_item)
                *out_item = FELIX_REC_SAMPLE;
            return 0;
        }
        if (type == FX_ITEM_EVENT) {
            if ((rc = parse_event(r, item, used, ev)) < 0)
                return rc;
            consume(r, used);
            if (out_item)
                *out_item = FELIX_REC_EVENT;
            return 0;
        }
        consume(r, used);
        if (type == FX_ITEM_END) {
            r->ended = 1;
            if (out_item)
                *out_item = FELIX_REC_END;
            return 0;
        }
        /* an item type we do not know (or a header): skipped */
    }
}

int felix_rec_next(felix_rec_reader *r, felix_snapshot *snap, felix_rec_event *ev, int *out_item)
{
    return read_next(r, snap, ev, out_item, 1);
}

int felix_rec_next_sample(felix_rec_reader *r, felix_snapshot *snap)
{
    for (;;) {
        int item = 0;
        int rc = read_next(r, snap, NULL, &item, 0);
        if (rc < 0)
            return rc;
        if (item == FELIX_REC_SAMPLE)
            return 0;
    }
}

/* ---- index and seeking ---- */

static int reposition(felix_rec_reader *r, uint64_t offset)
{
    if (lseek(r->fd, (off_t)offset, SEEK_SET) < 0)
        return fx_fail(FELIX_EIO, "cannot seek in the recording: %s", strerror(errno));
    ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
    r->in_pos = r->in_len = 0;
    r->in_off = offset;
    r->d_pos = r->d_len = 0;
    r->d_base = 0;
    memset(&r->fr, 0, sizeof r->fr);
    r->nmarks = 0;
    r->in_frame = 0;
    r->zerr = 0;
    r->hint = 32;
    r->eof = 0;
    r->have_prev = r->in_chunk = r->have_pending = 0;
    r->nev = r->evpos = 0;
    r->colhdr_valid = 0;
    r->have_key_wall = 0;
    r->ended = 0;
    return 0;
}

static int add_chunk(felix_rec_reader *r, uint64_t off, uint64_t first, int64_t t)
{
    int rc = fx_grow((void **)&r->chunks, &r->chunks_cap, r->nchunks + 1, sizeof *r->chunks);
    if (rc < 0)
        return rc;
    struct chunk *c = &r->chunks[r->nchunks++];
    c->offset = off;
    c->first_sample = first;
    c->first_t = t;
    c->samples = 0;
    return 0;
}

static int add_region(felix_rec_reader *r, const char *name)
{
    for (size_t i = 0; i < r->nregions; i++)
        if (strcmp(r->regions[i], name) == 0)
            return 0;
    if (r->nregions >= FELIX_MEM_MAX_REGIONS)
        return 0;
    if (!r->regions && !(r->regions = fx_calloc(FELIX_MEM_MAX_REGIONS, sizeof *r->regions)))
        return fx_fail(FELIX_ENOMEM, "out of memory for region names");
    /* regions is allocated once, so the pointers callers get stay valid. */
    r->region_ptrs[r->nregions] = r->regions[r->nregions];
    snprintf(r->regions[r->nregions++], sizeof r->regions[0], "%s", name);
    return 0;
}

/* The index written at the end, if there is a sound one. */
static int load_index(felix_rec_reader *r)
{
    struct stat st;
    if (fstat(r->fd, &st) < 0 || st.st_size < 17)
        return -1;
    uint64_t size = (uint64_t)st.st_size;
    unsigned char foot[9];
    if (pread(r->fd, foot, 9, (off_t)(size - 9)) != 9 || get_le32(foot + 5) != FX_MAGIC_SEEKABLE_FOOTER)
        return -1;
    uint64_t nframes = get_le32(foot), tsize = nframes * 8 + 9;
    if (nframes == 0 || tsize + 8 > size)
        return -1;
    unsigned char *t = fx_malloc(tsize + 8);
    if (!t)
        return fx_fail(FELIX_ENOMEM, "out of memory reading the index");
    uint64_t sum = 0;
    int ok = pread(r->fd, t, tsize + 8, (off_t)(size - tsize - 8)) == (ssize_t)(tsize + 8) &&
             get_le32(t) == FX_MAGIC_SEEKTABLE && get_le32(t + 4) == tsize;
    for (uint64_t i = 0; ok && i < nframes; i++)
        sum += get_le32(t + 8 + i * 8);
    fx_free(t);
    if (!ok || sum + 8 > size - tsize - 8)
        return -1;
    unsigned char h[8];
    if (pread(r->fd, h, 8, (off_t)sum) != 8 || get_le32(h) != FX_MAGIC_INDEX)
        return -1;
    uint32_t len = get_le32(h + 4);
    if ((uint64_t)len + sum + 8 > size - tsize - 8 || len > MAX_ITEM)
        return -1;
    unsigned char *buf = fx_malloc(len ? len : 1);
    if (!buf)
        return fx_fail(FELIX_ENOMEM, "out of memory reading the index");
    size_t used;
    int check = CHECK_ABSENT;
    const unsigned char *at[NKEYS];
    ok = pread(r->fd, buf, len, (off_t)(sum + 8)) == (ssize_t)len && frame_whole(buf, len, &used, &check, r->crc_kind) == 0 &&
         check == CHECK_GOOD && item_type(buf, used) == FX_ITEM_INDEX && item_keys(buf, used, at) == 0;
    r->nchunks = 0;
    r->nregions = 0;
    struct cur c;
    uint64_t ne;
    int rc = 0;
    if (ok && get_uint((c = at_key(at, FX_I_SAMPLES, buf, used), &c), &r->total_samples) < 0)
        ok = 0;
    if (ok && (c = at_key(at, FX_I_CHUNKS, buf, used), get_arr(&c, &ne) == 0)) {
        for (uint64_t e = 0; ok && e < ne; e++) { /* [offset, first sample, first time, samples] */
            uint64_t n4, off, first, ns;
            int64_t ft;
            struct cur one = c;
            skip_value(&c);
            ok = get_arr(&one, &n4) == 0 && n4 >= 4 && get_uint(&one, &off) == 0 && get_uint(&one, &first) == 0 &&
                 get_int(&one, &ft) == 0 && get_uint(&one, &ns) == 0 && off < sum &&
                 (r->nchunks == 0 ||
                  (off > r->chunks[r->nchunks - 1].offset && first >= r->chunks[r->nchunks - 1].first_sample));
            if (ok && (rc = add_chunk(r, off, first, ft)) < 0)
                break;
            if (ok)
                r->chunks[r->nchunks - 1].samples = ns;
        }
    }
    if (ok && (c = at_key(at, FX_I_REGIONS, buf, used), get_arr(&c, &ne) == 0)) {
        for (uint64_t e = 0; e < ne && !c.bad && rc == 0; e++) {
            char name[48];
            if (get_str(&c, name, sizeof name) == 0)
                rc = add_region(r, name);
        }
    }
    fx_free(buf);
    return rc < 0 ? rc : ok ? 0 : -1;
}

/* No sound index: read the whole recording once, noting each chunk. */
static int scan_index(felix_rec_reader *r)
{
    int rc = reposition(r, 0); /* from the start: the header is skipped like any item not a sample */
    if (rc < 0)
        return rc;
    r->nchunks = 0;
    r->nregions = 0;
    r->sample_no = -1;
    r->scan_ended = 0;
    for (;;) {
        const unsigned char *item;
        size_t used;
        rc = next_item(r, &item, &used);
        if (rc < 0)
            break; /* the end, or the damage: the index covers what is whole */
        int64_t type = item_type(item, used);
        const unsigned char *at[NKEYS];
        if (type == FX_ITEM_END) {
            r->ended = r->scan_ended = 1;
            r->data_end = r->in_off + r->in_pos; /* where the end item's frame ends, about */
        }
        if (type != FX_ITEM_SAMPLE || item_keys(item, used, at) < 0) {
            consume(r, used);
            continue;
        }
        struct cur c;
        int64_t t = 0;
        get_int((c = at_key(at, FX_S_TIME, item, used), &c), &t); /* absolute in a key sample */
        struct head kh = next_head((c = at_key(at, FX_S_KEY, item, used), &c));
        r->sample_no++;
        /* A chunk is a frame that starts with a key sample (a file that
         * puts more in one frame gets one chunk for it). */
        if (kh.major == M_SIMPLE && kh.v == 21 && (r->nchunks == 0 || r->chunks[r->nchunks - 1].offset != r->item_frame) &&
            (rc = add_chunk(r, r->item_frame, (uint64_t)r->sample_no, t)) < 0)
            return rc;
        if (r->nchunks)
            r->chunks[r->nchunks - 1].samples++;
        uint64_t ne;
        if ((c = at_key(at, FX_S_REGIONS, item, used), get_arr(&c, &ne) == 0)) {
            for (uint64_t e = 0; e < ne && !c.bad; e++) {
                char name[48];
                uint64_t n5;
                struct cur one = c;
                skip_value(&c);
                if (get_arr(&one, &n5) == 0 && get_str(&one, name, sizeof name) == 0 &&
                    (rc = add_region(r, name)) < 0)
                    return rc;
            }
        }
        consume(r, used);
    }
    r->total_samples = (uint64_t)(r->sample_no + 1);
    return 0;
}

static int ensure_index(felix_rec_reader *r)
{
    if (!r)
        return fx_fail(FELIX_EINVAL, "NULL reader");
    if (!r->seekable)
        return fx_fail(FELIX_ENOTSUP, "the recording is not seekable (a pipe or standard input)");
    if (r->index_state)
        return 0;
    int rc = 0;
    int64_t keep = r->sample_no;
    int rc_index = load_index(r), scanned = rc_index == -1;
    if (rc_index < -1)
        return rc_index; /* out of memory */
    if (scanned) {
        rc = scan_index(r); /* reads to the end */
        /* A closed recording has an index: one missing or unsound is damage
         * (worked around). An unclosed one never had it. */
        if (rc == 0 && r->scan_ended && !r->warning[0])
            snprintf(r->warning, sizeof r->warning,
                     "recording damaged: its index (after the data, from byte %llu) is missing or corrupt; rebuilt "
                     "by scanning",
                     (unsigned long long)r->data_end);
    }
    if (rc < 0)
        return rc; /* out of memory: tried again next time */
    r->index_state = 1;
    if (scanned) { /* back to where the caller was reading */
        if (keep < 0 || r->nchunks == 0) {
            rc = reposition(r, 0);
            r->sample_no = -1;
        } else if ((uint64_t)keep + 1 < r->total_samples) {
            rc = felix_rec_seek_sample(r, (uint64_t)keep + 1);
        }
    }
    return rc;
}

/* The last chunk starting at or before key: a sample number, or (by_time)
 * a time since the origin; chunk 0 when key is before them all. */
static size_t find_chunk(const felix_rec_reader *r, int by_time, int64_t key)
{
    size_t lo = 0, hi = r->nchunks;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        int64_t at = by_time ? r->chunks[mid].first_t : (int64_t)r->chunks[mid].first_sample;
        if (at <= key)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Go to chunk c; the next sample read is its key sample. */
static int goto_chunk(felix_rec_reader *r, size_t c)
{
    int rc = reposition(r, r->chunks[c].offset);
    r->sample_no = (int64_t)r->chunks[c].first_sample - 1;
    return rc;
}

/* Whether chunk c's index entry is true: a key sample with the time the
 * entry gives stands at its offset. The reader is left at that offset. */
static int chunk_sound(felix_rec_reader *r, size_t c)
{
    if (goto_chunk(r, c) < 0)
        return 0;
    int rc = felix_rec_next_sample(r, NULL);
    int ok = rc == 0 && r->last_key &&
             felix_snapshot_get_info(r->prev)->mono_ns - r->hdr.start_mono_ns == r->chunks[c].first_t;
    return goto_chunk(r, c) == 0 && ok;
}

/* The chunk to start a seek from (the last one at or before key, a sample
 * number or a time), checked against the data: the index is a hint, so a
 * wrong entry makes the reader rebuild it by scanning, with a warning. */
static int seek_chunk(felix_rec_reader *r, int by_time, int64_t key)
{
    size_t c = find_chunk(r, by_time, key);
    if (chunk_sound(r, c))
        return 0;
    if (!r->index_rebuilt) {
        snprintf(r->warning, sizeof r->warning,
                 "recording damaged: its index points chunk %zu at byte %llu, where no such chunk starts; rebuilt by "
                 "scanning",
                 c, (unsigned long long)r->chunks[c].offset);
        r->index_rebuilt = 1;
        int rc = scan_index(r);
        if (rc < 0)
            return rc;
        if (r->nchunks == 0)
            return fx_fail(FELIX_ERANGE, "the recording holds no samples");
        c = find_chunk(r, by_time, key);
        if (chunk_sound(r, c))
            return 0;
    }
    /* Frames that do not start where their key samples do (not a file
     * felix writes): read from the start, which is always right. */
    int rc = reposition(r, 0);
    r->sample_no = -1;
    return rc;
}

const char *felix_rec_reader_warning(const felix_rec_reader *r) { return r && r->warning[0] ? r->warning : NULL; }

int felix_rec_summary(felix_rec_reader *r, uint64_t *out_samples, int64_t *out_last_chunk_ns)
{
    int rc = ensure_index(r);
    if (rc < 0)
        return rc;
    if (out_samples)
        *out_samples = r->total_samples;
    if (out_last_chunk_ns)
        *out_last_chunk_ns = r->nchunks ? r->chunks[r->nchunks - 1].first_t : 0;
    return 0;
}

int felix_rec_region_names(felix_rec_reader *r, const char *const **out_names, size_t *out_n)
{
    int rc = ensure_index(r);
    if (rc < 0)
        return rc;
    if (out_names)
        *out_names = r->region_ptrs;
    if (out_n)
        *out_n = r->nregions;
    return 0;
}

int felix_rec_seek_sample(felix_rec_reader *r, uint64_t n)
{
    if (n == 0 && r && r->seekable) { /* the start needs no index */
        int rc = reposition(r, 0); /* from the start: the header is skipped like any item not a sample */
        r->sample_no = -1;
        return rc;
    }
    int rc = ensure_index(r);
    if (rc < 0)
        return rc;
    if (n >= r->total_samples || r->nchunks == 0)
        return fx_fail(FELIX_ERANGE, "sample %llu is past the end (%llu samples)", (unsigned long long)n,
                       (unsigned long long)r->total_samples);
    if ((rc = seek_chunk(r, 0, (int64_t)n)) < 0)
        return rc;
    while (r->sample_no + 1 < (int64_t)n)
        if ((rc = felix_rec_next_sample(r, NULL)) < 0)
            return rc;
    return 0;
}

int felix_rec_seek_time(felix_rec_reader *r, int64_t t_ns)
{
    int rc = ensure_index(r);
    if (rc < 0)
        return rc;
    if (r->nchunks == 0)
        return fx_fail(FELIX_ERANGE, "the recording holds no samples");
    if ((rc = seek_chunk(r, 1, t_ns)) < 0)
        return rc;
    for (;;) {
        if ((rc = felix_rec_next_sample(r, NULL)) < 0)
            return rc == FELIX_EEOF || rc == FELIX_ETRUNC
                       ? fx_fail(FELIX_ERANGE, "time %lld ns is past the end", (long long)t_ns)
                       : rc;
        if (felix_snapshot_get_info(r->prev)->mono_ns - r->hdr.start_mono_ns >= t_ns) {
            r->have_pending = 1; /* read already: the next call hands it out */
            return 0;
        }
    }
}
