/* Integration: libfelix against felix-sim, a real process writing the segment
 * the way FEX does. Rates are checked against felix-sim's documented ones. */
#include "helpers.h"
#include "t.h"

#include <dirent.h>
#include <fcntl.h>
#include <felix/felix.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t freq(void)
{
    uint64_t hz = 0;
    felix_clock_frequency(&hz, NULL);
    return hz;
}

/* Snapshot until the segment lists n threads (at most 10 s). */
static int wait_threads(felix_shm *shm, felix_snapshot *s, uint32_t n)
{
    int64_t end = t_now_ns() + 10000000000LL;
    while (t_now_ns() < end) {
        if (felix_shm_snapshot(shm, s) == 0 && felix_snapshot_get_info(s)->nthreads >= n)
            return 1;
        t_sleep_ms(2);
    }
    return 0;
}

/* A count over T seconds matches rate within 5%, or 1.5 counts for tiny ones
 * (counters move in whole units at period ends). */
static int rate_ok(double got_per_s, double want_per_s, double t)
{
    double diff = (got_per_s - want_per_s) * t;
    if (diff < 0)
        diff = -diff;
    double tol = want_per_s * t * 0.05;
    return diff <= (tol > 1.5 ? tol : 1.5);
}

/* A time share over T seconds matches within 5%, or one scheduler slice
 * (10 ms) of time for small ones: felix-sim spins through short timed
 * blocks, and a worker preempted in the middle of one counts the preemption
 * (as FEX would), then takes 1/share seconds to amortize it, so it shows in
 * any window. This matters only for the signal (2%) and cache-lock (1%,
 * 0.5%) shares: on a busy 2-core machine those missed 5% in half the runs,
 * before and after the reader changed (one write-lock share was 5.8 ms over). */
static int share_ok(double got, double want, double t)
{
    double diff = (got - want) * t;
    if (diff < 0)
        diff = -diff;
    double tol = want * t * 0.05;
    return diff <= (tol > 0.010 ? tol : 0.010);
}

/* Deltas of the last frame that cannot be real, printed: a wrapped 2^64
 * delta is the fault looked for. A real time delta can exceed the interval,
 * since FEX (and felix-sim) adds a timed block's ticks when it ends, but no
 * block outlasts its thread, which lives at most max_life_s; no count moves
 * by a million in these scenarios' intervals. */
static unsigned long bogus_deltas(const felix_delta *d, uint64_t hz, double max_life_s)
{
    const felix_frame *f = felix_delta_frame(d);
    double allow = (double)hz * (f->interval_s + max_life_s);
    unsigned long bogus = 0;
    for (size_t i = 0; i < f->nthreads; i++) {
        const felix_thread_delta *t = felix_delta_thread(d, i);
        for (int k = 0; k < FELIX_NCOUNTERS; k++) {
            double lim = felix_counter_is_time(k) ? allow : 1e6;
            if ((double)t->d[k] > lim) {
                bogus++;
                fprintf(stderr, "bogus delta: tid %u counter %d = %llu\n", (unsigned)t->tid, k,
                        (unsigned long long)t->d[k]);
            }
        }
    }
    return bogus;
}

/* Thread k of felix-sim, from its name "sim-worker-k". */
static unsigned worker_k(pid_t pid, uint32_t tid)
{
    char name[32];
    if (felix_proc_thread_name(pid, (pid_t)tid, name, sizeof name) < 0)
        return 0;
    return strncmp(name, "sim-worker-", 11) == 0 ? (unsigned)atoi(name + 11) : 0;
}

/* felix-sim attached: two snapshots and a delta context. */
struct watch {
    pid_t pid;
    felix_shm *shm;
    felix_snapshot *a, *b;
    felix_delta *d;
};

/* Start felix-sim with args, attach, and take snapshot a once it lists n
 * threads. 0 on success. */
static int watch_start(struct watch *w, const char *const *args, uint32_t n)
{
    memset(w, 0, sizeof *w);
    w->pid = sim_start(args);
    if (w->pid <= 0 || felix_shm_open_pid(&w->shm, w->pid, 0) < 0)
        return -1;
    felix_snapshot_new(&w->a);
    felix_snapshot_new(&w->b);
    felix_delta_new(&w->d, freq(), 0);
    return wait_threads(w->shm, w->a, n) ? 0 : -1;
}

