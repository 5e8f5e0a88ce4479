/*
 * Recording writer. Invariants:
 *  - Frame 0 holds the header; each later frame is a chunk that starts with
 *    a key sample. Every item is flushed (ZSTD_e_flush) as soon as it is
 *    encoded, so the file always decodes up to the last item written.
 *  - prev holds the last sample written, with names[]/cpu[] aligned to its
 *    thread order; in_chunk says whether it belongs to the current chunk
 *    (then the next sample is delta-coded against it).
 *  - After a write error the writer is failed: later calls return it again.
 */
#include "felix/felix.h"
#include "felix/record.h"
#include "record_format.h"

#include <cbor.h>

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* Format 2's varints: unsigned LEB128; signed values as their zigzag. */
static inline uint64_t fx_zigzag(uint64_t d) { return (d << 1) ^ (0 - (d >> 63)); }

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

static inline void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* ---- encoding: a growable buffer of items, each a CBOR map ----
 * The buffer holds every item of one write (a sample and its events), so
 * they reach zstd together and are flushed once. */
typedef struct fx_buf {
    unsigned char *p;
    size_t len, cap;
    size_t start; /* where the item being encoded starts */
    int oom;
} fx_buf;

static int fx_buf_reserve(fx_buf *b, size_t more)
{
    if (more > SIZE_MAX - b->len || (b->len + more > b->cap && fx_grow((void **)&b->p, &b->cap, b->len + more, 1) < 0)) {
        b->oom = 1;
        return -1;
    }
    return 0;
}

static void enc_uint(fx_buf *b, uint64_t v)
{
    if (fx_buf_reserve(b, 9) == 0)
        b->len += cbor_encode_uint(v, b->p + b->len, b->cap - b->len);
}

static void enc_int(fx_buf *b, int64_t v)
{
    if (v >= 0)
        enc_uint(b, (uint64_t)v);
    else if (fx_buf_reserve(b, 9) == 0)
        b->len += cbor_encode_negint((uint64_t)(-(v + 1)), b->p + b->len, b->cap - b->len);
}

static void enc_map(fx_buf *b, size_t n)
{
    if (fx_buf_reserve(b, 9) == 0)
        b->len += cbor_encode_map_start(n, b->p + b->len, b->cap - b->len);
}

static void enc_arr(fx_buf *b, size_t n)
{
    if (fx_buf_reserve(b, 9) == 0)
        b->len += cbor_encode_array_start(n, b->p + b->len, b->cap - b->len);
}

static void enc_bool(fx_buf *b, int v)
{
    if (fx_buf_reserve(b, 1) == 0)
        b->len += cbor_encode_bool(v != 0, b->p + b->len, b->cap - b->len);
}

/* Bytes from outside (names, command lines, versions) are byte strings: a
 * text string must be valid UTF-8, and these may hold any bytes. */
