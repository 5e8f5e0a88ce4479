/* Deltas: loads, rates, flags and churn from hand-built snapshots. */
#include "helpers.h"
#include "t.h"

#include <felix/felix.h>

#define F 1000000000ull /* 1 GHz: one tick per ns */

static felix_snapshot *mk(int64_t t_ns)
{
    felix_snapshot *s;
    felix_snapshot_new(&s);
    felix_snapshot_begin(s, t_ns, t_ns + 1700000000LL * 1000000000LL, 80);
    return s;
}

static void add(felix_snapshot *s, uint32_t tid, uint32_t off, uint64_t jit, uint64_t sig,
                uint64_t smc, uint64_t sigbus, uint64_t sf)
{
    uint64_t w[9] = {0};
    w[FELIX_C_JIT_TIME] = jit;
    w[FELIX_C_SIGNAL_TIME] = sig;
    w[FELIX_C_SMC] = smc;
    w[FELIX_C_SIGBUS] = sigbus;
    w[FELIX_C_SOFTFLOAT] = sf;
    w[FELIX_C_JIT_COUNT] = jit / 1000;
    felix_snapshot_append(s, tid, off, w, 9);
}

static void baseline_frame(void)
{
    felix_delta *d;
    REQUIRE(felix_delta_new(&d, F, 4) == 0);
    felix_snapshot *a = mk(1000);
    add(a, 1, 64, 5000, 0, 9, 9, 9);
    CHECK_EQ(felix_delta_compute(d, NULL, a), 0);
    const felix_frame *f = felix_delta_frame(d);
    CHECK_EQ(f->nthreads, 1);
    CHECK_EQ(f->nstarted, 1);
    CHECK_EQ(f->interval_ns, 0);
    CHECK_EQ(f->d[FELIX_C_JIT_TIME], 0);
    CHECK_EQ(f->load_pct, 0);
    CHECK_EQ(f->cum[FELIX_C_JIT_TIME], 5000);
    CHECK(felix_delta_thread(d, 0)->state & FELIX_TD_STARTED);
    felix_snapshot_free(a);
    felix_delta_free(d);
}

static void loads_and_rates(void)
{
    felix_delta *d;
    REQUIRE(felix_delta_new(&d, F, 2) == 0);
    felix_snapshot *a = mk(0), *b = mk(500000000); /* T = 0.5 s */
    add(a, 1, 64, 0, 0, 0, 0, 0);
    add(a, 2, 144, 0, 0, 0, 0, 0);
    add(a, 3, 224, 0, 0, 0, 0, 0);
    add(b, 1, 64, 200000000, 50000000, 100, 1000, 10); /* 0.25 s busy: 50% */
    add(b, 2, 144, 100000000, 0, 0, 0, 0);            /* 20% */
    add(b, 3, 224, 0, 0, 0, 0, 0);
    CHECK_EQ(felix_delta_compute(d, a, b), 0);
    const felix_frame *f = felix_delta_frame(d);
    CHECK_EQ(f->interval_ns, 500000000);
    CHECK_NEAR(f->interval_s, 0.5, 1e-12);
    const felix_thread_delta *t0 = felix_delta_thread(d, 0);
    CHECK_EQ(t0->tid, 1); /* ordered by load */
    CHECK_NEAR(t0->load_pct, 50.0, 1e-9);
    CHECK_EQ(felix_delta_thread(d, 1)->tid, 2);
    CHECK_NEAR(felix_delta_thread(d, 1)->load_pct, 20.0, 1e-9);
    CHECK_EQ(felix_delta_thread(d, 2)->tid, 3);
    /* FEX load divides by min(n, C) = min(3, 2). */
    CHECK_NEAR(f->load_pct, 350000000.0 / (1e9 * 0.5 * 2) * 100, 1e-9);
    /* Per second means divided by the interval. */
    CHECK_NEAR(f->rate[FELIX_C_SMC], 200.0, 1e-9);
    CHECK_NEAR(f->rate[FELIX_C_SIGBUS], 2000.0, 1e-9);
    CHECK_NEAR(t0->rate[FELIX_C_SOFTFLOAT], 20.0, 1e-9);
    CHECK_NEAR(f->value[FELIX_C_JIT_TIME], 0.3, 1e-12);  /* seconds */
    CHECK_NEAR(f->rate[FELIX_C_JIT_TIME], 0.6, 1e-12);   /* s per s */
    CHECK_EQ(f->d[FELIX_C_JIT_TIME], 300000000);
    CHECK_EQ(f->flags, FELIX_FLAG_OVER_BUDGET); /* threads busy for more than a frame */
    /* With more CPUs than threads, n divides. */
    felix_delta *d4;
    felix_delta_new(&d4, F, 8);
    felix_delta_compute(d4, a, b);
    CHECK_NEAR(felix_delta_frame(d4)->load_pct, 350000000.0 / (1e9 * 0.5 * 3) * 100, 1e-9);
    felix_delta_free(d4);
    felix_snapshot_free(a);
    felix_snapshot_free(b);
    felix_delta_free(d);
}