/* Snapshot b after ms, and the frame from a to b. */
static const felix_frame *watch_frame(struct watch *w, int ms)
{
    t_sleep_ms(ms);
    if (felix_shm_snapshot(w->shm, w->b) < 0 || felix_delta_compute(w->d, w->a, w->b) < 0)
        return NULL;
    return felix_delta_frame(w->d);
}

/* Stop felix-sim and free; returns its wait status. */
static int watch_stop(struct watch *w)
{
    int st = w->pid > 0 ? sim_stop(w->pid) : -1;
    felix_snapshot_free(w->a);
    felix_snapshot_free(w->b);
    felix_delta_free(w->d);
    felix_shm_close(w->shm);
    return st;
}

static void steady_rates_recovered(void)
{
    static const char *args[] = {"-t", "4", "-s", "steady", NULL};
    struct watch w;
    REQUIRE(watch_start(&w, args, 4) == 0);
    const felix_frame *f = watch_frame(&w, 5000); /* the measurement window */
    REQUIRE(f);
    double T = f->interval_s;
    CHECK_EQ(f->nthreads, 4);
    CHECK_EQ(f->nstarted, 0);
    double busy = 0;
    for (size_t i = 0; i < f->nthreads; i++) {
        const felix_thread_delta *t = felix_delta_thread(w.d, i);
        unsigned k = worker_k(w.pid, t->tid);
        REQUIRE(k >= 1 && k <= 4);
        double jit = (k % 10 + 1) * 0.05;
        busy += jit + 0.02;
        CHECK_NEAR(t->rate[FELIX_C_JIT_TIME], jit, 0.05);
        CHECK(share_ok(t->rate[FELIX_C_SIGNAL_TIME], 0.02, T));
        CHECK(share_ok(t->rate[FELIX_C_CACHE_RDLOCK], 0.01, T));
        CHECK(share_ok(t->rate[FELIX_C_CACHE_WRLOCK], 0.005, T));
        if (!share_ok(t->rate[FELIX_C_CACHE_RDLOCK], 0.01, T) || !share_ok(t->rate[FELIX_C_CACHE_WRLOCK], 0.005, T))
            fprintf(stderr, "thread %u: read lock %g, write lock %g over %g s\n", k, t->rate[FELIX_C_CACHE_RDLOCK],
                    t->rate[FELIX_C_CACHE_WRLOCK], T);
        CHECK_NEAR(t->load_pct, (jit + 0.02) * 100, 0.05);
        CHECK(rate_ok(t->rate[FELIX_C_JIT_COUNT], 100.0 * k, T));
        CHECK(rate_ok(t->rate[FELIX_C_SMC], k, T));
        CHECK(rate_ok(t->rate[FELIX_C_SIGBUS], 10.0 * k, T));
        CHECK(rate_ok(t->rate[FELIX_C_SOFTFLOAT], 1000.0 * k, T));
        CHECK(rate_ok(t->rate[FELIX_C_CACHE_MISS], 50.0 * k, T));
        if (i > 0)
            CHECK(felix_delta_thread(w.d, i - 1)->load_pct >= t->load_pct);
    }
    unsigned par = f->ncpus < 4 ? f->ncpus : 4;
    CHECK_NEAR(f->load_pct, busy / par * 100, 0.05);
    CHECK(rate_ok(f->rate[FELIX_C_JIT_COUNT], 1000.0, T));
    /* No threshold flag (a thread busy 5% of a second does lose frames: the
     * budget flag is the frame_budget test's). */
    CHECK_EQ(f->flags & ~FELIX_FLAG_OVER_BUDGET, 0);
    const felix_shm_info *si = felix_shm_get_info(w.shm);
    CHECK_EQ(si->slot_size, 80);
    CHECK(strcmp(si->app_type_name, "Linux64") == 0);
    CHECK(strcmp(si->fex_version, "FEX-2610-felix-sim") == 0);
    CHECK_EQ(WEXITSTATUS(watch_stop(&w)), 0);
}

