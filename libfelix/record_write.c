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
#include "record_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

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
    uint64_t *wbuf, *pbuf;      /* a thread's words, now and before */
    size_t wcap, pcap;
    uint64_t samples;
    int64_t last_t;
    int64_t key_wall, key_t;    /* wall clock and time of the chunk's key sample */
    uint32_t seg_head, seg_size, seg_real;
    char regions[FELIX_MEM_MAX_REGIONS][48];
    size_t nregions;
};

int fx_write_all(int fd, const void *buf, size_t n, const char *what)
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

static int w_item(felix_rec_writer *w)
{
    enc_check(&w->item);
    if (w->item.oom)
        return w->failed = fx_fail(FELIX_ENOMEM, "out of memory encoding a recording item");
    return w_push(w, w->item.p, w->item.len, ZSTD_e_flush);
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
    enc_item(b, 19);
    enc_uint(b, 0), enc_uint(b, FX_ITEM_HEADER);
    enc_uint(b, 1), enc_str(b, FX_REC_FORMAT_NAME);
    enc_uint(b, 2), enc_uint(b, FELIX_REC_FORMAT_VERSION);
    enc_uint(b, 3), enc_str(b, h->felix_version);
    enc_uint(b, 4), enc_str(b, h->host);
    enc_uint(b, 5), enc_uint(b, h->ncpus);
    enc_uint(b, 6), enc_uint(b, h->freq_hz);
    enc_uint(b, 7), enc_str(b, h->freq_source);
    enc_uint(b, 8), enc_uint(b, h->page_size);
    enc_uint(b, 9), enc_uint(b, (uint64_t)(h->pid > 0 ? h->pid : 0));
    enc_uint(b, 10), enc_str(b, h->cmdline);
    enc_uint(b, 11), enc_str(b, h->fex_version);
    enc_uint(b, 12), enc_uint(b, h->app_type);
    enc_uint(b, 13), enc_uint(b, h->stats_version);
    enc_uint(b, 14), enc_uint(b, h->thread_stats_size);
    enc_uint(b, 15), enc_int(b, h->start_wall_ns);
    enc_uint(b, 16), enc_int(b, h->start_mono_ns);
    enc_uint(b, 17), enc_uint(b, (uint64_t)(h->interval_ns > 0 ? h->interval_ns : 0));
    enc_uint(b, 18), enc_str(b, h->name);
    int rc = w_item(w);
    return rc < 0 ? rc : end_frame(w, &w->header_csize, &w->header_dsize);
}

static int writer_init(felix_rec_writer **out, int fd, int own, const felix_rec_header *hdr,
                       const felix_rec_options *opts)
{
    if (!out || !hdr || fd < 0)
        return fx_fail(FELIX_EINVAL, "felix_rec_writer_open: NULL header or bad descriptor");
    if (felix_slot_size_valid(hdr->thread_stats_size) == 0)
        return fx_fail(FELIX_EINVAL, "ThreadStatsSize %u is invalid", hdr->thread_stats_size);
    felix_rec_writer *w = fx_calloc(1, sizeof *w);
    if (!w)
        return fx_fail(FELIX_ENOMEM, "out of memory creating a recording writer");
    w->hdr = *hdr;
    w->hdr.format_version = FELIX_REC_FORMAT_VERSION;
    snprintf(w->hdr.felix_version, sizeof w->hdr.felix_version, "%s", felix_version());
    if (opts)
        w->opt = *opts;
    if (w->opt.chunk_ns <= 0)
        w->opt.chunk_ns = 10000000000LL;
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
    enc_uint(b, 0), enc_uint(b, FX_ITEM_EVENT);
    enc_uint(b, 1), enc_int(b, t);
    enc_uint(b, 2), enc_uint(b, (uint64_t)ev->kind);
    if (tid)
        enc_uint(b, 3), enc_uint(b, ev->tid);
    if (ev->kind == FELIX_EV_PROCESS_EXITED && ev->has_status)
        enc_uint(b, 4), enc_int(b, ev->status);
    if (ev->kind == FELIX_EV_STOPPED && ev->reason[0])
        enc_uint(b, 5), enc_str(b, ev->reason);
    if (ev->kind == FELIX_EV_INTERVAL_CHANGED)
        enc_uint(b, 6), enc_uint(b, (uint64_t)ev->interval_ns);
    if (ev->kind == FELIX_EV_SAMPLES_MISSED)
        enc_uint(b, 7), enc_uint(b, ev->count);
    if (ev->kind == FELIX_EV_EXEC)
        enc_uint(b, 8), enc_uint(b, ev->count);
    return w_item(w);
}