static void enc_bytes(fx_buf *b, const void *s, size_t n)
{
    if (fx_buf_reserve(b, 9 + n) == 0) {
        b->len += cbor_encode_bytestring_start(n, b->p + b->len, b->cap - b->len);
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static void enc_str(fx_buf *b, const char *s) { enc_bytes(b, s, strlen(s)); }

static void enc_text(fx_buf *b, const char *s) /* ASCII we write ourselves */
{
    size_t n = strlen(s);
    if (fx_buf_reserve(b, 9 + n) == 0) {
        b->len += cbor_encode_string_start(n, b->p + b->len, b->cap - b->len);
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

/* Every item is a map whose last pair is key 23: a CRC-32C of the item's
 * bytes before that key, as a 5-byte CBOR unsigned integer (0x1a + 4 bytes).
 * enc_item starts an item's map of n pairs (the check added) after the
 * buffer's earlier items; enc_check ends it. */
static void enc_item(fx_buf *b, size_t n)
{
    b->start = b->len;
    enc_map(b, n + 1);
}

static void enc_check(fx_buf *b)
{
    uint32_t crc = b->oom ? 0 : fx_crc32c(b->p + b->start, b->len - b->start);
    enc_uint(b, FX_KEY_CHECK);
    if (fx_buf_reserve(b, 5) == 0)
        b->len += cbor_encode_uint32(crc, b->p + b->len, b->cap - b->len);
}

/* Format 2's thread block: varints (room reserved by the caller). */
static inline void put_varint(fx_buf *b, uint64_t v)
{
    unsigned char *p = b->p + b->len;
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    b->len = (size_t)(p - b->p);
}

struct chunk_entry {
    uint64_t offset, first_sample, samples;
    int64_t first_t;
    uint64_t csize, dsize;
};

struct felix_rec_writer {
    felix_rec_header hdr;
    felix_rec_options opt;
    int fd, own_fd, failed, is_reg;
    ZSTD_CCtx *cctx;
    fx_buf item;
    unsigned char *obuf;
    size_t obuf_cap;
    uint64_t offset;            /* bytes written */
    uint64_t frame_start, frame_dsize;
    struct chunk_entry *chunks; /* chunks[nchunks] is the open one when chunk_open */
    size_t nchunks, chunks_cap;
    int chunk_open;
    uint64_t header_csize, header_dsize;
    felix_snapshot *prev;
    int have_prev, in_chunk;
    fx_extras ex;               /* names and CPU times, aligned to prev */
    fx_deltas dl;               /* each thread's last word deltas, for second order */
    unsigned char *changed;     /* per thread: name to write */
    size_t changed_cap;
    long *link;                 /* per thread: its index in prev, or -1 (coded new) */
    long *pidx;                 /* per thread: its TID's index in prev, or -1 (prepare_extras) */
    uint64_t *cpu;              /* per thread: the CPU time to write (enc_cpu) */
    uint64_t *zbuf;             /* per thread: a column's values (enc_threads) */
    unsigned *colhdr;           /* per column (linked threads' words, new threads' TID, offset and
                                   words, then linked threads' first deltas): its last header
                                   (FX_COL_NONE: none in the chunk) */
    uint32_t new_tid, new_off;  /* the chunk's last new thread's TID and slot offset (0: none yet) */
    char recent[FX_RECENT_NAMES][FX_NAME_LEN]; /* the chunk's recent thread names, most recent first */
    unsigned nrecent;
    uint64_t *slotmap;          /* slots held, for free-slot offsets (enc_threads) */
    size_t link_cap, pidx_cap, cpu_cap, zbuf_cap, colhdr_cap, slotmap_cap;
    uint64_t samples;
    int64_t last_t, last_dt;    /* the last sample's time and the interval before it */
    int have_dt;                /* last_dt is within the chunk */
    int64_t key_wall, key_t;    /* wall clock and time of the chunk's key sample */
    uint32_t seg_head, seg_size, seg_real;
    char regions[FELIX_MEM_MAX_REGIONS][48];
    size_t nregions;
};

/* Write all of buf to fd; a closed pipe gives FELIX_EPIPE, never SIGPIPE. */
static int fx_write_all(int fd, const void *buf, size_t n, const char *what)
{
    /* Block SIGPIPE so a closed pipe gives EPIPE; consume the signal if the
     * write raised it (and it was not pending before). */
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    const char *p = buf;
    int rc = 0;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            rc = fx_fail(fx_errno_code(e), "cannot write %s: %s", what, strerror(e));
            if (e == EPIPE && !was_pending) {
                struct timespec zero = {0, 0};
                sigtimedwait(&pipe_set, NULL, &zero);
            }
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static int w_out(felix_rec_writer *w, const void *p, size_t n)
{
    int rc = fx_write_all(w->fd, p, n, "the recording");
    if (rc < 0) {
        w->failed = rc;
        return rc;
    }
    w->offset += n;
    return 0;
}

/* Compress the encoded item; mode ZSTD_e_flush or ZSTD_e_end. */
static int w_push(felix_rec_writer *w, const void *data, size_t len, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {data, len, 0};
    w->frame_dsize += len;
    for (;;) {
        ZSTD_outBuffer out = {w->obuf, w->obuf_cap, 0};
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, mode);
        if (ZSTD_isError(left))
            return w->failed = fx_fail(ZSTD_getErrorCode(left) == ZSTD_error_memory_allocation ? FELIX_ENOMEM : FELIX_EIO,
                                       "zstd: %s", ZSTD_getErrorName(left));
        if (out.pos && w_out(w, w->obuf, out.pos) < 0)
            return w->failed;
        if (left == 0 && in.pos == in.size)
            break;
    }
    if (w->opt.fsync && w->is_reg && fdatasync(w->fd) < 0 && errno != EINVAL)
        return w->failed = fx_fail(fx_errno_code(errno), "cannot sync the recording: %s", strerror(errno));
    return 0;
}

/* End the item being encoded; it waits in the buffer for w_flush. */
static int w_item(felix_rec_writer *w)
{
    enc_check(&w->item);
    if (w->item.oom)
        return w->failed = fx_fail(FELIX_ENOMEM, "out of memory encoding a recording item");
    return 0;
}

/* Hand the buffered items to zstd and flush them into the file: they decode
 * from the file from now on, whatever happens to this process. */
static int w_flush(felix_rec_writer *w)
{
    int rc = w_push(w, w->item.p, w->item.len, ZSTD_e_flush);
    w->item.len = w->item.start = 0;
    return rc;
}

static int end_frame(felix_rec_writer *w, uint64_t *csize, uint64_t *dsize)
{
    int rc = w_push(w, NULL, 0, ZSTD_e_end);
    if (rc < 0)
        return rc;
    *csize = w->offset - w->frame_start;
    *dsize = w->frame_dsize;
    w->frame_start = w->offset;
    w->frame_dsize = 0;
    return 0;
}

static int close_chunk(felix_rec_writer *w)
{
    if (!w->chunk_open)
        return 0;
    struct chunk_entry *c = &w->chunks[w->nchunks];
    int rc = end_frame(w, &c->csize, &c->dsize);
    if (rc < 0)
        return rc;
    w->nchunks++;
    w->chunk_open = 0;
    w->in_chunk = 0;
    return 0;
}

static int write_header(felix_rec_writer *w)
{
    const felix_rec_header *h = &w->hdr;
    fx_buf *b = &w->item;
    enc_item(b, FX_H_NKEYS - (h->start_boot_ns > 0 ? 0 : 1));
    enc_uint(b, FX_KEY_TYPE), enc_uint(b, FX_ITEM_HEADER);
    enc_uint(b, FX_H_FORMAT), enc_text(b, FX_REC_FORMAT_NAME);
    enc_uint(b, FX_H_VERSION), enc_uint(b, FELIX_REC_FORMAT_VERSION);
    enc_uint(b, FX_H_LIBFELIX), enc_str(b, h->felix_version);
    enc_uint(b, FX_H_HOST), enc_str(b, h->host);
    enc_uint(b, FX_H_NCPUS), enc_uint(b, h->ncpus);
    enc_uint(b, FX_H_FREQ), enc_uint(b, h->freq_hz);
    enc_uint(b, FX_H_FREQ_SOURCE), enc_str(b, h->freq_source);
    enc_uint(b, FX_H_PAGE_SIZE), enc_uint(b, h->page_size);
    enc_uint(b, FX_H_PID), enc_uint(b, (uint64_t)(h->pid > 0 ? h->pid : 0));
    enc_uint(b, FX_H_CMDLINE), enc_str(b, h->cmdline);
    enc_uint(b, FX_H_FEX_VERSION), enc_str(b, h->fex_version);
    enc_uint(b, FX_H_APP_TYPE), enc_uint(b, h->app_type);
    enc_uint(b, FX_H_STATS_VERSION), enc_uint(b, h->stats_version);
    enc_uint(b, FX_H_TSS), enc_uint(b, h->thread_stats_size);
    enc_uint(b, FX_H_START_WALL), enc_int(b, h->start_wall_ns);
    enc_uint(b, FX_H_START_MONO), enc_int(b, h->start_mono_ns);
    enc_uint(b, FX_H_INTERVAL), enc_uint(b, (uint64_t)(h->interval_ns > 0 ? h->interval_ns : 0));
    enc_uint(b, FX_H_NAME), enc_str(b, h->name);
    if (h->start_boot_ns > 0)
        enc_uint(b, FX_H_START_BOOT), enc_int(b, h->start_boot_ns);
    int rc = w_item(w);
    if (rc == 0)
        rc = w_flush(w);
    return rc < 0 ? rc : end_frame(w, &w->header_csize, &w->header_dsize);
}

/* The caller-filled structs' _init functions (FELIX_*_INIT for C++). */
#define FX_INIT_FN(type, VERSION)                                                                                      \
    void type##_init(type *p)                                                                                          \
    {                                                                                                                  \
        if (p) {                                                                                                       \
            memset(p, 0, sizeof *p);                                                                                   \
            p->version = VERSION;                                                                                      \
        }                                                                                                              \
    }
FX_INIT_FN(felix_rec_header, FELIX_REC_HEADER_VERSION)
FX_INIT_FN(felix_rec_event, FELIX_REC_EVENT_VERSION)
FX_INIT_FN(felix_rec_options, FELIX_REC_OPTIONS_VERSION)
FX_INIT_FN(felix_rec_thread_info, FELIX_REC_THREAD_INFO_VERSION)

static int writer_init(felix_rec_writer **out, int fd, int own, const felix_rec_header *hdr,
                       const felix_rec_options *opts)
{
    if (!out || !hdr || fd < 0)
        return fx_fail(FELIX_EINVAL, "felix_rec_writer_open: NULL header or bad descriptor");
    if (!FX_VERSION_OK(hdr, FELIX_REC_HEADER_VERSION))
        return fx_fail(FELIX_EINVAL, "felix_rec_writer_open: header version %u (start from FELIX_REC_HEADER_INIT)",
                       hdr->version);
    if (opts && !FX_VERSION_OK(opts, FELIX_REC_OPTIONS_VERSION))
        return fx_fail(FELIX_EINVAL, "felix_rec_writer_open: options version %u (start from FELIX_REC_OPTIONS_INIT)",
                       opts->version);
    if (felix_slot_size_valid(hdr->thread_stats_size) == 0)
        return fx_fail(FELIX_EINVAL, "ThreadStatsSize %u is invalid", hdr->thread_stats_size);
    felix_rec_writer *w = fx_calloc(1, sizeof *w);
    if (!w)
        return fx_fail(FELIX_ENOMEM, "out of memory creating a recording writer");
    /* As much as the caller's version holds; the rest stays 0. */
    memcpy(&w->hdr, hdr, hdr->version >= 2 ? sizeof *hdr : offsetof(felix_rec_header, start_boot_ns));
    w->hdr.version = FELIX_REC_HEADER_VERSION;
    w->hdr.format_version = FELIX_REC_FORMAT_VERSION;
    snprintf(w->hdr.felix_version, sizeof w->hdr.felix_version, "%s", felix_version());
    if (opts)
        w->opt = *opts;
    if (w->opt.chunk_ns <= 0)
        w->opt.chunk_ns = 60000000000LL;
    if (w->opt.chunk_samples == 0)
        w->opt.chunk_samples = 1000;
    if (w->opt.level == 0)
        w->opt.level = 3;
    w->fd = fd;
    w->own_fd = own;
    struct stat st;
    w->is_reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    w->obuf_cap = ZSTD_CStreamOutSize();
    w->obuf = fx_malloc(w->obuf_cap);
    w->cctx = ZSTD_createCCtx_advanced(fx_zstd_mem());
    int rc = felix_snapshot_new(&w->prev);
    if (!w->obuf || !w->cctx || rc < 0) {
        felix_rec_writer_close(w, NULL);
        return fx_fail(FELIX_ENOMEM, "out of memory creating a recording writer");
    }
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->opt.level);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_windowLog, FX_WINDOW_LOG); /* what readers accept */
    if ((rc = write_header(w)) < 0) {
        w->own_fd = 0; /* the caller closes or removes it */
        felix_rec_writer_close(w, NULL);
        if (own)
            close(fd);
        return rc;
    }
    *out = w;
    return 0;
}

int felix_rec_writer_open_fd(felix_rec_writer **out, int fd, const felix_rec_header *hdr,
                             const felix_rec_options *opts)
{
    return writer_init(out, fd, 0, hdr, opts);
}

int felix_rec_writer_open_path(felix_rec_writer **out, const char *path, const felix_rec_header *hdr,
                               const felix_rec_options *opts)
{
    if (!path)
        return fx_fail(FELIX_EINVAL, "felix_rec_writer_open_path: NULL path");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return fx_fail(fx_errno_code(errno) == FELIX_ENOSTATS ? FELIX_EIO : fx_errno_code(errno),
                       "cannot create %s: %s", path, strerror(errno));
    return writer_init(out, fd, 1, hdr, opts);
}

uint64_t felix_rec_writer_samples(const felix_rec_writer *w) { return w ? w->samples : 0; }
uint64_t felix_rec_writer_bytes(const felix_rec_writer *w) { return w ? w->offset : 0; }

/* A time as the recording stores it: ns since the header's monotonic origin.
 * FELIX_EINVAL for a time that cannot be stored (it would overflow). */
static int rel_time(const felix_rec_writer *w, int64_t mono, int64_t *out)
{
    if (__builtin_sub_overflow(mono, w->hdr.start_mono_ns, out))
        return fx_fail(FELIX_EINVAL, "time %lld ns cannot be stored relative to the start %lld ns", (long long)mono,
                       (long long)w->hdr.start_mono_ns);
    return 0;
}

static int write_event_item(felix_rec_writer *w, const felix_rec_event *ev)
{
    int64_t t;
    int rc = rel_time(w, ev->mono_ns, &t);
    if (rc < 0)
        return rc;
    fx_buf *b = &w->item;
    size_t n = 3;
    int tid = ev->kind == FELIX_EV_THREAD_STARTED || ev->kind == FELIX_EV_THREAD_EXITED;
    n += tid + (ev->kind == FELIX_EV_EXEC) + (ev->kind == FELIX_EV_PROCESS_EXITED && ev->has_status) +
         (ev->kind == FELIX_EV_STOPPED && ev->reason[0]) + (ev->kind == FELIX_EV_INTERVAL_CHANGED) +
         (ev->kind == FELIX_EV_SAMPLES_MISSED);
    enc_item(b, n);
    enc_uint(b, FX_KEY_TYPE), enc_uint(b, FX_ITEM_EVENT);
    enc_uint(b, FX_E_TIME), enc_int(b, t);
    enc_uint(b, FX_E_KIND), enc_uint(b, (uint64_t)ev->kind);
    if (tid)
        enc_uint(b, FX_E_TID), enc_uint(b, ev->tid);
    if (ev->kind == FELIX_EV_PROCESS_EXITED && ev->has_status)
        enc_uint(b, FX_E_STATUS), enc_int(b, ev->status);
    if (ev->kind == FELIX_EV_STOPPED && ev->reason[0])
        enc_uint(b, FX_E_REASON), enc_str(b, ev->reason);
    if (ev->kind == FELIX_EV_INTERVAL_CHANGED)
        enc_uint(b, FX_E_INTERVAL), enc_uint(b, (uint64_t)ev->interval_ns);
    if (ev->kind == FELIX_EV_SAMPLES_MISSED)
        enc_uint(b, FX_E_MISSED), enc_uint(b, ev->count);
    if (ev->kind == FELIX_EV_EXEC)
        enc_uint(b, FX_E_IMAGE), enc_uint(b, ev->count);
    return w_item(w);
}

int felix_rec_write_event(felix_rec_writer *w, const felix_rec_event *ev)
{
    if (!w || !ev || !FX_VERSION_OK(ev, FELIX_REC_EVENT_VERSION) || ev->kind < FELIX_EV_INTERVAL_CHANGED ||
        ev->kind > FELIX_EV_STOPPED)
        return fx_fail(FELIX_EINVAL, "felix_rec_write_event: bad event (kind 3-6, from FELIX_REC_EVENT_INIT)");
    if (w->failed)
        return w->failed;
    int rc = write_event_item(w, ev);
    return rc < 0 ? rc : w_flush(w);
}

/* Names and CPU times for the current snapshot's threads, aligned to it:
 * carried over from prev, then updated from info. Marks what changed, and
 * notes each thread's index in prev by TID (pidx; -1: none), which the
 * links and the CPU times use too. */
static int prepare_extras(felix_rec_writer *w, const felix_snapshot *snap,
                          const felix_rec_thread_info *info, size_t ninfo, size_t *nnames, size_t *ncpu,
                          unsigned char *changed)
{
    size_t n = felix_snapshot_get_info(snap)->nthreads;
    int rc = fx_grow_extras(&w->ex, n);
    if (rc < 0)
        return rc;
    *nnames = *ncpu = 0;
    for (size_t i = 0; i < n; i++) {
        const felix_thread *t = felix_snapshot_thread(snap, i);
        long j = w->have_prev ? fx_snapshot_index_at(w->prev, i, t->tid) : -1;
        w->pidx[i] = j;
        struct thread_extra *x = &w->ex.next[i];
        if (j >= 0)
            *x = w->ex.cur[j];
        else
            memset(x, 0, sizeof *x);
        changed[i] = 0;
    }
    for (size_t k = 0; k < ninfo; k++) {
        long i = felix_snapshot_index(snap, info[k].tid);
        if (i < 0)
            continue;
        struct thread_extra *x = &w->ex.next[i];
        if (info[k].name && strncmp(x->name, info[k].name, FX_NAME_LEN - 1) != 0) {
            snprintf(x->name, sizeof x->name, "%s", info[k].name);
            changed[i] = 1;
            (*nnames)++;
        }
        if (info[k].has_cpu) {
            x->cpu = info[k].cpu_ns;
            x->has_cpu = 2; /* written in this sample */
            (*ncpu)++;
        }
    }
    return 0;
}

/* The most bytes a sample of n threads of nwords words, its events and its
 * extras can take, so the buffer is reserved before the first byte. */
static size_t sample_bound(size_t n, size_t nprev, size_t nwords)
{
    return 256 + 13 * (2 + n * (3 + nwords)) + n * (2 + 5 + 9 + FX_NAME_LEN) + n * (2 + 5 + 9) +
           FELIX_MEM_MAX_REGIONS * (2 + 9 + 48 + 4 * 9) + (n + nprev + 1) * 40;
}

/* The bytes from at + 5 on become a byte string at at (5 bytes were left
 * for its head: blocks are under 4 GiB). */
static void enc_bstr_at(fx_buf *b, size_t at)
{
    size_t len = b->len - at - 5;
    unsigned char head[9];
    size_t hl = cbor_encode_bytestring_start(len, head, sizeof head);
    memmove(b->p + at + hl, b->p + at + 5, len);
    memcpy(b->p + at, head, hl);
    b->len = at + hl + len;
}

/* Format 2's bit columns: LSB-first bits after the block's varints. */
struct bits {
    fx_buf *b;
    uint64_t acc;
    unsigned n;
};

static inline void bits_put(struct bits *w, uint64_t v, unsigned n) /* n <= 32 */
{
    w->acc |= (v & ((1ull << n) - 1)) << w->n;
    w->n += n;
    while (w->n >= 8) {
        w->b->p[w->b->len++] = (unsigned char)w->acc;
        w->acc >>= 8;
        w->n -= 8;
    }
}

static inline void bits_put64(struct bits *w, uint64_t v, unsigned n)
{
    if (n > 32) {
        bits_put(w, v, 32);
        v >>= 32, n -= 32;
    }
    bits_put(w, v, n);
}

static inline unsigned bitlen(uint64_t z) { return z ? 64 - (unsigned)__builtin_clzll(z) : 0; }

/* Bits one value takes with Rice parameter p (escape past FX_RICE_MAXQ). */
static inline unsigned rice_bits(uint64_t z, unsigned p)
{
    uint64_t q = z >> p;
    return q < FX_RICE_MAXQ ? (unsigned)q + 1 + p : FX_RICE_MAXQ + 6 + bitlen(z);
}

static void rice_put(struct bits *w, uint64_t z, unsigned p)
{
    uint64_t q = z >> p;
    if (q < FX_RICE_MAXQ) {
        bits_put(w, 1ull << q, (unsigned)q + 1);
        bits_put64(w, z, p);
    } else {
        unsigned L = bitlen(z);
        bits_put(w, 0, FX_RICE_MAXQ);
        bits_put(w, L - 1, 6);
        bits_put64(w, z, L);
    }
}

/* A column's bits with Rice parameter p (its header not counted). zf:
 * zero-flag coding (a 1 bit for a 0; else a 0 bit and the value less 1). */
static uint64_t col_bits(const uint64_t *z, size_t m, int zf, unsigned p)
{
    uint64_t bits = 0;
    if (p == FX_RICE_ZERO) {
        for (size_t i = 0; i < m; i++)
            if (z[i])
                return UINT64_MAX;
        return 0;
    }
    for (size_t i = 0; i < m; i++)
        bits += zf ? (z[i] ? 1 + rice_bits(z[i] - 1, p) : 1) : rice_bits(z[i], p);
    return bits;
}

/* A column's cheapest Rice parameter near log2 of its values' mean, and
 * its bits. *p == FX_RICE_ZERO: every value is 0. */
static uint64_t col_cost(const uint64_t *z, size_t m, int zf, unsigned *p)
{
    uint64_t sum = 0, nz = 0;
    for (size_t i = 0; i < m; i++) {
        uint64_t v = zf && z[i] ? z[i] - 1 : z[i];
        sum = sum + v < sum ? UINT64_MAX : sum + v;
        nz += z[i] != 0;
    }
    *p = FX_RICE_ZERO;
    if (nz == 0)
        return 0;
    uint64_t mean = sum / (zf ? nz : m);
    unsigned p0 = bitlen(mean);
    uint64_t best_bits = UINT64_MAX;
    for (unsigned q = p0 > 2 ? p0 - 2 : 0; q <= p0 + 1 && q < FX_RICE_ZERO; q++) {
        uint64_t bits = col_bits(z, m, zf, q);
        if (bits < best_bits)
            best_bits = bits, *p = q;
    }
    return best_bits;
}

/* One bit column of m values: the cheapest coding of z2 (second
 * differences, or the values themselves) or z1 (first differences; NULL:
 * not an option), with or without zero flags (counters that often do not
 * move). *last is the column's header in the chunk's previous sample: a
 * single bit says it again. */
static void put_column(struct bits *bw, const uint64_t *z2, const uint64_t *z1, size_t m, unsigned *last)
{
    unsigned best_p = 0, best_h = 0, p = 0;
    uint64_t best = UINT64_MAX;
    for (unsigned h = 0; h < (z1 ? 4u : 2u); h++) {
        uint64_t c = col_cost(h & 2 ? z1 : z2, m, (h & 1) != 0, &p);
        if (c < best)
            best = c, best_p = p, best_h = h << 6;
    }
    unsigned l = *last;
    uint64_t again = l == FX_COL_NONE || ((l & FX_COL_FIRST) && !z1)
                         ? UINT64_MAX
                         : col_bits(l & FX_COL_FIRST ? z1 : z2, m, (l & FX_COL_ZEROS) != 0, l & 63);
    if (again != UINT64_MAX && again + 1 <= best + 9) {
        bits_put(bw, 1, 1);
        best_h = l & 0xc0, best_p = l & 63;
    } else {
        bits_put(bw, 0, 1);
        bits_put(bw, best_h | best_p, 8);
    }
    *last = best_h | best_p;
    const uint64_t *z = best_h & FX_COL_FIRST ? z1 : z2;
    int zf = (best_h & FX_COL_ZEROS) != 0;
    for (size_t i = 0; best_p != FX_RICE_ZERO && i < m; i++) {
        if (zf)
            bits_put(bw, z[i] == 0, 1);
        if (!zf || z[i])
            rice_put(bw, zf ? z[i] - 1 : z[i], best_p);
    }
}

/* The thread block of format 2 (docs/recording-format.md, "Thread block"):
 * how threads link to the previous sample's (a few bits each), the new
 * threads' TIDs, slot offsets and words, then per word the bit columns of
 * the linked threads: their second differences (threads whose previous
 * sample had a delta), then the first deltas of the others. link[i] is
 * thread i's index in prev, or -1 for a thread coded new. */
static void enc_threads(felix_rec_writer *w, fx_buf *b, const felix_snapshot *snap, const long *link, size_t nwords,
                        size_t nprev)
{
    fx_deltas *dl = &w->dl;
    size_t n = felix_snapshot_get_info(snap)->nthreads, nlinked = 0, nfirst = 0;
    int in_order = n == nprev;
    for (size_t i = 0; i < n; i++) {
        nlinked += link[i] >= 0;
        nfirst += link[i] >= 0 && !dl->has[link[i]];
        in_order &= link[i] == (long)i;
    }
    size_t at = b->len;
    b->len += 5; /* room for the byte string's head, moved into place below */
    put_varint(b, n);
    unsigned mode = nlinked == 0 ? FX_LINKS_NONE : in_order ? FX_LINKS_IN_ORDER : FX_LINKS_LISTED;
    put_varint(b, mode);
    struct bits bw = {b, 0, 0};
    /* Links: 1 (the thread after the last one linked), 01 (new), or 00 and
     * the Rice code of another distance. */
    long cursor = 0;
    for (size_t i = 0; mode == FX_LINKS_LISTED && i < n; i++) {
        if (link[i] < 0) {
            bits_put(&bw, 2, 2);
            continue;
        }
        if (link[i] == cursor) {
            bits_put(&bw, 1, 1);
        } else {
            bits_put(&bw, 0, 2);
            rice_put(&bw, fx_zigzag((uint64_t)(link[i] - cursor)) - 1, FX_LINK_RICE);
        }
        cursor = link[i] + 1;
    }
    uint64_t *z1 = w->zbuf, *z2 = w->zbuf + n;
    /* New threads: columns of TID and slot-offset differences from the last
     * new thread's (in this sample or an earlier one of the chunk), then of
     * each word, absolute or as its difference from the last new thread's. */
    size_t nnew = n - nlinked;
    unsigned *hdr_new = w->colhdr + nwords;
    /* Offsets can also be ranks among the free slots (FX_SLOT_INDEXES). */
    const unsigned slot = felix_snapshot_get_info(snap)->slot_size;
    int ranks = nnew > 0;
    if (ranks) {
        memset(w->slotmap, 0, FX_SLOTMAP_WORDS(slot) * sizeof *w->slotmap);
        for (size_t i = 0; i < n; i++) {
            uint32_t x;
            if (link[i] >= 0 && fx_slot_index(felix_snapshot_thread(snap, i)->offset, slot, &x))
                fx_slot_hold(w->slotmap, x);
        }
    }
    for (size_t c = 0; nnew && c < nwords + 2; c++) {
        size_t m = 0;
        uint64_t last = c == 0 ? w->new_tid : c == 1 ? w->new_off : 0;
        uint32_t lowest = 0; /* no free slot below it */
        for (size_t i = 0; c == 1 && ranks && i < n; i++) {
            uint32_t x;
            if (link[i] >= 0)
                continue;
            if (!fx_slot_index(felix_snapshot_thread(snap, i)->offset, slot, &x) ||
                fx_slot_held(w->slotmap, x)) {
                ranks = 0; /* off the slot grid, or a slot held twice: not as a rank */
                break;
            }
            while (fx_slot_held(w->slotmap, lowest))
                lowest++;
            uint64_t v = 0; /* free slots in [lowest, x) */
            for (uint32_t y = lowest; y < x;) {
                if (y % 64 == 0 && y + 64 <= x) {
                    v += 64 - (unsigned)__builtin_popcountll(w->slotmap[y / 64]);
                    y += 64;
                } else {
                    v += !fx_slot_held(w->slotmap, y);
                    y++;
                }
            }
            fx_slot_hold(w->slotmap, x);
            z1[m++] = v;
        }
        if (c == 1 && ranks) { /* z1 holds the ranks; the differences go to z2 */
            m = 0;
            for (size_t i = 0; i < n; i++) {
                if (link[i] >= 0)
                    continue;
                uint64_t v = felix_snapshot_thread(snap, i)->offset;
                z2[m++] = fx_zigzag(v - last);
                last = v;
            }
            put_column(&bw, z2, z1, m, &hdr_new[c]);
            w->new_off = (uint32_t)last;
            continue;
        }
        m = 0;
        for (size_t i = 0; i < n; i++) {
            if (link[i] >= 0)
                continue;
            const felix_thread *t = felix_snapshot_thread(snap, i);
            uint64_t v = c == 0 ? t->tid : c == 1 ? t->offset : dl->anext[i * nwords + c - 2];
            uint64_t z = fx_zigzag(v - last);
            z1[m] = z;
            z2[m++] = c < 2 ? z : v;
            last = v;
        }
        put_column(&bw, z2, c < 2 ? NULL : z1, m, &hdr_new[c]);
        if (c < 2)
            *(c == 0 ? &w->new_tid : &w->new_off) = (uint32_t)last;
    }
    /* Linked threads, per word: a column of the threads whose previous
     * sample had a delta (second differences, or first ones), then one of
     * the others' deltas (as they are, or as differences from the last
     * such thread's: threads often run at one rate). */
    unsigned *hdr_first = w->colhdr + 2 * nwords + 2;
    for (size_t k = 0; nlinked && k < nwords; k++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            long j = link[i];
            if (j < 0)
                continue;
            uint64_t d = dl->anext[i * nwords + k] - dl->a[(size_t)j * nwords + k];
            dl->next[i * nwords + k] = d;
            if (!dl->has[j])
                continue;
            z1[m] = fx_zigzag(d);
            z2[m++] = fx_zigzag(d - dl->d[(size_t)j * nwords + k]);
        }
        if (m)
            put_column(&bw, z2, z1, m, &w->colhdr[k]);
        m = 0;
        uint64_t last = 0;
        for (size_t i = 0; nfirst && i < n; i++) {
            long j = link[i];
            if (j < 0 || dl->has[j])
                continue;
            uint64_t d = dl->next[i * nwords + k];
            z2[m] = fx_zigzag(d);
            z1[m++] = fx_zigzag(d - last);
            last = d;
        }
        if (m)
            put_column(&bw, z2, z1, m, &hdr_first[k]);
    }
    if (bw.n)
        bits_put(&bw, 0, 8 - bw.n);
    for (size_t i = 0; i < n; i++)
        dl->next_has[i] = link[i] >= 0;
    enc_bstr_at(b, at);
}

/* Names of format 2 (key 4), a byte string: for each new thread of the
 * sample in order a code (0: no name given; 1: a name follows; k >= 2: the
 * chunk's recent name k - 2, most recent first), then entries for the
 * linked threads whose name changed: the thread's index (its difference
 * from the last entry's index less 1) and a code (1 or k >= 2). A name that
 * follows is the bytes it shares with the last name given, then the length
 * and the bytes of the rest ("sim-worker-12" after "sim-worker-11" is 3
 * bytes). Every name given moves to the front of the recent list
 * (FX_RECENT_NAMES long). */
/* One name of the names block: its code, and the name when it is new. */
static void enc_name(felix_rec_writer *w, fx_buf *b, const char *name, const char **prev)
{
    unsigned r = 0;
    while (r < w->nrecent && strcmp(w->recent[r], name) != 0)
        r++;
    if (r < w->nrecent) {
        put_varint(b, r + 2);
    } else {
        size_t shared = 0, len = strlen(name);
        while ((*prev)[shared] && (*prev)[shared] == name[shared])
            shared++;
        put_varint(b, 1);
        put_varint(b, shared);
        put_varint(b, len - shared);
        memcpy(b->p + b->len, name + shared, len - shared);
        b->len += len - shared;
    }
    fx_recent_to_front(w->recent, &w->nrecent, r, name);
    *prev = name;
}

static void enc_names(felix_rec_writer *w, fx_buf *b, size_t n, const unsigned char *changed, const long *link)
{
    size_t at = b->len, last = 0;
    const char *prev = "";
    b->len += 5;
    for (size_t i = 0; i < n; i++) { /* new threads: a code each */
        if (link[i] >= 0)
            continue;
        if (changed[i] & 1)
            enc_name(w, b, w->ex.next[i].name, &prev);
        else
            put_varint(b, 0);
    }
    for (size_t i = 0; i < n; i++) { /* linked threads: an entry each that changed */
        if (link[i] < 0 || !(changed[i] & 1))
            continue;
        put_varint(b, i - last);
        enc_name(w, b, w->ex.next[i].name, &prev);
        last = i + 1;
    }
    enc_bstr_at(b, at);
}

/* CPU times of format 2 (key 5): a byte string of varints, the unit's
 * power of ten first, then one per thread in order: 0 when not measured in
 * this sample, else 1 + the zigzag of the time (or its difference from the
 * thread's last one in the chunk) in that unit. /proc counts in clock ticks,
 * so the unit is usually 10^7 ns and a second's difference is a byte. */
static void enc_cpu(felix_rec_writer *w, fx_buf *b, const felix_snapshot *snap, int key)
{
    size_t n = felix_snapshot_get_info(snap)->nthreads;
    unsigned char *has = w->changed;
    unsigned e = FX_CPU_MAX_EXP;
    for (size_t i = 0; i < n; i++) {
        struct thread_extra *x = &w->ex.next[i];
        has[i] = (unsigned char)(has[i] & ~4u);
        if (!(key ? x->has_cpu != 0 : x->has_cpu == 2))
            continue;
        long j = key ? -1 : w->pidx[i];
        uint64_t v = j >= 0 && w->ex.cur[j].has_cpu ? x->cpu - w->ex.cur[j].cpu : x->cpu;
        w->cpu[i] = v;
        has[i] |= 4;
        uint64_t mag = v >> 63 ? 0 - v : v;
        while (e && mag % fx_pow10[e])
            e--;
    }
    size_t at = b->len;
    b->len += 5;
    put_varint(b, e);
    for (size_t i = 0; i < n; i++) {
        if (!(has[i] & 4)) {
            put_varint(b, 0);
            continue;
        }
        int64_t sv = (int64_t)w->cpu[i] / (int64_t)fx_pow10[e];
        put_varint(b, fx_zigzag((uint64_t)sv) + 1);
        w->ex.next[i].has_cpu = 1;
    }
    enc_bstr_at(b, at);
}

int felix_rec_write_sample(felix_rec_writer *w, const felix_snapshot *snap,
                           const felix_rec_thread_info *info, size_t ninfo)
{
    if (!w || !snap)
        return fx_fail(FELIX_EINVAL, "felix_rec_write_sample: NULL argument");
    if (ninfo && (!info || !FX_VERSION_OK(info, FELIX_REC_THREAD_INFO_VERSION)))
        return fx_fail(FELIX_EINVAL, "felix_rec_write_sample: thread info version %u (start from "
                                     "FELIX_REC_THREAD_INFO_INIT)", info ? info->version : 0);
    if (w->failed)
        return w->failed;
    const felix_snapshot_info *si = felix_snapshot_get_info(snap);
    int64_t t;
    int rc = rel_time(w, si->mono_ns, &t);
    if (rc < 0)
        return rc;
    if (w->samples && t < w->last_t)
        return fx_fail(FELIX_EINVAL, "sample time goes backwards (%lld ns after %lld ns)", (long long)t,
                       (long long)w->last_t);
    /* Everything that can fail for want of memory comes before the first
     * byte is written, so a failed call writes nothing; from the first byte
     * on, any failure makes the writer failed for good (w_push). Either way
     * no sample is ever half in the file. */
    size_t n = si->nthreads, nwords = (size_t)si->nknown + si->nextra;
    size_t nprev = w->have_prev ? felix_snapshot_get_info(w->prev)->nthreads : 0;
    size_t nnames = 0, ncpu = 0;
    if ((uint64_t)n * si->slot_size > FX_MAX_SAMPLE_SLOTS || n > FX_MAX_SAMPLE_THREADS)
        return fx_fail(FELIX_ERANGE,
                       "a sample of %zu threads in %u-byte slots is more than a recording holds (%u threads, %u bytes "
                       "of slots: FEX's cap on its segment)",
                       n, (unsigned)si->slot_size, FX_MAX_SAMPLE_THREADS, (unsigned)FX_MAX_SAMPLE_SLOTS);
    if ((rc = fx_grow((void **)&w->chunks, &w->chunks_cap, w->nchunks + 2, sizeof *w->chunks)) < 0 ||
        (rc = fx_grow((void **)&w->link, &w->link_cap, n ? n : 1, sizeof *w->link)) < 0 ||
        (rc = fx_grow((void **)&w->pidx, &w->pidx_cap, n ? n : 1, sizeof *w->pidx)) < 0 ||
        (rc = fx_grow((void **)&w->cpu, &w->cpu_cap, n ? n : 1, sizeof *w->cpu)) < 0 ||
        (rc = fx_grow((void **)&w->zbuf, &w->zbuf_cap, n ? 2 * n : 1, sizeof *w->zbuf)) < 0 ||
        (rc = fx_grow((void **)&w->slotmap, &w->slotmap_cap, FX_SLOTMAP_WORDS(si->slot_size),
                      sizeof *w->slotmap)) < 0 ||
        (rc = fx_grow((void **)&w->colhdr, &w->colhdr_cap, FX_NCOLUMNS(nwords), sizeof *w->colhdr)) < 0 ||
        (rc = fx_grow((void **)&w->changed, &w->changed_cap, n ? n : 1, 1)) < 0 ||
        (rc = prepare_extras(w, snap, info, ninfo, &nnames, &ncpu, w->changed)) < 0)
        return rc;
    if (fx_buf_reserve(&w->item, sample_bound(n, nprev, nwords)) < 0) {
        w->item.oom = 0;
        return fx_fail(FELIX_ENOMEM, "out of memory encoding a sample of %zu threads", n);
    }
    /* A new process image (exec), or a new slot layout: a new chunk, so the
     * layout and absolute values stand on their own. */
    int exec = w->have_prev && si->image != felix_snapshot_get_info(w->prev)->image;
    int relayout = w->have_prev && si->slot_size != felix_snapshot_get_info(w->prev)->slot_size;
    int new_chunk = !w->chunk_open || exec || relayout;
    if (w->chunk_open) {
        struct chunk_entry *c = &w->chunks[w->nchunks];
        new_chunk |= c->samples >= w->opt.chunk_samples || t - c->first_t >= w->opt.chunk_ns;
    }
    /* The deltas' buffers last: a new layout starts them over, which only
     * a key sample (a new chunk) may see. */
    if ((rc = fx_grow_deltas(&w->dl, n, nwords)) < 0)
        return rc;
    if (new_chunk) {
        if ((rc = close_chunk(w)) < 0)
            return rc;
        struct chunk_entry *c = &w->chunks[w->nchunks];
        memset(c, 0, sizeof *c);
        c->offset = w->offset;
        c->first_sample = w->samples;
        c->first_t = t;
        w->chunk_open = 1;
        w->in_chunk = 0;
    }
    int key = !w->in_chunk;
    if (key) { /* columns start over with each chunk */
        for (size_t k = 0; k < FX_NCOLUMNS(nwords); k++)
            w->colhdr[k] = FX_COL_NONE;
        w->new_tid = w->new_off = 0;
        w->nrecent = 0;
    }
    /* Which threads are the previous sample's (same TID, not restarted:
     * the live delta's rule), and every thread's words. */
    for (size_t i = 0; i < n; i++) {
        const felix_thread *th = felix_snapshot_thread(snap, i);
        long j = exec ? -1 : w->pidx[i];
        if (j >= 0 && fx_thread_restarted(felix_snapshot_thread(w->prev, (size_t)j), th))
            j = -1;
        w->link[i] = key ? -1 : j;
        w->changed[i] |= (unsigned char)((j >= 0) << 1); /* bit 1: the same thread as before */
        fx_thread_words(snap, i, w->dl.anext + i * nwords);
    }
    fx_buf *b = &w->item;
    /* Thread starts and exits: in a sample delta-coded against the previous
     * one, its links say it (readers deliver them as events); before a key
     * sample they are written as events. */
    if (w->have_prev && key) {
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        ev.mono_ns = si->mono_ns;
        if (exec) {
            ev.kind = FELIX_EV_EXEC;
            ev.count = si->image;
            rc = write_event_item(w, &ev);
        }
        for (size_t j = 0; j < nprev && rc == 0; j++) {
            const felix_thread *p = felix_snapshot_thread(w->prev, j);
            long i = exec ? -1 : felix_snapshot_index(snap, p->tid);
            ev.tid = p->tid;
            ev.kind = FELIX_EV_THREAD_EXITED;
            if (i < 0 || !(w->changed[i] & 2))
                rc = write_event_item(w, &ev);
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            ev.tid = felix_snapshot_thread(snap, i)->tid;
            ev.kind = FELIX_EV_THREAD_STARTED;
            if (!(w->changed[i] & 2))
                rc = write_event_item(w, &ev);
        }
        if (rc < 0)
            return rc;
    }
    const felix_mem *mem = felix_snapshot_mem(snap);
    int seg = key || si->head != w->seg_head || si->size != w->seg_size || si->real_size != w->seg_real;
    int anom = si->anomaly_cycle || si->anomaly_bad_offset || si->anomaly_dup_tid || si->skipped_free ||
               si->skipped_racing;
    unsigned char *changed = w->changed;
    if (key) { /* names and CPU times are restated in key samples */
        nnames = ncpu = 0;
        for (size_t i = 0; i < n; i++) {
            nnames += w->ex.next[i].name[0] != 0;
            changed[i] = (unsigned char)((changed[i] & ~1u) | (w->ex.next[i].name[0] != 0));
            ncpu += w->ex.next[i].has_cpu != 0;
        }
    }
    int64_t wall_pred = w->key_wall + (t - w->key_t); /* wall clock predicted from the key sample */
    int64_t wall_diff = key ? si->wall_ns : si->wall_ns - wall_pred;
    int wall = key || wall_diff != 0;
    int image = si->image > 1;
    /* The layout and app type, when they are not the header's (after an exec). */
    int layout = si->slot_size != felix_slot_size_valid(w->hdr.thread_stats_size) || si->app_type != w->hdr.app_type;
    /* The whole process's memory, beside FEX's regions (key 12). */
    int proc_mem = mem && felix_mem_process_rss(mem) > 0;
    enc_item(b, 3 + (size_t)key + (size_t)wall + (nnames > 0) + (ncpu > 0) + (mem != NULL) + (size_t)seg + (size_t)anom +
                    (size_t)image + (size_t)layout + (size_t)proc_mem);
    enc_uint(b, FX_KEY_TYPE), enc_uint(b, FX_ITEM_SAMPLE);
    /* Time: absolute in a key sample; else the interval, as its difference
     * from the interval before it once there is one (second order). */
    int64_t dt = t - w->last_t;
    enc_uint(b, FX_S_TIME), enc_int(b, key ? t : w->have_dt ? dt - w->last_dt : dt);
    if (key)
        enc_uint(b, FX_S_KEY), enc_bool(b, 1);
    enc_uint(b, FX_S_THREADS);
    enc_threads(w, b, snap, w->link, nwords, nprev);
    if (nnames) {
        enc_uint(b, FX_S_NAMES);
        enc_names(w, b, n, changed, w->link);
    }
    if (ncpu) {
        enc_uint(b, FX_S_CPU);
        enc_cpu(w, b, snap, key);
    }
    if (mem) {
        size_t nr = felix_mem_count(mem);
        enc_uint(b, FX_S_REGIONS), enc_arr(b, nr);
        for (size_t i = 0; i < nr; i++) {
            const felix_region *r = felix_mem_region(mem, i);
            enc_arr(b, 5);
            enc_str(b, r->name);
            enc_uint(b, r->rss), enc_uint(b, r->size), enc_uint(b, r->mappings), enc_uint(b, r->largest_rss);
            size_t k;
            for (k = 0; k < w->nregions && strcmp(w->regions[k], r->name); k++)
                ;
            if (k == w->nregions && w->nregions < FELIX_MEM_MAX_REGIONS)
                snprintf(w->regions[w->nregions++], sizeof w->regions[0], "%s", r->name);
        }
    }
    if (seg) {
        enc_uint(b, FX_S_SEGMENT), enc_arr(b, 3);
        enc_uint(b, si->head), enc_uint(b, si->size), enc_uint(b, si->real_size);
    }
    if (anom) {
        enc_uint(b, FX_S_ANOMALIES), enc_arr(b, 5);
        enc_uint(b, si->anomaly_cycle), enc_uint(b, si->anomaly_bad_offset), enc_uint(b, si->anomaly_dup_tid);
        enc_uint(b, si->skipped_free), enc_uint(b, si->skipped_racing);
    }
    if (wall)
        enc_uint(b, FX_S_WALL), enc_int(b, wall_diff);
    if (image)
        enc_uint(b, FX_S_IMAGE), enc_uint(b, si->image);
    if (layout) {
        enc_uint(b, FX_S_LAYOUT), enc_arr(b, 2);
        enc_uint(b, si->slot_size), enc_uint(b, si->app_type);
    }
    if (proc_mem) {
        enc_uint(b, FX_S_PROCESS_MEM), enc_arr(b, 2);
        enc_uint(b, felix_mem_process_rss(mem)), enc_uint(b, felix_mem_process_mappings(mem));
    }
    if ((rc = w_item(w)) < 0 || (rc = w_flush(w)) < 0)
        return rc;
    /* The sample is in the file; remember it. */
    if ((rc = felix_snapshot_copy(w->prev, snap)) < 0)
        return w->failed = rc;
    fx_extras_swap(&w->ex);
    fx_deltas_swap(&w->dl);
    w->have_prev = 1;
    w->in_chunk = 1;
    w->seg_head = si->head;
    w->seg_size = si->size;
    w->seg_real = si->real_size;
    w->have_dt = !key;
    w->last_dt = dt;
    w->last_t = t;
    if (key) {
        w->key_wall = si->wall_ns;
        w->key_t = t;
    }
    w->samples++;
    w->chunks[w->nchunks].samples++;
    return 0;
}

static int write_index(felix_rec_writer *w)
{
    fx_buf *b = &w->item;
    b->len = 0;
    enc_item(b, 4);
    enc_uint(b, FX_KEY_TYPE), enc_uint(b, FX_ITEM_INDEX);
    enc_uint(b, FX_I_CHUNKS), enc_arr(b, w->nchunks);
    for (size_t i = 0; i < w->nchunks; i++) {
        const struct chunk_entry *c = &w->chunks[i];
        enc_arr(b, 4);
        enc_uint(b, c->offset), enc_uint(b, c->first_sample), enc_int(b, c->first_t), enc_uint(b, c->samples);
    }
    enc_uint(b, FX_I_SAMPLES), enc_uint(b, w->samples);
    enc_uint(b, FX_I_REGIONS), enc_arr(b, w->nregions);
    for (size_t i = 0; i < w->nregions; i++)
        enc_str(b, w->regions[i]);
    enc_check(b);
    if (b->oom)
        return fx_fail(FELIX_ENOMEM, "out of memory encoding the index");
    unsigned char head[8];
    put_le32(head, FX_MAGIC_INDEX);
    put_le32(head + 4, (uint32_t)b->len);
    int rc;
    if ((rc = w_out(w, head, 8)) < 0 || (rc = w_out(w, b->p, b->len)) < 0)
        return rc;
    /* The seekable format's seek table: header frame, then every chunk. */
    size_t nframes = w->nchunks + 1;
    size_t tsize = nframes * 8 + 9;
    unsigned char *t = fx_malloc(8 + tsize);
    if (!t)
        return fx_fail(FELIX_ENOMEM, "out of memory writing the seek table");
    put_le32(t, FX_MAGIC_SEEKTABLE);
    put_le32(t + 4, (uint32_t)tsize);
    unsigned char *p = t + 8;
    put_le32(p, (uint32_t)w->header_csize), put_le32(p + 4, (uint32_t)w->header_dsize);
    p += 8;
    for (size_t i = 0; i < w->nchunks; i++, p += 8) {
        put_le32(p, (uint32_t)w->chunks[i].csize);
        put_le32(p + 4, (uint32_t)w->chunks[i].dsize);
    }
    put_le32(p, (uint32_t)nframes);
    p[4] = 0;
    put_le32(p + 5, FX_MAGIC_SEEKABLE_FOOTER);
    rc = w_out(w, t, 8 + tsize);
    fx_free(t);
    return rc;
}

int felix_rec_writer_close(felix_rec_writer *w, const char *reason)
{
    if (!w)
        return 0;
    int rc = w->failed;
    if (!rc && w->cctx && w->offset > 0) {
        fx_buf *b = &w->item;
        b->len = 0;
        enc_item(b, reason && *reason ? 4 : 3);
        enc_uint(b, FX_KEY_TYPE), enc_uint(b, FX_ITEM_END);
        enc_uint(b, FX_END_TIME), enc_int(b, w->last_t);
        enc_uint(b, FX_END_SAMPLES), enc_uint(b, w->samples);
        if (reason && *reason)
            enc_uint(b, FX_END_REASON), enc_str(b, reason);
        if (!w->chunk_open) { /* the end item lives in a chunk of its own */
            if (fx_grow((void **)&w->chunks, &w->chunks_cap, w->nchunks + 1, sizeof *w->chunks) == 0) {
                memset(&w->chunks[w->nchunks], 0, sizeof *w->chunks);
                w->chunks[w->nchunks].offset = w->offset;
                w->chunks[w->nchunks].first_sample = w->samples;
                w->chunks[w->nchunks].first_t = w->last_t;
                w->chunk_open = 1;
            }
        }
        rc = w_item(w);
        if (!rc)
            rc = w_flush(w);
        if (!rc)
            rc = close_chunk(w);
        if (!rc)
            rc = write_index(w);
    }
    if (w->own_fd && w->fd >= 0 && close(w->fd) < 0 && !rc)
        rc = fx_fail(fx_errno_code(errno), "cannot close the recording: %s", strerror(errno));
    ZSTD_freeCCtx(w->cctx);
    felix_snapshot_free(w->prev);
    fx_free(w->item.p);
    fx_free(w->obuf);
    fx_free(w->chunks);
    fx_extras_free(&w->ex);
    fx_free(w->link);
    fx_free(w->pidx);
    fx_free(w->cpu);
    fx_free(w->zbuf);
    fx_free(w->colhdr);
    fx_free(w->slotmap);
    fx_free(w->changed);
    fx_deltas_free(&w->dl);
    fx_free(w);
    return rc;
}