static void flags_scale_with_interval(void)
{
    felix_delta *d;
    felix_delta_new(&d, F, 4);
    felix_snapshot *a = mk(0), *b = mk(250000000); /* T = 0.25 s */
    add(a, 1, 64, 0, 0, 0, 0, 0);
    /* Thresholds at 0.25 s: SMC 125, SIGBUS 1250, soft-float 250000, JIT 0.25 s. */
    add(b, 1, 64, 200000000, 50000000, 125, 1250, 250000);
    felix_delta_compute(d, a, b);
    CHECK_EQ(felix_delta_frame(d)->flags & ~FELIX_FLAG_OVER_BUDGET,
             FELIX_FLAG_HIGH_JIT | FELIX_FLAG_HIGH_SMC | FELIX_FLAG_HIGH_SIGBUS | FELIX_FLAG_HIGH_SOFTFLOAT);
    felix_snapshot_free(b);
    b = mk(250000000);
    add(b, 1, 64, 200000000, 49999999, 124, 1249, 249999);
    felix_delta_compute(d, a, b);
    CHECK_EQ(felix_delta_frame(d)->flags & ~FELIX_FLAG_OVER_BUDGET, 0);
    felix_snapshot_free(a);
    felix_snapshot_free(b);
    felix_delta_free(d);
}

static void churn_started_exited_reused(void)
{
    felix_delta *d;
    felix_delta_new(&d, F, 4);
    felix_snapshot *a = mk(0), *b = mk(1000000000);
    add(a, 1, 64, 1000, 0, 0, 0, 0);  /* exits */
    add(a, 2, 144, 5000, 0, 7, 0, 0); /* TID reused in the same slot: counters drop */
    add(a, 3, 224, 100, 0, 0, 0, 0);  /* TID moves to another slot */
    add(a, 4, 304, 100, 0, 0, 0, 0);  /* lives on */
    add(b, 2, 144, 10, 0, 0, 0, 0);
    add(b, 3, 384, 900, 0, 0, 0, 0);
    add(b, 4, 304, 600, 0, 0, 0, 0);
    add(b, 5, 64, 123456789, 0, 0, 0, 0); /* new: a baseline, no spike */
    CHECK_EQ(felix_delta_compute(d, a, b), 0);
    const felix_frame *f = felix_delta_frame(d);
    CHECK_EQ(f->nthreads, 4);
    CHECK_EQ(f->nstarted, 3);
    CHECK_EQ(f->nexited, 3);
    CHECK_EQ(f->d[FELIX_C_JIT_TIME], 500); /* only thread 4 */
    for (size_t i = 0; i < f->nthreads; i++) {
        const felix_thread_delta *t = felix_delta_thread(d, i);
        for (int k = 0; k < FELIX_NCOUNTERS; k++)
            CHECK(t->d[k] < (1ull << 40)); /* never a wrapped delta */
        if (t->tid == 2 || t->tid == 3)
            CHECK_EQ(t->state, FELIX_TD_STARTED | FELIX_TD_REUSED);
        if (t->tid == 5)
            CHECK_EQ(t->state, FELIX_TD_STARTED);
        if (t->tid == 4)
            CHECK_EQ(t->state, 0);
    }
    int seen1 = 0;
    for (size_t i = 0; i < f->nexited; i++) {
        const felix_thread_delta *e = felix_delta_exited(d, i);
        CHECK(e->state & FELIX_TD_EXITED);
        if (e->tid == 1) {
            seen1 = 1;
            CHECK_EQ(e->abs[FELIX_C_JIT_TIME], 1000);
        }
    }
    CHECK(seen1);
    /* Cumulative: everything every thread did, the gone ones included. */
    CHECK_EQ(f->cum[FELIX_C_JIT_TIME], 1000 + 5000 + 100 + 10 + 900 + 600 + 123456789);
    CHECK_EQ(f->cum[FELIX_C_SMC], 7);
    felix_snapshot_free(a);
    felix_snapshot_free(b);
    felix_delta_free(d);
}

