/*
 * Deltas between two snapshots: the one module that derives figures.
 *
 * Invariants:
 *  - live[0..nthreads) holds one entry per thread of the current snapshot, in
 *    the snapshot's order; order[] is a permutation of it by load.
 *  - exited[0..nexited) holds the threads of prev that ended in this frame.
 *  - cum_gone accumulates the last totals of every thread that ended since
 *    new/reset; frame.cum = cum_gone + the current totals of live threads.
 *  - budget[0..nthreads) is aligned to the current snapshot like live[];
 *    budget_prev to the previous frame's, which is this frame's prev when
 *    the caller passes successive snapshots (checked: last_mono, last_n).
 *    spans[] holds the latest intervals shorter than a frame, as each
 *    thread's ring holds its JIT + signal ticks in them.
 */
#include "felix/felix.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sort_key;

/* A thread's frame-budget state, carried from frame to frame. */
struct budget {
    uint64_t cpu_at, jit_at;              /* the last CPU measurement, and JIT ticks then */
    double jit_cpu_pct;                   /* from the last two measurements; -1 none */
    int has_cpu_at;
    uint32_t frames;                      /* times flagged */
    uint32_t n, pos;                      /* busy values held; where the next goes */
    uint32_t ring[FELIX_BUDGET_WINDOW];   /* JIT + signal ticks per interval */
};

struct felix_delta {
    felix_frame frame;
    uint64_t cum_gone[FELIX_NCOUNTERS];
    felix_thread_delta *live;
    size_t live_cap;
    uint32_t *order;
    size_t order_cap;
    long *pmap; /* per thread of cur: its index in prev, -1 none, -2 - index when restarted there */
    size_t pmap_cap;
    struct sort_key *keys, *keys2; /* sort scratch, as many as live */
    size_t keys_cap, keys2_cap;
    felix_thread_delta *exited;
    size_t exited_cap;
    struct budget *budget, *budget_prev;
    size_t budget_cap, budget_prev_cap;
    int64_t spans[FELIX_BUDGET_WINDOW];   /* latest intervals shorter than a frame */
    uint32_t nspans, spos;
    int have_last, restart_windows;
    int64_t last_mono;
    uint32_t last_n;
};

int felix_delta_new(felix_delta **out, uint64_t freq_hz, unsigned ncpus)
{
    if (!out || freq_hz == 0)
        return fx_fail(FELIX_EINVAL, "felix_delta_new: %s", out ? "counter frequency is 0" : "out is NULL");
    felix_delta *d = fx_calloc(1, sizeof *d);
    if (!d)
        return fx_fail(FELIX_ENOMEM, "out of memory creating a delta context");
    if (ncpus == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        ncpus = n > 0 ? (unsigned)n : 1;
    }
    d->frame.freq_hz = freq_hz;
    d->frame.ncpus = ncpus;
    d->frame.fps = FELIX_DEFAULT_FPS;
    *out = d;
    return 0;
}

void felix_delta_free(felix_delta *d)
{
    if (!d)
        return;
    fx_free(d->live);
    fx_free(d->order);
    fx_free(d->pmap);
    fx_free(d->keys);
    fx_free(d->keys2);
    fx_free(d->exited);
    fx_free(d->budget);
    fx_free(d->budget_prev);
    fx_free(d);
}

void felix_delta_reset(felix_delta *d)
{
    if (!d)
        return;
    memset(d->cum_gone, 0, sizeof d->cum_gone);
    d->frame.seq = 0;
    d->have_last = 0;
}

int felix_delta_set_fps(felix_delta *d, unsigned fps)
{
    if (!d || fps < 1 || fps > 1000)
        return fx_fail(FELIX_EINVAL, "frame rate %u is not between 1 and 1000", fps);
    d->frame.fps = fps;
    d->restart_windows = 1;
    return 0;
}

/* The budget rule (delta.h) for one thread that lives on from prev (bp its
 * state there) with busy JIT + signal ticks in this interval; k: samples in
 * the window that spans the last frame (0: short intervals do not span one
 * yet, or the interval is a frame or longer). Returns whether it is flagged. */