static void warmup_then_quiet(void)
{
    static const char *args[] = {"-t", "2", "-s", "warmup", NULL};
    int64_t t0 = t_now_ns();
    struct watch w;
    REQUIRE(watch_start(&w, args, 2) == 0);
    const felix_frame *f = watch_frame(&w, 1000);
    REQUIRE(f);
    CHECK(f->load_pct > 80);
    CHECK(f->rate[FELIX_C_JIT_COUNT] > 4000);
    /* Past the 3 s burst (measured from before the start). */
    while (t_now_ns() - t0 < 3300000000LL)
        t_sleep_ms(20);
    felix_shm_snapshot(w.shm, w.a);
    f = watch_frame(&w, 1000);
    REQUIRE(f);
    CHECK(f->load_pct < 5);
    CHECK(f->rate[FELIX_C_JIT_COUNT] < 10);
    watch_stop(&w);
}

static void storm_raises_flags(void)
{
    static const char *args[] = {"-t", "1", "-s", "storm", NULL};
    struct watch w;
    REQUIRE(watch_start(&w, args, 1) == 0);
    const felix_frame *f = watch_frame(&w, 500);
    REQUIRE(f);
    unsigned want = FELIX_FLAG_HIGH_SMC | FELIX_FLAG_HIGH_SIGBUS | FELIX_FLAG_HIGH_SOFTFLOAT;
    CHECK_EQ(f->flags & want, want);
    CHECK(!(f->flags & FELIX_FLAG_HIGH_JIT));
    watch_stop(&w);
}

/* Churn sampled every 1 ms: threads come and go, slots and TIDs are reused,
 * the segment grows past a page, and no delta is ever bogus. */
static void churn_every_ms(void)
{
    /* A 1 KiB first page (11 slots): the population outgrows it even where
     * threads start slowly (under an emulator). */
    static const char *args[] = {"-t", "8", "-s", "churn", "--page-size", "1024", NULL};
    pid_t pid = sim_start(args);
    REQUIRE(pid > 0);
    felix_shm *shm;
    REQUIRE(felix_shm_open_pid(&shm, pid, 0) == 0);
    felix_snapshot *s[2];
    felix_snapshot_new(&s[0]);
    felix_snapshot_new(&s[1]);
    felix_delta *d;
    uint64_t hz = freq();
    felix_delta_new(&d, hz, 0);
    REQUIRE(felix_shm_snapshot(shm, s[0]) == 0);
    uint64_t started = 0, exited = 0, reused_flag = 0, frames = 0, bogus = 0;
    uint32_t max_size = 0;
    enum { NT = 1 << 16 };
    static unsigned char seen[NT]; /* times a TID started */
    unsigned tid_restarts = 0;
    int64_t end = t_now_ns() + 4500000000LL; /* past one 4 s population wave */
    int cur = 1;
    while (t_now_ns() < end) {
        t_sleep_ms(1);
        if (felix_shm_snapshot(shm, s[cur]) < 0)
            break;
        REQUIRE(felix_delta_compute(d, s[cur ^ 1], s[cur]) == 0);
        const felix_frame *f = felix_delta_frame(d);
        frames++;
        started += f->nstarted;
        exited += f->nexited;
        bogus += bogus_deltas(d, hz, 0.3); /* churn threads live at most 300 ms */
        for (size_t i = 0; i < f->nthreads; i++) {
            const felix_thread_delta *t = felix_delta_thread(d, i);
            if (t->state & FELIX_TD_REUSED)
                reused_flag++;
            if (t->state & FELIX_TD_STARTED) {
                if (seen[t->tid % NT]++)
                    tid_restarts++;
            }
        }
        uint32_t rs = felix_snapshot_get_info(s[cur])->real_size;
        if (rs > max_size)
            max_size = rs;
        cur ^= 1;
    }
    CHECK_EQ(bogus, 0);
    CHECK(frames > 1000);
    CHECK(started > 100);
    CHECK(exited > 100);
    CHECK(tid_restarts + reused_flag > 0); /* a TID came back as a new thread */
    CHECK(max_size > 1024); /* grew past its first page */
    fprintf(stderr, "churn: %llu frames, %llu started, %llu exited, %llu reused, %u TID restarts, %u bytes\n",
            (unsigned long long)frames, (unsigned long long)started, (unsigned long long)exited,
            (unsigned long long)reused_flag, tid_restarts, max_size);
    CHECK_EQ(WEXITSTATUS(sim_stop(pid)), 0);
    felix_snapshot_free(s[0]);
    felix_snapshot_free(s[1]);
    felix_delta_free(d);
    felix_shm_close(shm);
}

