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
#include "record_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define MAX_ITEM (64u << 20)
#define MAX_DEPTH 16

enum { T_UINT, T_NEG, T_STR, T_BYTES, T_ARR, T_MAP, T_BOOL, T_TAG, T_OTHER };

struct tok {
    uint8_t type;
    uint32_t end;              /* containers: index of the token after the subtree */
    uint64_t u;                /* value, count, or bool */
    const unsigned char *s;    /* strings */
    size_t slen;
};

struct chunk {
    uint64_t offset, first_sample, samples;
    int64_t first_t;
};

struct frame_mark {
    uint64_t dpos;   /* absolute decompressed offset where the frame's output begins */
    uint64_t offset; /* the frame's file offset */
};

struct felix_rec_reader {
    felix_rec_header hdr;
    int fd, own_fd, seekable, eof, ended;
    int checked;               /* the header carried its check: every item must */
    int last_key;              /* the last sample read was a key sample */
    int scan_ended;            /* the last scan met the end item */
    int index_rebuilt;         /* the index was found wrong and rebuilt */
    uint64_t data_end;         /* where the last scan met the end item */
    int last_check;            /* check_ok() of the last item tokenized */
    char warning[320];         /* damage worked around (felix_rec_reader_warning) */
    int64_t last_mono;         /* the last sample's time, for order */
    ZSTD_DCtx *dctx;
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
    uint64_t header_end;       /* file offset of the first chunk */
    /* parsing */
    struct tok *tok;
    size_t ntok, tok_cap;
    int tok_bad;
    size_t stack[MAX_DEPTH];   /* children left in each open container */
    uint32_t open[MAX_DEPTH];  /* token index of each open container */
    unsigned sp;
    int done;
    /* state */
    unsigned slot, nwords;
    felix_snapshot *prev, *cur, *pending;
    int in_chunk, have_prev, have_pending;
    fx_extras ex;               /* names and CPU times, aligned to prev */
    uint64_t *wbuf;
    fx_deltas dl;              /* last word deltas, aligned to prev */
    int64_t key_wall, key_t;
    int have_key_wall;
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

/* ---- tokenizer over libcbor's streaming decoder ---- */

static void push_tok(felix_rec_reader *r, uint8_t type, uint64_t u, const unsigned char *s, size_t slen)
{
    if (r->ntok == r->tok_cap &&
        (r->ntok >= (16u << 20) || fx_grow((void **)&r->tok, &r->tok_cap, r->ntok + 1, sizeof *r->tok) < 0)) {
        r->tok_bad = 1;
        return;
    }
    size_t idx = r->ntok++;
    struct tok *t = &r->tok[idx];
    t->type = type;
    t->end = (uint32_t)r->ntok;
    t->u = u;
    t->s = s;
    t->slen = slen;
    if (type == T_TAG)
        return; /* a tag prefixes the next item */
    if ((type == T_ARR || type == T_MAP) && u > 0) {
        if (r->sp == MAX_DEPTH || u > MAX_ITEM) {
            r->tok_bad = 1;
            return;
        }
        r->stack[r->sp] = type == T_MAP ? u * 2 : u;
        r->open[r->sp++] = (uint32_t)idx;
        return;
    }
    for (;;) { /* one child complete */
        if (r->sp == 0) {
            r->done = 1;
            return;
        }
        if (--r->stack[r->sp - 1] > 0)
            return;
        r->sp--; /* a container complete: its subtree ends here */
        r->tok[r->open[r->sp]].end = (uint32_t)r->ntok;
    }
}

static void cb_u8(void *c, uint8_t v) { push_tok(c, T_UINT, v, NULL, 0); }
static void cb_u16(void *c, uint16_t v) { push_tok(c, T_UINT, v, NULL, 0); }
static void cb_u32(void *c, uint32_t v) { push_tok(c, T_UINT, v, NULL, 0); }
static void cb_u64(void *c, uint64_t v) { push_tok(c, T_UINT, v, NULL, 0); }
static void cb_n8(void *c, uint8_t v) { push_tok(c, T_NEG, v, NULL, 0); }
static void cb_n16(void *c, uint16_t v) { push_tok(c, T_NEG, v, NULL, 0); }
static void cb_n32(void *c, uint32_t v) { push_tok(c, T_NEG, v, NULL, 0); }
static void cb_n64(void *c, uint64_t v) { push_tok(c, T_NEG, v, NULL, 0); }
static void cb_str(void *c, cbor_data s, size_t n) { push_tok(c, T_STR, 0, s, n); }
static void cb_bytes(void *c, cbor_data s, size_t n) { push_tok(c, T_BYTES, 0, s, n); }
static void cb_arr(void *c, size_t n) { push_tok(c, T_ARR, n, NULL, 0); }
static void cb_map(void *c, size_t n) { push_tok(c, T_MAP, n, NULL, 0); }
static void cb_tag(void *c, uint64_t v) { push_tok(c, T_TAG, v, NULL, 0); }
static void cb_bool(void *c, bool v) { push_tok(c, T_BOOL, v, NULL, 0); }
static void cb_simple(void *c) { push_tok(c, T_OTHER, 0, NULL, 0); }
static void cb_f(void *c, float v) { (void)v; push_tok(c, T_OTHER, 0, NULL, 0); }
static void cb_d(void *c, double v) { (void)v; push_tok(c, T_OTHER, 0, NULL, 0); }
static void cb_indef(void *c) { ((felix_rec_reader *)c)->tok_bad = 1; } /* never written */

static const struct cbor_callbacks callbacks = {
    .uint8 = cb_u8, .uint16 = cb_u16, .uint32 = cb_u32, .uint64 = cb_u64,
    .negint8 = cb_n8, .negint16 = cb_n16, .negint32 = cb_n32, .negint64 = cb_n64,
    .byte_string_start = cb_indef, .byte_string = cb_bytes,
    .string = cb_str, .string_start = cb_indef,
    .indef_array_start = cb_indef, .array_start = cb_arr,
    .indef_map_start = cb_indef, .map_start = cb_map,
    .tag = cb_tag, .float2 = cb_f, .float4 = cb_f, .float8 = cb_d,
    .undefined = cb_simple, .null = cb_simple, .boolean = cb_bool, .indef_break = cb_indef,
};

enum { TK_DONE, TK_MORE, TK_BAD };

/* Tokenize one whole item at buf; *used gets its length. */
static int tokenize(felix_rec_reader *r, const unsigned char *buf, size_t len, size_t *used)
{
    r->ntok = 0;
    r->sp = 0;
    r->done = 0;
    r->tok_bad = 0;
    size_t pos = 0;
    while (!r->done) {
        if (pos == len)
            return TK_MORE;
        struct cbor_decoder_result res = cbor_stream_decode(buf + pos, len - pos, &callbacks, r);
        if (res.status == CBOR_DECODER_NEDATA)
            return TK_MORE;
        if (res.status != CBOR_DECODER_FINISHED || r->tok_bad)
            return TK_BAD;
        pos += res.read;
        if (pos > MAX_ITEM)
            return TK_BAD;
    }
    *used = pos;
    return TK_DONE;
}

/* Index of the token after the subtree at i (recorded while tokenizing). */
static size_t skip(const felix_rec_reader *r, size_t i)
{
    while (i < r->ntok && r->tok[i].type == T_TAG)
        i++;
    return i < r->ntok ? r->tok[i].end : r->ntok;
}

static int tok_uint(const felix_rec_reader *r, size_t i, uint64_t *v)
{
    if (i >= r->ntok || r->tok[i].type != T_UINT)
        return -1;
    *v = r->tok[i].u;
    return 0;
}

static int tok_int(const felix_rec_reader *r, size_t i, int64_t *v)
{
    if (i >= r->ntok || r->tok[i].u > (uint64_t)INT64_MAX)
        return -1;
    if (r->tok[i].type == T_UINT)
        *v = (int64_t)r->tok[i].u;
    else if (r->tok[i].type == T_NEG)
        *v = -1 - (int64_t)r->tok[i].u;
    else
        return -1;
    return 0;
}

/* An integer taken modulo 2^64 (delta-coded words). */
static int tok_word(const felix_rec_reader *r, size_t i, uint64_t *v)
{
    if (i >= r->ntok)
        return -1;
    if (r->tok[i].type == T_UINT)
        *v = r->tok[i].u;
    else if (r->tok[i].type == T_NEG)
        *v = ~r->tok[i].u;
    else
        return -1;
    return 0;
}

static int tok_str(const felix_rec_reader *r, size_t i, char *buf, size_t cap)
{
    if (i >= r->ntok || r->tok[i].type != T_STR || cap == 0)
        return -1;
    size_t n = r->tok[i].slen < cap - 1 ? r->tok[i].slen : cap - 1;
    memcpy(buf, r->tok[i].s, n);
    buf[n] = '\0';
    for (size_t k = 0; k < n; k++) /* no control bytes reach callers */
        if ((unsigned char)buf[k] < 0x20)
            buf[k] = '?';
    return 0;
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
            return corrupt(r, "an item larger than 64 MiB");
        size_t n = r->d_cap * 2;
        unsigned char *p = realloc(r->d, n);
        if (!p)
            return fx_fail(FELIX_ENOMEM, "out of memory reading a recording");
        r->d = p;
        r->d_cap = n;
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
 * CHECK_GOOD, CHECK_ABSENT, or CHECK_BAD (a mismatch). */
enum { CHECK_BAD = 0, CHECK_ABSENT = 1, CHECK_GOOD = 2 };
static int check_ok(const felix_rec_reader *r, const unsigned char *buf, size_t used)
{
    if (r->ntok < 3 || r->tok[0].type != T_MAP || used < 7)
        return CHECK_ABSENT;
    size_t i = 1, last = 0;
    for (uint64_t k = 0; k < r->tok[0].u && i < r->ntok; k++) {
        last = i;
        i = skip(r, i + 1);
    }
    if (r->tok[last].type != T_UINT || r->tok[last].u != FX_KEY_CHECK || last + 1 >= r->ntok ||
        r->tok[last + 1].type != T_UINT || buf[used - 6] != FX_KEY_CHECK || buf[used - 5] != 0x1a)
        return CHECK_ABSENT;
    return fx_crc32(buf, used - 6) == (uint32_t)r->tok[last + 1].u ? CHECK_GOOD : CHECK_BAD;
}

/* Tokenize the next whole item; returns 0, FELIX_EEOF, or an error. */
static int next_tokens(felix_rec_reader *r)
{
    for (;;) {
        size_t used = 0;
        int tk = r->d_pos < r->d_len ? tokenize(r, r->d + r->d_pos, r->d_len - r->d_pos, &used) : TK_MORE;
        if (tk == TK_DONE) {
            r->item_frame = frame_of(r, r->d_base + r->d_pos);
            /* A writer that checks its header checks every item: then a
             * missing check is damage too (a flipped bit in key 23). */
            int ck = check_ok(r, r->d + r->d_pos, used);
            if (ck == CHECK_BAD || (ck == CHECK_ABSENT && r->checked))
                return fx_fail(FELIX_ECORRUPT,
                               "recording corrupt: item check %s at decompressed byte %llu (in the frame starting at byte %llu)",
                               ck == CHECK_BAD ? "failed" : "missing", (unsigned long long)(r->d_base + r->d_pos),
                               (unsigned long long)r->item_frame);
            r->last_check = ck;
            r->d_pos += used;
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

/* ---- items ---- */

static int parse_header(felix_rec_reader *r)
{
    if (r->ntok == 0 || r->tok[0].type != T_MAP)
        return fx_fail(FELIX_ECORRUPT, "not a felix recording: the first item is not a header");
    felix_rec_header *h = &r->hdr;
    memset(h, 0, sizeof *h);
    uint64_t type = 99, v;
    int64_t sv;
    char name[32] = "";
    size_t i = 1;
    for (uint64_t k = 0; k < r->tok[0].u && i < r->ntok; k++) {
        uint64_t key;
        size_t val = i + 1;
        if (tok_uint(r, i, &key) < 0)
            return fx_fail(FELIX_ECORRUPT, "not a felix recording: header key is not an integer");
        switch (key) {
        case 0: if (tok_uint(r, val, &type) < 0) type = 99; break;
        case 1: tok_str(r, val, name, sizeof name); break;
        case 2: if (tok_uint(r, val, &v) == 0) h->format_version = (uint32_t)v; break;
        case 3: tok_str(r, val, h->felix_version, sizeof h->felix_version); break;
        case 4: tok_str(r, val, h->host, sizeof h->host); break;
        case 5: if (tok_uint(r, val, &v) == 0) h->ncpus = (uint32_t)v; break;
        case 6: if (tok_uint(r, val, &v) == 0) h->freq_hz = v; break;
        case 7: tok_str(r, val, h->freq_source, sizeof h->freq_source); break;
        case 8: if (tok_uint(r, val, &v) == 0) h->page_size = (uint32_t)v; break;
        case 9: if (tok_uint(r, val, &v) == 0) h->pid = (int32_t)v; break;
        case 10: tok_str(r, val, h->cmdline, sizeof h->cmdline); break;
        case 11: tok_str(r, val, h->fex_version, sizeof h->fex_version); break;
        case 12: if (tok_uint(r, val, &v) == 0) h->app_type = (uint8_t)v; break;
        case 13: if (tok_uint(r, val, &v) == 0) h->stats_version = (uint8_t)v; break;
        case 14: if (tok_uint(r, val, &v) == 0) h->thread_stats_size = (uint16_t)v; break;
        case 15: if (tok_int(r, val, &sv) == 0) h->start_wall_ns = sv; break;
        case 16: if (tok_int(r, val, &sv) == 0) h->start_mono_ns = sv; break;
        case 17: if (tok_uint(r, val, &v) == 0) h->interval_ns = (int64_t)(v > INT64_MAX ? 0 : v); break;
        case 18: tok_str(r, val, h->name, sizeof h->name); break;
        default: break;
        }
        i = skip(r, val);
    }
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
    /* Samples after an exec may have another layout: room for any. */
    r->wbuf = malloc(FX_MAX_WORDS * sizeof *r->wbuf);
    if (!r->wbuf)
        return fx_fail(FELIX_ENOMEM, "out of memory");
    return 0;
}

static int bad_item(felix_rec_reader *r, const char *what)
{
    return fx_fail(FELIX_ECORRUPT, "recording corrupt: %s in sample %lld (in the frame starting at byte %llu)", what,
                   (long long)(r->sample_no + 1), (unsigned long long)r->item_frame);
}

static int parse_sample(felix_rec_reader *r)
{
    size_t at[12] = {0}; /* value token of keys 1..11 */
    size_t i = 1;
    for (uint64_t k = 0; k < r->tok[0].u && i < r->ntok; k++) {
        uint64_t key;
        if (tok_uint(r, i, &key) < 0)
            return bad_item(r, "a key that is not an integer");
        if (key >= 1 && key <= 11)
            at[key] = i + 1;
        i = skip(r, i + 1);
    }
    int64_t t;
    if (!at[1] || tok_int(r, at[1], &t) < 0 || !at[3] || r->tok[at[3]].type != T_ARR)
        return bad_item(r, "no time or thread list");
    int key = at[2] && r->tok[at[2]].type == T_BOOL && r->tok[at[2]].u;
    if (key)
        r->in_chunk = 0;
    /* Wall clock: absolute in key samples, else the difference from the
     * time predicted by the chunk's key sample. */
    int64_t wall, sv = 0;
    if (at[9] && tok_int(r, at[9], &sv) < 0)
        return bad_item(r, "a wall-clock time that is not an integer");
    if (key) {
        r->key_wall = sv;
        r->key_t = t;
        r->have_key_wall = 1;
    }
    if (!r->have_key_wall) /* no key sample yet: a damaged chunk start */
        return bad_item(r, "a chunk that does not start with a key sample");
    /* Times that cannot be represented are damage, never a wrapped value. */
    int64_t mono, since_key;
    if (__builtin_add_overflow(r->hdr.start_mono_ns, t, &mono) || __builtin_sub_overflow(t, r->key_t, &since_key) ||
        (key ? 0 : __builtin_add_overflow(r->key_wall, since_key, &wall) || __builtin_add_overflow(wall, sv, &wall)))
        return bad_item(r, "a time out of range");
    if (key)
        wall = sv;
    if (r->have_prev && mono < r->last_mono)
        return bad_item(r, "a sample time before the previous sample's");
    /* The image (key 10, absent: 1) and, after an exec, the layout and app
     * type (key 11, absent: the header's). */
    uint64_t image = 1, slot = r->slot, app = r->hdr.app_type;
    if (at[10] && (tok_uint(r, at[10], &image) < 0 || image == 0 || image > UINT32_MAX))
        return bad_item(r, "a bad image number");
    if (at[11] && (r->tok[at[11]].type != T_ARR || r->tok[at[11]].u < 2 || tok_uint(r, at[11] + 1, &slot) < 0 ||
                   slot < 48 || felix_slot_size_valid((unsigned)slot) != slot || tok_uint(r, at[11] + 2, &app) < 0 ||
                   app > 255))
        return bad_item(r, "a bad slot layout");
    r->nwords = (unsigned)slot / 8 - 1;
    felix_snapshot *s = r->cur;
    int rc = felix_snapshot_begin(s, mono, wall, (uint16_t)slot);
    if (rc < 0)
        return rc;
    /* Delta-coded against the previous sample only within a chunk and one
     * layout (a hostile file could change it mid-chunk). */
    int delta = r->in_chunk && r->have_prev && felix_snapshot_get_info(r->prev)->slot_size == slot;
    uint64_t nthr = r->tok[at[3]].u;
    if (nthr > r->ntok || (rc = fx_grow_deltas(&r->dl, (size_t)nthr, r->nwords)) < 0)
        return nthr > r->ntok ? bad_item(r, "a thread count larger than the item") : rc;
    size_t j = at[3] + 1;
    for (uint64_t n = 0; n < nthr; n++) {
        if (j >= r->ntok || r->tok[j].type != T_ARR || r->tok[j].u < 1)
            return bad_item(r, "a thread that is not an array");
        size_t end = skip(r, j);
        uint64_t m = r->tok[j].u - 1, tid;
        if (tok_uint(r, j + 1, &tid) < 0 || tid == 0 || tid > UINT32_MAX)
            return bad_item(r, "a bad thread id");
        long pj = delta ? felix_snapshot_index(r->prev, (uint32_t)tid) : -1;
        const uint64_t *pd = pj >= 0 && r->dl.has[pj] ? fx_delta_prev(&r->dl, (size_t)pj) : NULL;
        uint64_t *nd = fx_delta_next(&r->dl, felix_snapshot_get_info(s)->nthreads);
        if (pj >= 0)
            fx_thread_words(r->prev, (size_t)pj, r->wbuf);
        else
            memset(r->wbuf, 0, r->nwords * sizeof *r->wbuf);
        for (uint64_t w = 0; w < r->nwords; w++) {
            uint64_t v = 0;
            if (w < m && tok_word(r, j + 2 + w, &v) < 0)
                return bad_item(r, "a counter that is not an integer");
            if (pj >= 0) {
                nd[w] = pd ? pd[w] + v : v; /* this sample's delta */
                r->wbuf[w] += nd[w];
            } else {
                r->wbuf[w] = v;
            }
        }
        uint32_t before = felix_snapshot_get_info(s)->nthreads;
        if ((rc = felix_snapshot_append(s, (uint32_t)tid, 0, r->wbuf, r->nwords)) < 0)
            return rc;
        if (felix_snapshot_get_info(s)->nthreads > before) /* not a dropped duplicate */
            r->dl.next_has[before] = pj >= 0;
        j = end;
    }
    size_t n = felix_snapshot_get_info(s)->nthreads;
    if ((rc = fx_grow_extras(&r->ex, n ? n : 1)) < 0)
        return rc;
    for (size_t x = 0; x < n; x++) { /* names and CPU carry over */
        long pj = r->have_prev ? felix_snapshot_index(r->prev, felix_snapshot_thread(s, x)->tid) : -1;
        if (pj >= 0)
            r->ex.next[x] = r->ex.cur[pj];
        else
            memset(&r->ex.next[x], 0, sizeof r->ex.next[x]);
        if (!delta || pj < 0)
            r->ex.next[x].has_cpu = 0;
        else if (r->ex.next[x].has_cpu)
            r->ex.next[x].has_cpu = 1; /* known, but not measured in this sample */
    }
    if (at[4] && r->tok[at[4]].type == T_ARR) {
        size_t q = at[4] + 1;
        for (uint64_t e = 0; e < r->tok[at[4]].u && q < r->ntok; e++) {
            uint64_t tid;
            long x;
            if (r->tok[q].type == T_ARR && r->tok[q].u == 2 && tok_uint(r, q + 1, &tid) == 0 &&
                (x = felix_snapshot_index(s, (uint32_t)tid)) >= 0)
                tok_str(r, q + 2, r->ex.next[x].name, FX_NAME_LEN);
            q = skip(r, q);
        }
    }
    if (at[5] && r->tok[at[5]].type == T_ARR) {
        size_t q = at[5] + 1;
        for (uint64_t e = 0; e < r->tok[at[5]].u && q < r->ntok; e++) {
            uint64_t tid, v;
            long x;
            if (r->tok[q].type == T_ARR && r->tok[q].u == 2 && tok_uint(r, q + 1, &tid) == 0 &&
                tok_word(r, q + 2, &v) == 0 && (x = felix_snapshot_index(s, (uint32_t)tid)) >= 0) {
                struct thread_extra *ex = &r->ex.next[x];
                ex->cpu = ex->has_cpu ? ex->cpu + v : v;
                ex->has_cpu = 2; /* measured in this sample */
            }
            q = skip(r, q);
        }
    }
    felix_mem *mem = felix_snapshot_mem_mut(s);
    if (at[6] && r->tok[at[6]].type == T_ARR) {
        felix_mem_clear(mem);
        size_t q = at[6] + 1;
        for (uint64_t e = 0; e < r->tok[at[6]].u && q < r->ntok; e++) {
            char name[48];
            uint64_t rss, size, maps, largest;
            if (r->tok[q].type == T_ARR && r->tok[q].u >= 5 && tok_str(r, q + 1, name, sizeof name) == 0 &&
                tok_uint(r, q + 2, &rss) == 0 && tok_uint(r, q + 3, &size) == 0 &&
                tok_uint(r, q + 4, &maps) == 0 && tok_uint(r, q + 5, &largest) == 0 && name[0])
                felix_mem_set(mem, name, rss, size, (uint32_t)maps, largest);
            q = skip(r, q);
        }
        felix_snapshot_set_has_mem(s, 1);
    }
    if (at[7] && r->tok[at[7]].type == T_ARR && r->tok[at[7]].u >= 3) {
        uint64_t a, b, c;
        if (tok_uint(r, at[7] + 1, &a) == 0 && tok_uint(r, at[7] + 2, &b) == 0 && tok_uint(r, at[7] + 3, &c) == 0) {
            r->seg_head = (uint32_t)a;
            r->seg_size = (uint32_t)b;
            r->seg_real = (uint32_t)c;
        }
    }
    felix_snapshot_info *si = felix_snapshot_info_mut(s);
    si->version = r->hdr.stats_version;
    si->app_type = (uint8_t)app;
    si->image = (uint32_t)image;
    si->head = r->seg_head;
    si->size = r->seg_size;
    si->real_size = r->seg_real;
    if (at[8] && r->tok[at[8]].type == T_ARR && r->tok[at[8]].u >= 5) {
        uint64_t v[5];
        int ok = 1;
        for (int k = 0; k < 5; k++)
            ok &= tok_uint(r, at[8] + 1 + (size_t)k, &v[k]) == 0;
        if (ok) {
            si->anomaly_cycle = (uint32_t)v[0];
            si->anomaly_bad_offset = (uint32_t)v[1];
            si->anomaly_dup_tid = (uint32_t)v[2];
            si->skipped_free = (uint32_t)v[3];
            si->skipped_racing = (uint32_t)v[4];
        }
    }
    /* cur becomes prev. */
    r->cur = r->prev;
    r->prev = s;
    fx_extras_swap(&r->ex);
    fx_deltas_swap(&r->dl);
    r->have_prev = 1;
    r->in_chunk = 1;
    r->sample_no++;
    r->last_mono = mono;
    r->last_key = key;
    return 0;
}

static int parse_event(felix_rec_reader *r, felix_rec_event *ev)
{
    felix_rec_event e;
    memset(&e, 0, sizeof e);
    size_t i = 1;
    for (uint64_t k = 0; k < r->tok[0].u && i < r->ntok; k++) {
        uint64_t key, v;
        int64_t sv;
        size_t val = i + 1;
        if (tok_uint(r, i, &key) < 0)
            return bad_item(r, "an event key that is not an integer");
        switch (key) {
        case 1:
            if (tok_int(r, val, &sv) == 0 && __builtin_add_overflow(r->hdr.start_mono_ns, sv, &e.mono_ns))
                return bad_item(r, "an event time out of range");
            break;
        case 2: if (tok_uint(r, val, &v) == 0) e.kind = (int)(v > 1000 ? 0 : v); break;
        case 3: if (tok_uint(r, val, &v) == 0) e.tid = (uint32_t)v; break;
        case 4: if (tok_int(r, val, &sv) == 0) { e.status = (int)sv; e.has_status = 1; } break;
        case 5: tok_str(r, val, e.reason, sizeof e.reason); break;
        case 6: if (tok_uint(r, val, &v) == 0) e.interval_ns = (int64_t)(v > INT64_MAX ? 0 : v); break;
        case 7: if (tok_uint(r, val, &v) == 0) e.count = v; break;
        case 8: if (tok_uint(r, val, &v) == 0) e.count = v; break;
        default: break;
        }
        i = skip(r, val);
    }
    if (ev)
        *ev = e;
    return 0;
}

/* ---- open / close ---- */

static int reader_init(felix_rec_reader **out, int fd, int own)
{
    felix_rec_reader *r = calloc(1, sizeof *r);
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
    r->in = malloc(r->in_cap);
    r->d = malloc(r->d_cap);
    r->dctx = ZSTD_createDCtx();
    int rc = 0;
    if (!r->in || !r->d || !r->dctx || felix_snapshot_new(&r->prev) < 0 || felix_snapshot_new(&r->cur) < 0 ||
        felix_snapshot_new(&r->pending) < 0)
        rc = fx_fail(FELIX_ENOMEM, "out of memory creating a recording reader");
    if (rc == 0)
        ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax, 27);
    if (rc == 0) {
        rc = next_tokens(r);
        if (rc == FELIX_EEOF)
            rc = fx_fail(FELIX_ETRUNC, "recording is empty");
        else if (rc == 0)
            rc = parse_header(r);
        r->checked = r->last_check == CHECK_GOOD;
    }
    if (rc < 0) {
        felix_rec_reader_close(r);
        return rc;
    }
    if (r->seekable) { /* where the first chunk starts: the header frame's end */
        unsigned char *head = malloc(65536);
        ssize_t n = head ? pread(fd, head, 65536, 0) : -1;
        size_t fs = n > 0 ? ZSTD_findFrameCompressedSize(head, (size_t)n) : 0;
        r->header_end = ZSTD_isError(fs) ? 0 : fs;
        free(head);
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
    ZSTD_freeDCtx(r->dctx);
    free(r->in);
    free(r->d);
    free(r->tok);
    felix_snapshot_free(r->prev);
    felix_snapshot_free(r->cur);
    felix_snapshot_free(r->pending);
    fx_extras_free(&r->ex);
    free(r->wbuf);
    fx_deltas_free(&r->dl);
    free(r->chunks);
    free(r->regions);
    free(r);
}

const felix_rec_header *felix_rec_reader_header(const felix_rec_reader *r) { return r ? &r->hdr : NULL; }
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

int felix_rec_next(felix_rec_reader *r, felix_snapshot *snap, felix_rec_event *ev, int *out_item)
{
    if (!r)
        return fx_fail(FELIX_EINVAL, "felix_rec_next: NULL reader");
    if (r->have_pending) {
        r->have_pending = 0;
        if (out_item)
            *out_item = FELIX_REC_SAMPLE;
        return snap ? felix_snapshot_copy(snap, r->pending) : 0;
    }
    for (;;) {
        int rc = next_tokens(r);
        if (rc < 0)
            return rc;
        if (r->tok[0].type != T_MAP || r->tok[0].u == 0)
            continue; /* not an item of ours: skip */
        uint64_t type;
        if (tok_uint(r, 2, &type) < 0 || r->tok[1].type != T_UINT || r->tok[1].u != 0)
            continue; /* key 0 must come first in items we write; skip others */
        if (type == FX_ITEM_SAMPLE) {
            if ((rc = parse_sample(r)) < 0)
                return rc;
            if (out_item)
                *out_item = FELIX_REC_SAMPLE;
            return snap ? felix_snapshot_copy(snap, r->prev) : 0;
        }
        if (type == FX_ITEM_EVENT) {
            if ((rc = parse_event(r, ev)) < 0)
                return rc;
            if (out_item)
                *out_item = FELIX_REC_EVENT;
            return 0;
        }
        if (type == FX_ITEM_END) {
            r->ended = 1;
            if (out_item)
                *out_item = FELIX_REC_END;
            return 0;
        }
        /* an item type we do not know (or a header): skipped */
    }
}

int felix_rec_next_sample(felix_rec_reader *r, felix_snapshot *snap)
{
    for (;;) {
        int item = 0;
        int rc = felix_rec_next(r, snap, NULL, &item);
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
    r->nmarks = 0;
    r->in_frame = 0;
    r->zerr = 0;
    r->hint = 32;
    r->eof = 0;
    r->have_prev = r->in_chunk = r->have_pending = 0;
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

static void add_region(felix_rec_reader *r, const char *name)
{
    for (size_t i = 0; i < r->nregions; i++)
        if (strcmp(r->regions[i], name) == 0)
            return;
    if (r->nregions >= FELIX_MEM_MAX_REGIONS)
        return;
    if (!r->regions && !(r->regions = calloc(FELIX_MEM_MAX_REGIONS, sizeof *r->regions)))
        return;
    /* regions is allocated once, so the pointers callers get stay valid. */
    r->region_ptrs[r->nregions] = r->regions[r->nregions];
    snprintf(r->regions[r->nregions++], sizeof r->regions[0], "%s", name);
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
    unsigned char *t = malloc(tsize + 8);
    if (!t)
        return -1;
    uint64_t sum = 0;
    int ok = pread(r->fd, t, tsize + 8, (off_t)(size - tsize - 8)) == (ssize_t)(tsize + 8) &&
             get_le32(t) == FX_MAGIC_SEEKTABLE && get_le32(t + 4) == tsize;
    for (uint64_t i = 0; ok && i < nframes; i++)
        sum += get_le32(t + 8 + i * 8);
    free(t);
    if (!ok || sum + 8 > size - tsize - 8)
        return -1;
    unsigned char h[8];
    if (pread(r->fd, h, 8, (off_t)sum) != 8 || get_le32(h) != FX_MAGIC_INDEX)
        return -1;
    uint32_t len = get_le32(h + 4);
    if ((uint64_t)len + sum + 8 > size - tsize - 8 || len > MAX_ITEM)
        return -1;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    size_t used;
    ok = pread(r->fd, buf, len, (off_t)(sum + 8)) == (ssize_t)len && tokenize(r, buf, len, &used) == TK_DONE &&
         r->tok[0].type == T_MAP && check_ok(r, buf, used);
    uint64_t type = 99;
    size_t i = 1;
    r->nchunks = 0;
    r->nregions = 0;
    for (uint64_t k = 0; ok && k < r->tok[0].u && i < r->ntok; k++) {
        uint64_t key;
        size_t val = i + 1;
        if (tok_uint(r, i, &key) < 0) {
            ok = 0;
            break;
        }
        if (key == 0)
            tok_uint(r, val, &type);
        else if (key == 2)
            tok_uint(r, val, &r->total_samples);
        else if (key == 1 && r->tok[val].type == T_ARR) {
            size_t q = val + 1;
            for (uint64_t e = 0; ok && e < r->tok[val].u; e++) {
                uint64_t off, first, ns;
                int64_t ft;
                ok = r->tok[q].type == T_ARR && r->tok[q].u >= 4 && tok_uint(r, q + 1, &off) == 0 &&
                     tok_uint(r, q + 2, &first) == 0 && tok_int(r, q + 3, &ft) == 0 &&
                     tok_uint(r, q + 4, &ns) == 0 && off < sum &&
                     (r->nchunks == 0 || (off > r->chunks[r->nchunks - 1].offset &&
                                          first >= r->chunks[r->nchunks - 1].first_sample));
                if (ok && add_chunk(r, off, first, ft) == 0)
                    r->chunks[r->nchunks - 1].samples = ns;
                q = skip(r, q);
            }
        } else if (key == 3 && r->tok[val].type == T_ARR) {
            size_t q = val + 1;
            for (uint64_t e = 0; e < r->tok[val].u; e++, q = skip(r, q)) {
                char name[48];
                if (tok_str(r, q, name, sizeof name) == 0)
                    add_region(r, name);
            }
        }
        i = skip(r, val);
    }
    free(buf);
    return ok && type == FX_ITEM_INDEX ? 0 : -1;
}

/* No sound index: read the whole recording once, noting each chunk. */
static int scan_index(felix_rec_reader *r)
{
    int rc = reposition(r, r->header_end);
    if (rc < 0)
        return rc;
    r->nchunks = 0;
    r->nregions = 0;
    r->sample_no = -1;
    r->scan_ended = 0;
    for (;;) {
        rc = next_tokens(r);
        if (rc < 0)
            break; /* the end, or the damage: the index covers what is whole */
        uint64_t type;
        if (r->tok[0].type == T_MAP && tok_uint(r, 2, &type) == 0 && type == FX_ITEM_END) {
            r->ended = r->scan_ended = 1;
            r->data_end = r->in_off + r->in_pos; /* where the end item's frame ends, about */
        }
        if (r->tok[0].type != T_MAP || tok_uint(r, 2, &type) < 0 || type != FX_ITEM_SAMPLE)
            continue;
        size_t at_t = 0, at_key = 0, at_mem = 0, i = 1;
        for (uint64_t k = 0; k < r->tok[0].u && i < r->ntok; k++) {
            uint64_t key = 99;
            tok_uint(r, i, &key);
            if (key == 1)
                at_t = i + 1;
            else if (key == 2)
                at_key = i + 1;
            else if (key == 6)
                at_mem = i + 1;
            i = skip(r, i + 1);
        }
        int64_t t = 0;
        if (at_t)
            tok_int(r, at_t, &t);
        r->sample_no++;
        if (at_key && r->tok[at_key].type == T_BOOL && r->tok[at_key].u &&
            add_chunk(r, r->item_frame, (uint64_t)r->sample_no, t) < 0)
            break;
        if (r->nchunks)
            r->chunks[r->nchunks - 1].samples++;
        if (at_mem && r->tok[at_mem].type == T_ARR) {
            size_t q = at_mem + 1;
            for (uint64_t e = 0; e < r->tok[at_mem].u; e++, q = skip(r, q)) {
                char name[48];
                if (r->tok[q].type == T_ARR && tok_str(r, q + 1, name, sizeof name) == 0)
                    add_region(r, name);
            }
        }
    }
    r->total_samples = (uint64_t)(r->sample_no + 1);
    return 0;
}

static int ensure_index(felix_rec_reader *r)
{
    if (!r)
        return fx_fail(FELIX_EINVAL, "NULL reader");
    if (!r->seekable || r->header_end == 0)
        return fx_fail(FELIX_ENOTSUP, "the recording is not seekable (a pipe or standard input)");
    if (r->index_state)
        return 0;
    int rc = 0;
    int64_t keep = r->sample_no;
    int scanned = load_index(r) < 0;
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
    r->index_state = 1;
    if (rc == 0 && scanned) { /* back to where the caller was reading */
        if (keep < 0 || r->nchunks == 0) {
            rc = reposition(r, r->header_end);
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
    if (r->index_rebuilt)
        return fx_fail(FELIX_ECORRUPT, "recording corrupt: chunk %zu (byte %llu) does not start with a key sample", c,
                       (unsigned long long)r->chunks[c].offset);
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
    return chunk_sound(r, c) ? 0 : fx_fail(FELIX_ECORRUPT, "recording corrupt at byte %llu: no key sample where a chunk starts",
                                          (unsigned long long)r->chunks[c].offset);
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
    if (n == 0 && r && r->seekable && r->header_end) { /* the start needs no index */
        int rc = reposition(r, r->header_end);
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
            if ((rc = felix_snapshot_copy(r->pending, r->prev)) < 0)
                return rc;
            r->have_pending = 1;
            return 0;
        }
    }
}
