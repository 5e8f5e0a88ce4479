/* Replay equals live: felix_delta over a recording read back gives, frame
 * for frame, what it gave over the live snapshots the recording was written
 * from. Every field of every frame and thread delta is compared. */
#include "helpers.h"
#include "t.h"


#include <felix/felix.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A frame as text: every field the delta computes (doubles to the bit). */
struct digest {
    char *buf;
    size_t len, cap;
    unsigned frames, reused, exited, started, events, cpu, shares;
};


static void put(struct digest *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct digest *g, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (g->len + (size_t)n + 1 > g->cap) {
        g->cap = (g->len + (size_t)n + 1) * 2;
        g->buf = realloc(g->buf, g->cap);
    }
    memcpy(g->buf + g->len, tmp, (size_t)n + 1);
    g->len += (size_t)n;
}

static void digest_event(struct digest *g, const felix_rec_event *ev)
{
    put(g, "E %d %u %lld %llu\n", ev->kind, ev->tid, (long long)ev->mono_ns, (unsigned long long)ev->count);
    g->events++;
}

static uint64_t bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static void digest_frame(struct digest *g, const felix_delta *d)
{
    const felix_frame *f = felix_delta_frame(d);
    put(g, "F %llu %lld %lld %lld %u %u %u %u %u %llx %x %x %u %u\n", (unsigned long long)f->seq, (long long)f->mono_ns,
        (long long)f->wall_ns, (long long)f->interval_ns, f->nthreads, f->nstarted, f->nexited, f->novertime,
        f->nover_budget, (unsigned long long)bits(f->load_pct), f->flags, f->events, f->image, f->fps);
    for (int k = 0; k < FELIX_NCOUNTERS; k++)
        put(g, " %llu/%llu/%llx", (unsigned long long)f->d[k], (unsigned long long)f->cum[k],
            (unsigned long long)bits(f->rate[k]));
    put(g, "\n");
    for (size_t i = 0; i < f->nthreads; i++) {
        const felix_thread_delta *t = felix_delta_thread(d, i);
        put(g, " T %u %x %llx %u %llx %llx", t->tid, t->state, (unsigned long long)bits(t->load_pct), t->budget_frames,
            (unsigned long long)bits(t->cpu_s), (unsigned long long)bits(t->jit_cpu_pct));
        g->cpu += t->cpu_s >= 0;
        g->shares += t->jit_cpu_pct >= 0;
        for (int k = 0; k < FELIX_NCOUNTERS; k++)
            put(g, " %llu:%llu", (unsigned long long)t->d[k], (unsigned long long)t->abs[k]);
        put(g, "\n");
        g->reused += (t->state & FELIX_TD_REUSED) != 0;
        g->started += (t->state & FELIX_TD_STARTED) != 0;
    }
    for (size_t i = 0; i < f->nexited; i++) {
        const felix_thread_delta *t = felix_delta_exited(d, i);
        put(g, " X %u %x %llu\n", t->tid, t->state, (unsigned long long)t->abs[0]);
    }
    g->exited += f->nexited;
    g->frames++;
}

/* Two snapshots (taken in turn) and a delta over them. */
struct pair {
    felix_snapshot *s[2];
    felix_delta *d;
    int cur;
};

static void pair_new(struct pair *p, uint64_t freq, unsigned ncpus)
{
    felix_snapshot_new(&p->s[0]);
    felix_snapshot_new(&p->s[1]);
    felix_delta_new(&p->d, freq, ncpus);
    p->cur = 0;
}

static void pair_free(struct pair *p)
{
    felix_delta_free(p->d);
    felix_snapshot_free(p->s[0]);
    felix_snapshot_free(p->s[1]);
}

/* Replay path through a recording source: its frames (and thread events) into g. */
static int replay(const char *path, uint64_t freq, unsigned ncpus, int with_events, struct digest *g)
{
    felix_source *src;
    if (felix_source_open_recording(&src, path, NULL) < 0)
        return -1;
    struct pair p;
    pair_new(&p, freq, ncpus);
    int have = 0, rc, item;
    felix_rec_event ev = FELIX_REC_EVENT_INIT;
    while ((rc = felix_source_next(src, p.s[p.cur], &ev, &item)) == 0) {
        if (with_events && item == FELIX_REC_EVENT && ev.kind <= FELIX_EV_THREAD_EXITED)
            digest_event(g, &ev);
        if (item != FELIX_REC_SAMPLE)
            continue;
        if (felix_delta_compute(p.d, have ? p.s[p.cur ^ 1] : NULL, p.s[p.cur]) < 0)
            break;
        digest_frame(g, p.d);
        have = 1;
        p.cur ^= 1;
    }
    pair_free(&p);
    felix_source_close(src);
    return rc == FELIX_EEOF ? 0 : -1;
}