/* 48-, 80- and 80+K-byte slots. */
static void layouts(void)
{
    static const struct { const char *flag, *val; unsigned slot, nknown, nextra; } cases[] = {
        {"--legacy-layout", NULL, 48, 5, 0},
        {"--app-type", "Linux64", 80, 9, 0},
        {"--extra-fields", "3", 112, 9, 4},
    };
    for (size_t c = 0; c < 3; c++) {
        const char *args[] = {"-t", "2", "--no-mem", cases[c].flag, cases[c].val, NULL};
        pid_t pid = sim_start(args);
        REQUIRE(pid > 0);
        felix_shm *shm;
        REQUIRE(felix_shm_open_pid(&shm, pid, 0) == 0);
        felix_snapshot *a, *b;
        felix_snapshot_new(&a);
        felix_snapshot_new(&b);
        REQUIRE(wait_threads(shm, a, 2));
        t_sleep_ms(1000);
        felix_shm_snapshot(shm, b);
        const felix_snapshot_info *bi = felix_snapshot_get_info(b);
        CHECK_EQ(bi->slot_size, cases[c].slot);
        CHECK_EQ(bi->nknown, cases[c].nknown);
        CHECK_EQ(bi->nextra, cases[c].nextra);
        CHECK_EQ(felix_shm_get_info(shm)->thread_stats_size, c == 0 ? 0 : cases[c].slot);
        double T = (double)(bi->mono_ns - felix_snapshot_get_info(a)->mono_ns) / 1e9;
        for (uint32_t i = 0; i < bi->nthreads; i++) {
            const felix_thread *t = felix_snapshot_thread(b, i);
            const felix_thread *p = felix_snapshot_find(a, t->tid);
            REQUIRE(p);
            unsigned k = worker_k(pid, t->tid);
            CHECK(k >= 1);
            CHECK(rate_ok((double)(t->c[FELIX_C_SOFTFLOAT] - p->c[FELIX_C_SOFTFLOAT]) / T, 1000.0 * k, T));
            if (cases[c].nknown == 5)
                CHECK_EQ(t->c[FELIX_C_JIT_COUNT], 0); /* not in the legacy layout */
            else
                CHECK(rate_ok((double)(t->c[FELIX_C_JIT_COUNT] - p->c[FELIX_C_JIT_COUNT]) / T, 100.0 * k, T));
            for (unsigned j = 0; j < 3 && cases[c].nextra; j++) {
                const uint64_t *eb = felix_snapshot_extra(b, i);
                const uint64_t *ea = felix_snapshot_extra(a, (size_t)felix_snapshot_index(a, t->tid));
                CHECK(rate_ok((double)(eb[j] - ea[j]) / T, (double)(j + 1) * k, T));
                CHECK_EQ(eb[3], 0); /* padding to the 16-byte slot multiple */
            }
        }
        sim_stop(pid);
        felix_snapshot_free(a);
        felix_snapshot_free(b);
        felix_shm_close(shm);
    }
}