static int budget_step(struct budget *b, const struct budget *bp, uint64_t busy, uint64_t frame_ticks, int long_interval,
                       uint32_t k)
{
    b->frames = bp->frames;
    if (long_interval) { /* no window: nothing of the ring to carry */
        b->n = b->pos = 0;
        return busy >= frame_ticks;
    }
    b->n = bp->n, b->pos = bp->pos;
    memcpy(b->ring, bp->ring, sizeof b->ring);
    b->ring[b->pos] = busy > UINT32_MAX ? UINT32_MAX : (uint32_t)busy;
    b->pos = (b->pos + 1) % FELIX_BUDGET_WINDOW;
    if (b->n < FELIX_BUDGET_WINDOW)
        b->n++;
    uint64_t sum = 0;
    for (uint32_t m = 1; m <= k && m <= b->n; m++)
        sum += b->ring[(b->pos + FELIX_BUDGET_WINDOW - m) % FELIX_BUDGET_WINDOW];
    if (k == 0 || sum < frame_ticks)
        return 0;
    b->n = b->pos = 0; /* the next flag needs another frame's worth */
    return 1;
}

const felix_frame *felix_delta_frame(const felix_delta *d) { return d ? &d->frame : NULL; }

const felix_thread_delta *felix_delta_thread(const felix_delta *d, size_t i)
{
    return (d && i < d->frame.nthreads) ? &d->live[d->order[i]] : NULL;
}

const felix_thread_delta *felix_delta_exited(const felix_delta *d, size_t i)
{
    return (d && i < d->frame.nexited) ? &d->exited[i] : NULL;
}

/* Room for it was made before the frame changed. */
static void add_exited(felix_delta *d, const felix_thread *p)
{
    size_t n = d->frame.nexited;
    felix_thread_delta *e = &d->exited[n];
    memset(e, 0, sizeof *e);
    e->tid = p->tid;
    e->state = FELIX_TD_EXITED;
    memcpy(e->abs, p->c, sizeof e->abs);
    for (int k = 0; k < FELIX_NCOUNTERS; k++)
        d->cum_gone[k] += p->c[k];
    d->frame.nexited = (uint32_t)(n + 1);
}

/* Sort order[] by load, highest first, then by TID. The result depends
 * only on the keys (TIDs are unique), never on where the sort starts, so it
 * starts from the last frame's order when that is a permutation of as many
 * threads: rankings seldom change between frames, and an insertion sort of
 * an ordered or nearly ordered list takes about n comparisons. Larger or
 * new lists take a bottom-up merge sort of compact keys (16 bytes, not the
 * 300-byte thread entries) through two key buffers, n log n comparisons over
 * sequential memory, so even a 16 MiB segment's 209,714 threads sort in a
 * few milliseconds. */
struct sort_key {
    double load;
    uint32_t tid, idx;
};

static int before(const struct sort_key *a, const struct sort_key *b)
{
    if (a->load != b->load)
        return a->load > b->load;
    return a->tid < b->tid;
}

enum { INSERTION_MAX = 64 }; /* threads sorted by insertion, at most */

static void sort_order(felix_delta *d, size_t n, int reuse)
{
    struct sort_key *src = d->keys, *dst = d->keys2;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = reuse ? d->order[i] : (uint32_t)i;
        src[i].load = d->live[x].load_pct;
        src[i].tid = d->live[x].tid;
        src[i].idx = x;
    }
    if (n <= INSERTION_MAX) {
        for (size_t i = 1; i < n; i++) {
            struct sort_key k = src[i];
            size_t j = i;
            for (; j > 0 && before(&k, &src[j - 1]); j--)
                src[j] = src[j - 1];
            src[j] = k;
        }
    } else {
        for (size_t w = 1; w < n; w *= 2) {
            for (size_t lo = 0; lo < n; lo += 2 * w) {
                size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
                size_t i = lo, j = mid, k = lo;
                while (i < mid && j < hi)
                    dst[k++] = before(&src[j], &src[i]) ? src[j++] : src[i++];
                while (i < mid)
                    dst[k++] = src[i++];
                while (j < hi)
                    dst[k++] = src[j++];
            }
            struct sort_key *t = src;
            src = dst;
            dst = t;
        }
    }
    for (size_t i = 0; i < n; i++)
        d->order[i] = src[i].idx;
}