/* First line where two digests differ, for the message. */
static void show_difference(const struct digest *a, const struct digest *b)
{
    const char *p = a->buf ? a->buf : "", *q = b->buf ? b->buf : "";
    unsigned line = 1;
    while (*p && *p == *q) {
        line += *p == '\n';
        p++, q++;
    }
    fprintf(stderr, "live and replay differ at line %u:\n  live:   %.200s\n  replay: %.200s\n", line, p, q);
}

static int same(const struct digest *a, const struct digest *b)
{
    int ok = a->len == b->len && a->len && memcmp(a->buf, b->buf, a->len) == 0;
    if (!ok)
        show_difference(a, b);
    return ok;
}

/* felix-sim churn (TIDs reused, threads of 20-300 ms), sampled as felix-rec
 * does (a live felix_source: snapshot, names, CPU and memory at a slower
 * cadence, written with felix_rec_write_sample), with live deltas computed
 * from the same snapshots; then the recording read back through a recording
 * source: identical thread events and frames, CPU figures included. */
static void churn_live_equals_replay(void)
{
    const char *args[] = {"-t", "16", "-s", "churn", "--seed", "7", NULL};
    pid_t pid = sim_start(args);
    REQUIRE(pid > 0);
    felix_source_options so = FELIX_SOURCE_OPTIONS_INIT;
    so.interval_ns = 10000000;
    so.slow_ns = 10000000; /* CPU times at every sample: cpu_s in every frame */
    felix_source *src;
    REQUIRE(felix_source_open_pid(&src, pid, &so) == 0);
    CHECK(felix_source_is_live(src));
    const felix_rec_header *h = felix_source_header(src);
    CHECK_EQ(h->interval_ns, 10000000);
    CHECK_EQ(h->pid, pid);
    const uint64_t freq = h->freq_hz;
    const unsigned ncpus = h->ncpus;
    char path[256];
    snprintf(path, sizeof path, "%s/churn-live.felix", t_tmpdir());
    felix_rec_writer *w;
    REQUIRE(felix_rec_writer_open_path(&w, path, h, NULL) == 0);
    struct pair p;
    pair_new(&p, freq, ncpus);
    felix_snapshot **s = p.s;
    felix_delta *d = p.d;
    struct digest live_g = {0}, replay_g = {0};
    int cur = 0, have = 0;
    /* 300 samples 10 ms apart: three seconds of churn, most of a triangle
     * wave of its population. */
    for (int n = 0; n < 300;) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        int item = 0;
        felix_rec_event ev = FELIX_REC_EVENT_INIT;
        int rc;
        while ((rc = felix_source_next(src, s[cur], &ev, &item)) == 0 && item == FELIX_REC_EVENT)
            digest_event(&live_g, &ev);
        if (rc == FELIX_ERESTART)
            continue;
        REQUIRE(rc == 0 && item == FELIX_REC_SAMPLE);
        const felix_rec_thread_info *info;
        size_t ninfo;
        felix_source_thread_info(src, &info, &ninfo);
        REQUIRE(felix_rec_write_sample(w, s[cur], info, ninfo) == 0);
        REQUIRE(felix_delta_compute(d, have ? s[cur ^ 1] : NULL, s[cur]) == 0);
        digest_frame(&live_g, d);
        have = 1;
        cur ^= 1;
        n++;
    }
    REQUIRE(felix_rec_writer_close(w, "test") == 0);
    felix_source_close(src);
    sim_stop(pid);
    REQUIRE(replay(path, freq, ncpus, 1, &replay_g) == 0);
    CHECK_EQ(replay_g.frames, 300);
    CHECK(same(&live_g, &replay_g));
    /* The run had what this is about: threads that came and went, and TIDs
     * that came back as new threads. */
    fprintf(stderr, "%u frames, %u threads started (%u reusing a TID), %u exited\n", live_g.frames, live_g.started,
            live_g.reused, live_g.exited);
    CHECK(live_g.exited > 50 && live_g.reused > 0);
    fprintf(stderr, "%u thread events, %u thread CPU intervals, %u JIT/CPU shares\n", live_g.events, live_g.cpu,
            live_g.shares);
    CHECK(live_g.events >= live_g.started + live_g.exited - 16); /* all but the first sample's threads */
    CHECK(live_g.cpu > 0 && live_g.shares > 0);
    free(live_g.buf);
    free(replay_g.buf);
    pair_free(&p);
}