/* Growth from one page to 4 MiB while sampling; 16 KiB and 64 KiB pages. */
static void grow_to_4mib(const char *page)
{
    /* FEX starts with one page. */
    const char *args1[] = {"-t", "2", "--no-mem", "--page-size", page, NULL};
    pid_t pid = sim_start(args1);
    REQUIRE(pid > 0);
    felix_shm *shm;
    REQUIRE(felix_shm_open_pid(&shm, pid, 0) == 0);
    CHECK_EQ(felix_shm_get_info(shm)->real_size, (uint32_t)atoi(page));
    CHECK_EQ(felix_shm_get_info(shm)->size, (uint32_t)atoi(page));
    felix_shm_close(shm);
    sim_stop(pid);

    const char *args[] = {"-t", "1", "-s", "grow", "--no-mem", "--page-size", page, NULL};
    pid = sim_start(args);
    REQUIRE(pid > 0);
    REQUIRE(felix_shm_open_pid(&shm, pid, 0) == 0);
    felix_snapshot *s[2];
    felix_snapshot_new(&s[0]);
    felix_snapshot_new(&s[1]);
    felix_delta *d;
    felix_delta_new(&d, freq(), 0);
    REQUIRE(felix_shm_snapshot(shm, s[0]) == 0);
    const uint32_t full = (FELIX_SHM_FEX_MAX_SIZE - 64) / 80 - 1;
    int cur = 1, done = 0;
    uint64_t bogus = 0;
    int64_t end = t_now_ns() + 60000000000LL;
    while (!done && t_now_ns() < end) {
        t_sleep_ms(10);
        REQUIRE(felix_shm_snapshot(shm, s[cur]) == 0);
        REQUIRE(felix_delta_compute(d, s[cur ^ 1], s[cur]) == 0);
        const felix_frame *f = felix_delta_frame(d);
        if (f->d[FELIX_C_SMC] > (uint64_t)f->nthreads * 1000)
            bogus++;
        const felix_snapshot_info *si = felix_snapshot_get_info(s[cur]);
        /* Growth is not an exec: FEX's first writes to new pages move a
         * tmpfs object's mtime, and that must not look like a new image. */
        if (si->image != 1 || (f->events & FELIX_FRAME_EXEC))
            bogus++;
        done = si->real_size == FELIX_SHM_FEX_MAX_SIZE && si->nthreads == full;
        cur ^= 1;
    }
    CHECK(done);
    CHECK_EQ(bogus, 0);
    CHECK(felix_shm_get_info(shm)->remaps >= 1);
    CHECK_EQ(felix_shm_get_info(shm)->mapped_size, FELIX_SHM_FEX_MAX_SIZE);
    CHECK_EQ(felix_shm_get_info(shm)->size, FELIX_SHM_FEX_MAX_SIZE);
    /* A settled segment walks clean. */
    REQUIRE(felix_shm_snapshot(shm, s[0]) == 0);
    const felix_snapshot_info *si = felix_snapshot_get_info(s[0]);
    CHECK_EQ(si->nthreads, full);
    CHECK_EQ(si->anomaly_bad_offset + si->anomaly_cycle + si->anomaly_dup_tid, 0);
    sim_stop(pid);
    felix_snapshot_free(s[0]);
    felix_snapshot_free(s[1]);
    felix_delta_free(d);
    felix_shm_close(shm);
}
static void grow_4k(void) { grow_to_4mib("4096"); }
static void grow_16k(void) { grow_to_4mib("16384"); }
static void grow_64k(void) { grow_to_4mib("65536"); }

static void app_type_unknown(void)
{
    static const char *args[] = {"-t", "1", "--no-mem", "--app-type", "7", NULL};
    pid_t pid = sim_start(args);
    REQUIRE(pid > 0);
    felix_shm *shm;
    REQUIRE(felix_shm_open_pid(&shm, pid, 0) == 0);
    CHECK(strcmp(felix_shm_get_info(shm)->app_type_name, "unknown(7)") == 0);
    felix_shm_close(shm);
    sim_stop(pid);
}

/* The segment goes on SIGTERM, SIGINT and at the end of --duration; with
 * --no-unlink it stays behind, stale, like a crashed FEX's. */