/* The thread with this TID in s, trying index i first (fx_snapshot_index_at). */
static const felix_thread *same_thread(const felix_snapshot *s, size_t i, uint32_t tid)
{
    long j = fx_snapshot_index_at(s, i, tid);
    return j >= 0 ? &fx_snapshot_threads(s)[j] : NULL;
}

int felix_delta_compute(felix_delta *d, const felix_snapshot *prev, const felix_snapshot *cur)
{
    if (!d || !cur)
        return fx_fail(FELIX_EINVAL, "felix_delta_compute: NULL context or snapshot");
    const felix_snapshot_info *ci = felix_snapshot_get_info(cur);
    const felix_snapshot_info *pi = prev ? felix_snapshot_get_info(prev) : NULL;
    /* Two images: their threads are not the same threads. */
    int exec = pi && pi->image != ci->image;
    if (pi && ci->mono_ns <= pi->mono_ns)
        return fx_fail(FELIX_EINVAL, "snapshot times do not increase (%lld ns then %lld ns)",
                       (long long)pi->mono_ns, (long long)ci->mono_ns);
    size_t n = ci->nthreads;
    int rc;
    /* All the memory this frame can need, before anything changes: a
     * failure leaves the context as it was (each buffer grows on its own,
     * so one that grew while another failed is simply larger next time). */
    size_t gone = pi ? pi->nthreads : 0;
    if ((rc = fx_grow((void **)&d->live, &d->live_cap, n, sizeof *d->live)) < 0 ||
        (rc = fx_grow((void **)&d->order, &d->order_cap, n, sizeof *d->order)) < 0 ||
        (rc = fx_grow((void **)&d->pmap, &d->pmap_cap, n, sizeof *d->pmap)) < 0 ||
        (rc = fx_grow((void **)&d->keys, &d->keys_cap, n, sizeof *d->keys)) < 0 ||
        (rc = fx_grow((void **)&d->keys2, &d->keys2_cap, n, sizeof *d->keys2)) < 0 ||
        (rc = fx_grow((void **)&d->exited, &d->exited_cap, gone, sizeof *d->exited)) < 0 ||
        (rc = fx_grow((void **)&d->budget, &d->budget_cap, n, sizeof *d->budget)) < 0)
        return rc;
    /* The previous frame's budget state stands for prev's threads when prev
     * is that frame's snapshot. */
    int carried = pi && !exec && d->have_last && pi->mono_ns == d->last_mono && pi->nthreads == d->last_n;
    const felix_thread *prev0 = prev ? fx_snapshot_threads(prev) : NULL, *cur0 = fx_snapshot_threads(cur);

    felix_frame *f = &d->frame;
    const uint64_t freq = f->freq_hz;
    f->seq++;
    f->mono_ns = ci->mono_ns;
    f->wall_ns = ci->wall_ns;
    /* cur is later than prev (checked above): the difference fits in 64
     * unsigned bits; saturate rather than wrap to a negative interval. */
    uint64_t span = pi ? (uint64_t)ci->mono_ns - (uint64_t)pi->mono_ns : 0;
    f->interval_ns = pi && !exec ? (span > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)span) : 0;
    f->events = exec ? FELIX_FRAME_EXEC : 0;
    f->image = ci->image;
    f->interval_s = (double)f->interval_ns / 1e9;
    f->nthreads = (uint32_t)n;
    f->nstarted = f->nexited = f->novertime = 0;
    f->flags = 0;
    f->load_pct = 0;
    f->nover_budget = 0;
    memset(f->d, 0, sizeof f->d);
    /* The budget window: the latest intervals that span a frame. */
    /* A frame's length and budget, rounded up: a frame's worth is never less. */
    const int64_t frame_ns = (1000000000LL + f->fps - 1) / f->fps;
    const uint64_t frame_ticks = freq / f->fps + (freq % f->fps != 0);
    const int long_interval = f->interval_ns >= frame_ns;
    if (!carried || long_interval || d->restart_windows || !f->interval_ns)
        d->nspans = d->spos = 0;
    uint32_t win = 0; /* samples in the window */
    if (f->interval_ns && !long_interval) {
        d->spans[d->spos] = f->interval_ns;
        d->spos = (d->spos + 1) % FELIX_BUDGET_WINDOW;
        if (d->nspans < FELIX_BUDGET_WINDOW)
            d->nspans++;
        int64_t covered = 0;
        for (uint32_t m = 1; m <= d->nspans && !win; m++)
            if ((covered += d->spans[(d->spos + FELIX_BUDGET_WINDOW - m) % FELIX_BUDGET_WINDOW]) >= frame_ns)
                win = m;
    }
    const int fresh_windows = d->restart_windows;
    d->restart_windows = 0;

    /* Threads of prev that are gone from cur; and for each thread of cur,
     * the thread of prev it continues (each pair looked up once). */
    for (size_t i = 0; i < n; i++)
        d->pmap[i] = -1;
    if (prev) {
        for (uint32_t i = 0; i < pi->nthreads; i++) {
            const felix_thread *p = &prev0[i];
            const felix_thread *c = exec ? NULL : same_thread(cur, i, p->tid);
            int restarted = c && fx_thread_restarted(p, c);
            if (c)
                d->pmap[c - cur0] = restarted ? -2 - (long)i : (long)i;
            if (!c || restarted)
                add_exited(d, p);
        }
    }

    const double ticks_in_interval = (double)freq * f->interval_s;
    const double inv_t = f->interval_s > 0 ? 1.0 / f->interval_s : 0.0;
    const double inv_f = 1.0 / (double)freq;
    double unit[FELIX_NCOUNTERS]; /* raw delta to seconds (times) or counts */
    for (int k = 0; k < FELIX_NCOUNTERS; k++)
        unit[k] = felix_counter_is_time(k) ? inv_f : 1.0;
    uint64_t live_abs[FELIX_NCOUNTERS] = {0};
    for (uint32_t i = 0; i < n; i++) {
        const felix_thread *c = &cur0[i];
        const long m = d->pmap[i];
        const felix_thread *p = m >= 0 ? &prev0[m] : NULL;
        felix_thread_delta *t = &d->live[i];
        t->tid = c->tid;
        t->state = 0;
        memcpy(t->abs, c->c, sizeof t->abs);
        for (int k = 0; k < FELIX_NCOUNTERS; k++)
            live_abs[k] += c->c[k];
        struct budget *bg = &d->budget[i];
        uint64_t cpu_now = 0;
        int has_cpu_now = felix_snapshot_thread_cpu_ns(cur, i, &cpu_now) == 0;
        if (!p) { /* started (in place of a thread that restarted: reused) */
            memset(bg, 0, sizeof *bg);
            bg->jit_cpu_pct = -1;
            bg->has_cpu_at = has_cpu_now;
            bg->cpu_at = cpu_now;
            bg->jit_at = c->c[FELIX_C_JIT_TIME];
            t->cpu_s = t->jit_cpu_pct = -1;
            t->budget_frames = 0;
            t->state = FELIX_TD_STARTED | (m <= -2 ? FELIX_TD_REUSED : 0);
            f->nstarted++;
            t->load_pct = 0;
            memset(t->d, 0, sizeof t->d);
            memset(t->value, 0, sizeof t->value);
            memset(t->rate, 0, sizeof t->rate);
            continue;
        }
        for (int k = 0; k < FELIX_NCOUNTERS; k++) {
            uint64_t dk = c->c[k] - p->c[k];
            t->d[k] = dk;
            f->d[k] += dk;
            /* A signed conversion is one instruction; real deltas fit. */
            t->value[k] = (dk >> 63 ? (double)dk : (double)(int64_t)dk) * unit[k];
            t->rate[k] = t->value[k] * inv_t;
        }
        double busy = (double)t->d[FELIX_C_JIT_TIME] + (double)t->d[FELIX_C_SIGNAL_TIME];
        t->load_pct = ticks_in_interval > 0 ? busy / ticks_in_interval * 100.0 : 0.0;
        static const struct budget zero;
        struct budget none;
        const struct budget *bp = carried ? &d->budget_prev[p - prev0] : &zero;
        if (fresh_windows) {
            memset(&none, 0, sizeof none);
            none.frames = bp->frames; /* counts kept, windows start over */
            bp = &none;
        }
        uint64_t busy_ticks = t->d[FELIX_C_JIT_TIME] + t->d[FELIX_C_SIGNAL_TIME];
        if (busy_ticks < t->d[FELIX_C_JIT_TIME])
            busy_ticks = UINT64_MAX;
        if (budget_step(bg, bp, busy_ticks, frame_ticks, long_interval, win)) {
            bg->frames++;
            t->state |= FELIX_TD_OVER_BUDGET;
            f->nover_budget++;
            f->flags |= FELIX_FLAG_OVER_BUDGET;
        }
        t->budget_frames = bg->frames;
        /* CPU: this interval's, and the JIT share since the last measurement. */
        uint64_t cpu_prev;
        t->cpu_s = has_cpu_now && felix_snapshot_thread_cpu_ns(prev, (size_t)(p - prev0), &cpu_prev) == 0 &&
                           cpu_now >= cpu_prev
                       ? (double)(cpu_now - cpu_prev) / 1e9
                       : -1;
        const struct budget *cp = carried ? &d->budget_prev[p - prev0] : NULL;
        bg->has_cpu_at = cp && cp->has_cpu_at;
        bg->cpu_at = cp ? cp->cpu_at : 0;
        bg->jit_at = cp ? cp->jit_at : 0;
        bg->jit_cpu_pct = cp ? cp->jit_cpu_pct : -1;
        if (has_cpu_now && (!bg->has_cpu_at || cpu_now != bg->cpu_at)) {
            uint64_t jit = c->c[FELIX_C_JIT_TIME];
            if (bg->has_cpu_at && cpu_now > bg->cpu_at && jit >= bg->jit_at)
                bg->jit_cpu_pct = (double)(jit - bg->jit_at) * inv_f / ((double)(cpu_now - bg->cpu_at) / 1e9) * 100.0;
            bg->has_cpu_at = 1;
            bg->cpu_at = cpu_now;
            bg->jit_at = jit;
        }
        t->jit_cpu_pct = bg->jit_cpu_pct;
        if (busy > ticks_in_interval) {
            t->state |= FELIX_TD_OVERTIME;
            f->novertime++;
        }
    }
    /* order[] holds the last frame's permutation when it had n threads. */
    sort_order(d, n, d->have_last && d->last_n == n);
    /* This frame's budget state becomes the next frame's prev's. */
    struct budget *bt = d->budget;
    d->budget = d->budget_prev;
    d->budget_prev = bt;
    size_t bc = d->budget_cap;
    d->budget_cap = d->budget_prev_cap;
    d->budget_prev_cap = bc;
    d->have_last = 1;
    d->last_mono = ci->mono_ns;
    d->last_n = (uint32_t)n;

    for (int k = 0; k < FELIX_NCOUNTERS; k++) {
        f->value[k] = (double)f->d[k] * unit[k];
        f->rate[k] = f->value[k] * inv_t;
        f->cum[k] = d->cum_gone[k] + live_abs[k];
    }
    double busy = (double)f->d[FELIX_C_JIT_TIME] + (double)f->d[FELIX_C_SIGNAL_TIME];
    size_t par = n < f->ncpus ? n : f->ncpus;
    if (ticks_in_interval > 0 && par > 0)
        f->load_pct = busy / (ticks_in_interval * (double)par) * 100.0;
    if (ticks_in_interval > 0) {
        double t = f->interval_s;
        if (busy >= ticks_in_interval)
            f->flags |= FELIX_FLAG_HIGH_JIT;
        if ((double)f->d[FELIX_C_SMC] >= FELIX_THRESHOLD_SMC_PER_S * t)
            f->flags |= FELIX_FLAG_HIGH_SMC;
        if ((double)f->d[FELIX_C_SIGBUS] >= FELIX_THRESHOLD_SIGBUS_PER_S * t)
            f->flags |= FELIX_FLAG_HIGH_SIGBUS;
        if ((double)f->d[FELIX_C_SOFTFLOAT] >= FELIX_THRESHOLD_SOFTFLOAT_PER_S * t)
            f->flags |= FELIX_FLAG_HIGH_SOFTFLOAT;
    }
    return 0;
}