/* The cases only slot offsets tell apart, built by hand: a TID reused by a
 * new thread in another slot whose counters happen not to go back, a thread
 * restarted in place (counters back near 0), a TID that leaves and comes
 * back, an exec, and a layout change; live and replay agree, and the
 * recording holds the restarts as thread events. */
static void restarts_replay_as_live(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/restarts.felix", t_tmpdir());
    felix_rec_header h = FELIX_REC_HEADER_INIT;
    h.freq_hz = 1000000000;
    h.ncpus = 4;
    h.thread_stats_size = 80;
    h.start_mono_ns = 1000000000;
    felix_rec_writer *w;
    REQUIRE(felix_rec_writer_open_path(&w, path, &h, NULL) == 0);
    struct pair p;
    pair_new(&p, h.freq_hz, h.ncpus);
    felix_snapshot **s = p.s;
    felix_delta *d = p.d;
    struct digest live_g = {0}, replay_g = {0};
    int cur = 0;
    for (int i = 0; i < 40; i++) {
        felix_snapshot *sn = s[cur];
        unsigned image = i < 30 ? 1 : 2;
        felix_snapshot_begin(sn, h.start_mono_ns + (int64_t)i * 100000000, 1700000000000000000LL + i, 80);
        for (uint32_t tid = 100; tid < 106; tid++) {
            uint64_t wds[9];
            uint32_t off = 64 + (tid - 100) * 80;
            for (int k = 0; k < 9; k++)
                wds[k] = (uint64_t)(i + 1) * (tid + (uint64_t)k) * 1000;
            if (tid == 101 && i >= 10) /* reused TID, another slot, counters still higher */
                off = 64 + 9 * 80, wds[0] += 5000000;
            if (tid == 102 && i >= 20) /* restarted in place */
                for (int k = 0; k < 9; k++)
                    wds[k] = (uint64_t)(i - 20) * 10;
            if (tid == 103 && i % 7 == 3)
                continue; /* gone for a sample */
            felix_snapshot_append(sn, tid, off, wds, 9);
        }
        felix_snapshot_info_mut(sn)->image = image;
        REQUIRE(felix_rec_write_sample(w, sn, NULL, 0) == 0);
        REQUIRE(felix_delta_compute(d, i ? s[cur ^ 1] : NULL, sn) == 0);
        digest_frame(&live_g, d);
        cur ^= 1;
    }
    REQUIRE(felix_rec_writer_close(w, NULL) == 0);
    REQUIRE(replay(path, h.freq_hz, h.ncpus, 0, &replay_g) == 0);
    CHECK(same(&live_g, &replay_g));
    CHECK(live_g.reused >= 2); /* 101 at sample 10, 102 at 20 */
    /* The recording's events: 101 and 102 each exited and started again. */
    felix_rec_reader *r;
    REQUIRE(felix_rec_reader_open_path(&r, path) == 0);
    felix_rec_event ev = FELIX_REC_EVENT_INIT;
    int item, exits101 = 0, starts102 = 0, rc;
    while ((rc = felix_rec_next(r, s[0], &ev, &item)) == 0)
        if (item == FELIX_REC_EVENT && ev.mono_ns < h.start_mono_ns + 30 * 100000000LL) {
            exits101 += ev.kind == FELIX_EV_THREAD_EXITED && ev.tid == 101;
            starts102 += ev.kind == FELIX_EV_THREAD_STARTED && ev.tid == 102;
        }
    CHECK_EQ(rc, FELIX_EEOF);
    CHECK_EQ(exits101, 1);
    CHECK_EQ(starts102, 1);
    felix_rec_reader_close(r);
    free(live_g.buf);
    free(replay_g.buf);
    pair_free(&p);
}

T_MAIN(T(churn_live_equals_replay), T(restarts_replay_as_live))