int felix_rec_write_event(felix_rec_writer *w, const felix_rec_event *ev)
{
    if (!w || !ev || ev->kind < FELIX_EV_INTERVAL_CHANGED || ev->kind > FELIX_EV_STOPPED)
        return fx_fail(FELIX_EINVAL, "felix_rec_write_event: bad event");
    if (w->failed)
        return w->failed;
    return write_event_item(w, ev);
}

static int grow_words(felix_rec_writer *w, size_t n)
{
    int rc;
    if ((rc = fx_grow((void **)&w->wbuf, &w->wcap, n, 8)) < 0 || (rc = fx_grow((void **)&w->pbuf, &w->pcap, n, 8)) < 0)
        return rc;
    return 0;
}

/* Names and CPU times for the current snapshot's threads, aligned to it:
 * carried over from prev, then updated from info. Marks what changed. */
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
        long j = w->have_prev ? felix_snapshot_index(w->prev, t->tid) : -1;
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

int felix_rec_write_sample(felix_rec_writer *w, const felix_snapshot *snap,
                           const felix_rec_thread_info *info, size_t ninfo)
{
    if (!w || !snap)
        return fx_fail(FELIX_EINVAL, "felix_rec_write_sample: NULL argument");
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
    size_t nnames = 0, ncpu = 0;
    if ((uint64_t)n * si->slot_size > FX_MAX_SAMPLE_SLOTS || n > FX_MAX_SAMPLE_THREADS)
        return fx_fail(FELIX_ERANGE,
                       "a sample of %zu threads in %u-byte slots is more than a recording holds (%u threads, %u bytes "
                       "of slots: FEX's cap on its segment)",
                       n, (unsigned)si->slot_size, FX_MAX_SAMPLE_THREADS, (unsigned)FX_MAX_SAMPLE_SLOTS);
    if ((rc = fx_grow((void **)&w->chunks, &w->chunks_cap, w->nchunks + 2, sizeof *w->chunks)) < 0 ||
        (rc = grow_words(w, nwords ? nwords : 1)) < 0 ||
        (rc = fx_grow((void **)&w->changed, &w->changed_cap, n ? n : 1, 1)) < 0 ||
        (rc = prepare_extras(w, snap, info, ninfo, &nnames, &ncpu, w->changed)) < 0)
        return rc;
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
    unsigned char *changed = w->changed;
    /* Thread set changes become events (not for the very first sample). */
    if (w->have_prev) {
        felix_rec_event ev;
        memset(&ev, 0, sizeof ev);
        ev.mono_ns = si->mono_ns;
        const felix_snapshot_info *pi = felix_snapshot_get_info(w->prev);
        if (exec) {
            ev.kind = FELIX_EV_EXEC;
            ev.count = si->image;
            rc = write_event_item(w, &ev);
        }
        for (size_t i = 0; i < pi->nthreads && rc == 0; i++) {
            ev.tid = felix_snapshot_thread(w->prev, i)->tid;
            ev.kind = FELIX_EV_THREAD_EXITED;
            if (exec || !felix_snapshot_find(snap, ev.tid))
                rc = write_event_item(w, &ev);
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            ev.tid = felix_snapshot_thread(snap, i)->tid;
            ev.kind = FELIX_EV_THREAD_STARTED;
            if (exec || !felix_snapshot_find(w->prev, ev.tid))
                rc = write_event_item(w, &ev);
        }
        if (rc < 0)
            return rc;
    }
    const felix_mem *mem = felix_snapshot_mem(snap);
    int seg = key || si->head != w->seg_head || si->size != w->seg_size || si->real_size != w->seg_real;
    int anom = si->anomaly_cycle || si->anomaly_bad_offset || si->anomaly_dup_tid || si->skipped_free ||
               si->skipped_racing;
    if (key) { /* names and CPU times are restated in key samples */
        nnames = ncpu = 0;
        for (size_t i = 0; i < n; i++) {
            nnames += (changed[i] = w->ex.next[i].name[0] != 0);
            ncpu += w->ex.next[i].has_cpu != 0;
        }
    }
    fx_buf *b = &w->item;
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
    enc_uint(b, 0), enc_uint(b, FX_ITEM_SAMPLE);
    enc_uint(b, 1), enc_int(b, t);
    if (key)
        enc_uint(b, 2), enc_bool(b, 1);
    enc_uint(b, 3), enc_arr(b, n);
    for (size_t i = 0; i < n; i++) {
        const felix_thread *th = felix_snapshot_thread(snap, i);
        fx_thread_words(snap, i, w->wbuf);
        long j = key ? -1 : felix_snapshot_index(w->prev, th->tid);
        uint64_t *nd = fx_delta_next(&w->dl, i);
        enc_arr(b, 1 + nwords);
        enc_uint(b, th->tid);
        if (j < 0) {
            for (size_t k = 0; k < nwords; k++)
                enc_uint(b, w->wbuf[k]);
            w->dl.next_has[i] = 0;
        } else {
            fx_thread_words(w->prev, (size_t)j, w->pbuf);
            const uint64_t *pd = w->dl.has[j] ? fx_delta_prev(&w->dl, (size_t)j) : NULL;
            for (size_t k = 0; k < nwords; k++) {
                nd[k] = w->wbuf[k] - w->pbuf[k];
                enc_int(b, (int64_t)(pd ? nd[k] - pd[k] : nd[k]));
            }
            w->dl.next_has[i] = 1;
        }
    }
    if (nnames) {
        enc_uint(b, 4), enc_arr(b, nnames);
        for (size_t i = 0; i < n; i++)
            if (changed[i]) {
                enc_arr(b, 2);
                enc_uint(b, felix_snapshot_thread(snap, i)->tid);
                enc_str(b, w->ex.next[i].name);
            }
    }
    if (ncpu) {
        enc_uint(b, 5), enc_arr(b, ncpu);
        for (size_t i = 0; i < n; i++) {
            struct thread_extra *x = &w->ex.next[i];
            if (!(key ? x->has_cpu != 0 : x->has_cpu == 2))
                continue;
            uint32_t tid = felix_snapshot_thread(snap, i)->tid;
            long j = key ? -1 : felix_snapshot_index(w->prev, tid);
            enc_arr(b, 2);
            enc_uint(b, tid);
            if (j >= 0 && w->ex.cur[j].has_cpu)
                enc_int(b, (int64_t)(x->cpu - w->ex.cur[j].cpu));
            else
                enc_uint(b, x->cpu);
            x->has_cpu = 1;
        }
    }
    if (mem) {
        size_t nr = felix_mem_count(mem);
        enc_uint(b, 6), enc_arr(b, nr);
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
        enc_uint(b, 7), enc_arr(b, 3);
        enc_uint(b, si->head), enc_uint(b, si->size), enc_uint(b, si->real_size);
    }
    if (anom) {
        enc_uint(b, 8), enc_arr(b, 5);
        enc_uint(b, si->anomaly_cycle), enc_uint(b, si->anomaly_bad_offset), enc_uint(b, si->anomaly_dup_tid);
        enc_uint(b, si->skipped_free), enc_uint(b, si->skipped_racing);
    }
    if (wall)
        enc_uint(b, 9), enc_int(b, wall_diff);
    if (image)
        enc_uint(b, 10), enc_uint(b, si->image);
    if (layout) {
        enc_uint(b, 11), enc_arr(b, 2);
        enc_uint(b, si->slot_size), enc_uint(b, si->app_type);
    }
    if (proc_mem) {
        enc_uint(b, 12), enc_arr(b, 2);
        enc_uint(b, felix_mem_process_rss(mem)), enc_uint(b, felix_mem_process_mappings(mem));
    }
    if ((rc = w_item(w)) < 0)
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
    enc_item(b, 4);
    enc_uint(b, 0), enc_uint(b, FX_ITEM_INDEX);
    enc_uint(b, 1), enc_arr(b, w->nchunks);
    for (size_t i = 0; i < w->nchunks; i++) {
        const struct chunk_entry *c = &w->chunks[i];
        enc_arr(b, 4);
        enc_uint(b, c->offset), enc_uint(b, c->first_sample), enc_int(b, c->first_t), enc_uint(b, c->samples);
    }
    enc_uint(b, 2), enc_uint(b, w->samples);
    enc_uint(b, 3), enc_arr(b, w->nregions);
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
        enc_item(b, reason && *reason ? 4 : 3);
        enc_uint(b, 0), enc_uint(b, FX_ITEM_END);
        enc_uint(b, 1), enc_int(b, w->last_t);
        enc_uint(b, 2), enc_uint(b, w->samples);
        if (reason && *reason)
            enc_uint(b, 5), enc_str(b, reason);
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
    fx_free(w->wbuf);
    fx_free(w->pbuf);
    fx_free(w->changed);
    fx_deltas_free(&w->dl);
    fx_free(w);
    return rc;
}