static void overtime_flagged(void)
{
    felix_delta *d;
    felix_delta_new(&d, F, 4);
    felix_snapshot *a = mk(0), *b = mk(100000000); /* 0.1 s */
    add(a, 1, 64, 0, 0, 0, 0, 0);
    add(a, 2, 144, 0, 0, 0, 0, 0);
    add(b, 1, 64, 2000000000, 0, 0, 0, 0); /* a 2 s compile ending now */
    add(b, 2, 144, 50000000, 0, 0, 0, 0);
    felix_delta_compute(d, a, b);
    CHECK_EQ(felix_delta_frame(d)->novertime, 1);
    CHECK(felix_delta_thread(d, 0)->state & FELIX_TD_OVERTIME);
    CHECK(!(felix_delta_thread(d, 1)->state & FELIX_TD_OVERTIME));
    felix_snapshot_free(a);
    felix_snapshot_free(b);
    felix_delta_free(d);
}

static void time_must_increase(void)
{
    felix_delta *d;
    felix_delta_new(&d, F, 4);
    felix_snapshot *a = mk(100), *b = mk(100);
    CHECK_EQ(felix_delta_compute(d, a, b), FELIX_EINVAL);
    CHECK_EQ(felix_delta_new(&d, 0, 4), FELIX_EINVAL);
    felix_snapshot_free(a);
    felix_snapshot_free(b);
    felix_delta_free(d);
}

static void snapshot_copy_and_find(void)
{
    felix_snapshot *a = mk(5), *b;
    felix_snapshot_new(&b);
    for (uint32_t t = 1; t <= 300; t++)
        add(a, t * 7919, 64 + 80 * t, t, 0, 0, 0, 0);
    CHECK_EQ(felix_snapshot_copy(b, a), 0);
    CHECK_EQ(felix_snapshot_get_info(b)->nthreads, 300);
    for (uint32_t t = 1; t <= 300; t++) {
        const felix_thread *x = felix_snapshot_find(b, t * 7919);
        REQUIRE(x);
        CHECK_EQ(x->c[FELIX_C_JIT_TIME], t);
    }
    CHECK(felix_snapshot_find(b, 1) == NULL);
    CHECK_EQ(felix_snapshot_append(b, 0, 0, NULL, 0), FELIX_EINVAL);
    CHECK_EQ(felix_snapshot_begin(b, 0, 0, 40), FELIX_EINVAL);
    felix_snapshot_free(a);
    felix_snapshot_free(b);
}

/* A digest of the last frame: totals, flags, every live and exited thread. */
static uint64_t frame_digest(const felix_delta *d)
{
    const felix_frame *f = felix_delta_frame(d);
    uint64_t h = 1469598103934665603ull;
#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ull)
    MIX(f->seq), MIX(f->nthreads), MIX(f->nstarted), MIX(f->nexited), MIX(f->flags), MIX(f->interval_ns);
    for (int k = 0; k < FELIX_NCOUNTERS; k++)
        MIX(f->d[k]), MIX(f->cum[k]);
    for (size_t i = 0; i < f->nthreads; i++)
        MIX(felix_delta_thread(d, i)->tid), MIX(felix_delta_thread(d, i)->state), MIX(felix_delta_thread(d, i)->d[0]);
    for (size_t i = 0; i < f->nexited; i++)
        MIX(felix_delta_exited(d, i)->tid), MIX(felix_delta_exited(d, i)->abs[0]);
#undef MIX
    return h;
}