static void exit_and_stale(void)
{
    char path[64];
    static const int sigs[] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        static const char *args[] = {"-t", "2", "--no-mem", NULL};
        pid_t pid = sim_start(args);
        REQUIRE(pid > 0);
        snprintf(path, sizeof path, "/dev/shm/fex-%d-stats", (int)pid);
        CHECK(access(path, F_OK) == 0);
        kill(pid, sigs[i]);
        int st = sim_wait(pid, 10000);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        CHECK(access(path, F_OK) != 0);
    }
    static const char *args2[] = {"-t", "1", "--no-mem", "-d", "300ms", "--no-unlink", "--exit-status", "3", NULL};
    pid_t pid = sim_start(args2);
    REQUIRE(pid > 0);
    int st = sim_wait(pid, 10000);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    snprintf(path, sizeof path, "/dev/shm/fex-%d-stats", (int)pid);
    CHECK(access(path, F_OK) == 0);
    felix_shm *shm;
    CHECK_EQ(felix_shm_open_pid(&shm, pid, 0), FELIX_ESTALE);
    /* The left-behind segment is empty: every thread unlinked itself. */
    CHECK_EQ(felix_shm_open_path(&shm, path, 0), 0);
    felix_snapshot *s;
    felix_snapshot_new(&s);
    CHECK_EQ(felix_shm_snapshot(shm, s), 0);
    CHECK_EQ(felix_snapshot_get_info(s)->nthreads, 0);
    felix_snapshot_free(s);
    felix_shm_close(shm);
    unlink(path);

    /* With a command: it runs with the PID, and its status is the sim's. */
    static const char *args3[] = {"-t", "1", "--no-mem", "--", "sh", "-c",
                                  "test -e /dev/shm/fex-$1-stats && test \"$FELIX_PID\" = \"$1\" && exit 5", "sh", "{}", NULL};
    pid = sim_start(args3);
    REQUIRE(pid > 0);
    st = sim_wait(pid, 10000);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5);
    snprintf(path, sizeof path, "/dev/shm/fex-%d-stats", (int)pid);
    CHECK(access(path, F_OK) != 0);
}

/* A process that execs itself three times while a loop snapshots it every
 * millisecond: every snapshot is valid or FELIX_ERESTART, each exec is seen
 * as a new image, and no delta spans two images. */
static void exec_scenario(void)
{
    static const char *args[] = {"-t", "3", "--no-mem", "--exec", "3", "--exec-every", "400ms", NULL};
    pid_t pid = sim_start(args);
    REQUIRE(pid > 0);
    felix_shm *shm;
    REQUIRE(felix_shm_open_pid(&shm, pid, 0) == 0);
    felix_snapshot *s[2];
    felix_snapshot_new(&s[0]);
    felix_snapshot_new(&s[1]);
    felix_delta *d;
    uint64_t hz = freq();
    felix_delta_new(&d, hz, 0);
    REQUIRE(felix_shm_snapshot(shm, s[0]) == 0);
    unsigned long ok = 0, restart = 0, other = 0, execs = 0, bogus = 0;
    int cur = 1;
    int64_t end = t_now_ns() + 10000000000LL;
    while (t_now_ns() < end && felix_shm_get_info(shm)->image < 4) {
        t_sleep_ms(1);
        int rc = felix_shm_snapshot(shm, s[cur]);
        if (rc == FELIX_ERESTART) {
            restart++;
            continue;
        }
        if (rc < 0) {
            other++;
            fprintf(stderr, "snapshot: %s\n", felix_error_detail());
            continue;
        }
        ok++;
        REQUIRE(felix_delta_compute(d, s[cur ^ 1], s[cur]) == 0);
        const felix_frame *f = felix_delta_frame(d);
        if (f->events & FELIX_FRAME_EXEC) {
            execs++;
            CHECK_EQ(f->interval_ns, 0);
        }
        bogus += bogus_deltas(d, hz, 0.4); /* an image's threads live 400 ms */
        cur ^= 1;
    }
    /* The last image is up and sampled normally. */
    for (int i = 0; i < 5000 && felix_snapshot_get_info(s[cur ^ 1])->nthreads < 3; i++) {
        t_sleep_ms(1);
        if (felix_shm_snapshot(shm, s[cur ^ 1]) < 0)
            continue;
    }
    fprintf(stderr, "exec: %lu good, %lu restarting, %lu exec frames, image %u\n", ok, restart, execs,
            felix_shm_get_info(shm)->image);
    CHECK_EQ(other, 0);
    CHECK_EQ(bogus, 0);
    CHECK_EQ(felix_shm_get_info(shm)->image, 4);
    CHECK_EQ(execs, 3);
    CHECK(restart > 0); /* the 0-byte and all-zero windows were seen */
    CHECK_EQ(felix_snapshot_get_info(s[cur ^ 1])->nthreads, 3);
    CHECK_EQ(WEXITSTATUS(sim_stop(pid)), 0);
    felix_snapshot_free(s[0]);
    felix_snapshot_free(s[1]);
    felix_delta_free(d);
    felix_shm_close(shm);
}