struct oom_d {
    felix_snapshot *s[3];
    uint64_t want;
};

/* Three frames (baseline, growth, churn); a frame that ran out of memory is
 * computed again once memory is back and must equal a frame never failed. */
static int oom_delta_step(void *arg)
{
    struct oom_d *o = arg;
    felix_delta *d;
    int rc = felix_delta_new(&d, F, 4), oom = 0;
    if (rc < 0)
        return rc;
    uint64_t h = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        rc = felix_delta_compute(d, i ? o->s[i - 1] : NULL, o->s[i]);
        if (rc == FELIX_ENOMEM) {
            oom = 1;
            t_alloc_heal();
            rc = felix_delta_compute(d, i ? o->s[i - 1] : NULL, o->s[i]);
        }
        h = h * 31 + frame_digest(d);
    }
    felix_delta_free(d);
    if (rc == 0 && o->want && h != o->want)
        return -100;
    if (rc == 0 && !o->want)
        o->want = h;
    return rc < 0 ? rc : oom ? FELIX_ENOMEM : 0;
}

static void oom_delta(void)
{
    struct oom_d o = {{mk(1000), mk(1000000000), mk(2000000000)}, 0};
    for (uint32_t t = 1; t <= 40; t++)
        add(o.s[0], t, 64 + t * 80, t * 1000, 0, 0, 0, 0);
    for (uint32_t t = 1; t <= 200; t++)
        add(o.s[1], t, 64 + t * 80, t * 2000, t, 0, 0, 0);
    for (uint32_t t = 150; t <= 400; t++) /* 1..149 exit, 201..400 start */
        add(o.s[2], t, 64 + t * 80, t * 3000, t, 1, 0, 0);
    t_alloc_install();
    REQUIRE(oom_delta_step(&o) == 0 && o.want != 0);
    CHECK(t_oom_every("delta", oom_delta_step, &o, 5));
    for (int i = 0; i < 3; i++)
        felix_snapshot_free(o.s[i]);
}

/* Run a thread through samples every interval_ns whose JIT time grows by
 * busy[i] ns in interval i (1 GHz: ticks are ns); returns the frames in
 * which it was flagged over budget (bit i), and its final count. */
static uint64_t budget_run(int64_t interval_ns, const uint64_t *busy, int n, unsigned fps, uint32_t *count)
{
    felix_delta *d;
    felix_delta_new(&d, F, 4);
    if (fps)
        felix_delta_set_fps(d, fps);
    felix_snapshot *prev = mk(1000), *cur = NULL;
    add(prev, 7, 64, 0, 0, 0, 0, 0);
    add(prev, 8, 144, 0, 0, 0, 0, 0); /* idle: never flagged */
    felix_delta_compute(d, NULL, prev);
    uint64_t jit = 0, flagged = 0;
    for (int i = 0; i < n; i++) {
        jit += busy[i];
        cur = mk(1000 + (int64_t)(i + 1) * interval_ns);
        add(cur, 7, 64, jit, 0, 0, 0, 0);
        add(cur, 8, 144, 0, 0, 0, 0, 0);
        CHECK_EQ(felix_delta_compute(d, prev, cur), 0);
        const felix_frame *f = felix_delta_frame(d);
        const felix_thread_delta *t = felix_delta_thread(d, 0), *idle = felix_delta_thread(d, 1);
        CHECK_EQ(t->tid, 7);
        CHECK(!(idle->state & FELIX_TD_OVER_BUDGET) && idle->budget_frames == 0);
        int on = (t->state & FELIX_TD_OVER_BUDGET) != 0;
        CHECK_EQ(on, (f->flags & FELIX_FLAG_OVER_BUDGET) != 0);
        CHECK_EQ(f->nover_budget, on);
        flagged |= (uint64_t)on << i;
        *count = t->budget_frames;
        felix_snapshot_free(prev);
        prev = cur;
    }
    felix_snapshot_free(prev);
    felix_delta_free(d);
    return flagged;
}