/* TIDs of the process's threads named sim-worker-*. */
static size_t worker_tids(pid_t pid, uint32_t *out, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    size_t n = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)) && n < cap) {
        uint32_t tid = (uint32_t)atoi(e->d_name);
        if (tid && worker_k(pid, tid))
            out[n++] = tid;
    }
    if (dir)
        closedir(dir);
    return n;
}

/* felix-sim's segment in each layout, walked by a reader written here from
 * the layout (not libfelix): a clean list holding exactly the workers' TIDs,
 * and in legacy slots only the five counters old FEX had. */
static void layouts_walk_clean(void)
{
    static const struct { const char *flag, *val; unsigned slot; } cases[] = {
        {"--legacy-layout", NULL, 48}, {"--app-type", "Linux64", 80}, {"--extra-fields", "3", 112}};
    for (size_t c = 0; c < 3; c++) {
        const char *args[] = {"-t", "5", "--no-mem", cases[c].flag, cases[c].val, NULL};
        pid_t pid = sim_start(args);
        REQUIRE(pid > 0);
        t_sleep_ms(300); /* let every worker run some periods */
        char path[64];
        snprintf(path, sizeof path, "/dev/shm/fex-%d-stats", (int)pid);
        unsigned char buf[4096];
        int fd = open(path, O_RDONLY);
        REQUIRE(fd >= 0);
        ssize_t n = pread(fd, buf, sizeof buf, 0);
        close(fd);
        REQUIRE(n == 4096);
        uint16_t tss;
        uint32_t off;
        memcpy(&tss, buf + 2, 2);
        memcpy(&off, buf + 52, 4);
        unsigned ss = tss ? tss : 48;
        CHECK_EQ(ss, cases[c].slot);
        uint32_t want[16], got[16];
        size_t nw = worker_tids(pid, want, 16), ng = 0, steps = 0;
        CHECK_EQ(nw, 5);
        int clean = 1;
        while (off && steps++ < 64) {
            if (off < 64 || (off - 64) % ss || off + ss > 4096) {
                clean = 0;
                break;
            }
            uint32_t next, tid;
            memcpy(&next, buf + off, 4);
            memcpy(&tid, buf + off + 4, 4);
            if (tid && ng < 16)
                got[ng++] = tid;
            if (ss == 48) { /* soft-float is the last word: thread k counts 1000*k/s */
                uint64_t sf;
                memcpy(&sf, buf + off + 40, 8);
                CHECK(sf > 0 && sf < 1000000);
            }
            off = next;
        }
        CHECK(clean);
        CHECK_EQ(ng, nw);
        for (size_t i = 0; i < ng; i++) {
            int found = 0;
            for (size_t j = 0; j < nw; j++)
                found |= got[i] == want[j];
            CHECK(found);
        }
        /* And libfelix agrees: no anomalies. */
        felix_shm *shm;
        REQUIRE(felix_shm_open_pid(&shm, pid, 0) == 0);
        felix_snapshot *snap;
        felix_snapshot_new(&snap);
        REQUIRE(felix_shm_snapshot(shm, snap) == 0);
        const felix_snapshot_info *si = felix_snapshot_get_info(snap);
        CHECK_EQ(si->nthreads, 5);
        CHECK_EQ(si->anomaly_bad_offset + si->anomaly_cycle + si->anomaly_dup_tid, 0);
        felix_snapshot_free(snap);
        felix_shm_close(shm);
        sim_stop(pid);
    }
}

T_MAIN(T(steady_rates_recovered), T(warmup_then_quiet), T(storm_raises_flags), T(churn_every_ms),
       T(layouts), T(grow_4k), T(grow_16k), T(grow_64k), T(app_type_unknown), T(exit_and_stale),
       T(exec_scenario), T(layouts_walk_clean))