/* The frame budget at 60 fps (16.67 ms) with samples every 1 ms, 10 ms,
 * 100 ms and 1 s: flagged exactly when a frame's worth of JIT + signal
 * time falls within the last frame's span (short intervals) or within the
 * interval (long ones), each flag one more frame. */
static void frame_budget(void)
{
    uint64_t busy[40];
    uint32_t count;
    /* 1 ms samples, fully busy: a frame's worth every 17 samples (the window
     * spans 17 ms, the first time 17 of its samples are there). */
    for (int i = 0; i < 40; i++)
        busy[i] = 1000000;
    CHECK_EQ(budget_run(1000000, busy, 40, 0, &count), (1ull << 16) | (1ull << 33));
    CHECK_EQ(count, 2);
    /* 1 ms samples, 90% busy: 17 samples hold 15.3 ms, never a frame. */
    for (int i = 0; i < 40; i++)
        busy[i] = 900000;
    CHECK_EQ(budget_run(1000000, busy, 40, 0, &count), 0);
    CHECK_EQ(count, 0);
    /* 10 ms samples: two samples span a frame; 9 + 8 ms = 17 ms flags the
     * second, then the window starts over (1 + 9, 9 + 7: 16 ms is less than
     * 16.67); 7 + 10 flags again. */
    uint64_t b10[6] = {9000000, 8000000, 1000000, 9000000, 7000000, 10000000};
    CHECK_EQ(budget_run(10000000, b10, 6, 0, &count), (1u << 1) | (1u << 5));
    CHECK_EQ(count, 2);
    /* 100 ms samples: a frame or more in one interval (16,666,667 ns). */
    uint64_t b100[4] = {16666666, 16666667, 50000000, 0};
    CHECK_EQ(budget_run(100000000, b100, 4, 0, &count), (1u << 1) | (1u << 2));
    CHECK_EQ(count, 2);
    /* 1 s samples at 30 fps: the budget is 33,333,334 ns (rounded up). */
    uint64_t b1s[4] = {20000000, 40000000, 33333334, 33333333};
    CHECK_EQ(budget_run(1000000000, b1s, 4, 30, &count), (1u << 1) | (1u << 2));
    CHECK_EQ(count, 2);
    felix_delta *d;
    felix_delta_new(&d, F, 4);
    CHECK_EQ(felix_delta_frame(d)->fps, FELIX_DEFAULT_FPS);
    CHECK_EQ(felix_delta_set_fps(d, 0), FELIX_EINVAL);
    CHECK_EQ(felix_delta_set_fps(d, 1001), FELIX_EINVAL);
    CHECK_EQ(felix_delta_set_fps(d, 144), 0);
    CHECK_EQ(felix_delta_frame(d)->fps, 144);
    felix_delta_free(d);
}

/* CPU: cpu_s when both ends measured the thread, -1 otherwise (or for a
 * thread started in the frame); jit_cpu_pct over the span between the
 * thread's last two measurements, kept through frames without one. The
 * times travel with snapshot copies and are cleared by begin(). */
static void cpu_deltas(void)
{
    felix_delta *d;
    REQUIRE(felix_delta_new(&d, F, 4) == 0);
    /* t = 0, 0.1, 0.2, 0.3 s; thread 7 has 0, 10, 20, 40 ms of JIT and is
     * measured at 0, 0.1 and 0.3 s with 40 ms of CPU per 100 ms. */
    felix_snapshot *s[4];
    static const int measured[4] = {1, 1, 0, 1};
    static const uint64_t jit_ms[4] = {0, 10, 20, 40};
    for (int i = 0; i < 4; i++) {
        s[i] = mk(1000000000LL + i * 100000000LL);
        add(s[i], 7, 64, jit_ms[i] * 1000000, 0, 0, 0, 0);
        add(s[i], 8, 144, 0, 0, 0, 0, 0);
        if (measured[i])
            CHECK_EQ(felix_snapshot_set_thread_cpu_ns(s[i], 0, 5000000000ull + (uint64_t)i * 40000000), 0);
    }
    uint64_t ns = 0;
    CHECK_EQ(felix_snapshot_thread_cpu_ns(s[1], 0, &ns), 0);
    CHECK_EQ(ns, 5040000000ull);
    CHECK_EQ(felix_snapshot_thread_cpu_ns(s[1], 1, &ns), FELIX_EINVAL); /* thread 8: never measured */
    CHECK_EQ(felix_snapshot_thread_cpu_ns(s[2], 0, &ns), FELIX_EINVAL);
    CHECK_EQ(felix_snapshot_set_thread_cpu_ns(s[2], 2, 1), FELIX_EINVAL); /* no thread 2 */
    felix_snapshot *c;
    REQUIRE(felix_snapshot_new(&c) == 0);
    CHECK_EQ(felix_snapshot_copy(c, s[3]), 0);
    CHECK_EQ(felix_snapshot_thread_cpu_ns(c, 0, &ns), 0);
    CHECK_EQ(ns, 5120000000ull);
    felix_snapshot_begin(c, 5, 5, 80);
    add(c, 7, 64, 0, 0, 0, 0, 0);
    CHECK_EQ(felix_snapshot_thread_cpu_ns(c, 0, &ns), FELIX_EINVAL);
    felix_snapshot_free(c);

    CHECK_EQ(felix_delta_compute(d, NULL, s[0]), 0);
    const felix_thread_delta *t = felix_delta_thread(d, 0);
    CHECK(t->cpu_s == -1 && t->jit_cpu_pct == -1); /* started: a baseline */
    CHECK_EQ(felix_delta_compute(d, s[0], s[1]), 0);
    t = felix_delta_thread(d, 0); /* thread 7: the busier */
    CHECK_EQ(t->tid, 7);
    CHECK_NEAR(t->cpu_s, 0.04, 1e-12);
    CHECK_NEAR(t->jit_cpu_pct, 25.0, 1e-9); /* 10 ms of JIT in 40 ms of CPU */
    CHECK(felix_delta_thread(d, 1)->cpu_s == -1 && felix_delta_thread(d, 1)->jit_cpu_pct == -1);
    CHECK_EQ(felix_delta_compute(d, s[1], s[2]), 0);
    t = felix_delta_thread(d, 0);
    CHECK(t->cpu_s == -1);                  /* not measured at 0.2 s */
    CHECK_NEAR(t->jit_cpu_pct, 25.0, 1e-9); /* the last share, kept */
    CHECK_EQ(felix_delta_compute(d, s[2], s[3]), 0);
    t = felix_delta_thread(d, 0);
    CHECK(t->cpu_s == -1);                  /* 0.2 s had none: no interval figure */
    CHECK_NEAR(t->jit_cpu_pct, 37.5, 1e-9); /* 30 ms of JIT in 80 ms of CPU, 0.1 to 0.3 s */
    /* Not successive (the delta's state is another frame's): shares start over. */
    CHECK_EQ(felix_delta_compute(d, s[0], s[3]), 0);
    CHECK(felix_delta_thread(d, 0)->jit_cpu_pct == -1);
    CHECK_NEAR(felix_delta_thread(d, 0)->cpu_s, 0.12, 1e-12);
    for (int i = 0; i < 4; i++)
        felix_snapshot_free(s[i]);
    felix_delta_free(d);
}

T_MAIN(T(cpu_deltas), T(frame_budget), T(oom_delta), T(baseline_frame), T(loads_and_rates), T(flags_scale_with_interval),
       T(churn_started_exited_reused), T(overtime_flagged), T(time_must_increase),
       T(snapshot_copy_and_find))
